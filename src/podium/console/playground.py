"""The playground tab: a chat box against the endpoint, and copyable curl / Python OpenAI / `podium`
snippets filled with the real base URL and routing key. The chat goes through a console endpoint
that calls the data plane (`/v1/chat/completions`) over HTTP with the signed-in token: the session
cookie is HttpOnly, so the page's script never holds the token, and the gateway applies the same
auth, routing and limits as for any client."""

from __future__ import annotations

from html import escape
from typing import Any

import httpx
from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from podium.api.deps import Services, data_plane_urls, services
from podium.console.frame import frame, tab_context
from podium.console.layout import COOKIE, own_url, principal_of
from podium.core.errors import PodiumError
from podium.services.endpoints import EndpointRecord

router = APIRouter(include_in_schema=False)
CHAT_TIMEOUT_S = 120.0  # a cold start can take this long; the page shows "…" meanwhile


def snippets(base: str, rec: EndpointRecord) -> list[tuple[str, str]]:
    key = rec.row.routing_key
    curl = (
        f'curl {base}/v1/chat/completions \\\n  -H "Authorization: Bearer $PODIUM_API_TOKEN" \\\n'
        f"  -H 'Content-Type: application/json' \\\n"
        f'  -d \'{{"model": "{key}", "messages": [{{"role": "user", "content": "Hello"}}]}}\''
    )
    python = (
        "import os\nfrom openai import OpenAI\n\n"
        f'client = OpenAI(base_url="{base}/v1", api_key=os.environ["PODIUM_API_TOKEN"])\n'
        "reply = client.chat.completions.create(\n"
        f'    model="{key}", messages=[{{"role": "user", "content": "Hello"}}]\n)\n'
        "print(reply.choices[0].message.content)"
    )
    cli = f"export PODIUM_URL={base}\npodium endpoint get {rec.row.name}\npodium endpoint logs {rec.row.name} --follow"
    return [("curl", curl), ("Python (OpenAI)", python), ("podium CLI", cli)]


@router.get("/console/endpoints/{endpoint_id}/playground", response_class=HTMLResponse)
async def playground_tab(endpoint_id: str, request: Request, svc: Services = Depends(services)) -> Response:
    ctx = await tab_context(endpoint_id, request, svc)
    if isinstance(ctx, HTMLResponse):
        return ctx
    principal, rec = ctx
    eid = escape(rec.row.id)
    base = data_plane_urls(svc)(rec.spec.compute.region)
    blocks = "".join(
        f'<h3>{escape(name)}</h3><pre id="snippet-{i}">{escape(code)}</pre>'
        f'<button type="button" class="secondary" data-copy="snippet-{i}">Copy {escape(name)}</button>'
        for i, (name, code) in enumerate(snippets(base, rec))
    )
    inner = (
        '<h2>Chat</h2><div id="chat-log" class="chat" role="log" aria-live="polite" aria-label="Conversation">'
        "</div>"
        f'<form id="chat-form" method="post" action="/console/endpoints/{eid}/chat">'
        '<label for="chat-input">Message</label><textarea id="chat-input" name="message" rows="2" required>'
        "</textarea><button>Send</button></form>"
        f"<h2>Call it from code</h2><p class='muted'>Model (routing key): <code>{escape(rec.row.routing_key)}"
        f"</code> · base URL <code>{escape(base)}/v1</code></p>{blocks}"
    )
    return frame(rec, "/playground", inner, principal)


@router.post("/console/endpoints/{endpoint_id}/chat")
async def chat(
    endpoint_id: str, request: Request, body: dict[str, Any] = Body(...), svc: Services = Depends(services)
) -> Response:
    """{"messages": [...]} -> {"reply": text} or {"error": why}, via the data plane with the session token."""
    if await principal_of(request, svc) is None:
        return JSONResponse({"error": "sign in first"}, status_code=401)
    try:
        rec = await svc.endpoints.get(endpoint_id)
    except PodiumError as exc:
        return JSONResponse({"error": exc.message}, status_code=404)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return JSONResponse({"error": "messages: a non-empty list"}, status_code=422)
    base = data_plane_urls(svc)(rec.spec.compute.region)
    if base == svc.settings.base_url:
        base = own_url(svc)  # this listener: call it directly, not through a public proxy address
    token = request.cookies.get(COOKIE, "")
    payload = {"model": rec.row.routing_key, "messages": messages[-40:], "max_tokens": 128}
    try:
        async with httpx.AsyncClient(timeout=CHAT_TIMEOUT_S) as client:
            resp = await client.post(
                f"{base}/v1/chat/completions", json=payload, headers={"Authorization": f"Bearer {token}"}
            )
        data = resp.json()
    except (httpx.HTTPError, ValueError) as exc:
        return JSONResponse({"error": f"the data plane did not answer: {exc}"}, status_code=502)
    if resp.status_code != 200:
        message = data.get("error", {}).get("message") if isinstance(data.get("error"), dict) else None
        return JSONResponse({"error": f"{resp.status_code}: {message or resp.text[:300]}"}, status_code=200)
    try:
        reply = data["choices"][0]["message"]["content"] or ""
    except (KeyError, IndexError, TypeError):
        return JSONResponse({"error": f"unexpected answer: {resp.text[:300]}"})
    return JSONResponse({"reply": reply})
