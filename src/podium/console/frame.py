"""The frame around every endpoint tab: name, live state, actions (admins only) and the tab bar;
and the replicas table, which the live fragment refreshes."""

from __future__ import annotations

from html import escape
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from podium.api.deps import Services
from podium.console.layout import is_admin, login_page, page, principal_of, state_badge
from podium.core.errors import PodiumError
from podium.services.endpoints import EndpointRecord
from podium.services.tokens import Principal

TABS = (
    ("", "Overview"),
    ("/revisions", "Revisions"),
    ("/jobs", "Jobs"),
    ("/charts", "Charts"),
    ("/logs", "Logs"),
    ("/playground", "Playground"),
)


async def tab_context(
    endpoint_id: str, request: Request, svc: Services
) -> tuple[Principal, EndpointRecord] | HTMLResponse:
    """Who is signed in and the endpoint a tab shows, or the page to answer instead: the sign-in
    form when signed out, a 404 page naming the problem when the endpoint is unknown."""
    principal = await principal_of(request, svc)
    if principal is None:
        return login_page()
    try:
        return principal, await svc.endpoints.get(endpoint_id)
    except PodiumError as exc:
        return page("Not found", f"<p class=err>{escape(exc.message)}</p>", status_code=404)


def frame(rec: EndpointRecord, tab: str, inner: str, principal: Principal) -> HTMLResponse:
    """The endpoint's header (name, live state, actions) and tab bar around one tab's content."""
    r = rec.row
    eid = escape(r.id)
    tabs = list(TABS) + ([("/settings", "Scaling")] if is_admin(principal) else [])
    bar = "".join(
        f'<a href="/console/endpoints/{eid}{path}"{" aria-current=page" if path == tab else ""}>{name}</a>'
        for path, name in tabs
    )
    error = f'<p class="err" role="alert">{escape(rec.last_error)}</p>' if rec.last_error else ""
    head = (
        f'<h1>{escape(r.name)} <span id="ep-state" aria-live="polite">{state_badge(rec.state)}</span></h1>{error}'
        f"<p><code>{eid}</code> · model <code>{escape(r.routing_key)}</code> · app "
        f"<code>/e/{escape(r.app_name)}/</code></p>{actions(r.id, rec.spec.enabled) if is_admin(principal) else ''}"
        f'<nav class="tabs" aria-label="Endpoint">{bar}</nav>'
    )
    live = f'<div data-live="/console/live/endpoints/{eid}{"?charts=1" if tab == "/charts" else ""}"></div>'
    return page(r.name, head + inner + live)


def actions(endpoint_id: str, enabled: bool) -> str:
    """Start / stop / delete: start posts at once; stop and delete lead to a confirmation page."""
    eid = escape(endpoint_id)
    start = (
        ""
        if enabled
        else f'<form class="inline" method="post" action="/console/endpoints/{eid}/start"><button>Start</button></form>'
    )
    stop = f'<a class="button secondary" href="/console/endpoints/{eid}/confirm/stop">Stop…</a>' if enabled else ""
    return f'<p>{start}{stop}<a class="button secondary" href="/console/endpoints/{eid}/confirm/delete">Delete…</a></p>'


def replicas_table(rec: EndpointRecord, decisions: Any = None) -> str:
    """`decisions`: the autoscaler in this process (`Services.decisions`), whose engine scrapes give
    each replica's waiting / running / KV cache; None (split roles, tests) shows a dash."""
    rows = "".join(
        f"<tr><td><code>{escape(x.id)}</code></td><td>{state_badge(x.state)}</td><td>{x.generation}</td>"
        f"<td>{escape(x.address or '')}</td><td>{escape(x.gpus or '-')}</td>"
        f"<td>{engine_cell(decisions.replica_engine(x.id) if decisions is not None else None)}</td>"
        f"<td>{escape(x.detail or '')[:200]}</td></tr>"
        for x in rec.replicas
    )
    if not rows:
        return "<p class='muted'>No replicas running.</p>"
    return (
        "<div class='table-wrap'><table><tr><th scope=col>Id</th><th scope=col>State</th><th scope=col>Revision</th>"
        "<th scope=col>Address</th><th scope=col>GPUs</th><th scope=col>Engine</th><th scope=col>Detail</th></tr>"
        f"{rows}</table></div>"
    )


def engine_cell(engine: dict[str, Any] | None) -> str:
    """One replica's engine as its /metrics said: requests waiting and running, KV cache in use."""
    if not engine:
        return "-"
    kv = engine.get("kv_cache_usage")
    kv_text = f", KV cache {float(kv) * 100:.0f}%" if kv is not None else ""
    return (
        f"{escape(str(engine.get('engine', '')))}: {float(engine.get('waiting', 0)):g} waiting, "
        f"{float(engine.get('running', 0)):g} running{kv_text}"
    )
