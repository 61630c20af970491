"""One listener for the whole process: gateway paths to the gateway, everything else to `fallback`.

`/v1/*`, `/e/*` and `/metrics` are the gateway's hot path; every other path (`/v0`, `/healthz`,
the console) goes to the control plane's ASGI app. Signals stay with the caller: `serve`
returns when `should_exit` is set.

Two listeners, same behaviour: "fast" (default; the built-in httptools server of listener.py)
and "uvicorn" (uvicorn + a path dispatcher; kept for comparison and as a fallback).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Generator
from typing import Any

import uvicorn

from podium.gateway.app import Gateway, is_gateway_path
from podium.gateway.asgi import limit_body
from podium.gateway.http import Request
from podium.gateway.limits import HttpLimits
from podium.gateway.listener import Connection, ListenerState
from podium.gateway.respond import ConnResponder, run_asgi

ASGIApp = Any  # an ASGI 3 callable: (scope, receive, send) -> Awaitable[None]


async def serve(
    gateway: Gateway,
    fallback: ASGIApp,
    host: str,
    port: int,
    *,
    started: asyncio.Event | None = None,
    should_exit: asyncio.Event,
    listener: str = "fast",
    keepalive_timeout_s: float = 75.0,
    max_body_bytes: int | None = None,
    graceful_timeout_s: float = 5.0,
    limits: HttpLimits | None = None,
) -> None:
    """Serve until `should_exit`. `limits` bounds each request's sizes and head time (default
    HttpLimits()); `max_body_bytes`, when given, overrides its body cap."""
    limits = limits or HttpLimits()
    if max_body_bytes is not None:
        limits = dataclasses.replace(limits, max_body_bytes=max_body_bytes)
    if listener == "uvicorn":
        app = limit_body(dispatcher(gateway, fallback), limits.max_body_bytes)
        await _serve_uvicorn(app, host, port, started, should_exit, keepalive_timeout_s)
        return
    await _serve_fast(
        gateway,
        fallback,
        host,
        port,
        started,
        should_exit,
        keepalive_timeout_s=keepalive_timeout_s,
        limits=limits,
        graceful_timeout_s=graceful_timeout_s,
    )


async def _serve_fast(
    gateway: Gateway,
    fallback: ASGIApp,
    host: str,
    port: int,
    started: asyncio.Event | None,
    should_exit: asyncio.Event,
    *,
    keepalive_timeout_s: float,
    limits: HttpLimits,
    graceful_timeout_s: float,
) -> None:
    async def handle(conn: Connection, request: Request) -> None:
        if is_gateway_path(request.path):
            await gateway.handle(request, ConnResponder(conn))
        else:
            await run_asgi(fallback, conn, request)

    state = ListenerState(
        handle,
        limits=limits,
        keepalive_timeout_s=keepalive_timeout_s,
        clock=time.monotonic,
        fast=gateway.handle_fast if gateway.fast_path else None,
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


def dispatcher(gateway: Gateway, fallback: ASGIApp) -> ASGIApp:
    """The ASGI app that splits gateway paths from the rest."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and is_gateway_path(scope["path"]):
            await gateway(scope, receive, send)
        else:
            await fallback(scope, receive, send)

    return app


async def _serve_uvicorn(
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
