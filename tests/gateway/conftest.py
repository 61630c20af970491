"""A real fake replica (aiohttp on a loopback port) and a real gateway listener, per test."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web

from podium.gateway.app import Gateway
from podium.gateway.routes import EndpointRoute, PlatformToken, ReplicaRoute
from podium.gateway.server import serve
from tests.conftest import free_port

ENDPOINT_TOKEN = "ep-secret-token"
PLATFORM_TOKEN = "platform-inference-token"
READ_TOKEN = "platform-read-token"


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class FakeReplica:
    """Answers like a model server; the test steers it through the request body.

    body keys: stream (SSE chunks), chunks (count), gate (wait for `gate` after the first
    chunk), sleep (seconds before answering), die_after (chunks, then cut the socket),
    big_mib (stream that many MiB as fast as the socket takes them; `written` counts them).
    """

    port: int = 0
    seen: list[dict[str, Any]] = field(default_factory=list)
    active: int = 0
    cancelled: int = 0
    written: int = 0
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    runner: web.AppRunner | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self.runner.setup()
        self.port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        self.seen.append(
            {
                "method": request.method,
                "path": request.path_qs,
                "headers": {k.lower(): v for k, v in request.headers.items()},
                "body": raw,
            }
        )
        self.active += 1
        try:
            return await self._answer(request, raw)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.active -= 1

    async def _answer(self, request: web.Request, raw: bytes) -> web.StreamResponse:
        try:
            body = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        if body.get("sleep"):
            await asyncio.sleep(float(body["sleep"]))
        if not body.get("stream"):
            echo = {"model": body.get("model"), "path": request.path_qs, "method": request.method}
            return web.json_response({"object": "chat.completion", "echo": echo, **_completion(body)})
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        if body.get("big_mib"):  # a fast producer: how far it gets shows the backpressure
            block = b"x" * 65536
            for _ in range(int(body["big_mib"]) * 16):
                await resp.write(block)
                self.written += len(block)
            await resp.write_eof()
            return resp
        for i in range(int(body.get("chunks", 3))):
            if body.get("die_after") is not None and i == int(body["die_after"]):
                assert request.transport is not None
                request.transport.abort()
                return resp
            await resp.write(b"data: " + orjson.dumps(_chunk(i, body.get("model"))) + b"\n\n")
            if i == 0 and body.get("gate"):
                await self.gate.wait()
        if (body.get("stream_options") or {}).get("include_usage"):  # OpenAI's final usage chunk
            usage = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
            final = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [], "usage": usage}
            await resp.write(b"data: " + orjson.dumps(final) + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp


def _completion(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "created": 1,
        "model": body.get("model") or "x",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def _chunk(i: int, model: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": model or "x",
        "choices": [{"index": 0, "delta": {"content": f"tok{i} "}, "finish_reason": None}],
    }


def make_route(replicas: list[FakeReplica] | None = None, **overrides: Any) -> EndpointRoute:
    route = EndpointRoute(
        endpoint_id="ep-test",
        routing_key="my-model",
        app_name="my-app",
        served_model_name=None,
        enabled=True,
        auth_token_sha256=None,
        max_concurrency=8,
        queue_size=16,
        queue_timeout_s=5,
        cold_start_timeout_s=5,
        request_timeout_s=10,
        replicas=tuple(ReplicaRoute(f"rep-{i}", r.address) for i, r in enumerate(replicas or [])),
    )
    return replace(route, **overrides)


async def fallback_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Stands in for the control plane: proves non-gateway paths reach it."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"control plane: " + scope["path"].encode()})


@dataclass
class Harness:
    gateway: Gateway
    url: str
    wakes: list[str]

    def client(self, **kw: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=kw.pop("timeout", 10), **kw)


@pytest.fixture
async def replica() -> AsyncIterator[FakeReplica]:
    fake = FakeReplica()
    await fake.start()
    try:
        yield fake
    finally:
        fake.gate.set()
        await fake.stop()


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    wakes: list[str] = []
    gateway = Gateway(wake=wakes.append)
    gateway.set_platform_tokens(
        [
            PlatformToken("tok-inf", sha(PLATFORM_TOKEN), frozenset({"inference"})),
            PlatformToken("tok-read", sha(READ_TOKEN), frozenset({"read"})),
        ]
    )
    port = free_port()
    stop, started = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve(gateway, fallback_app, "127.0.0.1", port, started=started, should_exit=stop))
    await asyncio.wait_for(started.wait(), 10)
    try:
        yield Harness(gateway, f"http://127.0.0.1:{port}", wakes)
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
        await gateway.aclose()


async def eventually(predicate: Any, timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)
