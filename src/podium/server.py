"""`podium up`: build every part from Settings, pass dependencies explicitly, run until a signal.

One event loop (uvloop) runs the listener (control plane + gateway on one port), the controller
and the autoscaler. Shutdown order matters: stop accepting, stop the loops, then stop replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TextIO

from podium.api.app import create_app
from podium.api.deps import Services
from podium.autoscaler.loop import Autoscaler
from podium.catalog import Catalog
from podium.console.pages import router as console_router
from podium.controller.capacity import GpuPool
from podium.controller.loop import Controller
from podium.gateway.app import Gateway
from podium.gateway.routes import PlatformToken
from podium.gateway.server import serve
from podium.runtime.local import LocalBackend
from podium.services.endpoints import EndpointService
from podium.services.scaling import StoreScalingAdapter
from podium.services.tokens import TokenService, load_or_create_admin_token
from podium.services.validation import SourceValidator
from podium.settings import Settings
from podium.store.db import migrate
from podium.store.repos import Store

log = logging.getLogger("podium")


def run(settings: Settings, log_level: str = "info") -> int:
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if settings.role != "all":
        print(f"error: --role {settings.role} is not available yet; run `podium up` (role all)", file=sys.stderr)
        return 2
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock = _lock_data_dir(settings.data_dir)
    if lock is None:
        print(f"error: another `podium up` is running on {settings.data_dir}", file=sys.stderr)
        return 1
    problem = _cannot_listen(settings.host, settings.port)
    if problem:
        print(f"error: cannot listen on {settings.host}:{settings.port}: {problem}", file=sys.stderr)
        return 1
    migrate(settings.db_url)
    token, created = load_or_create_admin_token(settings.data_dir, settings.admin_token)
    if created:
        print(f"admin token (saved to {settings.data_dir / 'admin_token'}): {token}", flush=True)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(_main(settings, token))
    return 0


async def _main(settings: Settings, admin_token: str) -> None:
    store = Store(settings.db_url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    catalog = Catalog.load([settings.data_dir / "catalog", *_env_catalog_dirs()])
    region = catalog.region("local")
    runtime = LocalBackend(settings.data_dir)
    gateway_ref: list[Gateway] = []
    controller_ref: list[Controller] = []

    def hint(endpoint_id: str | None = None) -> None:
        if controller_ref:
            controller_ref[0].hint(endpoint_id)

    autoscaler = Autoscaler(StoreScalingAdapter(store), [_stats_source(gateway_ref)], on_change=hint)
    gateway = Gateway(wake=autoscaler.wake)
    gateway_ref.append(gateway)
    controller = Controller(
        store,
        runtime,
        gateway,
        tuning=settings.controller,
        catalog=catalog,
        gpus=GpuPool(region.gpu_devices()),
    )
    controller_ref.append(controller)

    token_book = TokenPublisher(store, gateway)
    tokens = TokenService(store, on_change=token_book.schedule)
    await tokens.ensure_bootstrap(admin_token)
    await token_book.publish()
    endpoints = EndpointService(store, hint, SourceValidator(catalog, runtime.name))
    app = create_app(
        Services(
            settings,
            tokens,
            endpoints,
            {"catalog": catalog, "autoscaler": autoscaler, "runtime": runtime, "store": store},
        )
    )
    app.include_router(console_router)
    started = asyncio.Event()
    tasks = [
        asyncio.create_task(
            serve(
                gateway,
                SyncWrites(app, controller.sync),
                settings.host,
                settings.port,
                started=started,
                should_exit=stop,
            )
        ),
        asyncio.create_task(controller.run(stop)),
        asyncio.create_task(autoscaler.run(stop)),
    ]
    started_or_done = asyncio.create_task(started.wait())
    await asyncio.wait([started_or_done, tasks[0]], return_when=asyncio.FIRST_COMPLETED)
    if started.is_set():
        print(f"podium serving on {settings.base_url} (data dir {settings.data_dir})", flush=True)
    await stop.wait() if not tasks[0].done() else None
    stop.set()
    for t in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(t, timeout=10)
    await controller.shutdown()
    await gateway.aclose()
    await store.close()
    if tasks[0].done() and tasks[0].exception() is not None:
        raise tasks[0].exception()  # type: ignore[misc]


def _lock_data_dir(data_dir: Path) -> TextIO | None:
    """One `podium up` per data dir: two controllers would fight over the same replicas."""
    f = open(data_dir / "podium.lock", "w")  # noqa: SIM115 (held for the life of the process)
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        return None
    f.write(str(os.getpid()))
    f.flush()
    return f


def _cannot_listen(host: str, port: int) -> str | None:
    """Say clearly why the port can't be used, before adopting replicas or touching anything."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def _env_catalog_dirs() -> list[Path]:
    raw = os.environ.get("PODIUM_CATALOG_DIR", "")
    return [Path(p) for p in raw.split(os.pathsep) if p]


def _stats_source(gateway_ref: list[Gateway]):  # type: ignore[no-untyped-def]
    async def source():  # type: ignore[no-untyped-def]
        return gateway_ref[0].stats() if gateway_ref else {}

    return source


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


class TokenPublisher:
    """Keeps the gateway's in-memory token book equal to the database (auth never queries SQL)."""

    def __init__(self, store: Store, gateway: Gateway) -> None:
        self.store, self.gateway = store, gateway
        self._tasks: set[asyncio.Task[None]] = set()

    async def publish(self) -> None:
        rows = await self.store.tokens()
        self.gateway.set_platform_tokens(PlatformToken(r.id, r.sha256, frozenset(r.scopes.split(","))) for r in rows)

    def schedule(self) -> None:
        task = asyncio.get_running_loop().create_task(self.publish())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
