"""least-load vs prefix-cache routing on two real llama.cpp replicas (SmolLM2, CPU), loopback only.

    .venv/bin/python benchmarks/prefix_routing.py [--requests 32] [--prompts 4] [--clients 2]

One run, two phases with the same seeded workload: several long shared system prompts, each
with varied user turns, sent through a real Gateway listener to two fresh `podium.worker.llama`
replicas (one thread each). Each phase starts its own replicas, so no phase inherits a warm
cache. TTFT = time to the first streamed chunk that carries text. Also reports the gateway's
own CPU per request for each policy (resolve + reserve + release on a realistic body), since
prefix-cache parses nothing more but hashes the prompt's head.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import subprocess
import sys
import time
from typing import Any

import httpx
import orjson

from podium.gateway.app import Gateway
from podium.gateway.routes import LEAST_LOAD, PREFIX_CACHE, EndpointRoute, ReplicaRoute
from podium.gateway.routing import RouteTable
from podium.gateway.server import serve
from podium.http.message import Request

TOPICS = ["a shipping company", "a hospital pharmacy", "a law firm", "a video game studio", "a bakery", "a bank"]


def system_prompt(i: int) -> str:
    topic = TOPICS[i % len(TOPICS)]
    rules = " ".join(f"Rule {n}: when asked about item {n} of {topic}, answer briefly and politely." for n in range(18))
    return f"Prompt {i}. You are the assistant of {topic}. {rules}"


def workload(n: int, prompts: int, seed: int) -> list[list[dict[str, str]]]:
    rng = random.Random(seed)
    return [
        [
            {"role": "system", "content": system_prompt(rng.randrange(prompts))},
            {"role": "user", "content": f"Question {k}: what about item {rng.randrange(100)}?"},
        ]
        for k in range(n)
    ]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_replicas(count: int, cache_mib: int) -> list[tuple[subprocess.Popen[bytes], int]]:
    out = []
    for _ in range(count):
        port = free_port()
        cmd = [sys.executable, "-m", "podium.worker.llama", "--port", str(port), "--threads", "1", "--alias", "m"]
        cmd += ["--prompt-cache-mib", str(cache_mib)]
        out.append((subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), port))
    deadline = time.monotonic() + 120
    for proc, port in out:
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"replica on port {port} did not start")
            time.sleep(0.2)
    return out


def route(policy: str, ports: list[int], max_concurrency: int = 4) -> EndpointRoute:
    return EndpointRoute(
        endpoint_id=f"ep-{policy}",
        routing_key=policy,
        app_name=policy,
        served_model_name="m",
        enabled=True,
        auth_token_sha256=None,
        max_concurrency=max_concurrency,  # llama-cpp-python's server runs one at a time; the rest wait there
        queue_size=1000,
        queue_timeout_s=600,
        cold_start_timeout_s=60,
        request_timeout_s=600,
        replicas=tuple(ReplicaRoute(f"r{i}", f"127.0.0.1:{p}") for i, p in enumerate(ports)),
        routing_policy=policy,
    )


async def one(client: httpx.AsyncClient, policy: str, messages: list[dict[str, str]]) -> float:
    body = {"model": policy, "messages": messages, "max_tokens": 8, "temperature": 0, "stream": True}
    start = time.monotonic()
    ttft = None
    async with client.stream("POST", "/v1/chat/completions", json=body) as resp:
        resp.raise_for_status()
        async for line in resp.aiter_lines():
            if ttft is None and line.startswith("data: {"):
                delta = orjson.loads(line[6:])["choices"][0].get("delta", {})
                if delta.get("content"):
                    ttft = time.monotonic() - start
    return ttft if ttft is not None else time.monotonic() - start


async def phase(policy: str, jobs: list[list[dict[str, str]]], a: argparse.Namespace) -> dict[str, Any]:
    clients = a.clients
    procs = start_replicas(a.replicas, a.cache_mib)
    gateway = Gateway(wake=lambda _: None)
    gateway.set_route(route(policy, [p for _, p in procs], a.max_concurrency))
    port = free_port()
    stop, started = asyncio.Event(), asyncio.Event()

    async def no_control(scope: dict[str, Any], receive: Any, send: Any) -> None:
        return None

    server = asyncio.create_task(serve(gateway, no_control, "127.0.0.1", port, started=started, should_exit=stop))
    try:
        await asyncio.wait_for(started.wait(), 10)
        queue = list(jobs)
        ttfts: list[float] = []
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=600) as client:

            async def worker() -> None:
                while queue:
                    ttfts.append(await one(client, policy, queue.pop(0)))

            t0 = time.monotonic()
            await asyncio.gather(*(worker() for _ in range(clients)))
            wall = time.monotonic() - t0
        ttfts.sort()
        return {
            "policy": policy,
            "p50": statistics.median(ttfts),
            "p99": ttfts[min(len(ttfts) - 1, round(0.99 * (len(ttfts) - 1)))],
            "mean": statistics.fmean(ttfts),
            "rps": len(ttfts) / wall,
            "wall": wall,
        }
    finally:
        stop.set()
        await asyncio.wait_for(server, 15)
        await gateway.aclose()
        for proc, _ in procs:
            proc.terminate()
        for proc, _ in procs:
            proc.wait(30)


def gateway_cpu_us(policy: str, messages: list[dict[str, str]], n: int = 20000) -> float:
    """CPU per request of the routing decision alone: resolve the body, reserve a slot, release it."""
    gateway = Gateway(wake=lambda _: None)
    r = route(policy, [9001, 9002])
    gateway.set_route(r)
    table = RouteTable()
    table.put(r)
    pool = gateway._pools[r.endpoint_id]
    body = orjson.dumps({"model": policy, "messages": messages, "max_tokens": 8, "stream": True})
    request = Request("POST", "/v1/chat/completions", b"/v1/chat/completions", b"", [], body)
    start = time.process_time()
    for _ in range(n):
        routed = table.resolve(request)
        lease = pool.try_reserve(key=routed.prefix_key)
        assert lease is not None
        lease.release()
    return (time.process_time() - start) / n * 1e6


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=32)
    ap.add_argument("--prompts", type=int, default=8, help="distinct long system prompts")
    ap.add_argument("--clients", type=int, default=2, help="concurrent clients")
    ap.add_argument("--replicas", type=int, default=2)
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--cache-mib", type=int, default=48, help="each replica's prompt cache (~9 MiB per prompt)")
    ap.add_argument("--max-concurrency", type=int, default=4)
    a = ap.parse_args()
    jobs = workload(a.requests, a.prompts, a.seed)
    rows = [await phase(p, jobs, a) for p in (LEAST_LOAD, PREFIX_CACHE)]
    cpu = {p: gateway_cpu_us(p, jobs[0]) for p in (LEAST_LOAD, PREFIX_CACHE)}
    print(f"{a.requests} requests, {a.prompts} system prompts, {a.clients} clients, {a.replicas} replicas,")
    print(f"prompt cache {a.cache_mib} MiB per replica, max_concurrency {a.max_concurrency}")
    print("| policy | TTFT p50 (s) | TTFT p99 (s) | TTFT mean (s) | throughput (req/s) | routing CPU/request (us) |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['policy']} | {row['p50']:.2f} | {row['p99']:.2f} | {row['mean']:.2f} | {row['rps']:.3f} "
            f"| {cpu[row['policy']]:.1f} |"
        )


if __name__ == "__main__":
    asyncio.run(main())
