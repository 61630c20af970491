"""The jobs queue in SQL: every state change is one short conditional statement, so a crash between two
calls leaves a queue the next runner can resume, and two runners racing for one job cannot both win
(`claim` and `finish` only touch a row still in the state, and under the lock, they expect)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import case, delete, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from podium.jobs.tables import CANCELLED, EXPIRED, FAILED, FINISHED, QUEUED, RUNNING, JobRow

FAST_TRIES, FAST_RETRY_S = 4, 0.0005  # SQLite busy: retry the fast insert a few times, then the async path
RETRIES_OF_RUNNING = 1  # a job interrupted mid-run is started again at most this many times


class QueueFull(Exception):
    """The endpoint already has its bound of queued jobs (answered 429)."""

    def __init__(self, queued: int) -> None:
        super().__init__(queued)
        self.queued = queued


@dataclass(frozen=True, slots=True)
class Backlog:
    """One endpoint's queued jobs, as the runner and the autoscaler see them."""

    queued: int
    oldest_created_at: float


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str  # succeeded | failed
    response_status: int | None = None
    response_type: str | None = None
    response_body: bytes | None = None
    error: str | None = None


class JobRepo:
    def __init__(self, session: async_sessionmaker, sqlite_file: Path | None = None) -> None:
        """`sqlite_file`: the SQLite database, for the submit's fast path (FastInsert)."""
        self.session = session
        self._fast = FastInsert(sqlite_file) if sqlite_file is not None else None

    async def submit(self, row: JobRow, bound: int) -> None:
        """Insert a queued job unless its endpoint already has `bound` queued (QueueFull). One statement
        (INSERT … SELECT … WHERE count < bound): the submit's cost is one round trip and one commit.
        On SQLite it is tried first on the event loop's own connection (FastInsert)."""
        if self._fast is not None:
            for _ in range(FAST_TRIES):  # the runner holds the write lock for ~1 ms at a time
                inserted = self._fast.insert(row, bound)
                if inserted is not None:
                    if not inserted:
                        raise QueueFull(bound)
                    return
                await asyncio.sleep(FAST_RETRY_S)
        table = JobRow.__table__
        values = {c.name: getattr(row, c.name) for c in table.columns if getattr(row, c.name) is not None}
        queued = (
            select(func.count())
            .select_from(table)
            .where(table.c.endpoint_id == row.endpoint_id, table.c.status == QUEUED)
            .scalar_subquery()
        )
        source = select(*(literal(v, type_=table.c[k].type) for k, v in values.items())).where(queued < bound)
        async with self.session.kw["bind"].begin() as conn:  # a bare connection: no unit of work to flush
            result = await conn.execute(insert(JobRow).from_select(list(values), source))
            if result.rowcount != 1:
                raise QueueFull(bound)

    async def add_many(self, rows: Sequence[JobRow]) -> None:
        async with self.session.begin() as s:
            s.add_all(rows)

    async def get(self, job_id: str) -> JobRow | None:
        async with self.session() as s:
            return await s.get(JobRow, job_id)

    async def find(
        self, *, token: str | None, admin: bool, endpoint: str | None, status: str | None, limit: int = 100
    ) -> list[JobRow]:
        q = select(JobRow).order_by(JobRow.created_at.desc()).limit(limit)
        if not admin:
            q = q.where(JobRow.token_sha256 == token)
        if endpoint:
            q = q.where(JobRow.endpoint_id == endpoint)
        if status:
            q = q.where(JobRow.status == status)
        async with self.session() as s:
            return list((await s.execute(q)).scalars())

    async def of_batch(self, batch_id: str) -> list[JobRow]:
        async with self.session() as s:
            q = select(JobRow).where(JobRow.batch_id == batch_id).order_by(JobRow.created_at, JobRow.id)
            return list((await s.execute(q)).scalars())

    async def backlog(self) -> dict[str, Backlog]:
        """endpoint id -> its queued jobs (count, oldest): what the runner dispatches from."""
        q = (
            select(JobRow.endpoint_id, func.count(), func.min(JobRow.created_at))
            .where(JobRow.status == QUEUED)
            .group_by(JobRow.endpoint_id)
        )
        async with self.session() as s:
            return {eid: Backlog(int(n), float(oldest)) for eid, n, oldest in (await s.execute(q)).all()}

    async def claim(self, endpoint_id: str, lock: str, now: float, n: int = 1) -> list[JobRow]:
        """Up to `n` of the endpoint's oldest queued jobs, now running under `lock` (one transaction).
        The UPDATE re-checks `status = 'queued'`, so a job another runner took meanwhile is not ours."""
        async with self.session.begin() as s:
            q = (
                select(JobRow.id)
                .where(JobRow.endpoint_id == endpoint_id, JobRow.status == QUEUED)
                .order_by(JobRow.created_at, JobRow.id)
                .limit(n)
            )
            ids = list((await s.execute(q)).scalars())
            if not ids:
                return []
            await s.execute(
                update(JobRow)
                .where(JobRow.id.in_(ids), JobRow.status == QUEUED)
                .values(status=RUNNING, lock=lock, heartbeat_at=now, started_at=now, attempts=JobRow.attempts + 1)
                .execution_options(synchronize_session=False)
            )
            mine = select(JobRow).where(JobRow.id.in_(ids), JobRow.lock == lock, JobRow.status == RUNNING)
            return sorted((await s.execute(mine)).scalars(), key=lambda r: (r.created_at, r.id))

    async def heartbeat(self, job_ids: Sequence[str], lock: str, now: float) -> set[str]:
        """Touch the running jobs of this runner; returns those still running under it (a missing one
        was cancelled: its request must be cut)."""
        if not job_ids:
            return set()
        async with self.session.begin() as s:
            mine = (JobRow.id.in_(list(job_ids)), JobRow.lock == lock, JobRow.status == RUNNING)
            await s.execute(update(JobRow).where(*mine).values(heartbeat_at=now))
            return set((await s.execute(select(JobRow.id).where(*mine))).scalars())

    async def finish(self, job_id: str, lock: str, outcome: Outcome, now: float) -> bool:
        """Record the result, only if the job still runs under `lock` (not cancelled meanwhile)."""
        return await self.finish_many(lock, [(job_id, outcome, now)]) == 1

    async def finish_many(self, lock: str, outcomes: Sequence[tuple[str, Outcome, float]]) -> int:
        """Record several results in one transaction (one UPDATE each), each only if its job still runs
        under `lock`; a retried job keeps the note that it was interrupted. Returns how many were."""
        done = 0
        async with self.session.kw["bind"].begin() as conn:
            for job_id, outcome, now in outcomes:
                result = await conn.execute(
                    update(JobRow)
                    .where(JobRow.id == job_id, JobRow.lock == lock, JobRow.status == RUNNING)
                    .values(
                        status=outcome.status,
                        response_status=outcome.response_status,
                        response_type=outcome.response_type,
                        response_body=outcome.response_body,
                        error=JobRow.error if outcome.error is None else outcome.error,
                        finished_at=now,
                        lock=None,
                        webhook_state=case((JobRow.webhook_url.is_not(None), "pending"), else_=None),
                        webhook_next_at=case((JobRow.webhook_url.is_not(None), now), else_=None),
                    )
                )
                done += result.rowcount
        return done

    async def requeue(self, job_id: str, lock: str) -> None:
        """A dispatch that never reached a replica (cold start timed out, queue full): queued again,
        the start not counted."""
        async with self.session.begin() as s:
            await s.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.lock == lock, JobRow.status == RUNNING)
                .values(status=QUEUED, lock=None, started_at=None, attempts=JobRow.attempts - 1)
            )

    async def cancel(self, job_id: str, now: float) -> JobRow | None:
        """Queued or running -> cancelled (a runner sees it at its next heartbeat); the row after."""
        async with self.session.begin() as s:
            row = await s.get(JobRow, job_id)
            if row is None:
                return None
            if row.status in (QUEUED, RUNNING):
                row.status, row.finished_at, row.lock = CANCELLED, now, None
                row.error = "cancelled by the client"
                _webhook_due(row, now)
            return row

    async def fail_queued(self, endpoint_id: str, reason: str, now: float) -> None:
        async with self.session.begin() as s:
            q = select(JobRow).where(JobRow.endpoint_id == endpoint_id, JobRow.status == QUEUED)
            for row in (await s.execute(q)).scalars():
                row.status, row.finished_at, row.error = FAILED, now, reason
                _webhook_due(row, now)

    async def cancel_batch(self, batch_id: str, now: float, reason: str = "the batch was cancelled") -> None:
        async with self.session.begin() as s:
            await s.execute(
                update(JobRow)
                .where(JobRow.batch_id == batch_id, JobRow.status.in_((QUEUED, RUNNING)))
                .values(status=CANCELLED, finished_at=now, lock=None, error=reason)
            )

    async def recover(self, lock: str, now: float, stale_before: float | None, may_retry: Callable[[str], bool]) -> int:
        """Running jobs whose runner is gone: queued again once if their endpoint allows it, else failed
        saying why. `stale_before` None (a runner's term starts: it is the only runner, so any other
        lock is a dead runner's), else only those not touched since then."""
        async with self.session.begin() as s:
            q = select(JobRow).where(JobRow.status == RUNNING, JobRow.lock != lock)
            if stale_before is not None:
                q = q.where(JobRow.heartbeat_at < stale_before)
            rows = list((await s.execute(q)).scalars())
            for row in rows:
                if row.attempts <= RETRIES_OF_RUNNING and may_retry(row.endpoint_id):
                    row.status, row.lock, row.started_at = QUEUED, None, None
                    row.error = "interrupted while running (Podium stopped); retried once as the endpoint allows"
                    continue
                row.status, row.lock, row.finished_at = FAILED, None, now
                reason = "the job was running when Podium stopped (killed or crashed)"
                if row.attempts > RETRIES_OF_RUNNING:
                    row.error = f"{reason}, and had already been retried once; not run again"
                else:
                    row.error = f"{reason}; not retried: the endpoint's spec jobs.retry_running is false"
                _webhook_due(row, now)
            return len(rows)

    async def expire(self, finished_before: float) -> int:
        """Finished jobs past retention: `expired`, their request and result dropped."""
        async with self.session.begin() as s:
            res = await s.execute(
                update(JobRow)
                .where(JobRow.status.in_(FINISHED), JobRow.finished_at < finished_before, JobRow.batch_id.is_(None))
                .values(status=EXPIRED, body=b"", response_body=None)
            )
            return int(res.rowcount)  # type: ignore[attr-defined]

    async def delete_batch_jobs(self, batch_id: str) -> None:
        async with self.session.begin() as s:
            await s.execute(delete(JobRow).where(JobRow.batch_id == batch_id))

    async def due_webhooks(self, now: float, limit: int = 50) -> list[JobRow]:
        q = (
            select(JobRow)
            .where(JobRow.webhook_state == "pending", JobRow.webhook_next_at <= now)
            .order_by(JobRow.webhook_next_at)
            .limit(limit)
        )
        async with self.session() as s:
            return list((await s.execute(q)).scalars())

    async def record_webhook(self, job_id: str, attempt: dict[str, object], state: str, next_at: float | None) -> None:
        async with self.session.begin() as s:
            row = await s.get(JobRow, job_id)
            if row is None:
                return
            row.webhook_attempts = json.dumps([*json.loads(row.webhook_attempts or "[]"), attempt])
            row.webhook_state, row.webhook_next_at = state, next_at


