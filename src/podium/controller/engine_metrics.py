"""Engine metrics: what each ready replica's model server says about its own queue and KV cache.

The gateway sees only the requests it sent; an engine also knows how many of them it runs at once
and how many wait for a batch slot or for KV-cache blocks. Those are the signals LLM autoscalers and
routers use (KubeAI, llm-d, Ray Serve), so the controller role scrapes them:

- vLLM's `/metrics`: `vllm:num_requests_waiting`, `vllm:num_requests_running`,
  `vllm:gpu_cache_usage_perc` (renamed `vllm:kv_cache_usage_perc` in vLLM 0.10; a fraction 0..1
  despite the name);
- llama.cpp's own `llama-server --metrics`: `llamacpp:requests_deferred`,
  `llamacpp:requests_processing`, `llamacpp:kv_cache_usage_ratio`;
- SGLang's `sglang:num_queue_reqs`, `sglang:num_running_reqs`, `sglang:token_usage`.

The Python `llama_cpp.server` Podium runs for the CPU template serves no `/metrics` (404): its
replicas simply have no engine sample, and every consumer (status, scale policies, routing) treats
"no sample" as "no signal", never as zero load.

`EngineWatch` sits between the controller and its route publisher: it remembers the ready replicas
of each published route (what to scrape), scrapes them every `interval_s` in its own task beside the
tick (one bounded GET per replica, concurrently; a slow engine delays only its own sample), and
republishes a route when the set of replicas whose engine queue is long changes (`engine_busy`,
the gateway's routing input). The controller's tick never waits on a scrape.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Protocol

import aiohttp

from podium.controller.prom_text import parse
from podium.core.stats import EngineLoad
from podium.gateway.routes import EndpointRoute, PlatformToken

log = logging.getLogger("podium.controller")

# engine -> (waiting, running, kv-cache fraction) metric names, in the order they are tried
ENGINES: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "vllm": (
        ("vllm:num_requests_waiting",),
        ("vllm:num_requests_running",),
        ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"),
    ),
    "llamacpp": (
        ("llamacpp:requests_deferred",),
        ("llamacpp:requests_processing",),
        ("llamacpp:kv_cache_usage_ratio",),
    ),
    "sglang": (("sglang:num_queue_reqs",), ("sglang:num_running_reqs",), ("sglang:token_usage",)),
}
WANTED = frozenset(name for names in ENGINES.values() for group in names for name in group)
DEFAULT_BUSY_WAITING = 4  # an engine queue this long takes a replica out of the gateway's choice


@dataclass(frozen=True, slots=True)
class EngineSample:
    """One replica's engine, at `at` (wall clock). Counts are summed over the engine's label sets
    (several model names or data-parallel ranks); the KV-cache share is the highest of them."""

    engine: str
    waiting: float
    running: float
    kv_cache: float | None  # 0..1; None: the engine does not say
    at: float

    def to_json(self) -> dict[str, object]:
        return {
            "engine": self.engine,
            "waiting": self.waiting,
            "running": self.running,
            "kv_cache_usage": self.kv_cache,
            "scraped_at": self.at,
        }


def sample_of(text: str, at: float) -> EngineSample | None:
    """The engine sample in a `/metrics` page, or None when it has none of the known names."""
    found = parse(text, WANTED)
    for engine, (waiting, running, kv) in ENGINES.items():
        w, r, k = _pick(found, waiting), _pick(found, running), _pick(found, kv)
        if w is None and r is None and k is None:
            continue
        kv_max = max(k) if k else None
        return EngineSample(engine, sum(w or ()), sum(r or ()), kv_max, at)
    return None


def _pick(found: Mapping[str, list[tuple[dict[str, str], float]]], names: tuple[str, ...]) -> list[float] | None:
    for name in names:
        if name in found:
            return [value for _, value in found[name]]
    return None


def aggregate(samples: Iterable[EngineSample]) -> EngineLoad | None:
    items = list(samples)
    if not items:
        return None
    kv = [s.kv_cache for s in items if s.kv_cache is not None]
    return EngineLoad(
        replicas=len(items),
        waiting=sum(s.waiting for s in items),
        running=sum(s.running for s in items),
        kv_cache_avg=sum(kv) / len(kv) if kv else None,
        kv_cache_max=max(kv) if kv else None,
    )


class Publisher(Protocol):
    def set_route(self, route: EndpointRoute) -> None: ...
    def remove_route(self, endpoint_id: str) -> None: ...
    def replica_in_flight(self, replica_id: str) -> int: ...


class EngineWatch:
    """A route publisher in front of the real one (see the module doc), and the engine samples."""

    def __init__(
        self,
        inner: Publisher,
        *,
        interval_s: float = 2.0,
        timeout_s: float = 1.0,
        stale_after_s: float = 10.0,
        busy_waiting: Callable[[str], float] = lambda _eid: DEFAULT_BUSY_WAITING,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.inner = inner
        self.interval_s, self.stale_after_s = interval_s, stale_after_s
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.busy_waiting = busy_waiting  # endpoint id -> engine queue length that counts as long
        self._wall = wall
        self._routes: dict[str, EndpointRoute] = {}  # as the controller published them
        self._samples: dict[str, EngineSample] = {}  # replica id -> latest sample
        self._busy: dict[str, tuple[str, ...]] = {}  # endpoint id -> replicas with a long engine queue
        self._no_metrics: set[str] = set()  # replicas that answered 404: asked again only every minute
        self._skipped_at: dict[str, float] = {}
        self._session: aiohttp.ClientSession | None = None
        self.scrapes = 0

    # -- RoutePublisher ----------------------------------------------------------------------
    def set_route(self, route: EndpointRoute) -> None:
        self._routes[route.endpoint_id] = route
        self.inner.set_route(self._with_busy(route))

    def remove_route(self, endpoint_id: str) -> None:
        self._routes.pop(endpoint_id, None)
        self._busy.pop(endpoint_id, None)
        self.inner.remove_route(endpoint_id)

    def set_platform_tokens(self, tokens: Iterable[PlatformToken]) -> None:
        setter = getattr(self.inner, "set_platform_tokens", None)
        if setter is not None:
            setter(tokens)

    def replica_in_flight(self, replica_id: str) -> int:
        return self.inner.replica_in_flight(replica_id)

    def _with_busy(self, route: EndpointRoute) -> EndpointRoute:
        busy = self._busy.get(route.endpoint_id, ())
        listed = {r.replica_id for r in route.replicas}
        busy = tuple(rid for rid in busy if rid in listed)
        return route if busy == route.engine_busy else replace(route, engine_busy=busy)

    # -- samples -------------------------------------------------------------------------------
    def sample(self, replica_id: str) -> EngineSample | None:
        """The latest sample of a replica, unless older than `stale_after_s`."""
        s = self._samples.get(replica_id)
        return s if s is not None and self._wall() - s.at <= self.stale_after_s else None

    def sample_json(self, replica_id: str) -> dict[str, object] | None:
        s = self.sample(replica_id)
        return None if s is None else s.to_json()

    def endpoint(self, endpoint_id: str) -> EngineLoad | None:
        route = self._routes.get(endpoint_id)
        if route is None:
            return None
        return aggregate(s for r in route.replicas if (s := self.sample(r.replica_id)) is not None)

    def samples(self) -> dict[str, tuple[str, EngineSample]]:
        """replica id -> (endpoint id, fresh sample), for /metrics."""
        return {
            r.replica_id: (eid, s)
            for eid, route in self._routes.items()
            for r in route.replicas
            if (s := self.sample(r.replica_id)) is not None
        }

    def render(self) -> str:
        """The engine gauges of every replica with a fresh sample, as Prometheus text."""
        return render_prometheus(self.samples())

    # -- scraping --------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Scrape every `interval_s` until `stop`; a failing pass is logged, never fatal."""
        try:
            while not stop.is_set():
                try:
                    await self.scrape_once()
                except Exception:
                    log.exception("engine metrics pass failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.interval_s)
        finally:
            await self.close()

    async def scrape_once(self) -> None:
        targets = [(r.replica_id, r.address) for route in self._routes.values() for r in route.replicas]
        now = self._wall()
        due = [(rid, a) for rid, a in targets if rid not in self._no_metrics or now - self._skipped_at[rid] > 60]
        results = await asyncio.gather(*(self._scrape(rid, address) for rid, address in due))
        self.scrapes += 1
        listed = {rid for rid, _ in targets}
        for rid, sample in zip((rid for rid, _ in due), results, strict=True):
            if sample is not None:
                self._samples[rid] = sample
        for rid in [rid for rid in self._samples if rid not in listed]:
            del self._samples[rid]
        self._no_metrics &= listed
        self._skipped_at = {rid: t for rid, t in self._skipped_at.items() if rid in listed}
        self._republish_busy()

    async def _scrape(self, replica_id: str, address: str) -> EngineSample | None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.get(f"http://{address}/metrics", allow_redirects=False) as resp:
                if resp.status != 200:
                    if resp.status == 404:  # this engine has no metrics page (llama_cpp.server)
                        self._no_metrics.add(replica_id)
                        self._skipped_at[replica_id] = self._wall()
                    return None
                text = await resp.text()
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError, UnicodeDecodeError):
            return None
        return sample_of(text, self._wall())

    def _republish_busy(self) -> None:
        for eid, route in self._routes.items():
            limit = self.busy_waiting(eid)
            busy = tuple(
                r.replica_id
                for r in route.replicas
                if (s := self.sample(r.replica_id)) is not None and s.waiting >= limit
            )
            if busy != self._busy.get(eid, ()):
                self._busy[eid] = busy
                self.inner.set_route(self._with_busy(route))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


ENGINE_GAUGES = (
    ("podium_engine_requests_waiting", "Requests waiting in the replica's engine (vLLM num_requests_waiting).", "w"),
    ("podium_engine_requests_running", "Requests running in the replica's engine (vLLM num_requests_running).", "r"),
    ("podium_engine_kv_cache_usage_ratio", "KV-cache share in use in the replica's engine, 0..1.", "k"),
)


def render_prometheus(samples: Mapping[str, tuple[str, EngineSample]]) -> str:
    """The engine gauges per endpoint and replica (Prometheus text format 0.0.4)."""
    lines: list[str] = []
    for name, help_, field in ENGINE_GAUGES:
        lines += [f"# HELP {name} {help_}", f"# TYPE {name} gauge"]
        for rid, (eid, s) in sorted(samples.items()):
            value = {"w": s.waiting, "r": s.running, "k": s.kv_cache}[field]
            if value is not None:
                lines.append(f'{name}{{endpoint="{eid}",replica="{rid}",engine="{s.engine}"}} {value:g}')
    return "\n".join(lines) + "\n"
