"""One endpoint's pages: overview, logs (followed by polling), scaling settings, and the
confirmation asked before stop and delete. Charts and the playground live in their own modules."""

from __future__ import annotations

import time
from html import escape

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from podium.api.deps import Services, services
from podium.api.schemas import masked
from podium.console.charts import charts_from, record_sample
from podium.console.frame import frame, replicas_table, tab_context
from podium.console.layout import is_admin, login_page, page, principal_of, state_badge
from podium.console.revisions import revision_summary
from podium.core.errors import PodiumError
from podium.runtime.base import RuntimeUnavailable
from podium.services.endpoints import EndpointRecord

router = APIRouter(include_in_schema=False)
CONFIRMED = ("stop", "delete")  # actions that ask first


async def _record(endpoint_id: str, svc: Services) -> EndpointRecord | HTMLResponse:
    try:
        return await svc.endpoints.get(endpoint_id)
    except PodiumError as exc:
        return page("Not found", f"<p class=err>{escape(exc.message)}</p>", status_code=404)


@router.get("/console/endpoints/{endpoint_id}", response_class=HTMLResponse)
async def overview(endpoint_id: str, request: Request, svc: Services = Depends(services)) -> Response:
    ctx = await tab_context(endpoint_id, request, svc)
    if isinstance(ctx, HTMLResponse):
        return ctx
    principal, rec = ctx
    events = await svc.endpoints.events(endpoint_id, 50)
    evs = "".join(
        f"<tr><td>{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(e.at))}</td><td>{escape(e.kind)}</td>"
        f"<td>{escape(e.message)[:300]}</td></tr>"
        for e in events
    )
    # the same masking as the API: no registry password ever, env values for admins only
    spec_json = escape(masked(rec.spec, reveal_env=is_admin(principal)).model_dump_json(indent=2))
    r = rec.row
    inner = (
        f'<div id="ep-revision" aria-live="polite">{revision_summary(rec, svc.decisions)}</div>'
        + (
            f"<p>Autoscaler wants {r.desired_replicas} replica(s): {escape(r.desired_reason or '')}</p>"
            if r.desired_replicas is not None
            else ""
        )
        + f'<h2>Replicas</h2><div id="ep-replicas" aria-live="polite">{replicas_table(rec, svc.decisions)}</div>'
        "<h2>Events</h2><div class='table-wrap'><table><tr><th scope=col>Time</th><th scope=col>Kind</th>"
        f"<th scope=col>Message</th></tr>{evs}</table></div><h2>Spec</h2><pre>{spec_json}</pre>"
    )
    return frame(rec, "", inner, principal)


@router.get("/console/live/endpoints/{endpoint_id}")
async def live(
    endpoint_id: str, request: Request, charts: bool = Query(False), svc: Services = Depends(services)
) -> Response:
    """State and replicas (and, on the charts tab, the charts) as fragments, polled every 2 s."""
    if await principal_of(request, svc) is None:
        return JSONResponse({"error": "sign in first"}, status_code=401)
    try:
        rec = await svc.endpoints.get(endpoint_id)
    except PodiumError as exc:
        return JSONResponse({"error": exc.message}, status_code=404)
    parts = {
        "ep-state": state_badge(rec.state),
        "ep-replicas": replicas_table(rec, svc.decisions),
        "ep-revision": revision_summary(rec, svc.decisions),
    }
    # every open endpoint tab samples the metrics, so the charts tab opens on a history, not a blank
    history = await record_sample(request, svc, rec)
    if charts:
        parts["ep-charts"] = charts_from(history)
    return JSONResponse(parts)


@router.get("/console/endpoints/{endpoint_id}/logs", response_class=HTMLResponse)
async def logs_tab(endpoint_id: str, request: Request, svc: Services = Depends(services)) -> Response:
    ctx = await tab_context(endpoint_id, request, svc)
    if isinstance(ctx, HTMLResponse):
        return ctx
    principal, rec = ctx
    text = escape(await _log_text(svc, rec, 200))
    inner = (
        '<p class="check"><input type="checkbox" id="follow" checked> <label for="follow">Follow (refresh every '
        f'2 s)</label></p><pre id="logs" tabindex="0" aria-label="Replica logs" '
        f'data-logs="/console/endpoints/{escape(rec.row.id)}/logs.txt">{text}</pre>'
    )
    return frame(rec, "/logs", inner, principal)


