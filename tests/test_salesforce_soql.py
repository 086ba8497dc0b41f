"""SOQL building and row reading, directly: quoting by the client library, null-safe rows."""

from __future__ import annotations

from datetime import date

import pytest

from connectors.base import OpportunityQuery
from connectors.salesforce_soql import by_ids, matching, select_clause, task_states_query, to_record
from integration.domain.fields import FieldMap

FIELDS = FieldMap.for_crm("salesforce", {"fit": "Fit__c"})
SELECT = "SELECT Id FROM Opportunity"


def test_select_reads_the_mapped_fields_account_owner_and_products():
    select = select_clause(FIELDS)
    assert select.startswith("SELECT Id, Name, Amount,") and select.endswith(" FROM Opportunity")
    assert "Fit__c" in select and "Strategy_Fit__c" not in select
    assert "Account.Target_Account__c" in select and "Owner.ManagerId" in select
    assert "(SELECT Product2.Name FROM OpportunityLineItems)" in select
    assert "CurrencyIsoCode" not in select
    assert "CurrencyIsoCode" in select_clause(FIELDS, multi_currency=True)


def test_ids_are_widened_to_18_characters_and_quoted():
    soql = by_ids(SELECT, ["0065w000023STAm", "0065w000023STAmAAO"])
    assert soql == f"{SELECT} WHERE Id IN ('0065w000023STAmAAO','0065w000023STAmAAO')"


def test_a_value_cannot_break_out_of_its_quotes():
    assert by_ids(SELECT, ["x' OR Name != '"]).endswith("IN ('x\\' OR Name != \\'')")


def test_a_sweep_without_criteria_reads_everything_in_id_order():
    assert matching(SELECT, OpportunityQuery()) == f"{SELECT} ORDER BY Id"


def test_a_sweep_ands_every_criterion():
    query = OpportunityQuery(
        modified_since="2026-03-01T08:00:00Z", open_only=True, closed_after=date(2026, 1, 1)
    )
    assert matching(SELECT, query, ["0015w00002BFDeL"]) == (
        f"{SELECT} WHERE AccountId IN ('0015w00002BFDeLAAX')"
        " AND LastModifiedDate >= 2026-03-01T08:00:00+00:00"
        " AND (IsClosed = false OR CloseDate >= 2026-01-01) ORDER BY Id"
    )
    assert matching(SELECT, OpportunityQuery(open_only=True)).endswith(
        " WHERE IsClosed = false ORDER BY Id"
    )


def test_a_time_without_a_zone_is_refused():
    with pytest.raises(ValueError, match="needs a time zone"):
        matching(SELECT, OpportunityQuery(modified_since="2026-03-01T08:00:00"))


def test_task_queries_quote_their_ids():
    assert task_states_query(["00T5w00000AbCdE"]).endswith("WHERE Id IN ('00T5w00000AbCdEEAV')")


def test_a_row_with_nulls_everywhere_reads_as_defaults():
    row = {"Id": "0065w000023STAm", "Amount": None, "Account": None, "Owner": None}
    record = to_record({**row, "OpportunityLineItems": None}, FIELDS, org_currency="EUR")
    opp = record.facts.opportunity
    assert (opp.id, opp.amount, opp.currency, opp.probability) == (
        "0065w000023STAmAAO",
        0.0,
        "EUR",
        0,
    )
    assert record.facts.account.employees == 0 and record.facts.owner.id == ""
    assert record.facts.products == ()
    assert record.current["fit"] is None


def test_a_full_row_reads_its_account_owner_products_and_current_values():
    row = {
        "Id": "0065w000023STAmAAO",
        "Amount": 250000.0,
        "CurrencyIsoCode": "USD",
        "Probability": 80,
        "Fit__c": "On Strategy",
        "Account": {"Id": "0015w00002BFDeL", "NumberOfEmployees": 400, "Target_Account__c": True},
        "Owner": {"Id": "0055w00000BhqR0", "ManagerId": "0055w00000BhqR1", "Department": "East"},
        "OpportunityLineItems": {
            "records": [{"Product2": {"Name": "Support Renewal"}}, {"Product2": None}]
        },
    }
    record = to_record(row, FIELDS, org_currency="EUR")
    assert record.facts.opportunity.currency == "USD"
    assert record.facts.account.crm_target_flag is True and record.facts.account.employees == 400
    assert record.facts.owner.manager_id == "0055w00000BhqR1AAJ"
    assert record.facts.products == ("Support Renewal",)
    assert record.current["fit"] == "On Strategy"
