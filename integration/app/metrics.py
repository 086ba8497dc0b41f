"""Prometheus metrics: webhook traffic, queue depth, decisions and the on-strategy share.

Each app gets its own registry so several apps (tests) never clash. Gauges of
the business (share on strategy, comp-eligible share) are computed from the
store when scraped, so they are right whichever worker made the decisions.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)

from integration.engine.ruleset import default_counts_as
from integration.jobs.queues import INBOX_KEY, make_queue, usage_key
from integration.store.database import is_outage


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self._register_webhook_metrics()
        self._register_queue_gauges()
        self._register_decision_gauges()
        self._register_coaching_gauges()
        self._register_signin_metrics()
        self._register_crm_api_gauges()

    def _register_webhook_metrics(self) -> None:
        self.requests = Counter(
            "onstrategy_webhook_requests",
            "Webhook deliveries by source and HTTP status",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.events = Counter(
            "onstrategy_webhook_events",
            "Webhook events by source, type and outcome (accepted, ignored, malformed, unknown)",
            ["source", "type", "outcome"],
            registry=self.registry,
        )

    def _register_queue_gauges(self) -> None:
        self.queue_depth = Gauge(
            "onstrategy_queue_jobs",
            "Jobs by RQ registry; 'inbox' counts events not yet planned into jobs",
            ["state"],
            registry=self.registry,
        )
        self.oldest_started = Gauge(
            "onstrategy_oldest_started_job_seconds",
            "Age of the oldest running job (0 when none): a dead worker's job grows old here "
            "until RQ finds it abandoned and runs it again",
            registry=self.registry,
        )

    def _register_decision_gauges(self) -> None:
        """The business gauges, read from the store at each scrape (see :meth:`_business`)."""
        self.opportunities = Gauge(
            "onstrategy_opportunities",
            "Opportunities by CRM and fit tag (latest decision)",
            ["crm", "fit"],
            registry=self.registry,
        )
        self.share = Gauge(
            "onstrategy_on_strategy_share",
            "Share of opportunities On Strategy, by count",
            ["crm"],
            registry=self.registry,
        )
        self.store_up = Gauge(
            "onstrategy_store_up",
            "1 when the store answered this scrape, 0 when it did not",
            registry=self.registry,
        )

    def _register_coaching_gauges(self) -> None:
        self.slot_mismatch = Gauge(
            "onstrategy_coaching_slot_mismatch_reps",
            "Reps whose coaching slot counter differs from their open tasks (the sweep repairs it)",
            registry=self.registry,
        )

    def _register_signin_metrics(self) -> None:
        self.signin_refusals = Counter(
            "onstrategy_signin_refused",
            "Admin-token attempts answered 429 because their address gave too many wrong "
            "tokens in the window, by how the token came (form: /signin; bearer: Authorization)",
            ["via"],
            registry=self.registry,
        )
        for via in ("form", "bearer"):
            self.signin_refusals.labels(via)  # both series from the first scrape, at 0

    def _register_crm_api_gauges(self) -> None:
        self.api_used = Gauge(
            "onstrategy_crm_api_daily_used",
            "CRM API calls used in the CRM's daily window (Salesforce: the org-wide rolling "
            "24 h pool shared with every integration), as the workers last saw it",
            ["crm"],
            registry=self.registry,
        )
        self.api_limit = Gauge(
            "onstrategy_crm_api_daily_limit",
            "The CRM's daily API allowance (Salesforce DailyApiRequests Max)",
            ["crm"],
            registry=self.registry,
        )

    def instrument(self, app: Flask) -> None:
        @app.after_request
        def _count(response: Response) -> Response:
            path = request.path
            if path.startswith("/webhooks/"):
                self._child(self.requests, (path, str(response.status_code))).inc()
            return response

    def webhook_event(self, source: str, kind: str, outcome: str) -> None:
        """Count one event of a delivery that was answered 2xx."""
        self._child(self.events, (source, kind[:80], outcome)).inc()

    def signin_refused(self, via: str) -> None:
        """Count one attempt refused (429) while its address waits."""
        self._child(self.signin_refusals, (via,)).inc()

    def _child(self, counter: Counter, labels: tuple[str, ...]) -> Any:
        """The counter's child for ``labels``, kept: ``labels()`` validates and locks on
        every call, a cost on each webhook request. Same children, same counts."""
        key = (id(counter), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = counter.labels(*labels)
        return child

    def response(self, runtime: Any) -> Response:
        self._refresh(runtime)
        return Response(generate_latest(self.registry), mimetype=CONTENT_TYPE_LATEST)

    def _refresh(self, runtime: Any) -> None:
        if runtime.redis is not None:
            self._queue_depth(runtime.redis)
        self._api_usage(runtime)
        try:
            self._business(runtime)
        except Exception as exc:
            if not is_outage(exc):
                raise
            self.store_up.set(0)  # the scrape still answers: the gauges say what is down
        else:
            self.store_up.set(1)

    def _business(self, runtime: Any) -> None:
        counts = runtime.store.fit_counts()
        self.slot_mismatch.set(len(runtime.store.tasks.mismatched()))
        rulebook = runtime.rules.current()
        counts_as = rulebook.ruleset.counts_as if rulebook else default_counts_as
        self.opportunities.clear()
        for (crm, fit), n in counts.items():
            self.opportunities.labels(crm, fit).set(n)
        for crm in {crm for crm, _ in counts}:
            total = sum(n for (c, _), n in counts.items() if c == crm)
            on = sum(n for (c, fit), n in counts.items() if c == crm and counts_as(fit) == "on")
            self.share.labels(crm).set(on / total if total else 0)

    def _api_usage(self, runtime: Any) -> None:
        """Daily API usage per CRM: from the workers (Redis), or this process's own calls."""
        usage = dict(runtime.api_usage())
        if runtime.redis is not None:
            for crm in runtime.settings.crms:
                try:
                    seen = runtime.redis.hgetall(usage_key(crm))
                except Exception:
                    continue
                if seen:
                    usage[crm] = (int(seen[b"used"]), int(seen[b"limit"]))
        for crm, (used, limit) in usage.items():
            self.api_used.labels(crm).set(used)
            self.api_limit.labels(crm).set(limit)

    def _queue_depth(self, redis: Any) -> None:
        try:
            queue = make_queue(redis)
            self.queue_depth.labels("inbox").set(redis.llen(INBOX_KEY))
            self.queue_depth.labels("queued").set(queue.count)
            self.queue_depth.labels("failed").set(queue.failed_job_registry.count)
            self.queue_depth.labels("scheduled").set(queue.scheduled_job_registry.count)
            self.oldest_started.set(_oldest_started(queue))
        except Exception:
            self.queue_depth.labels("queued").set(-1)


def _oldest_started(queue: Any) -> float:
    """Seconds since the oldest job in the started registry began (0 when none)."""
    ids = queue.started_job_registry.get_job_ids()
    jobs = queue.job_class.fetch_many(ids, connection=queue.connection) if ids else []
    starts = [job.started_at for job in jobs if job is not None and job.started_at]
    if not starts:
        return 0.0
    oldest = min(start.replace(tzinfo=UTC) if start.tzinfo is None else start for start in starts)
    return max((datetime.now(UTC) - oldest).total_seconds(), 0.0)
