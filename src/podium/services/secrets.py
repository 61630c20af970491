"""Secrets: named, versioned key/value payloads, sealed with AES-GCM under one master key.

Why AES-GCM with the secret id and version as associated data: a sealed payload copied onto another
row (or another version) fails to open instead of silently answering the wrong secret. Values leave
this module only through `resolve`/`resolve_env`, which the controller calls at replica start; every
API answer carries key names and versions, never values.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from podium.core.errors import Conflict, Invalid, NotFound, PodiumError
from podium.core.ids import new_id
from podium.core.specs import SEALED_PREFIX
from podium.store.repos import Store
from podium.store.tables import SecretRow, SecretVersionRow

SECRET_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
PAYLOAD_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_VALUE_BYTES = 64 * 1024
MASTER_KEY_ENV = "PODIUM_MASTER_KEY"


def load_master_key(data_dir: Path, env: dict[str, str] | None = None) -> bytes:
    """32 bytes from PODIUM_MASTER_KEY (base64) or <data_dir>/master_key (created once, mode 0600)."""
    env = dict(os.environ) if env is None else env
    given = env.get(MASTER_KEY_ENV)
    if given:
        return _decode_key(given, MASTER_KEY_ENV)
    path = data_dir / "master_key"
    if path.exists():
        return _decode_key(path.read_text().strip(), str(path))
    data_dir.mkdir(parents=True, exist_ok=True)
    # written whole to a private temp file, then linked into place: two processes starting at once
    # (api and controller roles) both end up with the one key that won, never a half-written file
    tmp = data_dir / f".master_key.{os.getpid()}.{uuid.uuid4().hex}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode() + "\n")
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return _decode_key(path.read_text().strip(), str(path))


def _decode_key(text: str, where: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip().encode())
    except ValueError as exc:
        raise ValueError(f"{where}: master key must be 32 bytes, base64-encoded") from exc
    if len(key) != 32:
        raise ValueError(f"{where}: master key must be 32 bytes, base64-encoded (got {len(key)})")
    return key


class Sealer:
    """AES-256-GCM; the associated data binds a payload to its secret id and version."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, aad: str) -> str:
        nonce = os.urandom(12)
        return base64.b64encode(nonce + self._aead.encrypt(nonce, plaintext, aad.encode())).decode()

    def open(self, sealed: str, aad: str) -> bytes:
        raw = base64.b64decode(sealed)
        try:
            return self._aead.decrypt(raw[:12], raw[12:], aad.encode())
        except InvalidTag as exc:
            raise PodiumError("a secret cannot be decrypted: wrong master key or tampered data") from exc

    def seal_inline(self, value: str, aad: str) -> str:
        """A value kept inside a stored document (spec_json): `sealed:v1:<base64>`, bound to `aad` (the
        endpoint and field), so neither the database nor its WAL ever holds it in clear."""
        return SEALED_PREFIX + self.seal(value.encode(), aad)

    def open_inline(self, stored: str, aad: str) -> str:
        """The clear value; a value stored in clear before sealing existed is answered as it is."""
        if not is_sealed(stored):
            return stored
        return self.open(stored.removeprefix(SEALED_PREFIX), aad).decode()


def registry_aad(endpoint_id: str) -> str:
    """Binds an inline registry password to its endpoint: copied onto another row it fails to open."""
    return f"endpoint:{endpoint_id}:container.registry.password"


def is_sealed(stored: str | None) -> bool:
    return bool(stored) and str(stored).startswith(SEALED_PREFIX)


@dataclass(frozen=True)
class Selector:
    """`name`, `name@3`, `sec-…`, `sec-…@3`, each optionally `:KEY` (one key of the payload)."""

    ref: str
    version: int | None = None
    key: str | None = None

    @classmethod
    def parse(cls, text: str) -> Selector:
        head, _, key = text.strip().partition(":")
        ref, at, version = head.partition("@")
        if not ref or (at and not version.isdigit()) or (key and not PAYLOAD_KEY_RE.match(key)):
            raise ValueError(f"{text!r} is not a secret selector (name, name@VERSION or id, optionally :KEY)")
        return cls(ref, int(version) if at else None, key or None)

    def names(self, row: SecretRow) -> bool:
        return self.ref in (row.id, row.name)


@dataclass(frozen=True)
class SecretVersionInfo:
    version: int
    keys: list[str]
    created_at: float


@dataclass(frozen=True)
class SecretInfo:
    """What users may see of a secret: never a value."""

    id: str
    name: str
    description: str
    latest_version: int
    keys: list[str]  # of the latest version, or of the version the selector pins
    versions: list[SecretVersionInfo]
    created_at: float
    updated_at: float


def check_payload(payload: dict[str, str]) -> bytes:
    if not payload:
        raise Invalid("payload", "give at least one KEY=VALUE")
    for key, value in payload.items():
        if not PAYLOAD_KEY_RE.match(key):
            raise Invalid(f"payload.{key}", "keys look like environment variables (A-Z, 0-9, _)")
        try:
            size = len(value.encode())
        except UnicodeEncodeError:
            raise Invalid(f"payload.{key}", "value is not valid text (a lone surrogate)") from None
        if size > MAX_VALUE_BYTES:
            raise Invalid(f"payload.{key}", f"value longer than {MAX_VALUE_BYTES} bytes")
    return json.dumps(payload, sort_keys=True).encode()


