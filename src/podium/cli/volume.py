"""`podium volume …`: named filesystems replicas mount with `--volume NAME:/path[:ro|rw]`."""

from __future__ import annotations

from typing import Any

import typer

from podium.cli.client import Api
from podium.cli.output import FORMAT_OPTION, Format, emit, render_fields, render_table

app = typer.Typer(help="Create and manage named volumes.")
NAME = typer.Argument(..., help="Volume name or id (vol-…).")


def _one(v: dict[str, Any]) -> str:
    return render_fields(
        [
            ("id", v["id"]),
            ("name", v["name"]),
            ("kind", v["kind"]),
            ("region", v["region"]),
            ("size", v["size"]),
            ("path", v["path"]),
            ("used by", ", ".join(v["used_by"])),
            ("description", v["description"]),
        ]
    )


def _many(d: dict[str, Any]) -> str:
    rows = [(v["id"], v["name"], v["region"], v["size"], ", ".join(v["used_by"]), v["path"]) for v in d["volumes"]]
    return render_table(["id", "name", "region", "size", "used by", "path"], rows, max_col=60, empty="no volumes")


@app.command()
def create(
    name: str = typer.Option(..., "--name", help="Volume name (a-z, 0-9, -), e.g. --name models."),
    size: str = typer.Option(None, "--size", help="Size, e.g. 100Gi (informational on the local runtime)."),
    region: str = typer.Option("local", "--region", help="Region the volume lives in."),
    description: str = typer.Option("", "--description", help="Free text shown in list/get."),
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Create a volume. Example: podium volume create --name models --size 100Gi

    Then mount it: podium endpoint create … --volume models:/models:ro
    """
    body = {"name": name, "size": size, "region": region, "description": description}
    emit(Api().post("/v0/volumes", json=body), fmt, _one)


@app.command("list")
def list_(fmt: Format = FORMAT_OPTION) -> None:
    """List volumes and the endpoints that mount them. Example: podium volume list --format json"""
    emit(Api().get("/v0/volumes"), fmt, _many)


@app.command()
def get(name: str = NAME, fmt: Format = FORMAT_OPTION) -> None:
    """Show one volume. Example: podium volume get models"""
    emit(Api().get(f"/v0/volumes/{name}"), fmt, _one)


@app.command()
def delete(name: str = NAME) -> None:
    """Delete a volume AND its data (refused while an endpoint mounts it). Example: podium volume delete models"""
    Api().delete(f"/v0/volumes/{name}")
    typer.echo(f"deleted {name}")
