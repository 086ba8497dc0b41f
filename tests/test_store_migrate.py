"""Several processes starting at once migrate the store exactly once, without errors."""

from __future__ import annotations

import subprocess
import sys

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text

from integration.store.database import MIGRATIONS, Store

SCRIPT = "import sys; from integration.store.database import Store; Store(sys.argv[1]).migrate()"


def test_concurrent_start_up_migrates_once(store_url):
    procs = [
        subprocess.Popen([sys.executable, "-c", SCRIPT, store_url], stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors


def test_coaching_migration_trims_long_queues_and_rebuilds_counters(store_url):
    """Queues longer than the default bound (3) lose their least important tasks."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    engine = create_engine(store_url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        rows = [(f"OPP-{i}", "queued", float(i)) for i in range(5)] + [("OPP-9", "open", 0.0)]
        for opp, status, score in rows:
            connection.execute(
                text(
                    "INSERT INTO coaching_tasks (crm, opportunity_id, rule, rep_id, assignee_id,"
                    " task_id, status, subject, body, due_in_days, priority, score, close_date,"
                    " created_at, updated_at, note) VALUES ('sandbox', :opp, 'big', 'U-1', 'U-9',"
                    " '', :status, 's', 'b', 3, 'High', :score, '', :now, :now, '')"
                ),
                {"opp": opp, "status": status, "score": score, "now": "2026-01-01 00:00:00"},
            )
        connection.execute(text("INSERT INTO coaching_slots VALUES ('sandbox', 'U-1', 7)"))
    engine.dispose()
    store = Store(store_url)
    store.migrate()
    by_status = {}
    for row in store.tasks.all_tasks():
        by_status.setdefault(row.status, []).append(row.opportunity_id)
    assert sorted(by_status["queued"]) == ["OPP-2", "OPP-3", "OPP-4"]
    assert sorted(by_status["dropped"]) == ["OPP-0", "OPP-1"]
    assert store.tasks.open_count("sandbox", "U-1") == 1
    assert store.tasks.mismatched() == []
    store.engine.dispose()
