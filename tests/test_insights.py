"""The insights on a pipeline built so every right answer is known in advance.

Nine deals, two teams, today 2026-11-20 (the quarter to date is 2026-10-01..11-20):

| deal | rep | team | fit      | status          | amount | created    | closed     |
|------|-----|------|----------|-----------------|--------|------------|------------|
| A1   | Ann | East | on       | open, 80%       | 100    | 2026-01-05 |            |
| A2   | Ann | East | off      | open, 20%       | 300    | 2026-01-06 |            |
| A3   | Ann | East | on       | won             | 200    | 2026-09-10 | 2026-10-10 |
| A4   | Ann | East | off      | lost            | 50     | 2026-09-01 | 2026-10-15 |
| A5   | Ann | East | approved | open, 40%       | 70     | 2026-09-01 |            |
| B1   | Bob | East | off      | won             | 400    | 2026-08-01 | 2026-10-20 |
| B2   | Bob | East | on       | lost            | 150    | 2026-08-03 | 2026-11-01 |
| B3   | Bob | East | off      | won (last qtr)  | 120    | 2026-03-01 | 2026-06-01 |
| C1   | Cat | West | off      | open, 60%       | 500    | 2026-02-02 |            |
"""

from __future__ import annotations

from datetime import date

import pytest

from integration.reports.deals import Deal
from integration.reports.insights import Params, build_report

TODAY = date(2026, 11, 20)
FIT = {"on": "On Strategy", "approved": "Off Strategy (Approved)", "off": "Off Strategy"}


def deal(id, owner, team, kind, amount, created, closed="", won=False, probability=0, **extra):
    return Deal(
        crm="sandbox",
        opportunity_id=id,
        name=extra.pop("name", f"{id} deal"),
        amount=float(amount),
        stage=extra.pop(
            "stage", "Closed Won" if won else ("Closed Lost" if closed else "Proposal")
        ),
        probability=probability,
        close_date=closed,
        created_date=created,
        is_closed=bool(closed),
        is_won=won,
        owner_id=owner[0],
        owner=owner,
        team=team,
        industry=extra.pop("industry", "Manufacturing"),
        manager_id="M",
        fit=FIT[kind],
        fit_rule=extra.pop("fit_rule", FIT[kind]),
        counts_as=kind,
        comp_eligible=extra.pop("comp", False),
        warned=extra.pop("warned", False),
        products=extra.pop("products", ("Data Platform",)),
    )


DEALS = [
    deal("A1", "Ann", "East", "on", 100, "2026-01-05", probability=80, comp=True),
    deal(
        "A2",
        "Ann",
        "East",
        "off",
        300,
        "2026-01-06",
        probability=20,
        industry="Retail",
        products=("Support Renewal",),
        stage="Prospecting",
        fit_rule="outside-target-market",
        warned=True,
    ),
    deal(
        "A3", "Ann", "East", "on", 200, "2026-09-10", "2026-10-10", won=True, industry="Healthcare"
    ),
    deal("A4", "Ann", "East", "off", 50, "2026-09-01", "2026-10-15"),
    deal("A5", "Ann", "East", "approved", 70, "2026-09-01", probability=40),
    deal("B1", "Bob", "East", "off", 400, "2026-08-01", "2026-10-20", won=True),
    deal("B2", "Bob", "East", "on", 150, "2026-08-03", "2026-11-01"),
    deal("B3", "Bob", "East", "off", 120, "2026-03-01", "2026-06-01", won=True),
    deal(
        "C1",
        "Cat",
        "West",
        "off",
        500,
        "2026-02-02",
        probability=60,
        fit_rule="wrong-products",
        products=("On-Prem License", "Professional Services"),
    ),
]


def report(**options):
    options.setdefault("min_deals", 2)
    return build_report(DEALS, Params(today=TODAY, **options))


