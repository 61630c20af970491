"""Queued jobs are demand: the runner reports each endpoint's backlog in the autoscaler's own shape,
so an endpoint at zero is woken (cold-start rule: queued > 0) and a backlog drives scale-out."""

from __future__ import annotations

from pathlib import Path

from podium.jobs.dispatch import Dispatcher
from podium.jobs.policy import JobPolicies
from podium.jobs.repo import JobRepo
from podium.jobs.runner import JobRunner
from podium.jobs.tuning import JobsTuning
from podium.store.db import migrate, sqlite_url
from podium.store.repos import Store
from tests.jobs.test_repo import job


async def test_backlog_is_reported_as_queued_demand(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    migrate(url)
    store = Store(url)
    try:
        repo = JobRepo(store.session)
        runner = JobRunner(
            store,
            repo,
            JobPolicies(10),
            Dispatcher(lambda: None, "admin"),
            tuning=JobsTuning(),
            gateway_stats=dict,
            capacity=lambda _: 0,
            wall_clock=lambda: 130.0,
        )
        for at in (100.0, 110.0, 120.0):
            await repo.submit(job("ep-a", at=at), bound=10)
        await repo.submit(job("ep-b", at=125.0), bound=10)
        await repo.claim("ep-b", "run-x", 126.0)  # running: no longer demand from the queue
        await runner.refresh_backlog()
        stats = runner.stats()
        assert set(stats) == {"ep-a"}
        assert stats["ep-a"].queued == 3 and stats["ep-a"].oldest_wait_s == 30.0
        assert stats["ep-a"].last_request_at == 130.0  # busy: no idle timeout while jobs wait
    finally:
        await store.close()
