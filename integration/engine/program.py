"""A ruleset as one CEL program, and the evaluation context built from only what it reads.

Measured on the real path (``bench/evaluate.py``), converting Python values into
CEL values cost far more than evaluating them, and so did re-binding ``segment``
after every segment. So, once per ruleset:

* every condition is rewritten without ``segment`` and ``fit``: ``segment.x``
  becomes the segment's own (already rewritten) expression in parentheses, and
  ``fit`` the first-match chain of the fit rules as a conditional expression;
* all of them become one list expression, compiled once: one ``execute`` per
  opportunity gives every condition's value, in ruleset order;
* the context holds only the roots and fields the conditions read.

The program is an optimisation, never a second semantics: when an opportunity's
run raises or gives a value that is not true/false (where the step-by-step path
would record an error per condition), the engine runs the step-by-step path for
that opportunity instead, so every decision is the same either way.
"""

from __future__ import annotations

import json
import re
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import cel
from jinja2 import meta, nodes

from integration.domain.model import Facts
from integration.engine.templates import ENV, Template
from integration.engine.variables import RECORD_FIELDS

if TYPE_CHECKING:
    from integration.engine.conditions import Condition
    from integration.engine.ruleset import Ruleset

#: A string literal (left alone) or a ``segment.name`` / ``fit`` reference (rewritten).
_TOKENS = re.compile(
    r"""(?P<string>[rRbB]*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'))"""
    r"""|(?<![\w.])segment\.(?P<segment>[A-Za-z_]\w*)"""
    r"""|(?<![\w.])(?P<root>opportunity|account|owner)\.(?P<field>[A-Za-z_]\w*)"""
    r"""|(?<![\w.])(?P<fit>fit)(?!\w)"""
    r"""|(?<![\w.])(?P<other>segment)(?!\w)"""
)


SEGMENTS, FITS = "onstrategy_s", "onstrategy_f"  # names the program binds; rules cannot


class _NotInlinable(ValueError):
    """A condition uses ``segment`` other than as ``segment.name``: no single program."""


@dataclass(frozen=True)
class Plan:
    """What evaluating one ruleset needs, worked out once."""

    reads: dict[str, frozenset[str] | None]
    program: Any  # cel.Program over every condition, or None when not possible
    size: int  # how many values the program gives
    segment_names: tuple[str, ...] = ()
    flat: frozenset[str] = frozenset()  # records the program reads as scalars
    texts: TextCache = field(default_factory=lambda: TextCache())
    #: The program's variable names and one getter for all their values (``None``: when
    #: a record is read whole, :func:`cel_variables` builds the context instead).
    layout: tuple[tuple[str, ...], Callable[[Facts], tuple]] | None = None
    #: What each set of the program's values decides (``evaluate``'s, filled as met).
    shapes: dict[tuple[bool, ...], Any] = field(default_factory=dict)

    def context(self, facts: Facts, today: str) -> Any:
        """A ``cel.Context`` holding only the roots and fields the conditions read."""
        return cel.Context(cel_variables(facts, self.reads, today=today))

    def program_context(self, facts: Facts, today: str) -> dict[str, Any]:
        """The same values for :attr:`program`, records it reads field by field as scalars
        (``account__employees``): converting a map into CEL costs as much as four scalars.

        A plain dict, given straight to ``execute``: one ``attrgetter`` call reads every
        value (a ``cel.Context`` first would add a copy and cost more, measured)."""
        if self.layout is None:
            return cel_variables(facts, self.reads, self.flat, today)
        names, getter = self.layout
        values = dict(zip(names, getter(facts), strict=True))
        if "today" in self.reads:
            values["today"] = today
        return values


