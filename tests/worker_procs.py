"""Real ``onstrategy worker`` processes for the fault suites: started, and stopped for sure.

Each worker starts in its own process group, so its RQ scheduler child goes with it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO

COMMAND = [sys.executable, "-c", "from integration.cli.commands import main; main()", "worker"]


def start_worker(env: dict[str, str], log: IO[bytes], cwd: Path | None = None) -> subprocess.Popen:
    """One worker with ``env``, its output appended to ``log``."""
    return subprocess.Popen(
        COMMAND,
        env=env,
        cwd=cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # the worker and its scheduler: one group
    )


def stop_workers(workers: list[subprocess.Popen]) -> None:
    """SIGTERM (a warm shut-down: the job in hand finishes), SIGKILL after 20 s, and the
    scheduler child of each group too."""
    for worker in workers:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=5)
    for worker in workers:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)  # a scheduler child left behind
    workers.clear()
