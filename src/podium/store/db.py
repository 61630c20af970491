"""Engine setup and migrations. Migrations run before anything serves, so every process sees the
current schema; SQLite runs in WAL mode so readers never wait on the controller's writes."""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

_MIGRATIONS = Path(__file__).parent / "migrations"


def sqlite_url(data_dir: Path, driver: str = "aiosqlite") -> str:
    return f"sqlite+{driver}:///{data_dir / 'podium.db'}"


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL; None for other databases and in-memory SQLite."""
    if not url.startswith("sqlite") or ":///" not in url:
        return None
    path = url.split(":///", 1)[1].split("?", 1)[0]
    return None if not path or path.startswith(":memory:") else Path(path)


def secure_sqlite_files(url: str) -> None:
    """The database holds token hashes, sealed secrets and specs: owner-only (0600), also in a data dir
    created by an older version. SQLite gives the -wal and -shm files the database file's mode, so
    creating it 0600 covers the ones it makes later."""
    path = sqlite_path(url)
    if path is None:
        return
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for name in (path.name, path.name + "-wal", path.name + "-shm", path.name + "-journal"):
        try:
            os.chmod(path.with_name(name), 0o600)
        except FileNotFoundError:
            continue


_FULL_MARKERS = ("database or disk is full", "no space left on device", "could not extend file", "disk full")


def is_storage_full(exc: BaseException) -> bool:
    """SQLite's SQLITE_FULL, PostgreSQL's disk_full (53100) or ENOSPC, however the driver wraps it.
    The transaction that hit it rolled back: nothing of it was written."""
    orig = getattr(exc, "orig", None)
    if getattr(orig, "sqlstate", None) == "53100" or getattr(orig, "pgcode", None) == "53100":
        return True
    text = f"{exc} {orig}".lower()
    return any(marker in text for marker in _FULL_MARKERS)


def migrate(async_url: str) -> None:
    """Bring the schema to head (idempotent). Uses a sync driver: Alembic runs before the loop serves."""
    secure_sqlite_files(async_url)
    sync_url = async_url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg")
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", sync_url)
    command.upgrade(cfg, "head")


def make_engine(async_url: str) -> AsyncEngine:
    # hide_parameters: a failed statement's message (logged, or kept as an endpoint's last_error) must not
    # carry the values it wrote: specs hold env values and sealed passwords, tokens their hashes
    engine = create_async_engine(async_url, hide_parameters=True)
    if async_url.startswith("sqlite"):

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=5000")
            cur.close()

    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False)
