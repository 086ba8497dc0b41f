"""The rulebook: every file of a rules folder as one unit, and the live one.

A :class:`Rulebook` is the ruleset plus the target account list and the managers
file it names, compiled from a set of files: the admin's working copy (a folder)
or a version published into the store. Its ``version`` is a hash of every file,
so the same files always have the same version on every host.

:class:`LiveRules` gives running processes the *published* rulebook. It asks the
store which version is live at most every ``poll_seconds`` (one indexed row,
never the folder, never per request), switches when a newer one was published,
and keeps the last good rulebook if a stored version cannot be loaded. Editing
the folder changes nothing live: only ``onstrategy rules publish`` does.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from integration.engine.managers import Managers, load_managers
from integration.engine.ruleset import RULE_FILE, Ruleset, parse_ruleset
from integration.engine.targets import TargetList, load_targets
from integration.engine.yamlsource import Problem

log = logging.getLogger(__name__)

#: File name (POSIX path inside the folder) -> content.
Files = dict[str, bytes]

#: Folders and files of a working copy that are never part of a version.
IGNORED = ("__pycache__", ".git", ".DS_Store")
MAX_FILE_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class Rulebook:
    ruleset: Ruleset
    targets: TargetList
    managers: Managers
    files: tuple[tuple[str, str], ...] = ()  # (name, content hash), for history and diffs

    @property
    def version(self) -> str:
        return self.ruleset.version


def read_folder(directory: str | Path) -> Files:
    """Every file of the folder (and its sub-folders, such as ``tests/``), by relative path."""
    root = Path(directory)
    files: Files = {}
    if not root.is_dir():
        return files
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part.startswith(".") or part in IGNORED for part in relative.parts):
            continue
        if path.is_file() and path.stat().st_size <= MAX_FILE_BYTES:
            files[relative.as_posix()] = path.read_bytes()
    return files


def version_of(files: Files) -> str:
    """The content hash of a set of files: the same files give the same version anywhere."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return digest.hexdigest()[:12]


def file_hashes(files: Files) -> dict[str, str]:
    return {name: hashlib.sha256(content).hexdigest() for name, content in sorted(files.items())}


def load_rulebook(directory: str | Path) -> tuple[Rulebook | None, list[Problem]]:
    """The working copy in ``directory``, or every problem found in it."""
    files = read_folder(directory)
    if RULE_FILE not in files:
        shown = str(Path(directory, RULE_FILE))
        return None, [Problem(shown, 1, "cannot read the rule file: no such file")]
    return rulebook_from_files(files, directory)


def rulebook_from_files(
    files: Files, directory: str | Path = "rules"
) -> tuple[Rulebook | None, list[Problem]]:
    """Compile a set of files (a folder's or a published version's) into a rulebook."""
    version = version_of(files)
    raw = files.get(RULE_FILE)
    if raw is None:
        return None, [Problem(str(Path(directory, RULE_FILE)), 1, "the version has no rule file")]
    ruleset, problems = parse_ruleset(raw, directory, version)
    if ruleset is None:
        return None, problems
    missing = [
        Problem(str(ruleset.path(name)), 1, f"cannot read: {RULE_FILE} names it but it is missing")
        for name in (ruleset.target_file, ruleset.managers_file)
        if name and _named(files, name) is None
    ]
    if missing:
        return None, missing
    targets, target_problems = load_targets(
        ruleset.path(ruleset.target_file),
        ruleset.target_crm_field,
        _named(files, ruleset.target_file),
    )
    managers, manager_problems = load_managers(
        ruleset.path(ruleset.managers_file), _named(files, ruleset.managers_file)
    )
    problems = target_problems + manager_problems
    if targets is None or managers is None:
        return None, problems
    hashes = tuple((name, digest[:12]) for name, digest in file_hashes(files).items())
    return Rulebook(replace(ruleset, version=version), targets, managers, hashes), []


