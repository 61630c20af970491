"""CLI flag grammar -> spec document, without a server."""

from __future__ import annotations

import pytest
import typer

from podium.cli.spec_flags import build_spec, parse_kv
from podium.core.specs import EndpointSpec


def test_container_flags_build_a_valid_spec() -> None:
    doc = build_spec(
        {
            "name": "my-chatbot",
            "container_command": "python3 server.py --port $PORT",
            "container_port": 8000,
            "args": ["--model m --max-len 4096"],
            "env": ["A=1,B=2", "C=x=y"],
            "env_secret": ["HF_TOKEN=hf@2"],
            "volume": ["data:/data:ro", "s3://bucket:/models:rw:prof"],
            "min_replicas": 0,
            "max_replicas": 3,
            "scale_policy": "queue-delay=2",
            "token": "secret-token-long-enough",
            "shm_size": "32Gi",
            "public": True,
        },
        creating=True,
    )
    spec = EndpointSpec.model_validate(doc)
    assert spec.container is not None
    assert spec.container.args == ["--model", "m", "--max-len", "4096"]
    assert spec.container.env == {"A": "1", "B": "2", "C": "x=y"}
    assert spec.container.env_secrets == {"HF_TOKEN": "hf@2"}
    assert [v.mode for v in spec.volumes] == ["ro", "rw"] and spec.volumes[1].profile == "prof"
    assert str(spec.scaling.scale_policy) == "queue-delay=2"
    assert spec.auth.mode == "token" and spec.public


def test_min_replicas_alone_lifts_max() -> None:
    doc = build_spec({"name": "x", "container_command": "c", "min_replicas": 3}, creating=True)
    assert EndpointSpec.model_validate(doc).scaling.max_replicas == 3


def test_update_is_partial() -> None:
    assert build_spec({"max_replicas": 4}, creating=False) == {"scaling": {"max_replicas": 4}}


def test_template_flags() -> None:
    doc = build_spec({"name": "x", "template": "m/n", "gpu_type": "cpu"}, creating=True)
    assert doc["template"] == {"model_name": "m/n", "flavor_name": "base"} and "container" not in doc


def test_bad_env_fails_clearly() -> None:
    with pytest.raises(typer.Exit):
        parse_kv(["NOEQUALS"], "--env")
