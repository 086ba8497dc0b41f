"""The ``onstrategy`` command end to end: demo, explain, report, reconcile --dry-run."""

from __future__ import annotations

import csv
import io
import json
import os
import re

import pytest
from click.testing import CliRunner

from connectors.base import OpportunityQuery
from connectors.sandbox import SANDBOX_DB_NAME, SandboxConnector
from integration.cli.commands import main
from integration.store.database import Store


def words(text: str) -> str:
    """Output with rich's line wrapping undone."""
    return " ".join(text.split())


@pytest.fixture
def cli(tmp_path, rules_dir, monkeypatch):
    """Run ``onstrategy`` in a tmp working dir against a tmp SQLite store and sandbox."""
    for name in list(os.environ):
        if name.startswith("ONSTRATEGY_"):
            monkeypatch.delenv(name)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    env = {
        "ONSTRATEGY_RULES_DIR": str(rules_dir),
        "ONSTRATEGY_DATABASE_URL": f"sqlite:///{work / 'onstrategy.db'}",
    }
    runner = CliRunner(env=env)

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.output

    run.env = env
    run.work = work
    return run


def sandbox_rows(work) -> dict[str, dict]:
    sandbox = SandboxConnector(str(work / SANDBOX_DB_NAME))
    try:
        return {r["id"]: r for r in (sandbox.opportunity_fields(o["id"]) for o in _ids(sandbox))}
    finally:
        sandbox.close()


def _ids(sandbox):
    from connectors.base import OpportunityQuery

    return [{"id": r.id} for page in sandbox.iter_opportunities(OpportunityQuery()) for r in page]


def decision_count(env) -> int:
    store = Store(env["ONSTRATEGY_DATABASE_URL"])
    try:
        return sum(1 for _ in store.all_decisions())
    finally:
        store.engine.dispose()


def test_demo_twice(cli):
    first = words(cli("demo"))
    assert "Seeded the sandbox CRM." in first
    share = re.search(r"On Strategy: (\d+)% of deals, (\d+)% of pipeline amount", first)
    assert share and 0 < int(share.group(1)) < 100
    assert re.search(r"Comp eligible \(target accounts\): \d+% of deals", first)
    wrote = re.search(r"This run wrote (\d+) deal\(s\), created (\d+) coaching task\(s\)", first)
    assert wrote and int(wrote.group(1)) > 0 and int(wrote.group(2)) > 0
    assert (cli.work / "onstrategy.db").exists() and (cli.work / SANDBOX_DB_NAME).exists()

    second = words(cli("demo"))
    assert "Seeded" not in second
    assert "This run wrote 0 deal(s), created 0 coaching task(s)" in second
    assert f"On Strategy: {share.group(1)}% of deals" in second


def test_explain_shows_fit_and_history(cli):
    cli("demo")
    output = words(cli("explain", "sandbox", "OPP-00001"))
    assert "Latest decision" in output
    assert re.search(r"Fit: (On Strategy|Off Strategy|Off Strategy \(Approved\)) - ", output)
    assert "Ruleset version" in output
    assert "History" in output and "demo" in output
    missing = cli("explain", "sandbox", "OPP-99999", code=1)
    assert "no decision recorded for sandbox OPP-99999" in missing


def test_report_json_and_csv(cli):
    cli("demo")
    data = json.loads(cli("report", "--status", "all", "--from", "2000-01-01", "--format", "json"))
    total = data["total"]
    assert total["group"] == "All" and total["deals"] == 600
    assert 0 < total["share"] < 1 and 0 <= total["comp_share"] <= 1
    assert sum(line["deals"] for line in data["lines"]) == 600
    assert data["scope"]["status"] == "all" and data["baseline"] is not None
    assert {line["group"] for line in data["lines"]} == {
        "Enterprise East",
        "Enterprise West",
        "Mid-Market",
    }
    open_now = json.loads(cli("report", "--by", "owner", "--format", "json"))
    assert 0 < open_now["total"]["deals"] < 600 and open_now["scope"]["by"] == "owner"

    rows = list(csv.DictReader(io.StringIO(cli("report", "--format", "csv"))))
    assert rows[0].keys() >= {"group", "deals", "on_strategy", "share", "win_rate_on"}
    assert rows[-1]["group"] == "All" and rows[-1]["deals"] == str(open_now["total"]["deals"])


def test_reconcile_dry_run_writes_nothing(cli, rules_dir):
    cli("demo")
    path = rules_dir / "strategy.yaml"
    path.write_text(
        path.read_text().replace("account.employees >= 1000", "account.employees >= 200")
    )
    unpublished = words(cli("reconcile", "--crm", "sandbox", "--dry-run"))
    assert "0 would change" in unpublished  # editing the folder changes nothing live
    _drift_open_deals(cli.work, 5)
    before_rows = sandbox_rows(cli.work)
    before_count = decision_count(cli.env)
    output = words(cli("reconcile", "--crm", "sandbox", "--dry-run"))
    planned = re.search(
        r"Dry run: (\d+) evaluated, (\d+) would change; nothing was written", output
    )
    assert planned and int(planned.group(2)) > 0
    assert "Planned changes" in output
    assert sandbox_rows(cli.work) == before_rows
    assert decision_count(cli.env) == before_count

    applied = words(cli("reconcile", "--crm", "sandbox"))
    assert re.search(rf"\d+ evaluated, {planned.group(2)} changed, 0 failed", applied)
    assert sandbox_rows(cli.work) != before_rows


def _drift_open_deals(work, count: int) -> None:
    """Someone overwrote the fit field of a few open deals in the CRM."""
    sandbox = SandboxConnector(str(work / SANDBOX_DB_NAME))
    try:
        query = OpportunityQuery(open_only=True)
        open_ids = [r.id for page in sandbox.iter_opportunities(query) for r in page]
        for opp_id in open_ids[:count]:
            sandbox.set_opportunity(opp_id, fit="Overwritten by hand")
    finally:
        sandbox.close()


def test_rules_check_uses_the_rules_dir_setting(cli):
    assert "valid" in cli("rules", "check")


def test_a_wrong_setting_stops_with_a_line_naming_it(cli, monkeypatch):
    monkeypatch.setenv("ONSTRATEGY_CRM", "hubspto")
    result = CliRunner(env={**cli.env, "ONSTRATEGY_CRM": "hubspto"}).invoke(main, ["report"])
    assert result.exit_code == 1
    assert "ONSTRATEGY_CRM must be one of hubspot, salesforce, sandbox; got 'hubspto'" in (
        result.output
    )
    assert "Traceback" not in result.output


def test_invalid_rules_stop_reconcile(cli, rules_dir):
    (rules_dir / "strategy.yaml").write_text("strategy: [\n")
    output = cli("reconcile", "--crm", "sandbox", code=1)
    assert "not valid YAML" in output
    assert "Traceback" not in output
