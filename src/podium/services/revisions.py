"""Recording revisions: a numbered snapshot each time what replicas run changes (issue 13).

`EndpointService` calls `record_revision` on create and on a PATCH that needs a rollout; the number
becomes the endpoint's `generation`, which new replicas carry. Kept apart from `services/endpoints.py`
(which imports this module) so the read side, `services/rollouts.py`, may import both.
"""

from __future__ import annotations

import time
from typing import Any

from podium.core.specs import EndpointSpec
from podium.store.repos import Store
from podium.store.revisions import CANARY, ROLLING, RevisionRow
from podium.store.tables import EndpointRow

# Fields that only change what the control plane, gateway or autoscaler do: editing them makes no new
# revision and restarts no replica (renaming a dedicated endpoint must not reload a 70B model), and a
# rollback leaves them as they are.
NO_REVISION = frozenset({"name", "description", "enabled", "scaling", "auth", "rollout", "jobs", "routing"})

# Nested blocks whose changed keys are named one by one ("container.image", "compute.gpu_count").
_DETAILED = {"container", "compute", "template"}


def changed_fields(
    before: EndpointSpec | None, after: EndpointSpec, exclude: frozenset[str] = NO_REVISION
) -> list[str]:
    """The replica-affecting fields that differ, as dotted names (never their values: env may hold tokens)."""
    if before is None:
        return []
    b, a = before.model_dump(exclude=set(exclude)), after.model_dump(exclude=set(exclude))
    out: list[str] = []
    for key in sorted(a.keys() | b.keys()):
        old, new = b.get(key), a.get(key)
        if old == new:
            continue
        if key in _DETAILED and isinstance(old, dict) and isinstance(new, dict):
            out += [f"{key}.{k}" for k in sorted(old.keys() | new.keys()) if old.get(k) != new.get(k)]
        else:
            out.append(key)
    return out


async def next_number(store: Store, endpoint_id: str, generation: int) -> int:
    """Numbers only grow, also after a rollback re-targeted an older one (the generation went down)."""
    return max(await store.revisions.latest_number(endpoint_id), generation) + 1


async def record_revision(
    store: Store, endpoint_id: str, number: int, after: EndpointSpec, changes: list[str], first: bool = False
) -> None:
    """Written before the endpoint row points at it (crash safety: a number is never reused). The first
    revision is a plain start; later ones roll with the spec's strategy, a canary waiting for promote."""
    now = time.time()
    strategy = after.rollout.strategy.value
    state = CANARY if strategy == "canary" and not first else ROLLING
    row = RevisionRow(
        endpoint_id=endpoint_id,
        number=number,
        spec_json=after.model_dump_json(),
        changes=",".join(changes) if changes else ("created" if first else ""),
        strategy=strategy,
        state=state,
        reason="",
        created_at=now,
        rolled_at=now,
        finished_at=None,
    )
    await store.revisions.add(row)


async def roll_same_spec(store: Store, row: EndpointRow, spec: EndpointSpec, changes: list[str], why: str) -> int:
    """A new revision of an unchanged spec: what its replicas run changed outside it (a secret's new
    version, an adapter of its base model registered or deleted), so they roll to it surge-first like
    after any PATCH. Returns the revision's number (the endpoint's new generation)."""
    number = await next_number(store, row.id, row.generation)
    await record_revision(store, row.id, number, spec, changes)
    await store.update_endpoint(
        row.id,
        generation=number,
        consecutive_failures=0,
        backoff_until=0.0,
        event=("updated", f"{why}: revision {number} rolls"),
    )
    return number


def replica_fields(target: EndpointSpec, source: EndpointSpec) -> EndpointSpec:
    """`target` with every replica-affecting field taken from `source` (a rollback): name, scaling,
    auth and the rollout settings stay as they are now."""
    data: dict[str, Any] = target.model_dump()
    data.update(source.model_dump(exclude=set(NO_REVISION)))
    return EndpointSpec.model_validate(data)
