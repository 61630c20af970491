"""Leases: one row per name, held by one holder until `expires_at`. Each operation is ONE statement, so
two processes racing for a lease cannot both win: PostgreSQL's INSERT … ON CONFLICT DO UPDATE locks the
conflicting row and re-checks the WHERE on its latest version; SQLite serialises writers. Times are
wall-clock epoch seconds passed in by the caller (an injected clock in tests), so every process on every
machine compares against the same `expires_at` — which is why the controllers' clocks must agree (NTP)."""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import case, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import async_sessionmaker

from podium.store.tables import LeaseRow


class LeaseHolder(NamedTuple):
    holder: str
    url: str
    expires_at: float


class Leases:
    """The lease repository; `Store.leases` builds it on the store's sessions."""

    def __init__(self, session: async_sessionmaker, postgres: bool) -> None:
        self._session = session
        self._insert = pg_insert if postgres else sqlite_insert

    async def try_acquire(self, name: str, holder: str, url: str, ttl_s: float, now: float) -> bool:
        """Take the lease when it is free, expired, or already ours (then it is extended). Atomic."""
        values = {"name": name, "holder": holder, "url": url, "expires_at": now + ttl_s, "acquired_at": now}
        stmt = self._insert(LeaseRow).values(**values)
        taken = stmt.excluded
        upsert = stmt.on_conflict_do_update(
            index_elements=[LeaseRow.name],
            set_={
                "holder": taken.holder,
                "url": taken.url,
                "expires_at": taken.expires_at,
                # a holder extending its own lease keeps the moment it first took it
                "acquired_at": case((LeaseRow.holder == taken.holder, LeaseRow.acquired_at), else_=taken.acquired_at),
            },
            where=(LeaseRow.holder == taken.holder) | (LeaseRow.expires_at <= now),
        ).returning(LeaseRow.holder)
        async with self._session() as s, s.begin():
            won = (await s.execute(upsert)).scalar_one_or_none()
        return won == holder

    async def renew(self, name: str, holder: str, ttl_s: float, now: float) -> bool:
        """Extend a lease we hold and that has not expired. False: it expired or another holds it — the
        caller is no longer the holder and must stop acting as one."""
        stmt = (
            update(LeaseRow)
            .where(LeaseRow.name == name, LeaseRow.holder == holder, LeaseRow.expires_at > now)
            .values(expires_at=now + ttl_s)
        )
        async with self._session() as s, s.begin():
            result = await s.execute(stmt)
        return bool(getattr(result, "rowcount", 0) == 1)

    async def release(self, name: str, holder: str) -> bool:
        """Give the lease up at once (a clean shutdown), so a successor need not wait for it to expire."""
        async with self._session() as s, s.begin():
            result = await s.execute(delete(LeaseRow).where(LeaseRow.name == name, LeaseRow.holder == holder))
        return bool(getattr(result, "rowcount", 0) == 1)

    async def current(self, name: str) -> LeaseHolder | None:
        """The lease row as stored, expired or not: compare `expires_at` with your clock."""
        async with self._session() as s:
            row = (await s.execute(select(LeaseRow).where(LeaseRow.name == name))).scalar_one_or_none()
        return None if row is None else LeaseHolder(row.holder, row.url, row.expires_at)
