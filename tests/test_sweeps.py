"""Target-list sync and reconcile sweeps on the sandbox CRM.

A list change reaches exactly the opportunities of the accounts whose membership
changed, frozen deals never move, dry runs write nothing, an interrupted sweep
resumes where it stopped, a second run writes nothing, and with Redis a changed
list file queues the sync by itself.
"""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import text

from connectors.base import OpportunityQuery, TransientError
from connectors.sandbox import SandboxConnector
from connectors.sandbox_seed import seed
from integration.engine.rulebook import read_folder
from integration.jobs import handlers as jobs
from integration.jobs.handlers import listen_for_target_changes
from integration.jobs.publish import publish_files
from integration.jobs.queues import make_queue
from integration.jobs.schedule import JOB_ID, PRUNE_JOB_IDS, schedule_periodic, schedule_reconcile
from integration.jobs.worker import Worker
from integration.pipeline.sweep import SweepPlan, reconcile_plan, run_sweep, sync_targets
from integration.runtime import Runtime
from integration.settings import Settings

TODAY = date(2026, 11, 26)


@pytest.fixture
def seeded(bind, runtime, sandbox):
    seed(sandbox, accounts=80, opportunities=200, today=TODAY)
    runtime.today = lambda: TODAY
    bind(runtime)
    return runtime, sandbox


@pytest.fixture
def redis_world(tmp_path, rules_dir, sqlite_store, redis_conn, redis_url):
    """Make a runtime on real Redis with a seeded sandbox CRM; keywords name more settings
    (``CRM="sandbox"`` for ``ONSTRATEGY_CRM``)."""

    def make(
        sandbox: SandboxConnector | None = None,
        accounts: int = 80,
        opportunities: int = 200,
        **settings: str,
    ) -> tuple[Runtime, SandboxConnector]:
        env = {
            "ONSTRATEGY_RULES_DIR": str(rules_dir),
            "ONSTRATEGY_REDIS_URL": redis_url,
            "ONSTRATEGY_DATABASE_URL": sqlite_store.url,
            **{f"ONSTRATEGY_{name}": value for name, value in settings.items()},
        }
        crm = sandbox or SandboxConnector(str(tmp_path / "crm.db"))
        if opportunities:
            seed(crm, accounts=accounts, opportunities=opportunities, today=TODAY)
        made = Runtime(
            Settings.from_env(env),
            store=sqlite_store,
            redis=redis_conn,
            connectors={"sandbox": crm},
        )
        return made, crm

    return make


def _all(sandbox: SandboxConnector) -> list:
    return [r for page in sandbox.iter_opportunities(OpportunityQuery()) for r in page]


def _add_to_target_csv(rules_dir, account_id: str) -> None:
    with open(rules_dir / "target_accounts.csv", "a", encoding="utf-8") as handle:
        handle.write(f"sandbox,{account_id},\n")


def _publish(runtime: Runtime, rules_dir) -> None:
    """The admin publishes the edited folder (editing alone changes nothing live)."""
    publish_files(runtime, read_folder(rules_dir), who="test")


def _off_list_account(runtime: Runtime, sandbox: SandboxConnector) -> str:
    """An account not on the list that has an open, unfrozen opportunity."""
    targets = runtime.rulebook().targets
    for record in _all(sandbox):
        account = record.facts.account
        listed = account.crm_target_flag or targets.in_file("sandbox", account.id)
        if account.id and not listed and not record.facts.opportunity.is_closed:
            return account.id
    raise AssertionError("the seed has no such account")


def test_list_change_reaches_exactly_the_affected_opportunities(seeded, rules_dir):
    runtime, sandbox = seeded
    sync_targets(runtime, "sandbox")  # first sync: every open opportunity
    account = _off_list_account(runtime, sandbox)
    mine = {
        r.id
        for r in _all(sandbox)
        if r.facts.account.id == account and not r.facts.opportunity.is_closed
    }
    _add_to_target_csv(rules_dir, account)
    before = {r.id: dict(r.current) for r in _all(sandbox)}
    assert sync_targets(runtime, "sandbox") == ([], None)  # not published: nothing changed
    _publish(runtime, rules_dir)
    accounts, outcome = sync_targets(runtime, "sandbox")
    assert accounts == [account]
    assert outcome.evaluated == len(mine)
    after = {r.id: r.current for r in _all(sandbox)}
    changed = {opp for opp in after if after[opp] != before[opp]}
    assert changed == mine
    assert all(after[opp]["comp_eligible"] in (True, 1) for opp in mine)
    again, nothing = sync_targets(runtime, "sandbox")
    assert again == [] and nothing is None


