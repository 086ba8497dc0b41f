"""Prometheus metrics: webhook traffic, queue depth, decisions and the on-strategy share.

Each app gets its own registry so several apps (tests) never clash. Gauges of
the business (share on strategy, comp-eligible share) are computed from the
store when scraped, so they are right whichever worker made the decisions.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)

from integration.jobs.queues import INBOX_KEY, make_queue


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
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
        self.queue_depth = Gauge(
            "onstrategy_queue_jobs",
            "Jobs by RQ registry; 'inbox' counts events not yet planned into jobs",
            ["state"],
            registry=self.registry,
        )
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

    def instrument(self, app: Flask) -> None:
        @app.after_request
        def _count(response: Response) -> Response:
            if request.path.startswith("/webhooks/"):
                self.requests.labels(request.path, str(response.status_code)).inc()
            return response

    def webhook_event(self, source: str, kind: str, outcome: str) -> None:
        """Count one event of a delivery that was answered 2xx."""
        self.events.labels(source, kind[:80], outcome).inc()

    def response(self, runtime: Any) -> Response:
        self._refresh(runtime)
        return Response(generate_latest(self.registry), mimetype=CONTENT_TYPE_LATEST)

    def _refresh(self, runtime: Any) -> None:
        counts = runtime.store.fit_counts()
        self.opportunities.clear()
        for (crm, fit), n in counts.items():
            self.opportunities.labels(crm, fit).set(n)
        for crm in {crm for crm, _ in counts}:
            total = sum(n for (c, _), n in counts.items() if c == crm)
            self.share.labels(crm).set(counts.get((crm, "On Strategy"), 0) / total if total else 0)
        if runtime.redis is not None:
            self._queue_depth(runtime.redis)

    def _queue_depth(self, redis: Any) -> None:
        try:
            queue = make_queue(redis)
            self.queue_depth.labels("inbox").set(redis.llen(INBOX_KEY))
            self.queue_depth.labels("queued").set(queue.count)
            self.queue_depth.labels("failed").set(queue.failed_job_registry.count)
            self.queue_depth.labels("scheduled").set(queue.scheduled_job_registry.count)
        except Exception:
            self.queue_depth.labels("queued").set(-1)
