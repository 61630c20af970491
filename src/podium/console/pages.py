"""Console pages at `/`. Sign-in takes a Podium token (read scope is enough) and keeps it in an
HttpOnly, SameSite=strict cookie; pages are rendered on the server from the services. The other
console modules' routers hang off this one, so `podium up` includes a single router (plus actions)."""

from __future__ import annotations

import time
from html import escape

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from podium.api.deps import Services, services
from podium.console import charts, endpoint, jobs, models, playground, resources, revisions
from podium.console.layout import COOKIE, is_admin, login_page, page, principal_of, state_badge
from podium.core.errors import PodiumError
from podium.services.endpoints import EndpointRecord

__all__ = ["COOKIE", "login_page", "page", "principal_of", "router"]

router = APIRouter(include_in_schema=False)
for _sub in (
    endpoint.router,
    revisions.router,
    jobs.router,
    models.router,
    charts.router,
    playground.router,
    resources.router,
):
    router.include_router(_sub)


def _source(rec: EndpointRecord) -> str:
    spec = rec.spec
    if spec.template:
        return spec.template.model_name
    if spec.container:
        return spec.container.image or spec.container.command or ""
    return ""


def endpoint_table(records: list[EndpointRecord]) -> str:
    """The endpoint list; also the live fragment the index page polls."""
    if not records:
        return (
            "<p>No endpoints yet. <a href='/console/deploy'>Deploy a model</a> or "
            "<a href='/console/create'>run a container</a>.</p>"
        )
    rows = []
    for rec in records:
        r, spec = rec.row, rec.spec
        ready = sum(1 for x in rec.replicas if x.state == "ready")
        rows.append(
            f"<tr><td><a href='/console/endpoints/{escape(r.id)}'>{escape(r.name)}</a><br>"
            f"<code class='muted'>{escape(r.id)}</code></td><td>{state_badge(rec.state)}</td>"
            f"<td><code>{escape(r.routing_key)}</code></td><td>{ready} / {len(rec.replicas)} (min "
            f"{spec.scaling.min_replicas}, max {spec.scaling.max_replicas})</td>"
            f"<td class='hide-narrow'>{escape(_source(rec))[:80]}</td>"
            f"<td class='hide-narrow'>{escape(rec.last_error or '')[:120]}</td></tr>"
        )
    return (
        "<div class='table-wrap'><table><caption class='skip'>Endpoints</caption><tr><th scope=col>Endpoint</th>"
        "<th scope=col>State</th><th scope=col>Routing key (model)</th><th scope=col>Replicas ready / live</th>"
        "<th scope=col class='hide-narrow'>Source</th><th scope=col class='hide-narrow'>Last error</th></tr>"
        + "".join(rows)
        + "</table></div>"
    )


@router.get("/", response_class=HTMLResponse)
async def index(request: Request, svc: Services = Depends(services)) -> Response:
    principal = await principal_of(request, svc)
    if principal is None:
        return login_page()
    table = endpoint_table(await svc.endpoints.list_all())
    base = escape(svc.settings.base_url)
    buttons = (
        "<p><a class='button' href='/console/deploy'>Deploy a model</a>"
        "<a class='button secondary' href='/console/create'>New container endpoint</a></p>"
        if is_admin(principal)
        else "<p class='muted'>Signed in with a read-only token: you can look at everything, change nothing.</p>"
    )
    return page(
        "Endpoints",
        f"<h1>Endpoints</h1>{buttons}<div id='ep-table' data-live='/console/live/endpoints' aria-live='polite'>"
        f"{table}</div><p>OpenAI base URL: <code>{base}/v1</code></p>",
    )


@router.get("/console/live/endpoints")
async def index_live(request: Request, svc: Services = Depends(services)) -> Response:
    """The endpoint table as a fragment: the index page swaps it in every 2 s (live states)."""
    if await principal_of(request, svc) is None:
        return JSONResponse({"error": "sign in first"}, status_code=401)
    return JSONResponse({"ep-table": endpoint_table(await svc.endpoints.list_all())})


@router.get("/console/usage", response_class=HTMLResponse)
async def usagepage(request: Request, svc: Services = Depends(services)) -> Response:
    if await principal_of(request, svc) is None:
        return login_page()
    from podium.services.usage import UsageService

    rep = await UsageService(svc.endpoints.store).report(since=time.time() - 86400)
    rows = "".join(
        f"<tr><td>{escape(e.name)} <code>{escape(e.endpoint_id)}</code></td><td>{e.running_replicas}</td>"
        f"<td>{e.replica_seconds / 3600:.3f}</td><td>{e.gpu_seconds / 3600:.3f}</td>"
        f"<td>{e.prompt_tokens}</td><td>{e.completion_tokens}</td></tr>"
        for e in rep.endpoints
    )
    names = {e.endpoint_id: e.name for e in rep.endpoints}
    callers = "".join(
        f"<tr><td>{escape(t.token_name)}</td><td>{escape(names.get(t.endpoint_id, t.endpoint_id))}</td>"
        f"<td>{t.prompt_tokens}</td><td>{t.completion_tokens}</td></tr>"
        for t in rep.tokens
    )
    per_token = (
        "<h2>Tokens per API token</h2><div class='table-wrap'><table><tr><th scope=col>API token</th>"
        "<th scope=col>Endpoint</th><th scope=col>Prompt tokens</th><th scope=col>Completion tokens</th></tr>"
        f"{callers}</table></div>"
        if callers
        else ""
    )
    return page(
        "Usage",
        "<h1>Usage, last 24 h</h1><div class='table-wrap'><table><tr><th scope=col>Endpoint</th>"
        "<th scope=col>Running</th><th scope=col>Replica-hours</th><th scope=col>GPU-hours</th>"
        "<th scope=col>Prompt tokens</th><th scope=col>Completion tokens</th></tr>"
        f"{rows}</table></div><p>Tokens: {rep.prompt_tokens} prompt, {rep.completion_tokens} completion.</p>"
        f"{per_token}",
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
