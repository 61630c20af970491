"""CPU that an idle `podium up` burns, with N idle endpoints (min 0, no traffic).

  .venv/bin/python benchmarks/controller/idle_cpu.py [--endpoints 100] [--seconds 30]

Starts `podium up` (role all) on a free port with a fresh data dir, creates the endpoints over the
API, lets it settle, then reads utime+stime of the process from /proc/<pid>/stat over `--seconds`.
Prints the share of one core.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ADMIN = "bench-admin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime (fields 14 and 15 of the whole line)


def wait_healthy(url: str, deadline_s: float = 30) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("podium up did not become healthy")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoints", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data:
        env = {**os.environ, "PODIUM_ADMIN_TOKEN": ADMIN}
        cmd = [
            sys.executable,
            "-c",
            "from podium.cli.main import main; main()",
            "up",
            "--port",
            str(port),
            "--data-dir",
            data,
            "--log-level",
            "warning",
        ]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_healthy(url)
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30) as api:
                for i in range(args.endpoints):
                    spec = {
                        "name": f"idle-{i}",
                        "container": {"command": "sleep 1000"},
                        "scaling": {"min_replicas": 0, "max_replicas": 1},
                    }
                    api.post("/v0/endpoints", json=spec).raise_for_status()
            time.sleep(5)  # settle: the writes' ticks and the autoscaler's first reads are done
            hz = os.sysconf("SC_CLK_TCK")
            before, t0 = cpu_ticks(proc.pid), time.monotonic()
            time.sleep(args.seconds)
            used = (cpu_ticks(proc.pid) - before) / hz
            share = used / (time.monotonic() - t0)
            print(f"idle podium up, {args.endpoints} endpoints: {share * 100:.2f}% of a core ({used:.2f} s CPU)")
        finally:
            proc.terminate()
            proc.wait(timeout=20)


if __name__ == "__main__":
    main()
