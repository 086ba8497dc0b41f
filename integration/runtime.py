"""The runtime: everything a process needs, built once from settings.

Dependencies are passed in, never module globals: the app factory, the CLI and
the workers each build a :class:`Runtime` (tests build theirs with test
settings) and hand it down. Connectors are created on first use, one per CRM.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import date
from typing import Any

from redis import Redis, RedisError

from connectors.base import AuthError, Connector
from connectors.config import HubSpotConfig, SalesforceConfig, SandboxConfig
from connectors.hubspot_facts import company_properties, deal_properties
from connectors.registry import build_connector
from connectors.sandbox import default_path
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


class TaskChecks:
    """Which reps' coaching task states are due a CRM read: once per rep per interval.

    A webhook job reads its reps' open tasks to notice ones a manager completed
    (freeing a slot for the next queued task). Read on every job, that is a CRM call
    per batch, about a tenth of all calls; once per rep per ``seconds`` (for every
    worker on every host when Redis is there, one key per rep) a completion is
    noticed that much later, and sweeps still read every rep. ``seconds`` 0: always.
    """

    def __init__(self, redis: Any, seconds: int, clock: Callable[[], float] = time.monotonic):
        self.redis, self.seconds, self.clock = redis, seconds, clock
        self._checked: dict[tuple[str, str], float] = {}

    def __call__(self, crm: str, reps: Sequence[str]) -> list[str]:
        if self.seconds <= 0 or not reps:
            return list(reps)
        if self.redis is None:
            return self._local(crm, reps)
        pipe = self.redis.pipeline(transaction=False)
        for rep in reps:
            pipe.set(f"onstrategy:task-check:{crm}:{rep}", 1, nx=True, ex=self.seconds)
        try:
            due = pipe.execute()
        except RedisError:
            return list(reps)  # cannot tell: read them all
        return [rep for rep, first in zip(reps, due, strict=True) if first]

    def _local(self, crm: str, reps: Sequence[str]) -> list[str]:
        now = self.clock()
        due = [r for r in reps if now - self._checked.get((crm, r), -1e18) >= self.seconds]
        self._checked.update(((crm, r), now) for r in due)
        return due


class CrmAuthStatus:
    """The last authentication failure of each CRM, until a call to it succeeds again.

    Workers make the CRM calls and the app answers ``/readyz``: with Redis the status
    is shared through one key per CRM, so the app names a CRM whose credentials a
    worker found revoked. Without Redis it is this process's own. A success clears
    the key at most every ``clear_seconds`` (not a Redis write per CRM call) and at
    once after a failure this process saw.
    """

    KEY = "onstrategy:crm-auth-failed:"

    def __init__(self, redis: Any, clear_seconds: float = 5.0) -> None:
        self.redis, self.clear_seconds = redis, clear_seconds
        self._failed: dict[str, str] = {}
        self._cleared_at: dict[str, float] = {}

    def failed(self, crm: str, error: AuthError) -> None:
        message = str(error).splitlines()[0][:300] if str(error) else "authentication failed"
        self._failed[crm] = message
        self._cleared_at.pop(crm, None)
        if self.redis is not None:
            try:
                self.redis.set(self.KEY + crm, message)
            except RedisError:
                log.warning("cannot record the %s authentication failure in Redis", crm)

    def succeeded(self, crm: str) -> None:
        now = time.monotonic()
        seen = crm in self._failed
        if not seen and now - self._cleared_at.get(crm, -1e18) < self.clear_seconds:
            return
        self._failed.pop(crm, None)
        self._cleared_at[crm] = now
        if self.redis is not None:
            try:
                self.redis.delete(self.KEY + crm)
            except RedisError:
                self._cleared_at.pop(crm, None)  # try again on the next success

    def problems(self, crms: Sequence[str]) -> dict[str, str]:
        """CRM -> the message of its last authentication failure, for those failing now."""
        if self.redis is None:
            return {crm: self._failed[crm] for crm in crms if crm in self._failed}
        try:
            values = self.redis.mget([self.KEY + crm for crm in crms]) if crms else []
        except RedisError:
            return {crm: self._failed[crm] for crm in crms if crm in self._failed}
        return {
            crm: value.decode() if isinstance(value, bytes) else str(value)
            for crm, value in zip(crms, values, strict=True)
            if value is not None
        }


class AuthWatched:
    """A connector whose calls report authentication failures and successes.

    Every public method goes through; an :class:`AuthError` is recorded (and raised
    on), a call that returns is a success. Generators (paged reads) count when
    iterated, since that is when they call the CRM.
    """

    def __init__(self, inner: Connector, crm: str, status: CrmAuthStatus) -> None:
        self._inner, self._crm, self._status = inner, crm, status

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if name.startswith("_") or not callable(value):
            return value

        def watched(*args: Any, **kwargs: Any) -> Any:
            result = self._watch(lambda: value(*args, **kwargs))
            return self._pages(result) if inspect.isgenerator(result) else result

        return watched

    def _watch(self, call: Callable[[], Any]) -> Any:
        try:
            result = call()
        except AuthError as exc:
            self._status.failed(self._crm, exc)
            raise
        self._status.succeeded(self._crm)
        return result

    def _pages(self, pages: Iterator[Any]) -> Iterator[Any]:
        sentinel = object()
        while (page := self._watch(lambda: next(pages, sentinel))) is not sentinel:
            yield page


def _redis(url: str) -> Any:
    if not url:
        return None
    return Redis.from_url(url, socket_timeout=5, socket_connect_timeout=3)
