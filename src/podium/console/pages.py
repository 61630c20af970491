"""Console pages at `/`. Sign-in takes a Podium token (read scope is enough) and keeps it in an
HttpOnly cookie; every page is rendered on the server from the services, no JavaScript needed."""

from __future__ import annotations

import time
from html import escape

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from podium.api.deps import Services, services
from podium.api.schemas import masked
from podium.core.errors import PodiumError
from podium.services.tokens import Principal

router = APIRouter(include_in_schema=False)
COOKIE = "podium_token"

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:10px 24px;display:flex;gap:24px;align-items:center}
header a{color:#cfd6e4;text-decoration:none} main{padding:20px 24px;max-width:1200px}
table{border-collapse:collapse;width:100%;background:#fff;margin:8px 0 24px}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid #e3e6eb;vertical-align:top}
th{font-weight:600;background:#eef0f4} code{font-size:12px}
.s-serving,.s-ready{color:#137333}.s-failed{color:#b3261e}.s-stopped,.s-idle{color:#666}
.s-provisioning,.s-scaling,.s-starting,.s-draining{color:#8a5a00}
form.inline{display:inline} .err{color:#b3261e}
"""


def page(title: str, body: str) -> HTMLResponse:
    nav = (
        '<a href="/">Endpoints</a><a href="/console/deploy">Deploy</a><a href="/console/usage">Usage</a>'
        '<a href="/v0/docs">API</a>'
        '<a href="/console/logout">Sign out</a>'
    )
    html = (
        f"<!doctype html><html><head><meta charset=utf-8><title>{escape(title)} · Podium</title>"
        f"<style>{_STYLE}</style></head><body><header><b>Podium</b>{nav}</header><main>{body}</main></body></html>"
    )
    return HTMLResponse(html)


def _state(s: str) -> str:
    return f'<span class="s-{escape(s)}">{escape(s)}</span>'


async def principal_of(request: Request, svc: Services) -> Principal | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        principal = await svc.tokens.authenticate(token)
        principal.require("read")
        return principal
    except PodiumError:
        return None


def login_page(error: str = "") -> HTMLResponse:
    msg = f'<p class="err">{escape(error)}</p>' if error else ""
    return page(
        "Sign in",
        f"""<h2>Sign in</h2>{msg}<form method="post" action="/console/login">
      <p>Token (admin or read scope; <code>cat ~/.podium/admin_token</code>)</p>
      <input name="token" type="password" size="60" autofocus> <button>Sign in</button></form>""",
    )


@router.get("/", response_class=HTMLResponse)
async def index(request: Request, svc: Services = Depends(services)) -> Response:
    if await principal_of(request, svc) is None:
        return login_page()
    rows = []
    for rec in await svc.endpoints.list_all():
        r, spec = rec.row, rec.spec
        ready = sum(1 for x in rec.replicas if x.state == "ready")
        source = (
            spec.template.model_name
            if spec.template
            else (spec.container.image or spec.container.command if spec.container else "")
        )
        rows.append(
            f"<tr><td><a href='/console/endpoints/{escape(r.id)}'>{escape(r.name)}</a><br>"
            f"<code>{escape(r.id)}</code></td><td>{_state(rec.state)}</td><td><code>{escape(r.routing_key)}"
            f"</code></td><td>{ready} / {len(rec.replicas)} (min {spec.scaling.min_replicas}, max "
            f"{spec.scaling.max_replicas})</td><td>{escape(str(source or ''))[:80]}</td>"
            f"<td>{escape(rec.last_error or '')[:120]}</td></tr>"
        )
    table = (
        (
            "<table><tr><th>Endpoint</th><th>State</th><th>Routing key (model)</th><th>Replicas ready / live"
            "</th><th>Source</th><th>Last error</th></tr>" + "".join(rows) + "</table>"
        )
        if rows
        else "<p>No endpoints yet. Create one with <code>podium endpoint create</code>.</p>"
    )
    base = escape(svc.settings.base_url)
    return page("Endpoints", f"<h2>Endpoints</h2>{table}<p>OpenAI base URL: <code>{base}/v1</code></p>")


@router.get("/console/endpoints/{endpoint_id}", response_class=HTMLResponse)
async def endpointpage(endpoint_id: str, request: Request, svc: Services = Depends(services)) -> Response:
    principal = await principal_of(request, svc)
    if principal is None:
        return login_page()
    try:
        rec = await svc.endpoints.get(endpoint_id)
        events = await svc.endpoints.events(endpoint_id, 50)
    except PodiumError as exc:
        return page("Not found", f"<p class=err>{escape(exc.message)}</p>")
    r = rec.row
    reps = "".join(
        f"<tr><td><code>{escape(x.id)}</code></td><td>{_state(x.state)}</td><td>{escape(x.address or '')}"
        f"</td><td>{escape(x.gpus or '-')}</td><td>{escape(x.detail or '')[:200]}</td></tr>"
        for x in rec.replicas
    )
    evs = "".join(
        f"<tr><td>{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(e.at))}</td><td>{escape(e.kind)}</td>"
        f"<td>{escape(e.message)[:300]}</td></tr>"
        for e in events
    )
    # the same masking as the API: no registry password ever, env values for admins only
    spec_json = escape(masked(rec.spec, reveal_env="admin" in principal.scopes).model_dump_json(indent=2))
    error = f'<p class="err">{escape(rec.last_error)}</p>' if rec.last_error else ""
    body = (
        f"<h2>{escape(r.name)} {_state(rec.state)}</h2>{error}<p><code>{escape(r.id)}</code> · model "
        f"<code>{escape(r.routing_key)}</code> · app <code>/e/{escape(r.app_name)}/</code> · desired "
        f"{escape(str(r.desired_replicas))} {escape(r.desired_reason or '')}</p>{_actions(r.id)}"
        f"<h3>Replicas</h3><table><tr><th>Id</th><th>State</th><th>Address</th><th>GPUs</th><th>Detail</th></tr>"
        f"{reps}</table><h3>Events</h3><table><tr><th>Time</th><th>Kind</th><th>Message</th></tr>{evs}</table>"
        f"<h3>Spec</h3><pre>{spec_json}</pre>"
    )
    return page(r.name, body)


def _actions(endpoint_id: str) -> str:
    """Start / stop / delete buttons (POST forms; the session cookie is SameSite=strict)."""
    eid = escape(endpoint_id)
    return "".join(
        f'<form class="inline" method="post" action="/console/endpoints/{eid}/{a}"><button>{a}</button></form> '
        for a in ("start", "stop", "delete")
    )


@router.get("/console/usage", response_class=HTMLResponse)
async def usagepage(request: Request, svc: Services = Depends(services)) -> Response:
    if await principal_of(request, svc) is None:
        return login_page()
    from podium.services.usage import UsageService

    rep = await UsageService(svc.endpoints.store).report(since=time.time() - 86400)
    rows = "".join(
        f"<tr><td>{escape(e.name)} <code>{escape(e.endpoint_id)}</code></td><td>{e.running_replicas}</td>"
        f"<td>{e.replica_seconds / 3600:.3f}</td><td>{e.gpu_seconds / 3600:.3f}</td></tr>"
        for e in rep.endpoints
    )
    return page(
        "Usage",
        "<h2>Usage, last 24 h</h2><table><tr><th>Endpoint</th><th>Running</th>"
        f"<th>Replica-hours</th><th>GPU-hours</th></tr>{rows}</table>",
    )


@router.post("/console/login")
async def login(token: str = Form(""), svc: Services = Depends(services)) -> Response:
    try:
        principal = await svc.tokens.authenticate(token.strip())
        principal.require("read")
    except PodiumError as exc:
        return login_page(exc.message)
    resp = RedirectResponse("/", status_code=303)
    resp.set_cookie(COOKIE, token.strip(), httponly=True, samesite="strict", max_age=7 * 86400)
    return resp


@router.get("/console/logout")
async def logout() -> Response:
    resp = RedirectResponse("/", status_code=303)
    resp.delete_cookie(COOKIE)
    return resp
