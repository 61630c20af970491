"""Failure bookkeeping: what the controller records when replicas fail, recover, or the runtime is away.

Split from the loop (controller/loop.py) because it is one concept with its own rules: a crash counts
towards the endpoint's crash loop only until a replica proves stable; each failure backs the next
start off; an endpoint whose latest start failed fails requests at once instead of holding them; and
a runtime outage is written on every endpoint once per distinct reason, not once per retry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from podium.controller.planner import backoff_delay
from podium.controller.replicas import ReplicaManager
from podium.core.states import ReplicaState
from podium.settings import ControllerTuning
from podium.store.repos import Store
from podium.store.tables import EndpointRow, ReplicaRow

log = logging.getLogger("podium.controller")


class FailureBook:
    """The observer's callbacks (ready, stable, failed) and the failure facts the tick reads."""

    def __init__(
        self,
        store: Store,
        tuning: ControllerTuning,
        clock: Callable[[], float],
        replicas: ReplicaManager,
        hint: Callable[[str | None], None],
    ) -> None:
        self.store, self.tuning, self.clock, self.replicas, self.hint = store, tuning, clock, replicas, hint

    async def start_failure(
        self, row: EndpointRow, live: list[ReplicaRow], failed: bool
    ) -> tuple[str | None, float | None]:
        """Why requests to an endpoint with no ready replica should fail now rather than be held: it has
        failed (the controller gave up), or its latest start failed and no other is under way (a bad
        command or a missing image fails the same way next time). (None, None) when holding may help.
        The second value is the wall-clock time of the next try, for the gateway's Retry-After."""
        if row.consecutive_failures == 0 or not row.last_error:
            return None, None
        if failed:
            return f"failed after {row.consecutive_failures} failed starts: {row.last_error}", None
        if live:
            return None, None  # a start is under way: it may succeed
        history = await self.store.replicas_of([row.id], include_ended=True)
        latest = history[-1] if history else None  # ordered by created_at
        if latest is None or latest.state != ReplicaState.FAILED or latest.ready_at is not None:
            return None, None  # it crashed after serving: its replacement is worth waiting for
        return f"its latest start failed, retrying: {row.last_error}", row.backoff_until  # fixed: no republish per tick

    async def on_ready(self, replica: ReplicaRow, took_s: float) -> None:
        # The crash count stays until the replica proves stable (on_stable): one that dies on its
        # first request must add up to a crash loop, not restart forever looking `serving`.
        await self.store.update_endpoint(replica.endpoint_id, backoff_until=0.0, last_error=None)
        self.hint(replica.endpoint_id)

    async def on_stable(self, replica: ReplicaRow) -> None:
        row = await self.store.get_endpoint(replica.endpoint_id)
        if row is not None and row.consecutive_failures:
            await self.store.update_endpoint(row.id, consecutive_failures=0)

    async def on_failed(self, replica: ReplicaRow, reason: str, counts_as_crash: bool) -> None:
        self.replicas.release(replica)
        row = await self.store.get_endpoint(replica.endpoint_id)
        if row is None:
            return
        failures = row.consecutive_failures + (1 if counts_as_crash else 0)
        delay = backoff_delay(failures, self.tuning.backoff_base_s, self.tuning.backoff_max_s)
        await self.store.update_endpoint(
            row.id, consecutive_failures=failures, backoff_until=self.clock() + delay, last_error=reason
        )
        if failures >= self.tuning.max_failures:
            what = "crash loop" if replica.ready_at is not None else "failed starts"
            await self.store.add_event(row.id, "failed", f"giving up after {failures} in a row ({what}): {reason}")
        self.hint(row.id)

    async def runtime_down(self, reason: str, before: str | None) -> str:
        """The runtime is unreachable: one log line per outage (not per try); the reason as last_error
        and an event on every endpoint, once per distinct reason. Returns the reason to remember."""
        if before is None:
            log.warning("runtime unreachable, retrying with backoff: %s", reason)
        for row in await self.store.list_endpoints():
            if row.last_error != reason:
                await self.store.update_endpoint(
                    row.id, last_error=reason, updated_at=row.updated_at, event=("runtime_unavailable", reason)
                )
        return reason

    async def runtime_back(self, reason: str, still_down: Callable[[EndpointRow], bool]) -> None:
        """The runtime answers again: clear the outage's error, except on endpoints whose region is
        still down (`still_down`: theirs stays until that region is back)."""
        log.warning("runtime reachable again")
        for row in await self.store.list_endpoints():
            if row.last_error == reason and not still_down(row):
                back = ("runtime_available", "runtime reachable again")
                await self.store.update_endpoint(row.id, last_error=None, updated_at=row.updated_at, event=back)
