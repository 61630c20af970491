"""The endpoint's Revisions tab (docs/rollouts.md): every revision with what changed, its state, its
replicas and the canary traffic side by side, the rollout under way, and Roll back / Promote buttons.
The buttons call `RolloutService` in this process (the same rules as `POST .../rollback|promote`),
never this server over HTTP; the answer comes back on the tab (a redirect with what happened)."""

from __future__ import annotations

import time
from html import escape
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from podium.api.deps import Services, services
from podium.console.frame import frame, tab_context
from podium.console.layout import forbidden, is_admin, principal_of
from podium.core.errors import PodiumError
from podium.services.endpoints import EndpointRecord
from podium.services.rollouts import RevisionView, RolloutService

router = APIRouter(include_in_schema=False)
CANARY = "canary"


def _when(at: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at)) if at else "-"


def rollout_line(rec: EndpointRecord) -> str:
    """The rollout under way, in words (as `status.rollout` says it), or "" when every replica runs
    the endpoint's revision."""
    gen = rec.row.generation
    new = [r for r in rec.replicas if r.generation == gen]
    old = [r for r in rec.replicas if r.generation != gen]
    if not old:
        return ""
    ready = sum(1 for r in new if r.state == "ready")
    froms = ", ".join(str(n) for n in sorted({r.generation for r in old}))
    how = "Canary" if rec.spec.rollout.strategy.value == CANARY else "Rolling update"
    return f"{how} from revision {froms} to {gen}: {ready}/{len(new)} new ready, {len(old)} old still serving"


def revision_summary(rec: EndpointRecord, decisions: Any = None) -> str:
    """The overview's lines: the revision new replicas run, the rollout, the engines together."""
    rollout = rollout_line(rec)
    lines = [
        f"<p>Revision <b>{rec.row.generation}</b> "
        f"(<a href='/console/endpoints/{escape(rec.row.id)}/revisions'>all revisions</a>)</p>",
        f"<p class='rollout' role='status'>◐ {rollout}</p>" if rollout else "",
    ]
    load = decisions.endpoint_engine(rec.row.id) if decisions is not None else None
    if load is not None:
        kv = (
            f", KV cache mean {load.kv_cache_avg * 100:.0f}% / max {(load.kv_cache_max or 0) * 100:.0f}%"
            if load.kv_cache_avg is not None
            else ""
        )
        lines.append(
            f"<p>Engines ({load.replicas} ready replica(s)): {load.waiting:g} waiting, {load.running:g} running{kv}</p>"
        )
    return "".join(lines)


def _traffic(v: RevisionView) -> str:
    r = v.row
    if not r.requests:
        return "-"
    return f"{r.requests} req, {r.errors} 5xx ({r.errors / r.requests * 100:.1f}%), mean {r.latency_s * 1000:.0f} ms"


def _row(v: RevisionView, eid: str, admin: bool) -> str:
    r = v.row
    changes = ", ".join(c for c in r.changes.split(",") if c) or "-"
    button = ""
    if admin and not v.current and r.state != "failed":
        button = (
            f"<form class='inline' method='post' action='/console/endpoints/{eid}/revisions/rollback'>"
            f"<input type='hidden' name='revision' value='{r.number}'>"
            f"<button class='secondary'>Roll back to this revision</button></form>"
        )
    current = " <b>(current)</b>" if v.current else ""
    return (
        f"<tr><td>{r.number}{current}</td><td>{escape(changes)[:300]}</td><td>{escape(r.state)}"
        f"{' (canary)' if r.strategy == CANARY and r.state != CANARY else ''}</td><td>{_when(r.created_at)}</td>"
        f"<td>{v.ready} / {v.replicas}</td><td>{_traffic(v)}</td><td>{escape(r.reason)[:300]}</td>"
        f"<td>{button}</td></tr>"
    )


