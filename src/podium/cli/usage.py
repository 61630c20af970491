"""`podium usage`: replica-seconds, GPU-seconds and tokens per endpoint, and tokens per API token."""

from __future__ import annotations

import re
import time
from typing import Any

import typer

from podium.cli.client import Api, fail
from podium.cli.names import endpoint_id
from podium.cli.output import FORMAT_OPTION, Format, emit, render_table

_DUR = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")


def parse_since(text: str | None, now: float) -> float | None:
    """`1h`, `30m`, `7d` ago, or a unix timestamp."""
    if text is None:
        return None
    m = _DUR.match(text)
    if m:
        return now - float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    try:
        return float(text)
    except ValueError:
        fail(f"--since {text!r}: use a duration like 1h, 30m, 7d or a unix timestamp")


def usage(
    endpoint: str = typer.Option(None, "--endpoint", help="Only this endpoint (name, id, app name or routing key)."),
    since: str = typer.Option(None, "--since", help="Window start: 1h, 30m, 7d ago, or a unix timestamp."),
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Show metered usage. Example: podium usage --since 24h"""
    params: dict[str, str | float] = {}
    start = parse_since(since, time.time())
    if start is not None:
        params["since"] = start
    api = Api()
    if endpoint:
        params["endpoint_id"] = endpoint_id(api, endpoint)
    data = api.get("/v0/usage", params=params)
    emit(data, fmt, usage_tables)


TOKEN_COLUMNS = ("endpoint_id", "token_id", "token_name", "prompt_tokens", "completion_tokens")


def usage_tables(d: dict[str, Any]) -> str:
    """Per endpoint (with a total line), then per endpoint and API token when tokens were metered."""
    endpoints = render_table(
        ["endpoint", "name", "running", "replica-hours", "gpu-hours", "prompt-tokens", "completion-tokens"],
        [
            (
                e["endpoint_id"],
                e["name"],
                e["running_replicas"],
                f"{e['replica_seconds'] / 3600:.3f}",
                f"{e['gpu_seconds'] / 3600:.3f}",
                e.get("prompt_tokens", 0),
                e.get("completion_tokens", 0),
            )
            for e in d["endpoints"]
        ]
        + [
            (
                "total",
                "",
                "",
                f"{d['replica_seconds'] / 3600:.3f}",
                f"{d['gpu_seconds'] / 3600:.3f}",
                d.get("prompt_tokens", 0),
                d.get("completion_tokens", 0),
            )
        ],
    )
    tokens = d.get("tokens") or []
    if not tokens:
        return endpoints
    per_token = render_table(
        ["endpoint", "token", "token-name", "prompt-tokens", "completion-tokens"],
        [[t[k] for k in TOKEN_COLUMNS] for t in tokens],
    )
    return f"{endpoints}\n\n{per_token}"