class TextCache:
    """Rendered text by template and by the values it reads.

    A reason such as "Outside the target market: ..." names no variable and is
    the same for thousands of deals; one naming ``account.name`` is the same for
    every deal of that account. Rendering is pure (sandboxed, no clock, no I/O),
    so the text for the same values is the same; a failed render is never cached.
    The key holds only the fields a template reads (``account.name``, not the
    whole account; a record used other than as ``record.field`` counts whole),
    taken from the facts themselves, so a cached text needs no template variables
    built at all. The cache is bounded: it starts over past :data:`MAX_TEXTS`.
    """

    MAX_TEXTS = 20_000

    def __init__(self) -> None:
        self._reads: dict[int, tuple[tuple[str, tuple[str, ...] | None], ...]] = {}
        self._texts: dict[tuple, str] = {}

    def render(
        self,
        template: Template,
        facts: Facts,
        scope: dict[str, Any],
        variables: Callable[[], dict[str, Any]],
    ) -> str:
        """The text of ``template``; ``variables()`` is called only when not cached."""
        reads = self._reads.get(id(template))
        if reads is None:
            reads = self._reads[id(template)] = template_reads(template)
        key = (id(template), *(_read(facts, scope, root, names) for root, names in reads))
        text = self._texts.get(key)
        if text is None:
            text = template.render(variables())
            if len(self._texts) >= self.MAX_TEXTS:
                self._texts.clear()
            self._texts[key] = text
        return text


def template_reads(template: Template) -> tuple[tuple[str, tuple[str, ...] | None], ...]:
    """Each variable a template names, with the record fields it reads of it
    (``None``: all of it, as for anything but ``record.field``)."""
    tree = ENV.parse(template.source)
    roots = meta.find_undeclared_variables(tree)
    fields: dict[str, set[str]] = {r: set() for r in roots if r in RECORD_FIELDS}
    whole: set[str] = set()

    def walk(node: nodes.Node, parent: nodes.Node | None) -> None:
        if isinstance(node, nodes.Name) and node.name in fields:
            if isinstance(parent, nodes.Getattr) and parent.node is node:
                fields[node.name].add(parent.attr)
            else:
                whole.add(node.name)
        for child in node.iter_child_nodes():
            walk(child, node)

    walk(tree, None)
    return tuple(
        (root, None if root in whole or root not in fields else tuple(sorted(fields[root])))
        for root in sorted(roots)
    )


_ABSENT = object()


def _read(facts: Facts, scope: dict[str, Any], root: str, names: tuple[str, ...] | None) -> Any:
    """The part of a text's key for one variable: the values it reads, types kept apart."""
    if root in scope:
        return _frozen(scope[root])
    if root in RECORD_FIELDS:
        record = getattr(facts, root)
        if names is None:
            return _frozen(vars(record))
        return tuple((type(v), v) for v in (getattr(record, n, _ABSENT) for n in names))
    if root == "products":
        return _frozen(facts.products)
    if root == "crm":
        return _frozen(facts.crm)
    return None  # a name the variables do not hold: rendering fails, and is not cached


