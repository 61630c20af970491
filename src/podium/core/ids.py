"""Stable identifiers. Objects are named by ids, never by addresses that may be reused."""

from __future__ import annotations

import re
import secrets

_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def new_id(prefix: str, length: int = 12) -> str:
    """`ep-…`, `rep-…`, `sec-…`: a prefix says the kind, the random tail makes it unique."""
    return f"{prefix}-" + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def endpoint_id() -> str:
    return new_id("ep")


def replica_id() -> str:
    return new_id("rep")


APP_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def slugify(text: str, max_len: int = 40) -> str:
    """A best-effort app name from a display name: lowercase letters, digits and hyphens."""
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return s[:max_len].strip("-")


def new_app_name(name: str | None = None) -> str:
    base = slugify(name or "") or "app"
    return f"{base}-{new_id('x', 5)[2:]}"


def new_routing_key(name: str | None = None) -> str:
    """Routing keys are what clients put in `model`: readable, unique, URL-safe."""
    base = slugify(name or "", 30) or "endpoint"
    return f"{base}-{new_id('x', 8)[2:]}"
