"""Several processes starting at once migrate the store exactly once, without errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = "import sys; from integration.store.database import Store; Store(sys.argv[1]).migrate()"


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_concurrent_start_up_migrates_once(database, tmp_path, request):
    url = (
        f"sqlite:///{tmp_path / 'store.db'}"
        if database == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", SCRIPT, url], stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
