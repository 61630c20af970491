"""How much memory the gateway needs to hold N concurrent idle SSE streams (loopback, bounded).

    .venv/bin/python benchmarks/gateway/idle_streams.py [-n 9950] [--timeout 120]

Three processes: a held-stream replica (this file, --role upstream: answers every request
with the SSE head and one chunk, then holds the stream until SIGUSR1 ends them all with
[DONE]), the gateway (static_gateway.py, pinned to cpu 1) and the clients (this process).
Prints the gateway's RSS before, while holding N streams, and after they end, plus the
in-flight count from /metrics. Each stream costs the gateway two sockets (client + replica),
so N is capped by the per-process open-file limit (RLIMIT_NOFILE; 20000 here, not raisable).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    b'13\r\ndata: {"tok":"a"}\n\n\r\n'
)
DONE = b"e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n"


def raise_nofile() -> int:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


# -- the held-stream replica -------------------------------------------------------------------
class Held(asyncio.Protocol):
    def __init__(self, held: set[asyncio.Transport]) -> None:
        self.held = held
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if b"\r\n\r\n" in data and self.transport is not None:
            if data.startswith(b"GET /health"):
                self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                return
            self.transport.write(SSE_HEAD)
            self.held.add(self.transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.held.discard(self.transport)  # type: ignore[arg-type]


async def upstream(port: int) -> None:
    held: set[asyncio.Transport] = set()
    loop = asyncio.get_running_loop()

    def release() -> None:
        for transport in list(held):
            transport.write(DONE)
        held.clear()

    loop.add_signal_handler(signal.SIGUSR1, release)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    server = await loop.create_server(lambda: Held(held), "127.0.0.1", port, backlog=4096)
    await stop.wait()
    server.close()


# -- the clients ------------------------------------------------------------------------------
class Client(asyncio.Protocol):
    def __init__(self, first: asyncio.Future[None], done: asyncio.Future[None]) -> None:
        self.first, self.done, self.buf = first, done, b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        body = b'{"model":"fake-model","stream":true}'
        transport.write(  # type: ignore[attr-defined]
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n%s" % (len(body), body)
        )

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if b"data: " in self.buf and not self.first.done():
            self.first.set_result(None)
        if b"[DONE]" in self.buf and self.buf.endswith(b"0\r\n\r\n") and not self.done.done():
            self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        for fut in (self.first, self.done):
            if not fut.done():
                fut.set_exception(ConnectionError("closed"))


def rss_mib(pid: int) -> tuple[float, float]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def metric(url: str, name: str) -> str:
    with urllib.request.urlopen(url + "/metrics", timeout=5) as r:
        lines = r.read().decode().splitlines()
    return ", ".join(line.split(" ")[-1] for line in lines if line.startswith(name + "{"))


async def clients(url_port: int, n: int, gw_pid: int, up_pid: int, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    firsts, dones, transports = [], [], []
    t0 = time.monotonic()
    for start in range(0, n, 500):
        batch = []
        for _ in range(min(500, n - start)):
            first, done = loop.create_future(), loop.create_future()
            firsts.append(first)
            dones.append(done)
            batch.append(loop.create_connection(lambda f=first, d=done: Client(f, d), "127.0.0.1", url_port))
        for transport, _ in await asyncio.gather(*batch):
            transports.append(transport)
        await asyncio.wait_for(asyncio.gather(*firsts[start:]), timeout)
    opened = time.monotonic() - t0
    await asyncio.sleep(1)
    rss, peak = rss_mib(gw_pid)
    base = f"http://127.0.0.1:{url_port}"
    print(
        f"holding {n} streams (opened in {opened:.1f}s): gateway RSS {rss:.1f} MiB (peak {peak:.1f}), "
        f"in_flight {metric(base, 'podium_gateway_in_flight')}",
        flush=True,
    )
    os.kill(up_pid, signal.SIGUSR1)
    await asyncio.wait_for(asyncio.gather(*dones), timeout)
    for transport in transports:
        transport.close()
    await asyncio.sleep(1)
    rss, peak = rss_mib(gw_pid)
    print(
        f"all {n} streams ended with [DONE]: gateway RSS {rss:.1f} MiB (peak {peak:.1f}), "
        f"in_flight {metric(base, 'podium_gateway_in_flight')}",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=9950)
    ap.add_argument("--role", default="clients")
    ap.add_argument("--port", type=int, default=18610)
    ap.add_argument("--timeout", type=float, default=120)
    args = ap.parse_args()
    limit = raise_nofile()
    if args.role == "upstream":
        asyncio.run(upstream(args.port))
        return
    n = min(args.n, 20000)
    if 2 * n + 32 > limit:
        print(f"note: the open-file limit is {limit}; the gateway needs 2 sockets per stream", flush=True)
    up = subprocess.Popen([sys.executable, __file__, "--role", "upstream", "--port", str(args.port)])
    gw_cmd = ["taskset", "-c", "1", sys.executable, str(HERE / "static_gateway.py"), "--port", str(args.port + 1)]
    gw = subprocess.Popen([*gw_cmd, "--upstream", f"127.0.0.1:{args.port}"])
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{args.port + 1}/e/bench/health", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        rss, _ = rss_mib(gw.pid)
        print(f"gateway idle: RSS {rss:.1f} MiB", flush=True)
        asyncio.run(asyncio.wait_for(clients(args.port + 1, n, gw.pid, up.pid, args.timeout), args.timeout * 3))
    finally:
        for proc in (gw, up):
            proc.terminate()
        for proc in (gw, up):
            proc.wait(10)


if __name__ == "__main__":
    main()
