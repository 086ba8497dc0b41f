"""The compiled ruleset: what ``rules/strategy.yaml`` says, ready to evaluate.

Loading never half-succeeds: :func:`load_ruleset` returns a ruleset only when the
file has no problem at all, and otherwise every problem it found, each with
``FILE:LINE``. The ruleset's ``version`` is a content hash, recorded on every
decision, so "which rules said this?" always has an answer.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from integration.domain.crms import CRM_NAMES
from integration.engine.conditions import Condition, Scope
from integration.engine.insights_config import InsightsSettings, parse_insights
from integration.engine.rules_schema import Checker
from integration.engine.templates import Template
from integration.engine.yamlsource import LocatedDict, Problem, load

RULE_FILE = "strategy.yaml"
LOGICAL_FIELDS = ("fit", "reason", "warning", "comp_eligible", "exception_reason", "account_target")


#: How a fit rule's deals count in shares and reports (contract: ``counts_as``).
COUNTS_AS = ("on", "approved", "off")


def default_counts_as(tag: str) -> str:
    """``on`` for the tag "On Strategy" (any case or spacing), ``off`` for every other tag."""
    return "on" if tag.casefold().split() == ["on", "strategy"] else "off"


@dataclass(frozen=True)
class FitRule:
    name: str
    condition: Condition
    tag: str
    reason: Template
    counts_as: str = "off"


@dataclass(frozen=True)
class WarningRule:
    name: str
    condition: Condition
    message: Template


@dataclass(frozen=True)
class CoachingRule:
    name: str
    condition: Condition
    subject: Template
    body: Template
    due_in_days: int
    priority: str
    assign_to: str


@dataclass(frozen=True)
class Ruleset:
    strategy: str
    segments: tuple[tuple[str, Condition], ...]
    fit: tuple[FitRule, ...]
    warnings: tuple[WarningRule, ...]
    coaching: tuple[CoachingRule, ...]
    max_open_per_rep: int
    eligible_when: Condition
    freeze_closed_before: date | None
    target_file: str | None
    target_crm_field: bool
    managers_file: str | None
    fields: dict[str, dict[str, str]] = field(default_factory=dict)
    version: str = ""
    directory: str = ""
    insights: InsightsSettings = field(default_factory=InsightsSettings)
    queue_per_rep: int = 3  # queued coaching tasks kept per rep beyond the open ones

    @property
    def tags(self) -> list[str]:
        """Every tag the fit rules can give, in rule order (for picklists)."""
        return list(dict.fromkeys(rule.tag for rule in self.fit))

    def counts_as(self, tag_or_rule: str) -> str:
        """How deals given this tag (or decided by the fit rule of this name) count.

        ``on``, ``approved`` or ``off``. A rule name wins over a tag; a tag no rule
        gives (an older ruleset's) counts by the default. This is the one place
        that knows which tag means "on strategy": reports, metrics and the
        insights ask here instead of comparing with a literal tag.
        """
        for rule in self.fit:
            if rule.name == tag_or_rule:
                return rule.counts_as
        for rule in self.fit:
            if rule.tag == tag_or_rule:
                return rule.counts_as
        return default_counts_as(tag_or_rule)

    def counts_on(self, tag_or_rule: str) -> bool:
        """True when the tag or rule counts as on strategy."""
        return self.counts_as(tag_or_rule) == "on"

    def field_overrides(self, crm: str) -> dict[str, str]:
        """The rule file's field-name overrides for one CRM."""
        return {**self.fields.get("*", {}), **self.fields.get(crm, {})}

    def path(self, name: str | None) -> Path | None:
        return Path(self.directory, name) if name else None


def load_ruleset(directory: str | Path) -> tuple[Ruleset | None, list[Problem]]:
    """Load and compile ``DIR/strategy.yaml``; a ruleset only when nothing is wrong."""
    path = Path(directory, RULE_FILE)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return None, [Problem(str(path), 1, f"cannot read the rule file: {exc.strerror}")]
    return parse_ruleset(raw, directory)


def parse_ruleset(
    raw: bytes, directory: str | Path, version: str = ""
) -> tuple[Ruleset | None, list[Problem]]:
    """Compile the rule file's content; ``directory`` names it in problems.

    ``version`` is the rulebook's (all its files); by default the file's own hash.
    """
    shown = str(Path(directory, RULE_FILE))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, [Problem(shown, 1, "the rule file is not UTF-8 text")]
    document, problems = load(text, shown)
    if document is None and not problems:
        problems = [Problem(shown, 1, "the rule file is empty")]
    if problems:
        return None, problems
    checker = Checker(shown)
    version = version or hashlib.sha256(raw).hexdigest()[:12]
    ruleset = _build(document, checker, str(directory), version)
    if checker.problems or ruleset is None:
        return None, sorted(checker.problems, key=lambda p: p.line)
    return ruleset, []


#: The sections a rule file may have; any other top-level key is a problem.
SECTIONS = (
    "strategy",
    "segments",
    "fit",
    "warnings",
    "coaching",
    "compensation",
    "target_accounts",
    "managers",
    "fields",
    "insights",
)


def _build(doc: Any, c: Checker, directory: str, version: str) -> Ruleset | None:
    """Check every section (so one load reports every problem), then compile the ruleset."""
    if not c.mapping(doc, 1, "the rule file"):
        return None
    c.only_keys(doc, SECTIONS, "the rule file")
    strategy = c.text(doc, "strategy", required=True)
    segments, names = _segments(doc.get("segments"), doc.line_of("segments"), c)
    fit = _fit_rules(doc, c, names)
    scope = Scope(names, fit=True, tags=_raw_tags(doc.get("fit")))
    warnings = _warnings(doc.get("warnings"), doc.line_of("warnings"), c, scope)
    coaching, (cap, bound) = _coaching(doc.get("coaching"), doc.line_of("coaching"), c, scope)
    eligible, freeze = _compensation(doc, c, scope)
    target_file, crm_field = _targets(doc.get("target_accounts"), doc.line_of("target_accounts"), c)
    managers_file = _managers(doc.get("managers"), doc.line_of("managers"), c)
    fields = _fields(doc.get("fields"), doc.line_of("fields"), c)
    insights = parse_insights(doc.get("insights"), doc.line_of("insights"), c)
    _unique_names([*warnings, *coaching], c, doc)
    if c.problems or eligible is None:
        return None
    return Ruleset(
        strategy=strategy or "",
        segments=tuple(segments),
        fit=tuple(fit),
        warnings=tuple(warnings),
        coaching=tuple(coaching),
        max_open_per_rep=cap,
        eligible_when=eligible,
        freeze_closed_before=freeze,
        target_file=target_file,
        target_crm_field=crm_field,
        managers_file=managers_file,
        fields=fields,
        version=version,
        directory=directory,
        insights=insights,
        queue_per_rep=bound,
    )


def _segments(raw: Any, line: int, c: Checker) -> tuple[list[tuple[str, Condition]], list[str]]:
    """Compiled segments, and every declared name (so one bad segment is one problem)."""
    if not c.mapping(raw, line, "segments"):
        return [], []
    result: list[tuple[str, Condition]] = []
    declared: list[str] = []
    for name, source in raw.items():
        where = raw.line_of(name)
        if not isinstance(name, str) or not name.isidentifier():
            c.problem(where, f"segment name {name!r} must be a plain name (letters, digits, _)")
            continue
        condition = c.condition(source, where, Scope(list(declared)))
        declared.append(name)
        if condition:
            result.append((name, condition))
    return result, declared


def _fit_rules(doc: LocatedDict, c: Checker, segments: list[str]) -> list[FitRule]:
    raw = doc.get("fit")
    if not c.sequence(raw, doc.line_of("fit"), "fit", required=True):
        return []
    rules = []
    tags = [item.get("tag") for item in raw if isinstance(item, LocatedDict)]
    for index, item in enumerate(raw):
        where = raw.line_of(index)
        if not c.mapping(item, where, f"fit rule {index + 1}"):
            continue
        c.only_keys(item, ("name", "when", "tag", "reason", "counts_as"), f"fit rule {index + 1}")
        condition = c.condition_key(item, "when", Scope(segments))
        tag = c.text(item, "tag", required=True)
        reason = c.template(item, "reason", required=True)
        name = c.text(item, "name") or _default_name(tag or "", index, tags)
        if isinstance(item.get("counts_as"), bool):  # YAML 1.1 reads a bare on/off as true/false
            item["counts_as"] = "on" if item["counts_as"] else "off"
        counts = c.choice(item, "counts_as", COUNTS_AS, default=default_counts_as(tag or ""))
        if condition and tag and reason:
            rules.append(FitRule(name, condition, tag, reason, counts))
    _unique_names(rules, c, doc)
    if rules and rules[-1].condition.source.strip() != "true" and not c.problems:
        c.problem(
            raw.line_of(len(raw) - 1),
            'the last fit rule must have when: "true" so every opportunity gets a tag',
        )
    return rules


def _raw_tags(raw: Any) -> tuple[str, ...] | None:
    """Every tag the fit rules give as written (even a rule with another problem)."""
    if not isinstance(raw, list):
        return None
    tags = [item.get("tag") for item in raw if isinstance(item, dict)]
    return tuple(dict.fromkeys(t for t in tags if isinstance(t, str))) or None


def _default_name(tag: str, index: int, tags: list[Any]) -> str:
    """An unnamed rule is named by its tag, or by tag and position when two rules share it."""
    return tag if tags.count(tag) == 1 else f"{tag} #{index + 1}"


def _warnings(raw: Any, line: int, c: Checker, scope: Scope) -> list[WarningRule]:
    if not c.sequence(raw, line, "warnings"):
        return []
    rules = []
    for index, item in enumerate(raw):
        if not c.mapping(item, raw.line_of(index), f"warning {index + 1}"):
            continue
        c.only_keys(item, ("name", "when", "message"), f"warning {index + 1}")
        name = c.text(item, "name", required=True)
        condition = c.condition_key(item, "when", scope)
        message = c.template(item, "message", required=True)
        if name and condition and message:
            rules.append(WarningRule(name, condition, message))
    return rules


def _coaching(
    raw: Any, line: int, c: Checker, scope: Scope
) -> tuple[list[CoachingRule], tuple[int, int]]:
    """The coaching rules, and (max_open_per_rep, queue_per_rep)."""
    if not c.mapping(raw, line, "coaching"):
        return [], (2, 3)
    c.only_keys(raw, ("max_open_per_rep", "queue_per_rep", "tasks"), "coaching")
    cap = c.integer(raw, "max_open_per_rep", default=2, minimum=0)
    bound = c.integer(raw, "queue_per_rep", default=3, minimum=0)
    tasks = raw.get("tasks")
    if not c.sequence(tasks, raw.line_of("tasks"), "coaching.tasks"):
        return [], (cap, bound)
    rules = [_coaching_rule(item, tasks.line_of(i), c, scope) for i, item in enumerate(tasks)]
    return [r for r in rules if r], (cap, bound)


def _coaching_rule(item: Any, line: int, c: Checker, scope: Scope) -> CoachingRule | None:
    if not c.mapping(item, line, "coaching task"):
        return None
    c.only_keys(
        item,
        ("name", "when", "assign_to", "subject", "body", "due_in_days", "priority"),
        "coaching task",
    )
    name = c.text(item, "name", required=True)
    condition = c.condition_key(item, "when", scope)
    subject = c.template(item, "subject", required=True)
    body = c.template(item, "body", required=True)
    due = c.integer(item, "due_in_days", default=3, minimum=0)
    priority = c.choice(item, "priority", ("High", "Normal", "Low"), default="Normal")
    assign_to = c.choice(item, "assign_to", ("manager", "owner"), default="manager")
    if name and condition and subject and body:
        return CoachingRule(name, condition, subject, body, due, priority, assign_to)
    return None


def _compensation(
    doc: LocatedDict, c: Checker, scope: Scope
) -> tuple[Condition | None, date | None]:
    raw = doc.get("compensation")
    if not c.mapping(raw, doc.line_of("compensation"), "compensation", required=True):
        return None, None
    c.only_keys(raw, ("eligible_when", "freeze_closed_before"), "compensation")
    condition = c.condition_key(raw, "eligible_when", scope)
    freeze = raw.get("freeze_closed_before")
    if freeze is not None and not isinstance(freeze, date):
        c.problem(
            raw.line_of("freeze_closed_before"),
            f"freeze_closed_before must be a date like 2026-10-01; got {freeze!r}",
        )
        freeze = None
    return condition, freeze


def _targets(raw: Any, line: int, c: Checker) -> tuple[str | None, bool]:
    if not c.mapping(raw, line, "target_accounts"):
        return None, True
    c.only_keys(raw, ("file", "crm_field"), "target_accounts")
    return c.text(raw, "file") or None, c.boolean(raw, "crm_field", default=True)


def _managers(raw: Any, line: int, c: Checker) -> str | None:
    if not c.mapping(raw, line, "managers"):
        return None
    c.only_keys(raw, ("file",), "managers")
    return c.text(raw, "file") or None


def _fields(raw: Any, line: int, c: Checker) -> dict[str, dict[str, str]]:
    if raw is None or not c.mapping(raw, line, "fields"):
        return {}
    result: dict[str, dict[str, str]] = {"*": {}}
    for key, value in raw.items():
        if key in CRM_NAMES and c.mapping(value, raw.line_of(key), key):
            result[key] = _field_names(value, c)
        elif key in LOGICAL_FIELDS:
            result["*"].update(_field_names({key: value}, c, raw.line_of(key)))
        else:
            c.problem(
                raw.line_of(key),
                f"unknown field {key!r} (known: {', '.join(LOGICAL_FIELDS)}, "
                "or a CRM name with its own overrides)",
            )
    return result


def _field_names(raw: dict, c: Checker, line: int | None = None) -> dict[str, str]:
    names = {}
    for key, value in raw.items():
        where = line or raw.line_of(key)  # type: ignore[attr-defined]
        if key not in LOGICAL_FIELDS:
            c.problem(where, f"unknown field {key!r} (known: {', '.join(LOGICAL_FIELDS)})")
        elif not isinstance(value, str) or not value:
            c.problem(where, f"field name for {key!r} must be text; got {value!r}")
        else:
            names[key] = value
    return names


def _unique_names(rules: list[Any], c: Checker, doc: LocatedDict) -> None:
    seen: set[str] = set()
    for rule in rules:
        if rule.name in seen:
            c.problem(
                rule.condition.line, f"rule name {rule.name!r} is used twice; names must be unique"
            )
        seen.add(rule.name)
