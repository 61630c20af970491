"""Platform tokens: stored only as sha256 hashes, shown once at creation."""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from podium.core.errors import Forbidden, Invalid, NotFound, Unauthorized
from podium.core.ids import new_id
from podium.store.repos import Store
from podium.store.tables import TokenRow

SCOPES = ("admin", "read", "inference")
log = logging.getLogger("podium.tokens")


def sha256_hex(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def generate_token(prefix: str = "pdm") -> str:
    return f"{prefix}_{secrets.token_urlsafe(32)}"


@dataclass(frozen=True)
class Principal:
    token_id: str
    name: str
    scopes: frozenset[str]

    def require(self, scope: str) -> None:
        """admin implies every scope; read and inference are independent."""
        if "admin" in self.scopes or scope in self.scopes:
            return
        raise Forbidden(f"token {self.name!r} lacks the {scope!r} scope", {"required": scope})


class TokenService:
    def __init__(self, store: Store, on_change: Callable[[], None] = lambda: None) -> None:
        self.store = store
        self.on_change = on_change  # republish the gateway's in-memory token book

    async def create(self, name: str, scopes: list[str], rate_limit_rpm: int | None = None) -> tuple[TokenRow, str]:
        if not name.strip():
            raise Invalid("name", "must not be empty")
        if not scopes:
            raise Invalid("scopes", "give at least one of " + ", ".join(SCOPES))
        for scope in scopes:
            if scope not in SCOPES:
                raise Invalid("scopes", f"{scope!r} is not one of " + ", ".join(SCOPES))
        if rate_limit_rpm is not None and rate_limit_rpm < 1:
            raise Invalid("rate_limit_rpm", "must be at least 1 request per minute (or absent: no limit)")
        token = generate_token()
        row = TokenRow(
            id=new_id("tok"),
            name=name,
            scopes=",".join(sorted(set(scopes))),
            sha256=sha256_hex(token),
            created_at=time.time(),
            rate_limit_rpm=rate_limit_rpm,
        )
        await self.store.add_token(row)
        self.on_change()
        return row, token

    async def ensure_bootstrap(self, token: str) -> None:
        """The admin token from PODIUM_ADMIN_TOKEN or <data_dir>/admin_token exists as an active row.

        Idempotent. A revoked row for it is re-activated: that token is the operator's configured
        key and the one Podium's own processes authenticate with (split roles), so the configuration
        wins; to retire it, configure another token (PODIUM_ADMIN_TOKEN or the admin_token file)."""
        row = TokenRow(
            id=new_id("tok"), name="bootstrap-admin", scopes="admin", sha256=sha256_hex(token), created_at=time.time()
        )
        if await self.store.token_by_hash(row.sha256) is None and await self.store.ensure_token(row):
            log.warning(
                "the configured admin token had been revoked; re-activated, since PODIUM_ADMIN_TOKEN or the "
                "admin_token file names it (to retire it, configure a new one)"
            )

    async def authenticate(self, token: str | None) -> Principal:
        if not token:
            raise Unauthorized("missing bearer token (Authorization: Bearer <token>)")
        row = await self.store.token_by_hash(sha256_hex(token))
        if row is None:
            raise Unauthorized("invalid or revoked token")
        return Principal(row.id, row.name, frozenset(row.scopes.split(",")))

    async def list_all(self) -> list[TokenRow]:
        return await self.store.tokens()

    async def revoke(self, token_id: str) -> None:
        """The last active admin token cannot be revoked (409): nobody could manage Podium after it."""
        if await self.store.revoke_token(token_id) is None:
            raise NotFound(f"token {token_id} not found")
        self.on_change()


def load_or_create_admin_token(data_dir: Path, given: str | None) -> tuple[str, bool]:
    """Returns (token, created_now). Generated once, saved 0600, never regenerated."""
    if given:
        return given, False
    path = data_dir / "admin_token"
    if path.exists():
        return path.read_text().strip(), False
    token = generate_token("pdm_admin")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token, True
