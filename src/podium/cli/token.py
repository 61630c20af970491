"""`podium token …`: platform tokens with scopes (admin, read, inference)."""

from __future__ import annotations

import time

import typer

from podium.cli.client import Api
from podium.cli.output import FORMAT_OPTION, Format, emit, render_fields, render_table

app = typer.Typer(help="Create, list and revoke platform tokens.", no_args_is_help=True)


@app.command()
def create(
    name: str = typer.Option(..., "--name", help="What the token is for, e.g. --name ci-bot."),
    scope: list[str] = typer.Option(
        ["inference"],
        "--scope",
        "--scopes",
        help="admin, read or inference (repeat, or comma-separate), e.g. --scope read,inference.",
    ),
    rate_limit: int = typer.Option(
        None, "--rate-limit", help="Data-plane requests per minute for this token; beyond it 429 (e.g. 600)."
    ),
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Create a token; it is shown only now. Example: podium token create --name app --scope inference"""
    scopes = sorted({s.strip() for item in scope for s in item.split(",") if s.strip()})
    data = Api().post("/v0/tokens", json={"name": name, "scopes": scopes, "rate_limit_rpm": rate_limit})
    emit(
        data,
        fmt,
        lambda d: render_fields(
            [
                ("id", d["id"]),
                ("name", d["name"]),
                ("scopes", ",".join(d["scopes"])),
                ("rate limit", f"{d['rate_limit_rpm']}/min" if d.get("rate_limit_rpm") else "none"),
                ("token", d["token"]),
            ]
        ),
    )


@app.command("list")
def list_(fmt: Format = FORMAT_OPTION) -> None:
    """List tokens (never their values). Example: podium token list"""
    emit(
        Api().get("/v0/tokens"),
        fmt,
        lambda d: render_table(
            ["id", "name", "scopes", "rate/min", "created"],
            [
                (
                    t["id"],
                    t["name"],
                    ",".join(t["scopes"]),
                    t.get("rate_limit_rpm") or "-",
                    time.strftime("%Y-%m-%d %H:%M", time.localtime(t["created_at"])),
                )
                for t in d["tokens"]
            ],
        ),
    )


@app.command()
def revoke(token_id: str = typer.Argument(..., help="Token id (tok-…).")) -> None:
    """Revoke a token at once. Example: podium token revoke tok-abc"""
    Api().delete(f"/v0/tokens/{token_id}")
    typer.echo(f"revoked {token_id}")
