"""Deterministic OpenAI-shaped payloads for the fake worker (pure functions, no I/O).

Kept apart from the HTTP server so the shapes can be read (and checked) without a socket: the
chat/completion/embedding bodies follow the OpenAI wire format closely enough for the official
`openai` client to parse them, and every body echoes the `model` it received so gateway tests
can see the model rewrite.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

CREATED = 1_700_000_000  # a fixed timestamp: responses are byte-for-byte repeatable


def piece(i: int) -> str:
    """The i-th streamed content piece; joined pieces are the non-streaming content."""
    return f"tok{i} "


def content_of(chunks: int) -> str:
    return "".join(piece(i) for i in range(chunks))


def _words(value: Any) -> int:
    """A stable stand-in for a token count: whitespace-separated words in any text found."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(_words(v) for v in value)
    if isinstance(value, dict):
        return sum(_words(v) for k, v in value.items() if k in ("content", "text"))
    return 0


def prompt_tokens(body: dict[str, Any]) -> int:
    return _words(body.get("messages")) + _words(body.get("prompt"))


def usage(body: dict[str, Any], chunks: int) -> dict[str, int]:
    p = prompt_tokens(body)
    return {"prompt_tokens": p, "completion_tokens": chunks, "total_tokens": p + chunks}


def models_list(model: str) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"id": model, "object": "model", "created": CREATED, "owned_by": "podium-fake"}],
    }


def chat_completion(body: dict[str, Any], chunks: int, request_id: str, extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": request_id,
        "object": "chat.completion",
        "created": CREATED,
        "model": body.get("model"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content_of(chunks)},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": usage(body, chunks),
        "podium_fake": extra,
    }


def chat_chunk(body: dict[str, Any], request_id: str, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {
        "id": request_id,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": body.get("model"),
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }


def text_completion(body: dict[str, Any], chunks: int, request_id: str, extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": request_id,
        "object": "text_completion",
        "created": CREATED,
        "model": body.get("model"),
        "choices": [{"index": 0, "text": content_of(chunks), "finish_reason": "stop", "logprobs": None}],
        "usage": usage(body, chunks),
        "podium_fake": extra,
    }


def text_chunk(body: dict[str, Any], request_id: str, text: str, finish: str | None) -> dict[str, Any]:
    return {
        "id": request_id,
        "object": "text_completion",
        "created": CREATED,
        "model": body.get("model"),
        "choices": [{"index": 0, "text": text, "finish_reason": finish, "logprobs": None}],
    }


def usage_chunk(body: dict[str, Any], request_id: str, chunks: int, obj: str) -> dict[str, Any]:
    """The final chunk OpenAI sends with `stream_options.include_usage`: no choices, just usage."""
    return {
        "id": request_id,
        "object": obj,
        "created": CREATED,
        "model": body.get("model"),
        "choices": [],
        "usage": usage(body, chunks),
    }


def vector(text: str, dim: int) -> list[float]:
    """A unit vector derived from sha256(text): same text, same vector, on every machine."""
    out: list[float] = []
    counter = 0
    while len(out) < dim:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        out.extend((b - 127.5) / 127.5 for b in digest)
        counter += 1
    out = out[:dim]
    norm = math.sqrt(sum(x * x for x in out)) or 1.0
    return [round(x / norm, 6) for x in out]


def embeddings(body: dict[str, Any], dim: int, extra: dict[str, Any]) -> dict[str, Any]:
    raw = body.get("input", "")
    items = raw if isinstance(raw, list) and raw and not isinstance(raw[0], int) else [raw]
    texts = [x if isinstance(x, str) else " ".join(str(t) for t in x) for x in items]
    dim = int(body.get("dimensions") or dim)
    tokens = sum(len(t.split()) for t in texts)
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": vector(t, dim)} for i, t in enumerate(texts)],
        "model": body.get("model"),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        "podium_fake": extra,
    }


def error(message: str, kind: str = "invalid_request_error", code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def vllm_metrics(model: str, waiting: float, running: float, kv_cache: float, *, legacy: bool = False) -> str:
    """A `/metrics` page as vLLM writes it (prometheus_client text: HELP/TYPE lines, `engine` and
    `model_name` labels, floats), with the gauges Podium reads among others it must skip. `legacy`:
    the KV-cache gauge under its pre-0.10 name, `vllm:gpu_cache_usage_perc`."""
    labels = f'{{engine="0",model_name="{model}"}}'
    kv_name = "vllm:gpu_cache_usage_perc" if legacy else "vllm:kv_cache_usage_perc"
    return "\n".join(
        [
            "# HELP python_gc_objects_collected_total Objects collected during gc",
            "# TYPE python_gc_objects_collected_total counter",
            'python_gc_objects_collected_total{generation="0"} 1234.0',
            "# HELP vllm:num_requests_running Number of requests in model execution batches.",
            "# TYPE vllm:num_requests_running gauge",
            f"vllm:num_requests_running{labels} {float(running)}",
            "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.",
            "# TYPE vllm:num_requests_waiting gauge",
            f"vllm:num_requests_waiting{labels} {float(waiting)}",
            f"# HELP {kv_name} KV-cache usage. 1 means 100 percent usage.",
            f"# TYPE {kv_name} gauge",
            f"{kv_name}{labels} {float(kv_cache)}",
            "# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.",
            "# TYPE vllm:time_to_first_token_seconds histogram",
            f'vllm:time_to_first_token_seconds_bucket{{engine="0",le="0.001",model_name="{model}"}} 0.0',
            f"vllm:time_to_first_token_seconds_count{labels} 0.0",
            "",
        ]
    )
