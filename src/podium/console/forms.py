"""The deploy (template) and create (container) forms, and the container form -> spec mapping. The
forms are re-rendered with the user's values when creation fails, so a typo costs one field, not
the whole form. The container form has every field the endpoint documents name (docs/cli.md)."""

from __future__ import annotations

from html import escape
from typing import Any

from fastapi.responses import HTMLResponse

from podium.api.deps import Services
from podium.console.layout import page
from podium.core.errors import PodiumError
from podium.core.specs import EndpointSpec, VolumeMount

# (form name, label, input kind, default, hint). Kinds: text, number, lines, password, check, select:a/b.
CONTAINER_FIELDS: tuple[tuple[str, str, str, str, str], ...] = (
    ("name", "Name", "text", "my-service", ""),
    ("description", "Description", "text", "", ""),
    ("image", "Container image", "text", "", "e.g. vllm/vllm-openai:latest; leave empty to run a command"),
    ("command", "Command (entrypoint)", "text", "", "$PORT is expanded"),
    ("args", "Arguments", "lines", "", "one per line"),
    ("port", "Container port", "number", "8000", ""),
    ("health_check_path", "Health check path", "text", "/health", ""),
    ("env", "Environment", "lines", "", "KEY=value, one per line"),
    ("env_secrets", "Environment from secrets", "lines", "", "KEY=secret-name, one per line"),
    ("registry_username", "Registry username", "text", "", ""),
    ("registry_password", "Registry password", "password", "", "stored encrypted, never shown"),
    ("registry_secret", "Registry credentials secret", "text", "", "a secret with REGISTRY_USERNAME/PASSWORD"),
    ("auth", "Auth", "select:none/token", "none", "token: the endpoint gets its own bearer token"),
    ("volumes", "Volumes", "lines", "", "NAME:/path[:ro], one per line"),
    ("gpu_type", "GPU type", "text", "cpu", "cpu, h100, h200, l40s, …"),
    ("gpu_count", "GPU count", "number", "0", ""),
    ("platform", "Platform", "text", "", "optional, e.g. gpu-h100-sxm"),
    ("preset", "Preset", "text", "", "optional, e.g. 1gpu-16vcpu-200gb"),
    ("disk_size", "Disk size", "text", "250Gi", ""),
    ("shm_size", "Shared memory size", "text", "16Gi", ""),
    ("min_replicas", "Min replicas", "number", "1", ""),
    ("max_replicas", "Max replicas", "number", "1", ""),
    ("ssh_key", "SSH public key", "text", "", "optional"),
    ("public", "Public address", "check", "", ""),
)

_GROUPS = {
    "What runs": ("name", "description", "image", "command", "args", "port", "health_check_path"),
    "Environment, credentials and auth": (
        "env",
        "env_secrets",
        "registry_username",
        "registry_password",
        "registry_secret",
        "auth",
        "volumes",
    ),
    "Compute": ("gpu_type", "gpu_count", "platform", "preset", "disk_size", "shm_size"),
}
_GROUP_OF = {name: group for group, names in _GROUPS.items() for name in names}


def _field(name: str, label: str, kind: str, value: str, hint: str) -> str:
    fid = f"f-{name}"
    help_id = f"{fid}-hint"
    described = f' aria-describedby="{help_id}"' if hint else ""
    hint_html = f'<small id="{help_id}" class="muted">{escape(hint)}</small>' if hint else ""
    v = escape(value)
    if kind == "check":
        checked = " checked" if value in ("on", "true", "1") else ""
        box = f'<input type="checkbox" id="{fid}" name="{name}"{checked}>'
        return f'<p class="check">{box} <label for="{fid}">{label}</label></p>'
    if kind == "lines":
        control = f'<textarea id="{fid}" name="{name}" rows="2"{described}>{v}</textarea>'
    elif kind.startswith("select:"):
        opts = "".join(
            f"<option{' selected' if o == value else ''}>{escape(o)}</option>" for o in kind.split(":", 1)[1].split("/")
        )
        control = f'<select id="{fid}" name="{name}"{described}>{opts}</select>'
    else:
        typ = {"number": "number", "password": "password"}.get(kind, "text")
        keep = "" if kind == "password" else f' value="{v}"'  # a password is never sent back to the page
        control = f'<input id="{fid}" name="{name}" type="{typ}"{keep}{described}>'
    return f'<div><label for="{fid}">{label}</label>{control}{hint_html}</div>'


def container_form(values: dict[str, Any], error: str, admin: bool) -> HTMLResponse:
    if not admin:
        return page("New container", "<h1>New container endpoint</h1><p>Creating endpoints needs an admin token.</p>")
    groups: dict[str, list[str]] = {}
    for n, label, kind, default, hint in CONTAINER_FIELDS:
        value = str(values.get(n, default if not values else ""))
        groups.setdefault(_GROUP_OF.get(n, "Scaling and access"), []).append(_field(n, label, kind, value, hint))
    fields = "".join(
        f'<fieldset><legend>{escape(g)}</legend><div class="grid">{"".join(items)}</div></fieldset>'
        for g, items in groups.items()
    )
    msg = f'<p class="err" role="alert">{escape(error)}</p>' if error else ""
    return page(
        "New container",
        f'<h1>New container endpoint</h1>{msg}<form method="post" action="/console/create" class="card">'
        f"{fields}<button>Create endpoint</button></form>",
    )


