"""``POST /webhooks/hubspot``: verify, parse, queue, answer. Nothing is decided here.

Two senders post here. Webhook subscriptions post a JSON array of at most 100
events and retry any non-2xx (or a reply slower than 5 s) for 24 hours, so
events the service does not act on are answered 2xx, one bad event is skipped
(logged and counted) rather than refusing the others, and 2xx is sent only after
``intake.submit`` has durably queued every event; a queue outage is 503 so
HubSpot retries. A workflow's "Send a webhook" action posts one JSON object,
the enrolled record (see :mod:`webhooks.hubspot_workflow`).

What the view needs comes through the app state
(``current_app.extensions["onstrategy"]``): ``settings``, ``intake``,
``watched(crm)`` (the properties the rules read, and the service's own) and
``metrics.webhook_event`` (each event's outcome, on ``/metrics``).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Blueprint, Response, current_app, request

from integration.domain.events import QueueUnavailable
from webhooks.body import load_json, read_body
from webhooks.errors import Malformed, NotAuthentic
from webhooks.hubspot_events import Delivery, parse_batch
from webhooks.hubspot_signature import verify
from webhooks.hubspot_workflow import parse_workflow

log = logging.getLogger(__name__)
bp = Blueprint("hubspot_webhook", __name__)


@bp.post("/webhooks/hubspot")
def receive() -> Response | tuple[Any, int]:
    ext = current_app.extensions["onstrategy"]
    try:
        body = read_body()
        _verify(ext.settings, body)
        delivery = parse(load_json(body), ext)
    except NotAuthentic as exc:
        log.warning("hubspot webhook refused: %s", exc.reason)
        return {"error": "invalid signature"}, exc.status
    except Malformed as exc:
        log.warning("hubspot webhook refused: %s", exc.reason)
        return {"error": exc.reason}, exc.status
    _log_skipped(delivery)
    try:
        if delivery.events:
            ext.intake.submit(delivery.events)
    except QueueUnavailable:
        return {"error": "queue unavailable, retry later"}, 503
    for kind, outcome, _ in delivery.outcomes:
        ext.metrics.webhook_event("hubspot", kind, outcome)
    return Response(status=204)


def parse(document: Any, ext: Any) -> Delivery:
    """A subscription batch (a list) or a workflow's record (one object)."""
    watched = ext.watched("hubspot")
    if isinstance(document, dict):
        event = parse_workflow(document, watched)
        return Delivery([event], [("workflow", "accepted", "")])
    return parse_batch(document, watched)


def _verify(settings: Any, body: bytes) -> None:
    verify(
        request.headers,
        settings.hubspot_client_secret,
        request.method,
        _signed_uri(settings),
        body,
        now_ms=int(time.time() * 1000),
        allow_v1v2=settings.hubspot_allow_v1v2,
    )


def _signed_uri(settings: Any) -> str:
    """The public URL HubSpot called: the configured one behind a proxy, else what Flask saw."""
    if not settings.hubspot_webhook_url:
        return request.url
    query = request.query_string.decode("latin-1")
    return settings.hubspot_webhook_url + (f"?{query}" if query else "")


def _log_skipped(delivery: Delivery) -> None:
    for kind, outcome, why in delivery.outcomes:
        if outcome == "malformed":
            log.warning("hubspot webhook: skipped a malformed %s event: %s", kind, why)
        elif outcome == "unknown":
            log.warning("hubspot webhook: ignored an event of unknown type %r", kind[:80])
