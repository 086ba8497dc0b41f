"""Shared fixtures: real Redis, real PostgreSQL (own schema), SQLite, sandbox CRM, rules copy.

Nothing of our own is mocked: the store is a real database, the CRM is the embedded
sandbox, and the rules are a copy of the shipped ``rules/`` folder that a test may edit.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from redis import Redis, RedisError
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from connectors.sandbox import SandboxConnector
from integration.jobs.context import bound
from integration.runtime import Runtime
from integration.settings import Settings
from integration.store.database import Store

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_RULES = ROOT / "rules"

REDIS_URL = os.environ.get("ONSTRATEGY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
POSTGRES_URL = os.environ.get(
    "ONSTRATEGY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
#: Under CI a test server that does not answer is a failure, never a quiet skip.
IN_CI = os.environ.get("CI", "").lower() == "true"

#: A test that uses one of these fixtures (directly or through another) carries the
#: marker, so ``-m redis`` and ``-m postgres`` select exactly the tests that use them.
MARKER_BY_FIXTURE = {"redis_conn": "redis", "postgres_url": "postgres"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("store_url") == "postgres":
            used.add("postgres_url")  # requested at set-up time, not by name
        for fixture, marker in MARKER_BY_FIXTURE.items():
            if fixture in used:
                item.add_marker(marker)


@pytest.fixture(autouse=True)
def _no_settings_from_the_shell(monkeypatch):
    """Tests and the processes they start see only the settings they set themselves.

    A developer's own ``ONSTRATEGY_REDIS_URL`` or database URL must never be written to.
    """
    for name in list(os.environ):
        if name.startswith("ONSTRATEGY_") and not name.startswith("ONSTRATEGY_TEST_"):
            monkeypatch.delenv(name)


@pytest.fixture
def redis_conn():
    """The Redis database named by ONSTRATEGY_TEST_REDIS_URL: empty at the start, flushed after.

    A database that already holds keys is someone's data, not ours to flush: the test
    fails and says so. Unreachable is a failure too (``.ci/run`` starts a Redis).
    """
    conn = Redis.from_url(REDIS_URL, socket_timeout=5, socket_connect_timeout=3)
    try:
        keys = conn.dbsize()
    except RedisError as exc:
        conn.close()
        pytest.fail(
            f"Redis not reachable at {REDIS_URL}: {exc} "
            "(start Redis, or point ONSTRATEGY_TEST_REDIS_URL at one)",
            pytrace=False,
        )
    if keys:
        conn.close()
        pytest.fail(
            f"Redis database {REDIS_URL} holds {keys} keys; the tests flush the database "
            "they use, so they need an empty one: point ONSTRATEGY_TEST_REDIS_URL at an "
            "unused database number (or empty this one yourself if it is only for tests)",
            pytrace=False,
        )
    yield conn
    conn.flushdb()
    conn.close()


@pytest.fixture
def redis_url(redis_conn) -> str:
    """The URL of the test Redis, for settings and worker processes (empty, flushed after)."""
    return REDIS_URL


@pytest.fixture
def postgres_url():
    """A SQLAlchemy URL whose connections use a fresh schema, dropped afterwards.

    The ``test`` database's public tables are never touched: every connection
    gets ``-csearch_path=onstrategy_test_<random>``. Unreachable: skipped with the
    reason, except under CI (``CI=true``), where it fails.
    """
    schema = f"onstrategy_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except SQLAlchemyError as exc:
        admin.dispose()
        reason = f"PostgreSQL not reachable at {POSTGRES_URL}: {str(exc).splitlines()[0]}"
        if IN_CI:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    separator = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{separator}options={quote(f'-csearch_path={schema}')}"
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request, tmp_path):
    """The URL of an empty database: a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def store(store_url):
    """A migrated store on SQLite and on PostgreSQL."""
    made = Store(store_url)
    made.migrate()
    yield made
    made.engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'onstrategy.db'}"


@pytest.fixture
def sqlite_store(sqlite_url):
    made = Store(sqlite_url)
    made.migrate()
    yield made
    made.engine.dispose()


@pytest.fixture
def sandbox():
    connector = SandboxConnector(":memory:")
    yield connector
    connector.close()


@pytest.fixture
def rules_dir(tmp_path):
    """A copy of the shipped rules folder that the test may edit."""
    target = tmp_path / "rules"
    shutil.copytree(SHIPPED_RULES, target)
    return target


@pytest.fixture
def settings(rules_dir, sqlite_url):
    return Settings.from_env(
        {"ONSTRATEGY_RULES_DIR": str(rules_dir), "ONSTRATEGY_DATABASE_URL": sqlite_url}
    )


@pytest.fixture
def runtime(settings, sqlite_store, sandbox):
    made = Runtime(settings, store=sqlite_store, connectors={"sandbox": sandbox})
    yield made


@pytest.fixture
def bind():
    """Bind a runtime for job functions a test calls directly, as a worker binds its own."""
    opened = []

    def _bind(runtime):
        context = bound(runtime)
        context.__enter__()
        opened.append(context)

    yield _bind
    for context in reversed(opened):
        context.__exit__(None, None, None)
