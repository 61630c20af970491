"""The local vLLM form checks the engine's version before it starts (issue 18, item 5).

Real processes: `python -m podium.worker.engine_check` with a fake `vllm` first on the PATH.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from podium.worker import engine_check

FAKE_VLLM = """#!/bin/sh
if [ "$1" = "--version" ]; then echo "{version}"; exit 0; fi
echo "SERVING $*"
"""


def fake_engine(tmp_path: Path, version: str) -> dict[str, str]:
    exe = tmp_path / "vllm"
    exe.write_text(FAKE_VLLM.format(version=version))
    exe.chmod(0o755)
    return {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}"}


def run_check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "podium.worker.engine_check", "--expect", "vllm==0.10.2", "--"]
    return subprocess.run([*argv, "vllm", "serve", "m"], env=env, capture_output=True, text=True, timeout=30)


def test_matching_version_execs_the_engine(tmp_path: Path) -> None:
    res = run_check(fake_engine(tmp_path, "0.10.2"))
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "SERVING serve m"


def test_mismatch_is_a_clear_error_and_the_engine_never_starts(tmp_path: Path) -> None:
    res = run_check(fake_engine(tmp_path, "0.9.1"))
    assert res.returncode == engine_check.MISMATCH_EXIT
    assert "SERVING" not in res.stdout
    assert "engine version mismatch" in res.stderr and "vllm==0.10.2" in res.stderr and "is 0.9.1" in res.stderr


def test_missing_engine_says_so(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}
    res = run_check(env)
    assert res.returncode == engine_check.MISMATCH_EXIT and "'vllm' is not on the PATH" in res.stderr


def test_a_python_console_script_is_asked_through_its_own_interpreter(tmp_path: Path) -> None:
    """How a pip-installed `vllm` is checked: its shebang's Python reads the distribution's version."""
    script = tmp_path / "pytest-like"
    script.write_text(f"#!{sys.executable}\nraise SystemExit(9)\n")
    script.chmod(0o755)
    assert engine_check.interpreter_of(str(script)) == sys.executable
    import pytest as real

    assert engine_check.installed_version("pytest", str(script)) == real.__version__
