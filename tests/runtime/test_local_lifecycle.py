"""LocalBackend with real processes: start, env, stop (TERM, then KILL), groups, bad commands."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from podium.runtime.base import RunPhase
from podium.runtime.local import LocalBackend

from .conftest import PY, eventually, http_status, pid_alive, py, spec, wait_line, wait_port

IGNORE_TERM = (
    "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\ntime.sleep(60)\n"
)


async def test_http_server_on_expanded_port(backend: LocalBackend) -> None:
    t0 = time.perf_counter()
    obs = await backend.start(spec("rep-http", [PY, "-m", "http.server", "$PORT", "--bind", "127.0.0.1"]))
    assert time.perf_counter() - t0 < 0.5  # returns at once, does not wait for the server
    assert obs.phase == RunPhase.RUNNING
    assert obs.address is not None and obs.address.startswith("127.0.0.1:")
    await wait_port(obs.address)
    assert await http_status(f"http://{obs.address}/") == 200
    assert (await backend.poll("rep-http")).phase == RunPhase.RUNNING


async def test_port_env_and_braced_expansion(backend: LocalBackend) -> None:
    code = "import os, sys; print('argv', sys.argv[1], 'env', os.environ['PORT']); import time; time.sleep(30)"
    obs = await backend.start(spec("rep-env", [*py(code), "${PORT}"]))
    port = obs.address.rsplit(":", 1)[1] if obs.address else "?"
    await wait_line(backend, "rep-env", f"argv {port} env {port}")


async def test_cuda_visible_devices_from_gpus(backend: LocalBackend) -> None:
    code = "import os; print('CVD=[%s]' % os.environ['CUDA_VISIBLE_DEVICES'], os.environ['CUDA_DEVICE_ORDER'])"
    await backend.start(spec("rep-gpu", py(code), gpus=(1, 3), env={"CUDA_VISIBLE_DEVICES": "0"}))
    await backend.start(spec("rep-cpu", py(code)))
    await wait_line(
        backend, "rep-gpu", "CVD=[1,3] PCI_BUS_ID"
    )  # nvidia-smi's numbering  # the inventory's choice wins over the spec's env
    await wait_line(backend, "rep-cpu", "CVD=[]")  # set and empty: a CPU replica never grabs a GPU


async def test_stop_sends_term_and_keeps_logs(backend: LocalBackend, data_dir: Path) -> None:
    code = "import time; print('up', flush=True); time.sleep(60)"
    await backend.start(spec("rep-term", py(code)))
    await wait_line(backend, "rep-term", "up")
    t0 = time.perf_counter()
    await backend.stop("rep-term", grace_s=5)
    assert time.perf_counter() - t0 < 2  # ended by TERM, not by waiting out the grace period
    obs = await backend.poll("rep-term")
    assert obs.phase == RunPhase.EXITED
    assert obs.exit_code == -15 and "SIGTERM" in obs.detail
    d = data_dir / "replicas" / "rep-term"
    assert not (d / "state.json").exists()
    assert "up" in backend.read_tail("rep-term")
    await backend.stop("rep-term", grace_s=5)  # idempotent
    assert await backend.list() == []


async def test_stop_kills_after_grace_when_term_is_ignored(backend: LocalBackend) -> None:
    await backend.start(spec("rep-stubborn", py(IGNORE_TERM)))
    await wait_line(backend, "rep-stubborn", "ready")
    t0 = time.perf_counter()
    await backend.stop("rep-stubborn", grace_s=0.3)
    took = time.perf_counter() - t0
    assert 0.3 <= took < 3
    obs = await backend.poll("rep-stubborn")
    assert obs.phase == RunPhase.EXITED and obs.exit_code == -9


async def test_kill_is_immediate(backend: LocalBackend) -> None:
    await backend.start(spec("rep-k", py(IGNORE_TERM)))
    await wait_line(backend, "rep-k", "ready")
    t0 = time.perf_counter()
    await backend.kill("rep-k")
    assert time.perf_counter() - t0 < 1
    assert (await backend.poll("rep-k")).phase == RunPhase.EXITED


SPAWNS_CHILD = (
    "import subprocess, sys, time\n"
    "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
    "print('child', c.pid, flush=True)\n"
    "time.sleep(float(sys.argv[1]))\n"
)


def _child_pid(backend: LocalBackend, rid: str) -> int:
    line = next(x for x in backend.read_tail(rid, 50).splitlines() if x.startswith("child "))
    return int(line.split()[1])


async def test_stop_ends_the_whole_process_group(backend: LocalBackend) -> None:
    await backend.start(spec("rep-tree", [*py(SPAWNS_CHILD), "60"]))
    await wait_line(backend, "rep-tree", "child ")
    child = _child_pid(backend, "rep-tree")
    assert pid_alive(child)
    await backend.stop("rep-tree", grace_s=2)
    await eventually(lambda: not pid_alive(child), timeout=2)


async def test_leftover_children_die_when_the_main_process_exits(backend: LocalBackend) -> None:
    await backend.start(spec("rep-orphaning", [*py(SPAWNS_CHILD), "0.2"]))
    await wait_line(backend, "rep-orphaning", "child ")
    child = _child_pid(backend, "rep-orphaning")
    await eventually(lambda: not pid_alive(child), timeout=5)
    await eventually(lambda: backend._poll("rep-orphaning").phase == RunPhase.EXITED)
    assert (await backend.poll("rep-orphaning")).exit_code == 0


async def test_exit_code_and_last_lines_for_failure_messages(backend: LocalBackend) -> None:
    code = "import sys; print('loading model'); print('boom: out of memory', file=sys.stderr); sys.exit(3)"
    await backend.start(spec("rep-crash", py(code)))
    await eventually(lambda: backend._poll("rep-crash").phase == RunPhase.EXITED)
    obs = await backend.poll("rep-crash")
    assert obs.exit_code == 3 and obs.detail == "exited with code 3"
    assert backend.read_tail("rep-crash", 2) == "loading model\nboom: out of memory"


async def test_address_in_use_is_named_in_the_detail(backend: LocalBackend) -> None:
    code = "import sys; print('OSError: [Errno 98] Address already in use'); sys.exit(1)"
    await backend.start(spec("rep-busy", py(code)))
    await eventually(lambda: backend._poll("rep-busy").phase == RunPhase.EXITED)
    assert "address already in use" in (await backend.poll("rep-busy")).detail


async def test_bad_commands_exit_with_a_clear_detail(backend: LocalBackend, tmp_path: Path) -> None:
    not_exec = tmp_path / "script.sh"
    not_exec.write_text("echo hi\n")
    cases = {
        "rep-bad1": (["no-such-command-xyz", "--port", "$PORT"], "command not found on PATH"),
        "rep-bad2": ([str(tmp_path / "missing")], "no such file"),
        "rep-bad3": ([str(not_exec)], "not an executable file"),
        "rep-bad4": ([], "no command"),
    }
    for rid, (argv, why) in cases.items():
        obs = await backend.start(spec(rid, argv))
        assert obs.phase == RunPhase.EXITED, rid
        assert why in obs.detail, (rid, obs.detail)
        again = await backend.poll(rid)
        assert again.phase == RunPhase.EXITED and why in again.detail
        assert why in await backend.tail_text(rid)
    assert await backend.list() == []


async def test_start_is_idempotent(backend: LocalBackend) -> None:
    a = await backend.start(spec("rep-same", py("import time; time.sleep(30)")))
    b = await backend.start(spec("rep-same", py("import time; time.sleep(30)")))
    assert a.address == b.address and len(await backend.list()) == 1


async def test_unknown_replica(backend: LocalBackend) -> None:
    assert (await backend.poll("rep-nope")).phase == RunPhase.UNKNOWN
    await backend.stop("rep-nope", 1)
    await backend.kill("rep-nope")
    assert backend.read_tail("rep-nope") == ""
    assert [x async for x in backend.logs("rep-nope")] == []


async def test_close_ends_everything_in_parallel(make_backend, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    backend = make_backend(close_grace_s=0.5)
    pids = []
    for i in range(3):
        await backend.start(spec(f"rep-c{i}", py(IGNORE_TERM)))
    for i in range(3):
        await wait_line(backend, f"rep-c{i}", "ready")
        rec = (data_dir / "replicas" / f"rep-c{i}" / "state.json").read_text()
        pids.append(int(rec.split('"pid": ')[1].split(",")[0]))
    t0 = time.perf_counter()
    await backend.close()
    assert time.perf_counter() - t0 < 1.5  # three grace periods of 0.5 s, in parallel
    assert not any(pid_alive(p) for p in pids)
    assert await backend.list() == []


async def test_old_ended_replica_dirs_are_pruned(make_backend, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    backend = make_backend()
    await backend.start(spec("rep-old", py("print('bye')")))
    await backend.start(spec("rep-live", py(IGNORE_TERM)))
    await eventually(lambda: backend._poll("rep-old").phase == RunPhase.EXITED)
    await wait_line(backend, "rep-live", "ready")
    week_ago = time.time() - 8 * 86400
    for rid in ("rep-old", "rep-live"):
        os.utime(data_dir / "replicas" / rid, (week_ago, week_ago))
    make_backend()  # a restarted Podium prunes what ended long ago, never what runs
    assert not (data_dir / "replicas" / "rep-old").exists()
    assert (await backend.poll("rep-live")).phase == RunPhase.RUNNING


async def test_concurrent_starts_get_distinct_working_ports(backend: LocalBackend) -> None:
    argv = [PY, "-m", "http.server", "$PORT", "--bind", "127.0.0.1"]
    started = await asyncio.gather(*(backend.start(spec(f"rep-p{i}", argv)) for i in range(6)))
    addresses = [o.address for o in started]
    assert len(set(addresses)) == 6
    for address in addresses:
        assert address is not None
        await wait_port(address, timeout=10)
    assert all(o.phase == RunPhase.RUNNING for o in await backend.list())
