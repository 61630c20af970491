"""`/v0/tokens`: platform tokens. The token value appears only in the create answer."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from podium.api.deps import Services, require, services
from podium.store.tables import TokenRow

router = APIRouter(prefix="/v0/tokens", tags=["tokens"])


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # a number must be finite
    name: str = Field(min_length=1, max_length=128)
    scopes: list[str] = Field(min_length=1, description="admin, read, inference")
    rate_limit_rpm: int | None = Field(
        default=None, ge=1, le=10_000_000, description="data-plane requests per minute; over it: 429 + Retry-After"
    )


class TokenOut(BaseModel):
    id: str
    name: str
    scopes: list[str]
    created_at: float
    rate_limit_rpm: int | None = None


class TokenCreated(TokenOut):
    token: str


class TokensOut(BaseModel):
    tokens: list[TokenOut]


@router.post("", status_code=201, response_model=TokenCreated)
async def create_token(
    body: TokenCreate, svc: Services = Depends(services), _: object = Depends(require("admin"))
) -> TokenCreated:
    row, token = await svc.tokens.create(body.name, body.scopes, body.rate_limit_rpm)
    return TokenCreated(**_out(row).model_dump(), token=token)


@router.get("", response_model=TokensOut)
async def list_tokens(svc: Services = Depends(services), _: object = Depends(require("admin"))) -> TokensOut:
    rows = await svc.tokens.list_all()
    return TokensOut(tokens=[_out(r) for r in rows])


def _out(row: TokenRow) -> TokenOut:
    return TokenOut(
        id=row.id,
        name=row.name,
        scopes=row.scopes.split(","),
        created_at=row.created_at,
        rate_limit_rpm=row.rate_limit_rpm,
    )


@router.delete("/{token_id}", status_code=204)
async def revoke_token(
    token_id: str, svc: Services = Depends(services), _: object = Depends(require("admin"))
) -> Response:
    await svc.tokens.revoke(token_id)
    return Response(status_code=204)
