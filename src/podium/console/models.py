"""The Models page (docs/models.md): your own weights and adapters, with a Delete button for admins.
It calls the registry in this process (`ModelService`, built once per app by `model_service`), so a
delete follows the API's rules: a model an endpoint deploys is refused (409), and the page says which
endpoints use it. Uploads go through the CLI (chunked and resumable); the page shows the command."""

from __future__ import annotations

import time
from html import escape
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from podium.api.deps import Services, services
from podium.console.layout import forbidden, is_admin, login_page, page, principal_of
from podium.core.errors import Conflict, PodiumError
from podium.gateway.routes import adapter_routing_key
from podium.models.table import READY, ModelRow
from podium.models.wiring import model_service
from podium.services.endpoints import readable

router = APIRouter(include_in_schema=False)

UPLOAD_SNIPPET = (
    "podium model upload ./my-model.gguf --name my-model\n"
    "podium model upload ./my-lora.gguf --name my-lora --base my-model   # an adapter\n"
    "podium model list\n"
    "podium endpoint create --name mine --template my-model --gpu-type cpu"
)


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def _row(m: ModelRow, deployed: dict[str, list[tuple[str, str]]], admin: bool) -> str:
    on_base = deployed.get(m.base or m.name, []) if m.status == READY else []
    users = ", ".join(eid for eid, _ in on_base)
    keys = ", ".join(adapter_routing_key(key, m.name) for _, key in on_base) if m.base else ""
    state = m.status if m.status != "uploading" else f"uploading ({_size(m.received_bytes)} of {_size(m.size_bytes)})"
    delete = (
        f"<details><summary>Delete…</summary><form method='post' action='/console/models/{escape(m.id)}/delete'>"
        f"<button class='danger'>Yes, delete {escape(m.name)}</button></form></details>"
        if admin
        else ""
    )
    return (
        f"<tr><td>{escape(m.name)}<br><code class='muted'>{escape(m.id)}</code></td><td>{escape(m.kind)}</td>"
        f"<td>{escape(m.format or '-')}</td><td>{_size(m.size_bytes)}</td><td>{escape(m.architecture or '-')}</td>"
        f"<td>{escape(m.engines.replace(',', ', ') or '-')}</td><td>{escape(m.base or '-')}</td>"
        f"<td>{escape(state)}</td><td>{escape(keys or '-')}</td><td>{escape(users or '-')}</td>"
        f"<td>{time.strftime('%Y-%m-%d %H:%M', time.localtime(m.created_at))}</td><td>{delete}</td></tr>"
    )


async def _deployed(request: Request) -> dict[str, list[tuple[str, str]]]:
    """model name -> (endpoint id, routing key) of the endpoints deploying it, read once per page
    (`ModelService.users` and `adapter_keys` read every endpoint per model: 100 ms for 20 models)."""
    out: dict[str, list[tuple[str, str]]] = {}
    for row, spec in readable(await services(request).endpoints.store.list_endpoints()):
        if spec.template is not None:  # as the registry counts users (models/wiring.py)
            out.setdefault(spec.template.model_name, []).append((row.id, row.routing_key))
    return out


async def _models_page(request: Request, admin: bool, message: str = "", status_code: int = 200) -> HTMLResponse:
    svc = await model_service(request)
    deployed = await _deployed(request)
    rows = [_row(m, deployed, admin) for m in await svc.list()]
    heads = (
        "Name", "Kind", "Format", "Size", "Architecture", "Engines", "Base", "State", "Routing keys", "Used by",
        "Created", "",
    )  # fmt: skip
    table = (
        "<div class='table-wrap'><table><caption class='skip'>Models</caption><tr>"
        + "".join(f"<th scope=col>{h}</th>" for h in heads)
        + f"</tr>{''.join(rows)}</table></div>"
        if rows
        else "<p class='muted'>No models yet.</p>"
    )
    snippet = (
        "<h2>Upload with the CLI</h2><p>Uploads are chunked and resume after a cut; a ready model deploys "
        "by its name like any template.</p>"
        f"<pre id='upload-snippet'>{escape(UPLOAD_SNIPPET)}</pre>"
        "<button type='button' class='secondary' data-copy='upload-snippet'>Copy</button>"
    )
    body = f"<h1>Models</h1>{message}{table}{snippet}"
    return page("Models", body, status_code=status_code)


@router.get("/console/models", response_class=HTMLResponse)
async def models_page(request: Request, svc: Services = Depends(services)) -> Response:
    principal = await principal_of(request, svc)
    if principal is None:
        return login_page()
    deleted = request.query_params.get("deleted", "")
    msg = f'<p class="ok" role="status">✓ Model {escape(deleted)} deleted.</p>' if deleted else ""
    return await _models_page(request, is_admin(principal), msg)


@router.post("/console/models/{model_id}/delete")
async def delete_model(model_id: str, request: Request, svc: Services = Depends(services)) -> Response:
    if not is_admin(await principal_of(request, svc)):
        return forbidden("deleting models needs an admin token; this one may only read")
    try:
        row = await (await model_service(request)).delete(model_id)
    except Conflict as exc:  # in use: say so on the page, with the endpoints that deploy it
        why = f"Not deleted: {exc.message}. Delete or change those endpoints first."
        return await _models_page(request, True, f'<p class="err" role="alert">{escape(why)}</p>', 409)
    except PodiumError as exc:
        return await _models_page(request, True, f'<p class="err" role="alert">{escape(exc.message)}</p>', 404)
    return RedirectResponse(f"/console/models?deleted={quote(row.name)}", status_code=303)