class FastInsert:
    """The submit on SQLite without leaving the event loop: a plain sqlite3 connection in autocommit, busy
    timeout 0. An INSERT + commit in WAL mode (synchronous=NORMAL: no fsync) takes tens of µs, while the
    async driver's hops through its thread cost ~1-3 ms on a busy 2-core machine. When another
    connection holds the write lock (the runner claiming or finishing) it does not wait: None, and the
    caller takes the async path, so the loop never blocks on a lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        table = JobRow.__table__
        self._columns = [c.name for c in table.columns]
        names = ", ".join(self._columns)
        marks = ", ".join("?" for _ in self._columns)
        count = "SELECT count(*) FROM jobs WHERE endpoint_id = ? AND status = 'queued'"
        self._sql = f"INSERT INTO jobs ({names}) SELECT {marks} WHERE ({count}) < ?"

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=0)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=0")
            conn.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints (fsync) stay on the async driver's threads
            self._conn = conn
        return self._conn

    def insert(self, row: JobRow, bound: int) -> bool | None:
        """True: inserted; False: the endpoint is at its bound; None: the database was busy."""
        params = [getattr(row, name) for name in self._columns]
        try:
            cursor = self._connection().execute(self._sql, [*params, row.endpoint_id, bound])
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                return None
            raise
        return cursor.rowcount == 1


def _webhook_due(row: JobRow, now: float) -> None:
    if row.webhook_url:
        row.webhook_state, row.webhook_next_at = "pending", now
