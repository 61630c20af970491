"""`podium model …`: models and their weights. Now `pull`; issue 20 adds upload, list, get, delete.

`pull MODEL [--region R]` fills the region's model cache (its `model_cache_dir`, read from the
server) from the model hub ahead of time, so the first replica does not download 141 GB inside its
start timeout. The download runs where this command runs: the region's cache directory must be
reachable here (the machine `podium up` runs on, or a shared filesystem), or pass --cache-dir.
HF_TOKEN from your environment is sent for gated models and never printed.
"""

from __future__ import annotations

import os
import sys
import time

import typer

from podium.catalog.model_cache import DEFAULT_HUB, PullError, pull
from podium.cli.client import Api, fail

app = typer.Typer(help="Models: fill a region's model cache ahead of the first start (pull).")


class ProgressBar:
    """One line on stderr, redrawn at most 10 times a second on a terminal, every 10% otherwise."""

    def __init__(self, width: int = 30) -> None:
        self.width, self.tty = width, sys.stderr.isatty()
        self.last_draw, self.last_tenth = 0.0, -1

    def __call__(self, name: str, done: int, total: int) -> None:
        frac = done / total if total else 0.0
        if self.tty:
            now = time.monotonic()
            if now - self.last_draw < 0.1 and done < total:
                return
            self.last_draw = now
            bar = "#" * int(frac * self.width)
            line = f"\r[{bar:<{self.width}}] {frac:6.1%} {_mb(done)}/{_mb(total)} {name[-40:]}"
            print(line, end="", file=sys.stderr, flush=True)
        elif int(frac * 10) != self.last_tenth:
            self.last_tenth = int(frac * 10)
            print(f"{frac:.0%} {_mb(done)}/{_mb(total)} {name}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.tty:
            print(file=sys.stderr)


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


@app.command("pull")
def pull_command(
    model: str = typer.Argument(..., help="Hub id, e.g. meta-llama/Llama-3.1-8B-Instruct (a template's weights)."),
    region: str = typer.Option("local", "--region", help="Region whose model cache to fill."),
    cache_dir: str | None = typer.Option(None, "--cache-dir", help="Fill this HF_HOME instead of the region's."),
    hub: str | None = typer.Option(None, "--hub", help="Hub URL (default: $HF_ENDPOINT or huggingface.co)."),
    revision: str = typer.Option("main", "--revision", help="Branch, tag or commit."),
) -> None:
    """Download MODEL's files into the region's model cache, with progress; files already there are kept."""
    target = cache_dir or Api().get(f"/v0/regions/{region}").get("model_cache_dir")
    if not target:
        fail(f"region {region} has no model_cache_dir: set one in its catalog file, or pass --cache-dir")
    bar = ProgressBar()
    try:
        result = pull(
            model,
            target,
            hub=hub or os.environ.get("HF_ENDPOINT") or DEFAULT_HUB,
            revision=revision,
            token=os.environ.get("HF_TOKEN") or None,
            progress=bar,
        )
    except PullError as exc:
        bar.close()
        fail(str(exc))
    bar.close()
    fetched = f"{_mb(result.downloaded_bytes)} downloaded" if result.downloaded_bytes else "all already cached"
    typer.echo(f"pulled {model}@{result.commit[:12]} into {target}: {result.files} files, {fetched}")
