"""`/jobs`: read, list and cancel jobs (DESIGN.md, "Async jobs"). Thin: access.py says who may see what,
repo.py does the work. Served on the data-plane port by whichever process holds the store."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from podium.gateway.errors import GatewayError
from podium.jobs.access import caller, error, need_token, not_found
from podium.jobs.repo import JobRepo
from podium.jobs.tables import CANCELLED, EXPIRED, FAILED, QUEUED, RUNNING, SUCCEEDED
from podium.jobs.views import job_json
from podium.store.repos import Store

STATUSES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED, EXPIRED)


def jobs_router(store: Store, repo: JobRepo, on_cancel: Callable[[str], None]) -> APIRouter:
    """`on_cancel(job_id)`: the runner in this process cuts a running job's request at once (a runner
    elsewhere sees the cancel at its next heartbeat)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/jobs/{job_id}")
    async def get_job(job_id: str, request: Request) -> Any:
        who = await caller(store, request)
        row = await repo.get(job_id)
        if row is None or not who.owns(row.token_sha256):
            return not_found("job")
        return job_json(row)

    @router.get("/jobs")
    async def list_jobs(
        request: Request,
        endpoint: str | None = Query(None, max_length=128),
        status: str | None = Query(None, max_length=16),
        limit: int = Query(100, ge=1, le=1000),
    ) -> Any:
        who = await caller(store, request)
        if who.digest is None:
            return need_token()
        if status is not None and status not in STATUSES:
            msg = f"status: must be one of {', '.join(STATUSES)}"
            return error(GatewayError(422, msg, code="invalid_status"))
        endpoint_id = None
        if endpoint:
            row = await store.find_endpoint(endpoint)
            if row is None:
                return JSONResponse({"object": "list", "data": []})
            endpoint_id = row.id
        rows = await repo.find(token=who.digest, admin=who.admin, endpoint=endpoint_id, status=status, limit=limit)
        return {"object": "list", "data": [job_json(r) for r in rows]}

    @router.post("/jobs/{job_id}/cancel")
    async def cancel_job(job_id: str, request: Request) -> Any:
        who = await caller(store, request)
        row = await repo.get(job_id)
        if row is None or not who.owns(row.token_sha256):
            return not_found("job")
        row = await repo.cancel(job_id, time.time())
        if row is None:
            return not_found("job")
        on_cancel(job_id)
        return job_json(row)

    return router
