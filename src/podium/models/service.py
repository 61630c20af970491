"""The model registry's use cases: uploads (resumable, checked), registrations, listing, delete.

An upload is created with its size (and, optionally, its sha256), then receives chunks at explicit
offsets (`PATCH`, one bounded chunk per request: the listener holds a request body in memory, so a
big file is never one body). Each chunk is written and hashed in a worker thread. When the last
byte arrives the upload is checked — sha256, then what the file says it is — and only then becomes
a ready model the catalog offers as a template; a failed check deletes the row and the file, so
nothing half-registered stays behind. A restart keeps unfinished uploads resumable (the hash state
is rebuilt from the part file) and removes files no row knows (`recover`).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete as sa_delete
from sqlalchemy import or_, select, update

from podium.catalog.custom import Adapter, CustomModel
from podium.core.errors import Conflict, Invalid, NotFound, PodiumError
from podium.core.ids import new_id
from podium.gateway.routes import adapter_routing_key
from podium.models.files import ModelFiles, sha256_file
from podium.models.inspect import FORMATS, VLLM_ARCHS, ModelFacts, inspect_path
from podium.models.table import READY, UPLOADING, ModelRow
from podium.store.repos import Store

STALE_UPLOAD_S = 7 * 86400.0  # an upload nobody resumed for a week is dropped at the next start
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$")


class QuotaExceeded(PodiumError):
    status = 413
    code = "quota_exceeded"


@dataclass(frozen=True)
class NewUpload:
    name: str
    size: int
    sha256: str | None = None
    base: str | None = None
    format: str | None = None


class ModelService:
    """`deployments(name)`: (endpoint id, routing key) of the endpoints that deploy a model;
    `volume_dir(name)`: a volume's directory; `on_change(models)`: gives the catalog the ready models
    after every change; `is_template(name)`: a shipped or operator template has that name (a model
    may not shadow it); `roll(base, change)`: a new revision of each endpoint that deploys `base`, so
    its replicas roll to load (or drop) an adapter — the endpoints rolled."""

    def __init__(
        self,
        store: Store,
        files: ModelFiles,
        deployments: Callable[[str], Awaitable[list[tuple[str, str]]]],
        volume_dir: Callable[[str], Awaitable[str]],
        on_change: Callable[[list[CustomModel]], None],
        quota_bytes: int | None = None,
        is_template: Callable[[str], bool] = lambda _: False,
        roll: Callable[[str, str], Awaitable[list[str]]] | None = None,
    ) -> None:
        self.roll = roll
        self.is_template = is_template
        self.store = store
        self.files = files
        self.deployments = deployments
        self.volume_dir = volume_dir
        self.on_change = on_change
        self.quota_bytes = quota_bytes
        self._hashers: dict[str, tuple[Any, int]] = {}  # upload id -> (sha256 state, bytes hashed)
        self._locks: dict[str, asyncio.Lock] = {}  # one chunk at a time per upload
        # the last chunk's sha256 update, running in a thread while the next chunk arrives (at most one)
        self._hashing: dict[str, asyncio.Future[None]] = {}

    # --- reads ---------------------------------------------------------------------------------

    async def users(self, name: str) -> list[str]:
        return [eid for eid, _ in await self.deployments(name)]

    async def adapter_keys(self, row: ModelRow) -> list[str]:
        """An adapter's routing keys: one on each endpoint that deploys its base."""
        if row.base is None or row.status != READY:
            return []
        return [adapter_routing_key(key, row.name) for _, key in await self.deployments(row.base)]

    async def list(self) -> list[ModelRow]:
        async with self.store.session() as s:
            return list((await s.execute(select(ModelRow).order_by(ModelRow.created_at))).scalars())

    async def get(self, key: str) -> ModelRow:
        async with self.store.session() as s:
            found = (await s.execute(select(ModelRow).where(or_(ModelRow.id == key, ModelRow.name == key)))).scalar()
        if found is not None:
            return found
        raise NotFound(f"no model {key!r} (see `podium model list`)")

    # --- uploads -------------------------------------------------------------------------------

    async def create_upload(self, req: NewUpload) -> ModelRow:
        await self._check_new(req.name, req.base)
        if req.format is not None and req.format not in FORMATS:
            raise Invalid("format", f"{req.format!r}: formats are {', '.join(FORMATS)}")
        if req.sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", req.sha256):
            raise Invalid("sha256", "64 lowercase hex digits")
        await self._check_quota(req.size)
        now = time.time()
        row = ModelRow(
            id=new_id("mdl"), name=req.name, base=req.base, source="upload", status=UPLOADING,
            format=req.format or "", size_bytes=req.size, received_bytes=0, sha256=req.sha256 or "",
            created_at=now, updated_at=now,
        )  # fmt: skip
        await asyncio.to_thread(self.files.start, row.id)
        await self._add(row)
        self._hashers[row.id] = (hashlib.sha256(), 0)
        return row

    async def write_chunk(self, key: str, offset: int, data: bytes) -> ModelRow:
        """Bytes at `offset` (must be where the upload stands: 409 says where); the last one completes it."""
        row = await self.get(key)
        lock = self._locks.setdefault(row.id, asyncio.Lock())
        async with lock:
            row = await self.get(row.id)
            if row.status != UPLOADING:
                raise Conflict(f"model {row.name} is already complete", {"field": "offset"})
            if offset != row.received_bytes:
                raise Conflict(
                    f"the upload stands at byte {row.received_bytes}, not {offset}: resume from there",
                    {"field": "offset", "offset": row.received_bytes},
                )
            if offset + len(data) > row.size_bytes:
                raise Invalid("body", f"{len(data)} bytes at {offset} go past the declared size {row.size_bytes}")
            hasher = await self._hasher(row)
            await asyncio.to_thread(self.files.write_at, row.id, offset, data)
            self._hashers[row.id] = (hasher, offset + len(data))
            # hashing overlaps the next chunk's transfer (hashlib releases the GIL): the upload runs at
            # min(network, disk, sha256) instead of their sum; the next chunk waits for it (bounded memory)
            self._hashing[row.id] = asyncio.ensure_future(asyncio.to_thread(hasher.update, data))
            await self._advance(row.id, offset, offset + len(data))
            if offset + len(data) == row.size_bytes:
                await self._hashing.pop(row.id)
                return await self._finish(row.id, hasher.hexdigest())
            return await self.get(row.id)

    async def complete(self, key: str) -> ModelRow:
        """An explicit finish: a truncated upload (fewer bytes than declared) is a 422, and stays resumable."""
        row = await self.get(key)
        if row.status == READY:
            return row
        raise Invalid("size", f"the upload is truncated: {row.received_bytes} of {row.size_bytes} bytes arrived")

    async def _hasher(self, row: ModelRow) -> Any:
        pending = self._hashing.pop(row.id, None)
        if pending is not None:
            await pending
        hasher, upto = self._hashers.get(row.id, (None, -1))
        if hasher is None or upto != row.received_bytes:  # a restart: rebuild it from the bytes on disk
            hasher = await asyncio.to_thread(self.files.rehash, row.id, row.received_bytes)
        return hasher

    async def _finish(self, model_id: str, digest: str) -> ModelRow:
        row = await self.get(model_id)
        self._hashers.pop(model_id, None)
        self._locks.pop(model_id, None)
        try:
            if row.sha256 and row.sha256 != digest:
                raise Invalid("sha256", f"the file's sha256 is {digest}, not {row.sha256}: nothing was kept")
            facts = await asyncio.to_thread(inspect_path, self.files.part(model_id), row.format or None)
            await self._check_kind(row.base, facts)
            path = await asyncio.to_thread(self.files.complete, model_id, row.name, facts.format)
        except PodiumError:
            await self._drop(model_id)
            raise
        await self._set(model_id, status=READY, sha256=digest, path=str(path), **_facts(facts), updated_at=time.time())
        await self.sync_catalog()
        await self._roll_base(row.base, f"+{row.name}")
        return await self.get(model_id)

    # --- registrations (no upload) ------------------------------------------------------------

    async def register_volume(self, name: str, volume: str, rel: str, base: str | None) -> ModelRow:
        await self._check_new(name, base)
        root, path = await asyncio.to_thread(_within, await self.volume_dir(volume), rel)
        if root != path and root not in path.parents:
            raise Invalid("path", f"{rel!r} leaves the volume {volume!r}")
        facts = await asyncio.to_thread(inspect_path, path)
        await self._check_kind(base, facts)
        digest = await asyncio.to_thread(sha256_file, path) if path.is_file() else ""
        return await self._add_ready(name, base, "volume", str(path), facts, digest)

    async def register_hub(self, name: str, hub_id: str, architecture: str | None) -> ModelRow:
        """A hub id, for machines that reach the hub: vLLM downloads it at start (nothing to read here)."""
        await self._check_new(name, None)
        if architecture is not None and architecture not in VLLM_ARCHS:
            raise Invalid("architecture", f"{architecture!r}: no engine here serves it")
        facts = ModelFacts("safetensors", architecture or "unknown (hub)", "model", None, ("vllm",), 0)
        return await self._add_ready(name, None, "hub", hub_id, facts, "")

    async def _add_ready(
        self, name: str, base: str | None, source: str, path: str, f: ModelFacts, digest: str
    ) -> ModelRow:
        now = time.time()
        row = ModelRow(
            id=new_id("mdl"),
            name=name,
            base=base,
            source=source,
            status=READY,
            path=path,
            sha256=digest,
            received_bytes=f.size_bytes,
            created_at=now,
            updated_at=now,
            **_facts(f),
        )
        await self._add(row)
        await self.sync_catalog()
        await self._roll_base(base, f"+{name}")
        return row

    # --- delete, recovery, catalog --------------------------------------------------------------

    async def delete(self, key: str) -> ModelRow:
        """A deployed base is a 409. An adapter of a deployed base goes at once: its row first (the
        catalog drops it), then each endpoint of the base rolls to a revision without it (its routing
        key leaves the route with that revision), then its file."""
        row = await self.get(key)
        if row.status == READY and row.base is not None and self.roll is not None:
            async with self.store.session() as s, s.begin():
                await s.execute(sa_delete(ModelRow).where(ModelRow.id == row.id))
            await self.sync_catalog()
            await self._roll_base(row.base, f"-{row.name}")
            await self._drop(row.id)
            return row
        if row.status == READY:
            users = await self.users(row.base or row.name)
            if users:
                what = f"its base {row.base}" if row.base else "it"
                raise Conflict(f"model {row.name} is in use: endpoints {', '.join(users)} deploy {what}",
                               {"field": "id", "endpoints": users})  # fmt: skip
            adapters = [r.name for r in await self.list() if r.base == row.name]
            if adapters:
                raise Conflict(f"model {row.name} has adapters ({', '.join(adapters)}): delete them first")
        await self._drop(row.id)
        await self.sync_catalog()
        return row

    async def recover(self, now: float | None = None) -> None:
        """At start: unfinished uploads stay resumable (their part file cut back to the recorded
        offset on the next chunk); an upload whose file is gone, or untouched for STALE_UPLOAD_S (it
        holds quota), is dropped; files no row knows are removed."""
        rows = await self.list()
        now = time.time() if now is None else now
        for row in rows:
            if row.status == UPLOADING:
                size = await asyncio.to_thread(self.files.part_size, row.id)
                if size is None or size < row.received_bytes or now - row.updated_at > STALE_UPLOAD_S:
                    await self._drop(row.id)
        for orphan in await asyncio.to_thread(self.files.leftovers, {r.id for r in rows}):
            await asyncio.to_thread(self.files.remove, orphan)
        await self.sync_catalog()

    async def sync_catalog(self) -> None:
        self.on_change(custom_models(await self.list()))

    # --- helpers --------------------------------------------------------------------------------

    async def _check_new(self, name: str, base: str | None) -> None:
        if not NAME_RE.match(name):
            raise Invalid("name", "letters, digits, '.', '_', '-' and '/' (up to 128), starting with a letter or digit")
        rows = await self.list()
        if any(r.name == name for r in rows) or self.is_template(name):
            raise Conflict(f"a model named {name!r} exists", {"field": "name"})
        if base is not None:
            b = next((r for r in rows if r.name == base), None)
            if b is None or b.status != READY or b.base is not None:
                raise Invalid("base", f"{base!r} is not a ready base model (see `podium model list`)")
            # a deployed base is fine: replicas load adapters at start, so its endpoints roll to a new
            # revision once the adapter is ready (_roll_base), and its key is routed after the rollout

    async def _roll_base(self, base: str | None, change: str) -> None:
        """An adapter of `base` came or went: the endpoints that deploy it roll (docs/models.md)."""
        if base is not None and self.roll is not None:
            await self.roll(base, change)

    async def _check_kind(self, base: str | None, facts: ModelFacts) -> None:
        if base is None and facts.kind == "adapter":
            raise Invalid("base", "the file is an adapter (LoRA): name the model it adapts with `base`")
        if base is not None and facts.kind != "adapter":
            raise Invalid("base", "the file is a whole model, not an adapter: leave out `base`")
        if base is not None:
            b = await self.get(base)
            if b.format != facts.format:
                raise Invalid("base", f"a {facts.format} adapter cannot ride on the {b.format} model {base}")

    async def _check_quota(self, size: int) -> None:
        if self.quota_bytes is None:
            return
        used = sum(r.size_bytes for r in await self.list() if r.source == "upload")
        if used + size > self.quota_bytes:
            raise QuotaExceeded(
                f"the model store holds {used} of {self.quota_bytes} bytes: {size} more do not fit",
                {"field": "size", "used": used, "quota": self.quota_bytes},
            )

    async def _add(self, row: ModelRow) -> None:
        async with self.store.session() as s, s.begin():
            s.add(row)

    async def _set(self, model_id: str, **values: object) -> None:
        async with self.store.session() as s, s.begin():
            await s.execute(update(ModelRow).where(ModelRow.id == model_id).values(**values))

    async def _advance(self, model_id: str, offset: int, to: int) -> None:
        """Move the upload's offset only from where this chunk started: with several `--role api`
        processes (one lock each), a second writer of the same offset gets a 409, not a silent double."""
        where = (ModelRow.id == model_id) & (ModelRow.received_bytes == offset)
        async with self.store.session() as s, s.begin():
            done = await s.execute(update(ModelRow).where(where).values(received_bytes=to, updated_at=time.time()))
        if getattr(done, "rowcount", 1) != 1:
            self._hashers.pop(model_id, None)  # rebuilt from the file on the next chunk
            self._hashing.pop(model_id, None)
            raise Conflict(
                f"another request moved the upload past byte {offset}: GET it and resume", {"field": "offset"}
            )

    async def _drop(self, model_id: str) -> None:
        async with self.store.session() as s, s.begin():
            row = await s.get(ModelRow, model_id)
            if row is not None:
                await s.delete(row)
        self._hashers.pop(model_id, None)
        await asyncio.to_thread(self.files.remove, model_id)


def _within(volume_dir: str, rel: str) -> tuple[Path, Path]:
    try:
        root = Path(volume_dir).resolve()
        return root, (root / rel).resolve()
    except (ValueError, OSError) as exc:  # a NUL byte, a symlink loop: the user's path, not our fault
        raise Invalid("path", f"{rel!r} is not a usable path: {exc}") from exc


def _facts(f: ModelFacts) -> dict[str, Any]:
    return {
        "format": f.format, "architecture": f.architecture, "kind": f.kind, "context_length": f.context_length,
        "engines": ",".join(f.engines), "size_bytes": f.size_bytes,
    }  # fmt: skip


def custom_models(rows: list[ModelRow]) -> list[CustomModel]:
    """Ready base models with their ready adapters: what the catalog offers."""
    ready = [r for r in rows if r.status == READY]
    return [
        CustomModel(
            name=r.name,
            format=r.format,
            path=r.path,
            architecture=r.architecture,
            size_bytes=r.size_bytes,
            context_length=r.context_length,
            adapters=tuple(Adapter(a.name, a.path) for a in ready if a.base == r.name),
        )
        for r in ready
        if r.base is None
    ]
