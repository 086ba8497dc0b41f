"""The runtime: everything a process needs, built once from settings.

Dependencies are passed in, never module globals: the app factory, the CLI and
the workers each build a :class:`Runtime` (tests build theirs with test
settings) and hand it down. Connectors are created on first use, one per CRM.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date
from typing import Any

from redis import Redis

from connectors.base import Connector
from connectors.config import HubSpotConfig, SalesforceConfig, SandboxConfig
from connectors.hubspot_facts import company_properties, deal_properties
from connectors.registry import build_connector
from connectors.sandbox import default_path
from integration.domain.fields import FieldMap, WatchedFields
from integration.domain.model import OUTPUT_FIELDS
from integration.engine.rulebook import Rulebook, RulesHolder
from integration.pipeline.coaching import CoachingSync
from integration.pipeline.processor import Processor
from integration.reports.service import Insights
from integration.settings import Settings
from integration.store.database import Store

log = logging.getLogger(__name__)


class Runtime:
    def __init__(
        self,
        settings: Settings,
        *,
        store: Store | None = None,
        redis: Any = None,
        connectors: dict[str, Connector] | None = None,
        today: Callable[[], date] = date.today,
    ) -> None:
        self.settings = settings
        self.store = store or Store(settings.database_url)
        self.redis = redis if redis is not None else _redis(settings.redis_url)
        self.rules = RulesHolder(settings.rules_dir, on_targets_changed=self._targets_changed)
        self._connectors: dict[str, Connector] = dict(connectors or {})
        self.today = today
        self.target_listeners: list[Callable[[Rulebook, Rulebook], None]] = []
        self.insights = Insights(self.store, self.rulebook, today, self._people)

    def rulebook(self) -> Rulebook:
        return self.rules.require()

    def fields(self, crm: str) -> FieldMap:
        rulebook = self.rules.current()
        overrides = rulebook.ruleset.field_overrides(crm) if rulebook else {}
        return FieldMap.for_crm(crm, overrides)

    def watched(self, crm: str) -> WatchedFields:
        """The fields the rules read and the service's own, as the rule file names them.

        Webhooks use it to tell a change that can alter a decision from one that
        cannot, or that only echoes the service's own write.
        """
        fields = self.fields(crm)
        own = frozenset(fields[name] for name in OUTPUT_FIELDS)
        if crm != "hubspot":
            return WatchedFields(own=own)
        deal = frozenset(deal_properties(fields)) - own
        return WatchedFields(deal, frozenset(company_properties(fields)), own)

    def connector(self, crm: str) -> Connector:
        if crm not in self._connectors:
            config = connector_config(crm, self.settings)
            self._connectors[crm] = build_connector(crm, config, self.fields(crm), self.redis)
        return self._connectors[crm]

    def processor(self, crm: str, **options: Any) -> Processor:
        return Processor(
            self.connector(crm), self.rulebook(), self.store, today=self.today, **options
        )

    def coaching(self, crm: str) -> CoachingSync:
        ruleset = self.rulebook().ruleset
        return CoachingSync(
            self.connector(crm),
            self.store.tasks,
            ruleset.max_open_per_rep,
            self.today,
            queue_bound=ruleset.queue_per_rep,
        )

    def _people(self) -> list[dict[str, Any]]:
        """Names of people who own no deal (managers), where a CRM lists them locally."""
        if "sandbox" not in self.settings.crms:
            return []
        return list(getattr(self.connector("sandbox"), "owners", list)())

    def _targets_changed(self, previous: Rulebook, current: Rulebook) -> None:
        for listener in self.target_listeners:
            listener(previous, current)


def connector_config(crm: str, settings: Settings) -> Any:
    """The config object one CRM's connector is built from (connectors never see settings)."""
    return CONNECTOR_CONFIGS[crm](settings)


CONNECTOR_CONFIGS: dict[str, Callable[[Settings], Any]] = {
    "hubspot": lambda s: HubSpotConfig(
        access_token=s.hubspot_access_token,
        api_url=s.hubspot_api_url,
        calls_per_10s=s.hubspot_calls_per_10s,
        search_per_second=s.hubspot_search_per_second,
    ),
    "salesforce": lambda s: SalesforceConfig(
        instance_url=s.salesforce_instance_url,
        access_token=s.salesforce_access_token,
        username=s.salesforce_username,
        password=s.salesforce_password,
        security_token=s.salesforce_security_token,
        client_id=s.salesforce_client_id,
        private_key_file=s.salesforce_private_key_file,
        api_version=s.salesforce_api_version,
        multi_currency=s.salesforce_multi_currency,
    ),
    "sandbox": lambda s: SandboxConfig(path=default_path(s.database_url)),
}


def _redis(url: str) -> Any:
    if not url:
        return None
    return Redis.from_url(url, socket_timeout=5, socket_connect_timeout=3)
