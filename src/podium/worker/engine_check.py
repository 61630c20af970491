"""Start an engine only if it is the version the catalog's recipes were written for.

The local process form runs whatever `vllm` is on the PATH; a different version may reject or
silently reinterpret a recipe's flags (they are checked against v0.10.2's parser). So the recipe
runs `python -m podium.worker.engine_check --expect vllm==0.10.2 -- vllm serve ...`: this finds
the executable, asks its own interpreter (the shebang's) for the installed distribution's version
(fast: no torch import), and on a match replaces itself with the engine (same PID, same signals);
on a mismatch or a missing engine it exits 3 with one line that says what was found and what to do,
which the replica's failure event shows.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

MISMATCH_EXIT = 3
_VERSION_SNIPPET = "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))"


def interpreter_of(executable: str) -> str | None:
    """The Python a console script runs under (its `#!` line), None when it is not a Python script."""
    try:
        with open(executable, "rb") as f:
            first = f.readline(512).decode("utf-8", "replace").strip()
    except OSError:
        return None
    if not first.startswith("#!"):
        return None
    parts = first[2:].split()
    if parts and parts[0].endswith("/env") and len(parts) > 1:
        return shutil.which(parts[1])
    return parts[0] if parts and "python" in Path(parts[0]).name else None


def installed_version(distribution: str, executable: str, timeout_s: float = 60.0) -> str | None:
    """The version of `distribution` as the engine's own interpreter sees it, else `EXE --version`."""
    python = interpreter_of(executable)
    argv = [python, "-c", _VERSION_SNIPPET, distribution] if python else [executable, "--version"]
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired):
        return None
    out = res.stdout.strip().splitlines()
    return out[-1].strip() if res.returncode == 0 and out else None


def check(expect: str, engine_argv: Sequence[str]) -> str | None:
    """None when the engine is there in the expected version; else the error line to print."""
    distribution, _, wanted = expect.partition("==")
    if not engine_argv:
        return "engine_check: no engine command after --"
    exe = shutil.which(engine_argv[0])
    if exe is None:
        return f"engine {distribution} {wanted} is required but {engine_argv[0]!r} is not on the PATH"
    found = installed_version(distribution, exe)
    if found != wanted:
        return (
            f"engine version mismatch: the catalog's {distribution} recipes need {distribution}=={wanted},"
            f" but {exe} is {found or 'of an unknown version'}; install {distribution}=={wanted}"
            " (or put it first on the PATH) or use the container form"
        )
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    split = argv.index("--") if "--" in argv else len(argv)
    p = argparse.ArgumentParser(prog="python -m podium.worker.engine_check")
    p.add_argument("--expect", required=True, help="DIST==VERSION, e.g. vllm==0.10.2")
    ns = p.parse_args(argv[:split])
    engine = argv[split + 1 :]
    error = check(ns.expect, engine)
    if error is not None:
        print(error, file=sys.stderr, flush=True)
        return MISMATCH_EXIT
    os.execvp(engine[0], engine)  # only returns by raising


if __name__ == "__main__":
    sys.exit(main())
