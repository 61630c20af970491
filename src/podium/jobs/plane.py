"""How a process that holds the store builds its jobs parts, in order: the queue's intake (before the
gateway, which hands it `Prefer: respond-async` requests), then the runner (after the gateway, whose
stats and capacity it reads), then the HTTP routes (mounted on the control-plane app, which serves every
non-relayed path of the data-plane port)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from fastapi import FastAPI

from podium.core.stats import EndpointStats
from podium.http.message import Request, Responder
from podium.jobs.batch import Batches
from podium.jobs.batch_http import batch_router
from podium.jobs.batch_repo import BatchRepo
from podium.jobs.dispatch import Dispatcher, JobDispatcher, LocalDispatcher
from podium.jobs.http import jobs_router
from podium.jobs.intake import StoreIntake
from podium.jobs.policy import JobPolicies
from podium.jobs.remote import CachedStats, StoreCapacity
from podium.jobs.repo import JobRepo
from podium.jobs.runner import JobRunner
from podium.jobs.tuning import JobsTuning
from podium.store.db import sqlite_path
from podium.store.repos import Store


@dataclass
class JobsPlane:
    store: Store
    repo: JobRepo
    policies: JobPolicies
    intake: StoreIntake
    tuning: JobsTuning
    batch_repo: BatchRepo
    batches: Batches
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)


def jobs_plane(store: Store, tuning: JobsTuning | None = None) -> JobsPlane:
    tuning = tuning or JobsTuning()
    repo = JobRepo(store.session, sqlite_path(store.url))
    policies = JobPolicies(tuning.max_queued_per_endpoint)
    wakeup = asyncio.Event()

    async def endpoint_of(model: str) -> str | None:
        row = await store.find_endpoint(model)
        return None if row is None or row.deleting else row.id

    batch_repo = BatchRepo(store.session)
    batches = Batches(repo, batch_repo, endpoint_of, wakeup.set)

    async def spec_of(endpoint_id: str) -> str | None:
        row = await store.get_endpoint(endpoint_id)
        return None if row is None else row.spec_json

    intake = StoreIntake(repo, policies, wakeup.set, spec_of=spec_of)
    return JobsPlane(store, repo, policies, intake, tuning, batch_repo, batches, wakeup)


def job_runner(
    plane: JobsPlane,
    admin_token: str,
    *,
    gateway_url: Callable[[], str | None] | None = None,
    local: Callable[[Request, Responder], Awaitable[None]] | None = None,
    gateway_stats: Callable[[], Mapping[str, EndpointStats]],
    capacity: Callable[[str], int],
    pre_pass: Sequence[Callable[[], Awaitable[None]]] = (),
) -> JobRunner:
    """`local`: the in-process gateway's `handle` (role all: jobs replayed without loopback HTTP); else
    `gateway_url`: a gateway to replay them through over HTTP."""
    dispatcher: JobDispatcher
    if local is not None:
        dispatcher = LocalDispatcher(local, admin_token)
    else:
        assert gateway_url is not None, "a local gateway or a gateway URL"
        dispatcher = Dispatcher(gateway_url, admin_token)
    return JobRunner(
        plane.store,
        plane.repo,
        plane.policies,
        dispatcher,
        tuning=plane.tuning,
        gateway_stats=gateway_stats,
        capacity=capacity,
        hooks=[plane.batches.finalize_due, lambda: plane.batches.purge(time.time() - plane.tuning.retention_s)],
        pre_pass=pre_pass,
        wakeup=plane.wakeup,
    )


def mount_jobs(app: FastAPI, plane: JobsPlane, runner: JobRunner) -> None:
    """`/jobs`, `/v1/files`, `/v1/batches` on the app that serves the port's non-relayed paths."""
    app.include_router(jobs_router(plane.store, plane.repo, runner.cancel_local))
    app.include_router(batch_router(plane.store, plane.batch_repo, plane.batches, plane.tuning.max_file_bytes))


def remote_runner(
    plane: JobsPlane,
    admin_token: str,
    book_stats: Callable[[], Awaitable[Mapping[str, EndpointStats]]],
    gateway_urls: Callable[[], list[str]],
) -> JobRunner:
    """The runner of `--role controller`: jobs go through an attached gateway (the first one listed), the
    gateways' merged stats say what waits, the store says how many slots are ready."""
    stats = CachedStats(book_stats)
    capacity = StoreCapacity(plane.store)

    def gateway_url() -> str | None:
        urls = gateway_urls()
        return urls[0] if urls else None

    return job_runner(
        plane,
        admin_token,
        gateway_url=gateway_url,
        gateway_stats=stats,
        capacity=capacity,
        pre_pass=[stats.refresh, capacity.refresh],
    )