def test_frozen_deals_never_move(seeded, rules_dir):
    runtime, sandbox = seeded
    freeze = runtime.rulebook().ruleset.freeze_closed_before
    frozen = [
        r
        for r in _all(sandbox)
        if r.facts.opportunity.is_closed and r.facts.opportunity.close_date < freeze.isoformat()
    ]
    assert frozen
    before = {r.id: sandbox.opportunity_fields(r.id) for r in frozen}
    for record in frozen:
        _add_to_target_csv(rules_dir, record.facts.account.id)
    _publish(runtime, rules_dir)
    assert runtime.rulebook().targets.in_file("sandbox", frozen[0].facts.account.id)
    run_sweep(runtime, "sandbox", SweepPlan("all", OpportunityQuery()))
    sync_targets(runtime, "sandbox")
    assert {r.id: sandbox.opportunity_fields(r.id) for r in frozen} == before


def test_dry_run_writes_nothing_and_shows_the_plan(seeded):
    runtime, sandbox = seeded
    before = {r.id: r.current for r in _all(sandbox)}
    outcome = run_sweep(runtime, "sandbox", reconcile_plan(runtime.rulebook(), None), dry_run=True)
    assert outcome.planned and outcome.evaluated
    assert {r.id: r.current for r in _all(sandbox)} == before
    assert sandbox.tasks() == []
    assert next(iter(runtime.store.latest_decisions()), None) is None


class _Interrupted(SandboxConnector):
    """The sandbox CRM going away after some pages: a stand-in at the CRM boundary."""

    def __init__(self, path: str, pages: int) -> None:
        super().__init__(path)
        self.pages = pages

    def iter_opportunities(self, query):
        for page in super().iter_opportunities(query):
            if self.pages == 0:
                raise TransientError("sandbox", 503, body="gone")
            self.pages -= 1
            yield page


def test_interrupted_sweep_resumes_where_it_stopped(tmp_path, sqlite_store, settings):
    path = str(tmp_path / "crm.db")
    sandbox = _Interrupted(path, pages=1)
    seed(sandbox, accounts=80, opportunities=200, today=TODAY)
    runtime = Runtime(settings, store=sqlite_store, connectors={"sandbox": sandbox})
    plan = SweepPlan("resume", OpportunityQuery(page_size=50))
    with pytest.raises(TransientError):
        run_sweep(runtime, "sandbox", plan)
    done = sum(1 for _ in sqlite_store.latest_decisions())
    assert done == 50
    sandbox.pages = 99
    outcome = run_sweep(runtime, "sandbox", plan)
    assert outcome.evaluated == 150  # the first 50 are not evaluated again
    assert sum(1 for _ in sqlite_store.all_decisions()) == 200


def test_second_reconcile_writes_nothing(seeded):
    runtime, sandbox = seeded
    run_sweep(runtime, "sandbox", reconcile_plan(runtime.rulebook(), None))
    writes = sandbox.api_calls["update_opportunities"]
    outcome = run_sweep(runtime, "sandbox", reconcile_plan(runtime.rulebook(), None))
    assert outcome.changed == 0
    assert sandbox.api_calls["update_opportunities"] == writes


def test_changed_list_file_queues_the_sync_by_itself(
    bind, redis_world, rules_dir, sqlite_store, redis_conn
):
    runtime, sandbox = redis_world(accounts=80, opportunities=200, CRM="sandbox")
    bind(runtime)
    listen_for_target_changes(runtime)  # as the worker and the app do at start-up
    sync_targets(runtime, "sandbox")
    account = _off_list_account(runtime, sandbox)
    _add_to_target_csv(rules_dir, account)
    runtime.rules.refresh()
    assert make_queue(redis_conn).count == 0  # an edited folder is not live
    other = Runtime(
        runtime.settings, store=sqlite_store, redis=redis_conn, connectors={"sandbox": sandbox}
    )
    _publish(other, rules_dir)  # published from another process
    runtime.rules.refresh()  # any process noticing the new version queues the sync
    queue = make_queue(redis_conn)
    assert queue.count == 1
    Worker(runtime).work(burst=True)
    opps = [
        r
        for r in _all(sandbox)
        if r.facts.account.id == account and not r.facts.opportunity.is_closed
    ]
    assert opps and all(r.current["comp_eligible"] in (True, 1) for r in opps)


def test_scheduled_reconcile_is_scheduled_once(redis_world, redis_conn):
    runtime, _ = redis_world(opportunities=0, RECONCILE_INTERVAL_MINUTES="15")
    assert schedule_reconcile(runtime) is True
    assert schedule_reconcile(runtime) is False  # a second worker adds nothing
    assert make_queue(redis_conn).scheduled_job_registry.get_job_ids() == [JOB_ID]


