"""Settings: read once from the environment, validated, then immutable.

A setting that is present but wrong stops start-up with one line that names the
setting and the bad value (``ONSTRATEGY_CRM must be one of ...; got 'hubspto'``).
Secrets are kept out of ``repr`` so they never reach a log or an error page.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from urllib.parse import urlparse

from connectors.config import secret
from integration.domain.crms import CRM_NAMES

#: A drain waiting longer than this for a burst would hold deliveries back for no gain:
#: HubSpot sends a burst's deliveries within seconds, and a backlog never waits anyway.
MAX_BATCH_WAIT_MS = 10_000


class SettingsError(ValueError):
    """A setting is present but unusable; the message names it."""


@dataclass(frozen=True)
class Settings:
    rules_dir: str = "rules"
    redis_url: str = ""
    database_url: str = "sqlite:///onstrategy.db"
    crms: tuple[str, ...] = ("sandbox",)
    admin_token: str = secret()
    proxy_hops: int = 0  # reverse proxies in front that append to X-Forwarded-For; 0: trust none
    secret_key: str = secret()  # signs session cookies; unset: one generated, kept in the store
    hubspot_access_token: str = secret()
    hubspot_client_secret: str = secret()
    hubspot_api_url: str = "https://api.hubapi.com"
    hubspot_webhook_url: str = ""  # public URL HubSpot posts to, when behind a proxy
    hubspot_allow_v1v2: bool = False
    hubspot_calls_per_10s: int = 100  # the portal's tier: 100 Free/Starter, 190 Pro/Enterprise
    hubspot_search_per_second: int = 5
    task_check_seconds: int = 60  # a rep's CRM task states are read at most this often
    # How long a drain waits for a burst's deliveries to fill a job, when nothing else is
    # queued (a job of one delivery costs the CRM as many calls as a full one); 0 = never.
    batch_wait_ms: int = 250
    hubspot_portal_id: str = ""  # the dashboard links each deal to its HubSpot record
    salesforce_instance_url: str = ""
    salesforce_access_token: str = secret()
    salesforce_username: str = ""
    salesforce_password: str = secret()
    salesforce_security_token: str = secret()
    salesforce_client_id: str = ""
    salesforce_private_key_file: str = ""
    salesforce_api_version: str = "62.0"
    salesforce_org_id: str = ""
    salesforce_webhook_secret: str = secret()
    salesforce_multi_currency: bool = False
    salesforce_integration_user_id: str = ""
    reconcile_interval_minutes: int = 60  # the safety net for missed webhooks; 0 = off
    retention_days: int = 90  # history (events, decisions, writes) kept by `store prune`
    prune_interval_hours: int = 0  # workers prune history this often; 0 = only by hand

    @property
    def crm(self) -> str:
        """The first (usually only) CRM configured."""
        return self.crms[0]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        get = lambda name, default="": env.get(f"ONSTRATEGY_{name}", default).strip()  # noqa: E731
        values = {**_service_values(get), **_hubspot_values(get), **_salesforce_values(get)}
        values["crms"] = _crms(get("CRM"), values)
        return cls(**values)

    def credentials_problem(self, crm: str) -> str:
        """What is missing to reach ``crm`` (checked before any network call), or ``""``."""
        if crm == "hubspot" and not self.hubspot_access_token:
            return "ONSTRATEGY_HUBSPOT_ACCESS_TOKEN is not set; HubSpot needs a private-app token"
        if crm != "salesforce":
            return ""
        if not self.salesforce_instance_url and not self.salesforce_username:
            return "ONSTRATEGY_SALESFORCE_INSTANCE_URL is not set; Salesforce needs the org's URL"
        signed_in = (
            self.salesforce_access_token
            or (self.salesforce_username and self.salesforce_password)
            or (self.salesforce_client_id and self.salesforce_private_key_file)
        )
        if not signed_in:
            return (
                "Salesforce credentials are missing: set ONSTRATEGY_SALESFORCE_ACCESS_TOKEN, or "
                "_USERNAME + _PASSWORD + _SECURITY_TOKEN, or _CLIENT_ID + _PRIVATE_KEY_FILE + "
                "_USERNAME"
            )
        return ""

    def replace(self, **changes: object) -> Settings:
        return replace(self, **changes)


Getter = Callable[..., str]  # ONSTRATEGY_<name> from the environment, stripped


def _service_values(get: Getter) -> dict[str, object]:
    return dict(
        rules_dir=get("RULES_DIR", "rules"),
        redis_url=_url(get("REDIS_URL"), "ONSTRATEGY_REDIS_URL", ("redis", "rediss", "unix")),
        database_url=_database_url(get("DATABASE_URL", "sqlite:///onstrategy.db")),
        admin_token=get("ADMIN_TOKEN"),
        proxy_hops=_at_most(
            _int(get("PROXY_HOPS", "0"), "ONSTRATEGY_PROXY_HOPS"), 5, "ONSTRATEGY_PROXY_HOPS"
        ),
        secret_key=_secret_key(get("SECRET_KEY")),
        task_check_seconds=_int(get("TASK_CHECK_SECONDS", "60"), "ONSTRATEGY_TASK_CHECK_SECONDS"),
        batch_wait_ms=_at_most(
            _int(get("BATCH_WAIT_MS", "250"), "ONSTRATEGY_BATCH_WAIT_MS"),
            MAX_BATCH_WAIT_MS,
            "ONSTRATEGY_BATCH_WAIT_MS",
        ),
        retention_days=_int(get("RETENTION_DAYS", "90"), "ONSTRATEGY_RETENTION_DAYS") or 90,
        prune_interval_hours=_int(
            get("PRUNE_INTERVAL_HOURS", "0"), "ONSTRATEGY_PRUNE_INTERVAL_HOURS"
        ),
        reconcile_interval_minutes=_int(
            get("RECONCILE_INTERVAL_MINUTES", "60"), "ONSTRATEGY_RECONCILE_INTERVAL_MINUTES"
        ),
    )


def _hubspot_values(get: Getter) -> dict[str, object]:
    return dict(
        hubspot_access_token=get("HUBSPOT_ACCESS_TOKEN"),
        hubspot_client_secret=get("HUBSPOT_CLIENT_SECRET"),
        hubspot_api_url=_url(
            get("HUBSPOT_API_URL", "https://api.hubapi.com"),
            "ONSTRATEGY_HUBSPOT_API_URL",
            ("http", "https"),
        ).rstrip("/"),
        hubspot_webhook_url=_url(
            get("HUBSPOT_WEBHOOK_URL"), "ONSTRATEGY_HUBSPOT_WEBHOOK_URL", ("http", "https")
        ),
        hubspot_allow_v1v2=_flag(get("HUBSPOT_ALLOW_V1V2"), "ONSTRATEGY_HUBSPOT_ALLOW_V1V2"),
        hubspot_calls_per_10s=_budget(
            get("HUBSPOT_CALLS_PER_10S", "100"), "ONSTRATEGY_HUBSPOT_CALLS_PER_10S", 20
        ),
        hubspot_search_per_second=_budget(
            get("HUBSPOT_SEARCH_PER_SECOND", "5"), "ONSTRATEGY_HUBSPOT_SEARCH_PER_SECOND", 2
        ),
        hubspot_portal_id=_portal_id(get("HUBSPOT_PORTAL_ID")),
    )


def _salesforce_values(get: Getter) -> dict[str, object]:
    return dict(
        salesforce_instance_url=_url(
            get("SALESFORCE_INSTANCE_URL"), "ONSTRATEGY_SALESFORCE_INSTANCE_URL", ("http", "https")
        ).rstrip("/"),
        salesforce_access_token=get("SALESFORCE_ACCESS_TOKEN"),
        salesforce_username=get("SALESFORCE_USERNAME"),
        salesforce_password=get("SALESFORCE_PASSWORD"),
        salesforce_security_token=get("SALESFORCE_SECURITY_TOKEN"),
        salesforce_client_id=get("SALESFORCE_CLIENT_ID"),
        salesforce_private_key_file=get("SALESFORCE_PRIVATE_KEY_FILE"),
        salesforce_api_version=_api_version(get("SALESFORCE_API_VERSION", "62.0")),
        salesforce_org_id=_org_id(get("SALESFORCE_ORG_ID")),
        salesforce_webhook_secret=get("SALESFORCE_WEBHOOK_SECRET"),
        salesforce_multi_currency=_flag(
            get("SALESFORCE_MULTI_CURRENCY"), "ONSTRATEGY_SALESFORCE_MULTI_CURRENCY"
        ),
        salesforce_integration_user_id=_user_id(get("SALESFORCE_INTEGRATION_USER_ID")),
    )


def _crms(raw: str, values: dict) -> tuple[str, ...]:
    if not raw:
        found = []
        if values["hubspot_access_token"]:
            found.append("hubspot")
        if values["salesforce_instance_url"] or values["salesforce_username"]:
            found.append("salesforce")
        return tuple(found) or ("sandbox",)
    names = tuple(n.strip() for n in raw.split(",") if n.strip())
    for name in names:
        if name not in CRM_NAMES:
            raise SettingsError(
                f"ONSTRATEGY_CRM must be one of {', '.join(CRM_NAMES)}; got {name!r}"
            )
    return names or ("sandbox",)


def _url(raw: str, name: str, schemes: tuple[str, ...]) -> str:
    if not raw:
        return raw
    parsed = urlparse(raw)
    if parsed.scheme not in schemes or not (parsed.netloc or parsed.path):
        raise SettingsError(f"{name} must be a {'/'.join(schemes)} URL; got {_shown(raw)!r}")
    return raw


def _database_url(raw: str) -> str:
    if "://" not in raw:
        raise SettingsError(f"ONSTRATEGY_DATABASE_URL must be a SQLAlchemy URL; got {raw!r}")
    return raw


def _shown(url: str) -> str:
    """The URL without any password, for error messages."""
    parsed = urlparse(url)
    if parsed.password:
        return url.replace(parsed.password, "***")
    return url


def _flag(raw: str, name: str) -> bool:
    if raw.lower() in ("", "0", "false", "no", "off"):
        return False
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    raise SettingsError(f"{name} must be true or false; got {raw!r}")


def _int(raw: str, name: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number; got {raw!r}") from None
    if value < 0:
        raise SettingsError(f"{name} must not be negative; got {raw!r}")
    return value


def _at_most(value: int, limit: int, name: str) -> int:
    if value > limit:
        raise SettingsError(f"{name} must be at most {limit}; got {value}")
    return value


def _budget(raw: str, name: str, minimum: int) -> int:
    """A rate budget: a whole number of calls, at least ``minimum``."""
    value = _int(raw, name)
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}; got {raw!r}")
    return value


def _api_version(raw: str) -> str:
    try:
        float(raw)
    except ValueError:
        raise SettingsError(
            f"ONSTRATEGY_SALESFORCE_API_VERSION must look like 62.0; got {raw!r}"
        ) from None
    return raw


def _user_id(raw: str) -> str:
    if raw and (len(raw) not in (15, 18) or not raw.isalnum()):
        raise SettingsError(
            "ONSTRATEGY_SALESFORCE_INTEGRATION_USER_ID must be a 15- or 18-character id; "
            f"got {raw!r}"
        )
    return raw


def _org_id(raw: str) -> str:
    if raw and (len(raw) not in (15, 18) or not raw.isalnum()):
        raise SettingsError(
            f"ONSTRATEGY_SALESFORCE_ORG_ID must be a 15- or 18-character id; got {raw!r}"
        )
    return raw


def _secret_key(raw: str) -> str:
    if raw and len(raw) < 32:
        raise SettingsError(f"ONSTRATEGY_SECRET_KEY must be at least 32 characters; got {len(raw)}")
    return raw


def _portal_id(raw: str) -> str:
    if raw and not raw.isdigit():
        raise SettingsError(f"ONSTRATEGY_HUBSPOT_PORTAL_ID must be a number; got {raw!r}")
    return raw
