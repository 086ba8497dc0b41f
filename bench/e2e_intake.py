"""The webhook path alone: gunicorn ``-w 2`` (sync) serving the app against a bare
Flask endpoint on the same server, each sent single-event signed deliveries by four
client processes (``python bench/e2e.py --events 0 --intake-requests R``)."""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bench.e2e_common import URL, empty_redis, environment, event, signed

ROOT = Path(__file__).resolve().parent.parent

# -- intake: gunicorn serving the app vs a bare Flask endpoint ------------------------------

BARE_APP = """
from flask import Flask, Response, request
app = Flask(__name__)
@app.post("/webhooks/hubspot")
def receive():
    request.get_data()
    return Response(status=204)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gunicorn(target: str, port: int, env: dict[str, str], cwd: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", target],
        env={**os.environ, **env, "PYTHONPATH": f"{ROOT}{os.pathsep}{cwd}"},
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"gunicorn {target} did not start")


def _client(args: tuple[int, int, int]) -> int:
    """One client process: ``count`` single-event deliveries, one connection each."""
    port, count, seed = args
    done = 0
    for n in range(count):
        body, headers = signed([event(seed * 10_000_000 + n, "20000000")], URL)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("POST", "/webhooks/hubspot", body=body, headers=headers)
        if connection.getresponse().status < 300:
            done += 1
        connection.close()
    return done


def load(port: int, requests: int, seed: int, clients: int = 4) -> float:
    with ProcessPoolExecutor(clients) as pool:
        start = time.time()
        done = sum(
            pool.map(_client, [(port, requests // clients, seed + c) for c in range(clients)])
        )
        elapsed = time.time() - start
    if done < requests // clients * clients:
        raise SystemExit(f"only {done} of {requests} deliveries were acknowledged")
    return done / elapsed


def run_intake(options: argparse.Namespace, folder: Path) -> None:
    redis = empty_redis()
    (folder / "bare_app.py").write_text(BARE_APP)
    env = environment(folder, "http://127.0.0.1:9", options.budget)
    env["ONSTRATEGY_HUBSPOT_WEBHOOK_URL"] = URL
    ours_port, bare_port = free_port(), free_port()
    ours = gunicorn("integration.app:create_app()", ours_port, env, folder)
    bare = gunicorn("bare_app:app", bare_port, {}, folder)
    try:
        best = {"ours": 0.0, "bare": 0.0}
        for round_ in range(3):
            best["bare"] = max(best["bare"], load(bare_port, options.intake_requests, round_ * 10))
            rate = load(ours_port, options.intake_requests, 100 + round_ * 10)
            best["ours"] = max(best["ours"], rate)
    finally:
        for process in (ours, bare):
            process.terminate()
            process.wait(timeout=30)
        redis.flushdb()
    print(
        f"intake, gunicorn -w 2 sync, single-event signed deliveries: {best['ours']:.0f} req/s "
        f"against {best['bare']:.0f} for a bare Flask endpoint: {best['ours'] / best['bare']:.2f}"
    )
