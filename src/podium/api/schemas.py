"""Response schemas of the endpoint API (requests reuse the domain spec, which forbids extras)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict

from podium.core.specs import MASK, EndpointSpec
from podium.services.endpoints import EndpointRecord


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EngineOut(Out):
    """The replica's engine as its own `/metrics` says (vLLM, llama.cpp's llama-server, SGLang);
    absent for an engine with no metrics page, and in processes without the controller."""

    engine: str  # vllm | llamacpp | sglang
    waiting: float  # requests queued inside the engine
    running: float
    kv_cache_usage: float | None  # 0..1
    scraped_at: float


class EngineLoadOut(Out):
    """The endpoint's engines together (ready replicas with a fresh sample): what the kv-cache and
    engine-queue scale policies read."""

    replicas: int
    waiting: float
    running: float
    kv_cache_avg: float | None
    kv_cache_max: float | None


class InstanceOut(Out):
    """`public_ip` carries the port too (`127.0.0.1:20001`): the serverless document's recipe is
    `curl http://<public_ip>/v1/chat/completions`, and on one machine every replica has its own port,
    so a bare IP would reach nothing. `private_ip` is the bare host, `port` the port, `address` both."""

    id: str
    state: str
    address: str | None
    public_ip: str | None
    private_ip: str | None
    port: int | None
    node: str  # the machine it runs on where a region has several (the Ray node id); "" otherwise
    gpus: list[int]
    generation: int
    revision: int  # the endpoint revision it runs (= generation; GET /v0/endpoints/{id}/revisions)
    started_at: float | None
    ready_at: float | None
    detail: str
    engine: EngineOut | None = None


class RolloutOut(Out):
    """A rollout under way: replicas of other revisions still live (docs/rollouts.md)."""

    to_revision: int
    from_revisions: list[int]
    strategy: str  # rolling | canary (a canary holds until `podium endpoint promote`)
    new_ready: int  # ready replicas of to_revision
    new_live: int
    old_live: int  # live replicas of the other revisions (serving until new ones are ready)


class StatusOut(Out):
    state: str
    revision: int  # what new replicas run; a rollout moves the others to it
    rollout: RolloutOut | None  # None: every replica runs `revision`
    instances: list[InstanceOut]
    ready_replicas: int
    live_replicas: int
    desired_replicas: int  # the autoscaler's decision, within [min, max]; 0 when stopped
    autoscaler_reason: str  # why it decided so (e.g. "queue delay 2.3s > 2s")
    engine: EngineLoadOut | None = None  # the replicas' engine metrics together, where the controller runs here
    billable: bool  # at least one replica holds resources
    url: str
    urls: dict[str, str]
    last_error: str | None
    created_at: float
    updated_at: float


class EndpointOut(Out):
    id: str
    endpoint_id: str
    name: str
    description: str
    app_name: str
    routing_key: str
    kind: str
    enabled: bool
    spec: EndpointSpec
    status: StatusOut
    token: str | None = None  # only in the create answer, when Podium generated or took a token
    warnings: list[str] = []  # create/update answers: settings stored but not acted on (and why)


def masked(spec: EndpointSpec, reveal_env: bool = False) -> EndpointSpec:
    """A registry password given inline is stored (sealed; the runtime needs it) but never shown back,
    to anyone. Env values (often tokens, e.g. HUGGING_FACE_HUB_TOKEN) are shown to admins only."""
    c = spec.container
    if c is None:
        return spec
    updates: dict[str, Any] = {}
    if c.registry.password:
        updates["registry"] = c.registry.model_copy(update={"password": MASK})
    if c.env and not reveal_env:
        updates["env"] = dict.fromkeys(c.env, MASK)
    if not updates:
        return spec
    return spec.model_copy(update={"container": c.model_copy(update=updates)})


def endpoint_out(
    rec: EndpointRecord,
    base_url: str | Callable[[str], str],
    token: str | None = None,
    *,
    reveal_env: bool = False,
) -> EndpointOut:
    """`base_url`: the data plane's base, or region -> base (regions may have their own URL).
    `reveal_env`: the caller is an admin (env values shown; masked otherwise)."""
    row, spec = rec.row, masked(rec.spec, reveal_env)
    base_url = base_url(spec.compute.region) if callable(base_url) else base_url
    s = spec.scaling
    desired = row.desired_replicas if row.desired_replicas is not None else s.min_replicas
    instances = [_instance(r) for r in rec.replicas]
    return EndpointOut(
        id=row.id,
        endpoint_id=row.id,
        name=row.name,
        description=spec.description,
        app_name=row.app_name,
        routing_key=row.routing_key,
        kind=row.kind,
        enabled=spec.enabled,
        spec=spec,
        token=token,
        status=StatusOut(
            state=rec.state,
            revision=row.generation,
            rollout=_rollout(rec),
            instances=instances,
            ready_replicas=sum(1 for i in instances if i.state == "ready"),
            live_replicas=len(instances),
            billable=any(r.started_at is not None for r in rec.replicas),
            desired_replicas=max(s.min_replicas, min(s.max_replicas, desired)) if spec.enabled else 0,
            autoscaler_reason=row.desired_reason or "",
            url=f"{base_url}/v1",
            urls={"openai": f"{base_url}/v1", "app": f"{base_url}/e/{row.app_name}/"},
            last_error=rec.last_error,
            created_at=row.created_at,
            updated_at=row.updated_at,
        ),
    )


def _rollout(rec: EndpointRecord) -> RolloutOut | None:
    gen = rec.row.generation
    new = [r for r in rec.replicas if r.generation == gen]
    old = [r for r in rec.replicas if r.generation != gen]
    if not old:
        return None
    return RolloutOut(
        to_revision=gen,
        from_revisions=sorted({r.generation for r in old}),
        strategy=rec.spec.rollout.strategy.value,
        new_ready=sum(1 for r in new if r.state == "ready"),
        new_live=len(new),
        old_live=len(old),
    )


def _instance(r: Any) -> InstanceOut:
    host, _, port = (r.address or "").rpartition(":")
    return InstanceOut(
        id=r.id,
        state=r.state,
        address=r.address,
        public_ip=r.address if host else None,  # host:port, what `curl http://<public_ip>/...` needs
        private_ip=host or None,
        port=int(port) if port.isdigit() else None,
        node=getattr(r, "node", "") or "",
        gpus=[int(g) for g in r.gpus.split(",")] if r.gpus else [],
        generation=r.generation,
        revision=r.generation,
        started_at=r.started_at,
        ready_at=r.ready_at,
        detail=r.detail or "",
    )


class EventOut(Out):
    at: float
    kind: str
    message: str
    replica_id: str | None


class EventsOut(Out):
    events: list[EventOut]


class EndpointsOut(Out):
    endpoints: list[EndpointOut]


def deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """PATCH semantics: only the given fields change; nested objects merge, lists and scalars replace."""
    out = dict(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out
