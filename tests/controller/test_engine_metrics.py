"""Engine metrics: the Prometheus text parser, the sample per engine family, and EngineWatch scraping a
real fake worker over HTTP (vLLM's names and format) and carrying long engine queues into the route."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from podium.controller.engine_metrics import EngineWatch, render_prometheus, sample_of
from podium.controller.prom_text import parse
from podium.gateway.routes import EndpointRoute, ReplicaRoute
from podium.worker import fake_openai as oa
from podium.worker.fake import FakeConfig, FakeWorker
from tests.controller.fakes import FakeGateway
from tests.gateway.conftest import make_route


def test_parser_reads_labels_values_and_skips_the_rest() -> None:
    text = (
        "# HELP x y\n# TYPE x gauge\n"
        'vllm:num_requests_waiting{engine="0",model_name="m \\"q\\", b"} 3.0\n'
        'vllm:num_requests_waiting{engine="1",model_name="m"} 2 1700000000000\n'
        "vllm:num_requests_running 4e0\n"
        "vllm:num_requests_running{broken 1\n"
        "vllm:kv_cache_usage_perc NaN\n"
        "other_metric 9\n"
        "garbage\n"
    )
    found = parse(text, {"vllm:num_requests_waiting", "vllm:num_requests_running", "vllm:kv_cache_usage_perc"})
    assert found["vllm:num_requests_waiting"] == [
        ({"engine": "0", "model_name": 'm "q", b'}, 3.0),
        ({"engine": "1", "model_name": "m"}, 2.0),
    ]
    assert found["vllm:num_requests_running"] == [({}, 4.0)]
    assert "vllm:kv_cache_usage_perc" not in found and "other_metric" not in found


@pytest.mark.parametrize("legacy", [False, True])
def test_vllm_page_both_kv_names(legacy: bool) -> None:
    s = sample_of(oa.vllm_metrics("m", waiting=5, running=2, kv_cache=0.75, legacy=legacy), at=1.0)
    assert s is not None
    assert (s.engine, s.waiting, s.running, s.kv_cache) == ("vllm", 5, 2, 0.75)


def test_llamacpp_and_sglang_names_and_no_engine() -> None:
    llama = "llamacpp:requests_deferred 2\nllamacpp:requests_processing 1\nllamacpp:kv_cache_usage_ratio 0.5\n"
    s = sample_of(llama, 0.0)
    assert s is not None and (s.engine, s.waiting, s.running, s.kv_cache) == ("llamacpp", 2, 1, 0.5)
    s = sample_of("sglang:num_queue_reqs 7\nsglang:num_running_reqs 3\n", 0.0)
    assert s is not None and (s.engine, s.waiting, s.kv_cache) == ("sglang", 7, None)
    assert sample_of("python_info 1\n", 0.0) is None
    assert sample_of("", 0.0) is None


def route(*replicas: tuple[str, str]) -> EndpointRoute:
    base = make_route(endpoint_id="ep-1", routing_key="m", app_name="m", max_concurrency=4, queue_size=10)
    return replace(base, request_timeout_s=5, replicas=tuple(ReplicaRoute(rid, addr) for rid, addr in replicas))


@pytest.fixture
async def workers() -> AsyncIterator[tuple[FakeWorker, FakeWorker]]:
    async with FakeWorker(FakeConfig(model="m")) as a, FakeWorker(FakeConfig(model="m")) as b:
        yield a, b


async def set_engine(worker: FakeWorker, **values: object) -> None:
    async with httpx.AsyncClient() as client:
        (await client.post(f"{worker.url}/admin/engine", json=values)).raise_for_status()


def address(w: FakeWorker) -> str:
    return f"{w.host}:{w.port}"


async def test_watch_scrapes_replicas_and_marks_long_queues_busy(workers: tuple[FakeWorker, FakeWorker]) -> None:
    a, b = workers
    gateway = FakeGateway()
    watch = EngineWatch(gateway, busy_waiting=lambda _eid: 4)
    watch.set_route(route(("rep-a", address(a)), ("rep-b", address(b))))
    assert gateway.routes["ep-1"].engine_busy == ()
    await set_engine(a, waiting=6, kv_cache=0.9)
    await set_engine(b, waiting=1, running=3, kv_cache=0.3)
    await watch.scrape_once()
    sa, sb = watch.sample("rep-a"), watch.sample("rep-b")
    assert sa is not None and sb is not None
    assert (sa.waiting, sa.running, sa.kv_cache) == (6, 0, 0.9)  # running: the fake's live in-flight count
    assert (sb.waiting, sb.running, sb.kv_cache) == (1, 3, 0.3)
    assert gateway.routes["ep-1"].engine_busy == ("rep-a",)  # republished with the long queue named
    load = watch.endpoint("ep-1")
    assert load is not None
    assert (load.replicas, load.waiting, load.running, load.kv_cache_max) == (2, 7, 3, 0.9)
    assert load.kv_cache_avg == pytest.approx(0.6)
    text = render_prometheus(watch.samples())
    assert 'podium_engine_requests_waiting{endpoint="ep-1",replica="rep-a",engine="vllm"} 6' in text
    assert 'podium_engine_kv_cache_usage_ratio{endpoint="ep-1",replica="rep-b",engine="vllm"} 0.3' in text

    # the controller republishes (same replicas): the busy set stays on the route it hands on
    watch.set_route(route(("rep-a", address(a)), ("rep-b", address(b))))
    assert gateway.routes["ep-1"].engine_busy == ("rep-a",)
    await set_engine(a, waiting=0)
    await watch.scrape_once()
    assert gateway.routes["ep-1"].engine_busy == ()

    # a replica leaves the route: its sample is dropped; a removed endpoint has no load
    watch.set_route(route(("rep-b", address(b))))
    await watch.scrape_once()
    assert watch.sample("rep-a") is None and set(watch.samples()) == {"rep-b"}
    watch.remove_route("ep-1")
    assert watch.endpoint("ep-1") is None and "ep-1" not in gateway.routes
    await watch.close()


async def test_engine_without_metrics_page_has_no_sample(workers: tuple[FakeWorker, FakeWorker]) -> None:
    a, _ = workers
    await set_engine(a, format="none")  # 404, like llama_cpp.server
    watch = EngineWatch(FakeGateway())
    watch.set_route(route(("rep-a", address(a)), ("rep-gone", "127.0.0.1:9")))  # port 9: nothing listens
    await watch.scrape_once()
    assert watch.sample("rep-a") is None and watch.sample("rep-gone") is None
    assert watch.endpoint("ep-1") is None  # no engine says: no signal, not zero load
    await watch.close()


async def test_run_scrapes_beside_and_stops(workers: tuple[FakeWorker, FakeWorker]) -> None:
    a, _ = workers
    watch = EngineWatch(FakeGateway(), interval_s=0.05)
    watch.set_route(route(("rep-a", address(a))))
    stop = asyncio.Event()
    task = asyncio.create_task(watch.run(stop))
    deadline = asyncio.get_running_loop().time() + 5
    while watch.scrapes < 2:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert watch.sample("rep-a") is not None


async def test_gateway_avoids_a_replica_with_a_long_engine_queue() -> None:
    import random
    from dataclasses import replace

    from podium.gateway.balancer import EndpointPool

    r = replace(route(("rep-a", "127.0.0.1:1"), ("rep-b", "127.0.0.1:2")), engine_busy=("rep-a",))
    pool = EndpointPool(r, replica_counts={}, wake=lambda _e: None, clock=lambda: 0.0, rng=random.Random(1))
    leases = [pool.try_reserve() for _ in range(4)]
    assert [lease.replica.replica_id for lease in leases if lease] == ["rep-b"] * 4  # rep-a only when b is full
    assert pool.try_reserve() is None  # b full: queue rather than the long engine queue
    all_busy = replace(r, engine_busy=("rep-a", "rep-b"))
    pool.update(all_busy)  # every replica busy: use them all rather than none
    lease = pool.try_reserve()
    assert lease is not None and lease.replica.replica_id == "rep-a"
    pool.update(replace(r, engine_busy=()))
    assert pool.try_reserve() is not None


async def test_controller_role_serves_the_engine_gauges(workers: tuple[FakeWorker, FakeWorker]) -> None:
    from types import SimpleNamespace

    from podium.roles.processes import _engine_metrics

    a, _ = workers
    await set_engine(a, waiting=3)
    watch = EngineWatch(FakeGateway())
    watch.set_route(route(("rep-a", address(a))))
    await watch.scrape_once()
    handler = _engine_metrics(SimpleNamespace(engine=watch))  # type: ignore[arg-type]
    resp = await handler()
    assert resp.media_type.startswith("text/plain; version=0.0.4")
    assert b'podium_engine_requests_waiting{endpoint="ep-1",replica="rep-a",engine="vllm"} 3' in resp.body
    await watch.close()
