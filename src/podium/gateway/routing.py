"""Request -> endpoint: the routing tables and the body rewrite, pure and synchronous.

`/v1/{chat/completions,completions,embeddings}` route by the JSON body's `model` (the routing
key); `/e/{app_name}/rest` routes by app name and reaches the replica as `/rest`. The tables
are swapped by `set_route`/`remove_route` and read here in O(1), no lock needed (one loop).
A LoRA adapter's routing key (route.adapters) reaches its base's endpoint with `model` rewritten to
the adapter's served name, and carries a key (CRC32 of that name) the balancer places on its ring,
so an adapter's requests stay on the replica that already loaded it.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import orjson

from podium.gateway.errors import GatewayError, bad_request, not_found, stopped
from podium.gateway.prefix import prefix_key
from podium.gateway.routes import PREFIX_CACHE, EndpointRoute
from podium.http.message import Request

MODEL_PATHS = frozenset({"/v1/chat/completions", "/v1/completions", "/v1/embeddings"})


@dataclass(slots=True)
class Routed:
    route: EndpointRoute
    upstream_target: bytes  # path + query sent to the replica
    body: bytes  # possibly rewritten
    prefix_key: int | None = None  # prompt-prefix hash, only under the prefix-cache policy


class RouteTable:
    """The published routes, indexed by routing key and by app name."""

    def __init__(self) -> None:
        self.by_id: dict[str, EndpointRoute] = {}
        self.by_key: dict[str, EndpointRoute] = {}
        self.by_app: dict[str, EndpointRoute] = {}
        self.by_adapter: dict[str, tuple[EndpointRoute, str]] = {}  # adapter key -> (base's route, served name)

    def put(self, route: EndpointRoute) -> None:
        old = self.by_id.get(route.endpoint_id)
        if old is not None:
            self._unindex(old)
        self.by_id[route.endpoint_id] = route
        self.by_key[route.routing_key] = route
        self.by_app[route.app_name] = route
        for key, served in route.adapters:
            self.by_adapter[key] = (route, served)

    def remove(self, endpoint_id: str) -> EndpointRoute | None:
        old = self.by_id.pop(endpoint_id, None)
        if old is not None:
            self._unindex(old)
        return old

    def _unindex(self, route: EndpointRoute) -> None:
        if self.by_key.get(route.routing_key) is route:
            del self.by_key[route.routing_key]
        if self.by_app.get(route.app_name) is route:
            del self.by_app[route.app_name]
        for key, _ in route.adapters:
            if (held := self.by_adapter.get(key)) is not None and held[0] is route:
                del self.by_adapter[key]

    # -- resolving requests ---------------------------------------------------------------
    def resolve(self, request: Request) -> Routed:
        """The endpoint for a data-plane request, or a GatewayError (400/404/405/422)."""
        path = request.path
        if path.startswith("/e/"):
            return self._resolve_app(request)
        if path in MODEL_PATHS:
            if request.method != "POST":
                raise GatewayError(405, f"{path} takes POST", code="method_not_allowed")
            return self._resolve_model(request)
        raise not_found(f"unknown path {path}: the data plane serves {', '.join(sorted(MODEL_PATHS))}")

    def _resolve_model(self, request: Request) -> Routed:
        body = request.body
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise bad_request(f"the request body is not valid JSON: {exc}") from None
        if not isinstance(payload, dict):
            raise bad_request("the request body must be a JSON object", status=422)
        model = payload.get("model")
        if not isinstance(model, str) or not model:
            raise bad_request("'model' is required: the endpoint's routing key", status=422)
        route = self.by_key.get(model)
        adapter: str | None = None
        if route is None and (held := self.by_adapter.get(model)) is not None:
            route, adapter = held
        if route is None:
            raise not_found(f"the model {model!r} does not exist: use an endpoint's routing key")
        if not route.enabled:
            raise stopped(f"endpoint {model!r}")
        served = adapter or route.served_model_name
        if served is not None and served != model:
            payload["model"] = served
            body = _dumps(payload)
        target = request.raw_path + (b"?" + request.query if request.query else b"")
        # the body is parsed anyway (for `model`): hashing its prompt prefix costs only this policy
        key = prefix_key(payload) if route.routing_policy == PREFIX_CACHE else None
        if adapter is not None:  # affinity: the replica that served this adapter holds it loaded
            key = zlib.crc32(adapter.encode())
        return Routed(route, target, body, key)

    def _resolve_app(self, request: Request) -> Routed:
        raw = request.raw_path
        app_end = raw.find(b"/", 3)
        app_name = (raw[3:] if app_end < 0 else raw[3:app_end]).decode("latin-1")
        route = self.by_app.get(app_name)
        if route is None:
            raise not_found(f"no endpoint has the app name {app_name!r}")
        if not route.enabled:
            raise stopped(f"endpoint {app_name!r}")
        rest = b"/" if app_end < 0 else raw[app_end:]
        target = rest + (b"?" + request.query if request.query else b"")
        return Routed(route, target, request.body)

    def models_for(self, allowed: list[EndpointRoute]) -> bytes:
        """OpenAI's `GET /v1/models` answer for the routes the caller may use."""
        keys = sorted({k for r in allowed for k in (r.routing_key, *(a for a, _ in r.adapters))})
        data = [{"id": k, "object": "model", "created": 0, "owned_by": "podium"} for k in keys]
        return orjson.dumps({"object": "list", "data": data})


def _dumps(payload: dict[str, object]) -> bytes:
    try:
        return orjson.dumps(payload)
    except TypeError:  # e.g. integers beyond 64 bits: fall back to the standard library
        import json

        return json.dumps(payload, separators=(",", ":")).encode()
