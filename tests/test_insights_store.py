"""The insights over the real store, the shipped rules and the sandbox CRM.

Every figure judges each deal by the live rules on its latest facts: editing the
rules re-scores the history (the baseline too) before anything is re-evaluated, so
a rule change never looks like reps changing. Frozen deals count comp as the CRM
holds it. The CLI and the API give the same numbers.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date

from click.testing import CliRunner
from sqlalchemy import select

from integration.cli.commands import main
from integration.engine.rulebook import read_folder
from integration.jobs.publish import publish_files
from integration.pipeline.processor import Processor
from integration.reports.service import Ask, Insights
from integration.store.judgements import JudgementStore
from integration.store.models import JudgementRow

OWNERS = [
    {"id": "M-1", "name": "Margaret Chen", "email": "m@x.com", "manager_id": "", "team": "East"},
    {"id": "R-1", "name": "=Evil Rep", "email": "e@x.com", "manager_id": "M-1", "team": "East"},
    {"id": "R-2", "name": "Dana Reyes", "email": "d@x.com", "manager_id": "M-1", "team": "East"},
]
ACCOUNTS = [
    {
        "id": "ACC-1",
        "name": "Acme Steel",
        "industry": "Manufacturing",
        "employees": 5000,
        "target_flag": True,
    },
    {
        "id": "ACC-2",
        "name": "Shop Co",
        "industry": "Retail",
        "employees": 5000,
        "target_flag": True,
    },
]


def opp(id, account, owner, amount, stage, close, products=("Data Platform",)):
    probability = {"Proposal": 60, "Prospecting": 10, "Closed Won": 100, "Closed Lost": 0}
    return {
        "id": id,
        "name": f"{id} deal",
        "account_id": account,
        "owner_id": owner,
        "amount": amount,
        "stage": stage,
        "probability": probability[stage],
        "close_date": close,
        "is_closed": stage.startswith("Closed"),
        "is_won": stage == "Closed Won",
        "products": [(p, 1, amount) for p in products],
    }


def seed(runtime, sandbox):
    sandbox.add_owners(OWNERS)
    sandbox.add_accounts(ACCOUNTS)
    sandbox.add_opportunities(
        [
            opp("O1", "ACC-1", "R-1", 100.0, "Proposal", "2027-01-15"),  # on
            opp("O2", "ACC-2", "R-2", 200.0, "Prospecting", "2027-02-15"),  # off: Retail
            opp("O3", "ACC-2", "R-2", 300.0, "Closed Won", "2026-09-15"),  # off, frozen
            opp("O4", "ACC-1", "R-1", 400.0, "Closed Lost", "2026-09-20"),  # on, frozen
        ]
    )
    Processor(sandbox, runtime.rulebook(), runtime.store).process_ids(["O1", "O2", "O3", "O4"])


SUMMER = Ask(
    status="all",
    start=date(2026, 7, 1),
    end=date(2026, 12, 31),
    baseline_from=date(2026, 7, 1),
    baseline_to=date(2026, 9, 30),
)


def widen_the_ideal_client_profile(rules_dir, runtime):
    """Edit the working copy and publish it (an edit alone changes nothing live)."""
    path = rules_dir / "strategy.yaml"
    text = path.read_text()
    assert '["Manufacturing", "Healthcare"]' in text
    path.write_text(
        text.replace('["Manufacturing", "Healthcare"]', '["Manufacturing", "Healthcare", "Retail"]')
    )
    publish_files(runtime, read_folder(rules_dir), who="test")


def test_a_rule_change_re_scores_history_and_baseline_without_re_evaluating(
    runtime, sandbox, rules_dir
):
    seed(runtime, sandbox)
    before = runtime.insights.report(SUMMER)
    assert (before["total"]["deals"], before["total"]["on_strategy"]) == (4, 2)  # O1, O4
    assert before["baseline"]["won_share"] == 0.0  # O3 won off strategy in September
    assert (before["total"]["win_rate_on"], before["total"]["win_rate_off"]) == (0.0, 1.0)
    decided = {s.opportunity_id: s.fit for s in runtime.store.states()}

    widen_the_ideal_client_profile(rules_dir, runtime)
    after = runtime.insights.report(SUMMER)
    assert after["scope"]["live_version"] != before["scope"]["live_version"]
    assert (after["total"]["deals"], after["total"]["on_strategy"]) == (4, 4)
    assert after["baseline"]["won_share"] == 1.0  # the baseline is re-scored too
    assert (after["total"]["win_rate_on"], after["total"]["win_rate_off"]) == (0.5, None)
    assert {s.opportunity_id: s.fit for s in runtime.store.states()} == decided


def test_frozen_deals_count_comp_as_the_crm_holds_it(runtime, sandbox):
    seed(runtime, sandbox)
    # O3 and O4 closed before the freeze (2026-10-01): never written, the CRM holds no flag,
    # although both accounts are target accounts; the open O1 and O2 are comp eligible.
    won = runtime.insights.report(Ask(status="won", start=date(2026, 7, 1)))
    assert (won["total"]["deals"], won["total"]["comp_share"]) == (1, 0.0)
    assert runtime.insights.report(Ask())["total"]["comp_share"] == 1.0


def test_the_cache_keeps_judgements_per_live_version(runtime, sandbox, rules_dir):
    seed(runtime, sandbox)
    runtime.insights.report(Ask())
    key = runtime.insights.judgements.key
    assert len(runtime.insights.judgements.entries) == 4
    widen_the_ideal_client_profile(rules_dir, runtime)
    runtime.insights.report(Ask())
    assert runtime.insights.judgements.key != key


def test_manager_and_rep_views_use_names(runtime, sandbox):
    seed(runtime, sandbox)
    view = runtime.insights.manager_view("Margaret Chen")
    assert view is not None and view["manager_id"] == "M-1"
    assert runtime.insights.manager_view("Nobody") is None
    rep = runtime.insights.rep_view("Dana Reyes")
    assert (rep["owner"], rep["team"]) == ("Dana Reyes", "East")
    assert (rep["rep"]["deals"], rep["rep"]["share"]) == (1, 0.0)
    assert (rep["team_line"]["deals"], rep["team_line"]["share"]) == (2, 0.5)


def test_report_csv_escapes_formulas_and_rounds_shares(runtime, sandbox, settings):
    seed(runtime, sandbox)
    env = {
        "ONSTRATEGY_RULES_DIR": settings.rules_dir,
        "ONSTRATEGY_DATABASE_URL": settings.database_url,
    }
    result = CliRunner(env=env).invoke(main, ["report", "--by", "owner", "--format", "csv"])
    assert result.exit_code == 0, result.output
    rows = {row["group"]: row for row in csv.DictReader(io.StringIO(result.output))}
    assert "'=Evil Rep" in rows and "=Evil Rep" not in rows
    assert rows["Dana Reyes"]["share"] == "0.0" and "-0.0" not in result.output
    for row in rows.values():
        assert all(len(v.split(".")[-1]) <= 4 for k, v in row.items() if "share" in k and v)
    data = json.loads(
        CliRunner(env=env).invoke(main, ["report", "--by", "owner", "--format", "json"]).output
    )
    same = runtime.insights.report(Ask(by="owner"))
    # the CLI's own sandbox (another file) names no manager; everything else is the same
    assert {k: v for k, v in data.items() if k != "coaching"} == {
        k: v for k, v in same.items() if k != "coaching"
    }


def test_report_options_errors_are_one_line(runtime, sandbox, settings):
    env = {
        "ONSTRATEGY_RULES_DIR": settings.rules_dir,
        "ONSTRATEGY_DATABASE_URL": settings.database_url,
    }
    result = CliRunner(env=env).invoke(
        main, ["report", "--from", "2026-05-01", "--to", "2026-04-01"]
    )
    assert result.exit_code == 1
    assert "Error: --to (2026-04-01) is before --from (2026-05-01)" in result.output
    assert "Traceback" not in result.output


def test_weeks_in_which_the_live_ruleset_changed_are_marked(runtime, sandbox, rules_dir):
    seed(runtime, sandbox)
    assert runtime.insights.changed_weeks(runtime.rulebook().version) == frozenset()
    widen_the_ideal_client_profile(rules_dir, runtime)
    Processor(sandbox, runtime.rulebook(), runtime.store).process_ids(["O1", "O2"])
    year, week, _ = runtime.today().isocalendar()
    changed = runtime.insights.changed_weeks(runtime.rulebook().version)
    assert changed == frozenset({f"{year}-W{week:02d}"})


def test_a_new_process_starts_from_the_judgements_the_store_kept(runtime, sandbox, rules_dir):
    seed(runtime, sandbox)
    widen_the_ideal_client_profile(rules_dir, runtime)  # every state row now decided by older rules
    first = runtime.insights.report(SUMMER)
    with runtime.store.session() as session:
        kept = session.scalars(select(JudgementRow)).all()
    assert len(kept) == 4 and {row.rulebook for row in kept} == {
        ":".join(runtime.insights.judgements.key)
    }
    fresh = Insights(runtime.store, runtime.rulebook, runtime.today)
    assert fresh.report(SUMMER)["total"] == first["total"]
    assert fresh.judgements.entries.keys() == runtime.insights.judgements.entries.keys()

    sandbox.set_opportunity("O2", products=[("Support Renewal", 1, 200.0)])  # now off strategy
    Processor(sandbox, runtime.rulebook(), runtime.store).process_ids(["O2"])
    again = Insights(runtime.store, runtime.rulebook, runtime.today).report(SUMMER)
    assert again["total"]["on_strategy"] == first["total"]["on_strategy"] - 1


def test_kept_judgements_are_replaced_not_duplicated(store):
    kept = JudgementStore(store.session)
    kept.save("v1:t1", [(("sandbox", "O1"), ("s1", "On Strategy", "icp", True, False, ("A",)))])
    kept.save("v2:t1", [(("sandbox", "O1"), ("s2", "Off Strategy", "", False, True, ()))])
    assert kept.load("v1:t1") == {}
    assert kept.load("v2:t1") == {("sandbox", "O1"): ("s2", "Off Strategy", "", False, True, ())}
