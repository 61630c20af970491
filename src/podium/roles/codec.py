"""JSON forms of what crosses process boundaries between roles: routes, tokens, stats."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from podium.core.stats import EndpointStats
from podium.gateway.routes import EndpointRoute, PlatformToken, ReplicaRoute


def route_to_json(route: EndpointRoute) -> dict[str, Any]:
    return asdict(route)


def route_from_json(data: dict[str, Any]) -> EndpointRoute:
    replicas = tuple(ReplicaRoute(**r) for r in data.get("replicas", ()))
    busy = tuple(data.get("engine_busy", ()))  # a JSON list; the route compares as a tuple
    adapters = tuple((str(k), str(v)) for k, v in data.get("adapters", ()))  # JSON lists -> the route's tuples
    return EndpointRoute(**{**data, "replicas": replicas, "engine_busy": busy, "adapters": adapters})


def token_to_json(token: PlatformToken) -> dict[str, Any]:
    return {
        "token_id": token.token_id,
        "sha256": token.sha256,
        "scopes": sorted(token.scopes),
        "rate_limit_rpm": token.rate_limit_rpm,
    }


def token_from_json(data: dict[str, Any]) -> PlatformToken:
    return PlatformToken(data["token_id"], data["sha256"], frozenset(data["scopes"]), data.get("rate_limit_rpm"))


def stats_to_json(stats: EndpointStats) -> dict[str, Any]:
    return asdict(stats)


def stats_from_json(data: dict[str, Any]) -> EndpointStats:
    return EndpointStats(**data)
