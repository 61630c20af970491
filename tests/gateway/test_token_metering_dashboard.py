"""The shipped Grafana dashboard (deploy/grafana/podium-genai.json) is valid JSON and every PromQL
expression in it names only metrics Podium exports (the gateway's /metrics and the engine gauges), so
a renamed metric cannot leave the dashboard silently empty."""

from __future__ import annotations

import json
import re
from pathlib import Path

from podium.controller.engine_metrics import EngineSample
from podium.controller.engine_metrics import render_prometheus as render_engines
from podium.gateway.genai_metrics import GENAI_METRICS, GenAIMetrics
from podium.gateway.metrics import EndpointMetrics, render_prometheus

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "podium-genai.json"
NAME = re.compile(r"\b((?:podium|gen_ai)_[a-z_]+)\b")


def exported() -> dict[str, set[str]]:
    """metric name -> its label names, from the real renderers with one of everything recorded."""
    m = EndpointMetrics()
    m.finished(200, 0.1, 1.0)
    m.error("timeout")
    m.add_usage((10, 5), "tok-1")
    genai = m.genai["/v1/chat/completions"] = GenAIMetrics("chat", "served")
    genai.record(1.0, 0.1, (10, 5))
    text = render_prometheus({"ep-1": m}, lambda _e: (1, 2, 0.5, 3), lambda _e: "model").decode()
    text += render_engines({"rep-1": ("ep-1", EngineSample("vllm", 1, 2, 0.5, 0.0))})
    names: dict[str, set[str]] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, rest = line.partition("{")
            labels = set(re.findall(r'(\w+)="', rest))
            names.setdefault(name.split(" ")[0], set()).update(labels)
    return names


def expressions(dash: dict) -> list[str]:
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    exprs += [v["definition"] for v in dash["templating"]["list"] if v.get("definition")]
    return exprs


def test_dashboard_is_valid_and_uses_only_exported_metrics() -> None:
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] == "podium-genai" and dash["panels"]
    assert len({p["id"] for p in dash["panels"]}) == len(dash["panels"])
    names = exported()
    used: set[str] = set()
    for expr in exprs if (exprs := expressions(dash)) else []:
        assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), expr
        for selector in re.finditer(r"((?:podium|gen_ai)_[a-z_]+)\{([^}]*)\}", expr):
            name, matchers = selector.groups()
            for label in re.findall(r"(\w+)\s*=~?", matchers):
                assert label in names.get(name, set()), f"{name} has no label {label}: {expr}"
        bare = re.sub(r"\{[^}]*\}|by \([^)]*\)", "", expr)  # drop label matchers and groupings
        in_expr = NAME.findall(bare)
        for name in in_expr:
            assert name in names, f"the dashboard uses {name}, which Podium does not export: {expr}"
            used.add(name)
        labels = {"le"}.union(*(names[n] for n in in_expr))
        for grouping in re.findall(r"by \(([^)]*)\)", expr):
            for label in (g.strip() for g in grouping.split(",")):
                assert label in labels, f"grouping by {label}, which {in_expr} do not carry: {expr}"
    # what the issue asks the dashboard to show
    for wanted in (
        "gen_ai_server_time_to_first_token_seconds_bucket",
        "gen_ai_server_time_per_output_token_seconds_bucket",
        "gen_ai_client_token_usage_bucket",
        "podium_gateway_tokens_total",
        "podium_gateway_requests_total",
        "podium_gateway_errors_total",
        "podium_gateway_queue_length",
        "podium_gateway_ready_replicas",
        "podium_engine_kv_cache_usage_ratio",
    ):
        assert wanted in used, wanted
    assert {f"{n}_bucket" for n in GENAI_METRICS} <= set(names)
