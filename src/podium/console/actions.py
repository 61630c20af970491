"""Console actions: deploy a template, start/stop/delete an endpoint. They call the same services as
the REST API (same validation, capacity reservation, controller hint) and need an admin token."""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from podium.api.deps import Services, services
from podium.console.pages import login_page, page, principal_of
from podium.core.errors import PodiumError, plain
from podium.core.specs import Compute, EndpointSpec, Scaling, TemplateSource

router = APIRouter(include_in_schema=False)


async def _admin(request: Request, svc: Services) -> str | None:
    """None when the signed-in token may write; else why not."""
    principal = await principal_of(request, svc)
    if principal is None:
        return "sign in first"
    try:
        principal.require("admin")
    except PodiumError as exc:
        return exc.message
    return None


def _form(svc: Services, error: str = "") -> Response:
    catalog = svc.catalog
    items = catalog.templates() if catalog is not None else []
    items.sort(key=lambda t: t.gpu_type != "cpu")  # what runs anywhere first; stable otherwise
    options = "".join(
        f'<option value="{escape(t.model_name)}|{escape(t.flavor_name)}|{escape(t.gpu_type)}|{min(t.gpu_counts)}">'
        f"{escape(t.model_name)} · {escape(t.flavor_name)} · {escape(t.gpu_type)}</option>"
        for t in items
    )
    msg = f'<p class="err">{escape(error)}</p>' if error else ""
    return page(
        "Deploy",
        f"""<h2>Deploy a model</h2>{msg}<form method="post" action="/console/deploy">
      <p>Template <select name="choice">{options}</select></p>
      <p>Name <input name="name" value="my-model" required></p>
      <p>Replicas min <input name="min_replicas" type="number" value="1" min="0" style="width:4em">
         max <input name="max_replicas" type="number" value="1" min="0" style="width:4em"></p>
      <button>Deploy</button></form>""",
    )


@router.get("/console/deploy")
async def deploy_form(request: Request, svc: Services = Depends(services)) -> Response:
    if await principal_of(request, svc) is None:
        return login_page()
    return _form(svc)


@router.post("/console/deploy")
async def deploy(
    request: Request,
    choice: str = Form(""),
    name: str = Form(""),
    min_replicas: int = Form(1),
    max_replicas: int = Form(1),
    svc: Services = Depends(services),
) -> Response:
    denied = await _admin(request, svc)
    if denied:
        return _form(svc, denied)
    try:
        model, flavor, gpu_type, gpu_count = choice.split("|")
        spec = EndpointSpec(
            name=name,
            template=TemplateSource(model_name=model, flavor_name=flavor),
            compute=Compute(gpu_type=gpu_type, gpu_count=int(gpu_count)),
            scaling=Scaling(min_replicas=min_replicas, max_replicas=max(max_replicas, min_replicas)),
        )
        created = await svc.endpoints.create(spec, "template")
    except ValueError as exc:  # a malformed choice or a spec the model refuses
        detail = plain(exc.errors()[0]["msg"]) if isinstance(exc, ValidationError) else str(exc)
        return _form(svc, f"invalid: {detail}")
    except PodiumError as exc:
        return _form(svc, exc.message)
    return RedirectResponse(f"/console/endpoints/{created.record.row.id}", status_code=303)


@router.post("/console/endpoints/{endpoint_id}/{action}")
async def endpoint_action(
    endpoint_id: str, action: str, request: Request, svc: Services = Depends(services)
) -> Response:
    denied = await _admin(request, svc)
    try:
        if denied:
            raise PodiumError(denied)
        if action == "start":
            await svc.endpoints.set_enabled(endpoint_id, True)
        elif action == "stop":
            await svc.endpoints.set_enabled(endpoint_id, False)
        elif action == "delete":
            await svc.endpoints.delete(endpoint_id)
            return RedirectResponse("/", status_code=303)
        else:
            raise PodiumError(f"unknown action {action!r}")
    except PodiumError as exc:
        return page("Not done", f'<p class="err">{escape(exc.message)}</p><p><a href="/">back</a></p>')
    return RedirectResponse(f"/console/endpoints/{endpoint_id}", status_code=303)
