"""Replica lifecycle with real processes: crash and restart, a command that can never start,
drain on delete, adoption after `kill -9` of Podium, and nothing left running afterwards."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx

from tests.conftest import PYTHON, free_port
from tests.e2e.conftest import ADMIN, Podium, assert_no_replicas_left, create_endpoint, start_podium, stop_podium

REPLICA = f"{PYTHON} {Path(__file__).with_name('replica_server.py')} $PORT"


def create(p: Podium, name: str, command: str = REPLICA, *env: str) -> dict:
    return create_endpoint(p, name, command, env=env)


def live_replicas(p: Podium, endpoint_id: str) -> list[dict]:
    with p.http() as h:
        return h.get(f"/v0/endpoints/{endpoint_id}").json()["status"]["instances"]


def call(p: Podium, app: str, path: str = "ping", timeout: float = 10) -> httpx.Response:
    return httpx.get(f"{p.url}/e/{app}/{path}", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=timeout)


def test_crashed_replica_is_restarted(podium: Podium) -> None:
    ep = create(podium, "crashy", REPLICA, "REPLICA_EXIT_AFTER=1")
    podium.wait_state(ep["id"], "serving")
    first = live_replicas(podium, ep["id"])[0]["id"]
    assert call(podium, ep["app_name"]).status_code == 200  # ... and the replica exits(3)
    # The next request meets a dead replica before the controller noticed: it is held, not a 502,
    # and answered by the replacement.
    assert call(podium, ep["app_name"], timeout=30).status_code == 200
    deadline = time.monotonic() + 15
    while True:
        reps = [r for r in live_replicas(podium, ep["id"]) if r["state"] == "ready"]
        if reps and reps[0]["id"] != first:
            break
        assert time.monotonic() < deadline, "no replacement replica became ready"
        time.sleep(0.1)
    events = podium.cli_json("endpoint", "events", ep["id"])["events"]
    failed = [e for e in events if e["kind"] == "replica_failed"]
    assert failed and "exited with code 3" in failed[-1]["message"]


def test_command_that_never_starts_fails_the_endpoint(podium: Podium) -> None:
    ep = create(podium, "broken", f"{PYTHON} -c 'import sys; print(\"boom: bad config\"); sys.exit(2)'")
    failed = podium.wait_state(ep["id"], "failed", timeout=30)
    assert "exited with code 2" in failed["status"]["last_error"]
    assert "boom: bad config" in failed["status"]["last_error"]  # the last log lines say why
    starts = [e for e in podium.cli_json("endpoint", "events", ep["id"])["events"] if e["kind"] == "replica_started"]
    assert len(starts) == 5  # bounded retries with backoff, not a hot loop


def test_delete_drains_in_flight_requests(podium: Podium) -> None:
    ep = create(podium, "drainme")
    podium.wait_state(ep["id"], "serving")
    result: dict[str, httpx.Response] = {}
    t = threading.Thread(target=lambda: result.setdefault("r", call(podium, ep["app_name"], "slow?s=1.5")))
    t.start()
    time.sleep(0.4)  # the request is in flight on the replica
    podium.cli("endpoint", "delete", "--id", ep["id"])
    t.join(10)
    assert result["r"].status_code == 200  # finished, not cut
    deadline = time.monotonic() + 15
    with podium.http() as h:
        while h.get(f"/v0/endpoints/{ep['id']}").status_code != 404:
            assert time.monotonic() < deadline
            time.sleep(0.1)


def test_kill_9_then_restart_adopts_the_running_replica(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    p = start_podium(data_dir, port)
    try:
        ep = create(p, "survivor")
        p.wait_state(ep["id"], "serving")
        before = call(p, ep["app_name"]).json()
        p.proc.send_signal(signal.SIGKILL)
        p.proc.wait(10)
        p = start_podium(data_dir, port)
        p.wait_state(ep["id"], "serving", timeout=15)
        after = call(p, ep["app_name"]).json()
        assert after["pid"] == before["pid"] and after["replica"] == before["replica"]  # adopted, not restarted
        kinds = [e["kind"] for e in p.cli_json("endpoint", "events", ep["id"])["events"]]
        assert "replica_adopted" in kinds
    finally:
        stop_podium(p)
    assert_no_replicas_left(p.mark)  # SIGTERM ended what the restarted Podium adopted
