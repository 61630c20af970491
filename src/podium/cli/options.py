"""Endpoint flags, defined once and shared by `create` and `update` (help texts carry examples)."""

from __future__ import annotations

import typer

NAME = typer.Option(None, "--name", help="Display name, e.g. --name my-chatbot.")
DESCRIPTION = typer.Option(None, "--description", help='Free text shown in list/get, e.g. --description "support bot".')
APP_NAME = typer.Option(
    None, "--app-name", help="URL name (a-z, 0-9, -): reached at /e/APP_NAME/…; generated if absent."
)
IMAGE = typer.Option(None, "--image", help="Container image, e.g. --image vllm/vllm-openai:v0.11.0 (docker runtime).")
REG_USER = typer.Option(
    None, "--registry-username", help="Registry user for a private image, e.g. --registry-username robot$ci."
)
REG_PASS = typer.Option(
    None,
    "--registry-password",
    help="Registry password or token, e.g. --registry-password $REG_PASS (prefer --registry-secret).",
)
REG_SECRET = typer.Option(
    None,
    "--registry-secret",
    help="Secret (name, name@version or id) with REGISTRY_USERNAME/REGISTRY_PASSWORD, e.g. --registry-secret ghcr.",
)
COMMAND = typer.Option(
    None, "--container-command", help='Entrypoint; $PORT is expanded, e.g. "python3 server.py --port $PORT".'
)
PORT = typer.Option(
    None,
    "--container-port",
    help="Port the server listens on inside the container (default 8000), e.g. --container-port 8080.",
)
ARGS = typer.Option(None, "--args", help='Arguments appended to the command, e.g. --args "--model m --max-len 4096".')
ENV = typer.Option(None, "--env", help="KEY=VALUE (repeat, or comma-separate): --env A=1,B=2.")
ENV_SECRET = typer.Option(
    None, "--env-secret", help="KEY=SECRET_SELECTOR: env from a secret, e.g. --env-secret HF_TOKEN=hf@2."
)
AUTH = typer.Option(
    None,
    "--auth",
    help="'token' to require a bearer token (generated unless --token/--token-secret), 'none' for open; "
    "e.g. --auth token.",
)
TOKEN = typer.Option(
    None, "--token", help="The endpoint's bearer token (implies --auth token), e.g. --token my-long-random-token."
)
TOKEN_SECRET = typer.Option(
    None,
    "--token-secret",
    help="Secret whose AUTH_TOKEN key is the endpoint's token (implies --auth token), e.g. --token-secret ep-auth.",
)
VOLUME = typer.Option(
    None,
    "--volume",
    help="SOURCE:/path[:ro|rw] or s3://bucket:/path[:mode[:profile]] (repeatable); SOURCE is a volume name "
    "(podium volume create) or a host path, e.g. --volume models:/models:ro.",
)
SUBNET = typer.Option(
    None, "--subnet-id", help="Network/subnet to attach replicas to (cluster runtimes), e.g. --subnet-id subnet-a1."
)
PLATFORM = typer.Option(
    None, "--platform", help="Machine platform, e.g. gpu-h100-sxm or cpu-e2 (see GET /v0/platforms)."
)
PRESET = typer.Option(
    None,
    "--preset",
    help="Platform preset (sets --gpu-count), e.g. --preset 1gpu-16vcpu-200gb (see podium platform list).",
)
DISK = typer.Option(None, "--disk-size", help="Disk per replica, e.g. 250Gi (default) or 1Ti.")
SHM = typer.Option(None, "--shm-size", help="Shared memory per replica, e.g. 16Gi (default).")
SSH_KEY = typer.Option(
    None,
    "--ssh-key",
    help='Public SSH key for replica access (container runtimes), e.g. --ssh-key "$(cat ~/.ssh/id_ed25519.pub)".',
)
PUBLIC = typer.Option(
    None, "--public/--private", help="Give replicas a public address (cluster runtimes), e.g. --public."
)
TEMPLATE = typer.Option(
    None,
    "--template",
    help="Catalog model, e.g. HuggingFaceTB/SmolLM2-135M-Instruct (see `podium template list`).",
)
FLAVOR = typer.Option(None, "--flavor", help="Template flavor, e.g. --flavor fast (default base).")
REGION = typer.Option(
    None, "--region", help="Region, e.g. --region local (immutable after create; see podium region list)."
)
GPU_TYPE = typer.Option(None, "--gpu-type", help="GPU type, e.g. --gpu-type h100 (or cpu).")
GPU_COUNT = typer.Option(None, "--gpu-count", help="GPUs per replica, e.g. --gpu-count 2.")
MIN_REPLICAS = typer.Option(
    None, "--min-replicas", help="Replicas always kept and reserved (0 allows scale to zero), e.g. --min-replicas 0."
)
MAX_REPLICAS = typer.Option(
    None, "--max-replicas", help="Upper bound for the autoscaler (above min is opportunistic), e.g. --max-replicas 4."
)
IDLE = typer.Option(
    None, "--idle-timeout", help="Seconds without traffic before scaling down to min, e.g. --idle-timeout 300."
)
MAX_CONC = typer.Option(
    None, "--max-concurrency", help="In-flight requests per replica; the rest queue, e.g. --max-concurrency 8."
)
POLICY = typer.Option(
    None,
    "--scale-policy",
    help="queue-delay=SECONDS, request-count=N, kv-cache=SHARE or engine-queue=N (default concurrency=0.7), "
    "e.g. --scale-policy queue-delay=2.",
)
ROUTING = typer.Option(
    None,
    "--routing",
    help="Replica choice: least-load or prefix-cache (same prompt prefix -> same replica's KV cache); "
    "default prefix-cache for GPU templates, least-load for CPU templates and containers, e.g. --routing prefix-cache.",
)
HEALTH = typer.Option(None, "--health-check-path", help="Path that answers 200 when a replica is ready, e.g. /health.")
SERVED = typer.Option(
    None,
    "--served-model-name",
    help="Model name the server expects (default: the routing key), e.g. --served-model-name smollm2.",
)
COLD = typer.Option(
    None,
    "--cold-start-timeout",
    help="Seconds a request waits for a first ready replica before 503, e.g. --cold-start-timeout 120.",
)
QUEUE_SIZE = typer.Option(
    None, "--queue-size", help="Requests allowed to wait per endpoint before 503, e.g. --queue-size 100."
)
QUEUE_TIMEOUT = typer.Option(
    None, "--queue-timeout", help="Seconds a request may wait in the queue before 503, e.g. --queue-timeout 30."
)
REQ_TIMEOUT = typer.Option(
    None, "--request-timeout", help="Seconds a whole request may take (streaming included), e.g. --request-timeout 600."
)
