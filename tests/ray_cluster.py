"""A simulated multi-node Ray cluster on this one machine, for the Ray runtime tests.

A head with no GPUs and N worker nodes with fake GPUs (`--num-gpus`, and Ray's
`accelerator_type:<X>` resource set by `--resources`), each `ray start --block` in its own session,
started one at a time (two at once time out on 2 cores), each with its own ports (the defaults
collide between nodes on one host). Everything lives under one temporary directory whose path is in
every Ray process's argv (and in every replica's, through the backend's node_dir), so cleanup
SIGKILLs exactly our processes, never another cluster's (`ray stop --force` would).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import free_port

RAY = str(Path(sys.executable).with_name("ray"))

# Fast node-loss detection (a killed node leaves the cluster in ~3-9 s instead of ~30 s), and a
# second node on one host allowed.
FAST_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1",
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
    "RAY_USAGE_STATS_ENABLED": "0",
}


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return os.path.exists(RAY)


@dataclass
class Node:
    name: str
    proc: subprocess.Popen[bytes]
    node_manager_port: int
    log: Path


@dataclass
class RayCluster:
    root: Path  # temp dir: Ray's sessions, node logs, replicas' node_dir
    port: int = 0
    nodes: list[Node] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def node_dir(self) -> str:
        """Where the backend's actors keep replicas' logs (on this one host, under our root)."""
        return str(self.root / "replicas")

    def _start(self, name: str, args: list[str]) -> Node:
        nm_port = free_port()
        log = self.root / f"{name}.log"
        argv = [
            RAY,
            "start",
            "--block",
            "--node-ip-address=127.0.0.1",
            f"--temp-dir={self.root / 'ray'}",
            f"--node-manager-port={nm_port}",
            f"--object-manager-port={free_port()}",
            f"--dashboard-agent-listen-port={free_port()}",
            f"--dashboard-agent-grpc-port={free_port()}",
            f"--metrics-export-port={free_port()}",
            f"--runtime-env-agent-port={free_port()}",
            "--object-store-memory=80000000",
            "--disable-usage-stats",
            *args,
        ]
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                argv,
                env={**os.environ, **FAST_ENV},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        node = Node(name, proc, nm_port, log)
        self.nodes.append(node)
        return node

    def start_head(self, timeout_s: float = 60.0) -> None:
        self.port = free_port()
        self._start(
            "head",
            [
                "--head",
                f"--port={self.port}",
                "--num-gpus=0",
                "--num-cpus=1",
                "--include-dashboard=false",
                f"--dashboard-port={free_port()}",
                f"--ray-client-server-port={free_port()}",
            ],
        )
        self.wait_started(self.nodes[-1], timeout_s)

    def add_worker(self, gpus: int, accelerator: str, cpus: int = 2, timeout_s: float = 60.0) -> Node:
        """Adds a node and waits until the cluster counts it (one at a time: see the module doc)."""
        resources = json.dumps({f"accelerator_type:{accelerator}": gpus})
        node = self._start(
            f"worker{len(self.nodes)}",
            [
                f"--address={self.address}",
                f"--num-gpus={gpus}",
                f"--num-cpus={cpus}",
                f"--resources={resources}",
            ],
        )
        self.wait_started(node, timeout_s)
        return node

    def alive_nodes(self) -> list[dict[str, object]]:
        """Alive nodes as ray.nodes() dicts, asked through a short-lived driver (a few seconds)."""
        code = (
            "import json, sys, ray; ray.init(address=sys.argv[1], logging_level='ERROR', log_to_driver=False);"
            "print(json.dumps([n for n in ray.nodes() if n['Alive']]))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code, self.address], capture_output=True, env={**os.environ, **FAST_ENV}, timeout=60
        )
        if out.returncode != 0:
            return []
        found: list[dict[str, object]] = json.loads(out.stdout.decode().strip().splitlines()[-1])
        return found

    def wait_started(self, node: Node, timeout_s: float) -> None:
        """`ray start` prints this once the node's raylet runs and has registered with the head."""
        deadline = time.monotonic() + timeout_s
        while b"Ray runtime started" not in node.log.read_bytes():
            if node.proc.poll() is not None:
                raise RuntimeError(f"ray node {node.name} exited: {node.log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"ray node {node.name} not up in {timeout_s} s")
            time.sleep(0.2)

    def kill_node(self, node: Node) -> None:
        """Node loss: SIGKILL the node's `ray start` group and every process of that node (its
        raylet and workers carry its node-manager port in their argv; replicas die with their actor)."""
        _kill_group(node.proc.pid)
        needle = str(node.node_manager_port).encode()
        for pid in _pids_with(str(self.root / "ray").encode()):
            if needle in _cmdline(pid):
                _kill(pid)
        node.proc.wait(timeout=10)

    def shutdown(self) -> None:
        """SIGKILL every process of this cluster (found by our root in their argv), then remove it."""
        for n in self.nodes:
            _kill_group(n.proc.pid)
        for _ in range(3):
            for pid in _pids_with(str(self.root).encode()):
                _kill(pid)
            time.sleep(0.2)
        for n in self.nodes:
            try:
                n.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        shutil.rmtree(self.root, ignore_errors=True)

    def rss_mb(self) -> float:
        """Resident memory of every process of the cluster, replicas included (shared pages counted
        once per process: an upper bound)."""
        pids = set(_pids_with(str(self.root).encode()))
        for pid in list(pids):  # replicas run under supervisors whose argv names our root
            pids |= {int(p) for p in os.listdir("/proc") if p.isdigit() and _pgid(int(p)) == pid}
        total_kb = 0
        for pid in pids:
            try:
                with open(f"/proc/{pid}/status") as f:
                    total_kb += next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
            except OSError:
                continue
        return total_kb / 1024

    def leftovers(self) -> list[int]:
        return _pids_with(str(self.root).encode())


def new_cluster() -> RayCluster:
    # Short path: Ray puts unix sockets under it (108-byte limit).
    return RayCluster(Path(tempfile.mkdtemp(prefix="rayt-", dir="/tmp")))


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def _pids_with(needle: bytes) -> list[int]:
    me = os.getpid()
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != me and needle in _cmdline(int(p))]


def _pgid(pid: int) -> int:
    try:
        return os.getpgid(pid)
    except OSError:
        return -1


def _kill(pid: int) -> None:
    """SIGKILL pid, and its whole group when it leads one (a replica's supervisor leads its replica)."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGKILL)
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass
