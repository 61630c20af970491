"""Tokens, secrets and volumes pages. Everyone signed in sees the lists (names, scopes, key names,
who uses what); only an admin token gets the forms, and a write from any other token is a 403. A
token's value is shown once, on the page that answers its creation; a secret's values never."""

from __future__ import annotations

import time
from html import escape
from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from podium.api.deps import Services, services
from podium.console.layout import forbidden, is_admin, login_page, page, principal_of
from podium.core.errors import PodiumError
from podium.services.control_plane import ControlPlane
from podium.services.endpoints import readable

router = APIRouter(include_in_schema=False)
SCOPES = ("admin", "read", "inference")


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(at))


def _table(headers: tuple[str, ...], rows: list[str], empty: str) -> str:
    if not rows:
        return f"<p class='muted'>{escape(empty)}</p>"
    head = "".join(f"<th scope=col>{escape(h)}</th>" for h in headers)
    return f"<div class='table-wrap'><table><tr>{head}</tr>{''.join(rows)}</table></div>"


async def _tokens_page(svc: Services, admin: bool, shown: str = "", error: str = "") -> HTMLResponse:
    rows = []
    for t in await svc.tokens.list_all():
        revoke = (
            f"<details><summary>Revoke…</summary><form method='post' action='/console/tokens/{escape(t.id)}/revoke'>"
            f"<button class='danger'>Yes, revoke {escape(t.name)}</button></form></details>"
            if admin
            else ""
        )
        rows.append(
            f"<tr><td>{escape(t.name)}<br><code class='muted'>{escape(t.id)}</code></td>"
            f"<td>{escape(t.scopes.replace(',', ', '))}</td><td>{escape(str(t.rate_limit_rpm or '-'))}</td>"
            f"<td>{_when(t.created_at)}</td><td>{revoke}</td></tr>"
        )
    created = (
        "<div class='card' role='status'><p class='ok'>Token created. Copy it now: it is not shown again.</p>"
        f"<pre id='new-token' class='secret-shown'>{escape(shown)}</pre>"
        "<button type='button' class='secondary' data-copy='new-token'>Copy token</button></div>"
        if shown
        else ""
    )
    msg = f'<p class="err" role="alert">{escape(error)}</p>' if error else ""
    checks = "".join(
        f"<span class='check'><input type='checkbox' id='scope-{s}' name='scopes' value='{s}'"
        f"{' checked' if s == 'inference' else ''}> <label for='scope-{s}'>{s}</label></span> "
        for s in SCOPES
    )
    form = (
        "<h2>New token</h2><form method='post' action='/console/tokens' class='card narrow'>"
        "<label for='token-name'>Name</label><input id='token-name' name='name' required maxlength='128'>"
        f"<fieldset><legend>Scopes</legend>{checks}</fieldset>"
        "<label for='token-rpm'>Rate limit (requests per minute, optional)</label>"
        "<input id='token-rpm' name='rate_limit_rpm' type='number' min='1'><button>Create token</button></form>"
        if admin
        else ""
    )
    table = _table(("Name", "Scopes", "Rate limit / min", "Created", ""), rows, "No tokens.")
    return page("Tokens", f"<h1>Tokens</h1>{msg}{created}{table}{form}")


@router.get("/console/tokens", response_class=HTMLResponse)
async def tokens_page(request: Request, svc: Services = Depends(services)) -> Response:
    principal = await principal_of(request, svc)
    if principal is None:
        return login_page()
    return await _tokens_page(svc, is_admin(principal))


@router.post("/console/tokens", response_class=HTMLResponse)
async def create_token(
    request: Request,
    name: str = Form(""),
    scopes: list[str] = Form([]),
    rate_limit_rpm: str = Form(""),
    svc: Services = Depends(services),
) -> Response:
    if not is_admin(await principal_of(request, svc)):
        return forbidden("creating tokens needs an admin token")
    try:
        if not name.strip() or not scopes or any(s not in SCOPES for s in scopes):
            raise PodiumError("a token needs a name and at least one of: admin, read, inference")
        rpm = int(rate_limit_rpm) if rate_limit_rpm.strip() else None
        _, value = await svc.tokens.create(name.strip()[:128], scopes, rpm)
    except ValueError:
        return await _tokens_page(svc, True, error="rate limit: a whole number")
    except PodiumError as exc:
        return await _tokens_page(svc, True, error=exc.message)
    return await _tokens_page(svc, True, shown=value)


@router.post("/console/tokens/{token_id}/revoke")
async def revoke_token(token_id: str, request: Request, svc: Services = Depends(services)) -> Response:
    if not is_admin(await principal_of(request, svc)):
        return forbidden("revoking tokens needs an admin token")
    try:
        await svc.tokens.revoke(token_id)
    except PodiumError as exc:
        return await _tokens_page(svc, True, error=exc.message)
    return RedirectResponse("/console/tokens", status_code=303)


