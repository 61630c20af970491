"""A small reader of GGUF headers: the key/value metadata at the start of a llama.cpp model file.

Why our own: the registry must say what an uploaded file *is* (architecture, context length, model or
LoRA adapter) from the file itself, before anything serves it, and the `gguf` package is not a
dependency. Only the header is read (metadata, not tensors); big arrays (the tokenizer's vocabulary)
are skipped without being kept. Layout (llama.cpp docs/gguf.md): magic `GGUF`, uint32 version (2, 3),
uint64 tensor count, uint64 key/value count, then each key (uint64 length + UTF-8) with a uint32 type
and its value, all little-endian.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

MAGIC = b"GGUF"
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
_MAX_KEYS = 1 << 16  # a real header has tens to a few hundred; more is garbage, not a model
_MAX_STRING = 1 << 24  # 16 MiB: chat templates are long, nothing legitimate is longer


class NotGguf(ValueError):
    """The bytes are not a GGUF file (or the header is cut short): the message says where."""


@dataclass(frozen=True)
class GgufInfo:
    version: int
    tensor_count: int
    metadata: dict[str, object] = field(default_factory=dict)  # scalars and strings; arrays by length only

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", ""))

    @property
    def kind(self) -> str:
        """`model` or `adapter` (a LoRA: `general.type: adapter`, `adapter.type: lora`)."""
        return (
            "adapter" if self.metadata.get("general.type") == "adapter" or "adapter.type" in self.metadata else "model"
        )

    @property
    def context_length(self) -> int | None:
        value = self.metadata.get(f"{self.architecture}.context_length")
        return int(value) if isinstance(value, int) else None


class _Reader:
    def __init__(self, f: BinaryIO) -> None:
        self.f = f

    def take(self, n: int) -> bytes:
        data = self.f.read(n)
        if len(data) != n:
            raise NotGguf("the GGUF header is cut short (truncated file?)")
        return data

    def unpack(self, fmt: str) -> int | float | bool:
        value: int | float | bool = struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]
        return value

    def string(self) -> str:
        n = int(self.unpack("<Q"))
        if n > _MAX_STRING:
            raise NotGguf(f"a GGUF string of {n} bytes: not a GGUF header")
        return self.take(n).decode("utf-8", errors="replace")

    def value(self, kind: int) -> object:
        if kind in _SCALARS:
            return self.unpack(_SCALARS[kind])
        if kind == _STRING:
            return self.string()
        if kind == _ARRAY:
            item, count = int(self.unpack("<I")), int(self.unpack("<Q"))
            if item == _ARRAY or (item not in _SCALARS and item != _STRING):
                raise NotGguf(f"GGUF array of unknown type {item}")
            if item == _STRING:
                for _ in range(count):
                    self.string()
            else:
                self.f.seek(count * struct.calcsize(_SCALARS[item]), 1)
            return f"<array of {count}>"
        raise NotGguf(f"GGUF value of unknown type {kind}")


def read_header(f: BinaryIO) -> GgufInfo:
    r = _Reader(f)
    if r.take(4) != MAGIC:
        raise NotGguf("not a GGUF file (no GGUF magic)")
    version = int(r.unpack("<I"))
    if version not in (2, 3):
        raise NotGguf(f"GGUF version {version} is not supported (2 and 3 are)")
    tensors, keys = int(r.unpack("<Q")), int(r.unpack("<Q"))
    if keys > _MAX_KEYS:
        raise NotGguf(f"{keys} metadata keys: not a GGUF header")
    meta: dict[str, object] = {}
    for _ in range(keys):
        key = r.string()
        meta[key] = r.value(int(r.unpack("<I")))
    return GgufInfo(version, tensors, meta)


def read_gguf(path: Path) -> GgufInfo:
    with path.open("rb") as f:
        return read_header(f)


def is_gguf(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) == MAGIC
