"""Reading a replica's rotated log: output.log (newest), output.log.1, .2, ... (older).

The supervisor writes and rotates; readers here only read. Following survives rotation: the open
file is read to its end before switching to the new output.log (a rename keeps our handle valid).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import BinaryIO

LOG_NAME = "output.log"
_BLOCK = 65536


def log_files(directory: Path) -> list[Path]:
    """Newest first: output.log, output.log.1, output.log.2, ... (only those that exist)."""
    files = [directory / LOG_NAME]
    i = 1
    while (directory / f"{LOG_NAME}.{i}").exists():
        files.append(directory / f"{LOG_NAME}.{i}")
        i += 1
    return [f for f in files if f.exists()]


def _last_lines(path: Path, n: int, limit: int | None = None) -> list[bytes]:
    """The last n lines of path (reading backwards in blocks), of its first `limit` bytes if given."""
    try:
        with open(path, "rb") as f:
            end = f.seek(0, os.SEEK_END) if limit is None else limit
            data, pos = b"", end
            while pos > 0 and data.count(b"\n") <= n:
                step = min(_BLOCK, pos)
                pos -= step
                f.seek(pos)
                data = f.read(step) + data
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the file ends with a newline: no partial last line
    return lines[-n:] if n > 0 else []


def tail_lines(directory: Path, n: int, current_limit: int | None = None) -> list[str]:
    """The last n lines across the rotated files, oldest first, decoded leniently."""
    collected: list[bytes] = []
    for i, path in enumerate(log_files(directory)):
        need = n - len(collected)
        if need <= 0:
            break
        collected = _last_lines(path, need, current_limit if i == 0 else None) + collected
    return [line.decode("utf-8", "replace").rstrip("\r") for line in collected]


async def follow(
    directory: Path, tail: int, is_running: Callable[[], bool], interval_s: float = 0.1
) -> AsyncIterator[str]:
    """Yield the last `tail` lines, then new lines as they are written, until the replica has
    ended and everything it wrote has been read. Cancel the iteration to stop earlier."""
    path = directory / LOG_NAME
    f = None
    while f is None:
        try:
            f = _open(path)
        except FileNotFoundError:
            if not is_running():
                for line in tail_lines(directory, tail):
                    yield line
                return
            await asyncio.sleep(interval_s)
    try:
        start = f.seek(0, os.SEEK_END)
        for line in tail_lines(directory, tail, current_limit=start):
            yield line
        buf, ended = b"", False
        while True:
            chunk = f.read(_BLOCK)
            if chunk:
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for raw in lines:
                    yield raw.decode("utf-8", "replace").rstrip("\r")
                continue
            if _rotated(path, f.fileno()):
                f.close()
                f = _open(path)
                continue
            if ended:  # the writer is gone and we read to the end after noticing: done
                if buf:
                    yield buf.decode("utf-8", "replace")
                return
            if not is_running():
                ended = True  # one more pass: read what was written before it ended
                continue
            await asyncio.sleep(interval_s)
    finally:
        f.close()


def _open(path: Path) -> BinaryIO:
    """Kept open across iterations of follow() (closed in its finally); local file, no real wait."""
    return open(path, "rb")


def _rotated(path: Path, fd: int) -> bool:
    try:
        return os.stat(path).st_ino != os.fstat(fd).st_ino
    except FileNotFoundError:
        return False  # between the rename and the new file: look again later