def _users(users: Any, key: str, name: str, find: Any) -> str:
    return ", ".join(find(users, key, name)) or "-"


def _plane(svc: Services) -> ControlPlane:
    assert svc.control_plane is not None  # create_app attaches one
    return svc.control_plane


@router.get("/console/secrets", response_class=HTMLResponse)
async def secrets_page(request: Request, svc: Services = Depends(services)) -> Response:
    principal = await principal_of(request, svc)
    if principal is None:
        return login_page()
    return await _secrets_page(svc, is_admin(principal), request.query_params.get("error", ""))


async def _secrets_page(svc: Services, admin: bool, error: str = "") -> HTMLResponse:
    users = readable(await svc.endpoints.store.list_endpoints())
    rows = [
        f"<tr><td>{escape(s.name)}<br><code class='muted'>{escape(s.id)}</code></td><td>{s.latest_version}</td>"
        f"<td>{escape(', '.join(s.keys))}</td>"
        f"<td>{escape(_users(users, s.id, s.name, ControlPlane.users_of_secret))}</td>"
        f"<td>{_when(s.updated_at)}</td></tr>"
        for s in await _plane(svc).secrets.list_all()
    ]
    msg = f'<p class="err" role="alert">{escape(error)}</p>' if error else ""
    form = (
        "<h2>New secret</h2><form method='post' action='/console/secrets' class='card narrow'>"
        "<label for='secret-name'>Name</label><input id='secret-name' name='name' required>"
        "<label for='secret-payload'>Values, one <code>KEY=value</code> a line (stored encrypted, never shown "
        "again)</label><textarea id='secret-payload' name='payload' rows='3' required "
        "autocomplete='off' spellcheck='false'></textarea><button>Create secret</button></form>"
        if admin
        else ""
    )
    table = _table(("Name", "Version", "Keys", "Used by", "Updated"), rows, "No secrets.")
    return page("Secrets", f"<h1>Secrets</h1><p class='muted'>Values are never shown.</p>{msg}{table}{form}")


@router.post("/console/secrets")
async def create_secret(
    request: Request, name: str = Form(""), payload: str = Form(""), svc: Services = Depends(services)
) -> Response:
    if not is_admin(await principal_of(request, svc)):
        return forbidden("creating secrets needs an admin token")
    values = dict(line.split("=", 1) for line in payload.splitlines() if "=" in line)
    try:
        await _plane(svc).secrets.create(name.strip(), {k.strip(): v for k, v in values.items()})
    except PodiumError as exc:
        return await _secrets_page(svc, True, exc.message)  # the form is empty again: values are not echoed
    return RedirectResponse("/console/secrets", status_code=303)


@router.get("/console/volumes", response_class=HTMLResponse)
async def volumes_page(request: Request, svc: Services = Depends(services)) -> Response:
    principal = await principal_of(request, svc)
    if principal is None:
        return login_page()
    return await _volumes_page(svc, is_admin(principal))


async def _volumes_page(svc: Services, admin: bool, error: str = "") -> HTMLResponse:
    users = readable(await svc.endpoints.store.list_endpoints())
    rows = [
        f"<tr><td>{escape(v.name)}<br><code class='muted'>{escape(v.id)}</code></td><td>{escape(v.region)}</td>"
        f"<td>{escape(v.size or '-')}</td><td>{escape(_users(users, v.id, v.name, ControlPlane.users_of_volume))}"
        f"</td><td>{escape(v.description)}</td></tr>"
        for v in await _plane(svc).volumes.list_all()
    ]
    msg = f'<p class="err" role="alert">{escape(error)}</p>' if error else ""
    form = (
        "<h2>New volume</h2><form method='post' action='/console/volumes' class='card narrow'>"
        "<label for='volume-name'>Name</label><input id='volume-name' name='name' required "
        "pattern='[a-z0-9][a-z0-9-]*'><label for='volume-size'>Size (optional, e.g. 10Gi)</label>"
        "<input id='volume-size' name='size'><label for='volume-description'>Description</label>"
        "<input id='volume-description' name='description'><button>Create volume</button></form>"
        if admin
        else ""
    )
    table = _table(("Name", "Region", "Size", "Used by", "Description"), rows, "No volumes.")
    return page(
        "Volumes",
        f"<h1>Volumes</h1><p class='muted'>Mount one with <code>--volume NAME:/path</code>.</p>{msg}{table}{form}",
    )


@router.post("/console/volumes")
async def create_volume(
    request: Request,
    name: str = Form(""),
    size: str = Form(""),
    description: str = Form(""),
    svc: Services = Depends(services),
) -> Response:
    if not is_admin(await principal_of(request, svc)):
        return forbidden("creating volumes needs an admin token")
    try:
        await _plane(svc).volumes.create(name.strip(), description, size.strip() or None)
    except PodiumError as exc:
        return await _volumes_page(svc, True, exc.message)
    return RedirectResponse("/console/volumes", status_code=303)
