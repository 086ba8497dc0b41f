"""Admin CSV files, directly: every problem has FILE:LINE, blank lines and a BOM are fine."""

from __future__ import annotations

import pytest

from integration.engine.csvfiles import crm_of, read_rows

COLUMNS = ("crm", "account_id")


def _read(tmp_path, content: bytes | str, optional=()):
    path = tmp_path / "targets.csv"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    rows, problems, digest = read_rows(path, COLUMNS, optional)
    return rows, [f"{p.line}: {p.message}" for p in problems], digest


def test_rows_keep_their_line_numbers_past_a_bom_and_blank_lines(tmp_path):
    text = "\ufeffcrm, account_id ,note\nhubspot, 10 ,\n\n,,\nsalesforce,001A,big\n"
    rows, problems, digest = _read(tmp_path, text, optional=("note",))
    assert problems == []
    assert rows == [
        (2, {"crm": "hubspot", "account_id": "10", "note": ""}),
        (5, {"crm": "salesforce", "account_id": "001A", "note": "big"}),
    ]
    assert len(digest) == 12 and _read(tmp_path, text, ("note",))[2] == digest


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", ["1: empty file: the first line must be crm,account_id"]),
        (b"crm,account_id\n\xff\xfe,1\n", ["1: not UTF-8 text"]),
        (
            "crm,acount_id\n",
            [
                "1: unknown column(s) acount_id (expected crm,account_id)",
                "1: missing column(s) account_id",
            ],
        ),
        ("crm,account_id,crm\n", ["1: a column is named twice"]),
        (
            "crm,account_id\nhubspot\nhubspot, \n",
            ["2: expected 2 values, got 1", "3: empty account_id"],
        ),
    ],
)
def test_problems_name_the_line(tmp_path, content, expected):
    rows, problems, _ = _read(tmp_path, content)
    assert rows == [] and problems == expected


def test_a_missing_file_is_a_problem_not_a_crash(tmp_path):
    _, [problem], digest = read_rows(tmp_path / "absent.csv", COLUMNS)
    assert problem.message.startswith("cannot read: ") and digest == ""


def test_crm_names_are_case_insensitive_and_checked(tmp_path):
    problems: list = []
    assert crm_of({"crm": "HubSpot"}, tmp_path / "t.csv", 2, problems) == "hubspot"
    assert crm_of({"crm": "zoho"}, tmp_path / "t.csv", 3, problems) is None
    [problem] = problems
    assert problem.line == 3 and problem.message.endswith("got 'zoho'")
