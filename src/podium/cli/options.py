"""Endpoint flags, defined once and shared by `create` and `update` (help texts carry examples)."""

from __future__ import annotations

import typer

NAME = typer.Option(None, "--name", help="Display name, e.g. --name my-chatbot.")
DESCRIPTION = typer.Option(None, "--description", help="Free text shown in list/get.")
APP_NAME = typer.Option(
    None, "--app-name", help="URL name (a-z, 0-9, -): reached at /e/APP_NAME/…; generated if absent."
)
IMAGE = typer.Option(None, "--image", help="Container image, e.g. --image vllm/vllm-openai:v0.11.0 (docker runtime).")
REG_USER = typer.Option(None, "--registry-username", help="Registry user for a private image.")
REG_PASS = typer.Option(None, "--registry-password", help="Registry password or token for a private image.")
REG_SECRET = typer.Option(
    None,
    "--registry-secret",
    help="Secret (name, name@version or id) with REGISTRY_USERNAME/REGISTRY_PASSWORD.",
)
COMMAND = typer.Option(
    None, "--container-command", help='Entrypoint; $PORT is expanded, e.g. "python3 server.py --port $PORT".'
)
PORT = typer.Option(None, "--container-port", help="Port the server listens on inside the container (default 8000).")
ARGS = typer.Option(None, "--args", help='Arguments appended to the command, e.g. --args "--model m --max-len 4096".')
ENV = typer.Option(None, "--env", help="KEY=VALUE (repeat, or comma-separate): --env A=1,B=2.")
ENV_SECRET = typer.Option(
    None, "--env-secret", help="KEY=SECRET_SELECTOR: env from a secret, e.g. --env-secret HF_TOKEN=hf@2."
)
AUTH = typer.Option(
    None,
    "--auth",
    help="'token' to require a bearer token (generated unless --token/--token-secret), 'none' for open.",
)
TOKEN = typer.Option(None, "--token", help="The endpoint's bearer token (implies --auth token).")
TOKEN_SECRET = typer.Option(None, "--token-secret", help="Secret whose AUTH_TOKEN key is the endpoint's token.")
VOLUME = typer.Option(None, "--volume", help="SOURCE:/path[:ro|rw] or s3://bucket:/path[:mode[:profile]] (repeatable).")
SUBNET = typer.Option(None, "--subnet-id", help="Network/subnet to attach replicas to (cluster runtimes).")
PLATFORM = typer.Option(
    None, "--platform", help="Machine platform, e.g. gpu-h100-sxm or cpu-e2 (see GET /v0/platforms)."
)
PRESET = typer.Option(None, "--preset", help="Platform preset, e.g. 1gpu-16vcpu-200gb.")
DISK = typer.Option(None, "--disk-size", help="Disk per replica, e.g. 250Gi (default) or 1Ti.")
SHM = typer.Option(None, "--shm-size", help="Shared memory per replica, e.g. 16Gi (default).")
SSH_KEY = typer.Option(None, "--ssh-key", help="Public SSH key for replica access (container runtimes).")
PUBLIC = typer.Option(None, "--public/--private", help="Give replicas a public address (cluster runtimes).")
TEMPLATE = typer.Option(
    None,
    "--template",
    help="Catalog model, e.g. HuggingFaceTB/SmolLM2-135M-Instruct (see `podium template list`).",
)
FLAVOR = typer.Option(None, "--flavor", help="Template flavor, e.g. base or fast.")
REGION = typer.Option(None, "--region", help="Region, e.g. local (immutable after create).")
GPU_TYPE = typer.Option(None, "--gpu-type", help="GPU type, e.g. h100, l40s, or cpu.")
GPU_COUNT = typer.Option(None, "--gpu-count", help="GPUs per replica.")
MIN_REPLICAS = typer.Option(None, "--min-replicas", help="Replicas always kept (0 allows scale to zero).")
MAX_REPLICAS = typer.Option(None, "--max-replicas", help="Upper bound for the autoscaler.")
IDLE = typer.Option(None, "--idle-timeout", help="Seconds without traffic before scaling down (to min).")
MAX_CONC = typer.Option(None, "--max-concurrency", help="In-flight requests per replica; the rest queue.")
POLICY = typer.Option(None, "--scale-policy", help="queue-delay=SECONDS or request-count=N (default: concurrency=0.7).")
HEALTH = typer.Option(None, "--health-check-path", help="Path that answers 200 when a replica is ready, e.g. /health.")
SERVED = typer.Option(None, "--served-model-name", help="Model name the server expects (default: the routing key).")
COLD = typer.Option(None, "--cold-start-timeout", help="Seconds a request waits for a first ready replica before 503.")
QUEUE_SIZE = typer.Option(None, "--queue-size", help="Requests allowed to wait per endpoint before 503.")
QUEUE_TIMEOUT = typer.Option(None, "--queue-timeout", help="Seconds a request may wait in the queue before 503.")
REQ_TIMEOUT = typer.Option(None, "--request-timeout", help="Seconds a whole request may take (streaming included).")
