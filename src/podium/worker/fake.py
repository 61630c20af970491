"""A fast, deterministic OpenAI-compatible fake model server for tests and benchmarks.

    python -m podium.worker.fake --port N [--model NAME]      (PORT from the environment also works)

Why it exists: every gateway/controller/e2e test needs a replica that starts in milliseconds,
answers the OpenAI routes (streaming too) the same way every time, and can be told to be slow,
unhealthy or to crash. Real model servers are too slow and too nondeterministic for that.

Routes: GET /health, GET /v1/models, POST /v1/chat/completions, /v1/completions, /v1/embeddings
(each echoes the `model` it received); GET /admin/stats (request counters, peak concurrency);
POST /admin/health {"ok": false} (flip health); POST /admin/exit {"code": 3} (crash now);
GET /metrics (vLLM's engine gauges) and POST /admin/engine {"waiting": 5, "kv_cache": 0.9} to set them.
Any other path answers JSON describing the request (method, path, query, headers, body) so tests
can check the gateway's prefix stripping and header handling.

Knobs, process-wide (flag or env): --start-delay/FAKE_START_DELAY (sleep before listening),
--ready-after/FAKE_READY_AFTER (health 503 for this many seconds after listening),
--health-fail-after/FAKE_HEALTH_FAIL_AFTER (health 200 for N probes, then 503),
--exit-after/FAKE_EXIT_AFTER (exit with --exit-code/FAKE_EXIT_CODE after N non-health requests),
--delay/FAKE_DELAY, --chunk-delay/FAKE_CHUNK_DELAY, --chunks/FAKE_CHUNKS.
Per request (query parameter `?delay=0.5`, or body field `fake_delay`): delay (seconds before the
response starts), chunk_delay (between stream chunks), chunks (number of content pieces; else
`max_tokens`), status (answer this HTTP status with an OpenAI error body), crash_after (exit the
process after this many streamed chunks, mid-response).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import orjson
from aiohttp import web

from podium.worker import fake_openai as oa

DEFAULT_MODEL = "fake-model"


@dataclass(frozen=True)
class FakeConfig:
    model: str = DEFAULT_MODEL
    delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    chunks: int = 4
    start_delay_s: float = 0.0
    ready_after_s: float = 0.0
    health_fail_after: int | None = None
    exit_after: int | None = None
    exit_code: int = 3
    embedding_dim: int = 8

    @classmethod
    def from_env(cls, env: Mapping[str, str], **overrides: Any) -> FakeConfig:
        names = {
            "model": "FAKE_MODEL",
            "delay_s": "FAKE_DELAY",
            "chunk_delay_s": "FAKE_CHUNK_DELAY",
            "chunks": "FAKE_CHUNKS",
            "start_delay_s": "FAKE_START_DELAY",
            "ready_after_s": "FAKE_READY_AFTER",
            "health_fail_after": "FAKE_HEALTH_FAIL_AFTER",
            "exit_after": "FAKE_EXIT_AFTER",
            "exit_code": "FAKE_EXIT_CODE",
            "embedding_dim": "FAKE_EMBEDDING_DIM",
        }
        types = {f.name: f.type for f in fields(cls)}
        values: dict[str, Any] = {}
        model = env.get("FAKE_MODEL") or env.get("PODIUM_SERVED_MODEL_NAME")
        if model:
            values["model"] = model
        for name, key in names.items():
            raw = env.get(key)
            if raw and name != "model":
                values[name] = float(raw) if "float" in str(types[name]) else int(raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


@dataclass
class Counters:
    requests: int = 0  # non-health, non-admin requests seen
    in_flight: int = 0
    max_in_flight: int = 0
    health_probes: int = 0
    by_path: dict[str, int] = field(default_factory=dict)


async def _pause(seconds: float) -> None:
    if seconds > 0:  # no needless trip through the event loop on the (benchmarked) fast path
        await asyncio.sleep(seconds)


class FakeWorker:
    """The fake server, usable in-process (`async with FakeWorker(FakeConfig()) as w: w.url`)
    or as a process (`main`). `on_exit` is what "crash" means: os._exit in a process, closing the
    listener in-process (a test must not kill its own interpreter)."""

    def __init__(
        self,
        config: FakeConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        on_exit: Callable[[int], None] | None = None,
    ) -> None:
        self.config = config or FakeConfig()
        self.host, self.port = host, port
        self.counters = Counters()
        self.health_override: bool | None = None
        self.on_exit = on_exit or self._close_soon
        self._runner: web.AppRunner | None = None
        self._listening_since = 0.0
        self._ids = 0
        self._exiting = False
        # what /metrics reports, vLLM's names (POST /admin/engine): None running = live in-flight count
        self.engine: dict[str, Any] = {"format": "vllm", "waiting": 0.0, "running": None, "kv_cache": 0.0}

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024**2)
        r = app.router
        r.add_get("/health", self.health)
        r.add_get("/v1/models", self.models)
        r.add_post("/v1/chat/completions", self.chat)
        r.add_post("/v1/completions", self.completions)
        r.add_post("/v1/embeddings", self.embeddings)
        r.add_get("/admin/stats", self.stats)
        r.add_post("/admin/health", self.set_health)
        r.add_post("/admin/exit", self.exit_now)
        r.add_get("/metrics", self.engine_metrics)
        r.add_post("/admin/engine", self.set_engine)
        r.add_route("*", "/{tail:.*}", self.echo)
        return app

    async def start(self, sock: socket.socket | None = None) -> None:
        if sock is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        # handler_cancellation: a client that leaves cancels its request here, as vLLM and llama.cpp
        # abort a generation whose client is gone (a cancelled job must not keep the replica busy).
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False, handler_cancellation=True)
        await self._runner.setup()
        await web.SockSite(self._runner, sock, backlog=4096).start()
        self._listening_since = time.monotonic()

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> FakeWorker:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _close_soon(self, code: int) -> None:
        asyncio.get_running_loop().create_task(self.stop())

    # --- request plumbing ----------------------------------------------------------------------

    def _next_id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}-fake-{self._ids}"

    def _extra(self, request: web.Request) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "port": self.port,
            "replica_id": os.environ.get("PODIUM_REPLICA_ID"),
            "request_number": self.counters.requests,
            "path": request.path,
        }

    def _begin(self, request: web.Request) -> None:
        c = self.counters
        c.requests += 1
        c.in_flight += 1
        c.max_in_flight = max(c.max_in_flight, c.in_flight)
        c.by_path[request.path] = c.by_path.get(request.path, 0) + 1

    def _end(self) -> None:
        self.counters.in_flight -= 1
        limit = self.config.exit_after
        if limit is not None and self.counters.requests >= limit and not self._exiting:
            self._exiting = True
            asyncio.get_running_loop().call_later(0.05, self.on_exit, self.config.exit_code)

    @staticmethod
    async def _body(request: web.Request) -> dict[str, Any] | None:
        raw = await request.read()
        if not raw:
            return {}
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        return data if isinstance(data, dict) else None

    def _knob(self, request: web.Request, body: dict[str, Any], name: str, default: float) -> float:
        raw = request.query.get(name, body.get(f"fake_{name}"))
        return default if raw is None else float(raw)

    def _chunks(self, request: web.Request, body: dict[str, Any]) -> int:
        default = body.get("max_tokens") or body.get("max_completion_tokens") or self.config.chunks
        return max(0, min(100_000, int(self._knob(request, body, "chunks", int(default)))))

    @staticmethod
    async def _send(request: web.Request, data: Any, status: int = 200) -> web.StreamResponse:
        """One JSON response (a scheduled exit waits 50 ms, so the response leaves first)."""
        return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")

    # --- routes ---------------------------------------------------------------------------------

    async def health(self, request: web.Request) -> web.StreamResponse:
        self.counters.health_probes += 1
        ok = self.health_override
        if ok is None:
            waited = time.monotonic() - self._listening_since
            fail_after = self.config.health_fail_after
            ok = waited >= self.config.ready_after_s and (
                fail_after is None or self.counters.health_probes <= fail_after
            )
        return await self._send(request, {"status": "ok" if ok else "unhealthy"}, 200 if ok else 503)

    async def models(self, request: web.Request) -> web.StreamResponse:
        return await self._send(request, oa.models_list(self.config.model))

    async def stats(self, request: web.Request) -> web.StreamResponse:
        c = self.counters
        data = {
            "pid": os.getpid(),
            "requests": c.requests,
            "in_flight": c.in_flight,
            "max_in_flight": c.max_in_flight,
            "health_probes": c.health_probes,
            "by_path": c.by_path,
        }
        return await self._send(request, data)

    async def set_health(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request) or {}
        ok = body.get("ok")
        self.health_override = None if ok is None else bool(ok)
        return await self._send(request, {"ok": self.health_override})

    async def exit_now(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request) or {}
        code = int(body.get("code", self.config.exit_code))
        resp = await self._send(request, {"exiting": code})
        asyncio.get_running_loop().call_later(0.05, self.on_exit, code)
        return resp

    async def engine_metrics(self, request: web.Request) -> web.StreamResponse:
        """vLLM's `/metrics` page with test-set values; format "none" answers 404 like llama_cpp.server."""
        e = self.engine
        if e["format"] == "none":
            return web.Response(status=404, text="Not Found")
        running = self.counters.in_flight if e["running"] is None else e["running"]
        text = oa.vllm_metrics(self.config.model, e["waiting"], running, e["kv_cache"], legacy=e["format"] == "legacy")
        return web.Response(text=text, content_type="text/plain", charset="utf-8")

    async def set_engine(self, request: web.Request) -> web.StreamResponse:
        """{"waiting", "running", "kv_cache", "format": vllm|legacy|none}: what /metrics says next."""
        body = await self._body(request) or {}
        self.engine.update({k: v for k, v in body.items() if k in self.engine})
        return await self._send(request, self.engine)

    async def echo(self, request: web.Request) -> web.StreamResponse:
        self._begin(request)
        try:
            raw = await request.read()
            await _pause(float(request.query.get("delay", self.config.delay_s)))
            described = {
                "method": request.method,
                "path": request.path,
                "query_string": request.query_string,
                "query": {str(k): v for k, v in request.query.items()},
                "headers": {str(k): v for k, v in request.headers.items()},
                "body": raw.decode("utf-8", "replace"),
                "podium_fake": self._extra(request),
            }
            return await self._send(request, described, int(request.query.get("status", 200)))
        finally:
            self._end()

    async def chat(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, "chatcmpl", chat=True)

    async def completions(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, "cmpl", chat=False)

    async def embeddings(self, request: web.Request) -> web.StreamResponse:
        self._begin(request)
        try:
            body = await self._body(request)
            if body is None:
                return await self._send(request, oa.error("body must be a JSON object"), 400)
            if "input" not in body:
                return await self._send(request, oa.error("'input' is required"), 400)
            await _pause(self._knob(request, body, "delay", self.config.delay_s))
            return await self._send(request, oa.embeddings(body, self.config.embedding_dim, self._extra(request)))
        finally:
            self._end()

    async def _generate(self, request: web.Request, prefix: str, *, chat: bool) -> web.StreamResponse:
        self._begin(request)
        try:
            body = await self._body(request)
            if body is None:
                return await self._send(request, oa.error("body must be a JSON object"), 400)
            status = int(self._knob(request, body, "status", 200))
            await _pause(self._knob(request, body, "delay", self.config.delay_s))
            if status != 200:
                return await self._send(request, oa.error(f"fake error {status}", code=str(status)), status)
            if chat and not isinstance(body.get("messages"), list):
                return await self._send(request, oa.error("'messages' must be a list"), 400)
            chunks, rid = self._chunks(request, body), self._next_id(prefix)
            if body.get("stream"):
                return await self._stream(request, body, rid, chunks, chat=chat)
            build = oa.chat_completion if chat else oa.text_completion
            return await self._send(request, build(body, chunks, rid, self._extra(request)))
        finally:
            self._end()

    async def _stream(
        self, request: web.Request, body: dict[str, Any], rid: str, chunks: int, *, chat: bool
    ) -> web.StreamResponse:
        resp = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Fake-Pid": str(os.getpid())}
        )
        await resp.prepare(request)
        chunk_delay = self._knob(request, body, "chunk_delay", self.config.chunk_delay_s)
        crash_after = self._knob(request, body, "crash_after", -1)

        async def event(data: Any) -> None:
            await resp.write(b"data: " + orjson.dumps(data) + b"\n\n")

        with contextlib.suppress(ConnectionResetError):
            if chat:
                await event(oa.chat_chunk(body, rid, {"role": "assistant", "content": ""}, None))
            for i in range(chunks):
                if i and chunk_delay:
                    await asyncio.sleep(chunk_delay)
                if i == crash_after:
                    self.on_exit(self.config.exit_code)
                    return resp
                text = oa.piece(i)
                await event(
                    oa.chat_chunk(body, rid, {"content": text}, None) if chat else oa.text_chunk(body, rid, text, None)
                )
            await event(oa.chat_chunk(body, rid, {}, "stop") if chat else oa.text_chunk(body, rid, "", "stop"))
            if (body.get("stream_options") or {}).get("include_usage"):
                obj = "chat.completion.chunk" if chat else "text_completion"
                await event(oa.usage_chunk(body, rid, chunks, obj))
            await resp.write(b"data: [DONE]\n\n")
            await resp.write_eof()
        return resp


