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

from connectors.sandbox import SandboxConnector
from integration.jobs.context import bound
from integration.settings import Settings
from integration.store.database import Store

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_RULES = ROOT / "rules"

REDIS_URL = os.environ.get("ONSTRATEGY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
POSTGRES_URL = os.environ.get(
    "ONSTRATEGY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture
def redis_conn():
    """A real Redis, flushed before and after; unreachable is a failure (CI starts one)."""
    from redis import Redis

    conn = Redis.from_url(REDIS_URL, socket_timeout=5, socket_connect_timeout=3)
    try:
        conn.ping()
    except Exception as exc:
        if os.environ.get("ONSTRATEGY_TEST_ALLOW_NO_REDIS") == "1":
            pytest.skip(f"Redis not reachable at {REDIS_URL}: {exc}")
        pytest.fail(
            f"Redis not reachable at {REDIS_URL}: {exc} (start Redis, set "
            "ONSTRATEGY_TEST_REDIS_URL, or ONSTRATEGY_TEST_ALLOW_NO_REDIS=1 to skip)",
            pytrace=False,
        )
    conn.flushdb()
    yield conn
    conn.flushdb()
    conn.close()


@pytest.fixture
def postgres_url():
    """A SQLAlchemy URL whose connections use a fresh schema, dropped afterwards.

    The ``test`` database's public tables are never touched: every connection
    gets ``-csearch_path=onstrategy_test_<random>``.
    """
    from sqlalchemy import create_engine, text

    schema = f"onstrategy_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:
        admin.dispose()
        reason = str(exc).splitlines()[0]
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {reason}")
    separator = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{separator}options={quote(f'-csearch_path={schema}')}"
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
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
    from integration.runtime import Runtime

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
