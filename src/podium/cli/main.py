"""The `podium` entry point: one Typer app with a sub-app per noun."""

from __future__ import annotations

import typer

from podium import __version__
from podium.cli import catalog, endpoint, model, secret, token, up, usage, volume
from podium.cli.help import RootGroup

# Plain (click) help, not rich panels: rich cuts long flag names ("--registry-usern…") at 80
# columns, and users copy flags from help. Sub-apps inherit these settings from this root;
# RootGroup also keeps hyphenated words (flags in help texts) whole when wrapping.
app = typer.Typer(
    cls=RootGroup,
    help="Podium: self-hosted serverless AI endpoints. Talks to PODIUM_URL with PODIUM_API_TOKEN.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"max_content_width": 120},
)
app.add_typer(endpoint.app, name="endpoint")
app.add_typer(token.app, name="token")
app.add_typer(secret.app, name="secret")
app.add_typer(volume.app, name="volume")
app.add_typer(catalog.templates, name="template")
app.add_typer(catalog.regions, name="region")
app.add_typer(catalog.platforms, name="platform")
app.add_typer(model.app, name="model")
app.command("up")(up.up)
app.command("usage")(usage.usage)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"podium {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Podium command line."""


def main() -> None:
    app()


if __name__ == "__main__":
    main()