def _pairs(text: str, what: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise PodiumError(f"{what}: expected KEY=value, got {line.strip()!r}")
        out[key.strip()] = value
    return out


def container_spec(v: dict[str, Any]) -> EndpointSpec:
    """The form's values -> an endpoint spec (pydantic validates; its message names the field)."""

    def text(key: str) -> str | None:
        return str(v.get(key, "")).strip() or None

    container = {
        "image": text("image"),
        "command": text("command"),
        "args": [a for a in str(v.get("args", "")).splitlines() if a.strip()],
        "port": text("port") or 8000,
        "env": _pairs(str(v.get("env", "")), "environment"),
        "env_secrets": _pairs(str(v.get("env_secrets", "")), "environment from secrets"),
        "registry": {
            "username": text("registry_username"),
            "password": text("registry_password"),
            "secret": text("registry_secret"),
        },
    }
    compute = {k: text(k) for k in ("gpu_type", "platform", "preset", "disk_size", "shm_size") if text(k)}
    doc = {
        "name": text("name") or "",
        "description": str(v.get("description", "")),
        "container": container,
        "compute": {**compute, "gpu_count": text("gpu_count") or 0},
        "scaling": {"min_replicas": text("min_replicas") or 1, "max_replicas": text("max_replicas") or 1},
        "auth": {"mode": text("auth") or "none"},
        "volumes": [VolumeMount.parse(line.strip()) for line in str(v.get("volumes", "")).splitlines() if line.strip()],
        "health_check_path": text("health_check_path") or "/health",
        "ssh_key": text("ssh_key"),
        "public": v.get("public") in ("on", "true", "1"),
    }
    return EndpointSpec.model_validate(doc)


def _runnable(svc: Services, gpu_type: str, count: int) -> bool:
    """Whether the local region has the units a template needs (ignoring what others reserved)."""
    catalog = svc.catalog
    if catalog is None:
        return False
    try:
        have = catalog.region("local").inventory
    except PodiumError:
        return False
    return have.get(gpu_type, 0) >= max(count, 1)


def _hardware(gpu_type: str, count: int) -> str:
    return "CPU" if gpu_type == "cpu" else f"{count} x {gpu_type.upper()}"


def template_form(svc: Services, values: dict[str, Any], error: str, admin: bool) -> HTMLResponse:
    """The template picker: what this machine can run now first, marked in words, then the rest."""
    items = svc.catalog.templates() if svc.catalog is not None else []
    ranked = sorted(items, key=lambda t: not _runnable(svc, t.gpu_type, min(t.gpu_counts)))
    chosen = str(values.get("choice", ""))
    options = []
    for t in ranked:
        key = f"{t.model_name}|{t.flavor_name}|{t.gpu_type}|{min(t.gpu_counts)}"
        mark = "✓ runs here now" if _runnable(svc, t.gpu_type, min(t.gpu_counts)) else "✕ needs other hardware"
        sel = " selected" if key == chosen else ""
        options.append(
            f'<option value="{escape(key)}"{sel}>{escape(t.model_name)} · {escape(t.flavor_name)} · '
            f"{escape(_hardware(t.gpu_type, min(t.gpu_counts)))} — {mark}</option>"
        )
    can = sum(1 for t in ranked if _runnable(svc, t.gpu_type, min(t.gpu_counts)))
    msg = f'<p class="err" role="alert">{escape(error)}</p>' if error else ""
    name = escape(str(values.get("name", "my-model")))
    lo, hi = escape(str(values.get("min_replicas", 1))), escape(str(values.get("max_replicas", 1)))
    if not admin:  # a read-only token sees the catalog, without a form to deploy from it
        rows = "".join(f"<tr><td>{o.split('>', 1)[1].removesuffix('</option>')}</td></tr>" for o in options)
        return page(
            "Templates",
            f"<h1>Templates</h1><p>{can} of {len(ranked)} templates can run on this machine now. Deploying needs "
            f"an admin token.</p><div class='table-wrap'><table><tr><th scope=col>Template</th></tr>{rows}"
            "</table></div>",
        )
    return page(
        "Deploy",
        f"""<h1>Deploy a model</h1>{msg}<p>{can} of {len(ranked)} templates can run on this machine now
      (listed first, marked ✓).</p><form method="post" action="/console/deploy" class="card">
      <label for="choice">Template</label><select id="choice" name="choice" class="wide">{"".join(options)}</select>
      <label for="name">Name</label><input id="name" name="name" value="{name}" required>
      <div class="row"><div><label for="min">Min replicas</label><input id="min" name="min_replicas" type="number"
      value="{lo}" min="0"></div><div><label for="max">Max replicas</label><input id="max" name="max_replicas"
      type="number" value="{hi}" min="0"></div></div><button>Deploy</button></form>""",
    )
