"""README's quickstart, run as written: only the host:port (a free one) and the token/routing key
in the Python snippet are substituted. A README that drifts from the CLI fails here."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import PYTHON, REPO, free_port

pytestmark = pytest.mark.e2e


def fenced_blocks(markdown: str, after: str) -> dict[str, str]:
    """The first ```bash and ```python blocks after the heading `after`."""
    text = markdown[markdown.index(after) :]
    blocks: dict[str, str] = {}
    for lang, body in re.findall(r"```(\w+)\n(.*?)```", text, flags=re.S):
        blocks.setdefault(lang, body)
    return blocks


def quickstart_script(port: int) -> str:
    blocks = fenced_blocks((REPO / "README.md").read_text(), "## Using it")
    shell = blocks["bash"].replace("127.0.0.1:8800", f"127.0.0.1:{port}").replace("--port 8800", f"--port {port}")
    lines = shell.rstrip("\n").split("\n")
    delete = [i for i, line in enumerate(lines) if "endpoint delete" in line]
    assert delete, "the quickstart ends by deleting its endpoint"
    snippet = blocks["python"].replace("127.0.0.1:8800", f"127.0.0.1:{port}")
    snippet = "import os\n" + snippet.replace("api_key=TOKEN", 'api_key=os.environ["PODIUM_API_TOKEN"]').replace(
        "model=ROUTING_KEY", 'model=os.environ["KEY"]'
    )
    before, after = "\n".join(lines[: delete[0]]), "\n".join(lines[delete[0] :])
    return "\n".join(
        [
            "set -euo pipefail",
            "trap 'kill $(jobs -p) 2>/dev/null; wait' EXIT",
            before,
            f"KEY=$KEY {PYTHON} - <<'PY'\n{snippet}PY",
            after,
        ]
    )


def test_readme_quickstart_runs_as_written(tmp_path: Path) -> None:
    work = tmp_path / "checkout"  # the checkout's .venv and examples, but podium.log lands here
    work.mkdir()
    for name in (".venv", "examples"):
        (work / name).symlink_to(REPO / name)
    home = tmp_path / "home"  # ~/.podium is a fresh data dir
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PODIUM_")}
    env["HOME"] = str(home)
    res = subprocess.run(
        ["bash", "-c", quickstart_script(free_port())], cwd=work, env=env, capture_output=True, text=True, timeout=120
    )
    out = res.stdout + res.stderr
    assert res.returncode == 0, out + (work / "podium.log").read_text(errors="replace")
    assert "serving" in res.stdout
    assert res.stdout.count("You said: Hi") == 2, out  # the curl, then the OpenAI client
    assert "my-chatbot" in res.stdout  # the list
    assert "succeeded\nYou said: Later" in res.stdout, out  # the async job, answered after the rollout
