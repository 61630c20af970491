"""One listener for the whole process: gateway paths to the gateway, everything else to `fallback`.

`/v1/*`, `/e/*` and `/metrics` are the gateway's hot path; every other path (`/v0`, `/healthz`,
the console) goes to the control plane's ASGI app. Signals stay with the caller: `serve`
returns when `should_exit` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Generator
from typing import Any

import uvicorn

from podium.gateway.app import Gateway, is_gateway_path

ASGIApp = Any  # an ASGI 3 callable: (scope, receive, send) -> Awaitable[None]


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


async def serve(
    gateway: Gateway,
    fallback: ASGIApp,
    host: str,
    port: int,
    *,
    started: asyncio.Event | None = None,
    should_exit: asyncio.Event,
) -> None:
    config = uvicorn.Config(
        dispatcher(gateway, fallback),
        host=host,
        port=port,
        loop="none",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=75,
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
