"""RayBackend: replicas placed by Ray's scheduler on the nodes of a Ray cluster (a region's ray_address).

Each replica is one detached, named Ray actor (ray_actor.py) in this installation's namespace
(`podium-<installation id>`, name = replica id). Ray places it by the replica's GPU count and type
(`accelerator_type:<X>`, see ray_nodes.py), CPUs and memory, spreading an endpoint's replicas over
nodes where resources allow; the actor starts the command on its node under Podium's supervisor,
with a free port there and CUDA_VISIBLE_DEVICES = the GPUs Ray assigned it. The gateway reaches it
at the node's IP and that port. Detached actors outlive Podium: a restarted controller (a new
RayBackend, a new driver) finds them by name with list() and adopts them without a restart.

All Ray calls go through a driver process of the backend's own (ray_driver.py, via ray_client.py),
each bounded by a timeout: an unreachable cluster is a RayUnavailable naming the address, never a
hang, and the controller's event loop never waits on Ray. A replica whose node died answers EXITED
"node <id> lost" as soon as Ray's health checks declare the node dead (seconds).

When a replica ends, its exit status and last log lines are saved under data_dir/ray/<id>/ and its
actor is killed (freeing its resources), so `poll`, `logs` and `tail_text` still answer afterwards.
Images are not run here yet (a node's container engine would): an image without a command is
refused with a clear detail.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import signal
import sys
from collections import deque
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from podium.catalog.models import GpuType
from podium.runtime.base import LaunchSpec, ReplicaObservation, RunPhase
from podium.runtime.docker_engine import installation_id
from podium.runtime.local_env import volume_env_name
from podium.runtime.ports import default_range
from podium.runtime.ray_client import DriverClient, RayUnavailable
from podium.runtime.ray_nodes import RayNode, describe_request, parse_nodes, placement
from podium.runtime.records import write_json_atomic

__all__ = ["RayBackend", "RayNode", "RayUnavailable"]

_WAIT_STEP_S = 0.1
_FOLLOW_STEP_S = 0.2
_OVERLAP_LINES = 20  # a follower matches this many of its last lines against the saved ones


class RayBackend:
    name = "ray"

    def __init__(
        self,
        address: str,
        data_dir: Path,
        *,
        installation: str | None = None,
        node_dir: str = "/tmp/podium-ray",
        gpu_types: Sequence[GpuType] = (),
        call_timeout_s: float = 10.0,
        actor_timeout_s: float = 2.0,
        connect_timeout_s: float = 30.0,
        placement_timeout_s: float = 60.0,
        close_grace_s: float = 10.0,
        log_max_bytes: int = 10 * 1024 * 1024,
        log_backups: int = 3,
        keep_log_lines: int = 1000,
        port_range: tuple[int, int] | None = None,
        python: str = sys.executable,
        driver_env: dict[str, str] | None = None,
    ) -> None:
        self.address = address
        self.root = Path(data_dir) / "ray"
        self.root.mkdir(parents=True, exist_ok=True)
        self.installation = installation or installation_id(Path(data_dir))
        self.namespace = f"podium-{self.installation}"
        self.node_dir = f"{node_dir.rstrip('/')}/{self.namespace}"  # on each node: replicas' logs
        self.gpu_types = gpu_types
        self.call_timeout_s, self.actor_timeout_s = call_timeout_s, actor_timeout_s
        self.placement_timeout_s, self.close_grace_s = placement_timeout_s, close_grace_s
        self.log_limits = (log_max_bytes, log_backups)
        self.keep_log_lines = keep_log_lines
        self.port_range = port_range or default_range()
        self.client = DriverClient(
            address, self.namespace, python=python, connect_timeout_s=connect_timeout_s, env=driver_env
        )
        self._known: set[str] = set()  # started or seen running: close() stops them
        self._starting: set[str] = set()  # start() in progress: no actor yet is not an end

    async def _call(self, op: str, timeout_s: float | None = None, **args: Any) -> Any:
        return await self.client.call(op, timeout_s or self.call_timeout_s, **args)

    async def _actor(self, replica_id: str, method: str, *args: Any) -> Any:
        """A method of the replica's actor; None when no live actor answers."""
        return await self._call(
            "call", replica_id=replica_id, method=method, args=list(args), timeout=self.actor_timeout_s
        )

    # ---- inventory ---------------------------------------------------------------------------

    async def nodes(self) -> builtins.list[RayNode]:
        """The cluster's nodes: id, IP, alive, GPU type (catalog), GPUs/CPUs/memory total and free."""
        return parse_nodes(await self._call("nodes"), self.gpu_types)

    # ---- start -------------------------------------------------------------------------------

    async def start(self, spec: LaunchSpec) -> ReplicaObservation:
        """Place and start the replica; returns once it runs on a node (RUNNING, node IP:port) or
        cannot: EXITED with a detail (no command, no node can hold it, none had room within
        placement_timeout_s). RayUnavailable when the cluster cannot be reached."""
        if not spec.command:
            why = "an image through the node's engine is not supported yet" if spec.image else "no command"
            return self._failed(spec, f"the ray runtime runs a command on a node: {why}; give the endpoint a command")
        saved = self._saved(spec.replica_id)
        if saved.phase == RunPhase.EXITED:  # started before, and ended: a started id is a no-op
            return saved
        options, why = placement(spec, await self.nodes())
        if options is None:
            return self._failed(spec, f"cannot place it on the Ray cluster at {self.address}: {why}")
        self._write_state(spec.replica_id, {"endpoint_id": spec.endpoint_id, "gpus": list(spec.gpus)})
        self._known.add(spec.replica_id)
        self._starting.add(spec.replica_id)
        try:
            answer = await self._call(
                "start",
                self.placement_timeout_s + self.call_timeout_s,
                replica_id=spec.replica_id,
                endpoint_id=spec.endpoint_id,
                argv=list(spec.command),
                env=_replica_env(spec),
                options=options,
                node_dir=self.node_dir,
                log_limits=list(self.log_limits),
                port_range=list(self.port_range),
                wait_s=self.placement_timeout_s,
            )
        except (RayUnavailable, asyncio.CancelledError):
            await asyncio.shield(self._retire_quietly(spec.replica_id))
            raise
        finally:
            self._starting.discard(spec.replica_id)
        if answer.get("pending"):
            await self._retire_quietly(spec.replica_id)
            why = f"no node had {describe_request(spec)} free within {self.placement_timeout_s:g} s"
            return self._failed(spec, f"Ray cluster at {self.address}: {why}")
        return await self._observe(answer["info"])

    def _failed(self, spec: LaunchSpec, detail: str) -> ReplicaObservation:
        obs = ReplicaObservation(spec.replica_id, spec.endpoint_id, RunPhase.EXITED, gpus=spec.gpus, detail=detail)
        self._save_end(obs, [f"[podium] {detail}"])
        return obs

    async def _retire_quietly(self, replica_id: str) -> None:
        with contextlib.suppress(RayUnavailable):
            await self._call("retire", replica_id=replica_id)
        self._known.discard(replica_id)

    # ---- observe -----------------------------------------------------------------------------

    async def poll(self, replica_id: str) -> ReplicaObservation:
        state = self._read(replica_id, "state.json")
        answer = await self._call(
            "info",
            self.call_timeout_s,
            replica_id=replica_id,
            timeout=self.actor_timeout_s,
            node_id=(state or {}).get("node_id"),
        )
        if "info" in answer:
            return await self._observe(answer["info"])
        if replica_id in self._starting and state is not None:  # no actor yet, or not placed yet
            return self._from_state(replica_id, state, RunPhase.UNKNOWN, "starting: waiting for a node")
        if "timeout" in answer:
            raise RayUnavailable(
                f"Ray cluster at {self.address}: replica {replica_id} did not answer within {self.actor_timeout_s:g} s"
            )
        saved = self._saved(replica_id)
        if "pending" in answer:  # its start was abandoned (the Podium that waited for room died): end it
            await self._retire_quietly(replica_id)
            why = "it never got a node: its start was abandoned"
            obs = self._from_state(replica_id, state or {}, RunPhase.EXITED, why)
            self._save_end(obs, [])
            return obs
        if saved.phase == RunPhase.EXITED or state is None:
            return saved  # ended and retired already, or never started by this data dir
        if "lost" in answer:
            detail = f"node {answer['lost']} lost"
        elif "dead" in answer:
            detail = f"its Ray actor died: {answer['dead']}"
        else:
            detail = "its Ray actor is gone (ended outside Podium)"
        obs = self._from_state(replica_id, state, RunPhase.EXITED, detail)
        self._save_end(obs, self._saved_lines(replica_id))
        self._known.discard(replica_id)
        return obs

    async def _observe(self, info: dict[str, Any]) -> ReplicaObservation:
        """An actor's answer as an observation; an ended replica is retired (record saved, actor
        killed so its GPUs are free again)."""
        rid = info["replica_id"]
        gpus = tuple(int(g) for g in info["gpus"] if str(g).isdigit())
        state = {
            "endpoint_id": info["endpoint_id"],
            "node_id": info["node_id"],
            "address": f"{info['ip']}:{info['port']}",
            "gpus": list(gpus),
            "started_at": info["started_at"],
        }
        if self._read(rid, "state.json") != state:
            self._write_state(rid, state)
        ended = info.get("exit")
        if ended is None:
            self._known.add(rid)
            return self._from_state(rid, state, RunPhase.RUNNING, "")
        obs = self._from_state(rid, state, RunPhase.EXITED, ended["detail"], ended.get("exit_code"))
        lines = await self._actor(rid, "tail", self.keep_log_lines)
        self._save_end(obs, (lines or {}).get("lines") or [])
        await self._retire_quietly(rid)
        return obs

    def _from_state(
        self, rid: str, state: dict[str, Any], phase: RunPhase, detail: str, code: int | None = None
    ) -> ReplicaObservation:
        return ReplicaObservation(
            replica_id=rid,
            endpoint_id=state.get("endpoint_id", ""),
            phase=phase,
            address=state.get("address"),
            exit_code=code,
            gpus=tuple(state.get("gpus") or ()),
            started_at=state.get("started_at"),
            detail=detail,
            node=state.get("node_id") or "",
        )

    async def list(self) -> builtins.list[ReplicaObservation]:
        """Our namespace's live actors (adopt or end them), and replicas recorded here that ended
        while nobody watched (their node was lost, say)."""
        names = set(await self._call("list"))
        for d in self.root.iterdir():
            if (d / "state.json").exists() and not (d / "ended.json").exists():
                names.add(d.name)
        return builtins.list(await asyncio.gather(*(self.poll(rid) for rid in sorted(names))))

    # ---- stop --------------------------------------------------------------------------------

    async def stop(self, replica_id: str, grace_s: float = 10.0) -> None:
        """SIGTERM the replica's group on its node, wait up to grace_s, SIGKILL; retire. Idempotent."""
        await self._end(replica_id, grace_s)

    async def kill(self, replica_id: str) -> None:
        await self._end(replica_id, 0.0)

    async def _end(self, replica_id: str, grace_s: float) -> None:
        if grace_s > 0 and await self._actor(replica_id, "signal", int(signal.SIGTERM)):
            await self._wait_exit(replica_id, grace_s)
        if await self._actor(replica_id, "signal", int(signal.SIGKILL)):
            await self._wait_exit(replica_id, 5.0)
        obs = await self.poll(replica_id)  # retires an ended replica
        if obs.phase == RunPhase.RUNNING:  # did not end even on SIGKILL: its actor's death ends it
            await self._retire_quietly(replica_id)
        self._known.discard(replica_id)

    async def _wait_exit(self, replica_id: str, timeout_s: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            info = await self._actor(replica_id, "info")
            if info is None or info.get("exit") is not None:
                return
            await asyncio.sleep(_WAIT_STEP_S)

    async def close(self) -> None:
        """Stop every replica this backend started or adopted, in parallel; end the driver."""
        try:
            results = await asyncio.gather(
                *(self.stop(rid, self.close_grace_s) for rid in sorted(self._known)), return_exceptions=True
            )
            for r in results:
                if isinstance(r, BaseException) and not isinstance(r, RayUnavailable):
                    raise r
        finally:
            await self.client.close()

    # ---- logs --------------------------------------------------------------------------------

    async def logs(self, replica_id: str, tail: int = 100, follow: bool = False) -> AsyncIterator[str]:
        """From the replica's node while its actor lives (follow reads on until it ended), else the
        lines saved when it ended. RayUnavailable (before any line) when the cluster cannot be reached."""
        first = await self._actor(replica_id, "tail", tail)
        if first is None:
            for line in self._saved_lines(replica_id)[-tail:] if tail > 0 else []:
                yield line
            return
        recent: deque[str] = deque(first["lines"], maxlen=_OVERLAP_LINES)
        for line in first["lines"]:
            yield line
        cursor = first["cursor"]
        while follow:
            step = await self._actor(replica_id, "read", cursor)
            if step is None:  # retired meanwhile (it ended): the rest is in the lines saved then
                for line in lines_after(builtins.list(recent), self._saved_lines(replica_id)):
                    yield line
                return
            for line in step["lines"]:
                yield line
            recent.extend(step["lines"])
            cursor = step["cursor"]
            if not step["running"]:
                return
            if not step["lines"]:
                await asyncio.sleep(_FOLLOW_STEP_S)

    async def tail_text(self, replica_id: str, lines: int = 20) -> str:
        return "\n".join([line async for line in self.logs(replica_id, tail=lines)][-lines:])

    # ---- records here ------------------------------------------------------------------------

    def _read(self, replica_id: str, name: str) -> dict[str, Any] | None:
        try:
            data = json.loads((self.root / replica_id / name).read_text())
        except (FileNotFoundError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _write_state(self, replica_id: str, state: dict[str, Any]) -> None:
        d = self.root / replica_id
        d.mkdir(parents=True, exist_ok=True)
        write_json_atomic(d / "state.json", state)

    def _save_end(self, obs: ReplicaObservation, lines: builtins.list[str]) -> None:
        d = self.root / obs.replica_id
        d.mkdir(parents=True, exist_ok=True)
        if lines:
            (d / "output.log").write_text("".join(f"{line}\n" for line in lines))
        record = {
            "endpoint_id": obs.endpoint_id,
            "exit_code": obs.exit_code,
            "detail": obs.detail,
            "address": obs.address,
            "gpus": builtins.list(obs.gpus),
            "started_at": obs.started_at,
            "node_id": obs.node,
        }
        write_json_atomic(d / "ended.json", record)

    def _saved(self, replica_id: str) -> ReplicaObservation:
        r = self._read(replica_id, "ended.json")
        if r is None:
            return ReplicaObservation(replica_id, "", RunPhase.UNKNOWN, detail="no such replica")
        return self._from_state(replica_id, r, RunPhase.EXITED, r.get("detail", ""), r.get("exit_code"))

    def _saved_lines(self, replica_id: str) -> builtins.list[str]:
        try:
            return (self.root / replica_id / "output.log").read_text().splitlines()
        except FileNotFoundError:
            return []


def _replica_env(spec: LaunchSpec) -> dict[str, str]:
    """spec.env plus, as on the local runtime, each volume as PODIUM_VOLUME_<NAME>=<source>: a path
    that must exist on the node (Podium cannot link or mount it there)."""
    env = dict(spec.env)
    for vol in spec.volumes:
        env.setdefault(volume_env_name(vol.container_path), vol.source)
    return env


def lines_after(seen: Sequence[str], saved: Sequence[str]) -> builtins.list[str]:
    """The saved lines that follow the last ones a follower has seen: where the longest suffix of
    `seen` ends last in `saved`. Nothing seen matches (a gap): all of `saved`."""
    for k in range(len(seen), 0, -1):
        suffix = builtins.list(seen[-k:])
        for start in range(len(saved) - k, -1, -1):
            if builtins.list(saved[start : start + k]) == suffix:
                return builtins.list(saved[start + k :])
    return builtins.list(saved)
