"""The Ray driver process of a RayBackend: `python -m podium.runtime.ray_driver ADDRESS NAMESPACE`.

Why a process of its own rather than `ray.init` inside Podium: a Ray driver is process-global (one
cluster per process, and a region each may name another), its calls block (GCS RPCs), it starts
threads, and when the cluster stays unreachable Ray ends the whole driver process. Out here, a hang
is a timeout the backend answers with a clear error, a death is a respawn, and the controller's event
loop never waits on Ray.

Protocol: one JSON object per line. The first line out is {"ready": ...} or {"error": ...}; then
each request {"id", "op", "args"} gets {"id", "ok": result} or {"id", "error": text}, answered
from a thread pool (requests do not wait on each other). Ray's own output goes to stderr.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import ray
from ray import cloudpickle
from ray.exceptions import GetTimeoutError, RayActorError

from podium.runtime import logfiles, ray_actor

SUPERVISOR_SOURCE = (Path(__file__).with_name("_supervisor.py")).read_text()


def ship_by_value() -> None:
    """The actor's code travels with it (nodes need Ray and Python, not Podium): ray_actor.py and
    the logfiles.py functions it uses are pickled by value, not as imports of `podium`."""
    cloudpickle.register_pickle_by_value(ray_actor)
    cloudpickle.register_pickle_by_value(logfiles)


class Driver:
    def __init__(self, address: str, namespace: str) -> None:
        self.address, self.namespace = address, namespace
        self.handles: dict[str, Any] = {}
        self.node_of: dict[str, str] = {}  # replica -> node id, from its last answer
        ship_by_value()
        self.actor_class = ray.remote(ray_actor.ReplicaActor)

    def handle(self, rid: str) -> Any | None:
        h = self.handles.get(rid)
        if h is None:
            try:
                h = ray.get_actor(rid, namespace=self.namespace)
            except ValueError:  # no live actor of that name
                return None
            self.handles[rid] = h
        return h

    # ---- ops ---------------------------------------------------------------------------------

    def op_start(self, a: dict[str, Any]) -> dict[str, Any]:
        rid = a["replica_id"]
        h = self.handle(rid)
        if h is None:
            opts = a["options"]
            h = self.actor_class.options(
                name=rid,
                namespace=self.namespace,
                lifetime="detached",
                max_restarts=0,
                num_cpus=opts["num_cpus"],
                num_gpus=opts["num_gpus"],
                memory=opts["memory"] or None,
                resources=opts["resources"],
                scheduling_strategy="SPREAD",
            ).remote(
                rid,
                a["endpoint_id"],
                a["argv"],
                a["env"],
                a["node_dir"],
                SUPERVISOR_SOURCE,
                tuple(a["log_limits"]),
                tuple(a["port_range"]),
            )
            self.handles[rid] = h
        try:
            return {"info": self._info(rid, h, a["wait_s"])}
        except GetTimeoutError:
            return {"pending": True}

    def _info(self, rid: str, h: Any, timeout: float) -> dict[str, Any]:
        info: dict[str, Any] = ray.get(h.info.remote(), timeout=timeout)
        self.node_of[rid] = info["node_id"]
        return info

    def op_info(self, a: dict[str, Any]) -> dict[str, Any]:
        rid = a["replica_id"]
        h = self.handle(rid)
        node = self.node_of.get(rid) or a.get("node_id")
        if h is None:  # no live actor by that name: a dead one (its node lost?) or none
            return {"lost": node} if node and not self._node_alive(node) else {"missing": True}
        try:
            return {"info": self._info(rid, h, a["timeout"])}
        except (GetTimeoutError, RayActorError) as e:
            if node and not self._node_alive(node):
                self.handles.pop(rid, None)
                return {"lost": node}
            if isinstance(e, RayActorError) and not _temporary(e):
                self.handles.pop(rid, None)
                return {"dead": _first_line(e)}
            if node is None and _actor_state(h) in _UNPLACED:
                return {"pending": True}  # still waiting for a node (or for its worker to start)
            return {"timeout": True}

    def _node_alive(self, node_id: str) -> bool:
        return any(n["NodeID"] == node_id and n["Alive"] for n in ray.nodes())

    def op_call(self, a: dict[str, Any]) -> Any:
        """A method of the replica's actor: signal, tail, read. None when no actor answers."""
        h = self.handle(a["replica_id"])
        if h is None:
            return None
        try:
            return ray.get(getattr(h, a["method"]).remote(*a["args"]), timeout=a["timeout"])
        except RayActorError:
            self.handles.pop(a["replica_id"], None)
            return None

    def op_retire(self, a: dict[str, Any]) -> bool:
        """Kill the replica's actor (freeing its resources); an ended replica's node dir goes first."""
        h = self.handle(a["replica_id"])
        self.handles.pop(a["replica_id"], None)
        if h is None:
            return False
        try:
            ray.get(h.forget.remote(), timeout=2.0)
        except (GetTimeoutError, RayActorError):
            pass  # still placing, or gone: nothing to delete there
        ray.kill(h, no_restart=True)
        return True

    def op_list(self, a: dict[str, Any]) -> list[str]:
        return sorted(ray.util.list_named_actors())

    def op_nodes(self, a: dict[str, Any]) -> list[dict[str, Any]]:
        free = ray._private.state.available_resources_per_node()
        out = []
        for n in ray.nodes():
            out.append(
                {
                    "node_id": n["NodeID"],
                    "ip": n["NodeManagerAddress"],
                    "alive": bool(n["Alive"]),
                    "total": n.get("Resources") or {},
                    "free": free.get(n["NodeID"], {}) if n["Alive"] else {},
                }
            )
        return out


_UNPLACED = ("DEPENDENCIES_UNREADY", "PENDING_CREATION")


def _actor_state(h: Any) -> str:
    """The GCS's word on an actor: ALIVE, PENDING_CREATION, DEAD... ("" if unknown)."""
    info = ray._private.state.actors(actor_id=h._actor_id.hex())
    return str(info.get("State", "")) if isinstance(info, dict) else ""


def _temporary(e: RayActorError) -> bool:
    return type(e).__name__ == "ActorUnavailableError"


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def serve(driver: Driver, out: Any) -> None:
    lock = threading.Lock()

    def answer(msg: dict[str, Any]) -> None:
        with lock:
            out.write(json.dumps(msg) + "\n")
            out.flush()

    def run(req: dict[str, Any]) -> None:
        try:
            result = getattr(driver, f"op_{req['op']}")(req.get("args") or {})
            answer({"id": req["id"], "ok": result})
        except Exception as e:  # every failure is an answer: the backend turns it into a clear error
            answer({"id": req["id"], "error": f"{type(e).__name__}: {_first_line(e)}"})

    with ThreadPoolExecutor(max_workers=16) as pool:
        for line in sys.stdin:
            if line.strip():
                pool.submit(run, json.loads(line))


def main() -> int:
    address, namespace = sys.argv[1], sys.argv[2]
    out = os.fdopen(os.dup(1), "w")  # the protocol's; fd 1 itself goes to stderr (Ray prints there)
    os.dup2(2, 1)
    try:
        ray.init(address=address, namespace=namespace, logging_level=logging.ERROR, log_to_driver=False)
        driver = Driver(address, namespace)
    except Exception as e:
        out.write(json.dumps({"error": f"{type(e).__name__}: {_first_line(e)}"}) + "\n")
        out.flush()
        return 1
    out.write(json.dumps({"ready": ray.__version__}) + "\n")
    out.flush()
    serve(driver, out)  # until stdin closes: the backend is gone or closed us
    return 0


if __name__ == "__main__":
    sys.exit(main())
