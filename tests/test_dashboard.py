"""The dashboard's pages through the real app: the same numbers as the report and the API,
filters as links, drill-down, the manager's queue, CRM links and the empty store."""

from __future__ import annotations

import json
import re
from datetime import date

import pytest
from click.testing import CliRunner

from integration.app import charts
from integration.app.factory import create_app
from integration.app.insights_source import Query
from integration.app.present import Presenter
from integration.cli.commands import main

TODAY = date(2026, 11, 18)
OWNERS = [
    {"id": "U-1", "name": "Margaret Chen", "team": "East"},
    {"id": "U-2", "name": "Sean O'Brien", "team": "East", "manager_id": "U-1"},
    {"id": "U-3", "name": "Aisha Bello", "team": "West", "manager_id": "U-1"},
]
ACCOUNTS = [
    {"id": "A-1", "name": "Acme Manufacturing", "industry": "Manufacturing", "employees": 5000},
    {"id": "A-2", "name": "Corner Shop", "industry": "Retail", "employees": 20},
]


def _deal(sandbox, opp_id, owner, account, product, amount, **fields):
    sandbox.add_opportunity(
        opp_id,
        name=f"{opp_id} deal",
        amount=amount,
        owner_id=owner,
        account_id=account,
        products=[product],
        **fields,
    )


@pytest.fixture
def pipeline(runtime, sandbox):
    """Two teams; East has an on-strategy deal and an off-strategy one, West one of each."""
    sandbox.add_owners(OWNERS)
    sandbox.add_accounts(ACCOUNTS)
    _deal(
        sandbox, "OPP-1", "U-2", "A-1", "Data Platform", 300000, stage="Negotiation", probability=80
    )
    _deal(
        sandbox, "OPP-2", "U-2", "A-2", "Support Renewal", 150000, stage="Proposal", probability=60
    )
    _deal(
        sandbox,
        "OPP-3",
        "U-3",
        "A-2",
        "Support Renewal",
        120000,
        stage="Prospecting",
        probability=10,
    )
    _deal(
        sandbox,
        "OPP-4",
        "U-3",
        "A-1",
        "Analytics Cloud",
        50000,
        stage="Qualification",
        probability=20,
    )
    won = dict(stage="Closed Won", probability=100, is_closed=1, is_won=1)
    _deal(
        sandbox, "OPP-5", "U-3", "A-1", "Data Platform", 80000, close_date=str(date.today()), **won
    )
    runtime.processor("sandbox").process_ids(["OPP-1", "OPP-2", "OPP-3", "OPP-4", "OPP-5"])
    return runtime


@pytest.fixture
def client(runtime):
    return create_app(runtime=runtime).test_client()


def _text(response) -> str:
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)))


def test_page_api_and_report_show_the_same_numbers(pipeline, client, settings, monkeypatch):
    api = client.get("/api/report").get_json()
    for name, value in {
        "ONSTRATEGY_RULES_DIR": settings.rules_dir,
        "ONSTRATEGY_DATABASE_URL": settings.database_url,
    }.items():
        monkeypatch.setenv(name, value)
    printed = CliRunner().invoke(main, ["report", "--format", "json"])
    assert printed.exit_code == 0, printed.output
    cli = json.loads(printed.output)
    assert cli["total"] == api["total"] and cli["lines"] == api["lines"]
    assert api["total"]["deals"] == 4 and api["total"]["on_strategy"] == 2
    page = _text(client.get("/dashboard"))
    share = f"{api['total']['share'] * 100:.0f}%"
    assert f"Open pipeline on strategy {share} of deals" in page
    won = client.get("/api/report?status=won").get_json()["total"]
    assert won["deals"] == 1
    assert (
        f"Bookings on strategy this quarter {won['share_by_amount'] * 100:.0f}% of the amount"
        in page
    )
    assert f"{won['deals']} deals, $" in page
    for line in api["lines"]:
        assert re.search(rf"{line['group']} \S* ?{line['deals']} {line['share'] * 100:.0f}%", page)


def test_a_team_filter_is_the_api_asked_the_same(pipeline, client):
    api = client.get("/api/report?team=East&by=owner").get_json()
    assert [line["group"] for line in api["lines"]] == ["Sean O'Brien"]
    page = client.get("/dashboard?team=East")
    text = _text(page)
    assert "By rep" in text and "Sean O&#39;Brien" in page.get_data(as_text=True)
    assert "Aisha Bello" not in text.split("By rep")[1].split("Why open deals")[0]
    assert f"Open pipeline on strategy {api['total']['share'] * 100:.0f}%" in text