@router.get("/console/endpoints/{endpoint_id}/logs.txt")
async def logs_text(endpoint_id: str, request: Request, svc: Services = Depends(services)) -> Response:
    if await principal_of(request, svc) is None:
        return PlainTextResponse("sign in first", status_code=401)
    rec = await _record(endpoint_id, svc)
    if isinstance(rec, HTMLResponse):
        return PlainTextResponse("not found", status_code=404)
    return PlainTextResponse(await _log_text(svc, rec, 200))


async def _log_text(svc: Services, rec: EndpointRecord, tail: int) -> str:
    """The newest replica's last lines (what `podium endpoint logs` shows), or why there are none."""
    if svc.runtime is None:
        return "[podium] replica logs are not readable from this process (no runtime attached)"
    history = await svc.endpoints.store.replicas_of([rec.row.id], include_ended=True)
    chosen = [r.id for r in rec.replicas][-1:] or [r.id for r in history[-1:]]
    if not chosen:
        return "[podium] no replica has run yet"
    lines: list[str] = []
    try:
        async for line in svc.runtime.logs(chosen[0], tail=tail, follow=False):
            lines.append(line if line.endswith("\n") else line + "\n")
    except RuntimeUnavailable as exc:
        lines.append(f"[podium] logs cannot be read now: {exc}\n")
    return "".join(lines) or f"[podium] replica {chosen[0]} has written nothing yet"


@router.get("/console/endpoints/{endpoint_id}/confirm/{action}", response_class=HTMLResponse)
async def confirm(endpoint_id: str, action: str, request: Request, svc: Services = Depends(services)) -> Response:
    principal = await principal_of(request, svc)
    if principal is None:
        return login_page()
    rec = await _record(endpoint_id, svc)
    if isinstance(rec, HTMLResponse) or action not in CONFIRMED:
        return page("Not found", "<p class=err>nothing to confirm</p>", status_code=404)
    name, eid = escape(rec.row.name), escape(rec.row.id)
    what = (
        "Its replicas stop and it bills nothing; start it again any time."
        if action == "stop"
        else "Its replicas stop and the endpoint is removed. This cannot be undone."
    )
    body = (
        f'<h1>{action.capitalize()} {name}?</h1><p>{what}</p><form method="post" '
        f'action="/console/endpoints/{eid}/{action}"><input type="hidden" name="confirm" value="yes">'
        f'<button class="danger">Yes, {action} {name}</button>'
        f'<a class="button secondary" href="/console/endpoints/{eid}">Cancel</a></form>'
    )
    return page(f"{action} {rec.row.name}", body)


@router.get("/console/endpoints/{endpoint_id}/settings", response_class=HTMLResponse)
async def settings_tab(endpoint_id: str, request: Request, svc: Services = Depends(services)) -> Response:
    ctx = await tab_context(endpoint_id, request, svc)
    if isinstance(ctx, HTMLResponse):
        return ctx
    principal, rec = ctx
    saved = '<p class="ok" role="status">✓ Scaling saved.</p>' if request.query_params.get("saved") else ""
    return frame(rec, "/settings", saved + scaling_form(rec, request.query_params.get("error", "")), principal)


def scaling_form(rec: EndpointRecord, error: str = "") -> str:
    s = rec.spec.scaling
    eid = escape(rec.row.id)
    fields = (
        ("min_replicas", "Min replicas", s.min_replicas),
        ("max_replicas", "Max replicas", s.max_replicas),
        ("idle_timeout_s", "Idle timeout (s)", s.idle_timeout_s),
        ("max_concurrency", "Max concurrency per replica", s.max_concurrency),
    )
    inputs = "".join(
        f'<div><label for="{k}">{label}</label><input id="{k}" name="{k}" type="number" min="0" step="any" '
        f'value="{v:g}" required></div>'
        for k, label, v in fields
    )
    msg = f'<p class="err" role="alert">{escape(error)}</p>' if error else ""
    return (
        f'<h2>Scaling</h2>{msg}<form method="post" action="/console/endpoints/{eid}/scaling" class="card">'
        f'<div class="row">{inputs}</div><button>Save scaling</button></form>'
    )
