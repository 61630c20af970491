"""OpenTelemetry GenAI semantic conventions, as Prometheus histograms (docs/observability.md).

OpenTelemetry names (`gen_ai.server.time_to_first_token`, unit s) reach Prometheus with dots as
underscores and the unit as a suffix (`gen_ai_server_time_to_first_token_seconds`); a `{token}`
unit adds nothing (`gen_ai_client_token_usage`). Attributes become labels the same way
(`gen_ai.token.type` -> `gen_ai_token_type`). Bucket boundaries are the ones the conventions advise,
so dashboards built for other OTel-instrumented servers read these as they are.

What each one measures here, at the gateway (the engine's own view is in its `/metrics`):
- `gen_ai.server.request.duration`: request start to the last byte, successful generations;
- `gen_ai.server.time_to_first_token`: request start to the first body byte of a stream (for a
  stream the first event carries the first token, or the role just before it);
- `gen_ai.server.time_per_output_token`: (last byte - first byte) / (output tokens - 1), streams
  whose usage is known;
- `gen_ai.client.token.usage`: input and output tokens per request (`gen_ai_token_type`), from usage.

Recording is a few list increments per request (bisect over at most 16 bounds), only for
successful requests on the OpenAI paths.
"""

from __future__ import annotations

from bisect import bisect_left

TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
TPOT_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
PROVIDER = "podium"  # gen_ai.provider.name (and the older gen_ai.system): the serving platform

TTFT = "gen_ai_server_time_to_first_token_seconds"
TPOT = "gen_ai_server_time_per_output_token_seconds"
DURATION = "gen_ai_server_request_duration_seconds"
TOKEN_USAGE = "gen_ai_client_token_usage"
GENAI_METRICS = (TTFT, TPOT, DURATION, TOKEN_USAGE)


class Buckets:
    """A Prometheus histogram's counts over fixed bounds."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def render(self, lines: list[str], name: str, labels: str) -> None:
        cumulative = 0
        for bound, count in zip((*self.bounds, None), self.counts, strict=True):
            cumulative += count
            le = "+Inf" if bound is None else f"{bound:g}"
            lines.append(f'{name}_bucket{{{labels},le="{le}"}} {cumulative}')
        lines.append(f"{name}_sum{{{labels}}} {self.sum:.6f}")
        lines.append(f"{name}_count{{{labels}}} {cumulative}")


class GenAIMetrics:
    """One endpoint's GenAI histograms for one operation (chat, text_completion, embeddings)."""

    __slots__ = ("duration", "input_tokens", "operation", "output_tokens", "response_model", "tpot", "ttft")

    def __init__(self, operation: str, response_model: str) -> None:
        self.operation = operation  # gen_ai.operation.name: chat, text_completion, embeddings
        self.response_model = response_model  # the model name the replica serves
        self.duration = Buckets(DURATION_BUCKETS)
        self.ttft = Buckets(TTFT_BUCKETS)
        self.tpot = Buckets(TPOT_BUCKETS)
        self.input_tokens = Buckets(TOKEN_BUCKETS)
        self.output_tokens = Buckets(TOKEN_BUCKETS)

    def record(self, duration_s: float, first_byte_s: float | None, usage: tuple[int, int] | None) -> None:
        """One generation; the histogram counts are written out (no call per histogram: hot path)."""
        d = self.duration
        d.counts[bisect_left(d.bounds, duration_s)] += 1
        d.sum += duration_s
        if first_byte_s is not None:
            t = self.ttft
            t.counts[bisect_left(t.bounds, first_byte_s)] += 1
            t.sum += first_byte_s
        if usage is None:
            return
        prompt, completion = usage
        i, o = self.input_tokens, self.output_tokens
        i.counts[bisect_left(i.bounds, prompt)] += 1
        i.sum += prompt
        o.counts[bisect_left(o.bounds, completion)] += 1
        o.sum += completion
        if first_byte_s is not None and completion > 1:
            self.tpot.observe((duration_s - first_byte_s) / (completion - 1))


def render_genai(lines: list[str], per_endpoint: list[tuple[str, str, dict[str, GenAIMetrics]]]) -> None:
    """Append the four GenAI histograms. `per_endpoint`: (endpoint id, request model, {path: metrics})."""
    rows = [
        (
            f'endpoint="{eid}",gen_ai_operation_name="{m.operation}",gen_ai_request_model="{_esc(model)}",'
            f'gen_ai_response_model="{_esc(m.response_model or model)}",gen_ai_provider_name="{PROVIDER}",'
            f'gen_ai_system="{PROVIDER}"',
            m,
        )
        for eid, model, ops in per_endpoint
        for _, m in sorted(ops.items())
    ]
    for name, help_, pick in (
        (DURATION, "GenAI server request duration (OTel gen_ai.server.request.duration).", "duration"),
        (TTFT, "Time to first token of streams (OTel gen_ai.server.time_to_first_token).", "ttft"),
        (TPOT, "Time per output token after the first (OTel gen_ai.server.time_per_output_token).", "tpot"),
    ):
        lines += [f"# HELP {name} {help_}", f"# TYPE {name} histogram"]
        for labels, m in rows:
            getattr(m, pick).render(lines, name, labels)
    lines += [
        f"# HELP {TOKEN_USAGE} Tokens per request by gen_ai_token_type (OTel gen_ai.client.token.usage).",
        f"# TYPE {TOKEN_USAGE} histogram",
    ]
    for labels, m in rows:
        m.input_tokens.render(lines, TOKEN_USAGE, labels + ',gen_ai_token_type="input"')
        m.output_tokens.render(lines, TOKEN_USAGE, labels + ',gen_ai_token_type="output"')


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
