"""The transformers worker's HTTP side (real socket, a stub generator: no torch here) and its
missing-torch error (a real process). The model on a GPU runs in scripts/gpu-check.sh."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import httpx
from aiohttp import web

from podium.worker import hf


class StubGenerator:
    def generate(self, prompt: str, max_new_tokens: int) -> tuple[str, int, int]:
        return prompt[::-1][:max_new_tokens], len(prompt), min(len(prompt), max_new_tokens)

    def where(self) -> dict[str, Any]:
        return {"device": "cpu", "gpu_name": None, "cuda_visible_devices": "3"}


async def test_openai_shapes_over_a_real_socket() -> None:
    runner = web.AppRunner(hf.make_app(StubGenerator(), "tiny", 8))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
            assert (await c.get("/health")).status_code == 200
            assert (await c.get("/v1/models")).json()["data"][0]["id"] == "tiny"
            text = (await c.post("/v1/completions", json={"model": "tiny", "prompt": "abc", "max_tokens": 2})).json()
            assert text["choices"][0]["text"] == "cb" and text["usage"]["completion_tokens"] == 2
            assert text["podium_worker"]["cuda_visible_devices"] == "3"
            msgs = [{"role": "user", "content": "hello"}]
            chat = (await c.post("/v1/chat/completions", json={"model": "tiny", "messages": msgs})).json()
            assert chat["choices"][0]["message"] == {"role": "assistant", "content": "olleh"[:8]}
            assert (await c.post("/v1/completions", json={"prompt": "x", "stream": True})).status_code == 400
    finally:
        await runner.cleanup()


def test_without_torch_it_says_what_to_install() -> None:
    try:
        import torch  # noqa: F401

        has_torch = True
    except ImportError:
        has_torch = False
    if has_torch:
        return  # the GPU script covers the real path
    res = subprocess.run(
        [sys.executable, "-m", "podium.worker.hf", "--tiny", "--port", "1"], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 2 and "pip install torch transformers" in res.stderr
