"""Adapters `podium up` puts between parts (kept out of the parts themselves): writes that answer after
a tick, and the token book publisher."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from podium.gateway.routes import PlatformToken
from podium.store.repos import Store


class SyncWrites:
    """Plain ASGI wrapper: a successful control-plane write answers only once the controller has run a
    tick after it, so what the API confirmed is already routable (held until ready, never a 404)."""

    def __init__(self, app: Any, sync: Callable[[], Awaitable[None]]) -> None:
        self.app, self.sync = app, sync

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] in ("GET", "HEAD", "OPTIONS")
            or not scope["path"].startswith("/v0/")
        ):
            await self.app(scope, receive, send)
            return

        async def send_after_sync(message: Any) -> None:
            if message["type"] == "http.response.start" and message["status"] < 300:
                await self.sync()
            await send(message)

        await self.app(scope, receive, send_after_sync)


class TokenSink(Protocol):
    def set_platform_tokens(self, tokens: Iterable[PlatformToken]) -> None: ...


class TokenPublisher:
    """Keeps the gateways' in-memory token books equal to the database (auth never queries SQL)."""

    def __init__(self, store: Store, sink: TokenSink) -> None:
        self.store, self.sink = store, sink
        self._tasks: set[asyncio.Task[None]] = set()

    async def publish(self) -> None:
        rows = await self.store.tokens()
        self.sink.set_platform_tokens(
            PlatformToken(r.id, r.sha256, frozenset(r.scopes.split(",")), r.rate_limit_rpm) for r in rows
        )

    def schedule(self) -> None:
        task = asyncio.get_running_loop().create_task(self.publish())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
