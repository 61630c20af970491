"""One listener for the whole process: gateway paths to the gateway, everything else to `fallback`.

`/v1/*`, `/e/*` and `/metrics` are the gateway's hot path; every other path (`/v0`, `/healthz`,
the console) goes to the control plane's ASGI app. Signals stay with the caller: `serve`
returns when `should_exit` is set.

Two listeners, same behaviour: "fast" (default; the built-in server of podium.http) and
"uvicorn" (uvicorn + a path dispatcher; kept for comparison and as a fallback).
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from podium.gateway.app import Gateway, is_gateway_path
from podium.http.asgi import limit_body
from podium.http.asgi_host import run_asgi
from podium.http.limits import HttpLimits
from podium.http.listener import Connection
from podium.http.message import Request
from podium.http.respond import ConnResponder
from podium.http.server import serve_listener, serve_uvicorn

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
        await serve_uvicorn(app, host, port, started, should_exit, keepalive_timeout_s)
        return

    async def handle(conn: Connection, request: Request) -> None:
        if is_gateway_path(request.path):
            await gateway.handle(request, ConnResponder(conn))
        else:
            await run_asgi(fallback, conn, request)

    await serve_listener(
        handle,
        host,
        port,
        should_exit=should_exit,
        started=started,
        fast=gateway.handle_fast if gateway.fast_path else None,
        keepalive_timeout_s=keepalive_timeout_s,
        limits=limits,
        graceful_timeout_s=graceful_timeout_s,
    )


def dispatcher(gateway: Gateway, fallback: ASGIApp) -> ASGIApp:
    """The ASGI app that splits gateway paths from the rest."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and is_gateway_path(scope["path"]):
            await gateway(scope, receive, send)
        else:
            await fallback(scope, receive, send)

    return app
