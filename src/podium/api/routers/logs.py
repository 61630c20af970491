"""`GET /v0/endpoints/{id}/logs`: replica stdout/stderr, as plain text, optionally followed."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from podium.api.deps import Services, require, services
from podium.core.errors import NotFound, Unavailable
from podium.runtime.base import RuntimeBackend

router = APIRouter(prefix="/v0/endpoints", tags=["endpoints"])


@router.get("/{endpoint_id}/logs", response_class=StreamingResponse)
async def endpoint_logs(
    endpoint_id: str,
    replica: str | None = Query(None, description="one replica id; default: every live replica"),
    tail: int = Query(100, ge=0, le=100_000, description="lines from the end of each replica's log"),
    follow: bool = Query(False, description="keep streaming new lines"),
    svc: Services = Depends(services),
    _: object = Depends(require("read")),
) -> StreamingResponse:
    rec = await svc.endpoints.get(endpoint_id)
    history = await svc.endpoints.store.replicas_of([rec.row.id], include_ended=True)
    if replica is not None:
        chosen = [r.id for r in history if r.id == replica]
        if not chosen:
            raise NotFound(f"replica {replica} not found in endpoint {rec.row.id}")
    else:
        live = [r.id for r in rec.replicas]
        chosen = live or [r.id for r in history[-1:]]  # nothing live: the last replica's log (why it failed)
    runtime: RuntimeBackend | None = svc.extra.get("runtime")
    if runtime is None:
        raise Unavailable("replica logs are not readable from this process (no runtime attached)")
    prefix = len(chosen) > 1
    return StreamingResponse(_lines(runtime, chosen, tail, follow, prefix), media_type="text/plain; charset=utf-8")


async def _lines(
    runtime: RuntimeBackend, replicas: list[str], tail: int, follow: bool, prefix: bool
) -> AsyncIterator[str]:
    if follow and len(replicas) > 1:
        replicas = replicas[-1:]  # following interleaves badly; follow the newest replica
        prefix = False
    for rid in replicas:
        async for line in runtime.logs(rid, tail=tail, follow=follow):
            text = line if line.endswith("\n") else line + "\n"
            yield f"[{rid}] {text}" if prefix else text
