"""Per-replica supervisor: the parent of one replica process, independent of Podium.

Run as a plain script (`python -I -S _supervisor.py --dir D --max-bytes N --backups K -- argv...`),
so it imports only the standard library and starts in ~20 ms. LocalBackend starts it in a new
session; the supervisor's pid is the replica's process-group id.

Why a separate process rather than Podium piping the output itself: after `kill -9` of Podium an
adopted replica must keep running and keep its logs. A pipe into Podium would break (the replica
would die of SIGPIPE on its next write); a log file handed to the child directly cannot be rotated
safely. The supervisor owns the pipe, writes size-rotated logs, and outlives Podium. Being the real
parent, it also records the exit status (exit.json), which Podium cannot learn for a process that
is not its child (an adopted replica).

Signals: TERM/INT/HUP sent to the group reach the replica directly; the supervisor only notes them
(it does not forward, so the replica sees one TERM, not two). When the replica exits, whatever is
left of its process group is SIGKILLed, like a container whose main process ended.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import time

LOG_NAME = "output.log"
EXIT_NAME = "exit.json"
DRAIN_AFTER_EXIT_S = 1.0  # stragglers that escaped the group may hold the pipe open; stop waiting then


class RotatingWriter:
    """Appends bytes to DIR/output.log, rotating to .1 .. .K when the file would pass max_bytes."""

    def __init__(self, directory: str, max_bytes: int, backups: int) -> None:
        self.path = os.path.join(directory, LOG_NAME)
        self.max_bytes, self.backups = max_bytes, backups
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.size = os.fstat(self.fd).st_size

    def write(self, data: bytes) -> None:
        if self.size > 0 and self.size + len(data) > self.max_bytes:
            # Rotate at a line boundary so no line is split across two files: a file may pass
            # max_bytes by less than one read (64 KiB).
            cut = data.rfind(b"\n") + 1
            if cut:
                self._write_all(data[:cut])
                data = data[cut:]
            self.rotate()
        self._write_all(data)

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]
            self.size += n

    def rotate(self) -> None:
        os.close(self.fd)
        if self.backups > 0:
            for i in range(self.backups - 1, 0, -1):
                src = f"{self.path}.{i}"
                if os.path.exists(src):
                    os.replace(src, f"{self.path}.{i + 1}")
            os.replace(self.path, f"{self.path}.1")
        else:
            os.unlink(self.path)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
        self.size = 0


def write_exit(directory: str, record: dict[str, object]) -> None:
    tmp = os.path.join(directory, f".{EXIT_NAME}.tmp")
    with open(tmp, "w") as f:
        json.dump(record, f)
    os.replace(tmp, os.path.join(directory, EXIT_NAME))


def kill_rest_of_group() -> None:
    """SIGKILL every other process in our process group (the replica's helpers, workers)."""
    me, pgid = os.getpid(), os.getpgrp()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # field 5 overall: pgrp
            with contextlib.suppress(OSError):
                os.kill(int(name), signal.SIGKILL)


def describe(status: int) -> tuple[int, str]:
    """(exit_code, text): a negative code is a signal number, as in subprocess."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return -sig, f"killed by signal {signal.Signals(sig).name}"
    code = os.waitstatus_to_exitcode(status)
    return code, f"exited with code {code}"


def pump(read_fd: int, child_pid: int, writer: RotatingWriter) -> int:
    """Copy output until the child exits (then drain briefly); returns the raw wait status."""
    sel = selectors.DefaultSelector()
    sel.register(read_fd, selectors.EVENT_READ, "out")
    pidfd = os.pidfd_open(child_pid)
    sel.register(pidfd, selectors.EVENT_READ, "exit")
    status: int | None = None
    deadline: float | None = None
    pipe_open = True
    while pipe_open:
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        events = sel.select(timeout)
        if not events and deadline is not None:
            break
        for key, _ in events:
            if key.data == "out":
                chunk = os.read(read_fd, 65536)
                if chunk:
                    writer.write(chunk)
                else:
                    pipe_open = False
            elif status is None:
                _, status = os.waitpid(child_pid, 0)
                sel.unregister(pidfd)
                kill_rest_of_group()
                deadline = time.monotonic() + DRAIN_AFTER_EXIT_S
    if status is None:  # output closed before the exit: just wait for it
        _, status = os.waitpid(child_pid, 0)
        kill_rest_of_group()
    os.close(pidfd)
    return status


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--max-bytes", type=int, required=True)
    parser.add_argument("--backups", type=int, required=True)
    parser.add_argument("argv", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: None)  # a handler (not SIG_IGN) resets to default in the child
    writer = RotatingWriter(args.dir, args.max_bytes, args.backups)
    read_fd, write_fd = os.pipe()
    try:
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=write_fd, stderr=write_fd, close_fds=True)
    except OSError as e:
        code = 127 if isinstance(e, FileNotFoundError) else 126
        detail = f"cannot execute {argv[0]!r}: {e.strerror}"
        writer.write(f"[podium] {detail}\n".encode())
        write_exit(args.dir, {"exit_code": code, "detail": detail, "ended_at": time.time()})
        return code
    os.close(write_fd)
    status = pump(read_fd, child.pid, writer)
    child.returncode = 0  # already reaped by pump(); keep Popen from waiting again
    code, detail = describe(status)
    write_exit(args.dir, {"exit_code": code, "detail": detail, "ended_at": time.time()})
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
