"""A small OpenAI-compatible server over Hugging Face transformers, for GPUs without vLLM.

    python -m podium.worker.hf --port $PORT --alias NAME (--model-dir DIR | --tiny) [--max-new-tokens N]

`--model-dir` loads a local transformers model (AutoModelForCausalLM + AutoTokenizer; no hub
access: weights must be on disk, e.g. in the region's model cache); `--tiny` builds a 2-layer
GPT-2 in place with random weights and a byte tokenizer, so a machine with torch but no network
can still prove a replica computes on its GPU. The model goes to `cuda` when torch sees a GPU
(CUDA_VISIBLE_DEVICES, set by Podium, decides which), else CPU. Routes: `GET /health`,
`GET /v1/models`, `POST /v1/completions` and `/v1/chat/completions` (no streaming). Every answer
carries `podium_worker: {device, gpu_name, cuda_visible_devices}` so a check can see where it
ran. Generation runs in a worker thread (one at a time): the event loop keeps answering health
probes. Missing torch/transformers: exit 2 saying what to install.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Sequence
from typing import Any, Protocol

from aiohttp import web


class Generator(Protocol):
    def generate(self, prompt: str, max_new_tokens: int) -> tuple[str, int, int]:
        """(completion text, prompt tokens, completion tokens)."""
        ...

    def where(self) -> dict[str, Any]: ...


class TransformersGenerator:
    """The model on the GPU (or CPU), greedy decoding."""

    def __init__(self, model_dir: str | None) -> None:
        import torch
        import transformers as tf

        self.torch = torch
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        if model_dir:
            self.tokenizer: Any = tf.AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
            self.model = tf.AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True)
        else:
            torch.manual_seed(0)
            config = tf.GPT2Config(
                vocab_size=258, n_positions=256, n_embd=64, n_layer=2, n_head=2, bos_token_id=256, eos_token_id=257
            )
            self.model = tf.GPT2LMHeadModel(config)
            self.tokenizer = None  # bytes: ids 0-255, 256 = end
        self.model.to(self.device).eval()

    def _encode(self, text: str) -> Any:
        if self.tokenizer is not None:
            return self.tokenizer(text, return_tensors="pt").input_ids.to(self.device)
        ids = list(text.encode("utf-8")[-200:]) or [32]
        return self.torch.tensor([ids], device=self.device)

    def generate(self, prompt: str, max_new_tokens: int) -> tuple[str, int, int]:
        ids = self._encode(prompt)
        with self.torch.no_grad():
            out = self.model.generate(
                ids, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=256 if not self.tokenizer else None
            )
        new = out[0, ids.shape[1] :].tolist()
        if self.tokenizer is not None:
            text = self.tokenizer.decode(new, skip_special_tokens=True)
        else:
            text = bytes(b for b in new if b < 256).decode("utf-8", "replace")
        return text, int(ids.shape[1]), len(new)

    def where(self) -> dict[str, Any]:
        cuda = self.device == "cuda"
        return {
            "device": str(next(self.model.parameters()).device),
            "gpu_name": self.torch.cuda.get_device_name(0) if cuda else None,
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        }


def _prompt_of(body: dict[str, Any]) -> str:
    if "messages" in body:
        return "\n".join(str(m.get("content", "")) for m in body.get("messages") or [] if isinstance(m, dict))
    prompt = body.get("prompt", "")
    return prompt if isinstance(prompt, str) else " ".join(map(str, prompt))


def make_app(gen: Generator, alias: str, max_new_tokens: int) -> web.Application:
    lock = asyncio.Lock()

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def models(_: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": alias, "object": "model", "owned_by": "podium"}]})

    async def complete(request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("stream"):
            return web.json_response({"error": {"message": "streaming is not supported"}}, status=400)
        n = max(1, min(int(body.get("max_tokens") or max_new_tokens), max_new_tokens))
        async with lock:
            text, p, c = await asyncio.to_thread(gen.generate, _prompt_of(body), n)
        chat = request.path.endswith("/chat/completions")
        choice: dict[str, Any] = {"index": 0, "finish_reason": "length" if c >= n else "stop"}
        choice.update({"message": {"role": "assistant", "content": text}} if chat else {"text": text})
        return web.json_response(
            {
                "id": f"cmpl-{time.time_ns()}",
                "object": "chat.completion" if chat else "text_completion",
                "created": int(time.time()),
                "model": body.get("model", alias),
                "choices": [choice],
                "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c},
                "podium_worker": gen.where(),
            }
        )

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/completions", complete)
    app.router.add_post("/v1/chat/completions", complete)
    return app


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m podium.worker.hf", description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    p.add_argument("--alias", default=os.environ.get("PODIUM_SERVED_MODEL_NAME", "model"))
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model-dir")
    src.add_argument("--tiny", action="store_true")
    p.add_argument("--max-new-tokens", type=int, default=32)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    ns = parse_args(argv)
    try:
        gen = TransformersGenerator(None if ns.tiny else ns.model_dir)
    except ImportError as exc:
        print(f"podium.worker.hf needs torch and transformers ({exc}); pip install torch transformers", file=sys.stderr)
        return 2
    print(f"hf worker serving {ns.alias!r} on {gen.where()} at {ns.host}:{ns.port}", flush=True)
    web.run_app(make_app(gen, ns.alias, ns.max_new_tokens), host=ns.host, port=ns.port, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
