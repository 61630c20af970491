"""Per-endpoint traffic numbers: the autoscaler's `EndpointStats` and Prometheus `/metrics`.

Everything is plain counters updated inline on the hot path (a few dict operations per
request); the text exposition is rendered only when `/metrics` is scraped.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable

from podium.gateway.genai_metrics import GenAIMetrics, render_genai

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class RateWindow:
    """Events per second over the last `seconds` whole seconds (a ring of per-second buckets)."""

    def __init__(self, seconds: int = 10) -> None:
        self.seconds = seconds
        self._counts = [0] * seconds
        self._stamps = [-1] * seconds

    def add(self, now: float) -> None:
        second = int(now)
        i = second % self.seconds
        if self._stamps[i] != second:
            self._stamps[i] = second
            self._counts[i] = 0
        self._counts[i] += 1

    def rate(self, now: float) -> float:
        # the current (partial) second is excluded so the rate does not dip at each second's start
        current = int(now)
        total = sum(c for c, s in zip(self._counts, self._stamps, strict=True) if current - self.seconds <= s < current)
        return total / self.seconds


class Histogram:
    __slots__ = ("buckets", "count", "sum")

    def __init__(self) -> None:
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self.count = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.buckets[bisect_left(LATENCY_BUCKETS, value)] += 1
        self.count += 1
        self.sum += value


class EndpointMetrics:
    """What one endpoint's traffic looked like since the gateway started."""

    __slots__ = (
        "by_caller",
        "by_code",
        "completion_tokens",
        "errors",
        "genai",
        "last_request_at",
        "latency",
        "prompt_tokens",
        "rate",
        "ttfb",
    )

    def __init__(self) -> None:
        self.by_code: dict[int, int] = {}
        self.errors: dict[str, int] = {}
        self.latency = Histogram()
        self.ttfb = Histogram()
        self.rate = RateWindow()
        self.last_request_at: float | None = None
        self.prompt_tokens = 0  # from the replicas' OpenAI `usage` objects (add_usage)
        self.completion_tokens = 0
        self.by_caller: dict[str, list[int]] = {}  # caller (token id) -> [prompt, completion], since start
        self.genai: dict[str, GenAIMetrics] = {}  # OpenAI path -> OTel GenAI histograms (proxy.record_response)

    def add_usage(self, usage: tuple[int, int], caller: str) -> None:
        """Count one response's tokens (metering.usage_of) for the endpoint and for its caller."""
        prompt, completion = usage
        self.prompt_tokens += prompt
        self.completion_tokens += completion
        mine = self.by_caller.get(caller)
        if mine is None:
            self.by_caller[caller] = [prompt, completion]
        else:
            mine[0] += prompt
            mine[1] += completion

    def finished(self, code: int, latency_s: float, now: float) -> None:
        self.by_code[code] = self.by_code.get(code, 0) + 1
        self.latency.observe(latency_s)
        self.rate.add(now)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


def _labels(**labels: str) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _histogram(lines: list[str], name: str, endpoint: str, hist: Histogram) -> None:
    cumulative = 0
    for bound, count in zip((*LATENCY_BUCKETS, float("inf")), hist.buckets, strict=True):
        cumulative += count
        le = "+Inf" if bound == float("inf") else f"{bound:g}"
        lines.append(f"{name}_bucket{_labels(endpoint=endpoint, le=le)} {cumulative}")
    lines.append(f"{name}_sum{_labels(endpoint=endpoint)} {hist.sum:.6f}")
    lines.append(f"{name}_count{_labels(endpoint=endpoint)} {hist.count}")


def render_prometheus(
    metrics: dict[str, EndpointMetrics],
    gauges: Callable[[str], tuple[int, int, float, int]],
    names: Callable[[str], str],
) -> bytes:
    """Prometheus text format 0.0.4. `gauges(endpoint_id)` -> (in_flight, queued, oldest_wait_s, ready replicas)."""
    lines: list[str] = [
        "# HELP podium_gateway_requests_total Requests answered, by endpoint and HTTP status.",
        "# TYPE podium_gateway_requests_total counter",
    ]
    for eid, m in metrics.items():
        for code, n in sorted(m.by_code.items()):
            lines.append(f"podium_gateway_requests_total{_labels(endpoint=eid, code=str(code))} {n}")
    lines += [
        "# HELP podium_gateway_errors_total Failed requests by endpoint and kind.",
        "# TYPE podium_gateway_errors_total counter",
    ]
    for eid, m in metrics.items():
        for kind, n in sorted(m.errors.items()):
            lines.append(f"podium_gateway_errors_total{_labels(endpoint=eid, kind=kind)} {n}")
    lines += [
        "# HELP podium_gateway_request_duration_seconds Request start to response end.",
        "# TYPE podium_gateway_request_duration_seconds histogram",
    ]
    for eid, m in metrics.items():
        _histogram(lines, "podium_gateway_request_duration_seconds", eid, m.latency)
    lines += [
        "# HELP podium_gateway_ttfb_seconds Request start to the replica's response head.",
        "# TYPE podium_gateway_ttfb_seconds histogram",
    ]
    for eid, m in metrics.items():
        _histogram(lines, "podium_gateway_ttfb_seconds", eid, m.ttfb)
    lines += [
        "# HELP podium_gateway_tokens_total Tokens in the replicas' OpenAI `usage`, by endpoint and "
        "gen_ai.token.type (input: prompt, output: completion).",
        "# TYPE podium_gateway_tokens_total counter",
    ]
    for eid, m in metrics.items():
        if m.prompt_tokens or m.completion_tokens:
            lines.append(
                f"podium_gateway_tokens_total{_labels(endpoint=eid, gen_ai_token_type='input')} {m.prompt_tokens}"
            )
            lines.append(
                f"podium_gateway_tokens_total{_labels(endpoint=eid, gen_ai_token_type='output')} {m.completion_tokens}"
            )
    lines += [
        "# HELP podium_gateway_caller_tokens_total Tokens by endpoint, caller (platform token id, `endpoint` "
        "for the endpoint's own token, `anonymous`) and gen_ai.token.type.",
        "# TYPE podium_gateway_caller_tokens_total counter",
    ]
    for eid, m in metrics.items():
        for caller, (prompt, completion) in sorted(m.by_caller.items()):
            for kind, n in (("input", prompt), ("output", completion)):
                labels = _labels(endpoint=eid, caller=caller, gen_ai_token_type=kind)
                lines.append(f"podium_gateway_caller_tokens_total{labels} {n}")
    render_genai(lines, [(eid, names(eid), m.genai) for eid, m in metrics.items() if m.genai])
    for name, help_, index in (
        ("podium_gateway_in_flight", "Requests holding a replica slot.", 0),
        ("podium_gateway_queue_length", "Requests waiting for a slot or a first ready replica.", 1),
        ("podium_gateway_oldest_wait_seconds", "Wait of the oldest queued request.", 2),
        ("podium_gateway_ready_replicas", "Ready replicas in the endpoint's route.", 3),
    ):
        lines += [f"# HELP {name} {help_}", f"# TYPE {name} gauge"]
        for eid in metrics:
            if eid != "-":
                lines.append(f"{name}{_labels(endpoint=eid, routing_key=names(eid))} {gauges(eid)[index]}")
    return ("\n".join(lines) + "\n").encode()
