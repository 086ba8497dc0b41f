"""One live version for every process: a publish reaches the app and a real
``onstrategy worker`` process within 10 seconds, and the CRM follows.

The worker is a separate operating-system process (as on another host); it
shares only the store and Redis with the test, which plays the app.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import REDIS_URL

from connectors.base import OpportunityQuery
from connectors.sandbox import SandboxConnector, default_path
from connectors.sandbox_seed import seed
from integration.app.factory import create_app
from integration.cli.commands import main
from integration.engine.rulebook import read_folder
from integration.jobs import handlers as jobs
from integration.jobs.publish import publish_files
from integration.jobs.queues import make_queue
from integration.pipeline.sweep import SweepPlan, run_sweep
from integration.runtime import Runtime
from integration.settings import Settings
from integration.store.database import Store

ROOT = Path(__file__).resolve().parent.parent
SWITCH_BOUND = 10.0  # seconds, the contract's bound
TODAY = date(2026, 11, 26)


@pytest.fixture
def world(tmp_path, rules_dir, redis_conn):
    """A decided sandbox pipeline, the app's runtime, and the environment of the processes."""
    url = f"sqlite:///{tmp_path / 'onstrategy.db'}"
    env = {
        "ONSTRATEGY_RULES_DIR": str(rules_dir),
        "ONSTRATEGY_DATABASE_URL": url,
        "ONSTRATEGY_REDIS_URL": REDIS_URL,
        "ONSTRATEGY_CRM": "sandbox",
    }
    settings = Settings.from_env(env)
    store = Store(url)
    store.migrate()
    sandbox = SandboxConnector(default_path(url))
    seed(sandbox, accounts=40, opportunities=80, today=TODAY)
    setup = Runtime(settings.replace(redis_url=""), store=store, connectors={"sandbox": sandbox})
    run_sweep(setup, "sandbox", SweepPlan("all", OpportunityQuery()), trigger="test")
    app_runtime = Runtime(settings, store=Store(url), redis=redis_conn)
    yield setup, app_runtime, env
    sandbox.close()


@pytest.fixture
def worker_process(world, tmp_path):
    _, _, env = world
    log = open(tmp_path / "worker.log", "w")  # noqa: SIM115 (closed below)
    command = [sys.executable, "-c", "from integration.cli import main; main()", "worker"]
    process = subprocess.Popen(
        command, env={**os.environ, **env}, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
    )
    yield process
    process.terminate()
    process.wait(timeout=30)
    log.close()


def _edit(rules_dir: str) -> None:
    path = Path(rules_dir, "strategy.yaml")
    text = path.read_text()
    assert "confirm with your manager" in text
    path.write_text(text.replace("confirm with your manager", "check with your manager"))


def _within(bound: float, check) -> float:
    """Seconds until ``check()`` holds; fails after ``bound`` seconds."""
    started = time.monotonic()
    while time.monotonic() - started < bound:
        if check():
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"not within {bound} s")


def test_a_publish_reaches_the_app_and_a_worker_process_within_10_seconds(
    world, worker_process, rules_dir
):
    setup, app_runtime, _ = world
    client = create_app(runtime=app_runtime).test_client()
    first = client.get("/readyz").get_json()["live_version"]
    assert first == setup.rulebook().version

    def worker_decides_with(version: str) -> bool:
        make_queue(app_runtime.redis).enqueue(jobs.evaluate_opportunities, "sandbox", ["OPP-00001"])
        time.sleep(0.3)
        latest = setup.store.latest("sandbox", "OPP-00001")
        return (
            latest is not None and latest.trigger == "event" and latest.ruleset_version == version
        )

    _within(30, lambda: worker_decides_with(first))  # the worker is up, on the first version
    _edit(rules_dir)
    assert client.get("/readyz").get_json()["live_version"] == first  # an edit is not live
    publication = publish_files(setup, read_folder(rules_dir), who="test")
    assert publication.version != first
    app_took = _within(SWITCH_BOUND, lambda: _live(client) == publication.version)
    worker_took = _within(SWITCH_BOUND, lambda: worker_decides_with(publication.version))
    assert app_took <= SWITCH_BOUND and worker_took <= SWITCH_BOUND


def _live(client) -> str:
    return client.get("/readyz").get_json()["live_version"]


def test_rules_publish_queues_the_changes_and_the_worker_brings_the_crm_in_step(
    world, worker_process, rules_dir
):
    _, app_runtime, env = world
    _edit(rules_dir)
    runner = CliRunner(env=env)
    preview = runner.invoke(main, ["rules", "preview", "--format", "json"])
    assert preview.exit_code == 0, preview.output
    assert '"changes": [' in preview.output
    result = runner.invoke(main, ["rules", "publish", "--yes", "--note", "lower the bar"])
    assert result.exit_code == 0, result.output
    assert "queued for the workers" in " ".join(result.output.split())
    queue = make_queue(app_runtime.redis)
    _within(60, lambda: queue.count == 0 and queue.started_job_registry.count == 0)

    def in_step() -> bool:
        after = runner.invoke(main, ["rules", "preview", "--format", "json"])
        return after.exit_code == 0 and '"changed": 0,' in after.output

    _within(30, in_step)
    history = runner.invoke(main, ["rules", "history"])
    assert "lower the bar" in history.output
