"""Engine setup and migrations. Migrations run before anything serves, so every process sees the
current schema; SQLite runs in WAL mode so readers never wait on the controller's writes."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

_MIGRATIONS = Path(__file__).parent / "migrations"


def sqlite_url(data_dir: Path, driver: str = "aiosqlite") -> str:
    return f"sqlite+{driver}:///{data_dir / 'podium.db'}"


def migrate(async_url: str) -> None:
    """Bring the schema to head (idempotent). Uses a sync driver: Alembic runs before the loop serves."""
    sync_url = async_url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg")
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", sync_url)
    command.upgrade(cfg, "head")


def make_engine(async_url: str) -> AsyncEngine:
    engine = create_async_engine(async_url)
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
