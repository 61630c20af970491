"""Rollouts through the controller (issue 13): a real SQLite store, fake runtime/prober/gateway/clock.
The rules themselves are tabled in test_planner.py; here: what the controller writes and publishes."""

from __future__ import annotations

import json

import pytest

from podium.core.specs import ContainerSource, EndpointSpec, Rollout, Scaling
from podium.roles.codec import route_from_json, route_to_json
from podium.roles.routebook import RouteBook, merged_outcomes
from podium.store.revisions import ACTIVE, CANARY, FAILED
from tests.controller.test_controller import World


async def _two(world: World, **rollout: object) -> str:
    spec = EndpointSpec(
        name="ep",
        container=ContainerSource(command="server v1"),
        scaling=Scaling(min_replicas=2, max_replicas=2),
        rollout=Rollout(**rollout),  # type: ignore[arg-type]
    )
    ep = (await world.endpoints.create(spec, "container")).record.row.id
    await world.settle(3)
    assert await world.states(ep) == ["ready", "ready"]
    return ep


async def _patch(world: World, ep: str, command: str) -> None:
    spec = (await world.endpoints.get(ep)).spec
    await world.endpoints.update(ep, spec.model_copy(update={"container": ContainerSource(command=command)}))


async def _by_revision(world: World, ep: str) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for r in await world.store.live_replicas(ep):
        out.setdefault(r.generation, []).append(r.state)
    return {k: sorted(v) for k, v in out.items()}


async def test_rolling_update_is_surge_first_and_ends_active(world: World) -> None:
    ep = await _two(world)
    world.prober.all_healthy = False  # new replicas boot but are not ready yet
    world.prober.healthy_addresses = {r.address or "" for r in await world.store.live_replicas(ep)}
    await _patch(world, ep, "server v2")
    await world.settle(2)
    assert await _by_revision(world, ep) == {1: ["ready", "ready"], 2: ["starting"]}  # one surge replica only
    assert len(world.gateway.routes[ep].replicas) == 2  # both old ones still serve
    world.prober.all_healthy = True
    for _ in range(10):
        await world.settle(1)
        if await _by_revision(world, ep) == {2: ["ready", "ready"]}:
            break
    assert await _by_revision(world, ep) == {2: ["ready", "ready"]}
    await world.settle(1)  # the tick after the last old replica stopped ends the rollout
    revs = await world.store.revisions.of(ep)
    assert [(r.number, r.state) for r in revs] == [(1, "retired"), (2, ACTIVE)]
    assert revs[1].changes == "container.command"
    kinds = [e.kind for e in await world.store.events(ep)]
    assert "rollout" in kinds and "rollout_done" in kinds
    assert {r.revision for r in world.gateway.routes[ep].replicas} == {2}


async def test_scaling_change_makes_no_revision(world: World) -> None:
    ep = await _two(world)
    spec = (await world.endpoints.get(ep)).spec
    await world.endpoints.update(ep, spec.model_copy(update={"scaling": Scaling(min_replicas=2, max_replicas=3)}))
    await world.settle(2)
    assert await _by_revision(world, ep) == {1: ["ready", "ready"]}
    assert [r.number for r in await world.store.revisions.of(ep)] == [1]


async def test_failed_rollout_rolls_back_and_old_replicas_keep_serving(world: World) -> None:
    ep = await _two(world, max_failed_starts=2)
    old = {r.id for r in await world.store.live_replicas(ep)}
    await _patch(world, ep, "server broken")
    for _ in range(6):
        await world.settle(1)
        for r in await world.store.live_replicas(ep):
            if r.generation == 2 and r.id in world.runtime.replicas:
                world.runtime.exit(r.id)  # the new revision crashes at start
        world.clock.now += 120  # past any backoff
    await world.settle(3)
    row = await world.store.get_endpoint(ep)
    assert row is not None and row.generation == 1 and row.state == "serving"
    assert {r.id for r in await world.store.live_replicas(ep)} == old
    assert "server v1" in row.spec_json and "rolled back to revision 1" in (row.last_error or "")
    revs = {r.number: r for r in await world.store.revisions.of(ep)}
    assert revs[2].state == FAILED and "2 failed starts" in revs[2].reason
    assert "rollout_failed" in [e.kind for e in await world.store.events(ep)]


async def test_canary_holds_and_routes_a_share(world: World) -> None:
    ep = await _two(world, strategy="canary", canary_percent=30)
    await _patch(world, ep, "server v2")
    await world.settle(4)
    assert await _by_revision(world, ep) == {1: ["ready", "ready"], 2: ["ready"]}
    route = world.gateway.routes[ep]
    assert (route.canary_revision, route.canary_percent) == (2, 30)
    assert sorted(r.revision for r in route.replicas) == [1, 1, 2]
    assert (await world.store.revisions.get(ep, 2)).state == CANARY  # type: ignore[union-attr]


async def test_no_gpu_for_a_surge_replica_rolls_one_at_a_time(world: World) -> None:
    spec = EndpointSpec(
        name="gpu",
        container=ContainerSource(command="server v1"),
        scaling=Scaling(min_replicas=2, max_replicas=2),
        compute={"gpu_type": "h100", "gpu_count": 1},  # type: ignore[arg-type]
    )
    ep = (await world.endpoints.create(spec, "container")).record.row.id
    await world.settle(3)
    assert await world.states(ep) == ["ready", "ready"]  # both GPUs of the pool are taken
    current = (await world.endpoints.get(ep)).spec
    await world.endpoints.update(
        ep,
        current.model_copy(
            update={
                "compute": current.compute.model_copy(update={"gpu_count": 1}),
                "container": ContainerSource(command="server v2"),
            }
        ),
    )
    seen_ready = []
    for _ in range(20):
        await world.settle(1)
        reps = await world.store.live_replicas(ep)
        seen_ready.append(sum(1 for r in reps if r.state == "ready"))
        if await _by_revision(world, ep) == {2: ["ready", "ready"]}:
            break
    assert await _by_revision(world, ep) == {2: ["ready", "ready"]}
    assert min(seen_ready) >= 1  # one at a time: never both down
    notes = [e.message for e in await world.store.events(ep) if e.kind == "rollout"]
    assert any("one replica at a time" in m for m in notes), notes


