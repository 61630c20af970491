"""On-disk records of local replicas: data_dir/replicas/<replica_id>/.

    state.json        the replica is (or was, until someone looked) running: pid, start time, port...
    state.ended.json  the same record after the replica was seen gone (kept for poll(), not listed)
    exit.json         written by the supervisor: exit code and how it ended
    output.log[.N]    the replica's stdout+stderr, rotated by the supervisor
    supervisor.log    the supervisor's own errors (normally empty)

Every write is atomic (temporary file + rename), so a `kill -9` of Podium never leaves half a record.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STATE = "state.json"
ENDED = "state.ended.json"
EXIT = "exit.json"


@dataclass
class ReplicaRecord:
    replica_id: str
    endpoint_id: str
    port: int
    argv: list[str]
    gpus: list[int]
    started_at: float
    pid: int | None = None  # None only between writing the record and the spawn returning
    start_time: int | None = None  # /proc/<pid>/stat field 22 of the supervisor (group leader)
    links: list[str] = field(default_factory=list)  # volume symlinks this replica created
    notes: list[str] = field(default_factory=list)  # e.g. volumes that could not be linked


@dataclass(frozen=True)
class ExitRecord:
    exit_code: int | None
    detail: str
    ended_at: float | None


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_record(directory: Path, rec: ReplicaRecord) -> None:
    write_json_atomic(directory / STATE, asdict(rec))


def read_record(directory: Path, *, ended: bool = False) -> ReplicaRecord | None:
    data = _read_json(directory / (ENDED if ended else STATE))
    if data is None:
        return None
    try:
        return ReplicaRecord(**data)
    except TypeError:  # written by another version: treat as unreadable
        return None


def mark_ended(directory: Path) -> None:
    """state.json -> state.ended.json: no longer listed, still answers poll()."""
    with contextlib.suppress(FileNotFoundError):
        os.replace(directory / STATE, directory / ENDED)


def read_exit(directory: Path) -> ExitRecord | None:
    data = _read_json(directory / EXIT)
    if data is None:
        return None
    code = data.get("exit_code")
    return ExitRecord(code if isinstance(code, int) else None, str(data.get("detail", "")), data.get("ended_at"))


def write_exit(directory: Path, exit_code: int, detail: str, ended_at: float) -> None:
    write_json_atomic(directory / EXIT, {"exit_code": exit_code, "detail": detail, "ended_at": ended_at})
