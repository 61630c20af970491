"""End-to-end reaction times with a real `podium up`, measured from the user's side.

1. first request at zero -> the controller has started a replica (`replica_started` event);
   budget 50 ms for Podium's share (the replica's own boot is not counted).
2. queue-delay breach -> second replica started: a request waits behind a busy replica
   (max_concurrency 1, queue-delay=0.5); the breach happens 0.5 s after it was sent; budget 1 s.

Times come from the client's wall clock and the events' timestamps (same machine). Each round
uses a new endpoint. The replica is tests/autoscaler/slow_worker.py (stdlib, boots in ~0.1 s).

    .venv/bin/python benchmarks/autoscaler/e2e_latency.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
WORKER = REPO / "tests" / "autoscaler" / "slow_worker.py"
CLI = Path(sys.executable).parent / "podium"
TOKEN = "bench-admin-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Podium:
    def __init__(self, data_dir: Path) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        env = {**os.environ, "PODIUM_ADMIN_TOKEN": TOKEN}
        port = self.url.rsplit(":", 1)[1]
        self.log = open(data_dir.parent / "podium.log", "ab")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [str(CLI), "up", "--port", port, "--data-dir", str(data_dir)], env=env, stdout=self.log, stderr=self.log
        )
        self.http = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if self.http.get("/healthz").status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("podium up did not start")

    def stop(self) -> None:
        self.http.close()
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()

    def create(self, name: str, delay: float, scaling: dict[str, object]) -> dict:
        spec = {
            "name": name,
            "container": {"command": f"{sys.executable} {WORKER} --port $PORT --delay {delay}"},
            "health_check_path": "/health",
            "scaling": scaling,
        }
        resp = self.http.post("/v0/endpoints", json=spec)
        resp.raise_for_status()
        return resp.json()

    def started_at(self, endpoint_id: str, count: int, timeout: float = 20) -> list[float]:
        """Times of the first `count` replica_started events, waiting for them to appear."""
        deadline = time.monotonic() + timeout
        while True:
            events = self.http.get(f"/v0/endpoints/{endpoint_id}/events").json()["events"]
            starts = sorted(e["at"] for e in events if e["kind"] == "replica_started")
            if len(starts) >= count or time.monotonic() > deadline:
                return starts
            time.sleep(0.05)

    def delete(self, endpoint_id: str) -> None:
        """Delete and wait until it is gone (its reservation with it)."""
        self.http.delete(f"/v0/endpoints/{endpoint_id}")
        while self.http.get(f"/v0/endpoints/{endpoint_id}").status_code != 404:
            time.sleep(0.05)

    def call(self, app_name: str) -> int:
        return self.http.post(f"/e/{app_name}/work", json={}).status_code


def wake_round(p: Podium, n: int) -> float:
    ep = p.create(f"wake-{n}", 0.0, {"min_replicas": 0, "max_replicas": 1})
    time.sleep(0.3)  # let the controller settle the new endpoint at zero
    sent = time.time()
    assert p.call(ep["app_name"]) == 200
    took = p.started_at(ep["id"], 1)[0] - sent
    p.delete(ep["id"])
    return took


def breach_round(p: Podium, n: int) -> float:
    scaling = {
        "min_replicas": 1,
        "max_replicas": 2,
        "max_concurrency": 1,
        "scale_policy": {"kind": "queue-delay", "value": 0.5},
    }
    ep = p.create(f"breach-{n}", 2.0, scaling)
    while p.http.get(f"/v0/endpoints/{ep['id']}").json()["status"]["ready_replicas"] < 1:
        time.sleep(0.05)
    busy = threading.Thread(target=p.call, args=(ep["app_name"],))
    busy.start()
    time.sleep(0.2)  # the first request holds the only slot
    queued_at = time.time()
    waiting = threading.Thread(target=p.call, args=(ep["app_name"],))
    waiting.start()
    starts = p.started_at(ep["id"], 2)
    busy.join()
    waiting.join()
    p.delete(ep["id"])
    return starts[1] - (queued_at + 0.5)


def show(name: str, samples: list[float]) -> None:
    ms = sorted(s * 1000 for s in samples)
    print(f"{name:44} n={len(ms)}  p50 {statistics.median(ms):7.1f} ms  max {ms[-1]:7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory() as tmp:
        p = Podium(Path(tmp) / "data")
        try:
            show("first request at zero -> replica started", [wake_round(p, n) for n in range(rounds)])
            show("queue-delay breach -> 2nd replica started", [breach_round(p, n) for n in range(rounds)])
        finally:
            p.stop()


if __name__ == "__main__":
    main()
