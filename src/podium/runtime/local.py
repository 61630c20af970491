"""LocalBackend: replicas as processes on this machine, surviving a `kill -9` of Podium.

Each replica runs under its own small supervisor process (_supervisor.py), started in a new session
so the supervisor's pid is the replica's process-group id. The supervisor owns the replica's
output (rotated logs) and records its exit status; Podium records what it started in
data_dir/replicas/<id>/state.json (see records.py). A new LocalBackend on the same data dir finds
what still runs with list(): a replica counts as alive only if its pid is alive AND has the
recorded /proc start time, so a reused pid is never mistaken for it. Nothing here blocks the event
loop on a process: spawning runs in a thread, waiting for an exit polls /proc with short sleeps.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

from podium.runtime import logfiles, procfs
from podium.runtime.base import LaunchSpec, ReplicaObservation, RunPhase
from podium.runtime.local_env import (
    expand_port,
    inherited_env,
    link_volumes,
    replica_env,
    resolve_executable,
    unlink_unused,
)
from podium.runtime.ports import PortAllocator
from podium.runtime.records import (
    EXIT,
    ReplicaRecord,
    mark_ended,
    read_exit,
    read_record,
    write_exit,
    write_record,
)

SUPERVISOR = Path(__file__).with_name("_supervisor.py")
_WAIT_STEP_S = 0.02


class LocalBackend:
    name = "local"

    def __init__(
        self,
        data_dir: Path,
        *,
        host: str = "127.0.0.1",
        log_max_bytes: int = 10 * 1024 * 1024,
        log_backups: int = 3,
        close_grace_s: float = 10.0,
        log_retention_s: float = 7 * 86400.0,
        port_range: tuple[int, int] | None = None,
        base_env: Mapping[str, str] | None = None,
        python: str = sys.executable,
    ) -> None:
        self.root = Path(data_dir).absolute() / "replicas"  # absolute: it is in supervisors' argv
        self.root.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.log_max_bytes, self.log_backups = log_max_bytes, log_backups
        self.close_grace_s = close_grace_s
        self.base_env = inherited_env(os.environ if base_env is None else base_env)
        self.python = python
        self.ports = PortAllocator(port_range)
        self._children: dict[str, subprocess.Popen[bytes]] = {}  # supervisors we spawned: to reap
        self._known: dict[str, int] = {}  # started or adopted (seen running) -> port; close() stops them
        self.prune(log_retention_s)

    def replica_dir(self, replica_id: str) -> Path:
        return self.root / replica_id

    # ---- start -------------------------------------------------------------------------------

    async def start(self, spec: LaunchSpec) -> ReplicaObservation:
        """Launch and return at once (RUNNING + address); failures to launch come back as EXITED."""
        d = self.replica_dir(spec.replica_id)
        if read_record(d) is not None:  # started already: idempotent
            return await self.poll(spec.replica_id)
        if not spec.command:
            return self._refused(spec, "no command: the local runtime runs a process, not an image")
        d.mkdir(parents=True, exist_ok=True)
        (d / EXIT).unlink(missing_ok=True)
        port = self.ports.allocate(in_use=self._known.values())
        env = replica_env(spec, self.base_env, port)
        argv = expand_port(list(spec.command), port)
        why = resolve_executable(argv[0], env)
        if why is not None:
            return self._refused(spec, why, code=127)
        links = link_volumes(spec.volumes)
        rec = ReplicaRecord(
            replica_id=spec.replica_id,
            endpoint_id=spec.endpoint_id,
            port=port,
            argv=argv,
            gpus=list(spec.gpus),
            started_at=time.time(),
            links=links.created + links.shared,
            notes=links.notes,
        )
        write_record(d, rec)  # before the spawn: a crash in between leaves a findable record
        try:
            proc = self._spawn(d, argv, env)  # vfork+exec: ~0.5 ms; a thread hop costs more
        except OSError as e:  # the python for the supervisor itself is missing: rare
            mark_ended(d)
            return self._refused(spec, f"cannot start the supervisor: {e}", code=126)
        self._children[spec.replica_id] = proc
        rec.pid, rec.start_time = proc.pid, procfs.start_time(proc.pid)
        write_record(d, rec)
        self._known[spec.replica_id] = port
        return self._observation(rec, RunPhase.RUNNING)

    def _spawn(self, d: Path, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        with open(d / "supervisor.log", "ab") as err:
            return subprocess.Popen(
                [
                    self.python,
                    "-I",
                    "-S",
                    str(SUPERVISOR),
                    "--dir",
                    str(d),
                    "--max-bytes",
                    str(self.log_max_bytes),
                    "--backups",
                    str(self.log_backups),
                    "--",
                    *argv,
                ],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                start_new_session=True,
                close_fds=True,
            )

    def _refused(self, spec: LaunchSpec, detail: str, code: int = 126) -> ReplicaObservation:
        """Could not launch: record it like an exit so poll() and the log tell the same story."""
        d = self.replica_dir(spec.replica_id)
        d.mkdir(parents=True, exist_ok=True)
        with open(d / logfiles.LOG_NAME, "a") as f:
            f.write(f"[podium] {detail}\n")
        write_exit(d, code, detail, time.time())
        return ReplicaObservation(
            spec.replica_id, spec.endpoint_id, RunPhase.EXITED, exit_code=code, gpus=spec.gpus, detail=detail
        )

    # ---- observe -----------------------------------------------------------------------------

    async def poll(self, replica_id: str) -> ReplicaObservation:
        return self._poll(replica_id)

    def _poll(self, replica_id: str) -> ReplicaObservation:
        self._reap(replica_id)
        d = self.replica_dir(replica_id)
        rec = read_record(d)
        if rec is None:
            ended = read_record(d, ended=True)
            if ended is not None:
                return self._observation(ended, RunPhase.EXITED)
            ex = read_exit(d)
            if ex is not None:
                return ReplicaObservation(replica_id, "", RunPhase.EXITED, exit_code=ex.exit_code, detail=ex.detail)
            return ReplicaObservation(replica_id, "", RunPhase.UNKNOWN, detail="no such replica")
        if rec.pid is None:
            rec = self._recover_pid(d, rec)
        if _alive(rec) and not (d / EXIT).exists():  # exit.json: the replica ended, its supervisor is leaving
            self._known.setdefault(replica_id, rec.port)
            return self._observation(rec, RunPhase.RUNNING)
        self._finish(d, rec)
        return self._observation(rec, RunPhase.EXITED)

    async def list(self) -> list[ReplicaObservation]:
        """Every replica with a state record: RUNNING ones (to adopt or end) and those found dead."""
        out = []
        for d in sorted(self.root.iterdir()):
            if (d / "state.json").exists():
                out.append(self._poll(d.name))
        return out

    def _recover_pid(self, d: Path, rec: ReplicaRecord) -> ReplicaRecord:
        """Podium died between spawning and recording the pid: find the supervisor by its --dir."""
        needle = b"--dir\x00" + str(d).encode() + b"\x00"
        for pid in procfs.find_by_cmdline(needle):
            st = procfs.read_stat(pid)
            if st is not None and st.pgrp == pid:
                rec.pid, rec.start_time = pid, st.start_time
                write_record(d, rec)
                break
        return rec

    def _observation(self, rec: ReplicaRecord, phase: RunPhase) -> ReplicaObservation:
        detail, code = "; ".join(rec.notes), None
        if phase == RunPhase.EXITED:
            code, detail = self._exit_info(rec)
        return ReplicaObservation(
            replica_id=rec.replica_id,
            endpoint_id=rec.endpoint_id,
            phase=phase,
            address=f"{self.host}:{rec.port}",
            exit_code=code,
            gpus=tuple(rec.gpus),
            started_at=rec.started_at,
            detail=detail,
        )

    def _exit_info(self, rec: ReplicaRecord) -> tuple[int | None, str]:
        d = self.replica_dir(rec.replica_id)
        ex = read_exit(d)
        if ex is not None:
            code, detail = ex.exit_code, ex.detail
        else:
            proc = self._children.get(rec.replica_id)
            rc = proc.returncode if proc is not None else None
            if rc is not None and rc < 0:
                code, detail = rc, f"killed by signal {signal.Signals(-rc).name}"
            elif rc is not None:
                code, detail = rc, f"exited with code {rc}"
            else:
                code, detail = None, "ended while not watched by this Podium process; exit status unknown"
        if code not in (None, 0) and "address already in use" in self.read_tail(rec.replica_id, 20).lower():
            detail += f" (port {rec.port} was taken: address already in use; a restart picks another port)"
        return code, detail

    def _reap(self, replica_id: str) -> None:
        proc = self._children.get(replica_id)
        if proc is not None:
            proc.poll()  # waitpid(WNOHANG): no zombie supervisors

    def _finish(self, d: Path, rec: ReplicaRecord) -> None:
        """The replica is gone: make sure nothing of its group lingers, retire its record."""
        if rec.pid is not None and rec.start_time is not None and procfs.group_is_ours(rec.pid, rec.start_time):
            procfs.signal_group(rec.pid, signal.SIGKILL)
        if rec.links:
            still_used = {link for other in _live_records(self.root) for link in other.links}
            unlink_unused(rec.links, still_used)
        if read_exit(d) is None:  # the supervisor was killed too: keep what its parent (we) saw
            code, detail = self._exit_info(rec)
            if code is not None:
                write_exit(d, code, detail, time.time())
        mark_ended(d)
        self._known.pop(rec.replica_id, None)

    # ---- stop --------------------------------------------------------------------------------

    async def stop(self, replica_id: str, grace_s: float = 10.0) -> None:
        """SIGTERM the group, wait up to grace_s, SIGKILL what is left. Idempotent."""
        await self._end(replica_id, grace_s)

    async def kill(self, replica_id: str) -> None:
        await self._end(replica_id, 0.0)

    async def _end(self, replica_id: str, grace_s: float) -> None:
        d = self.replica_dir(replica_id)
        rec = read_record(d)
        if rec is None:
            self._known.pop(replica_id, None)
            return
        if rec.pid is None:
            rec = self._recover_pid(d, rec)
        pid, st = rec.pid, rec.start_time
        if pid is not None and st is not None:
            ours = procfs.group_is_ours(pid, st)
            if ours and grace_s > 0 and procfs.signal_group(pid, signal.SIGTERM):
                await self._wait_gone(replica_id, pid, st, grace_s)
            if procfs.group_is_ours(pid, st):
                procfs.signal_group(pid, signal.SIGKILL)
                await self._wait_gone(replica_id, pid, st, 5.0)
        self._reap(replica_id)
        self._finish(d, rec)
        self._children.pop(replica_id, None)

    async def _wait_gone(self, replica_id: str, pid: int, start: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while True:
            self._reap(replica_id)
            if not procfs.group_is_ours(pid, start):
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(_WAIT_STEP_S)

    async def close(self) -> None:
        """Stop every replica this backend started or adopted, in parallel."""
        await asyncio.gather(*(self.stop(rid, self.close_grace_s) for rid in list(self._known)))

    # ---- logs --------------------------------------------------------------------------------

    def logs(self, replica_id: str, tail: int = 100, follow: bool = False) -> AsyncIterator[str]:
        d = self.replica_dir(replica_id)
        if follow:
            return logfiles.follow(d, tail, lambda: self._poll(replica_id).phase == RunPhase.RUNNING)
        return _tail_iter(d, tail)

    async def tail_text(self, replica_id: str, lines: int = 20) -> str:
        """The last lines of a replica's output, for failure messages ("" when there is none)."""
        return self.read_tail(replica_id, lines)

    def read_tail(self, replica_id: str, lines: int = 20) -> str:
        """tail_text without the await: a local file read of at most a few blocks."""
        return "\n".join(logfiles.tail_lines(self.replica_dir(replica_id), lines))

    def prune(self, older_than_s: float) -> int:
        """Delete the directories (logs) of replicas that ended more than older_than_s ago."""
        cutoff, removed = time.time() - older_than_s, 0
        for d in self.root.iterdir():
            if not (d / "state.json").exists() and d.stat().st_mtime < cutoff:
                shutil.rmtree(d, ignore_errors=True)
                removed += 1
        return removed

    def forget(self, replica_id: str) -> None:
        """Delete an ended replica's directory (its logs). Refuses while it has a state record."""
        d = self.replica_dir(replica_id)
        if not (d / "state.json").exists():
            shutil.rmtree(d, ignore_errors=True)


def _live_records(root: Path) -> list[ReplicaRecord]:
    recs = [read_record(d) for d in root.iterdir() if (d / "state.json").exists()]
    return [r for r in recs if r is not None and _alive(r)]


def _alive(rec: ReplicaRecord) -> bool:
    return rec.pid is not None and rec.start_time is not None and procfs.is_same_alive(rec.pid, rec.start_time)


async def _tail_iter(directory: Path, tail: int) -> AsyncIterator[str]:
    """A large tail reads megabytes across rotated files: off the event loop."""
    for line in await asyncio.to_thread(logfiles.tail_lines, directory, tail):
        yield line
