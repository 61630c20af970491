"""Every error leaves as `{"error": {"code", "message", "details"}}` with the right status; a
validation error names the offending field. Nothing a user sends can produce a 500."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic_core import PydanticSerializationError
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from podium.core.errors import PodiumError, StorageFull, plain
from podium.store.db import is_storage_full

log = logging.getLogger("podium.api")


def _field(loc: tuple | list) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(PodiumError)
    async def podium_error(_: Request, exc: PodiumError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(exc.to_json(), status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _field(e.get("loc", ())), "message": plain(str(e.get("msg", "invalid")))} for e in exc.errors()
        ]
        first = errors[0] if errors else {"field": "body", "message": "invalid"}
        body = {
            "error": {
                "code": "invalid",
                "message": f"{first['field']}: {first['message']}",
                "details": errors,
            }
        }
        return JSONResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}.get(exc.status_code, "error")
        body = {"error": {"code": code, "message": str(exc.detail), "details": []}}
        return JSONResponse(body, status_code=exc.status_code)

    @app.exception_handler(UnicodeEncodeError)
    @app.exception_handler(PydanticSerializationError)
    async def not_text(_: Request, exc: Exception) -> JSONResponse:
        """JSON may carry lone surrogates (`"\\ud800"`) that no field rejected: bad input, not a bug."""
        message = "body: strings must be valid Unicode text (no lone surrogates)"
        return JSONResponse({"error": {"code": "invalid", "message": message, "details": []}}, status_code=422)

    @app.exception_handler(DBAPIError)
    async def database_error(request: Request, exc: DBAPIError) -> JSONResponse:
        """A full disk is the operator's to fix, not a bug: 503 and a message that says so."""
        if is_storage_full(exc):
            log.error("storage full: %s %s was not written", request.method, request.url.path)
            full = StorageFull("the database is full (no space left): nothing was written; free disk space and retry")
            return JSONResponse(full.to_json(), status_code=full.status)
        return await unexpected(request, exc)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        body = {"error": {"code": "internal", "message": "internal error (see server log)", "details": []}}
        return JSONResponse(body, status_code=500)
