"""`podium template|region|platform …`: read the catalog (what can be deployed, where, on what)."""

from __future__ import annotations

from typing import Any

import typer

from podium.cli.client import Api
from podium.cli.output import FORMAT_OPTION, Format, emit, render_table

templates = typer.Typer(help="Model templates (what `--template` and dedicated endpoints accept).")
regions = typer.Typer(help="Regions and their inventory.")
platforms = typer.Typer(help="Platforms (GPU types) and their presets.")


def _templates_table(d: dict[str, Any]) -> str:
    rows = [
        (
            t.get("model_name"),
            t.get("flavor_name"),
            t.get("gpu_type"),
            ",".join(t.get("platforms", [])),
            ",".join(map(str, t.get("gpu_counts", []))),
            ",".join(t.get("regions", [])),
        )
        for t in d["templates"]
    ]
    return render_table(
        ["model", "flavor", "gpu type", "also named", "gpu counts", "regions"], rows, max_col=50, empty="no templates"
    )


@templates.command("list")
def template_list(
    model: str = typer.Option(
        None, "--model", help="Only this model, e.g. --model HuggingFaceTB/SmolLM2-135M-Instruct"
    ),
    gpu_type: str = typer.Option(None, "--gpu-type", help="Only this GPU type, e.g. --gpu-type cpu."),
    fmt: Format = FORMAT_OPTION,
) -> None:
    """List templates: one row per (model, flavor, GPU type). Example: podium template list --gpu-type cpu"""
    data = Api().get("/v0/dedicated_endpoints/templates")
    data["templates"] = [
        t
        for t in data["templates"]
        if (model is None or t.get("model_name") == model)
        and (gpu_type is None or gpu_type in (t.get("gpu_type"), *t.get("platforms", [])))  # gpu-h100-sxm too
    ]
    emit(data, fmt, _templates_table)


@templates.command("get")
def template_get(
    model: str = typer.Argument(..., help="Model name, e.g. HuggingFaceTB/SmolLM2-135M-Instruct."),
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Every flavor of one model: what it is for, GPU options, regions (json/yaml add the recipes).

    Example: podium template get openai/gpt-oss-20b --format yaml
    """
    emit(Api().get(f"/v0/templates/{model}"), fmt, _describe_table)


def _describe_table(d: dict[str, Any]) -> str:
    rows = [
        (
            fl.get("flavor_name"),
            g.get("gpu_type"),
            ",".join(map(str, g.get("gpu_counts") or [])),
            ",".join(g.get("regions") or []),
            fl.get("description"),
        )
        for fl in d.get("flavors", [])
        for g in fl.get("gpus", [])
    ]
    head = f"{d.get('model_name')}  {d.get('description') or ''}".rstrip()
    return head + "\n\n" + render_table(["flavor", "gpu type", "gpu counts", "regions", "what for"], rows, max_col=70)


def _inventory(inv: dict[str, int] | None) -> str:
    return "not counted" if inv is None else ", ".join(f"{k}: {v}" for k, v in inv.items())


@regions.command("list")
def region_list(fmt: Format = FORMAT_OPTION) -> None:
    """List regions and what each holds. Example: podium region list"""
    emit(
        Api().get("/v0/regions"),
        fmt,
        lambda d: render_table(
            ["name", "runtime", "data plane", "inventory", "nodes"],
            [
                (
                    r.get("name"),
                    r.get("runtime") or r.get("backend"),
                    r.get("data_plane_url") or "this listener",
                    _inventory(r.get("inventory")),
                    _nodes_summary(r.get("nodes") or []),
                )
                for r in d["regions"]
            ],
            max_col=70,
            empty="no regions",
        ),
    )


@regions.command("get")
def region_get(name: str = typer.Argument(..., help="Region name."), fmt: Format = FORMAT_OPTION) -> None:
    """One region: its runtime, data plane URL, inventory and (Ray) each node's GPUs and what is in use.
    Example: podium region get gpu"""
    emit(Api().get(f"/v0/regions/{name}"), fmt, _region_text)


def _nodes_summary(nodes: list[dict[str, Any]]) -> str:
    if not nodes:
        return "-"
    alive = [n for n in nodes if n.get("alive")]
    return f"{len(alive)} alive of {len(nodes)}"


def _region_text(r: dict[str, Any]) -> str:
    head = "\n".join(
        [
            f"region:      {r.get('name')}",
            f"runtime:     {r.get('runtime')}",
            f"data plane:  {r.get('data_plane_url') or 'this listener'}",
            f"inventory:   {_inventory(r.get('inventory'))} ({r.get('inventory_source', '')})",
        ]
    )
    nodes = r.get("nodes") or []
    if not nodes:
        return head
    rows = [
        (
            str(n.get("node_id", ""))[:12],
            n.get("ip"),
            "alive" if n.get("alive") else "dead",
            n.get("gpu_type") or "-",
            f"{int(n.get('gpus_total', 0)) - int(n.get('gpus_free', 0))}/{n.get('gpus_total', 0)}",
            f"{float(n.get('cpus_total', 0)) - float(n.get('cpus_free', 0)):g}/{float(n.get('cpus_total', 0)):g}",
        )
        for n in nodes
    ]
    return head + "\n\n" + render_table(["node", "ip", "state", "gpu type", "gpus used", "cpus used"], rows)


def _presets(p: dict[str, Any]) -> str:
    return ", ".join(str(x.get("name") if isinstance(x, dict) else x) for x in p.get("presets") or [])


@platforms.command("list")
def platform_list(fmt: Format = FORMAT_OPTION) -> None:
    """List platforms and their presets (`--platform`, `--preset`). Example: podium platform list"""
    emit(
        Api().get("/v0/platforms"),
        fmt,
        lambda d: render_table(
            ["name", "gpu type", "presets"],
            [(p.get("name"), p.get("gpu_type"), _presets(p)) for p in d["platforms"]],
            max_col=90,
            empty="no platforms",
        ),
    )
