"""`/v1/files` and `/v1/batches`, as the official `openai` client calls them (files.create / retrieve /
content / list, batches.create / retrieve / list / cancel). Thin: access.py says who may see what,
batch.py does the work. A platform token (inference or admin scope) is needed; each token sees its own
files and batches, an admin all."""

from __future__ import annotations

import json
import time
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import UploadFile

from podium.gateway.errors import GatewayError
from podium.jobs.access import Caller, caller, error, need_token, not_found
from podium.jobs.batch import Batches, new_id
from podium.jobs.batch_repo import BatchRepo
from podium.jobs.tables import BatchRow, FileRow
from podium.store.repos import Store

MULTIPART_SLACK = 64 * 1024  # form boundaries and headers around the file itself


class BatchCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input_file_id: str = Field(max_length=64)
    endpoint: Literal["/v1/chat/completions", "/v1/completions", "/v1/embeddings"]
    completion_window: Literal["24h"]
    metadata: dict[str, str] | None = None


def file_json(row: FileRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "object": "file",
        "bytes": row.size,
        "created_at": int(row.created_at),
        "filename": row.filename,
        "purpose": row.purpose,
        "status": "processed",
        "status_details": None,
    }


def _ts(value: float | None) -> int | None:
    return None if value is None else int(value)


async def batch_json(batches: Batches, row: BatchRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "object": "batch",
        "endpoint": row.endpoint,
        "errors": None,
        "input_file_id": row.input_file_id,
        "completion_window": row.completion_window,
        "status": row.status,
        "output_file_id": row.output_file_id,
        "error_file_id": row.error_file_id,
        "created_at": int(row.created_at),
        "in_progress_at": _ts(row.in_progress_at),
        "expires_at": _ts(row.expires_at),
        "finalizing_at": _ts(row.finalizing_at),
        "completed_at": _ts(row.completed_at),
        "failed_at": None,
        "expired_at": _ts(row.finalizing_at) if row.status == "expired" else None,
        "cancelling_at": _ts(row.cancelling_at),
        "cancelled_at": _ts(row.cancelled_at),
        "request_counts": await batches.live_counts(row),
        "metadata": json.loads(row.metadata_json or "null"),
    }


def too_large(limit: int) -> JSONResponse:
    return error(GatewayError(413, f"file: larger than the limit of {limit} bytes", code="file_too_large"))


def batch_router(store: Store, repo: BatchRepo, batches: Batches, max_file_bytes: int) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    async def platform(request: Request) -> Caller | JSONResponse:
        who = await caller(store, request)
        return who if who.platform else need_token()

    @router.post("/v1/files")
    async def upload(request: Request) -> Any:
        who = await platform(request)
        if isinstance(who, JSONResponse):
            return who
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_file_bytes + MULTIPART_SLACK:
            return too_large(max_file_bytes)  # before reading the body
        form = await request.form(max_part_size=max_file_bytes + 1)
        upload, purpose = form.get("file"), form.get("purpose")
        if not isinstance(upload, UploadFile):
            return error(GatewayError(422, "file: a multipart file field is required", code="invalid_file"))
        if purpose != "batch":
            return error(GatewayError(422, "purpose: only 'batch' is supported", code="invalid_purpose"))
        content = await upload.read(max_file_bytes + 1)
        if len(content) > max_file_bytes:
            return too_large(max_file_bytes)
        row = FileRow(
            id=new_id("file"),
            token_sha256=who.digest,
            filename=upload.filename or "upload.jsonl",
            purpose="batch",
            size=len(content),
            content=content,
            created_at=time.time(),
        )
        await repo.add_file(row)
        return file_json(row)

    async def own_file(request: Request, file_id: str) -> FileRow | JSONResponse:
        who = await platform(request)
        if isinstance(who, JSONResponse):
            return who
        row = await repo.get_file(file_id)
        return row if row is not None and who.owns(row.token_sha256) else not_found("file")

    @router.get("/v1/files")
    async def list_files(request: Request, limit: int = Query(100, ge=1, le=10000)) -> Any:
        who = await platform(request)
        if isinstance(who, JSONResponse):
            return who
        rows = await repo.files(who.digest, who.admin, limit)
        return {"object": "list", "data": [file_json(r) for r in rows], "has_more": False}

    @router.get("/v1/files/{file_id}")
    async def get_file(request: Request, file_id: str) -> Any:
        row = await own_file(request, file_id)
        return row if isinstance(row, JSONResponse) else file_json(row)

    @router.get("/v1/files/{file_id}/content")
    async def file_content(request: Request, file_id: str) -> Any:
        row = await own_file(request, file_id)
        if isinstance(row, JSONResponse):
            return row
        return Response(row.content, media_type="application/octet-stream")

    @router.delete("/v1/files/{file_id}")
    async def delete_file(request: Request, file_id: str) -> Any:
        row = await own_file(request, file_id)
        if isinstance(row, JSONResponse):
            return row
        await repo.delete_file(row.id)
        return {"id": row.id, "object": "file", "deleted": True}

    @router.post("/v1/batches")
    async def create_batch(request: Request, spec: BatchCreate) -> Any:
        file = await own_file(request, spec.input_file_id)
        if isinstance(file, JSONResponse):
            return file
        who = await caller(store, request)
        batch = await batches.create(who.digest, file, spec.endpoint, spec.completion_window, spec.metadata)
        return await batch_json(batches, batch)

    async def own_batch(request: Request, batch_id: str) -> BatchRow | JSONResponse:
        who = await platform(request)
        if isinstance(who, JSONResponse):
            return who
        row = await repo.get_batch(batch_id)
        return row if row is not None and who.owns(row.token_sha256) else not_found("batch")

    @router.get("/v1/batches")
    async def list_batches(
        request: Request, limit: int = Query(20, ge=1, le=100), after: str | None = Query(None, max_length=64)
    ) -> Any:
        who = await platform(request)
        if isinstance(who, JSONResponse):
            return who
        rows = await repo.batches(who.digest, who.admin, limit + 1, after)
        data = [await batch_json(batches, r) for r in rows[:limit]]
        first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
        return {"object": "list", "data": data, "first_id": first, "last_id": last, "has_more": len(rows) > limit}

    @router.get("/v1/batches/{batch_id}")
    async def get_batch(request: Request, batch_id: str) -> Any:
        row = await own_batch(request, batch_id)
        return row if isinstance(row, JSONResponse) else await batch_json(batches, row)

    @router.post("/v1/batches/{batch_id}/cancel")
    async def cancel_batch(request: Request, batch_id: str) -> Any:
        row = await own_batch(request, batch_id)
        if isinstance(row, JSONResponse):
            return row
        await batches.cancel(row)
        fresh = await repo.get_batch(batch_id)
        return await batch_json(batches, fresh or row)

    return router
