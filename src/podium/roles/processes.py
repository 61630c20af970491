"""What each `podium up --role` process runs, in the order its parts are built (roles/compose.py
builds them). The roles differ only in which parts they take and how those reach each other:
in-process calls for `all`, `/internal/v0` HTTP otherwise."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from podium.controller.loop import Controller
from podium.gateway.app import Gateway
from podium.gateway.server import serve
from podium.http.server import serve_app
from podium.jobs.internal import jobs_internal_router
from podium.jobs.plane import job_runner, jobs_plane, mount_jobs, remote_runner
from podium.jobs.remote import RemoteIntake, forward_router
from podium.jobs.runner import JobRunner
from podium.roles.adapters import SyncWrites, TokenPublisher
from podium.roles.compose import (
    ControlLoop,
    api_app,
    control_loop,
    forward_wakes,
    foundation,
    local_stats,
    watch_nodes,
)
from podium.roles.follower import RouteFollower
from podium.roles.internal import (
    RemoteController,
    RemoteEngine,
    controller_router,
    engine_payload,
    gateway_app,
    install,
    token_guard,
)
from podium.roles.leader import LeaderLease, LeaderLocator, holder_id
from podium.roles.routebook import FanOut, RouteBook, merged_outcomes
from podium.services.token_meter import local_usage
from podium.services.tokens import TokenService
from podium.settings import Settings
from podium.store.repos import Store

log = logging.getLogger("podium")
Task = Coroutine[Any, Any, None]


async def main(settings: Settings, admin_token: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runners = {"all": run_all, "controller": run_controller, "api": run_api, "gateway": run_gateway}
    await runners[settings.role](settings, admin_token, stop)


def admin_hashes(store: Store) -> Callable[[], Awaitable[set[str]]]:
    async def hashes() -> set[str]:
        return {t.sha256 for t in await store.tokens() if "admin" in t.scopes.split(",")}

    return hashes


async def run_all(settings: Settings, admin_token: str, stop: asyncio.Event) -> None:
    """Everything in one process; other `--role gateway` processes may still attach to it."""
    base = foundation(settings)
    book = RouteBook(admin_token)
    wakes: asyncio.Queue[str] = asyncio.Queue()  # the gateway's wake-ups, for the autoscaler built after it
    jobs = jobs_plane(base.store, settings.jobs)  # `Prefer: respond-async` requests are queued here (docs/jobs.md)
    gateway = Gateway(wake=wakes.put_nowait, jobs=jobs.intake)
    runner = job_runner(  # jobs replayed through this gateway in-process (same slots, no loopback HTTP)
        jobs, admin_token, local=gateway.handle, gateway_stats=gateway.stats, capacity=gateway.capacity
    )
    publisher = FanOut(gateway, book)
    loop = control_loop(
        settings,
        base,
        publisher,
        [local_stats(gateway.stats), book.stats, local_stats(runner.stats)],
        usage=[local_usage(gateway.token_usage), book.token_usage],
    )
    # a canary is judged by this gateway's counts and attached remote ones' (roles/routebook.py)
    loop.controller.rollouts.outcomes = lambda eid: merged_outcomes(
        [gateway.revision_outcomes(eid), book.revision_outcomes(eid)]
    )
    gateway.metrics_extra = loop.engine.render  # the replicas' engine gauges on this /metrics
    book.attach_local(gateway)  # attached gateways and this one split each token's rate
    tokens_pub = TokenPublisher(base.store, publisher)
    app = await api_app(settings, base, admin_token, loop.controller.hint, tokens_pub.schedule, loop.autoscaler)
    mount_jobs(app, jobs, runner)
    _serve_internal(app, book, base.store, loop, tokens_pub)
    app.include_router(jobs_internal_router(jobs.intake, token_guard(admin_hashes(base.store))))  # gateways' jobs
    await tokens_pub.publish()
    started = asyncio.Event()
    writes = SyncWrites(app, loop.controller.sync)
    listener = serve(
        gateway, writes, settings.host, settings.port, started=started, should_exit=stop, limits=settings.http
    )
    try:
        await _run(
            settings,
            stop,
            started,
            listener,
            loop.controller.run(stop),
            loop.autoscaler.run(stop),
            _until(stop, forward_wakes(wakes, loop.autoscaler)),
            _prime(book, loop.controller, stop),
            watch_nodes(base, stop),
            runner.run(stop),
            loop.engine.run(stop),
            loop.meter.run(stop),
        )
    finally:
        await loop.controller.shutdown()
        await gateway.aclose()
        await book.close()
        await base.store.close()


async def run_controller(settings: Settings, admin_token: str, stop: asyncio.Event) -> None:
    """Controller + autoscaler; gateways follow its routes, the api role hints it. With a shared
    database (PODIUM_DATABASE_URL) several may run: the one holding the leader lease acts, the others
    wait to take over (`_lead`)."""
    base = foundation(settings)
    book = RouteBook(admin_token)
    jobs = jobs_plane(base.store, settings.jobs)  # the queue; gateways submit to /internal/v0/jobs (docs/jobs.md)
    runner = remote_runner(jobs, admin_token, book.stats, lambda: [g["url"] for g in book.describe()])
    loop = control_loop(settings, base, book, [book.stats, local_stats(runner.stats)], usage=[book.token_usage])
    loop.controller.rollouts.outcomes = book.revision_outcomes  # a canary is judged by the gateways' counts
    tokens_pub = TokenPublisher(base.store, book)
    await TokenService(base.store).ensure_bootstrap(admin_token)
    app = _health_app("controller")
    app.get("/metrics", include_in_schema=False)(_engine_metrics(loop))
    _serve_internal(app, book, base.store, loop, tokens_pub)
    app.include_router(jobs_internal_router(jobs.intake, token_guard(admin_hashes(base.store))))
    mount_jobs(app, jobs, runner)
    started = asyncio.Event()
    listener = _serve_asgi(app, settings, started, stop)
    try:
        if settings.database_url is None:  # SQLite: one controller, always leading
            await _run(
                settings,
                stop,
                started,
                listener,
                _control(loop, book, tokens_pub, stop, runner),
                watch_nodes(base, stop),
            )
        else:
            lease = LeaderLease(base.store.leases, holder_id(), settings.advertise_url or settings.base_url)
            _leader_only(app, lease)
            async with lease:  # on stop: the term ends, the lease is released at once (a standby leads)
                control = lambda: _control(loop, book, tokens_pub, stop, runner)  # noqa: E731
                work = lease.lead_until(stop, control, nudge=_nudge(loop.controller.hint, runner.wake))
                await _run(settings, stop, started, listener, work, watch_nodes(base, stop))
    finally:  # one controller: stop the replicas (like `podium up`); several: the next leader adopts them
        await (loop.controller.shutdown() if settings.database_url is None else loop.controller.leave())
        await book.close()
        await base.store.close()


async def _control(
    loop: ControlLoop, book: RouteBook, tokens_pub: TokenPublisher, stop: asyncio.Event, jobs: JobRunner
) -> None:
    """One term of leading: adopt what runs (a predecessor may have started or ended replicas), then
    reconcile and scale until `stop` (or until the lease is lost: cancelled then)."""
    loop.controller.adopted = False
    await tokens_pub.publish()
    try:
        await asyncio.gather(
            loop.controller.run(stop),
            loop.autoscaler.run(stop),
            _prime(book, loop.controller, stop),
            loop.engine.run(stop),
            loop.meter.run(stop),
            jobs.run(stop),  # the one runner of the queue: only while leading
        )
    finally:  # the lease was lost (or stop): no start or drain of this term may act after it
        await loop.controller.replicas.abandon()


def _leader_only(app: Any, lease: LeaderLease) -> None:
    """A controller that does not lead answers 503 on /internal/v0: gateways and api processes must
    talk to the leader (they find it with LeaderLocator), never to a stale book."""
    from starlette.responses import JSONResponse

    @app.middleware("http")
    async def leader_only(request: Any, call_next: Any) -> Any:
        if request.url.path.startswith("/internal/") and not lease.is_leader:
            return JSONResponse({"error": "not the leader: this controller waits to take over"}, status_code=503)
        return await call_next(request)


async def run_api(settings: Settings, admin_token: str, stop: asyncio.Event) -> None:
    """The control plane and console only; writes are handed to the controller over HTTP. Its runtime
    reads replica logs and starts nothing in this role."""
    base = foundation(settings)
    locator = None if settings.controller_url else LeaderLocator(base.store.leases)
    remote = RemoteController(settings.controller_url or "", admin_token, locator)
    engine = RemoteEngine(remote.engine)  # status.engine: the controller's samples, cached 1 s
    app = await api_app(settings, base, admin_token, lambda _: remote.hint(), remote.hint, engine)
    started = asyncio.Event()
    try:
        listener = _serve_asgi(SyncWrites(app, remote.sync), settings, started, stop)
        await _run(settings, stop, started, listener, watch_nodes(base, stop))
    finally:
        await remote.close()
        await base.store.close()


async def run_gateway(settings: Settings, admin_token: str, stop: asyncio.Event) -> None:
    """The data plane only: routes and tokens follow the controller; stats are pulled by it."""
    store = None if settings.controller_url else Store(settings.db_url)  # only to read the leader lease
    locator = None if store is None else LeaderLocator(store.leases)
    follower = RouteFollower(
        settings.controller_url or "",
        admin_token,
        settings.advertise_url or settings.base_url,
        locator=locator,
        region=settings.region,
    )
    intake = RemoteIntake(lambda: follower.controller_url, admin_token)  # jobs are kept by the controller
    gateway = Gateway(wake=follower.wake, jobs=intake)
    follower.attach(gateway)
    follower_task = asyncio.create_task(follower.run(stop))
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(follower.synced.wait(), 10)
    if not follower.synced.is_set():
        log.warning("no routes from %s yet; serving, will keep trying", settings.controller_url)
    own = {hashlib.sha256(admin_token.encode()).hexdigest()}

    async def allowed() -> set[str]:
        return own

    app = gateway_app(follower.stats, token_guard(allowed))
    app.include_router(forward_router(lambda: follower.controller_url))  # /jobs, /v1/files, /v1/batches
    started = asyncio.Event()
    try:
        await _run(
            settings,
            stop,
            started,
            serve(gateway, app, settings.host, settings.port, started=started, should_exit=stop, limits=settings.http),
        )
    finally:
        stop.set()
        await follower_task
        await gateway.aclose()
        await intake.close()
        if store is not None:
            await store.close()


def _serve_internal(app: Any, book: RouteBook, store: Store, loop: ControlLoop, tokens_pub: TokenPublisher) -> None:
    """Mount `/internal/v0` for gateways and api processes in other processes."""
    router = controller_router(
        book,
        loop.autoscaler.wake,
        _hint_and_tokens(loop.controller.hint, tokens_pub),
        loop.controller.sync,
        token_guard(admin_hashes(store)),
        engine=lambda: engine_payload(loop.engine),
    )
    install(app, router)


def _hint_and_tokens(hint: Callable[[], None], tokens: TokenPublisher) -> Callable[[], None]:
    def both() -> None:
        hint()
        tokens.schedule()  # the api role may have created or revoked a token

    return both


def _nudge(*wakes: Callable[[], None]) -> Callable[[], None]:
    """Wake the loops that sleep on their own timers (the controller's resync, the idle job runner's
    2 s poll), so that at a hand-off they see `stop` now instead of at their next wake-up."""

    def nudge() -> None:
        for wake in wakes:
            wake()

    return nudge


async def _until(stop: asyncio.Event, forever: Task) -> None:
    """Run a task that never ends on its own until `stop`."""
    task = asyncio.create_task(forever)
    await stop.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _prime(book: RouteBook, controller: Controller, stop: asyncio.Event) -> None:
    """Gateways get routes only once the controller's first tick has published them all: a restarted
    controller must not hand a gateway an empty table (it would drop every route and fail held requests)."""
    synced = asyncio.create_task(controller.sync(timeout_s=3600))
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait([synced, stopping], return_when=asyncio.FIRST_COMPLETED)
    for task in (synced, stopping):
        task.cancel()
    if synced.done() and not synced.cancelled():
        book.mark_primed()


def _engine_metrics(loop: ControlLoop) -> Callable[[], Awaitable[Any]]:
    """GET /metrics of the controller role: the replicas' engine gauges (controller/engine_metrics.py)."""
    from starlette.responses import PlainTextResponse

    async def metrics() -> Any:
        return PlainTextResponse(loop.engine.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    return metrics


def _health_app(role: str) -> Any:
    from fastapi import FastAPI

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "role": role}

    return app


