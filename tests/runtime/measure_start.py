"""Measure LocalBackend's share of a replica's start (not a test; run it by hand):

    .venv/bin/python -m tests.runtime.measure_start [N]

For a trivial server it reports: start() latency (call to return), start() to the port accepting
connections, and the same server started directly with subprocess (no Podium) as the baseline:
the difference is Podium's overhead (supervisor + records + port choice), the rest is the
worker's own boot.
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from podium.runtime.base import LaunchSpec
from podium.runtime.local import LocalBackend
from podium.runtime.ports import PortAllocator

TINY = (
    "import os, socket\n"
    "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind(('127.0.0.1', int(os.environ['PORT']))); s.listen()\n"
    "while True: s.accept()[0].close()\n"
)
SERVERS = {
    "tiny socket server": [sys.executable, "-c", TINY],
    "python -m http.server": [sys.executable, "-m", "http.server", "$PORT", "--bind", "127.0.0.1"],
}


async def until_open(port: int, timeout: float = 10.0) -> None:
    deadline = time.perf_counter() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.perf_counter() > deadline:
                raise
            await asyncio.sleep(0.002)


async def via_backend(backend: LocalBackend, argv: list[str], i: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    obs = await backend.start(LaunchSpec(f"rep-m{i}", "ep-m", argv))
    t1 = time.perf_counter()
    assert obs.address is not None, obs.detail
    await until_open(int(obs.address.rsplit(":", 1)[1]))
    t2 = time.perf_counter()
    await backend.kill(f"rep-m{i}")
    return t1 - t0, t2 - t0


async def direct(argv: list[str], ports: PortAllocator) -> float:
    port = ports.allocate()
    cmd = [a.replace("$PORT", str(port)) for a in argv]
    t0 = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        *cmd, env={"PORT": str(port)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    await until_open(port)
    took = time.perf_counter() - t0
    proc.kill()
    await proc.wait()
    return took


def summary(xs: list[float]) -> str:
    ms = sorted(x * 1000 for x in xs)
    p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    return f"p50 {statistics.median(ms):6.1f} ms  p95 {p95:6.1f} ms  min {ms[0]:6.1f} ms"


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        backend = LocalBackend(Path(tmp))
        ports = PortAllocator()
        for name, argv in SERVERS.items():
            await via_backend(backend, argv, -1)  # warm the page cache
            returned, opened, baseline = [], [], []
            for i in range(n):
                r, o = await via_backend(backend, argv, i)
                returned.append(r)
                opened.append(o)
                baseline.append(await direct(argv, ports))
            overhead = statistics.median(opened) - statistics.median(baseline)
            print(f"{name} (n={n})")
            print(f"  start() returns         {summary(returned)}")
            print(f"  start() -> port open    {summary(opened)}")
            print(f"  direct Popen -> open    {summary(baseline)}")
            print(f"  Podium overhead (p50 difference): {overhead * 1000:.1f} ms")
        await backend.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20))
