"""Replica logs through the CLI and REST: tail, one replica, follow, and an unknown replica."""

from __future__ import annotations

import contextlib
import queue
import subprocess
import threading
import time
from pathlib import Path

from tests.conftest import PYTHON
from tests.e2e.conftest import PODIUM, Podium, create_endpoint
from tests.e2e.test_lifecycle import call

SERVER = f"{PYTHON} {Path(__file__).with_name('replica_server.py')} $PORT"


def test_logs_tail_replica_and_follow(podium: Podium) -> None:
    ep = create_endpoint(podium, "logged", SERVER)
    served = podium.wait_state(ep["id"], "serving")
    rid = served["status"]["instances"][0]["id"]
    assert call(podium, ep["app_name"], "first-call").status_code == 200
    deadline = time.monotonic() + 10
    while "/first-call" not in (out := podium.cli("endpoint", "logs", ep["id"], "--tail", "20").stdout):
        assert time.monotonic() < deadline, out
        time.sleep(0.1)
    with podium.http() as h:
        one = h.get(f"/v0/endpoints/{ep['id']}/logs", params={"replica": rid, "tail": 5})
        assert one.status_code == 200 and "/first-call" in one.text
        assert h.get(f"/v0/endpoints/{ep['id']}/logs", params={"replica": "rep-nope"}).status_code == 404

    follow = subprocess.Popen(
        [*PODIUM, "endpoint", "logs", ep["id"], "--follow", "--tail", "0"],
        env=podium.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert follow.stdout is not None
    reader = threading.Thread(target=lambda: [lines.put(line) for line in follow.stdout], daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        # The follower attaches at some point after it starts: call until a call made after that is
        # seen (a condition, not a fixed sleep), within a deadline.
        deadline = time.monotonic() + 15
        seen = ""
        while "/while-following" not in seen:
            assert time.monotonic() < deadline, seen
            assert call(podium, ep["app_name"], "while-following").status_code == 200
            with contextlib.suppress(queue.Empty):
                while True:
                    seen += lines.get(timeout=0.5)
    finally:
        follow.terminate()
        follow.wait(10)
