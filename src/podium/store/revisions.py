"""Endpoint revisions: numbered snapshots of what an endpoint's replicas run (issue 13).

A revision's `number` is the `generation` its replicas carry (`replicas.generation`), so the
controller's "old replica" test stays one integer comparison. Each row keeps the whole spec as it
was (so a rollback can restore what replicas ran), the fields that changed from the revision
before, and where its rollout stands.
"""

from __future__ import annotations

import time

from sqlalchemy import Float, Index, Integer, String, Text, delete, func, select, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from podium.store.tables import Base, EndpointRow, EventRow

# Where a revision's rollout stands. One of them is the endpoint's current revision (its generation).
ROLLING = "rolling"  # replicas are being replaced by this revision's
CANARY = "canary"  # some replicas run it and take canary_percent of requests, waiting for promote
ACTIVE = "active"  # every replica runs it
FAILED = "failed"  # its rollout failed and rolled back by itself (`reason` says why)
RETIRED = "retired"  # replaced by a later revision, or rolled back from by the user
IN_PROGRESS = (ROLLING, CANARY)


class RevisionRow(Base):
    __tablename__ = "endpoint_revisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    endpoint_id: Mapped[str] = mapped_column(String(32))
    number: Mapped[int] = mapped_column(Integer)  # = the generation its replicas carry
    spec_json: Mapped[str] = mapped_column(Text)  # the endpoint's whole spec when this revision was made
    changes: Mapped[str] = mapped_column(Text, default="")  # comma-separated fields changed from the one before
    strategy: Mapped[str] = mapped_column(String(16), default="rolling")
    state: Mapped[str] = mapped_column(String(16), default=ROLLING)
    reason: Mapped[str] = mapped_column(Text, default="")  # why it failed, was retired or rolled back to
    created_at: Mapped[float] = mapped_column(Float)
    rolled_at: Mapped[float] = mapped_column(Float)  # when it last became the target (a rollback re-targets)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)  # rollout done or failed
    # Traffic to its replicas as the gateway counted it, saved while a canary is judged (side by side)
    requests: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    errors: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # 5xx answers
    latency_s: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")  # mean, whole request

    __table_args__ = (Index("ux_endpoint_revisions_endpoint_number", "endpoint_id", "number", unique=True),)


class Revisions:
    """The revision repository; `Store.revisions` builds it on the store's sessions."""

    def __init__(self, session: async_sessionmaker) -> None:
        self._session = session

    async def add(self, row: RevisionRow, retire_others: bool = True) -> None:
        """Record a new revision; the ones still rolling or canary are retired by it in the same transaction."""
        async with self._session.begin() as s:
            if retire_others:
                await s.execute(
                    update(RevisionRow)
                    .where(RevisionRow.endpoint_id == row.endpoint_id, RevisionRow.state.in_(IN_PROGRESS))
                    .values(state=RETIRED, reason=f"superseded by revision {row.number}", finished_at=row.created_at)
                )
            s.add(row)

    async def of(self, endpoint_id: str) -> list[RevisionRow]:
        async with self._session() as s:
            q = select(RevisionRow).where(RevisionRow.endpoint_id == endpoint_id).order_by(RevisionRow.number)
            return list((await s.execute(q)).scalars())

    async def get(self, endpoint_id: str, number: int) -> RevisionRow | None:
        async with self._session() as s:
            q = select(RevisionRow).where(RevisionRow.endpoint_id == endpoint_id, RevisionRow.number == number)
            return (await s.execute(q)).scalars().first()

    async def latest_number(self, endpoint_id: str) -> int:
        async with self._session() as s:
            q = select(func.max(RevisionRow.number)).where(RevisionRow.endpoint_id == endpoint_id)
            return int((await s.execute(q)).scalar() or 0)

    async def set(self, endpoint_id: str, number: int, **values: object) -> None:
        async with self._session.begin() as s:
            q = update(RevisionRow).where(RevisionRow.endpoint_id == endpoint_id, RevisionRow.number == number)
            await s.execute(q.values(**values))

    async def switch(
        self, endpoint_id: str, expected: int, to: int, spec_json: str, leaving: tuple[str, str], event: tuple[str, str]
    ) -> bool:
        """Make revision `to` the endpoint's current one (a rollback, by the user or a failed rollout), in one
        transaction: the endpoint's spec and generation, the revision left (`leaving`: its state and reason),
        and an event. Only while the endpoint is still on `expected`: a PATCH in between wins. False if not."""
        now = time.time()
        async with self._session.begin() as s:
            done = await s.execute(
                update(EndpointRow)
                .where(EndpointRow.id == endpoint_id, EndpointRow.generation == expected)
                .values(
                    spec_json=spec_json,
                    generation=to,
                    consecutive_failures=0,
                    backoff_until=0.0,
                    last_error=leaving[1] if leaving[0] == FAILED else None,
                    updated_at=now,
                )
            )
            if not done.rowcount:  # type: ignore[attr-defined]
                return False
            mine = (RevisionRow.endpoint_id == endpoint_id, RevisionRow.number != to)
            await s.execute(
                update(RevisionRow)
                .where(*mine, RevisionRow.state.in_((*IN_PROGRESS, ACTIVE)), RevisionRow.number != expected)
                .values(state=RETIRED, finished_at=now)
            )
            await s.execute(
                update(RevisionRow)
                .where(RevisionRow.endpoint_id == endpoint_id, RevisionRow.number == expected)
                .values(state=leaving[0], reason=leaving[1], finished_at=now)
            )
            await s.execute(
                update(RevisionRow)
                .where(RevisionRow.endpoint_id == endpoint_id, RevisionRow.number == to)
                .values(
                    state=ROLLING, reason=f"rolled back to from revision {expected}", rolled_at=now, finished_at=None
                )
            )
            s.add(EventRow(endpoint_id=endpoint_id, at=now, kind=event[0], message=event[1]))
        return True

    async def finish(self, endpoint_id: str, number: int) -> None:
        """Every replica runs `number`: it is the active revision, an older active one is retired."""
        now = time.time()
        async with self._session.begin() as s:
            await s.execute(
                update(RevisionRow)
                .where(
                    RevisionRow.endpoint_id == endpoint_id, RevisionRow.number != number, RevisionRow.state == ACTIVE
                )
                .values(state=RETIRED, finished_at=now)
            )
            await s.execute(
                update(RevisionRow)
                .where(RevisionRow.endpoint_id == endpoint_id, RevisionRow.number == number)
                .values(state=ACTIVE, finished_at=now)
            )

    async def delete_of(self, endpoint_id: str) -> None:
        async with self._session.begin() as s:
            await s.execute(delete(RevisionRow).where(RevisionRow.endpoint_id == endpoint_id))
