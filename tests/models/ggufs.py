"""Tiny GGUF files written byte by byte (the format the registry's reader parses), for tests."""

from __future__ import annotations

import struct
from pathlib import Path

_U32, _STR, _U64 = 4, 8, 10


def _s(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def gguf_bytes(arch: str = "llama", *, kind: str = "model", ctx: int | None = 2048, pad: int = 0) -> bytes:
    """A GGUF v3 header (no tensors) with the keys the registry reads, an array to skip, then padding."""
    kv: list[bytes] = [_s("general.architecture") + struct.pack("<I", _STR) + _s(arch)]
    kv.append(_s("general.type") + struct.pack("<I", _STR) + _s(kind))
    if ctx is not None:
        kv.append(_s(f"{arch}.context_length") + struct.pack("<I", _U32) + struct.pack("<I", ctx))
    tokens = [_s(t) for t in ("<s>", "</s>", "hello")]
    kv.append(_s("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, _STR, len(tokens)) + b"".join(tokens))
    kv.append(_s("general.file_type") + struct.pack("<I", _U64) + struct.pack("<Q", 2))
    head = b"GGUF" + struct.pack("<IQQ", 3, 0, len(kv)) + b"".join(kv)
    return head + b"\0" * pad


def write_gguf(path: Path, arch: str = "llama", **kw: object) -> Path:
    path.write_bytes(gguf_bytes(arch, **kw))  # type: ignore[arg-type]
    return path
