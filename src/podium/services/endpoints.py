"""Endpoint use cases. The API calls these; they validate, record desired state, and wake the
controller with a hint. They never start or stop anything themselves."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from podium.core.errors import Conflict, Invalid, NotFound
from podium.core.ids import endpoint_id, new_app_name, new_routing_key
from podium.core.specs import AuthMode, EndpointSpec
from podium.core.states import EndpointState
from podium.services.tokens import generate_token, sha256_hex
from podium.store.repos import Store
from podium.store.tables import EndpointRow, EventRow, ReplicaRow

Hint = Callable[[str], None]


@dataclass(frozen=True)
class EndpointRecord:
    """An endpoint as services hand it out: the row, its parsed spec, and its replicas."""

    row: EndpointRow
    spec: EndpointSpec
    replicas: list[ReplicaRow]


@dataclass(frozen=True)
class Created:
    record: EndpointRecord
    token: str | None  # the endpoint's generated or given token, shown only in the create answer


def spec_of(row: EndpointRow) -> EndpointSpec:
    return EndpointSpec.model_validate_json(row.spec_json)


class EndpointService:
    def __init__(self, store: Store, hint: Hint, validate_source: Callable[[EndpointSpec], None]) -> None:
        self.store = store
        self.hint = hint  # wakes the controller for one endpoint: no polling delay
        self.validate_source = validate_source  # runtime/catalog checks (e.g. local needs a command)

    async def create(self, spec: EndpointSpec, kind: str) -> Created:
        self.validate_source(spec)
        app_name = spec.app_name or new_app_name(spec.name)
        if spec.app_name and await self.store.find_endpoint(spec.app_name):
            raise Conflict(f"app_name {spec.app_name!r} is already taken", {"field": "app_name"})
        token, token_hash = self._endpoint_token(spec)
        spec = spec.model_copy(
            update={"app_name": app_name, "auth": spec.auth.model_copy(update={"token": None})}
        )
        now = time.time()
        row = EndpointRow(
            id=endpoint_id(),
            name=spec.name,
            app_name=app_name,
            routing_key=new_routing_key(spec.name),
            kind=kind,
            spec_json=spec.model_dump_json(),
            generation=1,
            auth_token_sha256=token_hash,
            desired_replicas=None,
            desired_reason="",
            deleting=False,
            consecutive_failures=0,
            backoff_until=0.0,
            state=EndpointState.PROVISIONING if spec.enabled else EndpointState.STOPPED,
            created_at=now,
            updated_at=now,
        )
        await self.store.add_endpoint(row)
        await self.store.add_event(row.id, "created", f"endpoint {spec.name!r} created ({kind})")
        self.hint(row.id)
        return Created(EndpointRecord(row, spec, []), token)

    def _endpoint_token(self, spec: EndpointSpec) -> tuple[str | None, str | None]:
        if spec.auth.mode != AuthMode.TOKEN:
            if spec.auth.token or spec.auth.token_secret:
                raise Invalid("auth.mode", "a token was given but auth mode is not 'token'")
            return None, None
        token = spec.auth.token or generate_token("ep")
        return token, sha256_hex(token)

    async def get(self, key: str) -> EndpointRecord:
        row = await self.store.find_endpoint(key)
        if row is None:
            raise NotFound(f"endpoint {key} not found")
        replicas = await self.store.replicas_of([row.id], include_ended=False)
        return EndpointRecord(row, spec_of(row), replicas)

    async def list_all(self) -> list[EndpointRecord]:
        rows = await self.store.list_endpoints()
        replicas = await self.store.replicas_of([r.id for r in rows]) if rows else []
        by_ep: dict[str, list[ReplicaRow]] = {}
        for rep in replicas:
            by_ep.setdefault(rep.endpoint_id, []).append(rep)
        return [EndpointRecord(r, spec_of(r), by_ep.get(r.id, [])) for r in rows]

    async def update(self, key: str, spec: EndpointSpec) -> EndpointRecord:
        """Replace the spec (callers merge partial updates first). Replicas roll to the new generation."""
        current = await self.get(key)
        self.validate_source(spec)
        if spec.compute.region != current.spec.compute.region:
            raise Invalid("region", "region is immutable; create a new endpoint in the other region")
        if spec.app_name != current.spec.app_name:
            raise Invalid("app_name", "app_name is immutable")
        spec = spec.model_copy(update={"auth": spec.auth.model_copy(update={"token": None})})
        await self.store.update_endpoint(
            current.row.id,
            spec_json=spec.model_dump_json(),
            name=spec.name,
            generation=current.row.generation + 1,
            consecutive_failures=0,
            backoff_until=0.0,
            last_error=None,
        )
        await self.store.add_event(current.row.id, "updated", "spec updated")
        self.hint(current.row.id)
        return await self.get(current.row.id)

    async def set_enabled(self, key: str, enabled: bool) -> EndpointRecord:
        current = await self.get(key)
        if current.row.deleting:
            raise Conflict(f"endpoint {key} is being deleted")
        spec = current.spec.model_copy(update={"enabled": enabled})
        await self.store.update_endpoint(
            current.row.id,
            spec_json=spec.model_dump_json(),
            consecutive_failures=0,
            backoff_until=0.0,
            last_error=None,
            **({} if enabled else {"state": EndpointState.STOPPED}),
        )
        await self.store.add_event(
            current.row.id,
            "started" if enabled else "stopped",
            "endpoint started" if enabled else "endpoint stopped",
        )
        self.hint(current.row.id)
        return await self.get(current.row.id)

    async def delete(self, key: str) -> EndpointRecord:
        current = await self.get(key)
        await self.store.update_endpoint(current.row.id, deleting=True, state=EndpointState.DELETING)
        await self.store.add_event(current.row.id, "deleting", "delete requested; stopping replicas")
        self.hint(current.row.id)
        return await self.get(current.row.id)

    async def events(self, key: str, limit: int = 100) -> list[EventRow]:
        current = await self.get(key)
        return await self.store.events(current.row.id, limit)
