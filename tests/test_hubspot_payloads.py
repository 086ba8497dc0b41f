"""HubSpot request bodies and answers, directly: filters, dates, tasks, batch matching."""

from __future__ import annotations

from datetime import date, datetime

from connectors import hubspot_payloads as hp
from connectors.base import OpportunityQuery, TaskSpec, WriteResult

NEW_YEAR_MS = "1767225600000"  # 2026-01-01T00:00:00Z


def test_epoch_ms_from_every_form_a_date_comes_in():
    assert hp.epoch_ms("2026-01-01T00:00:00Z") == NEW_YEAR_MS
    assert hp.epoch_ms(date(2026, 1, 1)) == NEW_YEAR_MS
    assert hp.epoch_ms(datetime(2026, 1, 1)) == NEW_YEAR_MS  # no zone: UTC
    assert hp.epoch_ms(NEW_YEAR_MS) == NEW_YEAR_MS


def test_a_plain_sweep_pages_by_object_id():
    assert hp.filter_groups(OpportunityQuery(), "42") == [
        {"filters": [{"propertyName": "hs_object_id", "operator": "GT", "value": "42"}]}
    ]


def test_open_deals_and_those_closed_after_a_date_are_two_or_groups():
    query = OpportunityQuery(
        modified_since="2026-01-01T00:00:00Z", open_only=True, closed_after=date(2026, 1, 1)
    )
    open_group, closed_group = hp.filter_groups(query, "0")
    since = {"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": NEW_YEAR_MS}
    assert since in open_group["filters"] and since in closed_group["filters"]
    assert {"propertyName": "hs_is_closed", "operator": "EQ", "value": "false"} in open_group[
        "filters"
    ]
    assert {"propertyName": "closedate", "operator": "GTE", "value": NEW_YEAR_MS} in closed_group[
        "filters"
    ]


def test_deals_reached_through_companies_are_filtered_the_same_way():
    query = OpportunityQuery(open_only=True, closed_after=date(2026, 1, 1))
    assert hp.matches({"hs_is_closed": "false"}, query)
    assert hp.matches({"hs_is_closed": "true", "closedate": "2026-02-01T00:00:00Z"}, query)
    assert not hp.matches({"hs_is_closed": "true", "closedate": "2025-12-31T00:00:00Z"}, query)
    recent = OpportunityQuery(modified_since="2026-01-01T00:00:00Z")
    assert not hp.matches({"hs_lastmodifieddate": "2025-12-31T23:59:59Z"}, recent)


def _task(key: str, priority: str = "High") -> TaskSpec:
    return TaskSpec(key, "697680835", "8", "Coach", "Body", date(2026, 3, 2), priority)


def test_a_task_is_due_at_noon_utc_and_associated_with_its_deal():
    body = hp.task_input(_task("k1"))
    props = body["properties"]
    assert props["hs_timestamp"] == "1772452800000"  # 2026-03-02T12:00:00Z
    assert props["hs_task_priority"] == "HIGH" and props["hubspot_owner_id"] == "8"
    assert body["associations"][0]["to"] == {"id": "697680835"}
    assert body["associations"][0]["types"][0]["associationTypeId"] == 216
    assert body["objectWriteTraceId"] == "k1"
    assert hp.task_input(_task("k2", "whenever"))["properties"]["hs_task_priority"] == "MEDIUM"


def test_created_tasks_are_matched_by_trace_id_not_by_order():
    chunk = [_task("a"), _task("b"), _task("c")]
    answer = {
        "results": [{"id": 2, "objectWriteTraceId": "b"}, {"id": 1, "objectWriteTraceId": "a"}],
        "errors": [{"message": "owner is gone", "context": {"objectWriteTraceId": ["c"]}}],
    }
    assert hp.created(chunk, answer) == [
        WriteResult("a", True, id="1"),
        WriteResult("b", True, id="2"),
        WriteResult("c", False, error="owner is gone"),
    ]


def test_without_trace_ids_a_full_answer_is_matched_in_order():
    answer = {"results": [{"id": 5}, {"id": 6}]}
    assert [r.id for r in hp.created([_task("a"), _task("b")], answer)] == ["5", "6"]


def test_task_states_and_closing_outcomes():
    assert hp.task_state(None) == "deleted"
    assert hp.task_state({"properties": {"hs_task_status": "COMPLETED"}}) == "completed"
    assert hp.task_state({"properties": {"hs_task_status": "NOT_STARTED"}}) == "open"
    failed = WriteResult("1", False, error="locked")
    assert hp.closed("1", {"1": {}}, {"1": failed}) is failed
    assert hp.closed("2", {}, {}).error == "task not found (deleted)"
    assert hp.closed("3", {"3": {}}, {}).ok


def test_small_helpers():
    assert hp.append("", "Closed: deal won") == "Closed: deal won"
    assert hp.append("Coach", "Closed") == "Coach\n\nClosed"
    assert [hp.value(v) for v in (True, False, None, 3)] == ["true", "false", "", "3"]
    errors = [{"category": "VALIDATION_ERROR", "context": {"id": ["7", "8"]}}]
    assert hp.errors_by(errors, "id") == {"7": "VALIDATION_ERROR", "8": "VALIDATION_ERROR"}