def test_filters_are_links_that_keep_the_rest_of_the_view(pipeline, client):
    html = client.get("/dashboard?status=won&team=East").get_data(as_text=True)
    assert 'href="/dashboard?status=won&amp;team=West"' in html
    assert 'href="/dashboard?team=East"' in html  # back to the open pipeline, same team
    assert 'aria-current="page">Won<' in html


def test_drill_down_lists_the_deals_behind_a_figure(pipeline, client):
    text = _text(client.get("/dashboard/deals?team=East&fit=off"))
    assert "OPP-2 deal" in text and "OPP-1 deal" not in text
    assert client.get("/dashboard/deals?fit=maybe").status_code == 400


def test_manager_page_shows_the_queue_by_name(pipeline, client):
    response = client.get("/dashboard/managers/Margaret Chen")
    assert client.get("/dashboard/managers/Nobody").status_code == 404
    text = _text(response)
    assert "Coaching queue of Margaret Chen" in text
    assert "Aisha Bello 1 open, 0 queued" in text and "OPP-3 deal" in text
    assert "Sean O&#39;Brien 1 open, 0 queued" in text and "OPP-2 deal" in text
    assert "U-2" not in text and "U-3" not in text


def test_deals_link_to_their_crm_record(runtime):
    settings = runtime.settings.replace(
        hubspot_portal_id="123456", salesforce_instance_url="https://acme.my.salesforce.com"
    )
    present = Presenter(settings, Query(), TODAY)
    assert present.crm_url("hubspot", "987") == (
        "https://app.hubspot.com/contacts/123456/record/0-3/987"
    )
    assert present.crm_url("salesforce", "006A") == (
        "https://acme.my.salesforce.com/lightning/r/Opportunity/006A/view"
    )
    assert present.crm_url("sandbox", "OPP-1") is None


def test_an_empty_store_says_what_to_do_next(client):
    text = _text(client.get("/dashboard"))
    assert "No deals yet" in text and "onstrategy demo" in text
    assert "0%" not in text


def test_bad_parameters_are_a_clear_400(client):
    response = client.get("/dashboard?status=someday")
    assert response.status_code == 400
    assert "status must be one of" in response.get_data(as_text=True)


def test_charts_have_text_and_table_fallbacks(pipeline, client):
    html = client.get("/dashboard").get_data(as_text=True)
    charts = re.findall(r"<svg class=\"chart[^>]*>", html)
    assert charts and all('role="img"' in svg and "aria-labelledby" in svg for svg in charts)
    assert '<title id="trend-title">' in html and '<desc id="trend-desc">' in html
    assert "<caption>Share on strategy per ISO week</caption>" in html
    minibars = re.findall(r"<svg class=\"minibar[^>]*>", html)
    assert minibars and all('aria-hidden="true"' in svg for svg in minibars)
    signin = create_app(
        settings=pipeline.settings.replace(admin_token="t"), runtime=pipeline
    ).test_client()
    form = signin.get("/signin").get_data(as_text=True)
    assert '<label for="token">' in form and 'id="token"' in form


def test_trend_chart_marks_the_baseline_and_the_weeks_the_rules_changed():
    trend = [
        {"week": "2026-W01", "new_share": 0.2, "won_share": None, "ruleset_changed": False},
        {"week": "2026-W02", "new_share": 0.3, "won_share": 0.5, "ruleset_changed": True},
        {"week": "2026-W03", "new_share": 0.6, "won_share": 0.7, "ruleset_changed": False},
    ]
    baseline = {"from": "2026-01-01", "to": "2026-01-07", "new_share": 0.2, "won_share": None}
    svg = str(charts.trend_chart(trend, baseline))
    assert svg.count('class="rules-mark"') == 1 and "Rules changed in 2026-W02" in svg
    assert svg.count('<rect class="band"') == 1 and svg.count('class="base s-new"') == 1
    assert svg.count('<path class="series s-new"') == 1
    assert svg.count('<circle class="dot s-won"') == 2  # no point for a week with no bookings
    assert "Rules changed in 2026-W02." in svg  # said in the description too
