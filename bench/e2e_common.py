"""What the end-to-end benchmark's parts share: signed HubSpot deliveries, the
workers' settings and the empty Redis database they need."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from redis import Redis

from webhooks.hubspot_signature import v3_signature

SECRET = "bench-secret"
URL = "http://localhost/webhooks/hubspot"
REDIS_URL = os.environ.get("ONSTRATEGY_BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
PER_EVENT_CALLS = 3  # a per-event integration: read the deal, update it, read its task


def event(n: int, deal: str) -> dict:
    return {
        "eventId": 1_000_000 + n,
        "subscriptionId": 7,
        "portalId": 99,
        "occurredAt": int(time.time() * 1000),
        "subscriptionType": "deal.propertyChange",
        "objectId": int(deal),
        "propertyName": "amount",
        "propertyValue": str(1000 + n),
    }


def signed(events: list[dict], url: str = URL) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(events).encode()
    stamp = str(int(time.time() * 1000))
    return body, {
        "Content-Type": "application/json",
        "X-HubSpot-Signature-v3": v3_signature(SECRET, "POST", url, body, stamp),
        "X-HubSpot-Request-Timestamp": stamp,
    }


def environment(folder: Path, api_url: str, budget: int) -> dict[str, str]:
    return {
        "ONSTRATEGY_RULES_DIR": str(folder / "rules"),
        "ONSTRATEGY_DATABASE_URL": f"sqlite:///{folder / 'store.db'}",
        "ONSTRATEGY_REDIS_URL": REDIS_URL,
        "ONSTRATEGY_CRM": "hubspot",
        "ONSTRATEGY_HUBSPOT_ACCESS_TOKEN": "bench-token",
        "ONSTRATEGY_HUBSPOT_CLIENT_SECRET": SECRET,
        "ONSTRATEGY_HUBSPOT_API_URL": api_url,
        "ONSTRATEGY_HUBSPOT_CALLS_PER_10S": str(budget),
    }


def empty_redis() -> Redis:
    redis = Redis.from_url(REDIS_URL)
    if redis.dbsize():
        raise SystemExit(f"{REDIS_URL} is not empty; set ONSTRATEGY_BENCH_REDIS_URL to an empty db")
    return redis
