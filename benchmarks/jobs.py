"""Async jobs through a real `podium up` and the fake worker, loopback only.

    .venv/bin/python benchmarks/jobs.py [--submits 500] [--jobs 1000] [--concurrency 8]

1. Submit overhead: `POST /v1/chat/completions` with `Prefer: respond-async`, one keep-alive
   connection, one at a time; the time to the 202 (admission + the committed job row) against a
   plain synchronous request on the same connection (admission + relay + the fake replica).
2. Jobs per second: --jobs jobs submitted as fast as one connection sends them to an endpoint
   whose replica takes --concurrency at once; from the first submit to the last job finished
   (read with GET /jobs?status=…).
Podium runs in a temp data dir on a free port; nothing is left running.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ADMIN = "bench-admin-token"
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PODIUM_ADMIN_TOKEN": ADMIN}
    log = open(data_dir.parent / "podium.log", "ab")  # noqa: SIM115 (closed with the process)
    cmd = [PY, "-m", "podium.cli.main", "up", "--port", str(port), "--data-dir", str(data_dir)]
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("podium up did not start")


def endpoint(h: httpx.Client, concurrency: int, name: str = "bench") -> str:
    command = f"{PY} -m podium.worker.fake --port $PORT"
    body = {"name": name, "container": {"command": command, "port": 8000}}
    body["scaling"] = {"max_concurrency": concurrency, "min_replicas": 1}
    ep = h.post("/v0/endpoints", json=body).json()
    deadline = time.monotonic() + 60
    while h.get(f"/v0/endpoints/{ep['id']}").json()["status"]["state"] != "serving":
        if time.monotonic() > deadline:
            raise SystemExit("endpoint never served")
        time.sleep(0.05)
    return str(ep["routing_key"])


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000


def submit_overhead(h: httpx.Client, model: str, parked: str, n: int) -> None:
    """`parked`: an endpoint whose one slot a long job holds, so the jobs submitted to it stay queued
    (the submit alone); `model`: jobs that run at once (the submit while the runner works beside it)."""
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    blocker = {"model": parked, "messages": [{"role": "user", "content": "hi"}], "fake_delay": 600}
    assert h.post("/v1/chat/completions", json=blocker, headers={"Prefer": "respond-async"}).status_code == 202
    cases = (
        ("sync request", body, {}),
        ("submit, queued", {**body, "model": parked}, {"Prefer": "respond-async"}),
        ("submit, runs now", body, {"Prefer": "respond-async"}),
    )
    for label, payload, headers in cases:
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            r = h.post("/v1/chat/completions", json=payload, headers=headers)
            times.append(time.perf_counter() - t0)
            assert r.status_code in (200, 202), r.text
        print(
            f"{label:18s} n={n} p50 {pct(times, 0.5):.2f} ms  p90 {pct(times, 0.9):.2f} ms  "
            f"p99 {pct(times, 0.99):.2f} ms"
        )


def throughput(h: httpx.Client, model: str, n: int) -> None:
    """Runner throughput alone: n jobs queued at once (one batch, one transaction), until all ran; then
    n jobs submitted one by one while they run (the submit rate and the runner share the loop)."""
    wait_idle(h)
    lines = [
        json.dumps(
            {
                "custom_id": f"r{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {"model": model, "messages": [{"role": "user", "content": "hi"}]},
            }
        )
        for i in range(n)
    ]
    upload = h.post("/v1/files", files={"file": ("b.jsonl", "\n".join(lines).encode())}, data={"purpose": "batch"})
    t0 = time.perf_counter()
    body = {"input_file_id": upload.json()["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    batch = h.post("/v1/batches", json=body).json()
    wait_idle(h)
    took = time.perf_counter() - t0
    assert h.get(f"/v1/batches/{batch['id']}").json()["request_counts"]["completed"] == n
    print(f"{n} jobs queued at once (a batch): all ran in {took:.2f} s -> {n / took:.0f} jobs/s")
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    t0 = time.perf_counter()
    for _ in range(n):
        assert h.post("/v1/chat/completions", json=body, headers={"Prefer": "respond-async"}).status_code == 202
    submitted = time.perf_counter() - t0
    wait_idle(h)
    took = time.perf_counter() - t0
    print(f"{n} jobs submitted one by one: in {submitted:.2f} s, all ran in {took:.2f} s -> {n / took:.0f} jobs/s")


def wait_idle(h: httpx.Client) -> None:
    deadline = time.monotonic() + 600
    while any(h.get("/jobs", params={"status": s, "limit": 1}).json()["data"] for s in ("queued", "running")):
        if time.monotonic() > deadline:
            raise SystemExit("jobs never finished")
        time.sleep(0.05)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--submits", type=int, default=500)
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        proc = start(Path(tmp) / "data", port)
        try:
            headers = {"Authorization": f"Bearer {ADMIN}"}
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30) as h:
                model = endpoint(h, args.concurrency)
                parked = endpoint(h, 1, "parked")
                submit_overhead(h, model, parked, args.submits)
                for job in h.get("/jobs", params={"endpoint": "parked", "limit": 1000}).json()["data"]:
                    h.post(f"/jobs/{job['id']}/cancel")
                throughput(h, model, args.jobs)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
