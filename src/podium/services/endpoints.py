"""Endpoint use cases. The API calls these; they validate, record desired state, and wake the
controller with a hint. They never start or stop anything themselves."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from podium.core.errors import Conflict, Invalid, NotFound, PodiumError, UnreadableSpec
from podium.core.ids import APP_NAME_RE, endpoint_id, new_app_name, new_routing_key
from podium.core.specs import MASK, NAME_MAX, AuthMode, ContainerSource, EndpointSpec, TemplateSource, stored_spec
from podium.core.states import EndpointState
from podium.services.capacity import demand_of
from podium.services.revisions import NO_REVISION, changed_fields, next_number, record_revision
from podium.services.secrets import is_sealed, registry_aad
from podium.services.tokens import generate_token, sha256_hex
from podium.services.validation import ignored_settings
from podium.store.repos import Store
from podium.store.tables import EndpointRow, EventRow, ReplicaRow

if TYPE_CHECKING:
    from podium.services.control_plane import ControlPlane

Hint = Callable[[str], None]


@dataclass(frozen=True)
class EndpointRecord:
    """An endpoint as services hand it out: the row, its parsed spec, and its replicas.

    `problem`: why the stored spec cannot be read; `spec` is then a stand-in (name, app name, no
    source, disabled) so that one bad row is shown `failed` instead of failing every list."""

    row: EndpointRow
    spec: EndpointSpec
    replicas: list[ReplicaRow]
    problem: str | None = None

    @property
    def state(self) -> str:
        return "failed" if self.problem else self.row.state

    @property
    def last_error(self) -> str | None:
        return self.problem or self.row.last_error


@dataclass(frozen=True)
class Created:
    record: EndpointRecord
    token: str | None  # the endpoint's generated or given token, shown only in the create answer
    warnings: list[str] = field(default_factory=list)  # settings stored but not acted on (ignored_settings)


def spec_of(row: EndpointRow) -> EndpointSpec:
    """The row's spec; `UnreadableSpec` when it does not parse (see `record_of`, `readable`)."""
    return stored_spec(row.spec_json)


def record_of(row: EndpointRow, replicas: list[ReplicaRow]) -> EndpointRecord:
    try:
        return EndpointRecord(row, spec_of(row), replicas)
    except UnreadableSpec as exc:
        source: dict[str, Any] = (
            {"template": TemplateSource(model_name="", flavor_name="")}
            if row.kind == "template"
            else {"container": ContainerSource()}
        )
        app_name = row.app_name if APP_NAME_RE.match(row.app_name or "") else None  # the row may be odd too
        stand_in = EndpointSpec(name=(row.name or row.id)[:NAME_MAX], app_name=app_name, enabled=False, **source)
        return EndpointRecord(row, stand_in, replicas, exc.message)


def readable(rows: list[EndpointRow]) -> list[tuple[EndpointRow, EndpointSpec]]:
    """Rows with their specs, leaving out those that cannot be read (they hold no valid reference)."""
    out = []
    for row in rows:
        try:
            out.append((row, spec_of(row)))
        except UnreadableSpec:
            continue
    return out