def test_open_pipeline_is_the_default_scope_and_approved_counts_apart():
    total = report()["total"]
    assert report()["scope"] == {
        "status": "open",
        "from": "2026-10-01",
        "to": "2026-11-20",
        "live_version": "",
        "by": "team",
        "today": "2026-11-20",
    }
    assert (total["deals"], total["on_strategy"], total["approved"]) == (4, 1, 1)
    assert (total["share"], total["amount"], total["on_strategy_amount"]) == (0.25, 970.0, 100.0)
    assert total["share_by_amount"] == round(100 / 970, 4)
    assert (total["comp_share"], total["warnings"]) == (0.25, 1)


def test_win_rates_count_deals_closed_in_the_period_on_and_off_strategy():
    total = report()["total"]
    # closed 10-01..11-20: A3 won on, B2 lost on, A4 lost off, B1 won off (B3 closed in June)
    assert (total["win_rate_on"], total["win_rate_off"]) == (0.5, 0.5)
    early = report(start=date(2026, 6, 1), end=date(2026, 6, 30))["total"]
    assert (early["win_rate_on"], early["win_rate_off"]) == (None, 1.0)


@pytest.mark.parametrize(
    ("status", "deals", "on", "amount"),
    [("open", 4, 1, 970.0), ("won", 2, 1, 600.0), ("lost", 2, 1, 200.0), ("all", 8, 3, 1770.0)],
)
def test_status_scopes(status, deals, on, amount):
    total = report(status=status)["total"]
    assert (total["deals"], total["on_strategy"], total["amount"]) == (deals, on, amount)
    assert total["share"] == round(on / deals, 4)


def test_from_and_to_choose_the_closed_deals():
    total = report(status="won", start=date(2026, 1, 1), end=date(2026, 12, 31))["total"]
    assert (total["deals"], total["amount"]) == (3, 720.0)  # A3, B1 and B3


def test_deal_size_and_days_to_close_on_vs_off():
    total = report(status="won")["total"]
    assert (total["avg_amount_on"], total["avg_amount_off"]) == (200.0, 400.0)
    assert (total["days_to_close_on"], total["days_to_close_off"]) == (30.0, 80.0)


def test_lines_by_team_and_by_owner():
    teams = {line["group"]: line for line in report()["lines"]}
    assert (teams["East"]["deals"], teams["East"]["share"]) == (3, 0.3333)
    assert (teams["East"]["share_by_amount"], teams["East"]["win_rate_on"]) == (0.2128, 0.5)
    assert teams["East"]["win_rate_off"] == 0.5
    assert (teams["West"]["deals"], teams["West"]["share"]) == (1, 0.0)
    assert (teams["West"]["win_rate_on"], teams["West"]["win_rate_off"]) == (None, None)
    owners = {line["group"]: line for line in report(by="owner")["lines"]}
    assert set(owners) == {"Ann", "Cat"}  # Bob has no open deal


def test_trend_is_new_pipeline_and_bookings_per_iso_week():
    built = report(changed_weeks=frozenset({"2026-W02"}))
    weeks = {w["week"]: w for w in built["trend"]}
    assert (weeks["2026-W02"]["new_deals"], weeks["2026-W02"]["new_share"]) == (2, 0.5)
    assert weeks["2026-W02"]["ruleset_changed"] is True
    assert weeks["2026-W06"]["ruleset_changed"] is False
    # B1 won 2026-10-20 (W43): 400 won, none of it on strategy
    assert (weeks["2026-W43"]["won_amount"], weeks["2026-W43"]["won_share"]) == (400.0, 0.0)
    assert [w["week"] for w in built["trends"]["team"]["West"]] == ["2026-W06"]


def test_trend_and_baseline_do_not_depend_on_status():
    assert report(status="won")["trend"] == report(status="open")["trend"]
    assert report(status="lost")["baseline"] == report()["baseline"]


