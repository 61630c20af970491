"""`podium endpoint revisions|rollback|promote` (issue 13), registered on the endpoint command group
by `register` (this module does not import `cli/endpoint.py`, which calls it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer

from podium.cli.client import Api
from podium.cli.names import endpoint_id
from podium.cli.output import FORMAT_OPTION, Format, emit, render_table

STRATEGY = typer.Option(
    None,
    "--rollout",
    help="How the next change rolls: rolling (surge first, the default) or canary (a share of requests to the "
    "new revision until `podium endpoint promote`), e.g. --rollout canary --canary-percent 10.",
)
CANARY_PERCENT = typer.Option(
    None, "--canary-percent", min=0.1, max=100, help="Share of requests a canary takes (default 10), e.g. 20."
)


def rollout_flags(doc: dict[str, Any], strategy: str | None, canary_percent: float | None) -> dict[str, Any]:
    """`--rollout` and `--canary-percent` into the spec document (the server validates them: 422 naming the field)."""
    if strategy is not None or canary_percent is not None:
        block = doc.setdefault("rollout", {})
        if strategy is not None:
            block["strategy"] = strategy
        if canary_percent is not None:
            block["canary_percent"] = canary_percent
    return doc


def rollout_line(st: dict[str, Any]) -> str | None:
    """`endpoint get`'s rollout line: where a rollout under way stands (None when none is)."""
    r = st.get("rollout")
    if not r:
        return None
    old = ",".join(map(str, r["from_revisions"]))
    hold = " (canary: holds until `podium endpoint promote`)" if r["strategy"] == "canary" else ""
    return (
        f"{r['strategy']} {old} -> {r['to_revision']}: {r['new_ready']}/{r['new_live']} new ready, "
        f"{r['old_live']} old live{hold}"
    )


def _revisions_table(data: dict[str, Any]) -> str:
    rows = [
        (
            ("* " if r["current"] else "  ") + str(r["number"]),
            r["state"],
            r["strategy"],
            f"{r['ready_replicas']}/{r['replicas']}",
            _traffic(r),
            ", ".join(r["changes"]) or "-",
            r["reason"] or "-",
        )
        for r in data["revisions"]
    ]
    headers = ["revision", "state", "strategy", "ready", "requests / errors / latency", "changes", "reason"]
    return render_table(headers, rows, max_col=60)


def _traffic(r: dict[str, Any]) -> str:
    """A canary's judging numbers, side by side with the old revision's (counted while it was judged)."""
    if not r["requests"]:
        return "-"
    return f"{r['requests']} / {r['error_rate']:.1%} / {r['latency_ms']:.0f} ms"


def register(app: typer.Typer, id_arg: Any, id_opt: Any, table: Callable[[Any], str]) -> None:
    """Add the rollout commands to `app` (the endpoint group), with its id argument and table."""

    @app.command()
    def revisions(endpoint: str = id_arg, id_: str = id_opt, fmt: Format = FORMAT_OPTION) -> None:
        """List an endpoint's revisions (* = current): state, what changed, replicas on each.
        Example: podium endpoint revisions my-chatbot"""
        api = Api()
        emit(api.get(f"/v0/endpoints/{endpoint_id(api, endpoint, id_)}/revisions"), fmt, _revisions_table)

    @app.command()
    def rollback(
        endpoint: str = id_arg,
        id_: str = id_opt,
        revision: int | None = typer.Option(None, "--revision", min=1, help="Revision number (default: previous)."),
        fmt: Format = FORMAT_OPTION,
    ) -> None:
        """Roll an endpoint back to an earlier revision, surge-first like any change.
        Example: podium endpoint rollback my-chatbot --revision 2"""
        api = Api()
        body = {} if revision is None else {"revision": revision}
        emit(api.post(f"/v0/endpoints/{endpoint_id(api, endpoint, id_)}/rollback", json=body), fmt, table)

    @app.command()
    def promote(endpoint: str = id_arg, id_: str = id_opt, fmt: Format = FORMAT_OPTION) -> None:
        """Promote a canary: its revision rolls on to every replica. Example: podium endpoint promote my-chatbot"""
        api = Api()
        emit(api.post(f"/v0/endpoints/{endpoint_id(api, endpoint, id_)}/promote"), fmt, table)
