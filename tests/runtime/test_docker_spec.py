"""The docker backend's pure parts: create body, image names, registry auth, log demuxing."""

from __future__ import annotations

import base64
import json
import struct

from podium.runtime.base import LaunchSpec, VolumeBind
from podium.runtime.docker_spec import Demuxer, create_body, registry_auth, split_image


def _body(**kw: object) -> dict:  # type: ignore[type-arg]
    spec = LaunchSpec(replica_id="rep-1", endpoint_id="ep-1", image="vllm/vllm-openai:v0.11.0", **kw)  # type: ignore[arg-type]
    return create_body(spec, namespace="ns", host_ip="127.0.0.1", host_port=25001, started_at=1.5)


def test_command_ports_env_gpus_volumes_shm_init() -> None:
    b = _body(
        command=["vllm", "serve", "--port", "$PORT"],
        container_port=8000,
        env={"HF_TOKEN": "x"},
        gpus=(2, 3),
        volumes=(VolumeBind("/srv/models", "/models", True), VolumeBind("s3://b/p", "/bucket")),
        shm_size_bytes=1 << 30,
    )
    assert b["Entrypoint"] == ["vllm", "serve", "--port", "8000"] and b["Cmd"] == []
    assert "PORT=8000" in b["Env"] and "HF_TOKEN=x" in b["Env"]
    hc = b["HostConfig"]
    assert hc["PortBindings"] == {"8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": "25001"}]}
    assert hc["Init"] is True and hc["ShmSize"] == 1 << 30
    assert hc["Binds"] == ["/srv/models:/models:ro"]
    assert hc["DeviceRequests"] == [{"Driver": "nvidia", "DeviceIDs": ["2", "3"], "Capabilities": [["gpu"]]}]
    assert b["Labels"]["podium.replica_id"] == "rep-1" and b["Labels"]["podium.gpus"] == "2,3"


def test_args_only_keep_the_image_entrypoint_and_no_gpus() -> None:
    b = _body(command=None, args=("--port", "${PORT}"), container_port=9000)
    assert "Entrypoint" not in b and b["Cmd"] == ["--port", "9000"]
    assert "DeviceRequests" not in b["HostConfig"]
    assert "Entrypoint" not in _body(command=None) and "Cmd" not in _body(command=None)


def test_image_names_and_registry_auth() -> None:
    assert split_image("python:3.11") == ("python", "3.11")
    assert split_image("localhost:5000/x/y") == ("localhost:5000/x/y", "latest")
    assert split_image("ghcr.io/a/b@sha256:abc") == ("ghcr.io/a/b@sha256:abc", "")
    assert registry_auth(None, None, "python") is None
    token = registry_auth("u", "p", "ghcr.io/org/img:1")
    assert token is not None
    data = json.loads(base64.urlsafe_b64decode(token))
    assert data == {"username": "u", "password": "p", "serveraddress": "ghcr.io"}


def test_demuxer_splits_each_stream_into_lines_on_its_own() -> None:
    """A partial stdout write, then a stderr line, then the rest of the stdout line: two lines, as
    `podman logs` prints them (the old demuxer printed "hello woerr line" and "rld")."""

    def frame(stream: int, payload: bytes) -> bytes:
        return struct.pack(">BxxxI", stream, len(payload)) + payload

    raw = frame(1, b"hello wo") + frame(2, b"err line\n") + frame(1, b"rld\n") + frame(2, b"e") + frame(1, b"tail")
    d = Demuxer()
    got = d.feed(raw[:5]) + d.feed(raw[5:13]) + d.feed(raw[13:])
    assert got == ["err line", "hello world"]
    assert d.rest() == ["tail", "e"]
    assert d.frames == 5
