"""Without Redis, webhook work runs in-process before the answer; failures become 503."""

from __future__ import annotations

import pytest

from connectors.base import RejectedError
from connectors.sandbox import SandboxConnector
from integration.domain.events import ChangeEvent, QueueUnavailable
from integration.jobs.intake import InlineIntake


def _event(key: str) -> ChangeEvent:
    return ChangeEvent(crm="sandbox", kind="opportunity", object_id="OPP-1", key=key)


@pytest.fixture
def inline(bind, runtime, sandbox):
    sandbox.add_opportunity("OPP-1", name="One", amount=10)
    bind(runtime)
    return InlineIntake(runtime)


def test_work_is_done_before_submit_returns_and_redelivery_is_skipped(inline, sandbox):
    assert inline.submit([_event("k1")]) == 1
    assert sandbox.opportunity_fields("OPP-1")["fit"] == "Off Strategy"
    reads = sandbox.api_calls["read_opportunities"]
    assert inline.submit([_event("k1")]) == 0
    assert sandbox.api_calls["read_opportunities"] == reads


class _Refusing(SandboxConnector):
    """The sandbox CRM refusing every read: a stand-in at the CRM boundary."""

    def read_opportunities(self, ids):
        raise RejectedError("sandbox", 400, body="INVALID_QUERY")


def test_failed_work_is_not_acknowledged_and_not_marked_seen(inline, runtime):
    runtime._connectors["sandbox"] = _Refusing(":memory:")
    with pytest.raises(QueueUnavailable):
        inline.submit([_event("k2")])
    assert runtime.store.unseen_events("sandbox", ["k2"]) == {"k2"}  # the retry is not skipped