def parse_args(argv: Sequence[str] | None, env: Mapping[str, str]) -> tuple[FakeConfig, str, int]:
    p = argparse.ArgumentParser(prog="python -m podium.worker.fake", description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=int(env.get("PORT", "8000")))
    p.add_argument("--host", default=env.get("HOST", "127.0.0.1"))
    p.add_argument("--model", help="model id served (default: FAKE_MODEL, PODIUM_SERVED_MODEL_NAME, fake-model)")
    p.add_argument("--delay", dest="delay_s", type=float)
    p.add_argument("--chunk-delay", dest="chunk_delay_s", type=float)
    p.add_argument("--chunks", type=int)
    p.add_argument("--start-delay", dest="start_delay_s", type=float)
    p.add_argument("--ready-after", dest="ready_after_s", type=float)
    p.add_argument("--health-fail-after", type=int)
    p.add_argument("--exit-after", type=int)
    p.add_argument("--exit-code", type=int)
    p.add_argument("--embedding-dim", type=int)
    ns = vars(p.parse_args(argv))
    host, port = ns.pop("host"), ns.pop("port")
    return FakeConfig.from_env(env, **ns), host, port


async def _serve(config: FakeConfig, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    worker = FakeWorker(config, host, port, on_exit=lambda code: os._exit(code))
    await worker.start()
    print(f"fake worker serving {config.model!r} on {worker.url} (pid {os.getpid()})", flush=True)
    await stop.wait()
    await worker.stop()


def main(argv: Sequence[str] | None = None) -> int:
    config, host, port = parse_args(argv, os.environ)
    if config.start_delay_s:
        time.sleep(config.start_delay_s)  # a slow-booting server: nothing listens meanwhile
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(_serve(config, host, port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
