"""Migration 0007 on a database that already has endpoints: each gets its current spec as an active
revision (numbered by its generation), and the downgrade removes the table again."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic import command
from alembic.config import Config

from podium.store import db


def _config(path: Path) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(db.__file__).parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", f"sqlite:///{path}")
    return cfg


def test_existing_endpoints_get_their_current_revision(tmp_path: Path) -> None:
    path = tmp_path / "podium.db"
    cfg = _config(path)
    command.upgrade(cfg, "0006")
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO endpoints (id, name, app_name, routing_key, kind, spec_json, generation, state,"
            " deleting, consecutive_failures, backoff_until, desired_reason, created_at, updated_at)"
            " VALUES ('ep-old', 'old', 'old', 'old-key', 'container', '{\"name\": \"old\"}', 4, 'serving',"
            " 0, 0, 0, '', 1.0, 2.0)"
        )
    command.upgrade(cfg, "0007")
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT endpoint_id, number, state, spec_json FROM endpoint_revisions").fetchall()
    assert rows == [("ep-old", 4, "active", '{"name": "old"}')]
    command.downgrade(cfg, "0006")
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "endpoint_revisions" not in tables and "endpoints" in tables
