"""`podium up`: checks that must pass before anything runs, then one role's process.

Roles (`--role`): `all` (default: control plane, controller, autoscaler and gateway in one process),
`api`, `controller`, `gateway` — the same parts split over processes that talk over HTTP
(see `podium.roles`). Dependencies are built from one Settings object and passed explicitly.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import socket
import sys
from pathlib import Path
from typing import TextIO

from podium.services.tokens import load_or_create_admin_token
from podium.settings import Settings
from podium.store.db import migrate

log = logging.getLogger("podium")
ROLES = ("all", "api", "controller", "gateway")


def run(settings: Settings, log_level: str = "info") -> int:
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    problem = _role_problem(settings)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    settings.data_dir.chmod(0o700)  # also a data dir made by an older version: it holds keys and tokens
    lock = None
    # Several `--role controller` on one database are fenced by the leader lease (only the leader acts),
    # so they may share a data dir; otherwise one controller per data dir.
    if settings.role == "all" or (settings.role == "controller" and not settings.database_url):
        lock = _lock_data_dir(settings.data_dir)
        if lock is None:
            print(f"error: another `podium up` runs the controller on {settings.data_dir}", file=sys.stderr)
            return 1
    problem = _cannot_listen(settings.host, settings.port)
    if problem:
        print(f"error: cannot listen on {settings.host}:{settings.port}: {problem}", file=sys.stderr)
        return 1
    if settings.role != "gateway":
        with open(settings.data_dir / "migrate.lock", "w") as guard:  # api and controller may start together
            fcntl.flock(guard, fcntl.LOCK_EX)
            migrate(settings.db_url)
    token, created = load_or_create_admin_token(settings.data_dir, settings.admin_token)
    if created:  # where it is, never the token itself: this output often ends up in a log file
        path = settings.data_dir / "admin_token"
        print(f"admin token created: {path} (mode 0600; read it with `cat {path}`)", flush=True)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    from podium.roles.processes import main

    asyncio.run(main(settings, token))
    del lock  # held until here: released when the process ends
    return 0


def _role_problem(settings: Settings) -> str | None:
    if settings.role not in ROLES:
        return f"--role must be one of {', '.join(ROLES)}"
    if settings.role in ("api", "gateway") and not settings.controller_url and not settings.database_url:
        return (
            f"--role {settings.role} needs --controller-url (or PODIUM_CONTROLLER_URL): the controller's URL,"
            " or PODIUM_DATABASE_URL to find the leading controller by its lease"
        )
    return None


def _lock_data_dir(data_dir: Path) -> TextIO | None:
    """One controller per data dir: two would fight over the same replicas."""
    f = open(data_dir / "podium.lock", "w")  # noqa: SIM115 (held for the life of the process)
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        return None
    f.write(str(os.getpid()))
    f.flush()
    return f


def _cannot_listen(host: str, port: int) -> str | None:
    """Say clearly why the port can't be used, before adopting replicas or touching anything."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None
