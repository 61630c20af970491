"""Console writes: deploy a template, create a container endpoint, edit scaling, start/stop/delete.
They call the same services as the REST API (same validation, capacity reservation, controller
hint) and need an admin token: any other token gets a 403 page. A form that fails comes back with
the user's choices still in it and the reason at the top."""

from __future__ import annotations

from html import escape
from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from podium.api.deps import Services, services
from podium.console.forms import container_form, container_spec, template_form
from podium.console.layout import forbidden, is_admin, login_page, page, principal_of
from podium.core.errors import PodiumError, plain
from podium.core.specs import Compute, EndpointSpec, Scaling, TemplateSource

router = APIRouter(include_in_schema=False)


def _why(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err.get("loc", ()))
        return f"invalid {where}: {plain(err['msg'])}" if where else f"invalid: {plain(err['msg'])}"
    return exc.message if isinstance(exc, PodiumError) else f"invalid: {exc}"


@router.get("/console/deploy")
async def deploy_form(request: Request, svc: Services = Depends(services)) -> Response:
    principal = await principal_of(request, svc)
    if principal is None:
        return login_page()
    return template_form(svc, {}, "", is_admin(principal))


@router.post("/console/deploy")
async def deploy(
    request: Request,
    choice: str = Form(""),
    name: str = Form(""),
    min_replicas: int = Form(1),
    max_replicas: int = Form(1),
    svc: Services = Depends(services),
) -> Response:
    if not is_admin(await principal_of(request, svc)):
        return forbidden("deploying needs an admin token; this one may only read")
    values = {"choice": choice, "name": name, "min_replicas": min_replicas, "max_replicas": max_replicas}
    try:
        model, flavor, gpu_type, gpu_count = choice.split("|")
        spec = EndpointSpec(
            name=name,
            template=TemplateSource(model_name=model, flavor_name=flavor),
            compute=Compute(gpu_type=gpu_type, gpu_count=int(gpu_count)),
            scaling=Scaling(min_replicas=min_replicas, max_replicas=max(max_replicas, min_replicas)),
        )
        created = await svc.endpoints.create(spec, "template")
    except (ValueError, PodiumError) as exc:  # a malformed choice, a spec the model refuses, capacity
        return template_form(svc, values, _why(exc), True)
    return RedirectResponse(f"/console/endpoints/{created.record.row.id}", status_code=303)


@router.get("/console/create")
async def create_form(request: Request, svc: Services = Depends(services)) -> Response:
    principal = await principal_of(request, svc)
    if principal is None:
        return login_page()
    return container_form({}, "", is_admin(principal))


@router.post("/console/create")
async def create_container(request: Request, svc: Services = Depends(services)) -> Response:
    if not is_admin(await principal_of(request, svc)):
        return forbidden("creating endpoints needs an admin token; this one may only read")
    form = await request.form()
    values: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
    try:
        created = await svc.endpoints.create(container_spec(values), "container")
    except (ValueError, PodiumError) as exc:
        return container_form(values, _why(exc), True)
    return RedirectResponse(f"/console/endpoints/{created.record.row.id}", status_code=303)


@router.post("/console/endpoints/{endpoint_id}/scaling")
async def scaling(endpoint_id: str, request: Request, svc: Services = Depends(services)) -> Response:
    """Edit scaling in place: the stored spec with its scaling fields replaced (PATCH semantics)."""
    if not is_admin(await principal_of(request, svc)):
        return forbidden("changing scaling needs an admin token; this one may only read")
    form = await request.form()
    try:
        current = await svc.endpoints.get(endpoint_id)
        fields = ("min_replicas", "max_replicas", "idle_timeout_s", "max_concurrency")
        patch = {k: form[k] for k in fields if isinstance(form.get(k), str) and form[k] != ""}
        merged = {**current.spec.scaling.model_dump(), **patch}
        spec = current.spec.model_copy(update={"scaling": Scaling.model_validate(merged)})
        await svc.endpoints.update(endpoint_id, EndpointSpec.model_validate(spec.model_dump()))
    except (ValueError, PodiumError) as exc:
        from urllib.parse import quote

        return RedirectResponse(f"/console/endpoints/{endpoint_id}/settings?error={quote(_why(exc))}", 303)
    return RedirectResponse(f"/console/endpoints/{endpoint_id}/settings?saved=1", status_code=303)


@router.post("/console/endpoints/{endpoint_id}/{action}")
async def endpoint_action(
    endpoint_id: str, action: str, request: Request, confirm: str = Form(""), svc: Services = Depends(services)
) -> Response:
    """start at once; stop and delete only with `confirm=yes` (the confirmation page's button)."""
    if not is_admin(await principal_of(request, svc)):
        return forbidden(f"{action} needs an admin token; this one may only read")
    if action in ("stop", "delete") and confirm != "yes":
        return RedirectResponse(f"/console/endpoints/{endpoint_id}/confirm/{action}", status_code=303)
    try:
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
        return page("Not done", f'<p class="err" role="alert">{escape(exc.message)}</p><p><a href="/">back</a></p>')
    return RedirectResponse(f"/console/endpoints/{endpoint_id}", status_code=303)
