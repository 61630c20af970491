"""A scale-to-zero endpoint in a real `podium up`, driven by the real CLI as a process:
`wait --for serving` fails fast while nothing would start a replica, `logs --follow` with no
replica waits for the next one instead of exiting, and keeps following replicas as they come."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import PYTHON, free_port
from tests.e2e.conftest import ADMIN, PODIUM, assert_no_replicas_left, start_podium, stop_podium

REPLICA = f"{PYTHON} {Path(__file__).parents[1] / 'e2e' / 'replica_server.py'} $PORT"


def _until(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _wake(url: str) -> int:
    """A request through the data plane: the only thing that starts a replica of a min-0 endpoint."""
    return httpx.get(url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=60).status_code


@pytest.mark.e2e
@pytest.mark.slow
def test_wait_and_follow_on_a_scale_to_zero_endpoint(tmp_path: Path) -> None:
    p = start_podium(tmp_path / "data", free_port())
    out, err = tmp_path / "logs.out", tmp_path / "logs.err"
    follower: subprocess.Popen[bytes] | None = None
    try:
        ep = p.cli_json(
            "endpoint", "create", "--name", "lazy", "--container-command", REPLICA, "--health-check-path", "/health",
            "--min-replicas", "0", "--env", f"PODIUM_TEST_MARK={p.mark}",
        )  # fmt: skip
        app_url = ep["status"]["urls"]["app"]
        idle = p.cli("endpoint", "wait", "lazy", "--for", "idle", "--timeout", "30")
        assert idle.stdout == "idle\n" and "waiting up to 30s" in idle.stderr
        began = time.monotonic()
        hopeless = p.cli("endpoint", "wait", "lazy", "--for", "serving", "--timeout", "120", check=False)
        assert hopeless.returncode == 1 and time.monotonic() - began < 15
        assert "min_replicas 0" in hopeless.stderr and "--min-replicas 1" in hopeless.stderr

        with out.open("wb") as o, err.open("wb") as e:
            follower = subprocess.Popen(
                [*PODIUM, "endpoint", "logs", "lazy", "--follow"], env=p.env, stdout=o, stderr=e
            )
        _until(lambda: "waiting for the next one" in err.read_text(), "logs --follow to wait for a replica")
        assert follower.poll() is None  # it did not exit with nothing to show
        assert "until a request arrives" in err.read_text()  # and it says what would start a replica

        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(_wake, app_url + "first-request")
            serving = p.cli("endpoint", "wait", "lazy", "--for", "serving", "--timeout", "60")
            assert first.result() == 200
        assert serving.stdout == "serving\n" and re.search(r"\d+\.\ds  serving +1/1 ready", serving.stderr)
        _until(lambda: "GET /first-request" in out.read_text(), "the replica's log line")

        # the replica ends (stop), a new one starts later: the same follower shows it
        p.cli("endpoint", "stop", "lazy")
        _until(lambda: err.read_text().count("waiting for the next one") == 2, "the follower to wait again")
        assert "podium endpoint start" in err.read_text()
        p.cli("endpoint", "start", "lazy")
        assert _wake(app_url + "second-request") == 200
        _until(lambda: "GET /second-request" in out.read_text(), "the new replica's log line")

        follower.send_signal(signal.SIGINT)
        assert follower.wait(timeout=10) == 0
    finally:
        if follower is not None and follower.poll() is None:
            follower.kill()
            follower.wait()
        stop_podium(p)
        assert_no_replicas_left(p.mark)
