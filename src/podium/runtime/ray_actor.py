"""The on-node half of the Ray runtime: one detached Ray actor per replica (see ray.py).

The actor is the replica's parent on the node Ray chose: it picks a free port there, starts the
command under Podium's per-replica supervisor (_supervisor.py: rotated output.log, exit.json,
its own process group), and answers for it: where it runs, whether it ended and how, its log.
It holds the replica's Ray resources (GPUs, CPUs, memory) for as long as it lives, so Ray's own
accounting is the region's inventory. Detached: it outlives the Podium process that created it.

This module is shipped to the nodes by value (cloudpickle's register_pickle_by_value, done by the
driver), so nodes need Ray and Python, not Podium. It therefore imports only the standard
library, and functions of logfiles.py, shipped by value too. `ray` is imported inside methods:
they run in a Ray worker, where it is loaded already.

If the actor dies (killed, or its worker crashes) while its node lives on, the replica must not
run on untracked, holding GPUs nobody accounts for: the supervisor asks the kernel for SIGUSR1
when its parent (the actor) dies, and then SIGKILLs its whole group; and as Ray itself SIGKILLs a
dying worker's children (the supervisor), the replica asks for SIGKILL when the supervisor dies.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from podium.runtime.logfiles import LOG_NAME, log_files, tail_lines

_PORT_RE = re.compile(r"\$\{PORT\}|\$PORT(?![A-Za-z0-9_])")
_PR_SET_PDEATHSIG = 1
_READ_LIMIT = 1 << 20  # one follow step returns at most this much output

# Runs the supervisor with "kill my group when my parent dies" armed. -I -S: no site, no env.
_LAUNCH = """
import ctypes, os, signal, sys
sys.path.insert(0, sys.argv[1])
signal.signal(signal.SIGUSR1, lambda *_: os.killpg(0, signal.SIGKILL))
ctypes.CDLL(None).prctl(1, int(signal.SIGUSR1))
if os.getppid() != int(sys.argv[2]):
    os.killpg(0, signal.SIGKILL)
import _supervisor
sys.argv = [sys.argv[0]] + sys.argv[3:]
sys.exit(_supervisor.main())
"""


# Runs the replica's command with SIGKILL armed for its supervisor's death: Ray SIGKILLs a dying
# worker's children (the supervisor), which then cannot end its group itself.
_ARM = """
import ctypes, os, signal, sys
ctypes.CDLL(None).prctl(1, int(signal.SIGKILL))
try:
    os.execvp(sys.argv[1], sys.argv[1:])
except OSError as e:
    print(f"[podium] cannot execute {sys.argv[1]!r}: {e.strerror}", flush=True)
    os._exit(127)