def _frozen(value: Any) -> Any:
    """A hashable stand-in for a variable's value; types kept apart (1, 1.0, True)."""
    if isinstance(value, dict):
        return tuple((k, type(v), v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return tuple((type(v), v) for v in value)
    return (type(value), value)


def cel_variables(
    facts: Facts,
    reads: dict[str, frozenset[str] | None],
    flat: frozenset[str] = frozenset(),
    today: str = "",
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for root, names in reads.items():
        if root == "today":
            values[root] = today
            continue
        if root in flat and names is not None:
            record = getattr(facts, root)
            values.update((f"{root}__{n}", getattr(record, n)) for n in names)
        elif root == "products":
            values[root] = list(facts.products)
        elif root == "crm":
            values[root] = facts.crm
        elif root in RECORD_FIELDS:
            record = getattr(facts, root)
            values[root] = {n: getattr(record, n) for n in names or RECORD_FIELDS[root]}
    return values


def conditions(ruleset: Ruleset) -> list[Condition]:
    """Every condition in the order the program gives their values."""
    return [
        *(c for _, c in ruleset.segments),
        *(r.condition for r in ruleset.fit),
        *(r.condition for r in ruleset.warnings),
        *(r.condition for r in ruleset.coaching),
        ruleset.eligible_when,
    ]


_plans: dict[int, tuple[weakref.ref, Plan]] = {}
_lock = threading.Lock()


def plan_for(ruleset: Ruleset) -> Plan:
    """The ruleset's plan, made on first use and kept while the ruleset lives."""
    key = id(ruleset)
    entry = _plans.get(key)
    if entry is not None and entry[0]() is ruleset:
        return entry[1]
    plan = _make_plan(ruleset)
    with _lock:
        _plans[key] = (weakref.ref(ruleset, lambda _, k=key: _plans.pop(k, None)), plan)
    return plan


def _make_plan(ruleset: Ruleset) -> Plan:
    every = conditions(ruleset)
    reads: dict[str, frozenset[str] | None] = {}
    for condition in every:
        for root, names in condition.reads.items():
            if root in ("segment", "fit"):
                continue
            known = reads.get(root, frozenset())
            reads[root] = None if names is None or known is None else known | names
    names = tuple(name for name, _ in ruleset.segments)
    flat = frozenset(r for r, f in reads.items() if r in RECORD_FIELDS and f is not None)
    for records in (flat, frozenset()):  # ``has(account.x)`` cannot take a scalar: then maps
        try:
            program = cel.compile(_one_expression(ruleset, records))
        except (_NotInlinable, ValueError, RuntimeError):
            continue
        return Plan(reads, program, len(every), names, records, layout=_layout(reads, records))
    return Plan(reads, None, len(every), names)


def _layout(
    reads: dict[str, frozenset[str] | None], flat: frozenset[str]
) -> tuple[tuple[str, ...], Callable[[Facts], tuple]] | None:
    """The program's variable names and one getter for their values, in the same order
    (what :func:`cel_variables` gives, read in one call); ``None`` when a record is whole."""
    names: list[str] = []
    paths: list[str] = []
    for root, fields in reads.items():
        if root == "today":
            continue
        if root in flat and fields is not None:
            for name in sorted(fields):
                names.append(f"{root}__{name}")
                paths.append(f"{root}.{name}")
        elif root in ("products", "crm"):  # a tuple converts into a CEL list like a list
            names.append(root)
            paths.append(root)
        else:
            return None
    if not paths:
        return None
    getter = attrgetter(*paths)
    if len(paths) == 1:
        return tuple(names), lambda facts: (getter(facts),)
    return tuple(names), getter


def _one_expression(ruleset: Ruleset, flat: frozenset[str]) -> str:
    """Every condition as one list expression, in :func:`conditions` order.

    CEL has no ``let``, but a one-element list's ``map`` binds a name to a value
    computed once: the segments' values are bound to ``onstrategy_s`` and the fit
    rules' to ``onstrategy_f`` (``segment.x`` becomes ``onstrategy_s[i]``), and
    ``fit`` itself to the first-match chain over them. A segment that names an
    earlier segment gets that segment's expression in parentheses. Fields of the
    records in ``flat`` are read as scalars (``account.industry`` as ``account__industry``).
    """
    inlined: dict[str, str] = {}
    for name, condition in ruleset.segments:
        inlined[name] = _rewrite(condition.source, lambda n: f"({inlined[n]})", None, flat)
    index = {name: i for i, name in enumerate(inlined)}

    def bound(name: str) -> str:
        return f"{SEGMENTS}[{index[name]}]"

    fits = [_rewrite(r.condition.source, bound, None, flat) for r in ruleset.fit]
    later = [
        _rewrite(c.source, bound, "fit", flat)
        for c in (
            *(r.condition for r in ruleset.warnings),
            *(r.condition for r in ruleset.coaching),
            ruleset.eligible_when,
        )
    ]
    chain = '""'
    for i in reversed(range(len(ruleset.fit))):
        chain = f"({FITS}[{i}] ? {json.dumps(ruleset.fit[i].tag)} : {chain})"
    inner = f"[{chain}].map(fit, [{_listed(later)}])[0]"
    middle = f"[[{_listed(fits)}]].map({FITS}, {FITS} + {inner})[0]"
    return f"[[{_listed(inlined.values())}]].map({SEGMENTS}, {SEGMENTS} + {middle})[0]"


def _listed(sources: Any) -> str:
    return ", ".join(f"({s})" for s in sources)


def _rewrite(
    source: str, segment: Callable[[str], str], fit: str | None, flat: frozenset[str]
) -> str:
    """``source`` with ``segment.x`` as ``segment(x)``, ``fit`` kept only where allowed and
    the fields of ``flat`` records as scalars."""

    def replace(match: re.Match[str]) -> str:
        if match.group("string"):
            return match.group(0)
        if match.group("root"):
            root = match.group("root")
            return f"{root}__{match.group('field')}" if root in flat else match.group(0)
        name = match.group("segment")
        if name is not None:
            try:
                return segment(name)
            except (KeyError, IndexError):
                raise _NotInlinable(name) from None
        if match.group("fit") and fit is not None:
            return fit
        raise _NotInlinable(match.group(0))  # ``fit`` too early, or ``segment`` used whole

    return _TOKENS.sub(replace, source)
