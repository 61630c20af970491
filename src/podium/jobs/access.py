"""Who is asking, for the jobs, files and batches APIs: the bearer token's digest, and whether it is a
platform token (inference or admin scope) or an admin. A job is readable by the token that submitted
it and by admins; for anyone else it does not exist (404, not 403: ids are not confirmed)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import orjson
from fastapi import Request
from fastapi.responses import JSONResponse

from podium.gateway.errors import GatewayError, unauthorized
from podium.store.repos import Store


@dataclass(frozen=True, slots=True)
class Caller:
    digest: str | None
    admin: bool = False
    platform: bool = False

    def owns(self, token_sha256: str | None) -> bool:
        """May this caller see an object submitted with `token_sha256`? (None: submitted without a
        token to an open endpoint: whoever holds its random id.)"""
        return self.admin or token_sha256 is None or token_sha256 == self.digest


async def caller(store: Store, request: Request) -> Caller:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return Caller(None)
    digest = hashlib.sha256(token.encode()).hexdigest()
    row = await store.token_by_hash(digest)
    scopes = set(row.scopes.split(",")) if row is not None else set()
    return Caller(digest, admin="admin" in scopes, platform=bool(scopes & {"admin", "inference"}))


def error(err: GatewayError) -> JSONResponse:
    """OpenAI's error shape, as the data plane answers (the openai client shows `message`)."""
    return JSONResponse(orjson.loads(err.body()), status_code=err.status, headers=_retry(err))


def _retry(err: GatewayError) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in err.headers() if k == b"retry-after"}


def not_found(what: str) -> JSONResponse:
    return error(GatewayError(404, f"no such {what}", code="not_found"))


def need_token() -> JSONResponse:
    return error(unauthorized())