def test_baseline_is_pooled_and_each_line_is_held_to_its_own():
    built = report(baseline_from=date(2026, 1, 1), baseline_to=date(2026, 3, 31))
    # created in Q1: A1 on, A2, B3, C1 off -> 1/4; nothing won in Q1
    assert built["baseline"] == {
        "from": "2026-01-01",
        "to": "2026-03-31",
        "new_deals": 4,
        "new_on_strategy": 1,
        "new_share": 0.25,
        "won_amount": 0.0,
        "won_on_strategy_amount": 0.0,
        "won_share": None,
    }
    total = built["total"]
    # since: A3 on, A4 off, A5 approved, B1 off, B2 on -> 2/5; won since: A3 200 of 720
    assert (total["new_share"], total["new_share_change"]) == (0.4, 0.15)
    assert total["won_share"] == round(200 / 720, 4)
    east = next(line for line in built["lines"] if line["group"] == "East")
    assert (east["baseline_new_share"], east["new_share"]) == (round(1 / 3, 4), 0.4)


def test_default_baseline_is_the_first_13_weeks_with_data():
    base = report()["baseline"]
    assert (base["from"], base["to"]) == ("2026-01-05", "2026-04-05")  # Monday of W02 + 13 weeks


def test_red_flags_below_the_line():
    flags = {(f["level"], f["group"]): f["share"] for f in report()["red_flags"]}
    assert flags == {("company", "All"): 0.25, ("team", "West"): 0.0, ("owner", "Cat"): 0.0}
    assert {(f["level"], f["group"]) for f in report(red_flag_below=20)["red_flags"]} == {
        ("team", "West"),
        ("owner", "Cat"),
    }


def test_reps_to_learn_from_beat_their_team_on_share_and_on_strategy_win_rate():
    learn = report()["learn_from"]
    # Ann: new pipeline 2/5 = 0.4 > East 3/8; on-strategy win rate 1/1 > East 1/2
    assert [(r["owner"], r["share"], r["win_rate_on"]) for r in learn] == [("Ann", 0.4, 1.0)]
    assert learn[0]["top_industries"] == [
        {"value": "Healthcare", "deals": 1},
        {"value": "Manufacturing", "deals": 1},
    ]
    assert learn[0]["top_products"] == [{"value": "Data Platform", "deals": 2}]
    assert report(min_deals=3)["learn_from"] == []  # Ann closed only two


def test_patterns_of_open_off_strategy_pipeline():
    patterns = report()["patterns"]
    assert patterns["fit_rule"] == [
        {"value": "wrong-products", "count": 1, "amount": 500.0, "tag": "Off Strategy"},
        {"value": "outside-target-market", "count": 1, "amount": 300.0, "tag": "Off Strategy"},
    ]
    assert [p["value"] for p in patterns["product"]] == [
        "On-Prem License",
        "Professional Services",
        "Support Renewal",
    ]
    assert [(p["value"], p["amount"]) for p in patterns["owner"]] == [
        ("Cat", 500.0),
        ("Ann", 300.0),
    ]


def test_top_lists_and_the_cull_list():
    built = report()
    assert [d["opportunity_id"] for d in built["top_late_stage"]] == ["C1", "A1"]
    assert [d["opportunity_id"] for d in built["top_value"]] == ["C1", "A2", "A1", "A5"]
    assert [d["opportunity_id"] for d in built["cull"]] == ["C1", "A2"]  # approved A5 is not
    assert built["cull_total"] == {"count": 2, "amount": 800.0}
    assert set(built["cull"][0]) >= {"opportunity_id", "name", "owner", "amount", "stage", "fit"}


def test_coaching_lines_use_names():
    built = build_report(
        DEALS,
        Params(today=TODAY),
        [("sandbox", "M", "A", "open", 2), ("sandbox", "M", "A", "queued", 3)],
        {"M": "Margaret Chen", "A": "Ann"},
    )
    assert built["coaching"] == [
        {
            "manager": "Margaret Chen",
            "rep": "Ann",
            "open": 2,
            "queued": 3,
            "completed": 0,
            "closed": 0,
        }
    ]


def test_bad_parameters_are_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="status must be one of"):
        Params(today=TODAY, status="closed")
    with pytest.raises(ValueError, match="before"):
        Params(today=TODAY, start=date(2026, 5, 1), end=date(2026, 4, 1))