def test_a_worker_starting_after_a_sweep_ran_starts_no_second_chain(redis_world, redis_conn):
    """The sweep reschedules itself; a worker (re)starting later must find that chain."""
    runtime, _ = redis_world(accounts=10, opportunities=20, RECONCILE_INTERVAL_MINUTES="15")
    queue = make_queue(redis_conn)
    for _ in range(2):  # two sweeps in a row, each due in turn, run by a real worker
        first_start = queue.scheduled_job_registry.count == 0
        assert schedule_reconcile(runtime) is first_start
        [due] = queue.scheduled_job_registry.get_job_ids()
        queue.scheduled_job_registry.remove(due)
        queue.enqueue_job(queue.fetch_job(due))
        Worker(runtime).work(burst=True)
        assert queue.fetch_job(due).is_finished
        assert schedule_reconcile(runtime) is False  # a worker restarting adds nothing
        assert len(queue.scheduled_job_registry.get_job_ids()) == 1


def test_workers_prune_history_on_schedule_when_asked_and_keep_one_chain(
    redis_world, sqlite_store, redis_conn
):
    runtime, _ = redis_world(
        accounts=10, opportunities=20, PRUNE_INTERVAL_HOURS="24", RETENTION_DAYS="30"
    )
    for _ in range(2):  # every open deal decided twice
        run_sweep(runtime, "sandbox", reconcile_plan(runtime.rulebook(), None))
    with sqlite_store.engine.begin() as connection:
        connection.execute(text("UPDATE decisions SET decided_at = '2020-01-01 00:00:00'"))
        deals = connection.execute(
            text("SELECT count(DISTINCT opportunity_id) FROM decisions")
        ).scalar()
    queue = make_queue(redis_conn)
    assert schedule_periodic(runtime) == [JOB_ID, PRUNE_JOB_IDS[0]]
    assert schedule_periodic(runtime) == []  # a second worker adds nothing
    queue.scheduled_job_registry.remove(PRUNE_JOB_IDS[0])
    queue.enqueue_job(queue.fetch_job(PRUNE_JOB_IDS[0]))
    Worker(runtime).work(burst=True)
    with sqlite_store.engine.connect() as connection:
        left = connection.execute(text("SELECT count(*) FROM decisions")).scalar()
    assert left == deals  # each deal keeps its newest decision, the rest is gone
    assert set(queue.scheduled_job_registry.get_job_ids()) == {JOB_ID, PRUNE_JOB_IDS[1]}
    assert schedule_periodic(runtime) == []


def test_pruning_is_off_unless_asked_for(redis_world):
    runtime, _ = redis_world(opportunities=0)
    assert runtime.settings.prune_interval_hours == 0
    assert schedule_periodic(runtime) == [JOB_ID]  # the reconcile sweep only


def test_scheduled_reconcile_sweeps_changes_since_the_last_one_and_schedules_the_next(
    bind, redis_world, sqlite_store, redis_conn
):
    from integration.jobs.schedule import scheduled_reconcile

    runtime, sandbox = redis_world(accounts=80, opportunities=200, RECONCILE_INTERVAL_MINUTES="15")
    bind(runtime)
    first = scheduled_reconcile()
    assert first["sandbox"] > 0  # no watermark yet: every open opportunity
    assert sqlite_store.watermark("sandbox", "reconciled-at")
    assert make_queue(redis_conn).scheduled_job_registry.count == 1
    # The next sweeps re-read what the first one wrote (a rep may have edited those deals
    # during the sweep too; the lookback reads the last minutes again) and write nothing.
    second = scheduled_reconcile()["sandbox"]
    assert second > 0
    sandbox.set_opportunity("OPP-00001", amount=123456)
    writes = len(sqlite_store.history("sandbox", "OPP-00001"))
    assert scheduled_reconcile()["sandbox"] >= 1
    assert len(sqlite_store.history("sandbox", "OPP-00001")) == writes + 1  # the change is read


def test_transient_failure_of_a_target_sync_is_retried_with_the_same_arguments(
    bind, redis_world, tmp_path, redis_conn
):
    runtime, sandbox = redis_world(
        sandbox=_Interrupted(str(tmp_path / "crm.db"), pages=0),
        accounts=80,
        opportunities=200,
        CRM="sandbox",
    )
    bind(runtime)
    assert jobs.sync_targets("sandbox")["retry"] == 2
    registry = make_queue(redis_conn).scheduled_job_registry
    [job_id] = registry.get_job_ids()
    retry = make_queue(redis_conn).fetch_job(job_id)
    assert (retry.args, retry.kwargs) == (("sandbox",), {"attempt": 2})
    sandbox.pages = 99  # the CRM is back
    assert retry.func(*retry.args, **retry.kwargs)["evaluated"] > 0
