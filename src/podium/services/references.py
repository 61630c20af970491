"""Which secrets and named volumes an endpoint spec refers to, and where (the field path).

Pure functions over specs, shared by validation (an unknown reference is a 422 naming the field)
and by deletes (a secret or volume still referenced is a 409 naming the endpoints).
"""

from __future__ import annotations

from podium.core.specs import EndpointSpec


def secret_refs(spec: EndpointSpec) -> list[tuple[str, str, str]]:
    """(field, selector, the payload key it must provide: the env key, REGISTRY_*, AUTH_TOKEN)."""
    out: list[tuple[str, str, str]] = []
    if spec.container is not None:
        for env_key, selector in spec.container.env_secrets.items():
            out.append((f"container.env_secrets.{env_key}", selector, env_key))
        if spec.container.registry.secret:
            out.append(("container.registry.secret", spec.container.registry.secret, "REGISTRY_PASSWORD"))
    if spec.template is not None:
        for env_key, selector in spec.template.env_secrets.items():
            out.append((f"template.env_secrets.{env_key}", selector, env_key))
    if spec.auth.token_secret:
        out.append(("auth.token_secret", spec.auth.token_secret, "AUTH_TOKEN"))
    return out


def is_named_volume(source: str) -> bool:
    """Host paths (`/data`) and buckets (`s3://…`) are used as given; anything else names a volume."""
    return not (source.startswith("/") or source.startswith("s3://"))


def volume_refs(spec: EndpointSpec) -> list[tuple[str, str]]:
    return [(f"volumes.{i}.source", v.source) for i, v in enumerate(spec.volumes) if is_named_volume(v.source)]


def selector_ref(selector: str) -> str:
    """`name@2:KEY` -> `name` (the part that names the secret)."""
    return selector.partition(":")[0].partition("@")[0].strip()
