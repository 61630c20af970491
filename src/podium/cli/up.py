"""`podium up`: run Podium on this machine."""

from __future__ import annotations

from pathlib import Path

import typer

from podium.settings import Settings, default_data_dir


def up(
    host: str = typer.Option("127.0.0.1", "--host", help="Listen address."),
    port: int = typer.Option(8800, "--port", help="Listen port: /v0 control plane, /v1 data plane, / console."),
    data_dir: Path = typer.Option(None, "--data-dir", help="State directory (default $PODIUM_DATA_DIR or ~/.podium)."),
    role: str = typer.Option(
        "all",
        "--role",
        help="all (default: everything in one process) | api | controller | gateway. Split roles talk over HTTP: "
        "run one `--role controller`, then `--role api` and any number of `--role gateway` with --controller-url.",
    ),
    controller_url: str = typer.Option(
        None,
        "--controller-url",
        help="Roles api/gateway: the controller's URL, e.g. http://10.0.0.5:8800 (env PODIUM_CONTROLLER_URL).",
    ),
    advertise_url: str = typer.Option(
        None,
        "--advertise-url",
        help=(
            "Roles gateway and controller: the URL others reach this process at (a gateway: the controller"
            " pulls its stats there; a controller: written in the leader lease) (default: http://HOST:PORT)."
        ),
    ),
    region: str = typer.Option(
        None, "--region", help="Role gateway: serve only this region's endpoints (its data plane), e.g. --region gpu."
    ),
    log_level: str = typer.Option("info", "--log-level", help="debug, info, warning."),
) -> None:
    """Start Podium with embedded defaults: SQLite in the data dir, local runtime, one HTTP listener.

    The admin token comes from PODIUM_ADMIN_TOKEN, else it is generated once and saved to
    <data-dir>/admin_token (mode 0600). Ctrl-C / SIGTERM stops every replica Podium started, except
    in a leading `--role controller` on a shared database (PODIUM_DATABASE_URL): it hands off to a
    standby controller and leaves its replicas running for it to adopt.
    """
    from podium.server import run

    settings = Settings.from_env(
        host=host,
        port=port,
        data_dir=data_dir or default_data_dir(),
        role=role,
        controller_url=controller_url,
        advertise_url=advertise_url,
        region=region,
    )
    raise typer.Exit(run(settings, log_level))
