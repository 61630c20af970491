"""Running a listener until told to stop: the built-in one (listener.py), or uvicorn for comparison.

`serve_listener` binds, sweeps idle connections and late heads, and on `should_exit` closes idle
connections and gives busy ones a grace period. `serve_app` is the same listener with every
request served to one ASGI app. What a request is answered with is the caller's handler: the
gateway composes its own (podium.gateway.server). Signals stay with the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Generator
from typing import Any

import uvicorn

from podium.http.asgi_host import run_asgi
from podium.http.limits import HttpLimits
from podium.http.listener import Connection, FastHandler, ListenerState, RequestHandler
from podium.http.message import Request

ASGIApp = Any  # an ASGI 3 callable: (scope, receive, send) -> Awaitable[None]


async def serve_listener(
    handler: RequestHandler,
    host: str,
    port: int,
    *,
    should_exit: asyncio.Event,
    started: asyncio.Event | None = None,
    fast: FastHandler | None = None,
    keepalive_timeout_s: float = 75.0,
    limits: HttpLimits | None = None,
    graceful_timeout_s: float = 5.0,
) -> None:
    """Serve `handler` (and `fast`, tried first: listener.py) on host:port until `should_exit`."""
    state = ListenerState(
        handler, limits=limits, keepalive_timeout_s=keepalive_timeout_s, clock=time.monotonic, fast=fast
    )
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Connection(state), host, port, backlog=4096, reuse_address=True)
    sweeper = asyncio.ensure_future(sweep_idle(state, should_exit))
    if started is not None:
        started.set()
    try:
        await should_exit.wait()
    finally:
        server.close()
        await _drain_connections(state, graceful_timeout_s)
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper


async def serve_app(
    app: ASGIApp,
    host: str,
    port: int,
    *,
    should_exit: asyncio.Event,
    started: asyncio.Event | None = None,
    limits: HttpLimits | None = None,
    keepalive_timeout_s: float = 75.0,
    graceful_timeout_s: float = 3.0,
) -> None:
    """One ASGI app on the built-in listener: its limits (431/414/413/408) apply, which uvicorn's
    protocol lacks (a head of any size, sent as slowly as a client likes). For roles that serve
    only the control plane. `graceful_timeout_s` is short by default: long-polls must not hold a stop."""

    async def handle(conn: Connection, request: Request) -> None:
        await run_asgi(app, conn, request)

    await serve_listener(
        handle,
        host,
        port,
        should_exit=should_exit,
        started=started,
        limits=limits,
        keepalive_timeout_s=keepalive_timeout_s,
        graceful_timeout_s=graceful_timeout_s,
    )


async def sweep_idle(state: ListenerState, stop: asyncio.Event, every_s: float | None = None) -> None:
    """Close idle keep-alive connections and late request heads (one timer for all of them).

    A head's age counts from the first sweep that sees it, so a late head is cut between
    `head_timeout_s` and that plus two sweep periods (a quarter of it each, at most 5 s): cheaper
    than a timer or a timestamp per request, and precise enough against slowloris.
    """
    if every_s is None:
        every_s = min(5.0, state.limits.head_timeout_s / 4)
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), every_s)
        except TimeoutError:
            pass
        now = state.clock()
        for conn in list(state.connections):
            conn.expire(now)


async def _drain_connections(state: ListenerState, grace_s: float) -> None:
    """Close idle connections now; give busy ones `grace_s` to finish, then cut them."""
    for conn in list(state.connections):
        if not conn.busy:
            conn.close()
        else:
            conn.keep_alive = False  # closes once the current answer is out
    deadline = time.monotonic() + grace_s
    while any(c.busy for c in state.connections) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    for conn in list(state.connections):
        conn.close()
        if conn.task is not None:
            conn.task.cancel()


# -- uvicorn --------------------------------------------------------------------------------------
class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling (the process owner decides when to stop)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def serve_uvicorn(
    app: ASGIApp,
    host: str,
    port: int,
    started: asyncio.Event | None,
    should_exit: asyncio.Event,
    keepalive_timeout_s: float,
) -> None:
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="none",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=int(keepalive_timeout_s),
        backlog=4096,
    )
    server = _QuietServer(config)

    async def watch() -> None:
        await should_exit.wait()
        server.should_exit = True

    async def announce() -> None:
        while not server.started:
            if serving.done():
                return
            await asyncio.sleep(0.01)
        if started is not None:
            started.set()

    serving = asyncio.ensure_future(server.serve())
    helpers = [asyncio.ensure_future(watch()), asyncio.ensure_future(announce())]
    try:
        await serving
    finally:
        for task in helpers:
            task.cancel()
        serving.cancel()
