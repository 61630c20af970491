"""The endpoint's Jobs tab (docs/jobs.md): its newest async jobs with status, times and the replica's
status code, and Cancel for queued and running ones (admins). It reads and cancels through the queue's
own repository over the store, as `GET /jobs` and `POST /jobs/{id}/cancel` do; a running job is cut by
its runner at the next heartbeat (`JobsTuning.heartbeat_s`, 1 s). Bodies are never shown: a job's
request and answer are its submitter's data."""

from __future__ import annotations

import hashlib
import time
from html import escape
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from podium.api.deps import Services, services
from podium.console.frame import frame, tab_context
from podium.console.layout import COOKIE, forbidden, is_admin, principal_of
from podium.jobs.repo import JobRepo
from podium.jobs.tables import CANCELLED, EXPIRED, FAILED, QUEUED, RUNNING, SUCCEEDED, JobRow

router = APIRouter(include_in_schema=False)
STATUSES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED, EXPIRED)
SHOWN = 100  # the newest jobs listed


def _when(at: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at)) if at else "-"


def _row(j: JobRow, eid: str, admin: bool) -> str:
    cancel = (
        f"<form class='inline' method='post' action='/console/jobs/{escape(j.id)}/cancel'>"
        f"<input type='hidden' name='endpoint' value='{eid}'><button class='secondary'>Cancel</button></form>"
        if admin and j.status in (QUEUED, RUNNING)
        else ""
    )
    batch = f"<br><span class='muted'>batch {escape(j.batch_id)}</span>" if j.batch_id else ""
    return (
        f"<tr><td><code>{escape(j.id)}</code>{batch}</td><td>{escape(j.status)}</td>"
        f"<td>{escape(j.method)} <code>{escape(j.path)[:120]}</code></td><td>{_when(j.created_at)}</td>"
        f"<td>{_when(j.started_at)}</td><td>{_when(j.finished_at)}</td>"
        f"<td>{j.response_status if j.response_status is not None else '-'}</td><td>{j.attempts}</td>"
        f"<td>{escape(j.error or '')[:200]}</td><td>{cancel}</td></tr>"
    )


@router.get("/console/endpoints/{endpoint_id}/jobs", response_class=HTMLResponse)
async def jobs_tab(endpoint_id: str, request: Request, svc: Services = Depends(services)) -> Response:
    ctx = await tab_context(endpoint_id, request, svc)
    if isinstance(ctx, HTMLResponse):
        return ctx
    principal, rec = ctx
    admin = is_admin(principal)
    status = request.query_params.get("status")
    status = status if status in STATUSES else None
    # as GET /jobs: an admin sees every job, any other token the jobs it submitted
    repo = JobRepo(svc.endpoints.store.session)
    digest = hashlib.sha256(request.cookies.get(COOKIE, "").encode()).hexdigest()
    jobs = await repo.find(token=digest, admin=admin, endpoint=rec.row.id, status=status, limit=SHOWN)
    eid = escape(rec.row.id)
    filters = " · ".join(
        f"<a href='/console/endpoints/{eid}/jobs{'?status=' + s if s else ''}'"
        f"{' aria-current=page' if s == (status or '') else ''}>{s or 'all'}</a>"
        for s in ("", *STATUSES)
    )
    rows = "".join(_row(j, eid, admin) for j in jobs)
    table = (
        "<div class='table-wrap'><table><caption class='skip'>Jobs</caption><tr><th scope=col>Job</th>"
        "<th scope=col>Status</th><th scope=col>Request</th><th scope=col>Created</th><th scope=col>Started</th>"
        "<th scope=col>Finished</th><th scope=col>Status code</th><th scope=col>Attempts</th>"
        f"<th scope=col>Error</th><th scope=col></th></tr>{rows}</table></div>"
        if rows
        else "<p class='muted'>No jobs. Send a request with <code>Prefer: respond-async</code> to queue one.</p>"
    )
    msg = ""
    if request.query_params.get("cancelled"):
        msg = f'<p class="ok" role="status">✓ Job {escape(request.query_params["cancelled"])} cancelled.</p>'
    elif request.query_params.get("error"):
        msg = f'<p class="err" role="alert">{escape(request.query_params["error"])}</p>'
    inner = f"{msg}<h2>Jobs (newest {SHOWN})</h2><p>Status: {filters}</p>{table}"
    return frame(rec, "/jobs", inner, principal)


@router.post("/console/jobs/{job_id}/cancel")
async def cancel_job(
    job_id: str, request: Request, endpoint: str = Form(""), svc: Services = Depends(services)
) -> Response:
    if not is_admin(await principal_of(request, svc)):
        return forbidden("cancelling jobs needs an admin token; this one may only read")
    repo = JobRepo(svc.endpoints.store.session)
    row = await repo.cancel(job_id, time.time())
    back = f"/console/endpoints/{quote(endpoint or (row.endpoint_id if row else ''))}/jobs"
    if row is None:
        return RedirectResponse(f"{back}?error={quote(f'job {job_id} not found')}", status_code=303)
    if row.status != CANCELLED:
        why = f"job {job_id} is {row.status} already: only queued and running jobs can be cancelled"
        return RedirectResponse(f"{back}?error={quote(why)}", status_code=303)
    return RedirectResponse(f"{back}?cancelled={quote(job_id)}", status_code=303)
