"""Podium's gateway vs nginx (and direct), pinned like /work/shared/bench: a quick side-by-side.

    BENCH_HOME=/tmp/podium-bench .venv/bin/python benchmarks/gateway/bench.py [--duration 5]
        [--targets direct,nginx,podium] [--shapes ns1,ns16,ns64,st16,st64] [--listener fast]

upstream.py + load generator on cpu 0, the gateway under test alone on cpu 1. Gateway CPU per
request comes from /proc (utime+stime of the gateway process). Loopback only, bounded runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

BENCH = Path(os.environ.get("BENCH_DIR", "/work/shared/bench"))
HOME = Path(os.environ.get("BENCH_HOME", "/tmp/podium-bench"))
BPY = str(HOME / ".venv/bin/python")
HERE = Path(__file__).resolve().parent
UPSTREAM_PORT, NGINX_PORT, PODIUM_PORT = 18400, 18401, 18402
TICK = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid: int) -> tuple[int, int]:
    """(user, system) clock ticks of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])


def wait_http(url: str, data: bytes | None = None, timeout: float = 20, token: str = "bench-token") -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            req = urllib.request.Request(
                url, data=data, headers={"content-type": "application/json", "authorization": f"Bearer {token}"}
            )
            with urllib.request.urlopen(req, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{url} never answered")
        time.sleep(0.1)


def start_targets(targets: list[str], listener: str, tmp: Path) -> dict[str, subprocess.Popen[bytes]]:
    procs: dict[str, subprocess.Popen[bytes]] = {}
    procs["upstream"] = subprocess.Popen(
        ["taskset", "-c", "0", BPY, str(BENCH / "upstream.py"), "--port", str(UPSTREAM_PORT)],
        stdout=subprocess.DEVNULL,
    )
    wait_http(f"http://127.0.0.1:{UPSTREAM_PORT}/health")
    if "nginx" in targets:
        conf = (BENCH / "conf/nginx.conf.tmpl").read_text()
        conf = conf.replace("@PREFIX@", str(tmp)).replace("@PORT@", str(NGINX_PORT))
        conf = conf.replace("@UPSTREAM_PORT@", str(UPSTREAM_PORT))
        (tmp / "nginx.conf").write_text(conf)
        procs["nginx"] = subprocess.Popen(
            ["taskset", "-c", "1", "nginx", "-c", str(tmp / "nginx.conf"), "-p", str(tmp), "-e", str(tmp / "err.log")]
        )
        wait_http(f"http://127.0.0.1:{NGINX_PORT}/health")
    if "podium" in targets:
        cmd = ["taskset", "-c", "1", sys.executable, str(HERE / "static_gateway.py"), "--port", str(PODIUM_PORT)]
        cmd += ["--upstream", f"127.0.0.1:{UPSTREAM_PORT}", "--listener", listener, "--token", "bench-token"]
        procs["podium"] = subprocess.Popen(cmd)
        wait_http(f"http://127.0.0.1:{PODIUM_PORT}/e/bench/health")
    return procs


def worker_pid(name: str, proc: subprocess.Popen[bytes]) -> int:
    if name != "nginx":
        return proc.pid
    kids = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    return int(kids[0]) if kids else proc.pid


def run_shape(url: str, shape: str, duration: float, token: str) -> dict[str, Any]:
    mode = "stream" if shape.startswith("st") else "nonstream"
    conc = int(shape[2:])
    engine = "raw" if mode == "stream" else "wrk"
    cmd = ["taskset", "-c", "0", BPY, str(BENCH / "loadgen.py"), "--url", url, "--mode", mode]
    cmd += ["--engine", engine, "-c", str(conc), "-d", str(duration), "--warmup", "0", "--token", token]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--targets", default="direct,nginx,podium")
    ap.add_argument("--shapes", default="ns1,ns16,ns64,st16,st64")
    ap.add_argument("--listener", default="default")
    args = ap.parse_args()
    targets = args.targets.split(",")
    urls = {
        "direct": f"http://127.0.0.1:{UPSTREAM_PORT}",
        "nginx": f"http://127.0.0.1:{NGINX_PORT}",
        "podium": f"http://127.0.0.1:{PODIUM_PORT}",
    }
    with tempfile.TemporaryDirectory() as tmp:
        procs = start_targets(targets, args.listener, Path(tmp))
        try:
            print(
                f"{'target':8} {'shape':6} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'ttfc p50':>9} "
                f"{'gw µs/req':>10} {'err':>5}"
            )
            for shape in args.shapes.split(","):
                for target in targets:
                    pid = worker_pid(target, procs[target]) if target != "direct" else None
                    run_shape(urls[target], shape, 1, "bench-token")  # warmup, not measured
                    t0 = cpu_ticks(pid) if pid else (0, 0)
                    res = run_shape(urls[target], shape, args.duration, "bench-token")
                    t1 = cpu_ticks(pid) if pid else (0, 0)
                    n = int(res.get("requests") or res.get("requests_ok") or 0)
                    lat = res.get("latency_ms") or res.get("stream_total_ms") or {}
                    ttfc = (res.get("ttfc_ms") or {}).get("p50", "")
                    per = 1e6 / TICK / n if n else 0
                    usr, sys_ = (t1[0] - t0[0]) * per, (t1[1] - t0[1]) * per
                    print(
                        f"{target:8} {shape:6} {res.get('rps', 0):>9} {lat.get('p50', ''):>8} "
                        f"{lat.get('p99', ''):>8} {ttfc!s:>9} {usr + sys_:>10.1f} {usr:>6.1f} {sys_:>6.1f} "
                        f"{res.get('errors', 0):>5}",
                        flush=True,
                    )
        finally:
            for proc in procs.values():
                proc.terminate()
            for proc in procs.values():
                proc.wait(10)


if __name__ == "__main__":
    main()
