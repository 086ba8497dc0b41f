"""Admin-edited CSV files (target accounts, managers) read with line numbers.

Both files are checked whole before use: unknown or missing columns, empty
values and conflicting duplicate rows are problems with ``FILE:LINE``, and a
file with any problem is rejected so the previous version stays in force.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator, Sequence
from pathlib import Path

from integration.domain.crms import CRM_NAMES
from integration.engine.yamlsource import Problem


def crm_of(row: dict[str, str], path: Path, line: int, problems: list[Problem]) -> str | None:
    """The row's CRM name, or ``None`` after recording why it is not one."""
    crm = row["crm"].lower()
    if crm in CRM_NAMES:
        return crm
    problems.append(
        Problem(str(path), line, f"crm must be one of {', '.join(CRM_NAMES)}; got {row['crm']!r}")
    )
    return None


def read_rows(
    path: Path,
    columns: Sequence[str],
    optional: Sequence[str] = (),
    raw: bytes | None = None,
) -> tuple[list[tuple[int, dict[str, str]]], list[Problem], str]:
    """``(line, row)`` pairs, the problems, and the file's content hash.

    ``raw`` is the file's content when it comes from a published version rather
    than the folder; ``path`` then only names it in problems.
    """
    shown = str(path)
    if raw is None:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            return [], [Problem(shown, 1, f"cannot read: {exc.strerror}")], ""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return [], [Problem(shown, 1, "not UTF-8 text")], ""
    rows, problems = _parse(text, shown, columns, optional)
    return rows, problems, hashlib.sha256(raw).hexdigest()[:12]


def _parse(
    text: str, shown: str, columns: Sequence[str], optional: Sequence[str]
) -> tuple[list[tuple[int, dict[str, str]]], list[Problem]]:
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        return [], [Problem(shown, 1, f"empty file: the first line must be {','.join(columns)}")]
    except csv.Error as exc:
        return [], [Problem(shown, 1, f"not valid CSV: {exc}")]
    problems = _header_problems(header, shown, columns, optional)
    if problems:
        return [], problems
    rows = []
    for line, values in _lines(reader, shown, problems):
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            problems.append(
                Problem(shown, line, f"expected {len(header)} values, got {len(values)}")
            )
            continue
        row = {h: v.strip() for h, v in zip(header, values, strict=True)}
        missing = [c for c in columns if not row[c]]
        if missing:
            problems.append(Problem(shown, line, f"empty {', '.join(missing)}"))
            continue
        rows.append((line, row))
    return rows, problems


def _lines(reader: Iterator[list[str]], shown: str, problems: list[Problem]):
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            problems.append(Problem(shown, reader.line_num, f"not valid CSV: {exc}"))  # type: ignore[attr-defined]
            return
        yield reader.line_num, values  # type: ignore[attr-defined]


def _header_problems(
    header: list[str], shown: str, columns: Sequence[str], optional: Sequence[str]
) -> list[Problem]:
    problems = []
    unknown = [h for h in header if h not in columns and h not in optional]
    if unknown:
        problems.append(
            Problem(
                shown, 1, f"unknown column(s) {', '.join(unknown)} (expected {','.join(columns)})"
            )
        )
    missing = [c for c in columns if c not in header]
    if missing:
        problems.append(Problem(shown, 1, f"missing column(s) {', '.join(missing)}"))
    if len(set(header)) != len(header):
        problems.append(Problem(shown, 1, "a column is named twice"))
    return problems
