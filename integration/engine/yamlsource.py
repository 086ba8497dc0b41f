"""YAML that remembers where each value came from.

Admins edit rule files by hand, so every problem must point at ``FILE:LINE``.
PyYAML's safe loader is kept (no arbitrary objects); mappings and sequences are
built as :class:`LocatedDict` / :class:`LocatedList`, which carry the line of
each key or item. Duplicate keys, which plain YAML silently overwrites, are
reported as problems instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a rule file, printed as ``FILE:LINE: message``."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        if not self.line:  # not about a line of a file (the store, nothing published)
            return f"{self.file}: {self.message}"
        return f"{self.file}:{self.line}: {self.message}"


class LocatedDict(dict):
    """A mapping with ``line`` (where it starts) and ``lines[key]``."""

    line: int = 0
    lines: dict[Any, int]

    def line_of(self, key: Any) -> int:
        return self.lines.get(key, self.line)


class LocatedList(list):
    """A sequence with ``line`` and ``lines[index]``."""

    line: int = 0
    lines: list[int]

    def line_of(self, index: int) -> int:
        return self.lines[index] if index < len(self.lines) else self.line


class _Loader(yaml.SafeLoader):
    """Safe loader that builds located containers and collects duplicate keys."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[tuple[int, Any]] = []

    def compose_node(self, parent: Any, index: Any) -> Any:
        """Refuse anchors and aliases: rule files never need them, and nested aliases
        expand exponentially (a "billion laughs" document of a few lines)."""
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise yaml.MarkedYAMLError(
                problem="anchors and aliases (&name, *name) are not allowed in rule files",
                problem_mark=event.start_mark,
            )
        return super().compose_node(parent, index)


def _mapping(loader: _Loader, node: yaml.MappingNode) -> LocatedDict:
    result = LocatedDict()
    result.line = node.start_mark.line + 1
    result.lines = {}
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in result:
            loader.duplicates.append((line, key))
        result[key] = loader.construct_object(value_node, deep=True)
        result.lines[key] = line
    return result


def _sequence(loader: _Loader, node: yaml.SequenceNode) -> LocatedList:
    result = LocatedList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.lines = [child.start_mark.line + 1 for child in node.value]
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _sequence)


def load(text: str, file: str) -> tuple[Any, list[Problem]]:
    """Parse ``text``; return the document and the problems found while parsing."""
    loader = _Loader(text)
    try:
        document = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        return None, [Problem(file, line, f"not valid YAML: {exc.problem or exc}")]
    except yaml.YAMLError as exc:
        return None, [Problem(file, 1, f"not valid YAML: {exc}")]
    finally:
        loader.dispose()
    problems = [Problem(file, line, f"duplicate key {key!r}") for line, key in loader.duplicates]
    return document, problems
