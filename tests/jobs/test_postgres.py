"""The queue on PostgreSQL: the jobs migration applies, runners racing for one endpoint's queue on
separate connections each get disjoint jobs (every job claimed exactly once), and a batch is finalised,
expired and purged with the same SQL. Skipped where no PostgreSQL server binaries are installed (CI
installs them)."""

from __future__ import annotations

import asyncio
import json

import pytest

from podium.jobs.repo import JobRepo, Outcome
from podium.jobs.tables import SUCCEEDED
from podium.store.db import migrate
from podium.store.repos import Store
from tests.conftest import free_port
from tests.jobs.test_batch import Clock, make, request
from tests.jobs.test_repo import job
from tests.store.postgres import pg_bin, postgres_server

pytestmark = pytest.mark.skipif(pg_bin() is None, reason="no PostgreSQL server binaries (initdb) here")


async def test_racing_runners_claim_each_job_once() -> None:
    with postgres_server(free_port()) as url:
        migrate(url)
        stores = [Store(url) for _ in range(4)]
        try:
            repos = [JobRepo(s.session) for s in stores]
            for i in range(40):
                await repos[0].submit(job(at=float(i)), bound=1000)

            async def drain(repo: JobRepo, lock: str) -> list[str]:
                got: list[str] = []
                while batch := await repo.claim("ep-a", lock, 1.0, n=3):
                    got += [j.id for j in batch]
                    for j in batch:
                        assert await repo.finish(j.id, lock, Outcome(SUCCEEDED, 200, "text/plain", b"ok"), 2.0)
                return got

            claimed = await asyncio.gather(*(drain(r, f"run-{i}") for i, r in enumerate(repos)))
            every = [jid for ids in claimed for jid in ids]
            assert len(every) == 40 and len(set(every)) == 40
            assert await repos[0].backlog() == {}
        finally:
            for s in stores:
                await s.close()


async def test_a_batch_on_postgres_is_finalised_expired_and_purged() -> None:
    with postgres_server(free_port()) as url:
        migrate(url)
        store = Store(url)
        try:
            clock = Clock()
            batches, jobs, repo, batch_id = await make(store, clock, [request("a"), b"oops", request("b")])
            [first] = await jobs.claim("ep-a", "run-1", clock.now)
            await jobs.finish(first.id, "run-1", Outcome(SUCCEEDED, 200, "application/json", b"{}"), clock.now)
            clock.now += 24 * 3600  # the window ends with "b" still queued
            await batches.finalize_due()
            done = await repo.get_batch(batch_id)
            assert done is not None and done.status == "expired" and done.output_file_id and done.error_file_id
            errors = await repo.get_file(done.error_file_id)
            assert errors is not None
            codes = sorted(json.loads(x)["error"]["code"] for x in errors.content.splitlines())
            assert codes == ["batch_expired", "invalid_json"]
            await batches.purge(finished_before=clock.now + 1)
            assert await jobs.of_batch(batch_id) == []
        finally:
            await store.close()
