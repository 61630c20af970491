"""Replica logs: bounded on disk by rotation, tail across rotated files, follow through rotation."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from podium.runtime.base import RunPhase
from podium.runtime.local import LocalBackend

from .conftest import eventually, py, spec

FLOOD = (
    "import sys\n"
    "line = 'x' * 90\n"
    "for i in range(30000):\n"  # ~3 MB
    "    sys.stdout.write(f'{i:06d} {line}\\n')\n"
    "sys.stdout.flush()\n"
)


async def test_rotation_bounds_disk_use(make_backend: Callable[..., LocalBackend], data_dir: Path) -> None:
    backend = make_backend(log_max_bytes=100_000, log_backups=2)
    await backend.start(spec("rep-flood", py(FLOOD)))
    await eventually(lambda: backend._poll("rep-flood").phase == RunPhase.EXITED, timeout=10)
    d = data_dir / "replicas" / "rep-flood"
    logs = sorted(p.name for p in d.glob("output.log*"))
    assert logs == ["output.log", "output.log.1", "output.log.2"]
    total = sum(p.stat().st_size for p in d.glob("output.log*"))
    assert total <= 3 * (100_000 + 65_536)  # a file may pass the limit by one pipe read at most
    assert all(p.stat().st_size <= 100_000 + 65_536 for p in d.glob("output.log*"))
    last = backend.read_tail("rep-flood", 3).splitlines()
    assert [x[:6] for x in last] == ["029997", "029998", "029999"]
    # tail reaches back across the rotated files, in order, without gaps or split lines
    lines = [x async for x in backend.logs("rep-flood", tail=1500)]
    numbers = [int(x[:6]) for x in lines]
    assert numbers == list(range(30000 - 1500, 30000))
    assert all(len(x) == 97 for x in lines)


async def test_follow_yields_tail_then_new_lines_and_ends_with_the_replica(backend: LocalBackend) -> None:
    code = (
        "import time\n"
        "for i in range(12):\n"
        "    print('line', i, flush=True)\n"
        "    time.sleep(0.03)\n"
        "print('partial without newline', end='', flush=True)\n"
    )
    await backend.start(spec("rep-follow", py(code)))
    await eventually(lambda: "line 2" in backend.read_tail("rep-follow"))
    got = await asyncio.wait_for(_collect(backend, "rep-follow", tail=2), timeout=10)
    assert got[-1] == "partial without newline"
    numbers = [int(x.split()[1]) for x in got[:-1]]
    assert numbers == list(range(numbers[0], 12)) and numbers[0] <= 2


async def test_follow_survives_rotation_without_losing_lines(make_backend: Callable[..., LocalBackend]) -> None:
    backend = make_backend(log_max_bytes=2_000, log_backups=5)
    code = (
        "import time\n"
        "time.sleep(0.5)\n"  # the follower opens the log before the first line
        "for i in range(120):\n"
        "    print(f'{i:04d} ' + 'y' * 60, flush=True)\n"  # rotation every ~30 lines, ~0.2 s
        "    time.sleep(0.006)\n"
    )
    await backend.start(spec("rep-rot", py(code)))
    got = await asyncio.wait_for(_collect(backend, "rep-rot", tail=0), timeout=15)
    assert [int(x[:4]) for x in got] == list(range(120))


async def test_logs_without_follow_of_a_running_replica(backend: LocalBackend) -> None:
    code = "import time\nfor i in range(5): print('n', i)\nimport sys; sys.stdout.flush(); time.sleep(30)"
    await backend.start(spec("rep-tail", py(code)))
    await eventually(lambda: "n 4" in backend.read_tail("rep-tail"))
    assert [x async for x in backend.logs("rep-tail", tail=2)] == ["n 3", "n 4"]
    assert [x async for x in backend.logs("rep-tail", tail=0)] == []


async def _collect(backend: LocalBackend, rid: str, tail: int) -> list[str]:
    return [line async for line in backend.logs(rid, tail=tail, follow=True)]
