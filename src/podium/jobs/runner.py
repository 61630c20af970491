"""The job runner: the one owner of the queue (one per store: it runs with the controller, under the
leader lease when there are several). Each tick it

1. claims queued jobs per endpoint, as many as the endpoint's free slots allow while no synchronous
   request waits for one (sync first), and at least a few once the oldest job is `age_bound_s` old
   (jobs never starve), and runs each through a gateway (dispatch.py);
2. heartbeats its running jobs; a job no longer running under its lock was cancelled: its request is cut;
3. every few seconds: reloads the endpoints' job policies, recovers jobs whose runner died, expires
   results past retention, and runs the batch hooks (finalising batches);
4. delivers due webhooks.

Its `stats()` are the backlog per endpoint as `EndpointStats(queued=…)`: one more source for the
autoscaler, so queued jobs wake an endpoint at zero and drive scale-out like queued requests."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

from podium.core.stats import EndpointStats
from podium.jobs.dispatch import JobDispatcher, Retry
from podium.jobs.policy import JobPolicies, policy_of
from podium.jobs.repo import Backlog, JobRepo, Outcome
from podium.jobs.tables import FAILED, JobRow
from podium.jobs.tuning import JobsTuning
from podium.jobs.webhook import Webhooks
from podium.store.repos import Store

log = logging.getLogger("podium.jobs")
HOUSEKEEPING_S = 1.0  # recover, expire, finalise batches: while busy
IDLE_HOUSEKEEPING_S = 5.0  # and when nothing has been queued or run for RECENT_S
IDLE_TICK_S = 2.0  # the queue's poll when idle (a submit or cancel in this process wakes the runner at once)
RECENT_S = 5.0
WEBHOOK_POLL_S = 0.2
RETRY_BACKOFF_S = 0.5  # after a dispatch that did not reach a replica, the endpoint rests this long


class JobRunner:
    def __init__(
        self,
        store: Store,
        repo: JobRepo,
        policies: JobPolicies,
        dispatcher: JobDispatcher,
        *,
        tuning: JobsTuning,
        gateway_stats: Callable[[], Mapping[str, EndpointStats]],
        capacity: Callable[[str], int],
        hooks: Sequence[Callable[[], Awaitable[None]]] = (),
        pre_pass: Sequence[Callable[[], Awaitable[None]]] = (),
        wakeup: asyncio.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.repo, self.policies, self.dispatcher = store, repo, policies, dispatcher
        self.tuning = tuning
        self._gateway_stats, self._capacity, self._hooks = gateway_stats, capacity, list(hooks)
        self._pre_pass = list(pre_pass)  # refresh what gateway_stats/capacity read (split roles)
        self._clock, self._wall = clock, wall_clock
        self.webhooks = Webhooks(
            repo, attempts=tuning.webhook_attempts, backoff_s=tuning.webhook_backoff_s, wall_clock=wall_clock
        )
        self.lock = "run-" + secrets.token_hex(8)
        self._wakeup = wakeup or asyncio.Event()  # set by the intake on a submit in this process
        self._running: dict[str, tuple[str, asyncio.Task[None]]] = {}  # job id -> (endpoint id, task)
        self._delivering: dict[str, asyncio.Task[None]] = {}
        self._resting: dict[str, float] = {}  # endpoint id -> monotonic time it may be dispatched to again
        self._backlog: dict[str, Backlog] = {}
        self._outcomes: list[tuple[str, Outcome, float]] = []  # finished, not yet written (next pass)
        self._next_webhooks = 0.0

    def wake(self) -> None:
        """A job was submitted or cancelled in this process: look at the queue now."""
        self._wakeup.set()

    def stats(self) -> dict[str, EndpointStats]:
        """Queued jobs as demand, per endpoint (the autoscaler merges it with the gateways' stats)."""
        now = self._wall()
        return {
            eid: EndpointStats(queued=b.queued, oldest_wait_s=max(0.0, now - b.oldest_created_at), last_request_at=now)
            for eid, b in self._backlog.items()
            if b.queued
        }

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop` (or cancelled: the lease was lost). Running jobs are cut on the way out; their rows
        stay `running` under this lock, and the next runner's term recovers them."""
        self.lock = "run-" + secrets.token_hex(8)  # one per term: jobs cut when the last term ended are recovered
        await self._refresh_policies()
        recovered = await self.repo.recover(self.lock, self._wall(), None, self.policies.may_retry)
        if recovered:
            log.warning("jobs: %d job(s) were running when the last runner stopped: recovered", recovered)
        next_housekeeping = next_heartbeat = busy_until = self._next_webhooks = self._clock()
        try:
            while not stop.is_set():
                now = self._clock()
                if self._backlog or self._running or self._outcomes or self._delivering:
                    busy_until = now + RECENT_S
                busy = now < busy_until  # idle: poll the store about once a second, not 20 times
                if now >= next_housekeeping:
                    next_housekeeping = now + (HOUSEKEEPING_S if busy else IDLE_HOUSEKEEPING_S)
                    await self._guard(self._housekeeping())
                if now >= next_heartbeat:
                    next_heartbeat = now + self.tuning.heartbeat_s
                    await self._guard(self._heartbeat())
                await self._guard(self._flush())
                await self._guard(self._dispatch())
                if now >= self._next_webhooks:  # due deliveries: often while busy, with housekeeping when idle
                    self._next_webhooks = now + (WEBHOOK_POLL_S if busy else IDLE_HOUSEKEEPING_S)
                    await self._guard(self._webhooks())
                # a burst of submits or finishes is handled in one pass: a few writes per pass, not per
                # job, so the intake's INSERTs rarely wait for SQLite's write lock
                await asyncio.sleep(self.tuning.min_gap_s)
                self._wakeup.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self.tuning.tick_s if busy else IDLE_TICK_S)
        finally:
            await self._cancel_all()

    async def _guard(self, step: Awaitable[None]) -> None:
        """One step of a tick; a database hiccup is logged and retried next tick, never fatal."""
        try:
            await step
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("jobs: runner step failed (retried next tick)")

    async def _refresh_policies(self) -> None:
        rows = await self.store.list_endpoints()
        self.policies.replace({row.id: policy_of(row.spec_json) for row in rows})
        gone = set(self._backlog) - {row.id for row in rows if not row.deleting}
        for eid in gone:  # deleted: its queued jobs will never run
            await self.repo.fail_queued(eid, "the endpoint was deleted before the job ran", self._wall())

    async def _housekeeping(self) -> None:
        await self._refresh_policies()
        wall = self._wall()
        await self.repo.recover(self.lock, wall, wall - self.tuning.stale_after_s, self.policies.may_retry)
        await self.repo.expire(wall - self.tuning.retention_s)
        for hook in self._hooks:
            await hook()

    async def _heartbeat(self) -> None:
        ids = list(self._running)
        alive = await self.repo.heartbeat(ids, self.lock, self._wall())
        for job_id in ids:
            if job_id not in alive and job_id in self._running:
                self._running.pop(job_id)[1].cancel()  # cancelled (or taken over): cut its request

    def cancel_local(self, job_id: str) -> None:
        """The job was cancelled in the store by this process: cut its request now, not at the heartbeat."""
        entry = self._running.pop(job_id, None)
        if entry is not None:
            entry[1].cancel()
        self._next_webhooks = 0.0  # its webhook (if any) is due now
        self._wakeup.set()

    async def refresh_backlog(self) -> None:
        """Re-read the queued jobs per endpoint (what `stats` reports and `_dispatch` starts from)."""
        self._backlog = await self.repo.backlog()

    async def _dispatch(self) -> None:
        await self.refresh_backlog()
        if not self._backlog:
            return
        for refresh in self._pre_pass:  # split roles: the gateways' stats, the store's slots
            await self._guard(refresh())
        stats = self._gateway_stats()
        now, wall = self._clock(), self._wall()
        for eid, backlog in self._backlog.items():
            if self._resting.get(eid, 0.0) > now or eid not in stats:
                continue  # resting after a dispatch that got nowhere, or no route yet (a restart's first tick)
            allowance = self._allowance(eid, backlog, stats.get(eid), wall)
            if allowance > 0:
                for job in await self.repo.claim(eid, self.lock, wall, allowance):
                    self._start(job)

    def _allowance(self, eid: str, backlog: Backlog, stats: EndpointStats | None, wall: float) -> int:
        running = sum(1 for e, _ in self._running.values() if e == eid)
        return allowance(self._capacity(eid), running, stats, backlog, wall, self.tuning.age_bound_s)

    def _start(self, job: JobRow) -> None:
        task = asyncio.create_task(self._run_job(job))
        self._running[job.id] = (job.endpoint_id, task)
        task.add_done_callback(lambda _: self._done(job.id, task))

    def _done(self, job_id: str, task: asyncio.Task[None]) -> None:
        entry = self._running.get(job_id)
        if entry is not None and entry[1] is task:
            del self._running[job_id]
        self._wakeup.set()  # a slot is free: the next job may go

    async def _run_job(self, job: JobRow) -> None:
        try:
            outcome = await self.dispatcher.run(job)
        except Retry as exc:
            log.info("jobs: %s did not reach a replica (%s); queued again", job.id, exc)
            self._resting[job.endpoint_id] = self._clock() + RETRY_BACKOFF_S
            await self.repo.requeue(job.id, self.lock)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("jobs: %s failed in the runner", job.id)
            outcome = Outcome(FAILED, error=f"internal error running the job: {type(exc).__name__}")
        self._outcomes.append((job.id, outcome, self._wall()))

    async def _flush(self) -> None:
        """Write the outcomes of the jobs that finished since the last pass, in one transaction."""
        if self._outcomes:
            outcomes, self._outcomes = self._outcomes, []
            await self.repo.finish_many(self.lock, outcomes)

    async def _webhooks(self) -> None:
        for job in await self.repo.due_webhooks(self._wall()):
            if job.id in self._delivering:
                continue
            task = asyncio.create_task(self.webhooks.deliver(job))
            self._delivering[job.id] = task
            task.add_done_callback(self._delivered(job.id))

    def _delivered(self, job_id: str) -> Callable[[asyncio.Task[None]], None]:
        def forget(_: asyncio.Task[None]) -> None:
            self._delivering.pop(job_id, None)

        return forget

    async def _cancel_all(self) -> None:
        tasks = [t for _, t in self._running.values()] + list(self._delivering.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._running.clear()
        with contextlib.suppress(Exception):
            await self._flush()  # results already in hand are kept
        await self.dispatcher.close()
        await self.webhooks.close()


def allowance(
    capacity: int, running: int, stats: EndpointStats | None, backlog: Backlog, wall: float, age_bound_s: float
) -> int:
    """How many more of an endpoint's queued jobs to start now. Sync requests go first: while any waits
    for a slot (or no slot is free) no job starts, unless the oldest job has waited `age_bound_s`, then
    up to a quarter of the slots (at least one) run jobs. At zero replicas one job goes: the gateway
    holds it and wakes the endpoint (the backlog also counts as demand in `JobRunner.stats`)."""
    if capacity == 0:
        return 1 if running == 0 else 0
    sync_waiting = stats.queued if stats else 0
    in_flight = max(stats.in_flight if stats else 0, running)  # the gateway may not have seen ours yet
    free = capacity - in_flight
    if sync_waiting == 0 and free > 0:
        return min(free, backlog.queued)
    if wall - backlog.oldest_created_at >= age_bound_s:
        return max(0, max(1, capacity // 4) - running)
    return 0
