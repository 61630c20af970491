"""`podium secret …`: named, versioned, encrypted key/value payloads. Values are sent, never shown."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import typer

from podium.cli.client import Api, fail
from podium.cli.output import FORMAT_OPTION, Format, emit, render_fields, render_table

app = typer.Typer(help="Create and manage secrets (env values, registry credentials, endpoint tokens).")
SELECTOR = typer.Argument(..., help="Secret name, name@VERSION or id (sec-…).")
VALUES = typer.Option(
    None,
    "--value",
    "--payload",
    help="KEY=VALUE (repeatable). KEY=@FILE reads the value from a file, KEY=- from stdin; KEY alone takes "
    "$KEY from your environment (keeps values out of shell history). E.g. --value AUTH_TOKEN=s3cr3t --value HF_TOKEN",
)


def parse_values(items: list[str] | None) -> dict[str, str]:
    payload: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not key:
            fail(f"--value expects KEY=VALUE, got {item!r}")
        if not sep:
            if key not in os.environ:
                fail(f"--value {key}: no '=' and ${key} is not set in the environment")
            value = os.environ[key]
        elif value == "-":
            value = sys.stdin.read().rstrip("\n")
        elif value.startswith("@"):
            try:
                value = Path(value[1:]).read_text().rstrip("\n")
            except OSError as exc:
                fail(f"--value {key}=@…: cannot read {value[1:]}: {exc.strerror}")
        payload[key] = value
    if not payload:
        fail("give at least one --value KEY=VALUE")
    return payload


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


def _one(s: dict[str, Any]) -> str:
    out = render_fields(
        [
            ("id", s["id"]),
            ("name", s["name"]),
            ("description", s["description"]),
            ("latest version", s["latest_version"]),
            ("keys", ", ".join(s["keys"])),
            ("used by", ", ".join(s["used_by"])),
            ("updated", _when(s["updated_at"])),
        ]
    )
    rows = [(v["version"], ", ".join(v["keys"]), _when(v["created_at"])) for v in s["versions"]]
    return out + "\n\n" + render_table(["version", "keys", "created"], rows)


def _many(d: dict[str, Any]) -> str:
    rows = [
        (s["id"], s["name"], s["latest_version"], ", ".join(s["keys"]), ", ".join(s["used_by"]), _when(s["updated_at"]))
        for s in d["secrets"]
    ]
    return render_table(["id", "name", "version", "keys", "used by", "updated"], rows, empty="no secrets")


@app.command()
def create(
    name: str = typer.Option(..., "--name", help="Secret name, e.g. --name hf-token (selectors: name, name@2)."),
    value: list[str] = VALUES,
    description: str = typer.Option("", "--description", help="Free text shown in list/get."),
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Create a secret (version 1). Example: podium secret create --name ep-auth --value AUTH_TOKEN=s3cr3t"""
    body = {"name": name, "description": description, "payload": parse_values(value)}
    emit(Api().post("/v0/secrets", json=body), fmt, _one)


@app.command("list")
def list_(fmt: Format = FORMAT_OPTION) -> None:
    """List secrets with their keys and versions (never values). Example: podium secret list"""
    emit(Api().get("/v0/secrets"), fmt, _many)


@app.command()
def get(selector: str = SELECTOR, fmt: Format = FORMAT_OPTION) -> None:
    """Show a secret's versions and keys (never values). Example: podium secret get hf-token"""
    emit(Api().get(f"/v0/secrets/{selector}"), fmt, _one)


@app.command("add-version")
def add_version(selector: str = SELECTOR, value: list[str] = VALUES, fmt: Format = FORMAT_OPTION) -> None:
    """Add a version with a whole new payload; new replicas use it, endpoint tokens rotate.

    Example: podium secret add-version hf-token --value HF_TOKEN=hf_new
    """
    emit(Api().post(f"/v0/secrets/{selector}/versions", json={"payload": parse_values(value)}), fmt, _one)


@app.command()
def delete(selector: str = SELECTOR) -> None:
    """Delete a secret and all its versions (refused while an endpoint uses it). Example: podium secret delete hf"""
    Api().delete(f"/v0/secrets/{selector}")
    typer.echo(f"deleted {selector}")
