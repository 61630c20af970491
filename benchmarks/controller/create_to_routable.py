"""Podium's share of `endpoint create` -> first answer, with the worker's own boot taken out.

  .venv/bin/python benchmarks/controller/create_to_routable.py [--rounds 5]

1. Boot the worker alone (same command) and time spawn -> /health 200: the worker's boot.
2. Against a real `podium up`: POST /v0/endpoints, then at once POST a chat completion (the gateway
   holds it until a replica is ready), and time create -> first 200.
Overhead = (2) - (1): API write, controller wake-up, spawn, readiness probing, route publish, proxying.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ADMIN = "bench-admin"
WORKER = [sys.executable, "-m", "podium.worker.fake", "--port"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def worker_boot() -> float:
    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen([*WORKER, str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with httpx.Client() as c:
            while True:
                try:
                    if c.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                        return time.perf_counter() - t0
                except httpx.HTTPError:
                    time.sleep(0.005)
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    boots = [worker_boot() for _ in range(args.rounds)]
    port = free_port()
    data = Path(tempfile.mkdtemp())
    env = {**os.environ, "PODIUM_ADMIN_TOKEN": ADMIN}
    up = subprocess.Popen([sys.executable, "-m", "podium.cli.main", "up", "--port", str(port), "--data-dir",
                           str(data)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    totals = []
    try:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=60) as c:
            while True:
                try:
                    if c.get("/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.05)
            for i in range(args.rounds):
                cmd = " ".join(WORKER) + " $PORT"
                t0 = time.perf_counter()
                ep = c.post("/v0/endpoints", json={"name": f"b{i}", "container": {"command": cmd}}).json()
                r = c.post("/v1/chat/completions", json={"model": ep["routing_key"], "messages": [
                    {"role": "user", "content": "hi"}]})
                totals.append(time.perf_counter() - t0)
                assert r.status_code == 200, r.text
                c.delete(f"/v0/endpoints/{ep['id']}")
    finally:
        up.terminate()
        up.wait()
    boot, total = statistics.median(boots), statistics.median(totals)
    print(f"worker boot (alone)        median {boot * 1000:7.1f} ms  {[round(b * 1000) for b in boots]}")
    print(f"create -> first answer     median {total * 1000:7.1f} ms  {[round(t * 1000) for t in totals]}")
    print(f"Podium's overhead          median {(total - boot) * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
