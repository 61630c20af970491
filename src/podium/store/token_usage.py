"""Tokens metered per endpoint and per caller (issue 14), booked by the hour.

Each gateway process counts tokens since it started under a random instance id (`source`); the
controller books what grew since it last looked into the row of (source, endpoint, caller, hour).
The sum of a source's rows is therefore what that gateway had counted when last collected, which is
how a restarted controller knows where it stands (`booked`): nothing is counted twice and a window
of whole hours adds up.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Float, String, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from podium.store.tables import Base

HOUR_S = 3600.0


class TokenUsageRow(Base):
    __tablename__ = "token_usage"

    source: Mapped[str] = mapped_column(String(64), primary_key=True)  # the gateway process's instance id
    endpoint_id: Mapped[str] = mapped_column(String(32), primary_key=True, index=True)
    caller: Mapped[str] = mapped_column(String(64), primary_key=True)  # token id, "endpoint" or "anonymous"
    hour: Mapped[float] = mapped_column(Float, primary_key=True, index=True)  # unix time, a multiple of 3600
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    completion_tokens: Mapped[int] = mapped_column(BigInteger, default=0)


KEY = ["source", "endpoint_id", "caller", "hour"]


def _adding(excluded: Any) -> dict[str, Any]:
    return {
        "prompt_tokens": TokenUsageRow.prompt_tokens + excluded.prompt_tokens,
        "completion_tokens": TokenUsageRow.completion_tokens + excluded.completion_tokens,
    }


@dataclass(frozen=True)
class TokenDelta:
    source: str
    endpoint_id: str
    caller: str
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class TokenTotal:
    endpoint_id: str
    caller: str
    prompt_tokens: int
    completion_tokens: int


class TokenUsageStore:
    def __init__(self, session: async_sessionmaker, postgres: bool) -> None:
        self.session = session
        self.postgres = postgres

    async def add(self, deltas: Iterable[TokenDelta], at: float) -> None:
        """Add each delta to its row of the hour `at` falls in (one transaction)."""
        hour = at - at % HOUR_S
        rows = [
            {
                "source": d.source,
                "endpoint_id": d.endpoint_id,
                "caller": d.caller,
                "hour": hour,
                "prompt_tokens": d.prompt_tokens,
                "completion_tokens": d.completion_tokens,
            }
            for d in deltas
        ]
        if not rows:
            return
        async with self.session.begin() as s:
            for row in rows:
                await s.execute(self._upsert(row))

    def _upsert(self, row: dict[str, object]) -> Any:
        """INSERT, or add to the row already there (ON CONFLICT, both SQLite and PostgreSQL)."""
        if self.postgres:
            pg = pg_insert(TokenUsageRow).values(**row)
            return pg.on_conflict_do_update(index_elements=KEY, set_=_adding(pg.excluded))
        lite = sqlite_insert(TokenUsageRow).values(**row)
        return lite.on_conflict_do_update(index_elements=KEY, set_=_adding(lite.excluded))

    async def booked(self, source: str) -> dict[tuple[str, str], tuple[int, int]]:
        """(endpoint, caller) -> (prompt, completion) booked so far for one gateway process."""
        q = (
            select(
                TokenUsageRow.endpoint_id,
                TokenUsageRow.caller,
                func.sum(TokenUsageRow.prompt_tokens),
                func.sum(TokenUsageRow.completion_tokens),
            )
            .where(TokenUsageRow.source == source)
            .group_by(TokenUsageRow.endpoint_id, TokenUsageRow.caller)
        )
        async with self.session() as s:
            return {(e, c): (int(p or 0), int(o or 0)) for e, c, p, o in (await s.execute(q)).all()}

    async def totals(self, since: float, until: float, endpoint_id: str | None = None) -> list[TokenTotal]:
        """Per (endpoint, caller): the tokens of the hours that overlap [since, until)."""
        q = (
            select(
                TokenUsageRow.endpoint_id,
                TokenUsageRow.caller,
                func.sum(TokenUsageRow.prompt_tokens),
                func.sum(TokenUsageRow.completion_tokens),
            )
            .where(TokenUsageRow.hour > since - HOUR_S, TokenUsageRow.hour < until)
            .group_by(TokenUsageRow.endpoint_id, TokenUsageRow.caller)
        )
        if endpoint_id is not None:
            q = q.where(TokenUsageRow.endpoint_id == endpoint_id)
        async with self.session() as s:
            rows = (await s.execute(q)).all()
        return sorted(
            (TokenTotal(e, c, int(p or 0), int(o or 0)) for e, c, p, o in rows), key=lambda t: (t.endpoint_id, t.caller)
        )
