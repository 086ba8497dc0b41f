"""Published rule versions in the store: the one live rulebook for every host.

``publish`` adds a row; the newest row is live. Processes poll
:meth:`VersionStore.live_version` (the highest id: one index read) and load the
files of a new publication once. Files are kept as text when they are UTF-8
(readable in the database), else base64.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from integration.engine.rulebook import Files, file_hashes, version_of
from integration.store.models import RuleVersionRow


@dataclass(frozen=True)
class Publication:
    """One row of ``rules history``."""

    id: int
    version: str
    published_by: str
    published_at: datetime
    note: str
    target_list_version: str
    files: tuple[str, ...]


def encode_files(files: Files) -> str:
    encoded = {}
    for name, content in sorted(files.items()):
        try:
            encoded[name] = {"text": content.decode("utf-8")}
        except UnicodeDecodeError:
            encoded[name] = {"base64": base64.b64encode(content).decode("ascii")}
    return json.dumps(encoded)


def decode_files(stored: str) -> Files:
    files: Files = {}
    for name, value in json.loads(stored).items():
        if "text" in value:
            files[name] = value["text"].encode("utf-8")
        else:
            files[name] = base64.b64decode(value["base64"])
    return files


class VersionStore:
    """Reads and writes of ``rule_versions`` (the engine's ``VersionSource``)."""

    def __init__(self, session: sessionmaker[Session]) -> None:
        self.session = session

    def publish(
        self, files: Files, *, who: str, note: str = "", target_list_version: str = ""
    ) -> Publication:
        """Store these files as the new live version (checked by the caller)."""
        row = RuleVersionRow(
            version=version_of(files),
            files=encode_files(files),
            hashes=json.dumps(file_hashes(files)),
            target_list_version=target_list_version,
            published_by=who[:255],
            published_at=datetime.now(UTC),
            note=note,
        )
        with self.session.begin() as session:
            session.add(row)
            session.flush()
        return _publication(row)

    def live_version(self) -> tuple[int, str] | None:
        with self.session() as session:
            newest = select(func.max(RuleVersionRow.id)).scalar_subquery()
            row = session.execute(
                select(RuleVersionRow.id, RuleVersionRow.version).where(RuleVersionRow.id == newest)
            ).first()
            return (row[0], row[1]) if row else None

    def version_files(self, publication_id: int) -> Files:
        with self.session() as session:
            stored = session.scalar(
                select(RuleVersionRow.files).where(RuleVersionRow.id == publication_id)
            )
            return decode_files(stored) if stored else {}

    def history(self, limit: int = 50) -> list[Publication]:
        """Publications, newest first."""
        with self.session() as session:
            rows = session.scalars(
                select(RuleVersionRow).order_by(RuleVersionRow.id.desc()).limit(limit)
            )
            return [_publication(row) for row in rows]

    def find(self, version: str) -> Publication | None:
        """The newest publication of a version: its hash, an unambiguous prefix, or ``#id``."""
        with self.session() as session:
            if version.startswith("#") and version[1:].isdigit():
                row = session.get(RuleVersionRow, int(version[1:]))
                return _publication(row) if row else None
            matching = RuleVersionRow.version.startswith(version, autoescape=True)
            versions = list(
                session.scalars(select(RuleVersionRow.version).where(matching).distinct().limit(2))
            )
            if len(versions) != 1:
                return None
            row = session.scalars(
                select(RuleVersionRow)
                .where(RuleVersionRow.version == versions[0])
                .order_by(RuleVersionRow.id.desc())
                .limit(1)
            ).first()
            return _publication(row) if row else None


def _publication(row: RuleVersionRow) -> Publication:
    return Publication(
        row.id,
        row.version,
        row.published_by,
        row.published_at,
        row.note,
        row.target_list_version,
        tuple(json.loads(row.hashes or "{}")),
    )