def _named(files: Files, name: str | None) -> bytes | None:
    """The content of a file the rule file names; ``b""`` gives "missing" problems."""
    if not name:
        return None
    key = Path(name).as_posix().lstrip("./")
    return files.get(key, files.get(name))


def with_files(live: Files, changed: Files) -> Files:
    """The live version's files with some replaced (a target list published on its own)."""
    return {**live, **changed}


class VersionSource(Protocol):
    """Where published versions are kept (the store); the engine only reads through this."""

    def live_version(self) -> tuple[int, str] | None:
        """``(publication id, version)`` of the live version, or ``None`` before the first."""

    def version_files(self, publication_id: int) -> Files:
        """Every file of one publication."""


class LiveRules:
    """The published rulebook, for every process: polled, switched, never half-loaded."""

    def __init__(
        self,
        source: VersionSource,
        *,
        poll_seconds: float = 2.0,
        bootstrap: Callable[[], list[Problem]] | None = None,
        on_targets_changed: Callable[[Rulebook, Rulebook], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.poll_seconds = poll_seconds
        self.problems: list[Problem] = []
        self.live_id: int | None = None
        self._good: Rulebook | None = None
        self._polled_at: float | None = None
        self._lock = threading.Lock()
        self._bootstrap = bootstrap
        self._on_targets_changed = on_targets_changed
        self._clock = clock

    def current(self) -> Rulebook | None:
        """The live rulebook (asking the store at most every ``poll_seconds``)."""
        with self._lock:
            now = self._clock()
            if self._polled_at is None or now - self._polled_at >= self.poll_seconds:
                self._polled_at = now
                self._poll()
            return self._good

    def refresh(self) -> Rulebook | None:
        """Ask the store now (after a publish, or before work queued for a newer version)."""
        with self._lock:
            self._polled_at = self._clock()
            self._poll()
            return self._good

    def require(self) -> Rulebook:
        rulebook = self.current()
        if rulebook is None:
            raise RulesUnavailable(self.problems)
        return rulebook

    def _poll(self) -> None:
        try:
            live = self.source.live_version()
            if live is None and self._bootstrap is not None:
                self.problems = self._bootstrap()
                live = self.source.live_version()
        except Exception as exc:  # the store is down: keep what we have, say why
            log.warning("cannot read the live rules version: %s", exc)
            self.problems = [Problem("store", 0, f"cannot read the live rules version: {exc}")]
            return
        if live is None:
            self.problems = self.problems or [NOTHING_PUBLISHED]
            return
        if live[0] != self.live_id:
            self._switch(*live)

    def _switch(self, publication_id: int, version: str) -> None:
        rulebook, problems = rulebook_from_files(self.source.version_files(publication_id))
        self.live_id = publication_id
        if rulebook is None:
            kept = f"keeping {self._good.version}" if self._good else "no ruleset loaded"
            log.error("published version %s is invalid (%s): %s", version, kept, problems[:3])
            self.problems = problems
            return
        previous, self._good, self.problems = self._good, rulebook, []
        if previous and previous.version != rulebook.version:
            log.info("rules version %s replaces %s", rulebook.version, previous.version)
        if previous and previous.targets.version != rulebook.targets.version:
            self._targets_changed(previous, rulebook)

    def _targets_changed(self, previous: Rulebook, rulebook: Rulebook) -> None:
        if not self._on_targets_changed:
            return
        try:
            self._on_targets_changed(previous, rulebook)
        except Exception:  # the new list is in force; a sweep will catch up
            log.exception("could not start the target list sync")


NOTHING_PUBLISHED = Problem(
    "rules", 0, "no rules version has been published yet (run `onstrategy rules publish`)"
)


class RulesUnavailable(RuntimeError):
    """No valid ruleset has been loaded; work must wait (and is retried)."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("no valid ruleset: " + "; ".join(map(str, problems[:5])))
        self.problems = problems
