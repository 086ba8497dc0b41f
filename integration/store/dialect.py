"""The INSERT of the store's database dialect, for ``ON CONFLICT`` clauses.

PostgreSQL in production, SQLite embedded: both speak ``INSERT ... ON CONFLICT``,
but SQLAlchemy builds it from each dialect's own ``insert``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

INSERTS = {"postgresql": postgresql_insert, "sqlite": sqlite_insert}


def insert_for(session: Any, target: Any) -> Any:
    """``insert(target)`` in the dialect of the database ``session`` is bound to."""
    return INSERTS[session.get_bind().dialect.name](target)
