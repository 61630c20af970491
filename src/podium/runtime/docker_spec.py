"""Pure parts of the docker backend: LaunchSpec -> Engine API create body, log stream framing.

Kept free of I/O so they are tested without an engine.
"""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

from podium.runtime.base import LaunchSpec
from podium.runtime.local_env import expand_port

LABEL_NS = "podium.namespace"
LABEL_INSTALLATION = "podium.installation"  # which Podium (data dir) owns it: see docker_engine.installation_id
LABEL_REPLICA = "podium.replica_id"
LABEL_ENDPOINT = "podium.endpoint_id"
LABEL_PORT = "podium.host_port"
LABEL_GPUS = "podium.gpus"
LABEL_STARTED = "podium.started_at"


def create_body(
    spec: LaunchSpec,
    *,
    namespace: str,
    host_ip: str,
    host_port: int,
    started_at: float,
    init: bool = True,
    gpu_driver: str = "nvidia",
    installation: str = "",
) -> dict[str, Any]:
    """The /containers/create body: image, argv ($PORT = the container port), env, port mapping
    to a host port on host_ip, GPUs as device requests, volumes as binds, shm size, --init."""
    cport = f"{spec.container_port}/tcp"
    env = {**spec.env, "PORT": str(spec.container_port)}
    host_config: dict[str, Any] = {
        "PortBindings": {cport: [{"HostIp": host_ip, "HostPort": str(host_port)}]},
        "Init": init,  # a real PID 1 that forwards SIGTERM and reaps zombies
        "Binds": [bind for v in spec.volumes if (bind := volume_bind(v.source, v.container_path, v.read_only))],
    }
    if spec.shm_size_bytes:
        host_config["ShmSize"] = spec.shm_size_bytes
    if spec.gpus:
        host_config["DeviceRequests"] = [
            {"Driver": gpu_driver, "DeviceIDs": [str(g) for g in spec.gpus], "Capabilities": [["gpu"]]}
        ]
    body: dict[str, Any] = {
        "Image": spec.image,
        "Env": [f"{k}={v}" for k, v in env.items()],
        "ExposedPorts": {cport: {}},
        "Labels": {
            LABEL_NS: namespace,
            LABEL_INSTALLATION: installation,
            LABEL_REPLICA: spec.replica_id,
            LABEL_ENDPOINT: spec.endpoint_id,
            LABEL_PORT: str(host_port),
            LABEL_GPUS: ",".join(str(g) for g in spec.gpus),
            LABEL_STARTED: repr(started_at),
        },
        "HostConfig": host_config,
    }
    if spec.command:  # replaces the image's entrypoint and arguments
        body["Entrypoint"] = expand_port(list(spec.command), spec.container_port)
        body["Cmd"] = []
    elif spec.args:  # arguments to the image's own entrypoint
        body["Cmd"] = expand_port(list(spec.args), spec.container_port)
    return body


def volume_bind(source: str, container_path: str, read_only: bool) -> str | None:
    """ "src:dst[:ro]"; None for bucket sources, which an engine cannot bind."""
    if "://" in source:
        return None
    return f"{source}:{container_path}{':ro' if read_only else ''}"


def registry_auth(username: str | None, password: str | None, image: str) -> str | None:
    """The X-Registry-Auth header value for a pull (base64url JSON), or None without credentials."""
    if not username:
        return None
    first = image.split("/", 1)[0]
    server = first if "/" in image and ("." in first or ":" in first or first == "localhost") else ""
    data = {"username": username, "password": password or "", "serveraddress": server}
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode()


def split_image(image: str) -> tuple[str, str]:
    """("repo", "tag") for /images/create; a digest stays in the repo part."""
    if "@" in image:
        return image, ""
    repo, _, tag = image.rpartition(":")
    if not repo or "/" in tag:
        return image, "latest"
    return repo, tag


class Demuxer:
    """Docker's multiplexed log stream (no TTY): 8-byte headers [stream, 0, 0, 0, size:u32be].

    stdout and stderr are separate byte streams that arrive interleaved: each is split into lines on
    its own, so a partial stdout write followed by a stderr line never joins them (`podman logs` and
    `docker logs` keep them apart the same way). Lines come out in the order they complete."""

    def __init__(self) -> None:
        self._buf = b""
        self._text: dict[int, bytes] = {}  # stream number -> its unfinished line
        self.frames = 0  # records seen (podman: one per write, not per line)

    def feed(self, data: bytes) -> list[str]:
        """Complete lines found so far."""
        self._buf += data
        out: list[str] = []
        while len(self._buf) >= 8:
            stream = self._buf[0]
            (size,) = struct.unpack(">I", self._buf[4:8])
            if len(self._buf) < 8 + size:
                break
            *lines, rest = (self._text.get(stream, b"") + self._buf[8 : 8 + size]).split(b"\n")
            self._text[stream] = rest
            out.extend(line.decode("utf-8", "replace").rstrip("\r") for line in lines)
            self.frames += 1
            self._buf = self._buf[8 + size :]
        return out

    def rest(self) -> list[str]:
        """Unfinished lines at the end of the stream (stdout first)."""
        text, self._text = self._text, {}
        return [t.decode("utf-8", "replace") for _, t in sorted(text.items()) if t]
