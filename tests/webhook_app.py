"""The real app for webhook tests: ``create_app`` with test settings, posted to at the real URL.

Settings are read by :meth:`Settings.from_env` from ``ONSTRATEGY_*`` names, as in
production; the queue is the real one (RQ on the test Redis), and what a delivery
queued is read back from it. Nothing of the service is stood in for.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import REDIS_URL, SHIPPED_RULES
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from integration.app.factory import create_app
from integration.jobs.inbox import drain
from integration.jobs.queues import make_queue
from integration.settings import Settings

#: Job function -> the kind of work it does, for reading the queue back.
JOB_KINDS = {
    "evaluate_opportunities": "opportunity",
    "evaluate_accounts": "account",
    "forget_opportunities": "deleted",
}


def build_app(folder: Path, **env: str) -> Flask:
    """The service's app over a fresh SQLite store and a copy of the shipped rules.

    ``env`` holds settings by their environment names without the prefix
    (``HUBSPOT_CLIENT_SECRET="..."``); ``REDIS_URL`` defaults to the test Redis.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rules = folder / "rules"
    if not rules.exists():
        shutil.copytree(SHIPPED_RULES, rules)
    values = {
        "RULES_DIR": str(rules),
        "DATABASE_URL": f"sqlite:///{folder / 'store.db'}",
        "REDIS_URL": REDIS_URL,
        **env,
    }
    return create_app(Settings.from_env({f"ONSTRATEGY_{k}": v for k, v in values.items()}))


def _jobs(redis) -> list:
    """The jobs waiting, once the deliveries in the inbox are planned (as a drain job does)."""
    drain(redis, lambda: None)
    return [j for j in make_queue(redis).get_jobs() if not j.func_name.endswith("drain_inbox")]


def queued(redis) -> list[tuple[str, str, str]]:
    """Every ``(crm, kind, record id)`` waiting on the queue, in the order queued."""
    found = []
    for job in _jobs(redis):
        kind = JOB_KINDS[job.func_name.rpartition(".")[2]]
        crm, ids = job.args[0], job.args[1]
        found += [(crm, kind, str(i)) for i in ids]
    return found


def queued_keys(redis) -> dict[str, str]:
    """Record id -> the event key its job carries (evaluations and deletions)."""
    keys: dict[str, str] = {}
    for job in _jobs(redis):
        if len(job.args) > 2:
            keys.update(job.args[2])
    return keys


def metric(app: Flask, name: str, **labels: str) -> float:
    """One sample of ``GET /metrics`` (0 when absent)."""
    text = app.test_client().get("/metrics").get_data(as_text=True)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0
