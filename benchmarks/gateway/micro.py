"""The gateway's own Python cost per request, without sockets or a kernel in the way.

    .venv/bin/python benchmarks/gateway/micro.py [-n 200000]

Drives the real listener `Connection` and `UpstreamConnection` protocols with fake transports:
request bytes in, the fast path writes the upstream request to a fake replica transport, the
replica's answer bytes are fed back, the client transport collects the response. What is
left is exactly the per-request Python work of the hot path (parsing, routing, auth, slots,
metrics, framing), deterministic enough to compare two versions of the code (syscalls and
the event loop's own wake-ups are not included: see bench.py for those).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import time
from dataclasses import dataclass
from typing import Any

from podium.gateway.app import Gateway
from podium.gateway.routes import EndpointRoute, ReplicaRoute
from podium.gateway.upstream import UpstreamConnection
from podium.http.listener import Connection, ListenerState

BODY = b'{"model":"fake-model","messages":[{"role":"user","content":"hi"}],"max_tokens":16}'
REQUEST = (
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:8800\r\nAuthorization: Bearer tok\r\n"
    b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
)
ANSWER_BODY = b'{"id":"chatcmpl-1","object":"chat.completion","choices":[{"message":{"content":"hi"}}]}'
ANSWER = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ndate: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
    b"server: fake\r\ncontent-length: %d\r\n\r\n%s" % (len(ANSWER_BODY), ANSWER_BODY)
)


class FakeTransport(asyncio.Transport):
    def __init__(self, peer: tuple[str, int]) -> None:
        super().__init__()
        self.sent: list[bytes] = []
        self.peer = peer
        self.closing = False

    def write(self, data: Any) -> None:
        self.sent.append(bytes(data))

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.peer if name in ("peername", "sockname") else default

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


@dataclass
class FastPathRig:
    """A gateway with one route, wired to in-memory transports: a client connection that takes the
    fast path and one idle upstream connection to its replica (no sockets, no event-loop hops)."""

    gateway: Gateway
    client: Connection
    client_transport: FakeTransport
    up: UpstreamConnection
    up_transport: FakeTransport


def fast_path_rig(token: bool) -> FastPathRig:
    gateway = Gateway(wake=lambda _e: None)
    sha = hashlib.sha256(b"tok").hexdigest() if token else None
    replicas = (ReplicaRoute("rep-1", "127.0.0.1:9"),)
    gateway.set_route(
        EndpointRoute("ep-1", "fake-model", "app", None, True, sha, 1_000_000, 100, 60, 60, 3600, replicas)
    )

    async def slow(conn: Connection, request: Any) -> None:
        raise AssertionError("the micro benchmark must stay on the fast path")

    state = ListenerState(slow, max_body_bytes=1 << 26, keepalive_timeout_s=75, clock=time.monotonic)
    state.fast = gateway.handle_fast
    client = Connection(state)
    client_transport = FakeTransport(("127.0.0.1", 50000))
    client.connection_made(client_transport)
    up = UpstreamConnection(gateway._upstream, "127.0.0.1:9")
    up_transport = FakeTransport(("127.0.0.1", 9))
    up.connection_made(up_transport)
    gateway._upstream._put(up)
    return FastPathRig(gateway, client, client_transport, up, up_transport)


async def run(n: int, token: bool) -> None:
    rig = fast_path_rig(token)
    gateway, client, client_transport, up = rig.gateway, rig.client, rig.client_transport, rig.up
    for i in range(n + 1000):
        if i == 1000:
            t0, c0 = time.perf_counter(), time.process_time()
        client.data_received(REQUEST)
        up.data_received(ANSWER)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert len(client_transport.sent) == n + 1000 and client_transport.sent[-1].endswith(ANSWER_BODY)
    assert gateway.fast_hits == n + 1000 and gateway.stats()["ep-1"].in_flight == 0
    print(f"auth={'token' if token else 'open'}: {cpu / n * 1e6:.2f} µs CPU per request ({wall / n * 1e6:.2f} wall)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=200_000)
    args = ap.parse_args()
    import uvloop

    for token in (False, True):
        uvloop.run(run(args.n, token))
