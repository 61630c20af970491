"""A GGUF model and its LoRA adapters on one llama.cpp replica, each under its own model name.

    python -m podium.models.llama_server --port $PORT --alias BASE -m FILE --lora=NAME=FILE ...

`podium.worker.llama` runs one model; llama-cpp-python's server runs several from a config file
(`--config_file`), each entry a model alias, and an entry may add `lora_path`. So the base answers
as `--alias` and every adapter as its own name: the gateway rewrites an adapter's routing key to that
name and llama-cpp-python switches to the entry the request names (it keeps one model loaded at a
time: switching between base and adapter reloads the small model; the gateway's adapter affinity
keeps an adapter's requests on one replica). Same process contract as the llama worker: it execs
the server, so the replica's PID is the server's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path


def config(ns: argparse.Namespace) -> dict[str, object]:
    common = {"model": str(ns.model_file), "chat_format": "chatml", "n_ctx": ns.ctx_size, "verbose": False}
    # the last token's logits only, as podium.worker.llama runs it: the server's default keeps n_ctx rows
    # of the vocabulary (~400 MB at 2k context for SmolLM2); `logprobs` is then a 400 (llama_serve)
    common |= {"logits_all": False, "n_batch": 64}
    models: list[dict[str, object]] = [{**common, "model_alias": ns.alias}]
    for item in ns.lora:
        name, _, path = item.partition("=")
        if not name or not path:
            raise SystemExit(f"--lora takes NAME=FILE, not {item!r}")
        models.append({**common, "model_alias": name, "lora_path": path})
    return {"host": ns.host, "port": ns.port, "interrupt_requests": False, "models": models}


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m podium.models.llama_server")
    p.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("-m", "--model-file", type=Path, required=True)
    p.add_argument("-a", "--alias", required=True)
    p.add_argument("-c", "--ctx-size", type=int, default=2048)
    p.add_argument("--lora", action="append", default=[], help="NAME=FILE: a LoRA adapter served as NAME")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    ns = parse(argv)
    fd, path = tempfile.mkstemp(prefix="podium-llama-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(config(ns), f)
    cmd = [sys.executable, "-m", "podium.worker.llama_serve", "--config_file", path]
    print("podium.models.llama_server: exec " + " ".join(cmd), flush=True)
    os.execv(cmd[0], cmd)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
