"""What operators see when things go wrong: store outages, failed-job reasons, metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rq.executions import Execution
from sqlalchemy.exc import IntegrityError, OperationalError

from integration.app.factory import create_app
from integration.jobs.handlers import is_transient
from integration.jobs.queues import make_queue
from integration.jobs.worker import reason_line
from integration.store.database import Store

SQLALCHEMY_TRACEBACK = """Traceback (most recent call last):
  File "x.py", line 1, in run
    session.execute(query)
sqlalchemy.exc.OperationalError: (psycopg.OperationalError) server closed the connection
[SQL: SELECT 1]
(Background on this error at: https://sqlalche.me/e/20/e3q8)
"""


def test_failed_job_reason_is_the_exceptions_own_line():
    assert reason_line(SQLALCHEMY_TRACEBACK) == (
        "sqlalchemy.exc.OperationalError: (psycopg.OperationalError) server closed the connection"
    )
    assert reason_line("Traceback:\n  File x\nValueError: bad") == "ValueError: bad"
    assert reason_line("") == ""


def test_store_outages_are_transient_but_integrity_errors_are_not():
    dropped = OperationalError("SELECT 1", {}, Exception("server closed the connection"))
    assert is_transient(dropped)
    assert not is_transient(IntegrityError("INSERT", {}, Exception("duplicate key")))


def test_metrics_answer_with_the_store_down(runtime):
    app = create_app(runtime=runtime)
    runtime.store = Store("postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=1")
    response = app.test_client().get("/metrics")  # the store went away after start-up
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "onstrategy_store_up 0.0" in text


def test_metrics_show_store_up_and_no_slot_mismatch(runtime):
    text = create_app(runtime=runtime).test_client().get("/metrics").get_data(as_text=True)
    assert "onstrategy_store_up 1.0" in text
    assert "onstrategy_coaching_slot_mismatch_reps 0.0" in text


def test_metrics_show_the_age_of_the_oldest_running_job(runtime, redis_conn):
    """A job whose worker died stays "started" until RQ finds it abandoned: its age shows."""
    app = create_app(runtime=runtime)
    runtime.redis = redis_conn
    queue = make_queue(redis_conn)
    job = queue.enqueue(len, "abc")
    job.started_at = datetime.now(UTC) - timedelta(seconds=90)
    job.save()
    with redis_conn.pipeline() as pipeline:  # as a worker does when it starts the job
        Execution.create(job, 600, pipeline=pipeline, worker_name="gone")
        pipeline.execute()
    text = app.test_client().get("/metrics").get_data(as_text=True)
    line = next(x for x in text.splitlines() if x.startswith("onstrategy_oldest_started_job_"))
    assert 89 <= float(line.split()[-1]) < 120
