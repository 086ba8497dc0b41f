"""The rules folder as one unit, reloaded when it changes, never half-loaded.

A :class:`Rulebook` is the ruleset plus the target account list and the managers
file it names. :class:`RulesHolder` gives running processes the current one: it
re-reads the folder when a file's modification time changes, and when the new
files are invalid it keeps the last good rulebook, logs the problems and
reports them on ``/readyz``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from integration.engine.managers import Managers, load_managers
from integration.engine.ruleset import Ruleset, load_ruleset
from integration.engine.targets import TargetList, load_targets
from integration.engine.yamlsource import Problem

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rulebook:
    ruleset: Ruleset
    targets: TargetList
    managers: Managers

    @property
    def version(self) -> str:
        return self.ruleset.version


def load_rulebook(directory: str | Path) -> tuple[Rulebook | None, list[Problem]]:
    """Everything in the rules folder, or every problem found in it."""
    ruleset, problems = load_ruleset(directory)
    if ruleset is None:
        return None, problems
    targets, target_problems = load_targets(
        ruleset.path(ruleset.target_file), ruleset.target_crm_field
    )
    managers, manager_problems = load_managers(ruleset.path(ruleset.managers_file))
    problems = target_problems + manager_problems
    if targets is None or managers is None:
        return None, problems
    return Rulebook(ruleset, targets, managers), []


def _stamp(directory: Path) -> tuple[tuple[str, float, int], ...]:
    """Names, modification times and sizes of the files that make the rulebook."""
    files = sorted(p for p in directory.glob("*") if p.is_file())
    return tuple((p.name, p.stat().st_mtime, p.stat().st_size) for p in files)


class RulesHolder:
    """The current good rulebook of a folder, for long-running processes."""

    def __init__(
        self,
        directory: str | Path,
        on_targets_changed: Callable[[Rulebook, Rulebook], None] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.problems: list[Problem] = []
        self._good: Rulebook | None = None
        self._stamp: tuple | None = None
        self._lock = threading.Lock()
        self._on_targets_changed = on_targets_changed

    def current(self) -> Rulebook | None:
        """The newest valid rulebook (reloading if files changed), or ``None`` if never valid."""
        try:
            stamp = _stamp(self.directory)
        except OSError:
            stamp = None
        with self._lock:
            if stamp != self._stamp:
                self._stamp = stamp
                self._reload()
            return self._good

    def require(self) -> Rulebook:
        rulebook = self.current()
        if rulebook is None:
            raise RulesUnavailable(self.problems)
        return rulebook

    def _reload(self) -> None:
        rulebook, problems = load_rulebook(self.directory)
        self.problems = problems
        if rulebook is None:
            kept = f"keeping ruleset {self._good.version}" if self._good else "no ruleset loaded"
            log.error(
                "rules in %s are invalid (%s):\n%s",
                self.directory,
                kept,
                "\n".join(map(str, problems)),
            )
            return
        previous, self._good = self._good, rulebook
        if previous and previous.version != rulebook.version:
            log.info("ruleset %s replaces %s", rulebook.version, previous.version)
        if previous and previous.targets.version != rulebook.targets.version:
            log.info(
                "target list %s replaces %s", rulebook.targets.version, previous.targets.version
            )
            if self._on_targets_changed:
                try:
                    self._on_targets_changed(previous, rulebook)
                except Exception:  # the new list is in force; a sweep will catch up
                    log.exception("could not start the target list sync")


class RulesUnavailable(RuntimeError):
    """No valid ruleset has been loaded; work must wait (and is retried)."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("no valid ruleset: " + "; ".join(map(str, problems[:5])))
        self.problems = problems
