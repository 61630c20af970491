"""Debian podman as a Docker Engine API for tests: is it here, and a service on a private socket.

scripts/ci-podman.sh installs podman and builds IMAGE on a fresh machine (CI does); tests that need
them skip where they are missing, except under CI=true.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

IMAGE = "localhost/podium-python:test"  # built by tests/runtime/build_test_image.sh


def engine_ready() -> bool:
    if shutil.which("podman") is None:
        return False
    return subprocess.run(["podman", "image", "exists", IMAGE], capture_output=True).returncode == 0


class EngineService:
    """`podman system service` on one socket, which a test can stop and start again (an engine that
    goes down under a running Podium, or comes up after it). Containers outlive the service."""

    def __init__(self, sock: Path) -> None:
        self.sock = sock
        self.url = f"unix://{sock}"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self._proc is None, "already running"
        self._proc = subprocess.Popen(
            ["podman", "system", "service", "--time=0", self.url],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while not self._answers():
            assert time.monotonic() < deadline and self._proc.poll() is None, "podman service did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(10)
            self._proc = None
        self.sock.unlink(missing_ok=True)

    def _answers(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(1)
                s.connect(str(self.sock))
                s.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
                return b"OK" in s.recv(4096)
        except OSError:
            return False


@contextmanager
def podman_service(sock: Path) -> Iterator[str]:
    """`podman system service` on `sock`; yields its DOCKER_HOST URL."""
    service = EngineService(sock)
    service.start()
    try:
        yield service.url
    finally:
        service.stop()


@contextmanager
def tarpit() -> Iterator[int]:
    """A 'registry' on 127.0.0.1 that accepts connections (the kernel completes the handshake) and
    never answers; yields its port. Nothing reads from it: no thread, nothing to stop but the socket."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield int(s.getsockname()[1])


def podman(*args: str) -> str:
    """The podman CLI on the local store (the same containers the service sees)."""
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=True, timeout=60).stdout


def container_of(replica_id: str) -> str:
    """The container name of a replica (any installation), '' when there is none."""
    out = podman("ps", "-a", "--filter", f"label=podium.replica_id={replica_id}", "--format", "{{.Names}}")
    return out.strip()
