"""After Podium dies (even by kill -9), a new LocalBackend finds what still runs, and only that."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import textwrap
from collections.abc import Callable
from pathlib import Path

from podium.runtime import procfs
from podium.runtime.base import RunPhase
from podium.runtime.local import LocalBackend
from podium.runtime.records import read_record

from .conftest import PY, eventually, http_status, pid_alive, py, spec, wait_line, wait_port

SLEEPER = "import time; print('up', flush=True); time.sleep(60)"
# Prints a numbered line every 20 ms: proves the replica keeps running and logging without Podium.
TICKER = "import itertools, time\nfor i in itertools.count():\n    print('tick', i, flush=True)\n    time.sleep(0.02)\n"

PODIUM_STANDIN = textwrap.dedent(
    """
    import asyncio, sys, time
    from pathlib import Path
    from podium.runtime.local import LocalBackend
    from podium.runtime.base import LaunchSpec

    async def main():
        b = LocalBackend(Path(sys.argv[1]))
        await b.start(LaunchSpec("rep-survivor", "ep-1", [sys.executable, "-m", "http.server", "$PORT",
                                                          "--bind", "127.0.0.1"]))
        await b.start(LaunchSpec("rep-ticker", "ep-1", [sys.executable, "-u", "-c", sys.argv[2]]))
        print("started", flush=True)
        await asyncio.sleep(60)

    asyncio.run(main())
    """
)


async def test_replicas_survive_kill_9_of_podium_and_are_adopted(
    make_backend: Callable[..., LocalBackend], data_dir: Path
) -> None:
    podium = await asyncio.create_subprocess_exec(
        PY, "-c", PODIUM_STANDIN, str(data_dir), TICKER, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert podium.stdout is not None
        line = await asyncio.wait_for(podium.stdout.readline(), timeout=10)
        assert line.strip() == b"started"
    finally:
        podium.kill()  # SIGKILL: no cleanup of any kind runs in "Podium"
        await podium.wait()
    backend = make_backend()
    found = {o.replica_id: o for o in await backend.list()}
    assert set(found) == {"rep-survivor", "rep-ticker"}
    assert all(o.phase == RunPhase.RUNNING and o.endpoint_id == "ep-1" for o in found.values())
    address = found["rep-survivor"].address
    assert address is not None
    await wait_port(address)
    assert await http_status(f"http://{address}/") == 200
    # Its output still reaches the log after Podium died, and rotation bookkeeping is not Podium's.
    before = backend.read_tail("rep-ticker", 1)
    await eventually(lambda: backend.read_tail("rep-ticker", 1) != before, timeout=2)
    await backend.stop("rep-survivor", grace_s=2)
    assert (await backend.poll("rep-survivor")).phase == RunPhase.EXITED
    await backend.close()  # the adopted ticker too
    assert await backend.list() == []


async def test_second_backend_lists_and_stops_a_running_replica(
    make_backend: Callable[..., LocalBackend],
) -> None:
    first, second = make_backend(), make_backend()
    started = await first.start(spec("rep-a", py(SLEEPER)))
    await wait_line(first, "rep-a", "up")
    [seen] = await second.list()
    assert seen.phase == RunPhase.RUNNING and seen.address == started.address
    assert (await second.poll("rep-a")).phase == RunPhase.RUNNING
    await second.stop("rep-a", grace_s=2)
    assert (await first.poll("rep-a")).phase == RunPhase.EXITED  # the first one reaps its child


async def test_replica_that_died_meanwhile_is_listed_exited(
    make_backend: Callable[..., LocalBackend], data_dir: Path
) -> None:
    first = make_backend()
    await first.start(spec("rep-crashed", py("import sys, time; time.sleep(0.1); sys.exit(7)")))
    await first.start(spec("rep-killed", py(SLEEPER)))
    await wait_line(first, "rep-killed", "up")
    rec = read_record(data_dir / "replicas" / "rep-killed")
    assert rec is not None and rec.pid is not None
    os.killpg(rec.pid, signal.SIGKILL)  # e.g. the OOM killer, while "Podium is down"
    await eventually(lambda: (data_dir / "replicas" / "rep-crashed" / "exit.json").exists())
    second = make_backend()  # never saw them start, is not their parent
    found = {o.replica_id: o for o in await second.list()}
    assert found["rep-crashed"].phase == RunPhase.EXITED and found["rep-crashed"].exit_code == 7
    assert found["rep-killed"].phase == RunPhase.EXITED
    assert found["rep-killed"].exit_code is None and "unknown" in found["rep-killed"].detail
    assert await second.list() == []  # reported once, then retired; poll still answers
    assert (await second.poll("rep-crashed")).exit_code == 7


async def test_reused_pid_is_never_mistaken_for_the_replica(
    make_backend: Callable[..., LocalBackend], data_dir: Path
) -> None:
    backend = make_backend()
    await backend.start(spec("rep-old", py(SLEEPER)))
    await wait_line(backend, "rep-old", "up")
    d = data_dir / "replicas" / "rep-old"
    state = json.loads((d / "state.json").read_text())
    os.killpg(state["pid"], signal.SIGKILL)
    # An unrelated process now holds "the replica's pid" (stand-in: same pid field, its own group).
    stranger = await asyncio.create_subprocess_exec(PY, "-c", "import time; time.sleep(30)", start_new_session=True)
    try:
        st = procfs.read_stat(stranger.pid)
        assert st is not None
        state["pid"] = stranger.pid  # start_time stays the old one: that is what tells them apart
        (d / "state.json").write_text(json.dumps(state))
        fresh = make_backend()
        [obs] = await fresh.list()
        assert obs.phase == RunPhase.EXITED
        await fresh.kill("rep-old")
        await fresh.stop("rep-old", 0.1)
        await asyncio.sleep(0.1)
        assert pid_alive(stranger.pid)  # never signalled
    finally:
        stranger.kill()
        await stranger.wait()


async def test_record_without_pid_is_recovered_from_proc(
    make_backend: Callable[..., LocalBackend], data_dir: Path
) -> None:
    """Podium died between spawning the supervisor and recording its pid."""
    backend = make_backend()
    await backend.start(spec("rep-window", py(SLEEPER)))
    await wait_line(backend, "rep-window", "up")
    d = data_dir / "replicas" / "rep-window"
    state = json.loads((d / "state.json").read_text())
    pid = state["pid"]
    state["pid"] = state["start_time"] = None
    (d / "state.json").write_text(json.dumps(state))
    fresh = make_backend()
    [obs] = await fresh.list()
    assert obs.phase == RunPhase.RUNNING
    assert json.loads((d / "state.json").read_text())["pid"] == pid
    await fresh.stop("rep-window", 1)
    await eventually(lambda: not pid_alive(pid))
