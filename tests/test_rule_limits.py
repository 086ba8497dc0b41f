"""Expensive but valid-looking rule files get a clear FILE:LINE error in seconds."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from integration.cli.commands import main

ROOT = Path(__file__).resolve().parent.parent

_LIST = "[" + ",".join(str(i) for i in range(100)) + "]"

BOMB = """  laugh0: &l0 "true"
  laugh1: &l1 [*l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0]
  laugh2: &l2 [*l1, *l1, *l1, *l1, *l1, *l1, *l1, *l1, *l1]
"""


def _rules(tmp_path: Path, old: str, new: str) -> Path:
    folder = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", folder)
    path = folder / "strategy.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return folder


def _check(folder: Path) -> tuple[int, str, float]:
    started = time.monotonic()
    result = CliRunner().invoke(main, ["rules", "check", "--rules", str(folder)])
    return result.exit_code, result.output, time.monotonic() - started


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("segments:\n", "segments:\n" + BOMB, "anchors and aliases"),
        (
            'subject: "Coach {{ owner.name }}',
            "subject: \"{{ 'a' * 1000000000 }}Coach {{ owner.name }}",
            "would build more than",
        ),
        (
            'subject: "Coach {{ owner.name }}',
            'subject: "{% for i in range(100000) %}{% for j in range(100000) %}x'
            "{% endfor %}{% endfor %}Coach {{ owner.name }}",
            "range() of more than",
        ),
        (
            "large_deal: opportunity.amount >= 100000",
            "large_deal: '"
            + _LIST
            + ".map(a, "
            + _LIST
            + ".map(b, "
            + _LIST
            + ".map(c, a + b + c))).size() > 0'",
            "31: the comprehensions could take 1,010,100 steps; at most 20,000",
        ),
        (
            "large_deal: opportunity.amount >= 100000",
            "large_deal: products.exists(a, products.exists(b, products.exists(c,"
            " products.exists(d, a + b + c + d == ''))))",
            "31: comprehensions nested 4 deep; at most 3",
        ),
    ],
    ids=[
        "yaml-alias-bomb",
        "string-multiplication",
        "nested-ranges",
        "cel-comprehension-steps",
        "cel-comprehension-nesting",
    ],
)
def test_expensive_rules_are_refused_quickly_with_file_and_line(tmp_path, old, new, message):
    code, output, seconds = _check(_rules(tmp_path, old, new))
    assert code == 1
    assert message in output
    assert "strategy.yaml:" in output
    assert seconds < 10


HUNDRED = "[" + ",".join(str(i) for i in range(100)) + "]"
#: Each condition costs ten thousand steps, within the budget of one expression; eighty
#: of them, evaluated on the check's sample records, cost the CEL library minutes.
COSTLY_SEGMENTS = "".join(
    f"  costly_{n}: '{HUNDRED}.map(a, {HUNDRED}.map(b, a + b + {n})).size() > 0'\n"
    for n in range(80)
)


@pytest.mark.parametrize("command", ["check", "test", "preview", "publish"])
def test_a_costly_condition_is_stopped_by_the_checks_limits_in_seconds(tmp_path, command):
    folder = _rules(tmp_path, "segments:\n", "segments:\n" + COSTLY_SEGMENTS)
    env = {"ONSTRATEGY_DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}"}
    env["ONSTRATEGY_REDIS_URL"] = ""
    if command == "preview":  # a preview compares the draft with the live version
        published = CliRunner().invoke(main, ["rules", "publish", "--yes"], env=env)
        assert published.exit_code == 0, published.output
    started = time.monotonic()
    result = CliRunner().invoke(
        main,
        ["rules", command, "--rules", str(folder)] + (["--yes"] if command == "publish" else []),
        env=env,
    )
    seconds = time.monotonic() - started
    assert result.exit_code == 1, result.output
    [line] = [line for line in result.output.splitlines() if "too costly" in line]
    assert line.startswith(f"{folder}/strategy.yaml:1: the rules are too costly to check")
    assert "Traceback" not in result.output
    assert seconds < 30  # in the same process: minutes
