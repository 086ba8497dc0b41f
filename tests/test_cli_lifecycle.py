"""The admin's day on the command line, and expected errors as one line, never a traceback."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from test_cli import words

from connectors.base import OpportunityQuery
from connectors.sandbox import SandboxConnector
from integration.cli.commands import main
from integration.cli.common import EXAMPLE_RULES
from integration.engine.rulebook import read_folder
from integration.store.database import Store

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def admin(tmp_path, rules_dir, monkeypatch):
    """``onstrategy`` in a clean environment: a tmp store, the sandbox, a rules copy."""
    for name in list(os.environ):
        if name.startswith("ONSTRATEGY_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    env = {
        "ONSTRATEGY_RULES_DIR": str(rules_dir),
        "ONSTRATEGY_DATABASE_URL": f"sqlite:///{tmp_path / 'onstrategy.db'}",
        "ONSTRATEGY_PUBLISHER": "dana",
    }

    def run(*args: str, code: int = 0, extra: dict | None = None) -> str:
        result = CliRunner(env={**env, **(extra or {})}).invoke(main, list(args))
        assert result.exit_code == code, result.output
        assert "Traceback" not in result.output
        return result.stdout if code == 0 else result.output  # errors are on stderr

    run("demo", "--deals", "120")
    return run


def _edit(rules_dir: Path, old: str, new: str) -> None:
    path = rules_dir / "strategy.yaml"
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new))


def test_preview_publish_history_rollback(admin, rules_dir, tmp_path):
    first = json.loads(admin("rules", "preview", "--format", "json"))
    assert first["changes"] == [] and first["live_version"] == first["draft_version"]
    _edit(rules_dir, "confirm with your manager", "check with your manager")
    preview = json.loads(admin("rules", "preview", "--format", "json"))
    assert preview["live_version"] == first["live_version"] != preview["draft_version"]
    assert preview["opportunities"] == 120 and preview["changes"]
    change = preview["changes"][0]
    assert set(change) >= {"crm", "opportunity_id", "owner", "fields"}
    assert "check with your manager" in change["fields"]["warning"][1]  # full values, not cut
    rows = list(csv.DictReader(io.StringIO(admin("rules", "preview", "--format", "csv"))))
    assert len(rows) == len(preview["changes"]) and rows[0]["field"] == "warning"
    table = words(admin("rules", "preview", "--out", str(tmp_path / "all.csv")))
    assert table.index("On-strategy share") < table.index("Details written to")
    assert (tmp_path / "all.csv").read_text().count("\n") == len(rows) + 1

    published = words(admin("rules", "publish", "--yes", "--note", "kinder wording"))
    assert f"Version {preview['draft_version']} is live" in published
    assert json.loads(admin("rules", "preview", "--format", "json"))["changes"] == []
    history = admin("rules", "history")
    assert history.index(preview["draft_version"]) < history.index(first["live_version"])
    assert "kinder wording" in history and "by dana" in history

    rolled = words(admin("rules", "rollback", first["live_version"][:6], "--yes"))
    assert f"Version {first['live_version']} is live" in rolled
    assert "rollback to" in admin("rules", "history").splitlines()[1]


def test_publish_refuses_a_failing_check_or_test_and_keeps_the_live_version(admin, rules_dir):
    live = json.loads(admin("rules", "preview", "--format", "json"))["live_version"]
    _edit(
        rules_dir, 'when: fit == "Off Strategy" && segment.late_stage', 'when: fit == "Of Strategy"'
    )
    output = admin("rules", "publish", "--yes", code=1)
    assert "strategy.yaml:" in output and 'did you mean "Off Strategy"' in output
    _edit(rules_dir, 'when: fit == "Of Strategy"', 'when: fit == "Off Strategy"')
    output = admin("rules", "publish", "--yes", code=1)
    assert "FAIL " in output and "nothing was published" in output
    assert admin("rules", "history").count("#") == 1
    assert (
        json.loads(admin("rules", "preview", "--format", "json", code=1 - 1))["live_version"]
        == live
    )


def test_expected_errors_are_one_line(admin):
    assert "Usage:" in admin("reconcile", "--crm", "sandbox", "--since", "yesterday", code=2)
    line = admin("reconcile", "--crm", "hubspot", code=1).strip()
    assert line == (
        "Error: ONSTRATEGY_HUBSPOT_ACCESS_TOKEN is not set; HubSpot needs a private-app token"
    )
    down = {"ONSTRATEGY_REDIS_URL": "redis://127.0.0.1:1/0"}
    assert admin("jobs", "failed", code=1, extra=down).startswith("Error: Redis cannot be reached")
    assert admin("rules", "rollback", "nope", code=1).count("\n") == 1
    assert "onstrategy, version" in admin("--version")


def test_requeue_of_an_unknown_job_is_one_line(admin, redis_conn):
    from conftest import REDIS_URL

    output = admin("jobs", "requeue", "bad-id", code=1, extra={"ONSTRATEGY_REDIS_URL": REDIS_URL})
    assert output.strip().count("\n") == 0 and "bad-id" in output


def test_demo_runs_from_any_folder_with_the_rules_shipped_in_the_package(tmp_path):
    assert read_folder(EXAMPLE_RULES) == read_folder(ROOT / "rules")  # the same example
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONSTRATEGY_")}
    command = [sys.executable, "-c", "from integration.cli import main; main()", "demo"]
    result = subprocess.run(
        [*command, "--deals", "60"], cwd=elsewhere, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "On Strategy" in result.stdout
    assert sorted(p.name for p in elsewhere.iterdir() if not p.name.endswith("-lock")) == [
        "onstrategy-sandbox.db",
        "onstrategy.db",
    ]


def test_store_prune_keeps_each_opportunitys_newest_decision(admin, tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'onstrategy.db'}")
    admin("reconcile", "--crm", "sandbox")  # open deals get a second decision
    with store.engine.begin() as connection:
        total = connection.execute(text("SELECT count(*) FROM decisions")).scalar()
        deals = connection.execute(
            text("SELECT count(DISTINCT opportunity_id) FROM decisions")
        ).scalar()
        connection.execute(text("UPDATE decisions SET decided_at = '2020-01-01 00:00:00'"))
        connection.execute(text("UPDATE writes SET at = '2020-01-01 00:00:00'"))
    assert total > deals
    output = admin("store", "prune")
    assert f"removed {total - deals:,} decisions" in words(output)
    with store.engine.connect() as connection:
        left = connection.execute(text("SELECT count(*) FROM decisions")).scalar()
    assert left == deals
    assert "removed 0 decisions" in words(admin("store", "prune", "--days", "3650"))
    store.engine.dispose()


def test_targets_sync_publishes_a_changed_list_first_and_names_unknown_ids(admin, rules_dir):
    live = json.loads(admin("rules", "preview", "--format", "json"))["live_version"]
    with open(rules_dir / "target_accounts.csv", "a", encoding="utf-8") as handle:
        handle.write("sandbox,ACC-0002,\nsandbox,ACC-99999,Typo Inc\n")
    dry = words(admin("targets", "sync", "--crm", "sandbox", "--dry-run"))
    assert "1 target account id(s) match no known account: sandbox:ACC-99999" in dry
    assert "a real run publishes it first" in dry
    assert admin("rules", "history").count("#") == 1  # a dry run publishes nothing
    done = words(admin("targets", "sync", "--crm", "sandbox"))
    assert "only the target list changed" in done
    history = admin("rules", "history")
    assert history.count("#") == 2 and "target list from target_accounts.csv" in history
    after = json.loads(admin("rules", "preview", "--format", "json"))
    assert after["live_version"] != live and after["changes"] == []


def test_preview_fresh_reads_a_change_made_in_the_crm_since_the_state_was_recorded(admin, tmp_path):
    crm = SandboxConnector(str(tmp_path / "onstrategy-sandbox.db"))
    pages = crm.iter_opportunities(OpportunityQuery(open_only=True, page_size=2000))
    deal = next(r for page in pages for r in page if r.current.get("fit") == "Off Strategy").id
    crm.set_opportunity(deal, exception_reason="Opens doors at two target accounts")
    crm.close()

    stored = json.loads(admin("rules", "preview", "--format", "json"))
    assert stored["changes"] == []  # the store still holds the facts as last read
    fresh = json.loads(admin("rules", "preview", "--fresh", "--format", "json"))
    [change] = fresh["changes"]
    assert change["opportunity_id"] == deal
    assert change["fields"]["fit"] == ["Off Strategy", "Off Strategy (Approved)"]
    assert fresh["live_version"] == fresh["draft_version"]  # only the CRM changed