"""


def expand_port(argv: list[str], port: int) -> list[str]:
    return [_PORT_RE.sub(str(port), arg) for arg in argv]


def free_port(ip: str, lo: int, hi: int) -> int:
    """A port of this node that binds now (on all interfaces, no SO_REUSEADDR), picked at random in
    [lo, hi] so replicas started at once on one node rarely race for the same one."""
    for _ in range(200):
        port = random.randint(lo, hi)
        try:
            with socket.socket() as s:
                s.bind(("0.0.0.0", port))
            return port
        except OSError:
            continue
    with socket.socket() as s:  # a crowded range: let the kernel choose
        s.bind((ip, 0))
        return int(s.getsockname()[1])


def node_env(base: dict[str, str], spec_env: dict[str, str], port: int, ip: str, gpus: list[str]) -> dict[str, str]:
    """The worker's environment minus Ray's and Podium's own settings < spec.env < Podium's word."""
    env = {k: v for k, v in base.items() if not k.startswith(("RAY_", "PODIUM_"))}
    env.update(spec_env)
    env["PORT"] = str(port)
    env.setdefault("HOST", ip)  # the node's address: where the gateway will connect
    env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)  # what Ray assigned this actor ("" = none)
    env.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def describe_status(code: int) -> str:
    if code < 0:
        return f"killed by signal {signal.Signals(-code).name}"
    return f"exited with code {code}"


class ReplicaActor:
    """Created with `.options(name=replica_id, lifetime="detached", num_gpus=...)`."""

    def __init__(
        self,
        replica_id: str,
        endpoint_id: str,
        argv: list[str],
        env: dict[str, str],
        node_dir: str,
        supervisor_source: str,
        log_limits: tuple[int, int],
        port_range: tuple[int, int],
    ) -> None:
        import ray

        self.replica_id, self.endpoint_id = replica_id, endpoint_id
        self.node_id = ray.get_runtime_context().get_node_id()
        self.ip = ray.util.get_node_ip_address()
        self.gpus = [str(g) for g in ray.get_gpu_ids()]
        self.dir = os.path.join(node_dir, replica_id)
        os.makedirs(self.dir, exist_ok=True)
        for stale in ("exit.json", LOG_NAME):  # a replica id is never reused; a half-done earlier try is
            if os.path.exists(os.path.join(self.dir, stale)):
                os.unlink(os.path.join(self.dir, stale))
        self.started_at = time.time()
        self.port = free_port(self.ip, *port_range)
        self.proc: subprocess.Popen[bytes] | None = None
        self.refused: dict[str, Any] | None = None
        env = node_env(dict(os.environ), env, self.port, self.ip, self.gpus)
        argv = expand_port(argv, self.port)
        if shutil.which(argv[0], path=env.get("PATH", os.defpath)) is None:
            where = "no such executable file" if "/" in argv[0] else "command not found on PATH"
            self._refuse(127, f"cannot execute {argv[0]!r} on node {self.node_id} ({self.ip}): {where}")
            return
        self._write_supervisor(node_dir, supervisor_source)
        args = [sys.executable, "-I", "-S", "-c", _LAUNCH, node_dir, str(os.getpid())]
        args += ["--dir", self.dir, "--max-bytes", str(log_limits[0]), "--backups", str(log_limits[1]), "--"]
        with open(os.path.join(self.dir, "supervisor.log"), "ab") as err:
            self.proc = subprocess.Popen(
                [*args, sys.executable, "-I", "-S", "-c", _ARM, *argv],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                start_new_session=True,
                close_fds=True,
            )

    @staticmethod
    def _write_supervisor(node_dir: str, source: str) -> None:
        path = os.path.join(node_dir, "_supervisor.py")
        try:
            with open(path) as f:
                if f.read() == source:
                    return
        except FileNotFoundError:
            pass
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            f.write(source)
        os.replace(tmp, path)

    def _refuse(self, code: int, detail: str) -> None:
        with open(os.path.join(self.dir, LOG_NAME), "a") as f:
            f.write(f"[podium] {detail}\n")
        self.refused = {"exit_code": code, "detail": detail}

    # ---- what the backend asks -----------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        return {
            "replica_id": self.replica_id,
            "endpoint_id": self.endpoint_id,
            "node_id": self.node_id,
            "ip": self.ip,
            "port": self.port,
            "gpus": self.gpus,
            "started_at": self.started_at,
            "exit": self._exit(),
        }

    def _exit(self) -> dict[str, Any] | None:
        if self.refused is not None:
            return self.refused
        assert self.proc is not None
        rc = self.proc.poll()  # also reaps the supervisor
        try:
            with open(os.path.join(self.dir, "exit.json")) as f:
                return dict(json.load(f))
        except (FileNotFoundError, ValueError):
            pass
        if rc is None:
            return None
        return {"exit_code": rc, "detail": describe_status(rc)}  # the supervisor itself was killed

    def signal(self, signum: int) -> bool:
        """Signal the replica's whole group (TERM to drain, KILL to end). False when it ended."""
        if self.proc is None or self._exit() is not None:
            return False
        try:
            os.killpg(self.proc.pid, signum)
        except ProcessLookupError:
            return False
        return True

    def forget(self) -> bool:
        """Delete the replica's directory on this node once it ended (its record and last lines are
        kept by the backend): nodes do not fill up with old logs."""
        if self._exit() is None:
            return False
        shutil.rmtree(self.dir, ignore_errors=True)
        return True

    def tail(self, lines: int) -> dict[str, Any]:
        """The last lines, and a cursor just after them for read() to follow from."""
        path = os.path.join(self.dir, LOG_NAME)
        try:
            st = os.stat(path)
            cursor: list[int] | None = [st.st_ino, st.st_size]
            limit: int | None = st.st_size
        except FileNotFoundError:
            cursor, limit = None, None
        return {"lines": tail_lines(Path(self.dir), lines, current_limit=limit), "cursor": cursor}

    def read(self, cursor: list[int] | None) -> dict[str, Any]:
        """Complete lines written since cursor ([inode, offset]); follows rotation. `running`
        false once the replica ended: after that the rest of the file is returned too."""
        running = self._exit() is None
        files = {}
        for p in log_files(Path(self.dir)):
            files[p.stat().st_ino] = str(p)
        current = os.path.join(self.dir, LOG_NAME)
        if cursor is None or cursor[0] not in files:  # not started yet, or rotated out of reach
            if not os.path.exists(current):
                return {"lines": [], "cursor": cursor, "running": running}
            cursor = [os.stat(current).st_ino, 0]
        path = files[cursor[0]]
        with open(path, "rb") as f:
            f.seek(cursor[1])
            data = f.read(_READ_LIMIT)
        rotated = path != current
        cut = data.rfind(b"\n") + 1
        if not running and not rotated and len(data) < _READ_LIMIT:
            cut = len(data)  # the writer is gone: a last line without newline is complete
        lines = [x.decode("utf-8", "replace").rstrip("\r") for x in data[:cut].split(b"\n")]
        if lines and lines[-1] == "" and data[:cut].endswith(b"\n"):
            lines.pop()
        new_cursor = [cursor[0], cursor[1] + cut]
        if rotated and cut == len(data) and os.path.exists(current):
            new_cursor = [os.stat(current).st_ino, 0]  # finished the rotated file: on to the new one
        more = rotated or len(data) >= _READ_LIMIT
        return {"lines": lines if cut else [], "cursor": new_cursor, "running": running or more}
