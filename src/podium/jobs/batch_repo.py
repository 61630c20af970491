"""Files and batches in SQL (the jobs of a batch are ordinary rows of `jobs`, with `batch_id`)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from podium.jobs.tables import BatchRow, FileRow, JobRow

OPEN_BATCH = ("in_progress", "cancelling")


class BatchRepo:
    def __init__(self, session: async_sessionmaker) -> None:
        self.session = session

    async def add_file(self, row: FileRow) -> None:
        async with self.session.begin() as s:
            s.add(row)

    async def get_file(self, file_id: str) -> FileRow | None:
        async with self.session() as s:
            return await s.get(FileRow, file_id)

    async def delete_file(self, file_id: str) -> None:
        async with self.session.begin() as s:
            await s.execute(delete(FileRow).where(FileRow.id == file_id))

    async def files(self, token: str | None, admin: bool, limit: int) -> list[FileRow]:
        q = select(FileRow).order_by(FileRow.created_at.desc()).limit(limit)
        if not admin:
            q = q.where(FileRow.token_sha256 == token)
        async with self.session() as s:
            return list((await s.execute(q)).scalars())

    async def add_batch(self, batch: BatchRow, jobs: Sequence[JobRow]) -> None:
        """The batch and every job of it in one transaction: all of it is queued, or none."""
        async with self.session.begin() as s:
            s.add(batch)
            s.add_all(jobs)

    async def get_batch(self, batch_id: str) -> BatchRow | None:
        async with self.session() as s:
            return await s.get(BatchRow, batch_id)

    async def batches(self, token: str | None, admin: bool, limit: int, after: str | None) -> list[BatchRow]:
        q = select(BatchRow).order_by(BatchRow.created_at.desc(), BatchRow.id.desc()).limit(limit)
        if not admin:
            q = q.where(BatchRow.token_sha256 == token)
        async with self.session() as s:
            if after:
                anchor = await s.get(BatchRow, after)
                if anchor is not None:
                    q = q.where(BatchRow.created_at < anchor.created_at)
            return list((await s.execute(q)).scalars())

    async def open_batches(self) -> list[BatchRow]:
        async with self.session() as s:
            return list((await s.execute(select(BatchRow).where(BatchRow.status.in_(OPEN_BATCH)))).scalars())

    async def finished_batches(self, before: float) -> list[str]:
        """Batches finalised before `before` that still have job rows."""
        has_jobs = select(JobRow.id).where(JobRow.batch_id == BatchRow.id).exists()
        q = select(BatchRow.id).where(BatchRow.status.not_in(OPEN_BATCH), BatchRow.finalizing_at < before, has_jobs)
        async with self.session() as s:
            return list((await s.execute(q)).scalars())

    async def job_counts(self, batch_id: str) -> dict[str, int]:
        """status -> how many of the batch's jobs are in it."""
        q = select(JobRow.status, func.count()).where(JobRow.batch_id == batch_id).group_by(JobRow.status)
        async with self.session() as s:
            return {status: int(n) for status, n in (await s.execute(q)).all()}

    async def update_batch(self, batch_id: str, **values: object) -> None:
        async with self.session.begin() as s:
            row = await s.get(BatchRow, batch_id)
            if row is not None:
                for key, value in values.items():
                    setattr(row, key, value)

    async def close_batch(self, batch_id: str, files: Sequence[FileRow], **values: object) -> None:
        """The output and error files and the batch's final state, together."""
        async with self.session.begin() as s:
            s.add_all(files)
            row = await s.get(BatchRow, batch_id)
            if row is not None:
                for key, value in values.items():
                    setattr(row, key, value)
