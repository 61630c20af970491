"""Repositories: the only code that speaks SQL. Each method is one short transaction, so a crash
between two calls leaves the database consistent and the controller can resume from it."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import time
from collections.abc import AsyncIterator, Callable, Sequence

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from podium.core.errors import Conflict, NotFound
from podium.store.db import make_engine, make_sessionmaker
from podium.store.leases import Leases
from podium.store.revisions import RevisionRow, Revisions
from podium.store.tables import (
    EndpointRow,
    EventRow,
    ReplicaRow,
    SecretRow,
    SecretVersionRow,
    TokenRow,
    UsageRow,
    VolumeRow,
)

ADMISSION_LOCK_KEY = 7_270_001  # pg_advisory_lock key for capacity admission
LIVE_REPLICA_STATES = ("pending", "starting", "ready", "unhealthy", "draining")


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: AsyncEngine = make_engine(url)
        self.session: async_sessionmaker = make_sessionmaker(self.engine)
        # who leads among several controllers (one statement per operation: see podium.store.leases)
        self.leases = Leases(self.session, postgres=url.startswith("postgresql"))
        self.revisions = Revisions(self.session)  # endpoint revisions (podium.store.revisions)

    async def close(self) -> None:
        await self.engine.dispose()

    @contextlib.asynccontextmanager
    async def admission(self) -> AsyncIterator[None]:
        """Serialise capacity check-then-write across processes (several `--role api`): an advisory lock
        on PostgreSQL, a lock file beside the SQLite database (SQLite lives on one machine)."""
        if self.url.startswith("postgresql"):
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": ADMISSION_LOCK_KEY})
                try:
                    yield
                finally:
                    await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADMISSION_LOCK_KEY})
            return
        path = self.url.split(":///", 1)[-1] + ".admission.lock" if ":///" in self.url else None
        if path is None or path.startswith(":memory:"):
            yield
            return
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "a") as f:
            while True:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    await asyncio.sleep(0.005)  # never block the event loop on another process
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    # --- endpoints -------------------------------------------------------------------------

    async def add_endpoint(self, row: EndpointRow, event: tuple[str, str] | None = None) -> EndpointRow:
        """With its first event (kind, message) in the same transaction: all of it is written, or none."""
        try:
            async with self.session.begin() as s:
                s.add(row)
                if event is not None:
                    await s.flush()  # the event refers to the endpoint
                    s.add(EventRow(endpoint_id=row.id, at=time.time(), kind=event[0], message=event[1]))
        except IntegrityError as exc:
            raise Conflict("an endpoint with this app_name or routing_key already exists") from exc
        return row

    async def get_endpoint(self, endpoint_id: str) -> EndpointRow | None:
        async with self.session() as s:
            return await s.get(EndpointRow, endpoint_id)

    async def find_endpoint(self, key: str) -> EndpointRow | None:
        """By id, app name or routing key: users name endpoints all three ways."""
        async with self.session() as s:
            q = select(EndpointRow).where(
                (EndpointRow.id == key) | (EndpointRow.app_name == key) | (EndpointRow.routing_key == key)
            )
            return (await s.execute(q)).scalars().first()

    async def list_endpoints(self) -> list[EndpointRow]:
        async with self.session() as s:
            q = select(EndpointRow).order_by(EndpointRow.created_at)
            return list((await s.execute(q)).scalars())

    async def update_endpoint(
        self, endpoint_id: str, *, event: tuple[str, str] | None = None, **values: object
    ) -> None:
        """`event` (kind, message) is recorded in the same transaction as the change."""
        values.setdefault("updated_at", time.time())
        try:
            async with self.session.begin() as s:
                await s.execute(update(EndpointRow).where(EndpointRow.id == endpoint_id).values(**values))
                if event is not None:
                    s.add(EventRow(endpoint_id=endpoint_id, at=time.time(), kind=event[0], message=event[1]))
        except IntegrityError as exc:
            raise Conflict("an endpoint with this app_name or routing_key already exists") from exc

    async def delete_endpoint(self, endpoint_id: str) -> None:
        async with self.session.begin() as s:
            await s.execute(delete(ReplicaRow).where(ReplicaRow.endpoint_id == endpoint_id))
            await s.execute(delete(RevisionRow).where(RevisionRow.endpoint_id == endpoint_id))
            await s.execute(delete(EndpointRow).where(EndpointRow.id == endpoint_id))

    # --- replicas --------------------------------------------------------------------------

    async def add_replica(self, row: ReplicaRow) -> None:
        async with self.session.begin() as s:
            s.add(row)

    async def update_replica(self, replica_id: str, **values: object) -> None:
        async with self.session.begin() as s:
            await s.execute(update(ReplicaRow).where(ReplicaRow.id == replica_id).values(**values))

    async def end_replica(self, replica_id: str, state: str, ended_at: float, detail: str | None = None) -> None:
        """A replica ended (stopped or failed): mark it and book its run time as usage, in one transaction."""
        async with self.session.begin() as s:
            row = await s.get(ReplicaRow, replica_id)
            if row is None or row.state not in LIVE_REPLICA_STATES:
                return
            row.state, row.ended_at = state, ended_at
            if detail is not None:
                row.detail = detail
            if row.started_at is not None:
                ep = await s.get(EndpointRow, row.endpoint_id)
                s.add(
                    UsageRow(
                        endpoint_id=row.endpoint_id,
                        endpoint_name=ep.name if ep else "",
                        replica_id=row.id,
                        gpu_count=len(row.gpus.split(",")) if row.gpus else 0,
                        started_at=row.started_at,
                        ended_at=max(ended_at, row.started_at),
                    )
                )

    async def usage_rows(self, since: float, endpoint_id: str | None = None) -> list[UsageRow]:
        async with self.session() as s:
            q = select(UsageRow).where(UsageRow.ended_at > since)
            if endpoint_id is not None:
                q = q.where(UsageRow.endpoint_id == endpoint_id)
            return list((await s.execute(q)).scalars())

    async def live_replicas(self, endpoint_id: str | None = None) -> list[ReplicaRow]:
        async with self.session() as s:
            q = select(ReplicaRow).where(ReplicaRow.state.in_(LIVE_REPLICA_STATES))
            if endpoint_id is not None:
                q = q.where(ReplicaRow.endpoint_id == endpoint_id)
            return list((await s.execute(q.order_by(ReplicaRow.created_at))).scalars())

    async def replicas_of(self, endpoint_ids: Sequence[str], include_ended: bool = False) -> list[ReplicaRow]:
        async with self.session() as s:
            q = select(ReplicaRow).where(ReplicaRow.endpoint_id.in_(endpoint_ids))
            if not include_ended:
                q = q.where(ReplicaRow.state.in_(LIVE_REPLICA_STATES))
            return list((await s.execute(q.order_by(ReplicaRow.created_at))).scalars())

    async def prune_ended_replicas(self, keep_last: int = 20) -> None:
        """Ended replicas are history; keep a few per endpoint for `get`, drop the rest."""
        async with self.session.begin() as s:
            ended = (
                await s.execute(
                    select(ReplicaRow.id, ReplicaRow.endpoint_id)
                    .where(ReplicaRow.state.not_in(LIVE_REPLICA_STATES))
                    .order_by(ReplicaRow.created_at.desc())
                )
            ).all()
            seen: dict[str, int] = {}
            drop = []
            for rid, eid in ended:
                seen[eid] = seen.get(eid, 0) + 1
                if seen[eid] > keep_last:
                    drop.append(rid)
            if drop:
                await s.execute(delete(ReplicaRow).where(ReplicaRow.id.in_(drop)))

    # --- events ----------------------------------------------------------------------------

    async def add_event(self, endpoint_id: str, kind: str, message: str, replica_id: str | None = None) -> None:
        async with self.session.begin() as s:
            s.add(EventRow(endpoint_id=endpoint_id, at=time.time(), kind=kind, message=message, replica_id=replica_id))

    async def events(self, endpoint_id: str, limit: int = 100) -> list[EventRow]:
        async with self.session() as s:
            q = select(EventRow).where(EventRow.endpoint_id == endpoint_id).order_by(EventRow.id.desc()).limit(limit)
            return list((await s.execute(q)).scalars())

    # --- tokens ----------------------------------------------------------------------------

    async def add_token(self, row: TokenRow) -> None:
        async with self.session.begin() as s:
            s.add(row)

    async def tokens(self, include_revoked: bool = False) -> list[TokenRow]:
        async with self.session() as s:
            q = select(TokenRow).order_by(TokenRow.created_at)
            if not include_revoked:
                q = q.where(TokenRow.revoked_at.is_(None))
            return list((await s.execute(q)).scalars())

    async def token_by_hash(self, sha256: str, include_revoked: bool = False) -> TokenRow | None:
        async with self.session() as s:
            q = select(TokenRow).where(TokenRow.sha256 == sha256)
            if not include_revoked:
                q = q.where(TokenRow.revoked_at.is_(None))
            return (await s.execute(q)).scalars().first()

    async def ensure_token(self, row: TokenRow) -> bool:
        """The token with `row.sha256` exists and is active: added, or its revoked row re-activated
        (the hash is unique, so a second row would violate it). True when it was re-activated."""
        try:
            async with self.session.begin() as s:
                s.add(row)
            return False
        except IntegrityError:
            pass  # already there (maybe revoked; maybe another process added it just now)
        async with self.session.begin() as s:
            res = await s.execute(
                update(TokenRow)
                .where(TokenRow.sha256 == row.sha256, TokenRow.revoked_at.is_not(None))
                .values(revoked_at=None)
            )
            return bool(res.rowcount)  # type: ignore[attr-defined]

    async def revoke_token(self, token_id: str, keep_an_admin: bool = True) -> TokenRow | None:
        """Revoke one active token; None when there is no such active token. With `keep_an_admin`, the
        last active admin token is refused (`Conflict`): without one nobody could manage Podium."""
        async with self.admission(), self.session.begin() as s:  # admission: two revokes do not race
            row = (
                await s.execute(select(TokenRow).where(TokenRow.id == token_id, TokenRow.revoked_at.is_(None)))
            ).scalar_one_or_none()
            if row is None:
                return None
            if keep_an_admin and "admin" in row.scopes.split(","):
                active = (await s.execute(select(TokenRow.scopes).where(TokenRow.revoked_at.is_(None)))).scalars()
                if sum(1 for scopes in active if "admin" in scopes.split(",")) <= 1:
                    raise Conflict(
                        f"token {token_id} is the last active admin token; create another admin token first",
                        {"token_id": token_id},
                    )
            row.revoked_at = time.time()
            return row

    async def count_tokens(self) -> int:
        async with self.session() as s:
            return int((await s.execute(select(func.count()).select_from(TokenRow))).scalar_one())

    # --- secrets ---------------------------------------------------------------------------

    async def add_secret(self, row: SecretRow, first: SecretVersionRow) -> None:
        """A secret and its version 1 in one transaction: never a secret without a payload."""
        try:
            async with self.session.begin() as s:
                s.add(row)
                await s.flush()
                s.add(first)
        except IntegrityError as exc:
            raise Conflict(f"a secret named {row.name!r} already exists", {"field": "name"}) from exc

    async def secrets(self) -> list[SecretRow]:
        async with self.session() as s:
            return list((await s.execute(select(SecretRow).order_by(SecretRow.created_at))).scalars())

    async def find_secret(self, key: str) -> SecretRow | None:
        """By id or by name."""
        async with self.session() as s:
            q = select(SecretRow).where((SecretRow.id == key) | (SecretRow.name == key))
            return (await s.execute(q)).scalars().first()

    async def secret_versions(self, secret_id: str) -> list[SecretVersionRow]:
        async with self.session() as s:
            q = select(SecretVersionRow).where(SecretVersionRow.secret_id == secret_id)
            return list((await s.execute(q.order_by(SecretVersionRow.version))).scalars())

    async def secret_version(self, secret_id: str, version: int) -> SecretVersionRow | None:
        async with self.session() as s:
            q = select(SecretVersionRow).where(
                SecretVersionRow.secret_id == secret_id, SecretVersionRow.version == version
            )
            return (await s.execute(q)).scalars().first()

    async def add_secret_version(self, secret_id: str, make: Callable[[int], SecretVersionRow]) -> int:
        """Append version latest+1 (numbered inside the transaction, so concurrent adds never collide)."""
        async with self.session.begin() as s:
            row = await s.get(SecretRow, secret_id)
            if row is None:
                raise NotFound(f"secret {secret_id} not found")
            version = row.latest_version + 1
            s.add(make(version))
            row.latest_version, row.updated_at = version, time.time()
            return version

    async def delete_secret(self, secret_id: str) -> None:
        async with self.session.begin() as s:
            await s.execute(delete(SecretVersionRow).where(SecretVersionRow.secret_id == secret_id))
            await s.execute(delete(SecretRow).where(SecretRow.id == secret_id))

    # --- volumes ---------------------------------------------------------------------------

    async def add_volume(self, row: VolumeRow) -> None:
        try:
            async with self.session.begin() as s:
                s.add(row)
        except IntegrityError as exc:
            raise Conflict(f"a volume named {row.name!r} already exists", {"field": "name"}) from exc

    async def volumes(self) -> list[VolumeRow]:
        async with self.session() as s:
            return list((await s.execute(select(VolumeRow).order_by(VolumeRow.created_at))).scalars())

    async def find_volume(self, key: str) -> VolumeRow | None:
        async with self.session() as s:
            q = select(VolumeRow).where((VolumeRow.id == key) | (VolumeRow.name == key))
            return (await s.execute(q)).scalars().first()

    async def delete_volume(self, volume_id: str) -> None:
        async with self.session.begin() as s:
            await s.execute(delete(VolumeRow).where(VolumeRow.id == volume_id))