class EndpointService:
    def __init__(
        self,
        store: Store,
        hint: Hint,
        validate_source: Callable[[EndpointSpec], None],
        plane: ControlPlane | None = None,
    ) -> None:
        self.store = store
        self.hint = hint  # wakes the controller for one endpoint: no polling delay
        self.validate_source = validate_source  # runtime/catalog checks (e.g. local needs a command)
        self.plane = plane  # secrets, volumes, platforms, capacity; None: those checks are skipped
        # check-then-write of capacity must not interleave: between this process's requests (asyncio lock)
        # and other api processes' (the store's admission lock)
        self._admission = asyncio.Lock()

    async def _others(self, exclude_id: str | None) -> list[EndpointSpec]:
        """Specs of the endpoints that hold reservations, besides the one being changed."""
        rows = [r for r in await self.store.list_endpoints() if r.id != exclude_id and not r.deleting]
        return [spec for _, spec in readable(rows)]

    async def _admit(self, spec: EndpointSpec, exclude_id: str | None, capacity: bool = True) -> EndpointSpec:
        """`capacity`: the hardware changed (create, or a PATCH of compute/scaling): check the region."""
        if self.plane is not None:  # before validation: the documents' names and a platform's GPU count
            spec = self.plane.apply_platform(self.plane.canonical_gpu(spec))
        self.validate_source(spec)
        if self.plane is None:
            return spec
        await self.plane.check_references(spec)
        if capacity:
            self.plane.check_hardware(spec)
        if capacity and demand_of(spec).total:  # min 0 or stopped reserves nothing: skip the scan
            self.plane.check_capacity(spec, await self._others(exclude_id))
        return spec

    async def create(self, spec: EndpointSpec, kind: str) -> Created:
        async with self._admission, self.store.admission():
            return await self._create(spec, kind)

    async def _create(self, spec: EndpointSpec, kind: str) -> Created:
        spec = await self._admit(spec, None)
        app_name = spec.app_name or await self._default_app_name(spec.name)
        if spec.app_name and await self.store.find_endpoint(spec.app_name):
            raise Conflict(f"app_name {spec.app_name!r} is already taken", {"field": "app_name"})
        token, token_hash = await self._endpoint_token(spec)
        if spec.auth.token_secret:
            token = None  # the user owns that secret; it is never echoed back
        spec = spec.model_copy(update={"app_name": app_name, "auth": spec.auth.model_copy(update={"token": None})})
        new_id = endpoint_id()
        spec = self._sealed(spec, None, new_id)
        now = time.time()
        row = EndpointRow(
            id=new_id,
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
        await self.store.add_endpoint(row, event=("created", f"endpoint {spec.name!r} created ({kind})"))
        await record_revision(self.store, row.id, 1, spec, [], first=True)
        self.hint(row.id)
        return Created(EndpointRecord(row, spec, []), token, ignored_settings(spec))

    async def _default_app_name(self, name: str) -> str:
        """The endpoint's name when it is a valid, unused app name (`/e/my-chatbot/` is what a user
        guesses); else the name's slug with a random suffix."""
        if APP_NAME_RE.match(name) and await self.store.find_endpoint(name) is None:
            return name
        return new_app_name(name)

    async def _endpoint_token(self, spec: EndpointSpec) -> tuple[str | None, str | None]:
        """(token to show once, its hash): given, from the secret's AUTH_TOKEN, or generated."""
        if spec.auth.mode != AuthMode.TOKEN:
            if spec.auth.token or spec.auth.token_secret:
                raise Invalid("auth.mode", "a token was given but auth mode is not 'token'")
            return None, None
        if spec.auth.token and spec.auth.token_secret:
            raise Invalid("auth.token_secret", "give --token or --token-secret, not both")
        if spec.auth.token_secret:
            if self.plane is None:
                raise Invalid("auth.token_secret", "secrets are not configured on this server")
            try:
                token = await self.plane.secrets.value(spec.auth.token_secret, "AUTH_TOKEN")
            except PodiumError as exc:
                raise Invalid("auth.token_secret", exc.message) from exc
            return token, sha256_hex(token)
        token = spec.auth.token or generate_token("ep")
        return token, sha256_hex(token)

    def _sealed(self, spec: EndpointSpec, current: EndpointSpec | None, eid: str) -> EndpointSpec:
        """Registry password and env values as they are to be stored. The password is sealed with the
        master key (never in clear in the database or its WAL). `********` is what GET shows in place
        of a secret: sent back (a GET -> PATCH round trip) it keeps the stored value."""
        c = spec.container
        if c is None:
            return spec
        before = current.container if current is not None else None
        env = dict(c.env)
        for key, value in env.items():
            if value == MASK and before is not None and key in before.env:
                env[key] = before.env[key]
        password = c.registry.password
        stored = before.registry.password if before is not None else None
        kept = password == MASK or (password is not None and password == stored)
        if kept:
            if stored is None:
                raise Invalid("container.registry.password", "give the password itself, not the mask ********")
            password = stored
        if password is not None and not (kept and is_sealed(password)):  # new, or stored in clear before
            if self.plane is None:
                raise Invalid("container.registry.password", "secrets are not configured on this server")
            password = self.plane.secrets.sealer.seal_inline(password, registry_aad(eid))
        registry = c.registry.model_copy(update={"password": password})
        return spec.model_copy(update={"container": c.model_copy(update={"env": env, "registry": registry})})

    def _as_sealed(self, current: EndpointRecord, after: EndpointSpec) -> EndpointSpec:
        """The current spec with its password as `after` stores it when that is the same password: a
        clear one (an older version's) sealed by this write must not restart replicas."""
        b, a = current.spec.container, after.container
        if b is None or a is None or self.plane is None or not b.registry.password or not a.registry.password:
            return current.spec
        if is_sealed(b.registry.password) or not is_sealed(a.registry.password):
            return current.spec
        if (
            self.plane.secrets.sealer.open_inline(a.registry.password, registry_aad(current.row.id))
            != b.registry.password
        ):
            return current.spec
        registry = b.registry.model_copy(update={"password": a.registry.password})
        return current.spec.model_copy(update={"container": b.model_copy(update={"registry": registry})})

    async def refresh_secret_tokens(self, secret_id: str, secret_name: str) -> list[str]:
        """After a secret gets a new version: endpoints whose token follows its latest version rehash."""
        changed = []
        for row, spec in readable(await self.store.list_endpoints()):
            sel = spec.auth.token_secret
            if not sel or "@" in sel or sel.partition(":")[0] not in (secret_id, secret_name):
                continue
            try:
                _, token_hash = await self._endpoint_token(spec)
            except Invalid as exc:  # the new version lacks AUTH_TOKEN: keep serving with the old token
                await self.store.add_event(row.id, "token", f"endpoint token kept: {exc.message}")
                continue
            if token_hash != row.auth_token_sha256:
                await self.store.update_endpoint(row.id, auth_token_sha256=token_hash, updated_at=row.updated_at)
                await self.store.add_event(row.id, "token", f"endpoint token rotated with secret {secret_name!r}")
                self.hint(row.id)
                changed.append(row.id)
        return changed

    async def get(self, key: str) -> EndpointRecord:
        row = await self.store.find_endpoint(key)
        if row is None:
            raise NotFound(f"endpoint {key} not found")
        replicas = await self.store.replicas_of([row.id], include_ended=False)
        return record_of(row, replicas)

    async def list_all(self) -> list[EndpointRecord]:
        rows = await self.store.list_endpoints()
        replicas = await self.store.replicas_of([r.id for r in rows]) if rows else []
        by_ep: dict[str, list[ReplicaRow]] = {}
        for rep in replicas:
            by_ep.setdefault(rep.endpoint_id, []).append(rep)
        return [record_of(r, by_ep.get(r.id, [])) for r in rows]

    async def update(self, key: str, spec: EndpointSpec) -> EndpointRecord:
        """Replace the spec (callers merge partial updates first). Replicas roll to the new generation."""
        return (await self.update_with_token(key, spec)).record

    async def update_with_token(self, key: str, spec: EndpointSpec) -> Created:
        """Like `update`, also answering a token generated by this change (shown once)."""
        async with self._admission, self.store.admission():
            return await self._update(key, spec)

    async def _update(self, key: str, spec: EndpointSpec) -> Created:
        current = await self.get(key)
        if current.row.deleting:
            raise Conflict(f"endpoint {key} is being deleted")
        if spec.compute.region != current.spec.compute.region and not current.problem:  # a stand-in has none
            raise Invalid("region", "region is immutable; create a new endpoint in the other region")
        if spec.app_name != current.spec.app_name:
            raise Invalid("app_name", "app_name is immutable")
        hardware = demand_of(spec) != demand_of(current.spec) or spec.compute != current.spec.compute
        spec = await self._admit(spec, current.row.id, capacity=hardware)
        token, token_hash = None, current.row.auth_token_sha256
        keeps_token = spec.auth.mode == current.spec.auth.mode == AuthMode.TOKEN and not (
            spec.auth.token or spec.auth.token_secret
        )
        if spec.auth != current.spec.auth and not (keeps_token and token_hash):
            token, token_hash = await self._endpoint_token(spec)
            token = None if spec.auth.token_secret else token
        spec = spec.model_copy(update={"auth": spec.auth.model_copy(update={"token": None})})
        spec = self._sealed(spec, None if current.problem else current.spec, current.row.id)
        extra = {} if spec.enabled == current.spec.enabled else {"state": _enabled_state(spec.enabled)}
        generation = current.row.generation
        if needs_rollout(before := self._as_sealed(current, spec), spec):  # a new revision (issue 13)
            generation = await next_number(self.store, current.row.id, generation)
            changes = changed_fields(None if current.problem else before, spec)
            await record_revision(self.store, current.row.id, generation, spec, changes)
        await self.store.update_endpoint(
            current.row.id,
            event=("updated", "spec updated"),
            spec_json=spec.model_dump_json(),
            name=spec.name,
            generation=generation,
            auth_token_sha256=token_hash,
            consecutive_failures=0,
            backoff_until=0.0,
            last_error=None,
            **extra,
        )
        self.hint(current.row.id)
        return Created(await self._written(current.row.id, spec), token, ignored_settings(spec))

    async def set_enabled(self, key: str, enabled: bool) -> EndpointRecord:
        async with self._admission, self.store.admission():
            return await self._set_enabled(key, enabled)

    async def _set_enabled(self, key: str, enabled: bool) -> EndpointRecord:
        current = await self.get(key)
        if current.row.deleting:
            raise Conflict(f"endpoint {key} is being deleted")
        if current.problem:
            raise Conflict(f"endpoint {key}: {current.problem}; PATCH a whole spec to repair it, or delete it")
        spec = current.spec.model_copy(update={"enabled": enabled})
        if enabled and not current.spec.enabled and self.plane is not None and demand_of(spec).total:
            self.plane.check_capacity(spec, await self._others(current.row.id))
        await self.store.update_endpoint(
            current.row.id,
            spec_json=spec.model_dump_json(),
            consecutive_failures=0,
            backoff_until=0.0,
            last_error=None,
            event=("started", "endpoint started") if enabled else ("stopped", "endpoint stopped"),
            **({} if enabled else {"state": _enabled_state(False)}),
        )
        self.hint(current.row.id)
        return await self._written(current.row.id, spec)

    async def delete(self, key: str) -> EndpointRecord:
        current = await self.get(key)
        await self.store.update_endpoint(
            current.row.id,
            deleting=True,
            state=EndpointState.DELETING,
            event=("deleting", "delete requested; stopping replicas"),
        )
        self.hint(current.row.id)
        if current.problem:
            return await self.get(current.row.id)  # its stand-in again, with the problem
        return await self._written(current.row.id, current.spec)

    async def _written(self, endpoint_id: str, spec: EndpointSpec) -> EndpointRecord:
        """The endpoint as just written, with the spec in hand: the answer to a write does not parse
        back the JSON it stored (the controller parses it once, cached by its text)."""
        row = await self.store.get_endpoint(endpoint_id)
        if row is None:
            raise NotFound(f"endpoint {endpoint_id} not found")
        return EndpointRecord(row, spec, await self.store.replicas_of([row.id], include_ended=False))

    async def events(self, key: str, limit: int = 100) -> list[EventRow]:
        current = await self.get(key)
        return await self.store.events(current.row.id, limit)


def _enabled_state(enabled: bool) -> EndpointState:
    """The state written at once when a user toggles `enabled` (the controller refines it)."""
    return EndpointState.PROVISIONING if enabled else EndpointState.STOPPED


# Fields that only change what the control plane, gateway or autoscaler do: editing them must not
# restart replicas (renaming a dedicated endpoint must not reload a 70B model).
_NO_ROLLOUT = set(NO_REVISION)  # services/revisions.py


def needs_rollout(before: EndpointSpec, after: EndpointSpec) -> bool:
    """Whether replicas must be replaced (a new generation) for `after` to take effect."""
    return before.model_dump(exclude=_NO_ROLLOUT) != after.model_dump(exclude=_NO_ROLLOUT)
