"""Model upload throughput and its CPU cost, and what an upload does to the gateway, on this machine.

    .venv/bin/python benchmarks/model_upload.py [--mib 1024] [--chunk-mib 16] [--probes 200]

Starts `podium up` (temp data dir, free port) and a fake-worker container endpoint, then:
1. gateway latency alone: `--probes` sequential chat completions to the fake endpoint (p50/p99);
2. an upload of a `--mib` file (a GGUF header + random bytes: a valid model to the registry's checks)
   in `--chunk-mib` PATCHes, timed, with the CPU seconds `podium up` spent (/proc utime+stime) and
   the client's own, while the same probes run beside it (p50/p99 during the upload).
Loopback only; everything it starts is stopped.
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

from podium.models.files import sha256_file

ADMIN = "bench-admin"
TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def gguf_file(path: Path, mib: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.models.ggufs import gguf_bytes

    with path.open("wb") as f:
        f.write(gguf_bytes())
        for _ in range(mib):
            f.write(os.urandom(1 << 20))


def start(data: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PODIUM_ADMIN_TOKEN": ADMIN}
    cmd = [sys.executable, "-m", "podium.cli.main", "up", "--port", str(port), "--data-dir", str(data)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("podium up did not start")


def fake_endpoint(h: httpx.Client) -> str:
    body = {
        "name": "probe",
        "container": {"command": f"{sys.executable} -m podium.worker.fake --port $PORT", "port": 8000},
        "scaling": {"min_replicas": 1, "max_replicas": 1},
    }
    created = h.post("/v0/endpoints", json=body)
    if created.status_code != 201:
        raise SystemExit(f"cannot create the probe endpoint: {created.text}")
    ep = created.json()
    deadline = time.monotonic() + 60
    while h.get(f"/v0/endpoints/{ep['id']}").json()["status"]["state"] != "serving":
        if time.monotonic() > deadline:
            raise SystemExit("the fake endpoint never became ready")
        time.sleep(0.05)
    return str(ep["routing_key"])


def probe(url: str, key: str, n: int, out: list[float], stop: threading.Event | None = None) -> None:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30) as c:
        body = {"model": key, "messages": [{"role": "user", "content": "hi"}]}
        for _ in range(n):
            if stop is not None and stop.is_set():
                return
            t = time.perf_counter()
            c.post("/v1/chat/completions", json=body).raise_for_status()
            out.append((time.perf_counter() - t) * 1000)


def upload(h: httpx.Client, path: Path, chunk: int, name: str) -> dict[str, object]:
    size = path.stat().st_size
    model = h.post("/v0/models", json={"name": name, "size": size}).json()
    with path.open("rb") as f:
        offset = 0
        while offset < size:
            data = f.read(chunk)
            r = h.patch(f"/v0/models/{model['id']}/content", params={"offset": offset}, content=data)
            r.raise_for_status()
            model, offset = r.json(), offset + len(data)
    return dict(model)


def pct(xs: list[float], q: float) -> float:
    return statistics.quantiles(xs, n=100)[int(q) - 1] if len(xs) > 2 else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--chunk-mib", type=int, default=16)
    ap.add_argument("--probes", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data, port = Path(tmp) / "data", free_port()
        url = f"http://127.0.0.1:{port}"
        src = Path(tmp) / "bench.gguf"
        gguf_file(src, args.mib)
        proc = start(data, port)
        try:
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=300) as h:
                key = fake_endpoint(h)
                idle: list[float] = []
                probe(url, key, args.probes, idle)
                base0 = cpu_s(proc.pid)
                time.sleep(5)  # what podium up spends doing nothing (controller ticks, autoscaler), to subtract
                idle_rate = (cpu_s(proc.pid) - base0) / 5
                cpu0, mine0, t0 = cpu_s(proc.pid), time.process_time(), time.perf_counter()
                model = upload(h, src, args.chunk_mib << 20, "alone")
                wall, server_cpu = time.perf_counter() - t0, cpu_s(proc.pid) - cpu0
                client_cpu = time.process_time() - mine0
                assert model["status"] == "ready" and model["sha256"] == sha256_file(src), model
                busy: list[float] = []
                stop = threading.Event()
                t = threading.Thread(target=probe, args=(url, key, 10**6, busy, stop))
                t.start()
                t1 = time.perf_counter()
                upload(h, src, args.chunk_mib << 20, "beside-traffic")
                wall_busy = time.perf_counter() - t1
                stop.set()
                t.join()
            gib = src.stat().st_size / 2**30
            rate = gib * 1024 / wall
            print(f"upload {gib * 1024:.0f} MiB in {args.chunk_mib} MiB chunks, alone: {wall:.2f} s = {rate:.0f} MiB/s")
            own = server_cpu - idle_rate * wall
            print(
                f"  podium up CPU {server_cpu:.2f} s, {own:.2f} s of it for the upload (idle: {idle_rate:.2f} CPU-s/s)"
            )
            print(f"  = {own / gib:.2f} CPU-s/GiB; client CPU {client_cpu:.2f} s")
            print(f"gateway p50/p99 idle: {pct(idle, 50):.2f}/{pct(idle, 99):.2f} ms ({len(idle)} sequential requests)")
            print(
                f"gateway p50/p99 during a second upload: {pct(busy, 50):.2f}/{pct(busy, 99):.2f} ms "
                f"({len(busy)} requests; that upload took {wall_busy:.2f} s)"
            )
        finally:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    main()
