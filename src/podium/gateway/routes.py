"""What the control side tells the gateway: one immutable route per endpoint.

The controller publishes a new `EndpointRoute` whenever an endpoint or its set of ready
replicas changes; the gateway swaps it in at once (no polling, no database on the hot path).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

LEAST_LOAD = "least-load"  # the less loaded of two random replicas (any HTTP server)
PREFIX_CACHE = "prefix-cache"  # the replica that likely holds the prompt's prefix in its KV cache (gateway/prefix.py)


@dataclass(frozen=True, slots=True)
class ReplicaRoute:
    replica_id: str  # stable id; balancer slots are keyed by it, never by address
    address: str  # "127.0.0.1:PORT"
    revision: int = 0  # the endpoint revision it runs (issue 13): a canary splits requests by it


@dataclass(frozen=True, slots=True)
class EndpointRoute:
    endpoint_id: str
    routing_key: str  # `model` in /v1 requests
    app_name: str  # /e/{app_name}/...
    served_model_name: str | None  # rewrite `model` to this on the way in (None: leave it)
    enabled: bool  # False -> 404 "endpoint is stopped"
    auth_token_sha256: str | None  # hex sha256 of the endpoint's own token; None = no endpoint token
    max_concurrency: int  # slots per replica
    queue_size: int  # waiting requests per endpoint; overflow -> 503
    queue_timeout_s: float
    cold_start_timeout_s: float  # hold time when no replica is ready -> 503
    request_timeout_s: float
    replicas: tuple[ReplicaRoute, ...] = field(default=())  # READY replicas only
    # Why no replica can serve, when waiting would not help: the endpoint has failed, or its latest start
    # failed and nothing is starting. Requests then get 503 `endpoint_failed` at once, not a hold.
    failure: str | None = None
    failure_retry_at: float | None = None  # wall-clock time of the controller's next try; None: none planned
    region: str = "local"  # where its replicas run: a `--role gateway --region R` serves only R's routes
    routing_policy: str = LEAST_LOAD  # LEAST_LOAD or PREFIX_CACHE (spec `routing.policy`, resolved)
    # A canary (issue 13): this share of requests (0-100) goes to replicas of `canary_revision`, the rest
    # to the others, until it is promoted or rolled back. None: no split.
    canary_revision: int | None = None
    canary_percent: float = 0.0
    # replicas whose engine queue is long (controller/engine_metrics.py): chosen only when no other has a slot
    engine_busy: tuple[str, ...] = ()
    # LoRA adapters its replicas load (issue 20): (routing key, served name) each; a request naming the
    # key reaches this endpoint with `model` rewritten to the adapter's served name
    adapters: tuple[tuple[str, str], ...] = ()


def adapter_routing_key(routing_key: str, adapter: str) -> str:
    """An adapter's routing key on an endpoint of its base: `<endpoint's key>:<adapter slug>` (routing
    keys hold no ':', so it never collides with an endpoint's own)."""
    return f"{routing_key}:" + (re.sub(r"[^a-z0-9._-]+", "-", adapter.lower()).strip("-") or "adapter")


@dataclass(frozen=True, slots=True)
class PlatformToken:
    """A platform token as the gateway knows it: only its hash and scopes."""

    token_id: str
    sha256: str
    scopes: frozenset[str]
    rate_limit_rpm: int | None = None  # data-plane requests per minute; over it: 429
