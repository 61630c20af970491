"""Turning `podium endpoint create/update` flags into the REST spec document.

Kept apart from the command definitions so the flag grammar (KEY=VALUE lists, volumes, scale
policy) is unit-tested without a server.
"""

from __future__ import annotations

import shlex
from typing import Any

from podium.cli.client import fail


def parse_kv(items: list[str] | None, flag: str) -> dict[str, str]:
    """`--env A=1,B=2 --env C=3` -> {"A": "1", "B": "2", "C": "3"}."""
    out: dict[str, str] = {}
    for item in items or []:
        for part in item.split(","):
            if not part.strip():
                continue
            key, sep, value = part.partition("=")
            if not sep or not key.strip():
                fail(f"{flag} expects KEY=VALUE, got {part!r}")
            out[key.strip()] = value
    return out


def parse_volume(text: str) -> dict[str, Any]:
    from podium.core.specs import VolumeMount

    try:
        return VolumeMount.parse(text).model_dump(mode="json")
    except ValueError as exc:
        fail(f"--volume {text!r}: {exc}")


def parse_policy(text: str) -> dict[str, Any]:
    from podium.core.specs import ScalePolicy

    try:
        return ScalePolicy.parse(text).model_dump(mode="json")
    except ValueError as exc:
        fail(f"--scale-policy {text!r}: {exc}")


def set_path(doc: dict[str, Any], path: str, value: Any) -> None:
    """Set `a.b.c` in a nested dict, only when a value was given (None = flag not used)."""
    if value is None:
        return
    *parents, last = path.split(".")
    node = doc
    for p in parents:
        node = node.setdefault(p, {})
    node[last] = value


def build_spec(o: dict[str, Any], creating: bool) -> dict[str, Any]:
    """Flags (as a dict of option name -> value, None when absent) -> spec document (partial for update)."""
    doc: dict[str, Any] = {}
    for key in (
        "name",
        "description",
        "app_name",
        "served_model_name",
        "ssh_key",
        "subnet_id",
        "public",
        "health_check_path",
        "enabled",
    ):
        set_path(doc, key, o.get(key))
    if o.get("template"):
        doc["template"] = {"model_name": o["template"], "flavor_name": o.get("flavor") or "base"}
        if o.get("env_secret"):  # a template's replicas take env secrets too (HF_TOKEN for gated weights)
            doc["template"]["env_secrets"] = parse_kv(o["env_secret"], "--env-secret")
            o = {**o, "env_secret": None}  # taken by the template, not a container's
    container_flags = (
        "image",
        "container_command",
        "container_port",
        "args",
        "env",
        "env_secret",
        "registry_username",
        "registry_password",
        "registry_secret",
    )
    if any(o.get(k) for k in container_flags) or (creating and not o.get("template")):
        c: dict[str, Any] = {}
        set_path(c, "image", o.get("image"))
        set_path(c, "command", o.get("container_command"))
        set_path(c, "port", o.get("container_port"))
        if o.get("args"):
            c["args"] = shlex.split(" ".join(o["args"]))
        if o.get("env"):
            c["env"] = parse_kv(o["env"], "--env")
        if o.get("env_secret"):
            c["env_secrets"] = parse_kv(o["env_secret"], "--env-secret")
        set_path(c, "registry.username", o.get("registry_username"))
        set_path(c, "registry.password", o.get("registry_password"))
        set_path(c, "registry.secret", o.get("registry_secret"))
        doc["container"] = c
    for flag, path in (
        ("region", "compute.region"),
        ("platform", "compute.platform"),
        ("preset", "compute.preset"),
        ("gpu_type", "compute.gpu_type"),
        ("gpu_count", "compute.gpu_count"),
        ("min_cuda_version", "compute.min_cuda_version"),
        ("disk_size", "compute.disk_size"),
        ("shm_size", "compute.shm_size"),
        ("min_replicas", "scaling.min_replicas"),
        ("max_replicas", "scaling.max_replicas"),
        ("idle_timeout", "scaling.idle_timeout_s"),
        ("max_concurrency", "scaling.max_concurrency"),
        ("cold_start_timeout", "scaling.cold_start_timeout_s"),
        ("queue_size", "scaling.queue_size"),
        ("queue_timeout", "scaling.queue_timeout_s"),
        ("request_timeout", "scaling.request_timeout_s"),
    ):
        set_path(doc, path, o.get(flag))
    if o.get("scale_policy"):
        set_path(doc, "scaling.scale_policy", parse_policy(o["scale_policy"]))
    set_path(doc, "routing.policy", o.get("routing"))
    if o.get("auth"):
        set_path(doc, "auth.mode", o["auth"])
    set_path(doc, "auth.token", o.get("token"))
    set_path(doc, "auth.token_secret", o.get("token_secret"))
    if (o.get("token") or o.get("token_secret")) and not o.get("auth"):
        set_path(doc, "auth.mode", "token")
    if o.get("volume"):
        doc["volumes"] = [parse_volume(v) for v in o["volume"]]
    if creating:
        _fill_replica_bounds(doc)
    return doc


def _fill_replica_bounds(doc: dict[str, Any]) -> None:
    """`--min-replicas 3` alone should not fail on the default max of 1: max follows min."""
    scaling = doc.get("scaling", {})
    if "min_replicas" in scaling and "max_replicas" not in scaling:
        scaling["max_replicas"] = max(1, scaling["min_replicas"])
