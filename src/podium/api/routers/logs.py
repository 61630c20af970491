"""`GET /v0/endpoints/{id}/logs`: replica stdout/stderr, as plain text, optionally followed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from podium.api.deps import Services, require, services
from podium.core.errors import NotFound, Unavailable
from podium.runtime.base import RuntimeBackend, RuntimeUnavailable

_FIRST_LINE_WAIT_S = 1.0  # how long the answer waits for a first line, to turn a dead runtime into a 503

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
    runtime = svc.runtime
    if runtime is None:
        raise Unavailable("replica logs are not readable from this process (no runtime attached)")
    prefix = len(chosen) > 1
    lines = await _checked(_lines(runtime, chosen, tail, follow, prefix))
    return StreamingResponse(lines, media_type="text/plain; charset=utf-8")


async def _checked(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    """The stream, once its first line came (or _FIRST_LINE_WAIT_S passed: a quiet follow) without
    the runtime failing: a container engine that is down is a 503 saying so, not a 200 that breaks
    off (the CLI printed a traceback). Failing later, the stream ends with a line saying why."""
    first = asyncio.ensure_future(anext(lines))
    done, _ = await asyncio.wait({first}, timeout=_FIRST_LINE_WAIT_S)
    if first in done and isinstance(first.exception(), RuntimeUnavailable):
        raise Unavailable(f"replica logs cannot be read now: {first.exception()}")

    async def rest() -> AsyncIterator[str]:
        try:
            try:
                yield await first
            except StopAsyncIteration:
                return
            async for line in lines:
                yield line
        except RuntimeUnavailable as exc:
            yield f"[podium] logs ended: {exc}\n"
        finally:
            first.cancel()
            with contextlib.suppress(Exception):
                await lines.aclose()  # type: ignore[attr-defined]

    return rest()


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
