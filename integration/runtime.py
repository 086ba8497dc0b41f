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
from integration.crm_watch import AuthWatched, CrmAuthStatus, TaskChecks
from integration.domain.fields import FieldMap, WatchedFields
from integration.domain.model import OUTPUT_FIELDS
from integration.engine.rulebook import LiveRules, Rulebook, load_rulebook, read_folder
from integration.engine.ruleset import default_counts_as
from integration.engine.yamlsource import Problem
from integration.pipeline.coaching import CoachingSync
from integration.pipeline.processor import Processor
from integration.reports.service import Insights
from integration.settings import Settings, SettingsError
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
        publish_first: bool = True,
        rules_poll_seconds: float = 2.0,
    ) -> None:
        self.settings = settings
        self.store = store or Store(settings.database_url)
        self.redis = redis if redis is not None else _redis(settings.redis_url)
        self.rules = LiveRules(
            self.store.versions,
            poll_seconds=rules_poll_seconds,
            bootstrap=self.publish_working_copy if publish_first else None,
            on_targets_changed=self._targets_changed,
        )
        self._connectors: dict[str, Connector] = dict(connectors or {})
        self.today = today
        self.target_listeners: list[Callable[[Rulebook, Rulebook], None]] = []
        self.task_checks = TaskChecks(self.redis, settings.task_check_seconds)
        self.crm_auth = CrmAuthStatus(self.redis)
        self.insights = Insights(self.store, self.rulebook, today, self._people)

    def rulebook(self) -> Rulebook:
        return self.rules.require()

    def publish_working_copy(self, who: str = "first start") -> list[Problem]:
        """On a fresh store, publish the working copy as the first version.

        Called when nothing is published yet (``demo``, ``serve``, ``worker`` and
        the first use of a runtime); returns the working copy's problems, if any.
        """
        rulebook, problems = load_rulebook(self.settings.rules_dir)
        if rulebook is None:
            return problems
        if self.store.versions.live_version() is None:
            self.store.versions.publish(
                read_folder(self.settings.rules_dir),
                who=who,
                note=f"first version, from {self.settings.rules_dir}",
                target_list_version=rulebook.targets.version,
            )
            log.info("published %s as the first rules version", rulebook.version)
        return []

    def counts_as(self, tag_or_rule: str) -> str:
        """How a tag or fit rule counts under the live ruleset (``on|approved|off``)."""
        rulebook = self.rules.current()
        return (
            rulebook.ruleset.counts_as(tag_or_rule) if rulebook else default_counts_as(tag_or_rule)
        )

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
            problem = self.settings.credentials_problem(crm)
            if problem:
                raise SettingsError(problem)
            config = connector_config(crm, self.settings)
            built = build_connector(crm, config, self.fields(crm), self.redis)
            self._connectors[crm] = AuthWatched(built, crm, self.crm_auth)  # type: ignore[assignment]
        return self._connectors[crm]

    def processor(self, crm: str, **options: Any) -> Processor:
        return Processor(
            self.connector(crm),
            self.rulebook(),
            self.store,
            today=self.today,
            due_for_check=self.task_checks,
            **options,
        )

    def api_usage(self) -> dict[str, tuple[int, int]]:
        """(calls used, daily allowance) per CRM whose connector reports it (Salesforce
        sends ``Sforce-Limit-Info`` with every answer), as last seen by this process."""
        usage = {}
        for crm, connector in self._connectors.items():
            seen = getattr(connector, "api_usage", None)  # only some CRMs report a daily pool
            if isinstance(seen, tuple):
                usage[crm] = seen
        return usage

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
