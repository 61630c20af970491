"""What a local replica process gets: argv with $PORT expanded, its environment, its volumes.

Volumes without a container engine: each VolumeBind is exposed as PODIUM_VOLUME_<NAME>=<host path>
(NAME from the container path: /models -> MODELS, /data/cache -> DATA_CACHE), and, when the
container path is absolute, free and its parent exists and is writable, as a symlink there to the
host path. `ro` cannot be enforced without mount namespaces: a local replica can write to a
read-only volume. Bucket sources (s3://...) get the env var only.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from podium.runtime.base import LaunchSpec, VolumeBind

_PORT_RE = re.compile(r"\$\{PORT\}|\$PORT(?![A-Za-z0-9_])")
_PRIVATE_PREFIX = "PODIUM_"  # Podium's own settings (admin token, ...) never leak into replicas


def expand_port(argv: list[str], port: int) -> list[str]:
    return [_PORT_RE.sub(str(port), arg) for arg in argv]


def inherited_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment replicas start from: Podium's own, minus PODIUM_* (tokens, settings)."""
    return {k: v for k, v in environ.items() if not k.startswith(_PRIVATE_PREFIX)}


def volume_env_name(container_path: str) -> str:
    name = re.sub(r"[^A-Za-z0-9]+", "_", container_path).strip("_").upper()
    return f"PODIUM_VOLUME_{name or 'ROOT'}"


def replica_env(spec: LaunchSpec, base: Mapping[str, str], port: int) -> dict[str, str]:
    """base < spec.env < what Podium decides (PORT, GPUs, volumes): the last word is Podium's."""
    env = dict(base)
    env.update(spec.env)
    env["PORT"] = str(port)
    env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in spec.gpus)  # "" = no GPU for CPU replicas
    # CUDA numbers devices fastest-first by default; the inventory uses nvidia-smi's (PCI bus) order.
    env.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    # Output goes to a pipe: without this, Python servers' logs would arrive in 8 KiB blocks.
    env.setdefault("PYTHONUNBUFFERED", "1")
    for vol in spec.volumes:
        env[volume_env_name(vol.container_path)] = _host_source(vol)
    return env


def resolve_executable(argv0: str, env: Mapping[str, str]) -> str | None:
    """Why it cannot run, or None if it can (checked before spawning, for a clear failure)."""
    if "/" in argv0:
        if not os.path.exists(argv0):
            return f"cannot execute {argv0!r}: no such file"
        if os.path.isdir(argv0) or not os.access(argv0, os.X_OK):
            return f"cannot execute {argv0!r}: not an executable file"
        return None
    if shutil.which(argv0, path=env.get("PATH", os.defpath)) is None:
        return f"cannot execute {argv0!r}: command not found on PATH"
    return None


def _host_source(vol: VolumeBind) -> str:
    if "://" in vol.source:
        return vol.source
    return str(Path(vol.source).expanduser().absolute())


@dataclass
class LinkResult:
    created: list[str] = field(default_factory=list)  # links we made (to remove when unused)
    shared: list[str] = field(default_factory=list)  # links that already pointed at the source
    notes: list[str] = field(default_factory=list)  # volumes we could only pass by env var


def link_volumes(volumes: tuple[VolumeBind, ...]) -> LinkResult:
    res = LinkResult()
    for vol in volumes:
        env_name = volume_env_name(vol.container_path)
        source, target = _host_source(vol), vol.container_path
        if "://" in source:
            res.notes.append(f"volume {target}: bucket {source} is passed as ${env_name} only")
            continue
        if not os.path.isabs(target) or os.path.abspath(target) == source:
            continue
        if os.path.islink(target) and os.readlink(target) == source:
            res.shared.append(target)
            continue
        if os.path.lexists(target):
            res.notes.append(f"volume {target}: path exists on this host, use ${env_name}")
            continue
        try:
            os.symlink(source, target)
        except OSError as e:
            res.notes.append(f"volume {target}: cannot link ({e.strerror}), use ${env_name}")
            continue
        res.created.append(target)
    return res


def unlink_unused(links: list[str], still_used: set[str]) -> None:
    """Remove a replica's volume symlinks that no other live replica uses (real paths are never touched)."""
    for link in links:
        if link not in still_used and os.path.islink(link):
            with contextlib.suppress(OSError):
                os.unlink(link)
