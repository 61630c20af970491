"""The autoscaler end to end, as a user sees it: `podium up`, the CLI, plain HTTP to the gateway.

The replica is `slow_worker.py` (stdlib, boots in ~0.1 s) so requests can be held in flight.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

import tests.e2e.conftest as harness
from tests.conftest import PYTHON, free_port
from tests.e2e.conftest import (
    ADMIN,
    Podium,
    assert_no_replicas_left,
    create_endpoint,
    replica_pids,
    start_podium,
    stop_podium,
)

pytestmark = pytest.mark.e2e

WORKER = Path(__file__).resolve().parent / "slow_worker.py"
CLI = Path(PYTHON).parent / "podium"  # the console script, as users run it (.venv/bin/podium)


@pytest.fixture
def podium(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Podium]:
    """The shared e2e harness, driving `.venv/bin/podium` for `up` and every CLI call."""
    monkeypatch.setattr(harness, "PODIUM", [str(CLI)])
    p = start_podium(tmp_path / "data", free_port())
    try:
        yield p
    finally:
        stop_podium(p)
        assert_no_replicas_left(p.mark)


def create(p: Podium, name: str, delay: float, *flags: str) -> dict:
    return create_endpoint(p, name, f"{PYTHON} {WORKER} --port $PORT --delay {delay}", *flags)


def call(p: Podium, app_name: str, timeout: float = 30) -> httpx.Response:
    return httpx.post(
        f"{p.url}/e/{app_name}/work", json={}, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=timeout
    )


def wait_for(p: Podium, endpoint_id: str, ok: Callable[[dict], bool], timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        ep = p.cli_json("endpoint", "get", endpoint_id)
        if ok(ep):
            return ep
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {ep['status']}")
        time.sleep(0.1)


def test_request_count_brings_a_second_replica(podium: Podium) -> None:
    ep = create(
        podium,
        "rc",
        3.0,
        "--min-replicas", "1",
        "--max-replicas", "2",
        "--max-concurrency", "1",
        "--scale-policy", "request-count=1",
    )  # fmt: skip
    podium.wait_state(ep["id"], "serving")
    results: list[int] = []
    threads = [
        threading.Thread(target=lambda: results.append(call(podium, ep["app_name"]).status_code)) for _ in range(2)
    ]
    started = time.monotonic()
    for t in threads:
        t.start()
    # One request runs on the only replica, one waits: request-count=1 asks for two replicas.
    scaled = wait_for(podium, ep["id"], lambda e: e["status"]["ready_replicas"] == 2, timeout=20)
    assert time.monotonic() - started < 3.0  # the second replica was up before the first request ended
    assert scaled["status"]["desired_replicas"] == 2
    assert "request-count" in scaled["status"]["autoscaler_reason"]
    for t in threads:
        t.join(30)
    assert results == [200, 200]
    with podium.http() as h:
        events = h.get(f"/v0/endpoints/{ep['id']}/events").json()["events"]
    assert any(e["kind"] == "scaled" and "-> 2" in e["message"] for e in events), events


def test_idle_timeout_to_zero_and_the_next_request_wakes_it(podium: Podium) -> None:
    ep = create(
        podium,
        "idle",
        0.0,
        "--min-replicas", "0",
        "--max-replicas", "1",
        "--idle-timeout", "2",
    )  # fmt: skip
    assert call(podium, ep["app_name"]).status_code == 200  # held at zero, woken, answered
    assert replica_pids(podium.mark)

    idle = wait_for(
        podium,
        ep["id"],
        lambda e: e["status"]["desired_replicas"] == 0 and not e["status"]["instances"],
        timeout=20,
    )
    assert "idle" in idle["status"]["autoscaler_reason"]
    deadline = time.monotonic() + 10
    while replica_pids(podium.mark):
        assert time.monotonic() < deadline, "replica process still running after scale to zero"
        time.sleep(0.1)

    started = time.monotonic()
    assert call(podium, ep["app_name"]).status_code == 200  # the next request wakes it again
    assert time.monotonic() - started < 10
    woken = podium.cli_json("endpoint", "get", ep["id"])
    assert woken["status"]["desired_replicas"] == 1
