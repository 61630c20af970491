"""The CLI against a real listener: every noun, --format on reads, errors (message + exit != 0),
and data that survive a restart."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import yaml

from podium.cli.main import app as cli_app
from podium.services.secrets import SecretService, load_master_key
from podium.services.tokens import sha256_hex
from podium.store.repos import Store
from tests.cli.conftest import Cli

CMD = "python3 server.py --port $PORT"


def test_secret_commands_never_print_values(cli: Cli, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "tok.txt").write_text("from-a-file\n")
    monkeypatch.setenv("HF_TOKEN", "from-the-env")
    out = cli("secret", "create", "--name", "hf", "--value", "HF_TOKEN", "--value", "OTHER=literal-value").stdout
    assert "HF_TOKEN" in out and "from-the-env" not in out and "literal-value" not in out
    cli("secret", "add-version", "hf", "--value", f"HF_TOKEN=@{tmp_path / 'tok.txt'}")
    piped = cli.runner.invoke(
        cli_app, ["secret", "add-version", "hf", "--value", "HF_TOKEN=-"], input="from-stdin\n", env=cli.env()
    )
    assert piped.exit_code == 0 and "from-stdin" not in piped.output
    got = cli.json("secret", "get", "hf")
    assert got["latest_version"] == 3 and [v["version"] for v in got["versions"]] == [1, 2, 3]
    listed = cli("secret", "list").stdout + cli("secret", "list", "--format", "yaml").stdout
    assert "hf" in listed and "from-" not in listed and "literal-value" not in listed
    assert cli.json("secret", "get", "hf@1")["keys"] == ["HF_TOKEN", "OTHER"]
    missing = cli("secret", "get", "nope", ok=False)
    assert missing.exit_code != 0 and "404" in missing.output and "nope" in missing.output
    bad = cli("secret", "create", "--name", "x", "--value", "UNSET_VARIABLE_XYZ", ok=False)
    assert bad.exit_code != 0 and "UNSET_VARIABLE_XYZ" in bad.output
    cli("secret", "delete", "hf")
    assert cli.json("secret", "list")["secrets"] == []


def test_volume_commands_and_in_use(cli: Cli) -> None:
    vol = cli.json("volume", "create", "--name", "models", "--size", "10Gi")
    assert Path(vol["path"]).is_dir()
    ep = cli.json("endpoint", "create", "--name", "e", "--container-command", CMD, "--volume", "models:/models:ro")
    assert ep["spec"]["volumes"][0] == {"source": "models", "container_path": "/models", "mode": "ro", "profile": None}
    assert "models" in cli("volume", "list").stdout and cli.json("volume", "get", "models")["used_by"] == [ep["id"]]
    busy = cli("volume", "delete", "models", ok=False)
    assert busy.exit_code != 0 and "409" in busy.output and ep["id"] in busy.output
    unknown = cli("endpoint", "create", "--name", "e", "--container-command", CMD, "--volume", "nope:/x", ok=False)
    assert unknown.exit_code != 0 and "volumes.0.source" in unknown.output


def test_catalog_commands(cli: Cli) -> None:
    templates = cli.json("template", "list")["templates"]
    assert {"model_name", "flavor_name", "gpu_type", "gpu_counts", "regions"} <= set(templates[0])
    assert "big/llm" in cli("template", "list").stdout
    assert {t["gpu_type"] for t in cli.json("template", "list", "--gpu-type", "cpu")["templates"]} == {"cpu"}
    got = yaml.safe_load(cli("template", "get", "big/llm", "--format", "yaml").stdout)
    assert {f["flavor_name"] for f in got["flavors"]} == {"base", "fast"}
    assert "fast" in cli("template", "get", "big/llm").stdout
    assert cli("template", "get", "no/such", ok=False).exit_code != 0
    assert "h100: 2" in cli("region", "list").stdout
    assert cli.json("region", "list")["regions"][0]["inventory"]["h100"] == 2
    assert "1gpu-16vcpu-200gb" in cli("platform", "list").stdout
    assert cli.json("platform", "list")["platforms"][0]["name"] == "gpu-h100-sxm"


def test_endpoint_with_every_container_flag(cli: Cli, server) -> None:  # type: ignore[no-untyped-def]
    cli("secret", "create", "--name", "ep-auth", "--value", "AUTH_TOKEN=the-endpoint-token")
    cli("secret", "create", "--name", "hf", "--value", "HF_TOKEN=hf_x")
    cli("secret", "create", "--name", "reg", "--value", "REGISTRY_USERNAME=u", "--value", "REGISTRY_PASSWORD=p")
    cli("volume", "create", "--name", "data")
    args = [
        "endpoint", "create", "--name", "my-chatbot", "--app-name", "my-chatbot", "--description", "d",
        "--image", "ghcr.io/acme/bot:1", "--registry-secret", "reg", "--container-command", CMD,
        "--container-port", "8080", "--args", "--model m", "--env", "A=1,B=2", "--env", "C=3",
        "--env-secret", "HF_TOKEN=hf@1", "--token-secret", "ep-auth", "--volume", "data:/data:rw",
        "--volume", "s3://bucket:/b:ro:prof", "--volume", "/tmp:/host:ro", "--subnet-id", "subnet-1",
        "--platform", "gpu-h100-sxm", "--preset", "1gpu-16vcpu-200gb", "--disk-size", "1Ti", "--shm-size", "32Gi",
        "--ssh-key", "ssh-ed25519 AAAA me", "--public", "--min-replicas", "1", "--max-replicas", "3",
        "--idle-timeout", "60", "--max-concurrency", "4", "--scale-policy", "queue-delay=2",
        "--health-check-path", "/healthz", "--served-model-name", "bot", "--cold-start-timeout", "30",
        "--queue-size", "10", "--queue-timeout", "5", "--request-timeout", "100",
    ]  # fmt: skip
    ep = cli.json(*args)
    spec = ep["spec"]
    assert spec["compute"] | {"platform": None} == {
        "region": "local", "platform": None, "preset": "1gpu-16vcpu-200gb", "gpu_type": "h100", "gpu_count": 1,
        "min_cuda_version": None, "disk_size": "1Ti", "shm_size": "32Gi",
    }  # fmt: skip
    assert spec["container"]["env"] == {"A": "1", "B": "2", "C": "3"} and spec["container"]["port"] == 8080
    assert spec["auth"] == {"mode": "token", "token": None, "token_secret": "ep-auth"} and ep["token"] is None
    assert str(spec["scaling"]["scale_policy"]) and spec["scaling"]["max_concurrency"] == 4 and spec["public"]
    full = cli.json("endpoint", "get", ep["id"])
    assert full["status"]["instances"] == [] and full["status"]["state"] == "provisioning"
    assert {"url", "urls", "last_error", "created_at", "updated_at", "autoscaler_reason"} <= set(full["status"])
    updated = cli.json("endpoint", "update", "my-chatbot", "--max-replicas", "2", "--env", "D=4", "--public")
    assert updated["spec"]["scaling"]["max_replicas"] == 2 and updated["spec"]["container"]["env"]["D"] == "4"
    assert cli.json("endpoint", "stop", "--id", ep["id"])["status"]["state"] == "stopped"
    assert cli.json("endpoint", "start", ep["id"])["enabled"] is True
    assert [e["kind"] for e in cli.json("endpoint", "events", ep["id"])["events"]][:2] == ["started", "stopped"]
    assert "my-chatbot" in cli("endpoint", "list").stdout
    assert yaml.safe_load(cli("endpoint", "list", "--format", "yaml").stdout)["endpoints"][0]["id"] == ep["id"]
    # the region has two h100s and this endpoint reserves one: min 1 x 2 GPUs does not fit -> 409, exit 1
    full_up = cli(*args[:3], "other", "--container-command", CMD, "--gpu-type", "h100", "--gpu-count", "2", ok=False)
    assert full_up.exit_code != 0 and "409" in full_up.output and "free 1" in full_up.output
    cli("endpoint", "delete", "--id", ep["id"])


def test_errors_print_the_message_and_exit_nonzero(cli: Cli) -> None:
    res = cli("endpoint", "get", "ep-nope", ok=False)
    assert res.exit_code == 1 and "404 not_found" in res.output
    res = cli("endpoint", "create", "--name", "x", "--container-command", CMD, "--disk-size", "lots", ok=False)
    assert res.exit_code == 1 and "compute.disk_size" in res.output
    res = cli("endpoint", "create", "--name", "x", "--container-command", CMD, "--platform", "gpu-z", ok=False)
    assert res.exit_code == 1 and "compute.platform" in res.output
    res = cli("endpoint", "create", "--name", "x", "--scale-policy", "fast", ok=False)
    assert res.exit_code != 0 and "--scale-policy" in res.output


def test_every_read_takes_format(cli: Cli) -> None:
    cli("secret", "create", "--name", "s", "--value", "K=v")
    cli("volume", "create", "--name", "v")
    ep = cli.json("endpoint", "create", "--name", "e", "--container-command", CMD)
    reads = [
        ["endpoint", "list"], ["endpoint", "get", ep["id"]], ["endpoint", "events", ep["id"]],
        ["secret", "list"], ["secret", "get", "s"], ["volume", "list"], ["volume", "get", "v"],
        ["token", "list"], ["template", "list"], ["region", "list"], ["platform", "list"], ["usage"],
    ]  # fmt: skip
    for args in reads:
        as_json = json.loads(cli(*args, "--format", "json").stdout)
        as_yaml = yaml.safe_load(cli(*args, "--format", "yaml").stdout)
        assert as_yaml.keys() == as_json.keys(), args  # same document (usage's `until` moves with time)
        assert cli(*args, "--format", "table").stdout.strip(), args


def test_data_survive_a_restart(cli: Cli, server) -> None:  # type: ignore[no-untyped-def]
    cli("secret", "create", "--name", "ep-auth", "--value", "AUTH_TOKEN=kept")
    cli("volume", "create", "--name", "keep")
    ep = cli.json("endpoint", "create", "--name", "e", "--container-command", CMD, "--token-secret", "ep-auth")
    ded = cli.json("endpoint", "create", "--name", "d", "--template", "tiny/chat", "--min-replicas", "0")
    server.restart()
    assert {e["id"] for e in cli.json("endpoint", "list")["endpoints"]} == {ep["id"], ded["id"]}
    assert cli.json("secret", "get", "ep-auth")["used_by"] == [ep["id"]]
    assert cli.json("volume", "get", "keep")["name"] == "keep"
    assert cli.json("token", "list")["tokens"]
    # the master key persisted too: the secret still opens, and the endpoint's token hash still matches
    assert _resolve(server.data_dir, ep["id"]) == ("kept", sha256_hex("kept"))


def _resolve(data_dir: Path, endpoint_id: str) -> tuple[str, str | None]:
    async def run() -> tuple[str, str | None]:
        store = Store(f"sqlite+aiosqlite:///{data_dir / 'podium.db'}")
        try:
            env = await SecretService(store, load_master_key(data_dir, env={})).resolve_env({"T": "ep-auth"})
            row = await store.get_endpoint(endpoint_id)
            return env["T"], row.auth_token_sha256 if row else None
        finally:
            await store.close()

    return asyncio.run(run())


def test_auth_registry_and_template_flags(cli: Cli) -> None:
    generated = cli.json("endpoint", "create", "--name", "g", "--container-command", CMD, "--auth", "token")
    assert generated["token"].startswith("ep_") and generated["spec"]["auth"]["mode"] == "token"
    assert (
        "shown only now"
        in cli("endpoint", "create", "--name", "t", "--container-command", CMD, "--auth", "token").stdout
    )
    given = cli.json(
        "endpoint", "create", "--name", "r", "--container-command", CMD, "--token", "my-token-long-enough",
        "--image", "registry.local/bot:1", "--registry-username", "robot", "--registry-password", "hunter2",
    )  # fmt: skip
    assert given["token"] == "my-token-long-enough" and given["spec"]["container"]["registry"]["username"] == "robot"
    shown = cli("endpoint", "get", given["id"], "--format", "yaml").stdout
    assert "hunter2" not in shown and "my-token-long-enough" not in shown  # neither is ever shown again
    tpl = cli.json(
        "endpoint", "create", "--name", "llm", "--template", "big/llm", "--flavor", "fast", "--region", "local",
        "--gpu-type", "h100", "--gpu-count", "2", "--min-replicas", "0", "--max-replicas", "2",
    )  # fmt: skip
    assert tpl["kind"] == "template" and tpl["spec"]["template"] == {
        "model_name": "big/llm",
        "flavor_name": "fast",
        "env_secrets": {},
    }
    assert cli.json("endpoint", "get", tpl["routing_key"])["id"] == tpl["id"]
    bad = cli("endpoint", "create", "--name", "x", "--template", "big/llm", "--flavor", "fast", "--gpu-type", "h100",
              "--gpu-count", "1", ok=False)  # fmt: skip
    assert bad.exit_code == 1 and "compute.gpu_count" in bad.output


def test_token_commands(cli: Cli) -> None:
    made = cli.json("token", "create", "--name", "ci", "--scope", "read,inference")
    assert made["scopes"] == ["inference", "read"] and made["token"]
    listed = cli("token", "list").stdout
    assert "ci" in listed and made["token"] not in listed  # the value is shown only at creation
    bad = cli("token", "create", "--name", "x", "--scope", "root", ok=False)
    assert bad.exit_code == 1 and "scopes" in bad.output
    cli("token", "revoke", made["id"])
    assert "ci" not in cli("token", "list").stdout
    assert cli("token", "revoke", made["id"], ok=False).exit_code == 1
