"""What each connector needs to be built: small immutable config objects.

Connectors never read the service's settings: the runtime (the composition
root) builds one of these from :class:`integration.settings.Settings` and hands
it over, so a connector can be built and tested on its own. Secrets are kept out
of ``repr``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class ConfigError(ValueError):
    """A connector's configuration is incomplete or unusable; the message names it."""


def secret() -> str:
    """A string field kept out of ``repr``, so it never reaches a log or an error page."""
    return field(default="", repr=False)  # type: ignore[return-value]


@dataclass(frozen=True)
class HubSpotConfig:
    access_token: str = secret()
    api_url: str = "https://api.hubapi.com"
    calls_per_10s: int = 100  # the portal's tier: 100 Free/Starter, 190 Professional/Enterprise
    search_per_second: int = 5


@dataclass(frozen=True)
class SalesforceConfig:
    instance_url: str = ""
    access_token: str = secret()
    username: str = ""
    password: str = secret()
    security_token: str = secret()
    client_id: str = ""
    private_key_file: str = ""
    api_version: str = "62.0"
    multi_currency: bool = False


@dataclass(frozen=True)
class SandboxConfig:
    path: str = ":memory:"
