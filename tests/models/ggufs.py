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


def _kv_str(key: str, value: str) -> bytes:
    return _s(key) + struct.pack("<I", _STR) + _s(value)


def lora_bytes(layers: int, n_embd: int, rank: int = 4, scale: float = 0.5, arch: str = "llama") -> bytes:
    """A real LoRA adapter in GGUF (what llama.cpp's `--lora` loads): A (rank x n_embd) and B (n_embd x
    rank) F32 pairs for every layer's attn_q. Values are a fixed pattern, big enough that the adapted
    model answers differently from its base (proof it was applied), no numpy needed."""
    kv = [
        _kv_str("general.architecture", arch),
        _kv_str("general.type", "adapter"),
        _kv_str("adapter.type", "lora"),
        _s("adapter.lora.alpha") + struct.pack("<I", 6) + struct.pack("<f", float(rank)),
    ]
    tensors: list[tuple[str, tuple[int, int], bytes]] = []
    for i in range(layers):
        a = [scale * (((i * 7 + j * 13) % 17) - 8) / 8 for j in range(rank * n_embd)]
        b = [scale * (((i * 5 + j * 11) % 19) - 9) / 9 for j in range(n_embd * rank)]
        tensors.append((f"blk.{i}.attn_q.weight.lora_a", (n_embd, rank), struct.pack(f"<{len(a)}f", *a)))
        tensors.append((f"blk.{i}.attn_q.weight.lora_b", (rank, n_embd), struct.pack(f"<{len(b)}f", *b)))
    infos, offset = [], 0
    for name, ne, data in tensors:
        infos.append(_s(name) + struct.pack("<I", 2) + struct.pack("<QQ", *ne) + struct.pack("<IQ", 0, offset))
        offset += -(-len(data) // 32) * 32
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv)) + b"".join(kv) + b"".join(infos)
    out = bytearray(head + b"\0" * (-len(head) % 32))
    for _, _, data in tensors:
        out += data + b"\0" * (-len(data) % 32)
    return bytes(out)
