"""The controller's side of rollouts (issue 13): what the pure planner needs to know of the current
revision, and what follows from its plan — progress events, the end of a rollout, a failed rollout
rolled back, the "one at a time" note when no capacity is left for a surge replica.

Kept out of `loop.py`: the loop asks `inputs()` before planning and calls `after()` with the plan.
The revision row is read only when the endpoint's generation or row changed (cached by both), so an
endpoint at rest costs the tick no statement. docs/rollouts.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from podium.controller.launch import RecipeResolver, workload_of
from podium.controller.planner import EndpointInput, Plan, ReplicaInput
from podium.controller.replicas import ReplicaManager
from podium.controller.rollout_rules import CanaryStats, RolloutInput
from podium.core.errors import PodiumError, UnreadableSpec
from podium.core.specs import EndpointSpec, stored_spec
from podium.core.states import ReplicaState
from podium.services.revisions import replica_fields
from podium.store.repos import Store
from podium.store.revisions import CANARY, FAILED, IN_PROGRESS, RevisionRow
from podium.store.tables import EndpointRow, ReplicaRow

log = logging.getLogger("podium.controller")


# endpoint id -> {revision: (requests, 5xx, mean latency s)}: the gateways' counts, the in-process one's
# and the remote ones' summed (set by roles/processes.py). None: no canary error judging.
Outcomes = Callable[[str], dict[int, tuple[int, int, float]]]
SAVE_OUTCOMES_EVERY_S = 2.0  # a canary's counts are written to its revisions this often (shown side by side)


class Rollouts:
    def __init__(self, store: Store, clock: Callable[[], float], outcomes: Outcomes | None = None) -> None:
        self.store, self.clock = store, clock
        self.outcomes = outcomes
        self._saved_at: dict[str, float] = {}  # endpoint -> when its canary counts were last written
        self._rev: dict[str, tuple[int, float, RevisionRow | None]] = {}  # endpoint -> (generation, updated_at, row)
        self._since: dict[tuple[str, int], float] = {}  # (endpoint, revision) -> first tick that saw it rolling
        self._progress: dict[str, str] = {}  # endpoint -> the last progress written as an event
        self.no_surge: set[str] = set()  # endpoints rolling one at a time (no capacity for a surge replica)

    async def revision(self, row: EndpointRow) -> RevisionRow | None:
        cached = self._rev.get(row.id)
        if cached is None or cached[:2] != (row.generation, row.updated_at):
            cached = (row.generation, row.updated_at, await self.store.revisions.get(row.id, row.generation))
            self._rev[row.id] = cached
        return cached[2]

    async def plan_inputs(
        self,
        row: EndpointRow,
        spec: EndpointSpec,
        replicas: list[ReplicaRow],
        target: int,
        failed: bool,
        leaving: set[str],
    ) -> tuple[EndpointInput, list[ReplicaInput]]:
        """The planner's inputs. `leaving`: replicas draining already, before their DRAINING state is
        written (a rollout must not count them as serving, nor pick them again)."""
        rollout = await self.inputs(row, spec, replicas)
        ep = EndpointInput(
            row.id, spec.enabled, row.deleting, target, row.generation, failed, row.backoff_until,
            row.consecutive_failures, rollout,
        )  # fmt: skip
        states = {r.id: ReplicaState.DRAINING if r.id in leaving else ReplicaState(r.state) for r in replicas}
        return ep, [ReplicaInput(r.id, states[r.id], r.generation, r.created_at) for r in replicas]

    async def inputs(self, row: EndpointRow, spec: EndpointSpec, replicas: list[ReplicaRow]) -> RolloutInput:
        rolling = any(r.generation != row.generation for r in replicas)
        cached = self._rev.get(row.id)
        # read while rolling, or once per new revision (at zero replicas nothing rolls, yet it must end)
        rev = await self.revision(row) if rolling or cached is None or cached[0] != row.generation else cached[2]
        r = spec.rollout
        canary = rev is not None and rev.state == CANARY
        since = self._since.setdefault((row.id, row.generation), self.clock()) if rolling else self.clock()
        return RolloutInput(
            max_surge=r.max_surge,
            max_unavailable=r.max_unavailable,
            canary_percent=r.canary_percent if canary else 0.0,
            started_at=since,
            deadline_s=r.progress_deadline_s,
            max_failed_starts=r.max_failed_starts,
            no_surge=row.id in self.no_surge,
            canary=await self._canary(row) if canary else None,
            error_margin=r.canary_error_margin,
            min_requests=r.canary_min_requests,
        )

    async def _canary(self, row: EndpointRow) -> CanaryStats | None:
        """The canary's and the old revisions' counts; written to their revisions every few seconds."""
        if self.outcomes is None:
            return None
        counts = self.outcomes(row.id)
        now = self.clock()
        if counts and now - self._saved_at.get(row.id, 0.0) >= SAVE_OUTCOMES_EVERY_S:
            self._saved_at[row.id] = now
            for rev, (requests, errors, latency) in counts.items():
                await self.store.revisions.set(row.id, rev, requests=requests, errors=errors, latency_s=latency)
        new = counts.get(row.generation, (0, 0, 0.0))
        old = [v for k, v in counts.items() if k != row.generation]
        return CanaryStats(new[0], new[1], sum(v[0] for v in old), sum(v[1] for v in old))

    async def no_room(self, row: EndpointRow) -> None:
        """A start during a rollout found no capacity: go on one replica at a time, and say so once."""
        if row.id in self.no_surge:
            return
        self.no_surge.add(row.id)
        msg = f"no capacity for a surge replica: rolling to revision {row.generation} one replica at a time"
        await self.store.add_event(row.id, "rollout", msg)

    async def after(
        self, row: EndpointRow, spec: EndpointSpec, p: Plan, replicas: list[ReplicaRow], target: int
    ) -> bool:
        """Events and revision states that follow from a plan. True when the endpoint was rolled back
        (its row changed: the caller stops reconciling it this tick)."""
        if p.rollback_to is not None:
            return await self._roll_back(row, spec, p.rollback_to, p.reasons[0] if p.reasons else "rollout failed")
        if p.progress is not None:
            if self._progress.get(row.id) != p.progress:
                self._progress[row.id] = p.progress
                await self.store.add_event(row.id, "rollout", p.progress)
            return False
        rev = self._rev.get(row.id, (0, 0.0, None))[2]
        if rev is None or rev.number != row.generation or rev.state not in IN_PROGRESS:
            return False
        ready = sum(1 for r in replicas if r.state == ReplicaState.READY and r.generation == row.generation)
        old = any(r.generation != row.generation for r in replicas)
        if old or ready < target:
            return False
        await self.store.revisions.finish(row.id, row.generation)
        took = self.clock() - self._since.pop((row.id, row.generation), self.clock())
        msg = f"revision {row.generation} rolled out: {ready} replica(s) ready" + (f" in {took:.1f}s" if took else "")
        await self.store.add_event(row.id, "rollout_done", msg)
        self._rev.pop(row.id, None)
        self._progress.pop(row.id, None)
        self.no_surge.discard(row.id)
        return False

    async def _roll_back(self, row: EndpointRow, spec: EndpointSpec, to: int, why: str) -> bool:
        """Back to revision `to` (whose replicas still serve): its replica fields, the rest as it is now."""
        back = await self.store.revisions.get(row.id, to)
        if back is None:
            log.warning("endpoint %s: cannot roll back to revision %s: it is not recorded", row.id, to)
            return False
        try:
            spec_json = replica_fields(spec, stored_spec(back.spec_json)).model_dump_json()
        except (UnreadableSpec, ValueError) as exc:
            log.warning("endpoint %s: revision %s cannot be restored: %s", row.id, to, exc)
            return False
        reason = f"{why}; rolled back to revision {to}"
        if row.last_error:
            reason += f" (last error: {row.last_error[:500]})"
        done = await self.store.revisions.switch(
            row.id, row.generation, to, spec_json, (FAILED, reason), ("rollout_failed", reason)
        )
        if done:
            log.warning("endpoint %s: %s", row.id, reason)
            self._since.pop((row.id, row.generation), None)
            self._rev.pop(row.id, None)
            self._progress.pop(row.id, None)
            self.no_surge.discard(row.id)
        return done

    async def refill(
        self, row: EndpointRow, spec: EndpointSpec, p: Plan, replicas: ReplicaManager, catalog: RecipeResolver | None
    ) -> bool:
        """A canary holds and the old revision has fewer replicas than the target (one ended, or the
        target grew): start them from that revision's spec. False when it cannot be read."""
        back = None if p.stable is None else await self.store.revisions.get(row.id, p.stable)
        if back is None or p.stable is None:
            return False
        try:
            old = replica_fields(spec, stored_spec(back.spec_json))
            work = workload_of(old, row.routing_key, catalog)
        except (UnreadableSpec, PodiumError, ValueError) as exc:
            log.warning("endpoint %s: revision %s cannot be started again: %s", row.id, p.stable, exc)
            return False
        return await replicas.start(row, old, work, p.start_stable, generation=p.stable) > 0

    def split(self, row: EndpointRow, spec: EndpointSpec) -> tuple[int, float] | None:
        """(revision, percent of requests) while the current revision is a canary not yet promoted."""
        rev = self._rev.get(row.id, (0, 0.0, None))[2]
        if rev is None or rev.state != CANARY or rev.number != row.generation:
            return None
        return row.generation, spec.rollout.canary_percent

    def forget(self, endpoint_id: str) -> None:
        self._rev.pop(endpoint_id, None)
        self._progress.pop(endpoint_id, None)
        self.no_surge.discard(endpoint_id)