class SecretService:
    def __init__(self, store: Store, master_key: bytes) -> None:
        self.store = store
        self.sealer = Sealer(master_key)

    def _version_row(self, secret_id: str, version: int, payload: dict[str, str]) -> SecretVersionRow:
        plaintext = check_payload(payload)
        return SecretVersionRow(
            secret_id=secret_id,
            version=version,
            keys=",".join(sorted(payload)),
            sealed=self.sealer.seal(plaintext, f"{secret_id}@{version}"),
            created_at=time.time(),
        )

    async def create(self, name: str, payload: dict[str, str], description: str = "") -> SecretInfo:
        if not SECRET_NAME_RE.match(name) or name.startswith("sec-"):
            raise Invalid("name", "use letters, digits, '.', '_' and '-' (1-128), not starting with 'sec-'")
        now = time.time()
        row = SecretRow(
            id=new_id("sec"), name=name, description=description, latest_version=1, created_at=now, updated_at=now
        )
        await self.store.add_secret(row, self._version_row(row.id, 1, payload))
        return await self.info(row.id)

    async def _row(self, ref: str) -> SecretRow:
        row = await self.store.find_secret(ref)
        if row is None:
            raise NotFound(f"secret {ref!r} not found")
        return row

    async def info(self, selector: str) -> SecretInfo:
        sel = _parse(selector)
        row = await self._row(sel.ref)
        versions = await self.store.secret_versions(row.id)
        infos = [SecretVersionInfo(v.version, _keys(v), v.created_at) for v in versions]
        shown = sel.version or row.latest_version  # `name@2` shows version 2's keys
        latest = next((v.keys for v in infos if v.version == shown), None)
        if latest is None:
            raise NotFound(f"secret {row.name!r} has no version {shown} (latest is {row.latest_version})")
        return SecretInfo(
            row.id, row.name, row.description, row.latest_version, latest, infos, row.created_at, row.updated_at
        )

    async def list_all(self) -> list[SecretInfo]:
        return [await self.info(row.id) for row in await self.store.secrets()]

    async def add_version(self, selector: str, payload: dict[str, str]) -> SecretInfo:
        row = await self._row(_parse(selector).ref)
        check_payload(payload)
        await self.store.add_secret_version(row.id, lambda version: self._version_row(row.id, version, payload))
        return await self.info(row.id)

    async def delete(self, selector: str, in_use_by: list[str]) -> SecretInfo:
        """`in_use_by`: endpoints that reference it (computed by the caller, who knows endpoints)."""
        info = await self.info(selector)
        if in_use_by:
            raise Conflict(
                f"secret {info.name!r} is used by endpoint(s) {', '.join(in_use_by)}; remove it from them first",
                {"endpoints": in_use_by},
            )
        await self.store.delete_secret(info.id)
        return info

    async def resolve(self, selector: str) -> tuple[SecretRow, int, dict[str, str]]:
        """The payload a selector names (latest version unless pinned)."""
        sel = _parse(selector)
        row = await self._row(sel.ref)
        version = sel.version or row.latest_version
        ver = await self.store.secret_version(row.id, version)
        if ver is None:
            raise NotFound(f"secret {row.name!r} has no version {version} (latest is {row.latest_version})")
        payload: dict[str, str] = json.loads(self.sealer.open(ver.sealed, f"{row.id}@{version}"))
        if sel.key is not None:
            if sel.key not in payload:
                raise NotFound(f"secret {row.name}@{version} has no key {sel.key!r}")
            payload = {sel.key: payload[sel.key]}
        return row, version, payload

    async def value(self, selector: str, wanted_key: str) -> str:
        """One value: the selector's `:KEY`, else `wanted_key`, else the payload's only key."""
        sel = _parse(selector)
        row, version, payload = await self.resolve(selector)
        if sel.key is not None:
            return payload[sel.key]
        if wanted_key in payload:
            return payload[wanted_key]
        if len(payload) == 1:
            return next(iter(payload.values()))
        raise NotFound(
            f"secret {row.name}@{version} has no key {wanted_key!r} (keys: {', '.join(sorted(payload))}); "
            f"name one with {row.name}:KEY"
        )

    async def resolve_env(self, selectors: dict[str, str]) -> dict[str, str]:
        """ENV_KEY -> selector  ==>  ENV_KEY -> value. What the controller calls at replica start."""
        return {env_key: await self.value(sel, env_key) for env_key, sel in selectors.items()}


def _parse(selector: str) -> Selector:
    try:
        return Selector.parse(selector)
    except ValueError as exc:
        raise Invalid("selector", str(exc)) from exc


def _keys(v: SecretVersionRow) -> list[str]:
    return [k for k in v.keys.split(",") if k]
