"""Several processes starting at once migrate the store exactly once, without errors."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = "import sys; from integration.store.database import Store; Store(sys.argv[1]).migrate()"


def test_concurrent_start_up_migrates_once(store_url):
    procs = [
        subprocess.Popen([sys.executable, "-c", SCRIPT, store_url], stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