def _canary(views: list[RevisionView], eid: str, admin: bool) -> str:
    """A canary waiting for promote: its traffic beside the others', and the Promote button."""
    current = next((v for v in views if v.current), None)
    if current is None or current.row.state != CANARY:
        return ""
    others = [v for v in views if not v.current and v.row.requests]
    side = "".join(f"<li>revision {v.row.number}: {_traffic(v)}</li>" for v in others)
    promote = (
        f"<form class='inline' method='post' action='/console/endpoints/{eid}/revisions/promote'>"
        "<button>Promote</button></form>"
        if admin
        else ""
    )
    return (
        f"<div class='card'><h2>Canary: revision {current.row.number}</h2><ul><li>revision {current.row.number} "
        f"(canary): {_traffic(current)}</li>{side}</ul><p>Promote rolls it to every replica; roll back to drop "
        f"it.</p>{promote}</div>"
    )


def _message(request: Request) -> str:
    q = request.query_params
    if q.get("error"):
        return f'<p class="err" role="alert">{escape(q["error"])}</p>'
    if q.get("rolled", "").isdigit():
        return f'<p class="ok" role="status">✓ Rolling back to revision {q["rolled"]}.</p>'
    if q.get("promoted"):
        return '<p class="ok" role="status">✓ Canary promoted: it rolls to every replica.</p>'
    return ""


@router.get("/console/endpoints/{endpoint_id}/revisions", response_class=HTMLResponse)
async def revisions_tab(endpoint_id: str, request: Request, svc: Services = Depends(services)) -> Response:
    ctx = await tab_context(endpoint_id, request, svc)
    if isinstance(ctx, HTMLResponse):
        return ctx
    principal, rec = ctx
    admin = is_admin(principal)
    _, views = await RolloutService(svc.endpoints).revisions(rec.row.id)
    eid = escape(rec.row.id)
    rollout = rollout_line(rec)
    rows = "".join(_row(v, eid, admin) for v in views)
    table = (
        "<div class='table-wrap'><table><caption class='skip'>Revisions</caption><tr><th scope=col>Revision</th>"
        "<th scope=col>What changed</th><th scope=col>State</th><th scope=col>Created</th>"
        "<th scope=col>Replicas ready / live</th><th scope=col>Canary traffic</th><th scope=col>Reason</th>"
        f"<th scope=col></th></tr>{rows}</table></div>"
        if rows
        else "<p class='muted'>No revisions recorded.</p>"
    )
    inner = (
        _message(request)
        + f"<h2>Revisions</h2><p>New replicas run revision <b>{rec.row.generation}</b>.</p>"
        + (f"<p class='rollout' role='status'>◐ {rollout}</p>" if rollout else "<p>No rollout under way.</p>")
        + _canary(views, eid, admin)
        + table
    )
    return frame(rec, "/revisions", inner, principal)


@router.post("/console/endpoints/{endpoint_id}/revisions/rollback")
async def rollback(
    endpoint_id: str, request: Request, revision: str = Form(""), svc: Services = Depends(services)
) -> Response:
    if not is_admin(await principal_of(request, svc)):
        return forbidden("rolling back needs an admin token; this one may only read")
    back = f"/console/endpoints/{quote(endpoint_id)}/revisions"
    if not revision.strip().isdigit():
        return RedirectResponse(f"{back}?error={quote('revision: a revision number')}", status_code=303)
    try:
        rec = await RolloutService(svc.endpoints).rollback(endpoint_id, int(revision))
    except PodiumError as exc:
        return RedirectResponse(f"{back}?error={quote(exc.message)}", status_code=303)
    return RedirectResponse(f"{back}?rolled={rec.row.generation}", status_code=303)


@router.post("/console/endpoints/{endpoint_id}/revisions/promote")
async def promote(endpoint_id: str, request: Request, svc: Services = Depends(services)) -> Response:
    if not is_admin(await principal_of(request, svc)):
        return forbidden("promoting needs an admin token; this one may only read")
    back = f"/console/endpoints/{quote(endpoint_id)}/revisions"
    try:
        await RolloutService(svc.endpoints).promote(endpoint_id)
    except PodiumError as exc:
        return RedirectResponse(f"{back}?error={quote(exc.message)}", status_code=303)
    return RedirectResponse(f"{back}?promoted=1", status_code=303)
