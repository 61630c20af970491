"""Secrets at rest: sealing, selectors, the master key file, and resolution for replicas."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest

from podium.core.errors import Conflict, Invalid, NotFound, PodiumError
from podium.services.secrets import Sealer, SecretService, Selector, load_master_key
from podium.store.db import migrate
from podium.store.repos import Store


def test_master_key_file_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    key = load_master_key(tmp_path, env={})
    assert len(key) == 32 and stat.S_IMODE((tmp_path / "master_key").stat().st_mode) == 0o600
    assert load_master_key(tmp_path, env={}) == key  # read back, never regenerated


def test_master_key_from_env_and_bad_keys(tmp_path: Path) -> None:
    given = base64.urlsafe_b64encode(b"k" * 32).decode()
    assert load_master_key(tmp_path, env={"PODIUM_MASTER_KEY": given}) == b"k" * 32
    assert not (tmp_path / "master_key").exists()
    with pytest.raises(ValueError):
        load_master_key(tmp_path, env={"PODIUM_MASTER_KEY": base64.b64encode(b"short").decode()})


def test_sealed_payload_is_bound_to_its_row() -> None:
    sealer = Sealer(b"x" * 32)
    plain = b'{"A": "a-plaintext-value"}'
    sealed = sealer.seal(plain, "sec-a@1")
    assert b"plaintext" not in base64.b64decode(sealed)  # no plaintext in the stored form
    assert sealer.open(sealed, "sec-a@1") == plain
    with pytest.raises(PodiumError):
        sealer.open(sealed, "sec-a@2")  # moved to another version: refused
    with pytest.raises(PodiumError):
        Sealer(b"y" * 32).open(sealed, "sec-a@1")  # another master key: refused


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("hf", Selector("hf")),
        ("hf@2", Selector("hf", 2)),
        ("sec-abc", Selector("sec-abc")),
        ("sec-abc@3:TOKEN", Selector("sec-abc", 3, "TOKEN")),
        ("hf:HF_TOKEN", Selector("hf", None, "HF_TOKEN")),
    ],
)
def test_selectors(text: str, parsed: Selector) -> None:
    assert Selector.parse(text) == parsed


@pytest.mark.parametrize("text", ["", "@2", "hf@", "hf@x", "hf:1BAD"])
def test_bad_selectors(text: str) -> None:
    with pytest.raises(ValueError):
        Selector.parse(text)


@pytest.fixture
async def secrets(tmp_path: Path):  # type: ignore[no-untyped-def]
    url = f"sqlite+aiosqlite:///{tmp_path / 'p.db'}"
    migrate(url)
    store = Store(url)
    yield SecretService(store, load_master_key(tmp_path, env={}))
    await store.close()


async def test_versions_and_resolve_env(secrets: SecretService, tmp_path: Path) -> None:
    info = await secrets.create("hf", {"HF_TOKEN": "v1"})
    await secrets.create("multi", {"A": "a", "B": "b"})
    assert (await secrets.add_version("hf", {"HF_TOKEN": "v2"})).latest_version == 2
    env = await secrets.resolve_env(
        {"HF_TOKEN": "hf", "OLD": f"{info.id}@1", "X": "multi:B", "A": "multi", "ONLY": "hf@2"}
    )
    assert env == {"HF_TOKEN": "v2", "OLD": "v1", "X": "b", "A": "a", "ONLY": "v2"}
    with pytest.raises(NotFound):
        await secrets.resolve_env({"C": "multi"})  # two keys, none named C: ambiguous
    with pytest.raises(NotFound):
        await secrets.resolve_env({"K": "nope"})
    with pytest.raises(NotFound):
        await secrets.resolve_env({"K": "hf@9"})
    assert b"v2" not in (tmp_path / "p.db").read_bytes()  # values are never stored in clear


async def test_names_and_payloads_are_checked(secrets: SecretService) -> None:
    with pytest.raises(Invalid):
        await secrets.create("sec-looks-like-an-id", {"A": "1"})
    with pytest.raises(Invalid):
        await secrets.create("ok", {})
    with pytest.raises(Invalid):
        await secrets.create("ok", {"not a key": "1"})
    await secrets.create("ok", {"A": "1"})
    with pytest.raises(Conflict):
        await secrets.create("ok", {"A": "1"})
    with pytest.raises(Conflict):
        await secrets.delete("ok", in_use_by=["ep-1"])
    await secrets.delete("ok", in_use_by=[])
    with pytest.raises(NotFound):
        await secrets.info("ok")


def test_concurrent_first_starts_agree_on_one_key(tmp_path: Path) -> None:
    """api and controller roles may create the key at the same moment: all must read the same one."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: load_master_key(tmp_path, env={}), range(16)))
    assert len(keys) == 1 and sorted(p.name for p in tmp_path.iterdir()) == ["master_key"]
