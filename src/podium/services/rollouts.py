"""Revisions as users see them, rollback and promote (issue 13).

Rollback and promote write desired state only, like every service: rollback points the endpoint
at an earlier revision (its replica fields restored, the rest as it is now) and the controller rolls
to it surge-first, the same way as any change; promote lets a held canary roll on. docs/rollouts.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from podium.core.errors import Conflict, NotFound, UnreadableSpec
from podium.core.specs import stored_spec
from podium.core.states import ReplicaState
from podium.services.endpoints import EndpointRecord, EndpointService, readable
from podium.services.references import secret_refs, selector_ref
from podium.services.revisions import next_number, record_revision, replica_fields
from podium.store.revisions import CANARY, FAILED, RETIRED, ROLLING, RevisionRow


@dataclass(frozen=True)
class RevisionView:
    row: RevisionRow
    current: bool  # the endpoint's revision: what new replicas run
    replicas: int  # live replicas running it
    ready: int


class RolloutService:
    """Built per request over the endpoint service (it holds no state of its own)."""

    def __init__(self, endpoints: EndpointService) -> None:
        self.endpoints, self.store = endpoints, endpoints.store

    async def revisions(self, key: str) -> tuple[EndpointRecord, list[RevisionView]]:
        rec = await self.endpoints.get(key)
        rows = await self.store.revisions.of(rec.row.id)
        views = []
        for r in reversed(rows):  # newest first
            mine = [x for x in rec.replicas if x.generation == r.number]
            ready = sum(1 for x in mine if x.state == ReplicaState.READY)
            views.append(RevisionView(r, r.number == rec.row.generation, len(mine), ready))
        return rec, views

    async def rollback(self, key: str, number: int | None) -> EndpointRecord:
        """To revision `number` (default: the latest earlier one that did not fail), rolled surge-first."""
        rec = await self.endpoints.get(key)
        if rec.row.deleting:
            raise Conflict(f"endpoint {key} is being deleted")
        if rec.problem:
            raise Conflict(f"endpoint {key}: {rec.problem}; PATCH a whole spec to repair it, or delete it")
        current = rec.row.generation
        rows = await self.store.revisions.of(rec.row.id)
        if number is None:
            earlier = [r for r in rows if r.number < current and r.state != FAILED]
            if not earlier:
                raise Conflict(f"endpoint {key} has no earlier revision to roll back to (it is on {current})")
            target = earlier[-1]
        else:
            found = [r for r in rows if r.number == number]
            if not found:
                known = ", ".join(str(r.number) for r in rows) or "none"
                raise NotFound(
                    f"revision {number} of endpoint {key} not found (revisions: {known})", {"field": "revision"}
                )
            target = found[0]
            if number == current:
                raise Conflict(f"endpoint {key} is on revision {number} already", {"field": "revision"})
        try:
            spec = replica_fields(rec.spec, stored_spec(target.spec_json))
        except UnreadableSpec as exc:
            raise Conflict(f"revision {target.number} cannot be restored: {exc.message}") from exc
        self.endpoints.validate_source(spec)
        why = f"rolled back to revision {target.number} by the user"
        event = ("rollback", f"rolling back from revision {current} to revision {target.number}")
        if not await self.store.revisions.switch(
            rec.row.id, current, target.number, spec.model_dump_json(), (RETIRED, why), event
        ):
            raise Conflict(f"endpoint {key} changed meanwhile; try again")
        self.endpoints.hint(rec.row.id)
        return await self.endpoints.get(rec.row.id)

    async def roll_secret(self, secret_id: str, secret_name: str, version: int) -> list[str]:
        """A secret's new version is a new revision of every endpoint whose replicas read it unpinned
        (env secrets, registry credentials), so they roll to it like any change (tokens that follow a
        secret rotate without a rollout: `EndpointService.refresh_secret_tokens`). The endpoints rolled."""
        rolled = []
        for row, spec in readable(await self.store.list_endpoints()):
            fields = [
                field
                for field, selector, _ in secret_refs(spec)
                if not field.startswith("auth.")
                and selector_ref(selector) in (secret_id, secret_name)
                and "@" not in selector.partition(":")[0]
            ]
            if row.deleting or not fields:
                continue
            number = await next_number(self.store, row.id, row.generation)
            await record_revision(self.store, row.id, number, spec, [f"{f} ({secret_name} v{version})" for f in fields])
            await self.store.update_endpoint(
                row.id,
                generation=number,
                consecutive_failures=0,
                backoff_until=0.0,
                event=("updated", f"secret {secret_name!r} has version {version}: revision {number} rolls"),
            )
            self.endpoints.hint(row.id)
            rolled.append(row.id)
        return rolled

    async def promote(self, key: str) -> EndpointRecord:
        """A canary waiting for promote rolls on to every replica."""
        rec = await self.endpoints.get(key)
        rev = await self.store.revisions.get(rec.row.id, rec.row.generation)
        if rev is None or rev.state != CANARY:
            state = rev.state if rev is not None else "unknown"
            raise Conflict(
                f"revision {rec.row.generation} of endpoint {key} is not a canary waiting for promote ({state})"
            )
        await self.store.revisions.set(rec.row.id, rev.number, state=ROLLING, reason="canary promoted")
        # the event (and updated_at) tells the controller to read the revision again
        await self.store.update_endpoint(rec.row.id, event=("promoted", f"canary revision {rev.number} promoted"))
        self.endpoints.hint(rec.row.id)
        return await self.endpoints.get(rec.row.id)
