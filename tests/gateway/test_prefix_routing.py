"""Prefix-cache routing: the CHWBL ring's properties (pure), the pool using it, and real HTTP through
the gateway to two fake replicas (same system prompt -> same replica; spill when it is full)."""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace

import httpx
import pytest

from podium.gateway.balancer import Lease
from podium.gateway.prefix import PrefixRing, load_bound, prefix_key, prompt_prefix
from podium.gateway.routes import LEAST_LOAD, PREFIX_CACHE
from tests.gateway.conftest import FakeReplica, Harness, make_route
from tests.gateway.test_balancer import make_pool, route

KEYS = [random.Random(i).getrandbits(32) for i in range(4000)]


def chat(system: str, user: str) -> dict[str, object]:
    return {"model": "my-model", "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}]}


# -- the prompt prefix -----------------------------------------------------------------------
def test_shared_long_system_prompt_gives_one_key_whatever_the_user_turn() -> None:
    system = "You are a careful legal assistant. " * 40
    keys = {prefix_key(chat(system, f"question {i}")) for i in range(20)}
    assert len(keys) == 1
    assert prefix_key(chat("You are a pirate. " * 40, "question 1")) not in keys


def test_prefix_is_bounded_and_reads_each_prompt_shape() -> None:
    assert len(prompt_prefix({"prompt": "x" * 100_000}) or "") == 512
    assert prompt_prefix({"prompt": ["abc", "def"]}) == "abc"
    parts = {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image_url"}]}]}
    assert prompt_prefix(parts) == "user\x00hi\x01"
    assert prompt_prefix({"input": [1, 2, 3]}) is None
    assert prefix_key({"model": "m"}) is None


# -- the ring's properties --------------------------------------------------------------------
def test_no_replica_takes_more_than_its_bound() -> None:
    """Place keys one by one (none released): every placement respects ceil(1.25 * (total+1) / n)."""
    ring = PrefixRing([f"r{i}" for i in range(4)])
    hot = [KEYS[0]] * 300 + KEYS[:300]  # a very hot prefix plus a spread
    load: dict[str, int] = {}
    for key in hot:
        total = sum(load.values())
        rid = ring.choose(key, load, cap=10_000)
        assert rid is not None
        assert load.get(rid, 0) + 1 <= load_bound(total, 4)
        load[rid] = load.get(rid, 0) + 1
    assert max(load.values()) <= load_bound(sum(load.values()) - 1, 4)


def test_joining_or_leaving_moves_only_that_replicas_share() -> None:
    before = PrefixRing(["a", "b", "c", "d"])
    joined = PrefixRing(["a", "b", "c", "d", "e"])
    left = PrefixRing(["a", "b", "c"])
    moved_join = [k for k in KEYS if before.owner(k) != joined.owner(k)]
    assert all(joined.owner(k) == "e" for k in moved_join)  # only to the newcomer
    assert 0.1 < len(moved_join) / len(KEYS) < 0.3  # about 1/5
    moved_leave = [k for k in KEYS if before.owner(k) != left.owner(k)]
    assert all(before.owner(k) == "d" for k in moved_leave)  # only the leaver's keys
    assert 0.15 < len(moved_leave) / len(KEYS) < 0.35  # about 1/4


def test_a_full_replica_spills_to_the_next_on_the_ring() -> None:
    ring = PrefixRing(["a", "b", "c"])
    key = KEYS[1]
    home = ring.owner(key)
    assert home is not None
    assert ring.choose(key, {}, cap=4) == home
    full = {home: 4}
    spill = ring.choose(key, full, cap=4)
    assert spill is not None and spill != home
    # the same spill target every time (the next distinct replica clockwise), and None when all are full
    assert ring.choose(key, full, cap=4) == spill
    assert ring.choose(key, {"a": 4, "b": 4, "c": 4}, cap=4) is None
    assert ring.choose(key, {}, cap=4, exclude={home}) == spill


# -- the pool ---------------------------------------------------------------------------------
async def test_pool_routes_a_key_home_spills_when_full_and_queues_with_its_key() -> None:
    pool, shared = make_pool(route(3, max_concurrency=2, routing_policy=PREFIX_CACHE))
    key = KEYS[2]
    leases = [pool.try_reserve(key=key) for _ in range(3)]
    assert all(lease is not None for lease in leases)
    homes = [lease.replica.replica_id for lease in leases if lease is not None]
    assert homes[0] == PrefixRing(["r0", "r1", "r2"]).owner(key)
    assert homes[1] != homes[0]  # bound ceil(1.25 * 2 / 3) = 1: the second concurrent one spills
    more = [pool.try_reserve(key=key) for _ in range(3)]
    assert all(m is not None for m in more)
    assert pool.try_reserve(key=key) is None  # 6 slots in use
    waiter = asyncio.ensure_future(pool.acquire(key))
    await asyncio.sleep(0)
    assert pool.queued == 1
    assert more[0] is not None
    more[0].release()
    got: Lease = await asyncio.wait_for(waiter, 1)
    for lease in [*leases, *more[1:], got]:
        assert lease is not None
        lease.release()
    assert pool.in_flight == 0 and not shared


def test_least_load_ignores_the_key_and_the_ring_follows_the_replica_set() -> None:
    pool, _ = make_pool(route(2, max_concurrency=8, routing_policy=LEAST_LOAD), seed=3)
    picks = {lease.replica.replica_id for _ in range(8) if (lease := pool.try_reserve(key=KEYS[3]))}
    assert picks == {"r0", "r1"}  # two random choices spread one key
    pool, _ = make_pool(route(2, max_concurrency=8, routing_policy=PREFIX_CACHE))
    first = pool.try_reserve(key=KEYS[3])
    assert first is not None
    first.release()
    pool.update(replace(pool.route, replicas=tuple(r for r in pool.route.replicas if r != first.replica)))
    moved = pool.try_reserve(key=KEYS[3])
    assert moved is not None and moved.replica != first.replica


# -- real HTTP --------------------------------------------------------------------------------
@pytest.fixture
async def two_replicas() -> object:
    fakes = [FakeReplica(), FakeReplica()]
    for f in fakes:
        await f.start()
    try:
        yield fakes
    finally:
        for f in fakes:
            f.gate.set()
            await f.stop()


@pytest.mark.parametrize("policy", [PREFIX_CACHE, LEAST_LOAD])
async def test_shared_system_prompts_stick_to_one_replica_over_http(
    harness: Harness, two_replicas: list[FakeReplica], policy: str
) -> None:
    harness.gateway.set_route(make_route(two_replicas, routing_policy=policy))
    systems = [f"System prompt number {s}: " + "be helpful. " * 60 for s in range(4)]
    async with harness.client() as client:
        for i in range(24):  # sequential: no load, so affinity alone decides
            resp = await client.post("/v1/chat/completions", json=chat(systems[i % 4], f"user turn {i}"))
            assert resp.status_code == 200
    where: dict[str, set[int]] = {}
    for idx, fake in enumerate(two_replicas):
        for seen in fake.seen:
            system = httpx.Response(200, content=seen["body"]).json()["messages"][0]["content"]
            where.setdefault(system, set()).add(idx)
    if policy == PREFIX_CACHE:
        assert all(len(replicas) == 1 for replicas in where.values()), where
    else:
        assert any(len(replicas) == 2 for replicas in where.values()), where  # what the policy is for


# -- the spec, the flag and the published route -------------------------------------------------
def test_routing_spec_flag_and_route_default_by_kind() -> None:
    from pydantic import ValidationError

    from podium.cli.spec_flags import build_spec
    from podium.controller.launch import route_of
    from podium.core.specs import EndpointSpec
    from podium.store.tables import EndpointRow

    def published(doc: dict[str, object]) -> str:
        row = EndpointRow(id="ep1", name="n", app_name="a", routing_key="k", auth_token_sha256=None, deleting=False)
        return route_of(row, EndpointSpec.model_validate(doc), None, []).routing_policy

    template = build_spec({"name": "t", "template": "smollm2-135m-instruct"}, creating=True)
    container = build_spec({"name": "c", "container_command": "srv", "container_port": 8000}, creating=True)
    assert "routing" not in template and "routing" not in container
    assert published(template) == LEAST_LOAD  # the llama.cpp CPU engine serves one request at a time
    gpu = build_spec({"name": "g", "template": "m/x", "gpu_type": "h100", "gpu_count": 1}, creating=True)
    assert published(gpu) == PREFIX_CACHE  # vLLM batches over a paged KV cache and reuses a cached prefix
    assert published(container) == LEAST_LOAD  # any HTTP server
    flagged = build_spec({"name": "c", "container_command": "srv", "routing": "prefix-cache"}, creating=True)
    assert flagged["routing"] == {"policy": "prefix-cache"} and published(flagged) == PREFIX_CACHE
    assert published({**template, "routing": {"policy": "least-load"}}) == LEAST_LOAD
    with pytest.raises(ValidationError):
        EndpointSpec.model_validate({**template, "routing": {"policy": "round-robin"}})
    with pytest.raises(ValidationError):
        EndpointSpec.model_validate({**template, "routing": {"policy": "least-load", "extra": 1}})


def test_the_llama_worker_keeps_recent_prompts_warm_for_prefix_routing(tmp_path: object) -> None:
    """What prefix-cache routing steers to: llama-cpp-python's RAM prompt cache, on by default."""
    from pathlib import Path

    from podium.worker import llama

    gguf = Path(str(tmp_path)) / "m.gguf"
    gguf.write_bytes(b"")
    argv = llama.server_argv("py", gguf, "127.0.0.1", 9000, None, 2048, None, 256)
    assert argv[argv.index("--cache") + 1] == "true" and argv[argv.index("--cache_size") + 1] == str(256 << 20)
    assert llama.parse_args([], {}).prompt_cache_mib == 256
    assert argv[argv.index("--interrupt_requests") + 1] == "false"  # a new request must not cut a stream
    assert "--cache" not in llama.server_argv("py", gguf, "127.0.0.1", 9000, None, 2048, None, 0)


# -- token metering ---------------------------------------------------------------------------
async def test_tokens_from_usage_are_counted_per_endpoint_on_metrics(harness: Harness, replica: FakeReplica) -> None:
    harness.gateway.set_route(make_route([replica]))
    async with harness.client() as client:
        for _ in range(3):  # non-streaming: usage 1 + 1 each
            assert (await client.post("/v1/chat/completions", json={"model": "my-model"})).status_code == 200
        for _ in range(2):  # streams whose last chunk carries usage 7 + 3
            body = {"model": "my-model", "stream": True, "stream_options": {"include_usage": True}}
            resp = await client.post("/v1/chat/completions", json=body)
            assert resp.status_code == 200 and b'"usage"' in resp.content
        # a stream without usage is asked for it on the way in (tests/gateway/test_token_metering.py)
        assert (
            await client.post("/v1/chat/completions", json={"model": "my-model", "stream": True})
        ).status_code == 200
        text = (await client.get("/metrics")).text
    assert 'podium_gateway_tokens_total{endpoint="ep-test",gen_ai_token_type="input"} 24' in text
    assert 'podium_gateway_tokens_total{endpoint="ep-test",gen_ai_token_type="output"} 12' in text
