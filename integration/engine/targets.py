"""The target account list: who reps are paid on.

Two sources, combined as the contract says: the CSV in the rules folder, and
(with ``crm_field: true``) the CRM's own target-account field. Salesforce ids are
compared in their 18-character form, so a list written with 15-character ids
still matches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from integration.domain.model import Facts
from integration.domain.sfid import to18
from integration.engine.csvfiles import crm_of, read_rows
from integration.engine.yamlsource import Problem


def normalize(crm: str, account_id: str) -> str:
    return to18(account_id) if crm == "salesforce" else account_id


@dataclass(frozen=True)
class TargetList:
    """Account ids per CRM from the CSV, plus whether the CRM field counts too."""

    accounts: dict[str, frozenset[str]] = field(default_factory=dict)
    names: dict[tuple[str, str], str] = field(default_factory=dict)
    crm_field: bool = True
    version: str = "none"

    def in_file(self, crm: str, account_id: str) -> bool:
        return normalize(crm, account_id) in self.accounts.get(crm, frozenset())

    def contains(self, crm: str, account_id: str, crm_flag: bool) -> bool:
        """On the list: in the CSV, or (when trusted) flagged in the CRM."""
        return self.in_file(crm, account_id) or (self.crm_field and crm_flag)

    def resolve(self, facts: Facts) -> Facts:
        """Facts with ``account.on_target_list`` set from this list."""
        on_list = bool(facts.account.id) and self.contains(
            facts.crm, facts.account.id, facts.account.crm_target_flag
        )
        if not facts.account.id:
            on_list = self.crm_field and facts.account.crm_target_flag
        if on_list == facts.account.on_target_list:
            return facts  # nothing to change: no copy (this runs for every deal)
        return facts.with_account(on_target_list=on_list)

    def changed_accounts(self, newer: TargetList, crm: str) -> set[str]:
        """Accounts whose CSV membership differs between this list and ``newer``."""
        return set(self.accounts.get(crm, frozenset()) ^ newer.accounts.get(crm, frozenset()))


def load_targets(
    path: Path | None, crm_field: bool, raw: bytes | None = None
) -> tuple[TargetList | None, list[Problem]]:
    """Parse the CSV (``raw``, or read from ``path``); ``None`` and the problems when wrong."""
    if path is None:
        return TargetList(crm_field=crm_field), []
    rows, problems, digest = read_rows(path, ("crm", "account_id"), ("name",), raw)
    accounts: dict[str, set[str]] = {}
    names: dict[tuple[str, str], str] = {}
    seen: dict[tuple[str, str], tuple[int, str]] = {}
    for line, row in rows:
        crm = crm_of(row, path, line, problems)
        if crm is None:
            continue
        key = (crm, normalize(crm, row["account_id"]))
        name = row.get("name", "")
        if key in seen and seen[key][1] and name and seen[key][1] != name:
            problems.append(
                Problem(
                    str(path),
                    line,
                    f"account {row['account_id']} is listed on line {seen[key][0]} "
                    f"as {seen[key][1]!r} and here as {name!r}",
                )
            )
            continue
        seen[key] = (line, name)
        accounts.setdefault(crm, set()).add(key[1])
        if name:
            names[key] = name
    if problems:
        return None, problems
    frozen = {crm: frozenset(ids) for crm, ids in accounts.items()}
    version = f"{digest}{'+crm' if crm_field else ''}"
    return TargetList(frozen, names, crm_field, version), []
