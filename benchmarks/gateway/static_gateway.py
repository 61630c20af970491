"""Run the Podium gateway alone with one static route (no control plane), for benchmarks.

    python static_gateway.py --port 18101 --upstream 127.0.0.1:18000 [--model fake-model] [--token T]
        [--listener fast|uvicorn]

The route's routing key is `--model`; with `--token` the endpoint requires that bearer token.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import signal
from typing import Any

from podium.gateway.app import Gateway
from podium.gateway.routes import EndpointRoute, ReplicaRoute
from podium.gateway.server import serve


async def not_found(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def main(args: argparse.Namespace) -> None:
    gateway = Gateway(wake=lambda _eid: None)
    gateway.set_route(
        EndpointRoute(
            endpoint_id="ep-bench",
            routing_key=args.model,
            app_name="bench",
            served_model_name=None,
            enabled=True,
            auth_token_sha256=hashlib.sha256(args.token.encode()).hexdigest() if args.token else None,
            max_concurrency=1_000_000,
            queue_size=1000,
            queue_timeout_s=60,
            cold_start_timeout_s=60,
            request_timeout_s=3600,
            replicas=tuple(ReplicaRoute(f"rep-{i}", a) for i, a in enumerate(args.upstream)),
        )
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    kwargs: dict[str, Any] = {}
    if args.listener != "default":
        kwargs["listener"] = args.listener
    await serve(gateway, not_found, args.host, args.port, should_exit=stop, **kwargs)
    await gateway.aclose()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--upstream", action="append", required=True, help="host:port of a replica (repeatable)")
    ap.add_argument("--model", default="fake-model")
    ap.add_argument("--token", default="")
    ap.add_argument("--listener", default="default")
    import uvloop

    uvloop.install()
    asyncio.run(main(ap.parse_args()))
