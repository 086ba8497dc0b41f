"""Structure checks for rule files that say ``FILE:LINE`` and what was expected.

A JSON Schema (``rules/schema.json``) gives admins completion in their editor;
this module gives them the same checks with line numbers, plus what a schema
cannot know: that a CEL condition names only declared variables, that it yields
true/false for typed sample data, and that a template renders.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cel

from integration.engine.conditions import Condition, Scope, compile_condition, suggest
from integration.engine.templates import Template, compile_template, render_problem
from integration.engine.variables import default_variables, sample_variables
from integration.engine.yamlsource import LocatedDict, LocatedList, Problem

_TYPE_NAMES = {str: "text", int: "a whole number", bool: "true or false", float: "a number"}


def _sample_contexts(scope: Scope) -> list[Any]:
    """Typed variable sets every condition must evaluate on without error."""
    contexts = []
    for variables in (sample_variables(), default_variables()):
        variables = dict(variables, segment={name: True for name in scope.segments})
        if scope.fit:
            variables["fit"] = scope.tags[0] if scope.tags else "On Strategy"
        contexts.append(cel.Context(variables))
    return contexts


def _sample_template_variables() -> dict[str, Any]:
    return dict(sample_variables(), segment={}, fit="On Strategy")


class Checker:
    """Collects problems for one file while the ruleset is built."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def problem(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.file, line, message))

    def mapping(self, value: Any, line: int, what: str, required: bool = False) -> bool:
        if value is None and not required:
            return False
        if value is None:
            self.problem(line, f"missing key '{what}'")
            return False
        if not isinstance(value, LocatedDict):
            self.problem(line, f"{what} must be a mapping of key: value; got {_kind(value)}")
            return False
        return True

    def sequence(self, value: Any, line: int, what: str, required: bool = False) -> bool:
        if value is None:
            if required:
                self.problem(line, f"missing key '{what}'")
            return False
        if not isinstance(value, LocatedList):
            self.problem(
                line, f"{what} must be a list (items starting with '- '); got {_kind(value)}"
            )
            return False
        if required and not value:
            self.problem(line, f"{what} must have at least one rule")
            return False
        return True

    def only_keys(self, mapping: LocatedDict, allowed: Sequence[str], what: str) -> None:
        for key in mapping:
            if key not in allowed:
                self.problem(
                    mapping.line_of(key),
                    f"unknown key {key!r} in {what} (allowed: {', '.join(allowed)})"
                    f"{suggest(str(key), allowed)}",
                )

    def _get(self, mapping: LocatedDict, key: str, required: bool) -> tuple[Any, int, bool]:
        line = mapping.line_of(key)
        if key not in mapping or mapping[key] is None:
            if required:
                self.problem(mapping.line, f"missing key '{key}'")
            return None, line, False
        return mapping[key], line, True

    def _typed(self, mapping: LocatedDict, key: str, kind: type, required: bool) -> Any:
        value, line, present = self._get(mapping, key, required)
        if not present:
            return None
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.problem(line, f"'{key}' must be {_TYPE_NAMES[kind]}; got {_kind(value)} {value!r}")
            return None
        return value

    def text(self, mapping: LocatedDict, key: str, required: bool = False) -> str | None:
        return self._typed(mapping, key, str, required)

    def boolean(self, mapping: LocatedDict, key: str, default: bool) -> bool:
        value = self._typed(mapping, key, bool, False)
        return default if value is None else value

    def integer(self, mapping: LocatedDict, key: str, default: int, minimum: int) -> int:
        value = self._typed(mapping, key, int, False)
        if value is not None and value < minimum:
            self.problem(mapping.line_of(key), f"'{key}' must be at least {minimum}; got {value}")
            return default
        return default if value is None else value

    def choice(self, mapping: LocatedDict, key: str, options: Sequence[str], default: str) -> str:
        value = self._typed(mapping, key, str, False)
        if value is not None and value not in options:
            self.problem(
                mapping.line_of(key), f"'{key}' must be one of {', '.join(options)}; got {value!r}"
            )
            return default
        return default if value is None else value

    def template(self, mapping: LocatedDict, key: str, required: bool = False) -> Template | None:
        source = self._typed(mapping, key, str, required)
        if source is None:
            return None
        template, error = compile_template(source)
        error = error or render_problem(template, _sample_template_variables())  # type: ignore[arg-type]
        if error:
            self.problem(mapping.line_of(key), f"'{key}': {error}")
            return None
        return template

    def condition_key(self, mapping: LocatedDict, key: str, scope: Scope) -> Condition | None:
        value, line, present = self._get(mapping, key, True)
        return self.condition(value, line, scope) if present else None

    def condition(self, source: Any, line: int, scope: Scope) -> Condition | None:
        condition, problems = compile_condition(source, line, scope)
        for message in problems:
            self.problem(line, message)
        if condition is None:
            return None
        for context in _sample_contexts(scope):
            try:
                condition.holds(context)
            except Exception as exc:
                self.problem(line, f"type error in {condition.source!r}: {_short(exc)}")
                return None
        return condition


def _short(exc: Exception) -> str:
    return str(exc).split(". ")[0]


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return _TYPE_NAMES.get(type(value), type(value).__name__)
