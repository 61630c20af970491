"""Flags that are accepted but not acted on are said (a `warnings` list in the create/update answer,
printed by the CLI), never dropped in silence; an image with a command on the local runtime, which
cannot run images, is a 422 that names the runtime that would (docker). The CLI's GPU flags take the
documents' names (`gpu-h100-sxm`) too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.cli.conftest import Cli, Server

CMD = "python3 -m http.server $PORT"


async def test_ignored_settings_are_warned_about(api) -> None:
    client, _, _ = api
    body = {
        "name": "net",
        "container": {"command": CMD},
        "ssh_key": "ssh-ed25519 AAAA me",
        "subnet_id": "vpcsubnet-1",
        "public": True,
    }
    created = await client.post("/v0/endpoints", json=body)
    assert created.status_code == 201, created.text
    warnings = created.json()["warnings"]
    assert [w.split(" ", 1)[0] for w in warnings] == ["ssh_key", "subnet_id", "public"]
    assert all("stored but not used" in w for w in warnings)
    plain = await client.post("/v0/endpoints", json={"name": "plain", "container": {"command": CMD}})
    assert plain.json()["warnings"] == []
    eid = created.json()["id"]
    updated = await client.patch(f"/v0/endpoints/{eid}", json={"ssh_key": None, "subnet_id": None})
    assert [w.split(" ", 1)[0] for w in updated.json()["warnings"]] == ["public"]


async def test_image_with_a_command_on_the_local_runtime_is_refused(api) -> None:
    client, store, _ = api
    body = {"name": "img", "container": {"image": "vllm/vllm-openai:v0.10.2", "command": CMD}}
    refused = await client.post("/v0/endpoints", json=body)
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["details"][0]["field"] == "container.image" and "docker" in error["message"]
    assert await store.list_endpoints() == []


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    srv = Server(tmp_path)
    srv.start()
    try:
        yield Cli(srv, CliRunner())
    finally:
        srv.stop()


def test_the_cli_prints_the_warnings(cli: Cli) -> None:
    res = cli("endpoint", "create", "--name", "net", "--container-command", CMD, "--subnet-id", "s-1", "--public")
    assert "warning: subnet_id is stored but not used" in res.output
    assert "warning: public is stored but not used" in res.output
    quiet = cli("endpoint", "update", "net", "--max-replicas", "2", "--format", "json")
    assert '"subnet_id is stored' in quiet.stdout  # in the JSON; the stderr line keeps stdout parseable


def test_the_cli_passes_min_cuda_version(cli: Cli) -> None:
    flags = ("--container-command", CMD, "--gpu-type", "gpu-h100-sxm", "--gpu-count", "1", "--min-replicas", "0")
    res = cli("endpoint", "create", "--name", "cuda", *flags, "--min-cuda-version", "12.4", ok=False)
    assert res.exit_code == 1 and "cannot run CUDA 12.4" in res.output  # this fake region reports no driver
    made = cli.json("endpoint", "create", "--name", "any-cuda", *flags)
    assert made["spec"]["compute"]["gpu_type"] == "h100" and made["spec"]["compute"]["min_cuda_version"] is None


def test_template_list_shows_and_filters_by_the_documents_gpu_names(cli: Cli) -> None:
    table = cli("template", "list").stdout
    assert "ALSO NAMED" in table and "gpu-h100-sxm" in table
    by_name = cli.json("template", "list", "--gpu-type", "gpu-h100-sxm")["templates"]
    assert by_name and {t["gpu_type"] for t in by_name} == {"h100"}
