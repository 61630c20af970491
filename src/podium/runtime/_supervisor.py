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

import os
import sys

# Only os and sys (loaded by the interpreter anyway) are needed before the replica is spawned; the
# rest is imported after, so the supervisor adds as little as possible to the replica's start.

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
    import json

    tmp = os.path.join(directory, f".{EXIT_NAME}.tmp")
    with open(tmp, "w") as f:
        json.dump(record, f)
    os.replace(tmp, os.path.join(directory, EXIT_NAME))


def kill_rest_of_group() -> None:
    """SIGKILL every other process in our process group (the replica's helpers, workers)."""
    import signal

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
            try:
                os.kill(int(name), signal.SIGKILL)
            except OSError:
                pass


def describe(status: int) -> tuple[int, str]:
    """(exit_code, text): a negative code is a signal number, as in subprocess."""
    import signal

    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return -sig, f"killed by signal {signal.Signals(sig).name}"
    code = os.waitstatus_to_exitcode(status)
    return code, f"exited with code {code}"


def pump(read_fd: int, child_pid: int, writer: RotatingWriter) -> int:
    """Copy output until the child exits (then drain briefly); returns the raw wait status."""
    import selectors
    import time

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


def parse_args(args: list[str]) -> tuple[str, int, int, list[str]]:
    """--dir D --max-bytes N --backups K -- argv... (no argparse: it costs ~10 ms to import)."""
    sep = args.index("--")
    opts = dict(zip(args[:sep:2], args[1:sep:2], strict=True))
    return opts["--dir"], int(opts["--max-bytes"]), int(opts["--backups"]), args[sep + 1 :]


def spawn(argv: list[str], write_fd: int) -> int:
    """posix_spawn the replica with stdout+stderr into the pipe; default SIGPIPE/SIGXFSZ for it
    (the interpreter ignores SIGPIPE, and ignored signals survive exec)."""
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_DUP2, write_fd, 1),
        (os.POSIX_SPAWN_DUP2, write_fd, 2),
    ]
    return os.posix_spawnp(argv[0], argv, os.environ, file_actions=actions, setsigdef=(13, 25))


def main() -> int:
    directory, max_bytes, backups, argv = parse_args(sys.argv[1:])
    read_fd, write_fd = os.pipe()  # both close-on-exec; the DUP2 copies are inheritable
    try:
        child_pid = spawn(argv, write_fd)
    except OSError as e:
        import time

        writer = RotatingWriter(directory, max_bytes, backups)
        code = 127 if isinstance(e, FileNotFoundError) else 126
        detail = f"cannot execute {argv[0]!r}: {e.strerror}"
        writer.write(f"[podium] {detail}\n".encode())
        write_exit(directory, {"exit_code": code, "detail": detail, "ended_at": time.time()})
        return code
    os.close(write_fd)
    import signal
    import time

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: None)  # the group's TERM is for the replica; we leave after it
    writer = RotatingWriter(directory, max_bytes, backups)
    status = pump(read_fd, child_pid, writer)
    code, detail = describe(status)
    write_exit(directory, {"exit_code": code, "detail": detail, "ended_at": time.time()})
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
