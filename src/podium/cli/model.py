"""`podium model …`: models and their weights: `upload`, `list`, `get`, `delete` (the registry,
`/v0/models`) and `pull` (a region's model cache).

`upload FILE --name N [--base B]` sends the file in chunks (PATCH at offsets, 16 MiB each: the API
holds one request body in memory, never the file) with a progress bar; the sha256 is computed here
first and checked by the server when the last byte lands. Run it again after an interruption and it
resumes from the server's offset (same name, same size).

`pull MODEL [--region R]` fills the region's model cache (its `model_cache_dir`, read from the
server) from the model hub ahead of time, so the first replica does not download 141 GB inside its
start timeout. The download runs where this command runs: the region's cache directory must be
reachable here (the machine `podium up` runs on, or a shared filesystem), or pass --cache-dir.
HF_TOKEN from your environment is sent for gated models and never printed.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path
from typing import Any

import typer

from podium.catalog.model_cache import DEFAULT_HUB, PullError, pull
from podium.cli.client import Api, fail
from podium.cli.output import FORMAT_OPTION, Format, emit, render_fields, render_table

app = typer.Typer(help="Models: upload your own weights (and LoRA adapters), list, get, delete; pull a hub model.")
CHUNK = 16 << 20  # bytes per PATCH: well under the listener's body limit (64 MiB)


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


def _one(m: dict[str, Any]) -> str:
    return render_fields(
        [
            ("id", m["id"]),
            ("name", m["name"]),
            ("base", m["base"] or ""),
            ("status", m["status"] if m["status"] != "uploading" else f"uploading ({m['received_bytes']} bytes)"),
            ("format", m["format"]),
            ("architecture", m["architecture"]),
            ("kind", m["kind"]),
            ("context", m["context_length"] or ""),
            ("engines", ", ".join(m["engines"])),
            ("size", _mb(m["size_bytes"])),
            ("sha256", m["sha256"]),
            ("source", m["source"]),
            ("path", m["path"]),
        ]
    )


def _many(d: dict[str, Any]) -> str:
    rows = [
        (m["id"], m["name"], m["base"] or "", m["status"], m["format"], m["architecture"], _mb(m["size_bytes"]))
        for m in d["models"]
    ]
    headers = ["id", "name", "base", "status", "format", "architecture", "size"]
    return render_table(headers, rows, max_col=60, empty="no models (podium model upload FILE --name N)")


def _find(api: Api, key: str) -> dict[str, Any]:
    """By id or name (names may hold '/', which a path segment cannot)."""
    for m in api.get("/v0/models")["models"]:
        if key in (m["id"], m["name"]):
            return dict(m)
    fail(f"no model {key!r} (see `podium model list`)")


def file_sha256(path: Path, progress: ProgressBar | None = None) -> str:
    h, done, total = hashlib.sha256(), 0, path.stat().st_size
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
            done += len(block)
            if progress:
                progress(f"sha256 {path.name}", done, total)
    return h.hexdigest()


@app.command("upload")
def upload_command(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A GGUF file (a model or a LoRA adapter)."),
    name: str = typer.Option(..., "--name", help="The model_name to deploy it by, e.g. acme/support-bot."),
    base: str | None = typer.Option(None, "--base", help="An adapter: the registered model it adapts."),
    fmt_in: str | None = typer.Option(None, "--model-format", help="gguf or safetensors (default: read from it)."),
    verify: bool = typer.Option(True, "--verify/--no-verify", help="Send the file's sha256 for the server to check."),
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Upload FILE in chunks with progress; resumes an interrupted upload of the same name and size."""
    api, size = Api(timeout=300), file.stat().st_size
    current = next((m for m in api.get("/v0/models")["models"] if m["name"] == name), None)
    if current and (current["status"] != "uploading" or current["size_bytes"] != size):
        fail(f"a model named {name!r} exists ({current['status']}, {current['size_bytes']} bytes)")
    if current is None:
        body: dict[str, Any] = {"name": name, "size": size, "base": base, "format": fmt_in}
        if verify:
            bar = ProgressBar()
            body["sha256"] = file_sha256(file, bar)
            bar.close()
        current = api.post("/v0/models", json={k: v for k, v in body.items() if v is not None})
    model = _send(api, file, current)
    emit(model, fmt, _one)


def _send(api: Api, file: Path, model: dict[str, Any]) -> dict[str, Any]:
    bar, offset = ProgressBar(), int(model["received_bytes"])
    with file.open("rb") as f:
        f.seek(offset)
        while offset < model["size_bytes"]:
            chunk = f.read(CHUNK)
            model = api.patch(
                f"/v0/models/{model['id']}/content",
                params={"offset": offset},
                content=chunk,
                headers={"Content-Type": "application/octet-stream"},
            )
            offset += len(chunk)
            bar(file.name, offset, model["size_bytes"])
    bar.close()
    return model


@app.command("list")
def list_command(fmt: Format = FORMAT_OPTION) -> None:
    """Registered models and adapters (and uploads in progress)."""
    emit(Api().get("/v0/models"), fmt, _many)


@app.command("get")
def get_command(
    model: str = typer.Argument(..., help="Model name or id (mdl-…)."), fmt: Format = FORMAT_OPTION
) -> None:
    emit(_find(Api(), model), fmt, _one)


@app.command("delete")
def delete_command(model: str = typer.Argument(..., help="Model name or id (mdl-…).")) -> None:
    """Delete a model and its file (refused while an endpoint deploys it), or cancel an upload."""
    api = Api()
    gone = api.delete(f"/v0/models/{_find(api, model)['id']}")
    typer.echo(f"deleted model {gone['name']} ({gone['id']})")
