"""CEL conditions: compiled once per ruleset, checked against the declared variables.

Two CEL libraries, each for what it does best (measured in ``bench/cel_engines.py``):

* ``common-expression-language`` (Rust) compiles and evaluates. It is fast, but it
  reports an undefined name only when evaluation reaches it, so ``false &&
  acount.x`` would silently be false.
* ``cel-python``'s parser gives the syntax tree, which is walked here to reject
  every name and field that :mod:`integration.engine.variables` does not declare, at
  check time, wherever it stands in the expression.

Type errors (``opportunity.amount > "big"``) are found by evaluating each
condition against typed sample variables.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import cel
from celpy import celparser
from lark import Token, Tree

from integration.engine.variables import BINDING_MACROS, RECORD_FIELDS, SCALARS

_PARSER = celparser.CELParser()

#: The CEL library has no cost limit, so an expression's cost is bounded before it runs.
MAX_NODES = 5_000  #: syntax tree nodes in one expression (about 500 list items)
MAX_NESTING = 3  #: comprehensions (all, exists, map, filter...) inside one another
MAX_STEPS = 20_000  #: comprehension steps one expression may take, nested ranges multiplied
DATA_RANGE = 100  #: the length a record's list (products) is counted as


@dataclass(frozen=True)
class Scope:
    """What a condition in one place of the rule file may name."""

    segments: Collection[str]
    fit: bool = False
    tags: tuple[str, ...] | None = None  # the tags fit can hold; None: not known here


@dataclass(frozen=True)
class Condition:
    """A compiled CEL condition and where it was written.

    ``reads`` names what it reads: root variable -> its fields, or ``None`` when the
    root is used whole (``size(products)``, ``has(opportunity.x)``...), so the
    evaluation context can be built from only what the rules look at.
    """

    source: str
    line: int
    program: Any  # cel.Program
    reads: dict[str, frozenset[str] | None] = dataclasses.field(default_factory=dict, compare=False)

    def holds(self, context: Any) -> bool:
        """Evaluate against a ``cel.Context``; a non-boolean result is an error."""
        result = self.program.execute(context)
        if not isinstance(result, bool):
            raise TypeError(f"condition gave {type(result).__name__}, not true/false")
        return result


def compile_condition(source: Any, line: int, scope: Scope) -> tuple[Condition | None, list[str]]:
    """Compile ``source``; return the condition (or ``None``) and problems in words."""
    if isinstance(source, bool):
        source = "true" if source else "false"
    if not isinstance(source, str) or not source.strip():
        return None, [f"a condition must be a CEL expression in text; got {source!r}"]
    try:
        program = cel.compile(source)
    except ValueError as exc:
        return None, [f"bad CEL expression: {_first_error_line(str(exc))}"]
    problems = unknown_names(source, scope) or cost_problems(source)
    if problems:
        return None, problems
    return Condition(source, line, program, reads_of(source)), []


def reads_of(source: str) -> dict[str, frozenset[str] | None]:
    """Root variable -> the fields the expression selects from it (``None``: all of it)."""
    tree = _PARSER.parse(source)
    selected: dict[str, set[str]] = {}
    selections = list(_selections(tree))
    for root, name in selections:
        selected.setdefault(root, set()).add(name)
    bound = set(_bound_names(tree))
    whole = [n for n in _idents(tree) if n not in bound]
    reads: dict[str, frozenset[str] | None] = {
        root: frozenset(names) for root, names in selected.items()
    }
    # An identifier counted once per ``root.field`` selection; any other use is whole.
    uses = {root: sum(1 for r, _ in selections if r == root) for root in selected}
    for root in set(whole):
        if whole.count(root) > uses.get(root, 0):
            reads[root] = None
    for name in bound & set(RECORD_FIELDS):  # a macro's own variable named like a record
        reads[name] = None
    return reads


def cost_problems(source: str) -> list[str]:
    """Why evaluating ``source`` could cost too much, from its syntax alone.

    A comprehension steps once per item of its range: a list literal's items, or
    :data:`DATA_RANGE` for a record's list. Nested ones multiply; all of an
    expression's comprehensions add up.
    """
    try:
        tree = _PARSER.parse(source)
    except Exception:  # reported as a syntax problem elsewhere
        return []
    nodes = sum(1 for _ in tree.iter_subtrees())
    if nodes > MAX_NODES:
        return [f"the expression is too large ({nodes} parts; at most {MAX_NODES})"]
    steps, nesting = 0, 0
    stack: list[tuple[Any, int, int]] = [(tree, 1, 0)]
    while stack:
        node, outer, depth = stack.pop()
        if not isinstance(node, Tree):
            continue
        if node.data == "member_dot_arg" and str(node.children[1]) in BINDING_MACROS:
            inner = outer * _range_of(node.children[0])
            steps, nesting = steps + inner, max(nesting, depth + 1)
            stack.append((node.children[0], outer, depth))
            stack.extend((child, inner, depth + 1) for child in node.children[2:])
            continue
        stack.extend((child, outer, depth) for child in node.children)
    if nesting > MAX_NESTING:
        return [f"comprehensions nested {nesting} deep; at most {MAX_NESTING}"]
    if steps > MAX_STEPS:
        return [
            f"the comprehensions could take {steps:,} steps; at most {MAX_STEPS:,} "
            f"(a record's list counts as {DATA_RANGE} items, nested ranges multiply)"
        ]
    return []


def _range_of(node: Any) -> int:
    """How many items a comprehension over ``node`` steps through (an estimate)."""
    while isinstance(node, Tree) and node.data in ("member", "primary") and len(node.children) == 1:
        node = node.children[0]
    if isinstance(node, Tree) and node.data == "list_lit":
        items = node.children[0] if node.children else None
        return len(items.children) if isinstance(items, Tree) else 0
    return DATA_RANGE


def _first_error_line(message: str) -> str:
    for line in message.splitlines():
        if "ERROR:" in line:
            return line.split("ERROR:", 1)[1].strip().replace("<input>:", "column ")
    return message.splitlines()[0] if message else "syntax error"


def unknown_names(source: str, scope: Scope) -> list[str]:
    """Names and fields the expression uses that are not declared for ``scope``."""
    try:
        tree = _PARSER.parse(source)
    except Exception as exc:  # cel-python and the Rust parser disagree on an edge
        return [f"bad CEL expression: {str(exc).splitlines()[0]}"]
    bound = set(_bound_names(tree))
    roots = set(RECORD_FIELDS) | set(SCALARS) | {"segment"} | ({"fit"} if scope.fit else set())
    problems: list[str] = []
    for name in _idents(tree):
        if name not in roots and name not in bound:
            problems.append(_unknown_variable(name, scope))
    for root, field in _selections(tree):
        problems.extend(_field_problem(root, field, scope))
    if scope.fit and scope.tags:
        problems.extend(_unknown_tags(source, "fit" not in bound, scope.tags))
    return list(dict.fromkeys(problems))


_STRING = r"(?:\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')"
_FIT_COMPARED = re.compile(
    rf"(?<![\w.])fit\s*(?:==|!=)\s*({_STRING})|({_STRING})\s*(?:==|!=)\s*fit(?![\w])"
)
_FIT_IN = re.compile(rf"(?<![\w.])fit\s+in\s*\[((?:\s*{_STRING}\s*,?)*)\]")


def _unknown_tags(source: str, fit_is_free: bool, tags: tuple[str, ...]) -> list[str]:
    """``fit == "Off-Strategy"`` when no fit rule gives that tag: it could never hold."""
    if not fit_is_free:
        return []
    compared = [a or b for a, b in _FIT_COMPARED.findall(source)]
    for listed in _FIT_IN.findall(source):
        compared.extend(re.findall(_STRING, listed))
    problems = []
    for literal in compared:
        tag = literal[1:-1]
        if tag not in tags:
            hint = suggest(tag, tags, quote='"')
            problems.append(
                f'fit is compared with "{tag}", a tag no fit rule gives '
                f"(tags: {', '.join(tags)}){hint}"
            )
    return problems


def suggest(name: str, known: Iterable[str], quote: str = "`") -> str:
    """``; did you mean `x`?`` for the nearest known name, or ``""`` when none is near."""
    candidates = list(known)
    folded = {c.casefold(): c for c in candidates}
    if name.casefold() in folded:
        return f"; did you mean {quote}{folded[name.casefold()]}{quote}?"
    near = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f"; did you mean {quote}{near[0]}{quote}?" if near else ""


def _unknown_variable(name: str, scope: Scope) -> str:
    if name == "fit":
        return "'fit' is only known in warnings, coaching and compensation"
    names = sorted([*RECORD_FIELDS, *SCALARS, "segment"]) + (["fit"] if scope.fit else [])
    return f"unknown variable '{name}' (known: {', '.join(names)}){suggest(name, names)}"


def _field_problem(root: str, field: str, scope: Scope) -> list[str]:
    if root == "segment":
        if field not in scope.segments:
            known = ", ".join(scope.segments) or "none defined before this point"
            hint = suggest(f"segment.{field}", [f"segment.{s}" for s in scope.segments])
            return [f"unknown segment 'segment.{field}' (known: {known}){hint}"]
        return []
    declared = RECORD_FIELDS.get(root)
    if declared is not None and field not in declared:
        hint = suggest(f"{root}.{field}", [f"{root}.{name}" for name in declared])
        return [f"unknown field '{root}.{field}' (known: {', '.join(declared)}){hint}"]
    return []


def _idents(tree: Tree) -> Iterator[str]:
    for node in tree.iter_subtrees():
        if node.data == "ident":
            yield str(node.children[0])


def _plain_ident(node: Any) -> str | None:
    """The name when ``node`` is just an identifier (member > primary > ident)."""
    while isinstance(node, Tree) and node.data in (
        "member",
        "primary",
        "expr",
        "conditionalor",
        "conditionaland",
        "relation",
        "addition",
        "multiplication",
        "unary",
    ):
        if len(node.children) != 1:
            return None
        node = node.children[0]
    if isinstance(node, Tree) and node.data == "ident":
        return str(node.children[0])
    return None


def _selections(tree: Tree) -> Iterator[tuple[str, str]]:
    """``(root, field)`` for every ``root.field`` whose root is a plain identifier."""
    for node in tree.iter_subtrees():
        if node.data == "member_dot":
            root = _plain_ident(node.children[0])
            field = node.children[1]
            if root is not None and isinstance(field, Token):
                yield root, str(field)


def _bound_names(tree: Tree) -> Iterator[str]:
    for node in tree.iter_subtrees():
        if node.data == "member_dot_arg" and str(node.children[1]) in BINDING_MACROS:
            args = node.children[2] if len(node.children) > 2 else None
            if isinstance(args, Tree) and args.children:
                name = _plain_ident(args.children[0])
                if name:
                    yield name
