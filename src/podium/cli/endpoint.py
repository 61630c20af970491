"""`podium endpoint …`: create, list, get, update, start, stop, delete, events, logs, wait (and, from
`cli/rollout.py`, revisions, rollback, promote)."""

from __future__ import annotations

import time
from typing import Any

import typer

from podium.cli import options as O
from podium.cli import rollout, waiting
from podium.cli.client import Api, error_text, fail
from podium.cli.names import endpoint_id
from podium.cli.output import FORMAT_OPTION, Format, emit, render_fields, render_table
from podium.cli.spec_flags import build_spec

app = typer.Typer(help="Create and manage endpoints.", no_args_is_help=True)
ID_ARG = typer.Argument(None, help="Endpoint name, id (ep-…), app name or routing key.")
ID_OPT = typer.Option(None, "--id", help="Endpoint id or name (same as the positional argument).")


def _table(ep: dict[str, Any]) -> str:
    st = ep["status"]
    spec = ep["spec"]
    source = (
        (spec.get("template") or {}).get("model_name")
        or (spec.get("container") or {}).get("image")
        or (spec.get("container") or {}).get("command")
    )
    pairs: list[tuple[str, Any]] = [
        ("id", ep["id"]),
        ("name", ep["name"]),
        ("state", st["state"]),
        ("routing key", ep["routing_key"]),
        ("app name", ep["app_name"]),
        ("source", source),
        ("compute", f"{spec['compute']['region']}: {spec['compute']['gpu_count']} x {spec['compute']['gpu_type']}"),
        ("url", st["url"]),
        ("app url", st["urls"].get("app")),
        (
            "replicas",
            f"{st['ready_replicas']} ready / {st['desired_replicas']} desired "
            f"(min {spec['scaling']['min_replicas']}, max {spec['scaling']['max_replicas']})",
        ),
        ("autoscaler", st.get("autoscaler_reason")),
        ("revision", st.get("revision")),
        ("rollout", rollout.rollout_line(st)),
        ("last error", st.get("last_error")),
    ]
    if ep.get("token"):
        pairs.append(("token", ep["token"] + "   (shown only now)"))
    out = render_fields(pairs)
    if st["instances"]:
        rows = [
            (i["id"], i["state"], i.get("revision"), i["address"], i.get("public_ip"), ",".join(map(str, i["gpus"])))
            for i in st["instances"]
        ]
        out += "\n\n" + render_table(["replica", "state", "revision", "address", "public ip", "gpus"], rows)
    return out


def _list_table(data: dict[str, Any]) -> str:
    rows = [
        (
            e["id"],
            e["name"],
            e["status"]["state"],
            e["routing_key"],
            f"{e['status']['ready_replicas']}/{e['status']['desired_replicas']}",
            e["app_name"],
        )
        for e in data["endpoints"]
    ]
    return render_table(
        ["id", "name", "state", "routing key", "ready", "app"],
        rows,
        empty="no endpoints (create one: podium endpoint create --name NAME --container-command CMD)",
    )


MIN_CUDA = typer.Option(
    None,
    "--min-cuda-version",
    help="Run only where the GPU driver supports this CUDA version or newer (nvidia-smi's 'CUDA Version'), "
    "e.g. 12.4; needs a GPU.",
)


def _warned(ep: Any) -> Any:
    """Settings the server stored but does not act on: said on stderr, so --format json stays parseable."""
    warnings = ep.get("warnings") if isinstance(ep, dict) else None
    for warning in warnings or []:
        typer.echo(f"warning: {warning}", err=True)
    return ep


