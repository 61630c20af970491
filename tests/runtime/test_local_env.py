"""What a local replica's process sees: env (minus Podium's secrets), volumes as env + symlinks."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

from podium.runtime.base import VolumeBind
from podium.runtime.local import LocalBackend
from podium.runtime.local_env import expand_port, volume_env_name

from .conftest import py, spec, wait_line

SHOW_ENV = "import os, sys\nfor k in sys.argv[1:]: print(k, '=', os.environ.get(k, '<unset>'))\n"


def test_port_expansion_forms() -> None:
    argv = ["srv", "--port", "$PORT", "--url=http://h:${PORT}/x", "$PORTS", "$PORT_X", "${PORT}${PORT}"]
    assert expand_port(argv, 1234) == [
        "srv",
        "--port",
        "1234",
        "--url=http://h:1234/x",
        "$PORTS",
        "$PORT_X",
        "12341234",
    ]


def test_volume_env_names() -> None:
    assert volume_env_name("/models") == "PODIUM_VOLUME_MODELS"
    assert volume_env_name("/data/hf-cache/") == "PODIUM_VOLUME_DATA_HF_CACHE"


async def test_podium_settings_do_not_leak_but_spec_env_does_reach(
    make_backend: Callable[..., LocalBackend],
) -> None:
    base = {"PATH": os.environ["PATH"], "PODIUM_ADMIN_TOKEN": "secret", "HOME": "/root"}
    backend = make_backend(base_env=base)
    env = {"PODIUM_REPLICA_ID": "rep-e", "HF_TOKEN": "hf_x"}
    keys = ["PODIUM_ADMIN_TOKEN", "PODIUM_REPLICA_ID", "HF_TOKEN", "HOME"]
    await backend.start(spec("rep-e", [*py(SHOW_ENV), *keys], env=env))
    await wait_line(backend, "rep-e", "HOME = /root")
    text = backend.read_tail("rep-e")
    assert "PODIUM_ADMIN_TOKEN = <unset>" in text
    assert "PODIUM_REPLICA_ID = rep-e" in text and "HF_TOKEN = hf_x" in text
    await backend.close()


async def test_volumes_by_env_and_symlink(backend: LocalBackend, tmp_path: Path) -> None:
    source = tmp_path / "store"
    source.mkdir()
    (source / "weights.bin").write_text("w")
    mount = tmp_path / "mnt" / "models"
    mount.parent.mkdir()
    taken = tmp_path / "taken"
    taken.mkdir()
    volumes = (
        VolumeBind(str(source), str(mount), read_only=True),
        VolumeBind(str(source), str(taken)),
        VolumeBind("s3://bucket/prefix", "/bucket"),
    )
    code = (
        "import os, sys\n"
        "print('read', open(sys.argv[1] + '/weights.bin').read())\n"
        "for k in sys.argv[2:]: print(k, os.environ[k])\n"
        "import time; time.sleep(30)\n"
    )
    keys = [volume_env_name(str(mount)), volume_env_name(str(taken)), "PODIUM_VOLUME_BUCKET"]
    obs = await backend.start(spec("rep-vol", [*py(code), str(mount), *keys], volumes=volumes))
    await wait_line(backend, "rep-vol", "PODIUM_VOLUME_BUCKET")
    text = backend.read_tail("rep-vol")
    assert "read w" in text
    assert f"{keys[0]} {source}" in text and f"{keys[1]} {source}" in text
    assert "PODIUM_VOLUME_BUCKET s3://bucket/prefix" in text
    assert "path exists" in obs.detail and "bucket" in obs.detail  # said, not silently skipped
    assert mount.is_symlink()
    await backend.stop("rep-vol", 2)
    assert not mount.exists() and not mount.is_symlink()  # our link goes with the last user
    assert taken.is_dir() and (source / "weights.bin").exists()  # never touched


async def test_python_output_arrives_unbuffered(backend: LocalBackend) -> None:
    argv = [sys.executable, "-c", "import time; print('no flush needed'); time.sleep(30)"]  # no -u
    await backend.start(spec("rep-unbuf", argv))
    await wait_line(backend, "rep-unbuf", "no flush needed", timeout=3)
