"""DockerBackend: replicas as containers of a Docker or Podman engine, over the Engine API.

Talks HTTP over the engine's unix socket with aiohttp (already a dependency; no docker SDK, no
threads; see docker_engine.py: every call bounded, an unreachable engine is RuntimeUnavailable).
Containers are named `<namespace>-<installation>-<replica_id>` and labelled with the installation,
replica, endpoint, host port and GPUs, so after a Podium restart `list()` finds them from the engine
alone, and installations sharing an engine never see each other's containers. Each gets
`--init` (a PID 1 that forwards SIGTERM), its container port published on a free host port of
`host_ip`, GPUs as device requests, volumes as binds (`ro` enforced by the engine), shm size.
When a replica ends, its exit status and last log lines are saved under data_dir/docker/<id>/
before the container is removed, so `poll` and `tail_text` still answer afterwards.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from podium.runtime.base import LaunchSpec, ReplicaObservation, RunPhase, RuntimeUnavailable, StartProgress
from podium.runtime.docker_engine import EngineClient, EngineError, installation_id
from podium.runtime.docker_spec import (
    LABEL_ENDPOINT,
    LABEL_GPUS,
    LABEL_INSTALLATION,
    LABEL_NS,
    LABEL_PORT,
    LABEL_REPLICA,
    LABEL_STARTED,
    Demuxer,
    create_body,
    registry_auth,
    split_image,
)
from podium.runtime.ports import PortAllocator
from podium.runtime.records import write_json_atomic

_WAIT_STEP_S = 0.05
_SIGNALS = {int(s): s.name for s in signal.Signals}

__all__ = ["DockerBackend", "EngineError"]


class DockerBackend:
    name = "docker"

    def __init__(
        self,
        data_dir: Path,
        *,
        docker_host: str | None = None,
        host: str = "127.0.0.1",
        namespace: str = "podium",
        close_grace_s: float = 10.0,
        port_range: tuple[int, int] | None = None,
        keep_log_lines: int = 1000,
        gpu_driver: str = "nvidia",
        installation: str | None = None,
        call_timeout_s: float = 15.0,
        pull_stall_timeout_s: float = 60.0,
        pull_timeout_s: float = 3600.0,
    ) -> None:
        url = docker_host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        if not url.startswith("unix://"):
            raise ValueError(f"only unix:// engine sockets are supported, got {url!r}")
        self.socket_path = url.removeprefix("unix://")
        self.root = Path(data_dir) / "docker"
        self.root.mkdir(parents=True, exist_ok=True)
        self.host, self.namespace = host, namespace
        self.installation = installation or installation_id(Path(data_dir))
        self.close_grace_s, self.keep_log_lines, self.gpu_driver = close_grace_s, keep_log_lines, gpu_driver
        self.pull_stall_timeout_s, self.pull_timeout_s = pull_stall_timeout_s, pull_timeout_s
        self.ports = PortAllocator(port_range)
        self.engine = EngineClient(self.socket_path, call_timeout_s=call_timeout_s)
        self.on_progress: StartProgress | None = None  # the controller's: pull steps as endpoint events
        self._known: set[str] = set()  # started or seen running: close() stops them

    async def _call(self, method: str, path: str, *, timeout_s: float | None = None, **kw: Any) -> Any:
        return await self.engine.call(method, path, timeout_s=timeout_s, **kw)

    def _cname(self, replica_id: str) -> str:
        return f"{self.namespace}-{self.installation}-{replica_id}"

    async def _inspect(self, replica_id: str) -> dict[str, Any] | None:
        try:
            info = await self._call("GET", f"/containers/{self._cname(replica_id)}/json")
        except EngineError as e:
            if e.status == 404:
                return None
            raise
        return info if isinstance(info, dict) else None

    # ---- start -------------------------------------------------------------------------------

    async def start(self, spec: LaunchSpec) -> ReplicaObservation:
        """Create and start the container (pulling the image first if the engine lacks it, which can
        take minutes: the controller runs this beside its tick). RuntimeUnavailable when the engine
        cannot be reached; cancelling it (the endpoint was deleted) leaves no container behind."""
        if not spec.image:
            return self._failed(spec, "no image: the docker runtime runs container images")
        if await self._inspect(spec.replica_id) is not None:
            return await self.poll(spec.replica_id)
        port = self.ports.allocate()
        body = create_body(
            spec,
            namespace=self.namespace,
            installation=self.installation,
            host_ip=self.host,
            host_port=port,
            started_at=time.time(),
            gpu_driver=self.gpu_driver,
        )
        try:
            await self._ensure_image(spec)
            name = quote(self._cname(spec.replica_id))
            await self._call("POST", f"/containers/create?name={name}", json=body)
            self._known.add(spec.replica_id)
            await self._call("POST", f"/containers/{name}/start")
        except EngineError as e:
            await self._remove_quietly(spec.replica_id)
            return self._failed(spec, f"cannot start container: {e}")
        except (RuntimeUnavailable, asyncio.CancelledError):
            await asyncio.shield(self._remove_quietly(spec.replica_id))
            raise
        return await self.poll(spec.replica_id)

    async def _ensure_image(self, spec: LaunchSpec) -> None:
        assert spec.image is not None
        try:
            await self._call("GET", f"/images/{quote(spec.image, safe='')}/json")
            return
        except EngineError as e:
            if e.status != 404:
                raise
        repo, tag = split_image(spec.image)
        headers = {}
        auth = registry_auth(spec.registry_username, spec.registry_password, spec.image)
        if auth:
            headers["X-Registry-Auth"] = auth
        params = {"fromImage": repo, **({"tag": tag} if tag else {})}

        async def progress(line: str) -> None:
            if self.on_progress is not None:
                await self.on_progress(spec, f"pulling {spec.image}: {line}")

        await progress("started")
        await self.engine.pull(
            params,
            headers,
            progress,
            stall_timeout_s=self.pull_stall_timeout_s,
            total_timeout_s=self.pull_timeout_s,
        )

    async def _remove_quietly(self, replica_id: str) -> None:
        """Best effort, for a start that did not complete: the engine may be gone too."""
        try:
            await self._remove(replica_id)
        except (EngineError, RuntimeUnavailable):
            self._known.discard(replica_id)

    def _failed(self, spec: LaunchSpec, detail: str) -> ReplicaObservation:
        self._save_end(spec.replica_id, spec.endpoint_id, None, detail, [f"[podium] {detail}"])
        return ReplicaObservation(spec.replica_id, spec.endpoint_id, RunPhase.EXITED, gpus=spec.gpus, detail=detail)

    # ---- observe -----------------------------------------------------------------------------

    async def poll(self, replica_id: str) -> ReplicaObservation:
        info = await self._inspect(replica_id)
        if info is None:
            return self._saved(replica_id)
        obs = self._observation(info)
        if obs.phase == RunPhase.EXITED:  # keep its status and last lines, free the engine of it
            await self._retire(replica_id, obs)
        return obs

    async def list(self) -> list[ReplicaObservation]:
        labels = [f"{LABEL_NS}={self.namespace}", f"{LABEL_INSTALLATION}={self.installation}"]
        filters = json.dumps({"label": labels})
        found = await self._call("GET", "/containers/json", params={"all": "1", "filters": filters})
        out = []
        for c in found or []:
            rid = (c.get("Labels") or {}).get(LABEL_REPLICA)
            if rid:
                out.append(await self.poll(rid))
        return out

    def _observation(self, info: dict[str, Any]) -> ReplicaObservation:
        labels = info.get("Config", {}).get("Labels") or {}
        state = info.get("State") or {}
        rid = labels.get(LABEL_REPLICA, "")
        running = bool(state.get("Running")) or state.get("Status") in ("created", "restarting")
        code: int | None = None
        detail = ""
        if running:
            self._known.add(rid)
        else:
            code = state.get("ExitCode")
            detail = f"exited with code {code}"
            if isinstance(code, int) and code > 128 and code - 128 in _SIGNALS:
                detail += f" ({_SIGNALS[code - 128]})"  # the shell/init convention: 128 + signal
            if state.get("OOMKilled"):
                detail += " (out of memory)"
            if state.get("Error"):
                detail += f": {state['Error']}"
        gpus = tuple(int(g) for g in labels.get(LABEL_GPUS, "").split(",") if g)
        return ReplicaObservation(
            replica_id=rid,
            endpoint_id=labels.get(LABEL_ENDPOINT, ""),
            phase=RunPhase.RUNNING if running else RunPhase.EXITED,
            address=f"{self.host}:{labels.get(LABEL_PORT)}",
            exit_code=code,
            gpus=gpus,
            started_at=float(labels.get(LABEL_STARTED, "0")) or None,
            detail=detail,
        )

    # ---- stop --------------------------------------------------------------------------------

    async def stop(self, replica_id: str, grace_s: float = 10.0) -> None:
        """SIGTERM (through --init), wait up to grace_s, SIGKILL; save exit + log tail; remove."""
        await self._end(replica_id, grace_s)

    async def kill(self, replica_id: str) -> None:
        await self._end(replica_id, 0.0)

    async def _end(self, replica_id: str, grace_s: float) -> None:
        info = await self._inspect(replica_id)
        if info is None:
            self._known.discard(replica_id)
            return
        name = self._cname(replica_id)
        if grace_s > 0 and await self._signal(name, "TERM"):
            deadline = time.monotonic() + grace_s
            while time.monotonic() < deadline:
                info = await self._inspect(replica_id)
                if info is None or not (info.get("State") or {}).get("Running"):
                    break
                await asyncio.sleep(_WAIT_STEP_S)
        await self._signal(name, "KILL")
        await self._call("POST", f"/containers/{name}/wait", params={"condition": "not-running"}, timeout_s=30)
        info = await self._inspect(replica_id)
        if info is not None:
            await self._retire(replica_id, self._observation(info))

    async def _retire(self, replica_id: str, obs: ReplicaObservation) -> None:
        lines = [line async for line in self._engine_logs(replica_id, self.keep_log_lines, False)]
        lines = lines[-self.keep_log_lines :]
        self._save_end(replica_id, obs.endpoint_id, obs.exit_code, obs.detail, lines, obs)
        await self._remove(replica_id)

    async def _signal(self, name: str, sig: str) -> bool:
        try:
            await self._call("POST", f"/containers/{name}/kill", params={"signal": sig})
        except EngineError as e:  # 404 gone, 409/500 not running: nothing to signal
            return e.status not in (404, 409, 500)
        return True

    async def _remove(self, replica_id: str) -> None:
        try:
            await self._call("DELETE", f"/containers/{self._cname(replica_id)}", params={"force": "1"})
        except EngineError as e:
            if e.status != 404:
                raise
        self._known.discard(replica_id)

    async def close(self) -> None:
        try:
            await asyncio.gather(*(self.stop(rid, self.close_grace_s) for rid in list(self._known)))
        finally:
            await self.engine.close()

    # ---- logs --------------------------------------------------------------------------------

    async def logs(self, replica_id: str, tail: int = 100, follow: bool = False) -> AsyncIterator[str]:
        """RuntimeUnavailable (before any line) when the engine cannot be reached."""
        if await self._inspect(replica_id) is None:
            for line in self._saved_lines(replica_id)[-tail:] if tail > 0 else []:
                yield line
            return
        async for line in self._engine_logs(replica_id, tail, follow):
            yield line

    async def _engine_logs(self, replica_id: str, tail: int, follow: bool) -> AsyncIterator[str]:
        """Lines as the engine's own `logs` prints them. Podman's numeric `tail` is unusable here: it
        counts partial writes ("ready", then "\\n") as lines and merges partial records of stdout
        and stderr into one frame. So the whole log is read, and trimmed here; when following, the
        same whole stream is followed and its first (lines so far - tail) lines are skipped."""
        backlog = [x async for x in self._engine_log_stream(replica_id, follow=False)]
        if not follow:
            for line in backlog[-tail:] if tail > 0 else []:
                yield line
            return
        skip = max(0, len(backlog) - tail)
        async for line in self._engine_log_stream(replica_id, follow=True):
            if skip:
                skip -= 1
                continue
            yield line

    async def _engine_log_stream(self, replica_id: str, *, follow: bool) -> AsyncIterator[str]:
        params = {"stdout": "1", "stderr": "1", "tail": "all", "follow": "1" if follow else "0"}
        demux = Demuxer()
        idle = None if follow else self.engine.call_timeout_s  # a plain read never hangs a tick
        async for chunk in self.engine.stream(
            f"/containers/{self._cname(replica_id)}/logs", params, idle_timeout_s=idle
        ):
            for line in demux.feed(chunk):
                yield line
        for line in demux.rest():
            yield line

    async def tail_text(self, replica_id: str, lines: int = 20) -> str:
        return "\n".join([line async for line in self.logs(replica_id, tail=lines)][-lines:])

    # ---- records of ended replicas -----------------------------------------------------------

    def _save_end(
        self,
        replica_id: str,
        endpoint_id: str,
        code: int | None,
        detail: str,
        lines: builtins.list[str],
        obs: ReplicaObservation | None = None,
    ) -> None:
        d = self.root / replica_id
        d.mkdir(parents=True, exist_ok=True)
        (d / "output.log").write_text("".join(f"{line}\n" for line in lines))
        record: dict[str, Any] = {"endpoint_id": endpoint_id, "exit_code": code, "detail": detail}
        if obs is not None:
            record |= {"address": obs.address, "gpus": list(obs.gpus), "started_at": obs.started_at}
        write_json_atomic(d / "ended.json", record)

    def _saved(self, replica_id: str) -> ReplicaObservation:
        try:
            r = json.loads((self.root / replica_id / "ended.json").read_text())
        except (FileNotFoundError, ValueError):
            return ReplicaObservation(replica_id, "", RunPhase.UNKNOWN, detail="no such replica")
        return ReplicaObservation(
            replica_id,
            r.get("endpoint_id", ""),
            RunPhase.EXITED,
            address=r.get("address"),
            exit_code=r.get("exit_code"),
            gpus=tuple(r.get("gpus") or ()),
            started_at=r.get("started_at"),
            detail=r.get("detail", ""),
        )

    def _saved_lines(self, replica_id: str) -> builtins.list[str]:
        try:
            return (self.root / replica_id / "output.log").read_text().splitlines()
        except FileNotFoundError:
            return []