async def _serve_asgi(app: Any, settings: Settings, started: asyncio.Event, stop: asyncio.Event) -> None:
    """The built-in listener for roles without a data plane (control calls and long-polls): the same
    request limits as the gateway's port (431/414/413/408), which uvicorn's protocol lacks; a short
    graceful stop, so long-polls from gateways do not hold a shutdown."""
    await serve_app(
        app, settings.host, settings.port, should_exit=stop, started=started, limits=settings.http, graceful_timeout_s=3
    )


async def _run(settings: Settings, stop: asyncio.Event, started: asyncio.Event, listener: Task, *loops: Task) -> None:
    tasks = [asyncio.create_task(listener), *(asyncio.create_task(c) for c in loops)]
    waiter = asyncio.create_task(started.wait())
    await asyncio.wait([waiter, tasks[0]], return_when=asyncio.FIRST_COMPLETED)
    if started.is_set():
        print(f"podium ({settings.role}) serving on {settings.base_url} (data dir {settings.data_dir})", flush=True)
    if not tasks[0].done():
        await asyncio.wait([tasks[0], asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    waiter.cancel()
    for t in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(t, timeout=10)
    if tasks[0].done() and not tasks[0].cancelled() and tasks[0].exception() is not None:
        raise RuntimeError("the listener failed") from tasks[0].exception()