@app.command()
def create(
    name: str = typer.Option(..., "--name", help="Display name, e.g. --name my-chatbot."),
    description: str = O.DESCRIPTION,
    app_name: str = O.APP_NAME,
    image: str = O.IMAGE,
    registry_username: str = O.REG_USER,
    registry_password: str = O.REG_PASS,
    registry_secret: str = O.REG_SECRET,
    container_command: str = O.COMMAND,
    container_port: int = O.PORT,
    args: list[str] = O.ARGS,
    env: list[str] = O.ENV,
    env_secret: list[str] = O.ENV_SECRET,
    auth: str = O.AUTH,
    token: str = O.TOKEN,
    token_secret: str = O.TOKEN_SECRET,
    volume: list[str] = O.VOLUME,
    subnet_id: str = O.SUBNET,
    platform: str = O.PLATFORM,
    preset: str = O.PRESET,
    disk_size: str = O.DISK,
    shm_size: str = O.SHM,
    ssh_key: str = O.SSH_KEY,
    public: bool = O.PUBLIC,
    template: str = O.TEMPLATE,
    flavor: str = O.FLAVOR,
    region: str = O.REGION,
    gpu_type: str = O.GPU_TYPE,
    gpu_count: int = O.GPU_COUNT,
    min_cuda_version: str = MIN_CUDA,
    min_replicas: int = O.MIN_REPLICAS,
    max_replicas: int = O.MAX_REPLICAS,
    idle_timeout: float = O.IDLE,
    max_concurrency: int = O.MAX_CONC,
    scale_policy: str = O.POLICY,
    routing: str = O.ROUTING,
    health_check_path: str = O.HEALTH,
    served_model_name: str = O.SERVED,
    cold_start_timeout: float = O.COLD,
    queue_size: int = O.QUEUE_SIZE,
    queue_timeout: float = O.QUEUE_TIMEOUT,
    request_timeout: float = O.REQ_TIMEOUT,
    rollout_strategy: str = rollout.STRATEGY,
    canary_percent: float = rollout.CANARY_PERCENT,
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Create an endpoint from a command/image or a catalog template.

    Example: podium endpoint create --name my-chatbot --container-command "python3 server.py --port $PORT"
    --container-port 8000 --health-check-path /health --format json
    """
    doc = rollout.rollout_flags(build_spec(dict(locals()), creating=True), rollout_strategy, canary_percent)
    emit(_warned(Api().post("/v0/endpoints", json=doc)), fmt, _table)


@app.command()
def update(
    endpoint: str = ID_ARG,
    id_: str = ID_OPT,
    name: str = O.NAME,
    description: str = O.DESCRIPTION,
    image: str = O.IMAGE,
    registry_username: str = O.REG_USER,
    registry_password: str = O.REG_PASS,
    registry_secret: str = O.REG_SECRET,
    container_command: str = O.COMMAND,
    container_port: int = O.PORT,
    args: list[str] = O.ARGS,
    env: list[str] = O.ENV,
    env_secret: list[str] = O.ENV_SECRET,
    auth: str = O.AUTH,
    token: str = O.TOKEN,
    token_secret: str = O.TOKEN_SECRET,
    volume: list[str] = O.VOLUME,
    subnet_id: str = O.SUBNET,
    platform: str = O.PLATFORM,
    preset: str = O.PRESET,
    disk_size: str = O.DISK,
    shm_size: str = O.SHM,
    ssh_key: str = O.SSH_KEY,
    public: bool = O.PUBLIC,
    gpu_type: str = O.GPU_TYPE,
    gpu_count: int = O.GPU_COUNT,
    min_cuda_version: str = MIN_CUDA,
    min_replicas: int = O.MIN_REPLICAS,
    max_replicas: int = O.MAX_REPLICAS,
    idle_timeout: float = O.IDLE,
    max_concurrency: int = O.MAX_CONC,
    scale_policy: str = O.POLICY,
    routing: str = O.ROUTING,
    health_check_path: str = O.HEALTH,
    served_model_name: str = O.SERVED,
    cold_start_timeout: float = O.COLD,
    queue_size: int = O.QUEUE_SIZE,
    queue_timeout: float = O.QUEUE_TIMEOUT,
    request_timeout: float = O.REQ_TIMEOUT,
    rollout_strategy: str = rollout.STRATEGY,
    canary_percent: float = rollout.CANARY_PERCENT,
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Change only the given fields; replicas roll to the new spec without dropping traffic.

    Example: podium endpoint update my-chatbot --max-replicas 4 --scale-policy queue-delay=2
    """
    doc = rollout.rollout_flags(build_spec(dict(locals()), creating=False), rollout_strategy, canary_percent)
    api = Api()
    emit(_warned(api.patch(f"/v0/endpoints/{endpoint_id(api, endpoint, id_)}", json=doc)), fmt, _table)


@app.command("list")
def list_(fmt: Format = FORMAT_OPTION) -> None:
    """List endpoints. Example: podium endpoint list --format json"""
    emit(Api().get("/v0/endpoints"), fmt, _list_table)


@app.command()
def get(endpoint: str = ID_ARG, id_: str = ID_OPT, fmt: Format = FORMAT_OPTION) -> None:
    """Show one endpoint with its replicas.

    Example: podium endpoint get ep-abc --format json | jq -r '.status.instances[0].public_ip'
    """
    api = Api()
    emit(api.get(f"/v0/endpoints/{endpoint_id(api, endpoint, id_)}"), fmt, _table)


@app.command()
def start(endpoint: str = ID_ARG, id_: str = ID_OPT, fmt: Format = FORMAT_OPTION) -> None:
    """Enable a stopped endpoint (its replicas start again). Example: podium endpoint start --id ep-abc"""
    api = Api()
    emit(api.post(f"/v0/endpoints/{endpoint_id(api, endpoint, id_)}/start"), fmt, _table)


@app.command()
def stop(endpoint: str = ID_ARG, id_: str = ID_OPT, fmt: Format = FORMAT_OPTION) -> None:
    """Stop an endpoint: replicas drain and end; it is not billed. Example: podium endpoint stop --id ep-abc"""
    api = Api()
    emit(api.post(f"/v0/endpoints/{endpoint_id(api, endpoint, id_)}/stop"), fmt, _table)


@app.command()
def delete(
    endpoint: str = ID_ARG,
    id_: str = ID_OPT,
    wait: bool = typer.Option(False, "--wait", help="Return once every replica has ended."),
) -> None:
    """Delete an endpoint and stop its replicas. Example: podium endpoint delete --id ep-abc"""
    api = Api()
    ep = api.delete(f"/v0/endpoints/{endpoint_id(api, endpoint, id_)}")
    if wait:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if api.http.get(f"/v0/endpoints/{ep['id']}").status_code == 404:
                break
            time.sleep(0.2)
    typer.echo(f"deleting {ep['id']}")


@app.command()
def events(
    endpoint: str = ID_ARG,
    id_: str = ID_OPT,
    limit: int = typer.Option(50, "--limit"),
    fmt: Format = FORMAT_OPTION,
) -> None:
    """What happened to an endpoint, newest first. Example: podium endpoint events ep-abc"""
    api = Api()
    data = api.get(f"/v0/endpoints/{endpoint_id(api, endpoint, id_)}/events", params={"limit": limit})
    emit(
        data,
        fmt,
        lambda d: render_table(
            ["time", "kind", "message"],
            [(time.strftime("%H:%M:%S", time.localtime(e["at"])), e["kind"], e["message"]) for e in d["events"]],
            max_col=100,
            empty="no events",
        ),
    )


@app.command()
def wait(
    endpoint: str = ID_ARG,
    id_: str = ID_OPT,
    for_: str = typer.Option("serving", "--for", help=f"State to wait for: {', '.join(waiting.STATES)}."),
    timeout: float = typer.Option(300, "--timeout", help="Seconds before giving up (exit 1)."),
) -> None:
    """Block until the endpoint reaches a state (for scripts): progress on stderr, the state on stdout.

    Fails at once (exit 1) when the endpoint fails, or when the wait cannot end without someone
    acting (e.g. --for serving on an idle endpoint with min replicas 0).

    Example: podium endpoint wait my-chatbot --for serving
    """
    waiting.check_target(for_)
    api = Api()
    typer.echo(waiting.wait_for(api, endpoint_id(api, endpoint, id_), for_, timeout))


@app.command()
def logs(
    endpoint: str = ID_ARG,
    id_: str = ID_OPT,
    replica: str = typer.Option(None, "--replica", help="One replica id (rep-…); default: all live replicas."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new lines (Ctrl-C to stop)."),
    tail: int = typer.Option(100, "--tail", help="Lines from the end of each log."),
) -> None:
    """Print replica logs. With --follow and no --replica it waits for a replica when none runs,
    and moves on to the next one when the followed replica ends.

    Example: podium endpoint logs my-chatbot --tail 50 --follow
    """
    api = Api(timeout=None if follow else 30.0)  # type: ignore[arg-type]
    key = endpoint_id(api, endpoint, id_)
    params: dict[str, str | int | bool] = {"tail": tail, "follow": follow}
    if replica:
        params["replica"] = replica
    try:
        if follow and not replica:
            _follow_replicas(api, key, tail)
        else:
            _print_log(api, key, params)
    except KeyboardInterrupt:
        pass


def _print_log(api: Api, key: str, params: dict[str, str | int | bool]) -> None:
    with api.http.stream("GET", f"/v0/endpoints/{key}/logs", params=params) as resp:
        if resp.status_code >= 400:
            resp.read()
            fail(error_text(resp))
        for chunk in resp.iter_text():
            typer.echo(chunk, nl=False)


MAX_TAIL = 100_000  # the API's upper bound: a replica that started while we watched is shown whole


def _follow_replicas(api: Api, key: str, tail: int) -> None:
    """Follow the newest running replica; when it ends, or none runs, wait for the next one.

    Scale-to-zero endpoints have no replica most of the time: following must outlive that."""
    if not waiting.running_replicas(api.get(f"/v0/endpoints/{key}")):
        _print_log(api, key, {"tail": tail, "follow": False})  # the last replica's log: why it ended
    ended: set[str] = set()
    shown: set[str] = set()
    while True:
        rid, started_while_waiting = waiting.next_replica(api, key, ended)
        lines = 0 if rid in shown else MAX_TAIL if started_while_waiting else tail
        shown.add(rid)
        _print_log(api, key, {"replica": rid, "tail": lines, "follow": True})
        if rid in waiting.running_replicas(api.get(f"/v0/endpoints/{key}")):
            time.sleep(0.5)  # its log stream closed early (e.g. not yet written): try it again
        else:
            ended.add(rid)


rollout.register(app, ID_ARG, ID_OPT, _table)  # revisions, rollback, promote (issue 13)
