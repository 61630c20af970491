"""The console's frame: one stylesheet, the top bar, sign-in state and the state badge. Everything
is server-rendered; a small inline script (static.SCRIPT) adds live refresh, copy buttons and the
playground, and every page still reads fine without it."""

from __future__ import annotations

from html import escape

from fastapi import Request
from fastapi.responses import HTMLResponse

from podium.api.deps import Services
from podium.console.static import SCRIPT, STYLE
from podium.core.errors import PodiumError
from podium.services.tokens import Principal

COOKIE = "podium_token"

# The state badge carries a word and a symbol, never colour alone (colour-blind users, greyscale).
_SYMBOL = {"serving": "●", "ready": "●", "failed": "✕", "stopped": "■", "idle": "○"}
_SIGNED_IN_NAV = (
    ("/", "Endpoints"),
    ("/console/deploy", "Deploy"),
    ("/console/create", "New container"),
    ("/console/tokens", "Tokens"),
    ("/console/secrets", "Secrets"),
    ("/console/volumes", "Volumes"),
    ("/console/models", "Models"),
    ("/console/usage", "Usage"),
    ("/v0/docs", "API"),
)


def page(title: str, body: str, signed_in: bool = True, status_code: int = 200) -> HTMLResponse:
    """A whole page. Signed out, the top bar shows only the product name and the API reference
    (the signed-in links would only lead back to the sign-in form)."""
    links = _SIGNED_IN_NAV if signed_in else (("/v0/docs", "API"),)
    nav = "".join(f'<a href="{href}">{escape(text)}</a>' for href, text in links)
    if signed_in:
        nav += '<a href="/console/logout">Sign out</a>'
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} · Podium</title><style>{STYLE}</style></head><body>"
        '<a class="skip" href="#main">Skip to content</a>'
        f'<header><b class="brand">Podium</b><nav aria-label="Main">{nav}</nav></header>'
        f'<main id="main">{body}</main><script>{SCRIPT}</script></body></html>'
    )
    return HTMLResponse(html, status_code=status_code)


def state_badge(state: str) -> str:
    """The state as text plus a symbol; the colour only repeats what the words say."""
    symbol = _SYMBOL.get(state, "◐")
    return f'<span class="badge s-{escape(state)}" data-state="{escape(state)}">{symbol} {escape(state)}</span>'


async def principal_of(request: Request, svc: Services) -> Principal | None:
    """The signed-in token's principal (read scope at least), or None: signed out."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        principal = await svc.tokens.authenticate(token)
        principal.require("read")
        return principal
    except PodiumError:
        return None


def is_admin(principal: Principal | None) -> bool:
    return principal is not None and "admin" in principal.scopes


def login_page(error: str = "") -> HTMLResponse:
    msg = f'<p class="err" role="alert">{escape(error)}</p>' if error else ""
    return page(
        "Sign in",
        f"""<h1>Sign in</h1>{msg}<form method="post" action="/console/login" class="card narrow">
      <label for="token">Token (admin or read scope; <code>cat ~/.podium/admin_token</code>)</label>
      <input id="token" name="token" type="password" autocomplete="current-password" autofocus required>
      <button>Sign in</button></form>""",
        signed_in=False,
    )


def own_url(svc: Services) -> str:
    """This listener as the server itself reaches it (not `public_url`, which may be a proxy outside)."""
    s = svc.settings
    host = "127.0.0.1" if s.host in ("0.0.0.0", "::") else s.host
    return f"http://{host}:{s.port}"


def forbidden(why: str) -> HTMLResponse:
    """What a read-only (or signed-out) token gets when it tries to change something."""
    return page("Not allowed", f'<p class="err" role="alert">{escape(why)}</p><p><a href="/">back</a></p>', True, 403)
