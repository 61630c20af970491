"""The queue's SQL on a real SQLite store: claim once, finish only under the lock, cancel, recovery after
a crash (retried once when the endpoint allows it, else failed saying why; never run a third time),
retention, the per-endpoint bound."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from podium.jobs.intake import new_job_id
from podium.jobs.repo import JobRepo, Outcome, QueueFull
from podium.jobs.tables import CANCELLED, EXPIRED, FAILED, QUEUED, RUNNING, SUCCEEDED, JobRow
from podium.store.db import migrate, sqlite_url
from podium.store.repos import Store


@pytest.fixture
async def repo(tmp_path: Path) -> AsyncIterator[JobRepo]:
    url = sqlite_url(tmp_path)
    migrate(url)
    store = Store(url)
    try:
        yield JobRepo(store.session)
    finally:
        await store.close()


def job(endpoint: str = "ep-a", at: float = 100.0, webhook: str | None = None) -> JobRow:
    return JobRow(
        id=new_job_id(),
        endpoint_id=endpoint,
        token_sha256="t" * 64,
        method="POST",
        path="/v1/chat/completions",
        content_type="application/json",
        body=b"{}",
        status=QUEUED,
        attempts=0,
        created_at=at,
        webhook_url=webhook,
        webhook_attempts="[]",
    )


async def test_claimed_once_oldest_first_and_finished_only_under_its_lock(repo: JobRepo) -> None:
    first, second = job(at=1.0), job(at=2.0)
    await repo.submit(second, bound=10)
    await repo.submit(first, bound=10)
    [claimed] = await repo.claim("ep-a", "run-1", now=5.0)
    assert claimed.id == first.id and claimed.status == RUNNING and claimed.attempts == 1
    assert [j.id for j in await repo.claim("ep-a", "run-2", now=5.0, n=5)] == [second.id]
    assert await repo.claim("ep-a", "run-1", now=5.0) == []
    assert not await repo.finish(first.id, "run-2", Outcome(SUCCEEDED, 200, "application/json", b"{}"), 6.0)
    assert await repo.finish(first.id, "run-1", Outcome(SUCCEEDED, 200, "application/json", b"{}"), 6.0)
    done = await repo.get(first.id)
    assert done is not None and done.status == SUCCEEDED and done.finished_at == 6.0 and done.lock is None


async def test_bound_on_queued_jobs(repo: JobRepo) -> None:
    await repo.submit(job(), bound=2)
    await repo.submit(job(), bound=2)
    with pytest.raises(QueueFull):
        await repo.submit(job(), bound=2)
    await repo.submit(job("ep-b"), bound=2)  # per endpoint
    assert {e: b.queued for e, b in (await repo.backlog()).items()} == {"ep-a": 2, "ep-b": 1}


async def test_cancel_queued_and_running_and_the_runner_sees_it(repo: JobRepo) -> None:
    queued, running = job(webhook="http://127.0.0.1:9/hook"), job(at=50.0)
    await repo.submit(queued, bound=10)
    await repo.submit(running, bound=10)
    assert [j.id for j in await repo.claim("ep-a", "run-1", 60.0)] == [running.id]
    assert (await repo.cancel(queued.id, 61.0)).status == CANCELLED  # type: ignore[union-attr]
    assert await repo.heartbeat([running.id], "run-1", 61.0) == {running.id}
    await repo.cancel(running.id, 62.0)
    assert await repo.heartbeat([running.id], "run-1", 63.0) == set()  # the runner cuts its request
    assert not await repo.finish(running.id, "run-1", Outcome(SUCCEEDED, 200), 64.0)  # stays cancelled
    assert await repo.claim("ep-a", "run-1", 65.0) == []  # a cancelled queued job never starts
    assert [j.id for j in await repo.due_webhooks(100.0)] == [queued.id]


async def test_recovery_retries_once_when_allowed_else_fails_with_the_reason(repo: JobRepo) -> None:
    retried, failed = job("ep-retry"), job("ep-once")
    for row in (retried, failed):
        await repo.submit(row, bound=10)
        await repo.claim(row.endpoint_id, "dead-runner", 10.0)
    assert await repo.recover("run-2", 20.0, None, lambda eid: eid == "ep-retry") == 2
    again = await repo.get(retried.id)
    assert again is not None and again.status == QUEUED
    gone = await repo.get(failed.id)
    assert gone is not None and gone.status == FAILED and "jobs.retry_running" in (gone.error or "")
    # the retried job is interrupted a second time: it is not run a third time
    await repo.claim("ep-retry", "run-2", 30.0)
    assert await repo.recover("run-3", 40.0, None, lambda eid: True) == 1
    twice = await repo.get(retried.id)
    assert twice is not None and twice.status == FAILED and twice.attempts == 2
    assert "already been retried once" in (twice.error or "")


async def test_stale_recovery_spares_a_live_runner(repo: JobRepo) -> None:
    row = job()
    await repo.submit(row, bound=10)
    await repo.claim("ep-a", "run-1", 100.0)
    assert await repo.recover("run-2", 105.0, 95.0, lambda _: False) == 0  # heartbeat at 100 is fresh
    assert await repo.recover("run-2", 115.0, 105.0, lambda _: False) == 1


async def test_results_expire_after_retention(repo: JobRepo) -> None:
    row = job()
    await repo.submit(row, bound=10)
    await repo.claim("ep-a", "run-1", 1.0)
    await repo.finish(row.id, "run-1", Outcome(SUCCEEDED, 200, "application/json", b'{"a": 1}'), 2.0)
    assert await repo.expire(finished_before=1.5) == 0
    assert await repo.expire(finished_before=3.0) == 1
    gone = await repo.get(row.id)
    assert gone is not None and gone.status == EXPIRED and gone.response_body is None


async def test_fast_sqlite_insert_and_its_fallback_when_the_database_is_busy(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    migrate(url)
    store = Store(url)
    try:
        repo = JobRepo(store.session, tmp_path / "podium.db")
        fast = job()
        await repo.submit(fast, bound=2)
        assert (await repo.get(fast.id)) is not None  # visible to the async connections at once
        async with store.engine.begin() as conn:  # another connection holds the write lock
            await conn.execute(text("UPDATE jobs SET attempts = 0"))
            assert repo._fast is not None and repo._fast.insert(job(), 2) is None  # busy: never waits
        await repo.submit(job(), bound=2)
        with pytest.raises(QueueFull):
            await repo.submit(job(), bound=2)
        assert (await repo.backlog())["ep-a"].queued == 2
    finally:
        await store.close()
