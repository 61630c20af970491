"""Charts on the endpoint page: requests/s, latency p50/p99, queue length, in-flight requests and
ready replicas over the last minutes, drawn as inline SVG on the server. The numbers come from the
gateway's `/metrics` (read over HTTP, as Prometheus would) and the endpoint's replicas; each poll
of the charts tab adds one sample to a short per-endpoint history kept on `app.state` (no module
state, bounded, gone on restart: a console view, not a metrics store)."""

from __future__ import annotations

import itertools
import re
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

import httpx
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from podium.api.deps import Services, services
from podium.console.frame import frame, tab_context
from podium.console.layout import own_url
from podium.services.endpoints import EndpointRecord

router = APIRouter(include_in_schema=False)
HISTORY = 150  # samples per endpoint (5 minutes at one poll every 2 s)
MIN_GAP_S = 1.0  # two tabs polling do not double the sample rate
_LINE = re.compile(r"^(\w+)\{([^}]*)\}\s+(\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Sample:
    at: float
    requests: float  # answered so far (counter)
    buckets: tuple[tuple[float, float], ...]  # (le, cumulative count) of request duration
    queue: float
    in_flight: float
    ready: int


def parse_metrics(text: str, endpoint_id: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Prometheus text -> metric name -> [(labels, value)] for one endpoint's series."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for line in text.splitlines():
        m = _LINE.match(line.strip())
        if not m:
            continue
        labels = dict(_LABEL.findall(m.group(2)))
        if labels.get("endpoint") != endpoint_id:
            continue
        out.setdefault(m.group(1), []).append((labels, float(m.group(3))))
    return out


def sample_of(text: str, rec: EndpointRecord, at: float) -> Sample:
    series = parse_metrics(text, rec.row.id)

    def total(name: str) -> float:
        return sum(v for _, v in series.get(name, []))

    buckets = tuple(
        (float(labels["le"].replace("+Inf", "inf")), v)
        for labels, v in series.get("podium_gateway_request_duration_seconds_bucket", [])
    )
    return Sample(
        at=at,
        requests=total("podium_gateway_requests_total"),
        buckets=buckets,
        queue=total("podium_gateway_queue_length"),
        in_flight=total("podium_gateway_in_flight"),
        ready=sum(1 for r in rec.replicas if r.state == "ready"),
    )


def quantile(prev: Sample, cur: Sample, q: float) -> float | None:
    """The q-quantile (s) of requests finished between two samples, from histogram deltas; None:
    no request finished. The bucket's upper bound, as Prometheus' histogram_quantile would round."""
    before = dict(prev.buckets)
    deltas = [(le, n - before.get(le, 0.0)) for le, n in cur.buckets]
    if not deltas or deltas[-1][1] <= 0:
        return None
    want = q * deltas[-1][1]
    finite = [le for le, _ in deltas if le != float("inf")]
    for le, n in deltas:
        if n >= want:
            return le if le != float("inf") else (finite[-1] if finite else 0.0)
    return None


async def record_sample(request: Request, svc: Services, rec: EndpointRecord) -> list[Sample]:
    """Read /metrics once and append a sample; the endpoint's history, oldest first."""
    store: dict[str, deque[Sample]] = request.app.state.__dict__.setdefault("console_samples", {})
    history = store.setdefault(rec.row.id, deque(maxlen=HISTORY))
    now = time.time()
    if history and now - history[-1].at < MIN_GAP_S:
        return list(history)
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            text = (await client.get(f"{own_url(svc)}/metrics")).text
    except httpx.HTTPError:
        text = ""  # no gateway reachable (an API-only process): charts show replicas only
    history.append(sample_of(text, rec, now))
    return list(history)


def svg_chart(title: str, points: Sequence[tuple[float, float | None]], unit: str) -> str:
    """A small line chart; its last value is also written as text, and the SVG has a title."""
    values = [v for _, v in points if v is not None]
    last = next((v for _, v in reversed(points) if v is not None), None)
    label = "no data yet" if last is None else f"{last:.3g} {unit}".strip()
    w, h = 300.0, 80.0
    top = max(values, default=0.0) or 1.0
    t0, t1 = (points[0][0], points[-1][0]) if points else (0.0, 1.0)
    span = (t1 - t0) or 1.0
    coords = " ".join(
        f"{(t - t0) / span * w:.1f},{h - 4 - (v / top) * (h - 8):.1f}" for t, v in points if v is not None
    )
    line = f'<polyline fill="none" stroke="#3b5bdb" stroke-width="2" points="{coords}"/>' if coords else ""
    if coords:  # the newest point as a dot: a lone sample is visible too
        x, y = coords.rsplit(" ", 1)[-1].split(",")
        line += f'<circle cx="{x}" cy="{y}" r="3" fill="#3b5bdb"/>'
    return (
        f'<figure class="chart"><h3>{escape(title)}: <span class="value">{escape(label)}</span></h3>'
        f'<svg viewBox="0 0 {w:.0f} {h:.0f}" preserveAspectRatio="none" role="img" aria-label="{escape(title)}, '
        f'now {escape(label)}, max {top:.3g}"><line x1="0" y1="{h - 4}" x2="{w}" y2="{h - 4}" stroke="#cfd5df"/>'
        f"{line}</svg><figcaption class='muted'>{f'max {top:.3g} {escape(unit)} · ' if values else ''}last "
        f"{int(span) if points else 0} s</figcaption></figure>"
    )


def charts_from(history: list[Sample]) -> str:
    pairs = list(itertools.pairwise(history))
    rate = [(c.at, max(0.0, (c.requests - p.requests) / ((c.at - p.at) or 1))) for p, c in pairs]
    p50 = [(c.at, quantile(p, c, 0.5)) for p, c in pairs]
    p99 = [(c.at, quantile(p, c, 0.99)) for p, c in pairs]
    return (
        '<div class="charts">'
        + svg_chart("Requests/s", rate, "req/s")
        + svg_chart("Latency p50", [(t, v * 1000 if v is not None else None) for t, v in p50], "ms")
        + svg_chart("Latency p99", [(t, v * 1000 if v is not None else None) for t, v in p99], "ms")
        + svg_chart("Queue length", [(s.at, s.queue) for s in history], "waiting")
        + svg_chart("In flight", [(s.at, s.in_flight) for s in history], "requests")
        + svg_chart("Ready replicas", [(s.at, float(s.ready)) for s in history], "")
        + "</div>"
    )


async def charts_html(request: Request, svc: Services, rec: EndpointRecord) -> str:
    return charts_from(await record_sample(request, svc, rec))


@router.get("/console/endpoints/{endpoint_id}/charts", response_class=HTMLResponse)
async def charts_tab(endpoint_id: str, request: Request, svc: Services = Depends(services)) -> Response:
    ctx = await tab_context(endpoint_id, request, svc)
    if isinstance(ctx, HTMLResponse):
        return ctx
    principal, rec = ctx
    inner = (
        "<p class='muted'>From the gateway's <code>/metrics</code>, sampled every 2 s while this tab is open "
        "(latency: histogram bucket bounds).</p>"
        f'<div id="ep-charts">{await charts_html(request, svc, rec)}</div>'
    )
    return frame(rec, "/charts", inner, principal)
