"""A rep's coaching task states are read from the CRM at most once per interval.

Jobs for the same rep within ``ONSTRATEGY_TASK_CHECK_SECONDS`` share one read (for
every worker, through Redis); after the interval the next job reads again and a
task the manager completed meanwhile frees the rep's slot for the next in line.
"""

from __future__ import annotations

import time

import pytest

from integration.crm_watch import TaskChecks


def _deal(i: int) -> dict:
    """Large, late, off strategy: each asks for coaching for rep U-1."""
    return {
        "id": f"OPP-{i}",
        "name": f"Retail deal {i}",
        "account_id": "ACC-R",
        "owner_id": "U-1",
        "amount": 150000 + i * 1000,
        "stage": "Negotiation",
        "probability": 80,
        "close_date": "2027-02-01",
        "products": ["Support Renewal"],
    }


@pytest.fixture
def rep(runtime, sandbox):
    sandbox.add_owners(
        [
            {"id": "U-1", "name": "Morgan Lee", "manager_id": "U-9", "team": "East"},
            {"id": "U-9", "name": "Pat Manager", "team": "East"},
        ]
    )
    sandbox.add_accounts([{"id": "ACC-R", "name": "Shopright", "industry": "Retail"}])
    sandbox.add_opportunities([_deal(i) for i in range(4)])
    return runtime


def _job(runtime, *ids: str) -> None:
    runtime.processor("sandbox").process_ids(list(ids))


@pytest.mark.parametrize("shared", [False, True], ids=["in-process", "redis"])
def test_task_states_are_read_once_per_rep_per_interval(rep, sandbox, redis_conn, shared):
    rep.task_checks = TaskChecks(redis_conn if shared else None, seconds=1)
    _job(rep, "OPP-0")
    _job(rep, "OPP-1")  # the rep's two slots are now taken
    open_tasks = [t for t in sandbox.tasks() if t["status"] == "Open"]
    assert len(open_tasks) == 2
    reads = sandbox.api_calls["task_states"]
    sandbox.complete_task(open_tasks[0]["id"])  # the manager coaches and ticks it off
    _job(rep, "OPP-2")
    assert sandbox.api_calls["task_states"] == reads  # checked within the interval
    time.sleep(1.1)
    _job(rep, "OPP-3")
    assert sandbox.api_calls["task_states"] == reads + 1
    assert len([t for t in sandbox.tasks() if t["status"] == "Open"]) == 2  # next one started


def test_zero_seconds_reads_on_every_job(rep, sandbox):
    rep.task_checks = TaskChecks(None, seconds=0)
    _job(rep, "OPP-0")
    _job(rep, "OPP-1")
    reads = sandbox.api_calls["task_states"]
    _job(rep, "OPP-2")
    assert sandbox.api_calls["task_states"] == reads + 1
