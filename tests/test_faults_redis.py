"""Fault: Redis restarts (killed, then started again on its append-only file) with work queued.

A private ``redis-server`` with ``appendonly yes`` and ``appendfsync always`` on a
free port: acknowledged events are queued, Redis is SIGKILLed and started again on
the same folder, then real workers must process every one of them exactly once.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis

from faults_world import FaultWorld
from integration.jobs.intake import RedisIntake

pytestmark = [
    pytest.mark.faults,
    pytest.mark.skipif(
        shutil.which("redis-server") is None and not os.environ.get("CI"),
        reason="needs redis-server (CI fails instead)",
    ),
]


class PrivateRedis:
    """A redis-server of the test's own, persisted with AOF in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]
        command += ["--dir", str(self.folder)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client = Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return
            except Exception:
                time.sleep(0.1)
        raise AssertionError("the private redis-server did not start")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)


@pytest.fixture
def private_redis(tmp_path) -> Iterator[PrivateRedis]:
    folder = tmp_path / "redis"
    folder.mkdir()
    server = PrivateRedis(folder)
    server.start()
    yield server
    server.kill()


def test_redis_restart_keeps_every_acknowledged_event(tmp_path, private_redis):
    store = f"sqlite:///{tmp_path / 'store.db'}"
    world = FaultWorld(tmp_path, store, private_redis.url, reps=2, deals=4)
    try:
        deals = [d["id"] for d in world.deals]
        RedisIntake(world.redis).submit([world.event(opp, f"k-{opp}") for opp in deals])
        assert world.redis.dbsize() > 0  # acknowledged: queued in Redis, no worker yet
        private_redis.kill()  # Redis dies, as on a lost machine
        private_redis.start()  # and comes back on its append-only file
        world.start_workers(1)
        world.wait_idle(timeout=120)
        world.check_promises()
        world.check_fields({opp: "Off Strategy" for opp in deals})
        assert world.failures() == []
    finally:
        world.stop_workers()
        world.store.engine.dispose()
