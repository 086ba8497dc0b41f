"""Check (and test) a draft of the rules in a child process with CPU and memory limits.

A draft is untrusted: a valid rule file can still ask for work without end (a CEL
comprehension nested over long lists, a template that builds a huge string). The
checks evaluate conditions and templates, so they run in a child process whose CPU
time and address space are capped with ``setrlimit``: a costly draft ends in one
clear line within seconds, and the admin's shell (or the service) is not taken down.

Run as ``python -m integration.cli.rules_sandbox DIR [check|test]`` by
:func:`check_draft`; the child prints the usual ``FILE:LINE: message`` lines.
"""

from __future__ import annotations

import resource
import subprocess
import sys
from collections.abc import Sequence

from integration.engine.casebook import run_tests
from integration.engine.rulebook import Rulebook, load_rulebook
from integration.engine.ruleset import RULE_FILE

CPU_SECONDS = 5  #: CPU time the child may spend on one check
MEMORY_BYTES = 2 * 1024**3  #: address space the child may map
WALL_SECONDS = 60  #: on a loaded machine CPU time is not wall time: a last bound


def _limit() -> None:
    """In the child, before it runs: cap CPU time (SIGXCPU, then SIGKILL) and memory."""
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS + 2))
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))


def check_draft(directory: str, mode: str = "check") -> tuple[int, list[str]]:
    """(exit code, lines to show) of checking ``directory`` (``mode`` ``test``: and its tests).

    Exit code 0: valid (tests pass); 1: problems, each a line. When a limit is hit
    the one line names the rule file and the limit.
    """
    command = [sys.executable, "-W", "ignore::RuntimeWarning", "-m", __name__, directory, mode]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=WALL_SECONDS, preexec_fn=_limit
        )
    except subprocess.TimeoutExpired:
        return 1, [_too_costly(directory, f"did not finish within {WALL_SECONDS} s")]
    lines = done.stdout.splitlines()
    if done.returncode in (0, 1):
        return done.returncode, lines
    if done.returncode < 0 or "MemoryError" in done.stderr:
        return 1, [*lines, _too_costly(directory, _which_limit(done.returncode, done.stderr))]
    last = (done.stderr.strip().splitlines() or ["the check stopped"])[-1]
    return 1, [*lines, f"{directory}/{RULE_FILE}:1: the check failed: {last}"]


def _which_limit(returncode: int, stderr: str) -> str:
    if "MemoryError" in stderr:
        return f"needs more than {MEMORY_BYTES // 1024**2} MB of memory"
    return f"needs more than {CPU_SECONDS} s of CPU (stopped by signal {-returncode})"


def _too_costly(directory: str, what: str) -> str:
    return (
        f"{directory}/{RULE_FILE}:1: the rules are too costly to check: the check {what}; "
        "look for comprehensions nested over long lists or templates that build huge text"
    )


def case_lines(rulebook: Rulebook, directory: str, quiet: bool) -> tuple[bool, list[str]]:
    """Run the rule test cases in ``directory``; (all pass, lines to show)."""
    results, problems = run_tests(rulebook.ruleset, directory)
    lines = [str(problem) for problem in problems]
    for result in results:
        if result.passed:
            continue
        lines.append(f"FAIL {result.file}:{result.line}: {result.name}")
        for key, expected, actual in result.mismatches:
            lines.append(f"    {key}: expected {expected!r}, got {actual!r}")
        lines.extend(f"    error: {error}" for error in result.errors)
    failed = sum(not r.passed for r in results)
    if not quiet or failed or problems:
        lines.append(f"{len(results) - failed} passed, {failed} failed")
    return not (failed or problems or not results), lines


def main(argv: Sequence[str]) -> int:
    """The child: check the folder (and run its tests in ``test`` mode), print, exit 0/1."""
    directory, mode = argv[0], (argv[1] if len(argv) > 1 else "check")
    rulebook, problems = load_rulebook(directory)
    for problem in problems:
        print(problem)
    if rulebook is None:
        return 1
    if mode in ("test", "quiet-test"):
        passed, lines = case_lines(rulebook, directory, quiet=mode == "quiet-test")
        for line in lines:
            print(line)
        return 0 if passed else 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