async def test_at_zero_the_new_revision_just_starts_and_is_active(world: World) -> None:
    ep = await world.create(min_replicas=0)
    await world.settle(2)
    assert await world.states(ep) == []
    await _patch(world, ep, "server v2")
    await world.settle(2)
    assert (await world.store.revisions.get(ep, 2)).state == ACTIVE  # type: ignore[union-attr]
    await world.store.update_endpoint(ep, desired_replicas=1)  # a request woke it
    await world.settle(3)
    assert await _by_revision(world, ep) == {2: ["ready"]}


async def test_a_canary_worse_than_the_old_revision_rolls_back(world: World) -> None:
    ep = await _two(world, strategy="canary", canary_percent=50)
    counts = {1: (0, 0, 0.0)}
    world.controller.rollouts.outcomes = lambda _eid: dict(counts)
    await _patch(world, ep, "server v2")
    await world.settle(3)
    assert await _by_revision(world, ep) == {1: ["ready", "ready"], 2: ["ready"]}  # the canary holds
    counts.update({1: (200, 2, 0.02), 2: (100, 30, 0.05)})  # 30% errors against 1%
    world.clock.now += 5  # past the 2 s between saves of the counts
    await world.settle(3)
    row = await world.store.get_endpoint(ep)
    assert row is not None and row.generation == 1 and "canary error rate 30.0% vs 1.0%" in (row.last_error or "")
    revs = {r.number: r for r in await world.store.revisions.of(ep)}
    assert revs[2].state == FAILED and (revs[2].requests, revs[2].errors) == (100, 30)  # shown side by side
    assert (revs[1].requests, revs[1].errors) == (200, 2)
    await world.settle(3)
    assert await _by_revision(world, ep) == {1: ["ready", "ready"]}


async def test_a_canary_route_crosses_to_remote_gateways_intact(world: World) -> None:
    ep = await _two(world, strategy="canary", canary_percent=25)
    await _patch(world, ep, "server v2")
    await world.settle(3)
    route = world.gateway.routes[ep]
    assert route.canary_revision == 2 and {r.revision for r in route.replicas} == {1, 2}
    assert route_from_json(json.loads(json.dumps(route_to_json(route)))) == route  # roles/codec.py


def test_remote_gateways_counts_are_summed_for_the_canary_judge() -> None:
    book = RouteBook("admin", primed=True)
    for url, counts in (("http://gw1", {1: (10, 1, 0.1)}), ("http://gw2", {1: (30, 0, 0.2), 2: (5, 5, 1.0)})):
        book.register(url)
        book._gateways[url].revisions = json.loads(json.dumps({"ep-1": counts}))  # as fetched with its stats
    summed = book.revision_outcomes("ep-1")
    assert summed[1][:2] == (40, 1) and summed[1][2] == pytest.approx(0.175) and summed[2] == (5, 5, 1.0)
    assert merged_outcomes([summed, {2: (5, 0, 0.0)}])[2] == (10, 5, 0.5)  # plus the in-process gateway's
    assert book.revision_outcomes("ep-other") == {}


async def test_a_canarys_old_revision_is_kept_at_the_target(world: World) -> None:
    ep = await _two(world, strategy="canary", canary_percent=50)
    await _patch(world, ep, "server v2")
    await world.settle(3)
    assert await _by_revision(world, ep) == {1: ["ready", "ready"], 2: ["ready"]}
    old = next(r for r in await world.store.live_replicas(ep) if r.generation == 1)
    world.runtime.exit(old.id)  # an old replica dies while the canary holds
    await world.settle(1)
    world.clock.now += 60  # past the restart backoff
    await world.settle(4)
    assert await _by_revision(world, ep) == {1: ["ready", "ready"], 2: ["ready"]}
    started = [r for r in await world.store.live_replicas(ep) if r.generation == 1 and r.id != old.id]
    assert any(world.runtime.launches[r.id].command == ["server", "v1"] for r in started)  # the old spec


async def test_a_gpu_count_patch_rolls_and_goes_one_at_a_time_without_a_free_gpu(world: World) -> None:
    ep = await world.create(min_replicas=1, gpu_type="h100", gpu_count=1)
    await world.settle(3)
    (old,) = await world.store.live_replicas(ep)
    current = (await world.endpoints.get(ep)).spec
    bigger = current.compute.model_copy(update={"gpu_count": 2})  # one GPU is free, the surge replica needs 2
    await world.endpoints.update(ep, current.model_copy(update={"compute": bigger}))
    for _ in range(10):
        await world.settle(1)
        if await _by_revision(world, ep) == {2: ["ready"]}:
            break
    (new,) = await world.store.live_replicas(ep)
    assert new.generation == 2 and new.gpus == "0,1" and old.id in world.runtime.stopped
    kinds = [(e.kind, e.message) for e in await world.store.events(ep)]
    assert any(k == "rollout" and "one replica at a time" in m for k, m in kinds)
    assert (await world.store.revisions.get(ep, 2)).changes == "compute.gpu_count"  # type: ignore[union-attr]
