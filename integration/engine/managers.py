"""Who manages whom: the managers file, falling back to the CRM.

Coaching tasks go to the rep's manager. HubSpot owners have no manager, so the
file is how HubSpot learns it; for Salesforce the file wins over
``User.ManagerId``. ``rep`` and ``manager`` may be ids or emails.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from integration.domain.model import Facts
from integration.engine.csvfiles import crm_of, read_rows
from integration.engine.targets import normalize
from integration.engine.yamlsource import Problem


@dataclass(frozen=True)
class Managers:
    """(crm, rep id or lower-cased email) -> manager id or email."""

    by_rep: dict[tuple[str, str], str] = field(default_factory=dict)
    version: str = "none"

    def manager_of(self, crm: str, rep_id: str, rep_email: str = "") -> str:
        return self.by_rep.get((crm, normalize(crm, rep_id))) or self.by_rep.get(
            (crm, rep_email.lower()), ""
        )

    def resolve(self, facts: Facts) -> Facts:
        """Facts with ``owner.manager_id`` from the file when it names one."""
        manager = self.manager_of(facts.crm, facts.owner.id, facts.owner.email)
        if not manager:
            return facts
        manager_id = normalize(facts.crm, manager) if "@" not in manager else manager
        if manager_id == facts.owner.manager_id:
            return facts
        return facts.with_owner(manager_id=manager_id)


def load_managers(
    path: Path | None, raw: bytes | None = None
) -> tuple[Managers | None, list[Problem]]:
    """Parse the managers file (``raw``, or read from ``path``)."""
    if path is None:
        return Managers(), []
    rows, problems, digest = read_rows(path, ("crm", "rep", "manager"), (), raw)
    by_rep: dict[tuple[str, str], str] = {}
    lines: dict[tuple[str, str], int] = {}
    for line, row in rows:
        crm = crm_of(row, path, line, problems)
        if crm is None:
            continue
        rep = row["rep"].lower() if "@" in row["rep"] else normalize(crm, row["rep"])
        key = (crm, rep)
        if key in by_rep and by_rep[key] != row["manager"]:
            problems.append(
                Problem(
                    str(path),
                    line,
                    f"rep {row['rep']} already has manager {by_rep[key]} on line {lines[key]}",
                )
            )
            continue
        by_rep[key], lines[key] = row["manager"], line
    if problems:
        return None, problems
    return Managers(by_rep, digest), []
