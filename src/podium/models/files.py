"""Where registered weights live on disk, and the blocking file work of an upload.

Layout under the model store (`<data-dir>/models`, or `PODIUM_MODEL_STORE`): `.uploads/<id>.part`
while bytes arrive, then `<id>/<file name>` once complete (a rename on the same filesystem: a model
file is either whole under its final name or not there). Every function here blocks (disk I/O,
sha256 over megabytes): the service runs them in a worker thread so the API's event loop keeps
serving while a chunk is written and hashed (hashlib releases the GIL on big buffers).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path
from typing import Any

READ_BLOCK = 8 << 20
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


class ModelFiles:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.uploads = root / ".uploads"

    def part(self, model_id: str) -> Path:
        return self.uploads / f"{model_id}.part"

    def final(self, model_id: str, name: str, fmt: str) -> Path:
        stem = _SAFE.sub("-", name.rsplit("/", 1)[-1]).strip("-.") or "model"
        return self.root / model_id / f"{stem}.{fmt}"

    def start(self, model_id: str) -> None:
        self.uploads.mkdir(parents=True, exist_ok=True)
        os.close(os.open(self.part(model_id), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))

    def write_at(self, model_id: str, offset: int, data: bytes) -> None:
        """Write one chunk where the upload stands (and cut anything a crash left past it)."""
        fd = os.open(self.part(model_id), os.O_WRONLY)
        try:
            if data:
                os.pwrite(fd, data, offset)
            os.ftruncate(fd, offset + len(data))  # drop whatever a crash left past the recorded offset
        finally:
            os.close(fd)

    def rehash(self, model_id: str, upto: int) -> Any:
        """The sha256 state of the first `upto` bytes: after a restart (hash state is not persisted),
        a resumed upload re-reads what it already has, at disk speed, once."""
        h = hashlib.sha256()
        with self.part(model_id).open("rb") as f:
            left = upto
            while left > 0:
                block = f.read(min(READ_BLOCK, left))
                if not block:
                    break
                h.update(block)
                left -= len(block)
        return h

    def complete(self, model_id: str, name: str, fmt: str) -> Path:
        """fsync, then rename the part file to its final name (atomic on one filesystem)."""
        part = self.part(model_id)
        fd = os.open(part, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        dest = self.final(model_id, name, fmt)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(part, dest)
        return dest

    def remove(self, model_id: str) -> None:
        self.part(model_id).unlink(missing_ok=True)
        shutil.rmtree(self.root / model_id, ignore_errors=True)

    def leftovers(self, known: set[str]) -> list[str]:
        """Ids of part files or model folders no row knows (a crash between the file and the row)."""
        out = []
        if self.uploads.is_dir():
            out += [p.name.removesuffix(".part") for p in self.uploads.glob("*.part")]
        if self.root.is_dir():
            out += [p.name for p in self.root.iterdir() if p.is_dir() and p.name.startswith("mdl-")]
        return [i for i in out if i not in known]

    def part_size(self, model_id: str) -> int | None:
        try:
            return self.part(model_id).stat().st_size
        except FileNotFoundError:
            return None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(READ_BLOCK):
            h.update(block)
    return h.hexdigest()
