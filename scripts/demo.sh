#!/usr/bin/env bash
# `make demo`: start Podium (embedded defaults) and deploy a real CPU model, then print how to call it.
# Podium keeps running in the foreground; Ctrl-C stops it and every replica it started.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_DIR="${DATA_DIR:-$HOME/.podium}"
PORT="${PORT:-8800}"
HOST="${HOST:-127.0.0.1}"
PODIUM=.venv/bin/podium
export PODIUM_URL="http://$HOST:$PORT"
mkdir -p "$DATA_DIR"

"$PODIUM" up --host "$HOST" --port "$PORT" --data-dir "$DATA_DIR" > "$DATA_DIR/podium.log" 2>&1 &
UP=$!
trap 'kill -TERM $UP 2>/dev/null; wait $UP' INT TERM
for _ in $(seq 300); do
  curl -sf "$PODIUM_URL/healthz" > /dev/null && break
  kill -0 $UP 2>/dev/null || { echo "podium up exited; see $DATA_DIR/podium.log" >&2; cat "$DATA_DIR/podium.log" >&2; exit 1; }
  sleep 0.2
done
export PODIUM_API_TOKEN="${PODIUM_ADMIN_TOKEN:-$(cat "$DATA_DIR/admin_token")}"

MODEL=HuggingFaceTB/SmolLM2-135M-Instruct
EP=$("$PODIUM" endpoint list --format json | .venv/bin/python -c '
import json, sys
eps = [e for e in json.load(sys.stdin)["endpoints"] if e["name"] == "demo-smollm2"]
print(eps[0]["id"] if eps else "")')
if [ -z "$EP" ]; then
  EP=$("$PODIUM" endpoint create --name demo-smollm2 --template "$MODEL" --flavor base --gpu-type cpu \
       --region local --min-replicas 1 --max-replicas 2 --format json | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["id"])')
fi
echo "waiting for $EP to serve (llama.cpp loads SmolLM2 in a few seconds)..."
"$PODIUM" endpoint wait "$EP" --for serving --timeout 300
KEY=$("$PODIUM" endpoint get "$EP" --format json | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["routing_key"])')

# Prove it before saying so: run the very curl printed below, and check the model answered.
BODY="{\"model\": \"$KEY\", \"messages\": [{\"role\": \"user\", \"content\": \"What is the capital of France?\"}], \"temperature\": 0}"
if ! ANSWER=$(curl -sS --fail-with-body --max-time 120 "$PODIUM_URL/v1/chat/completions" \
      -H "Authorization: Bearer $PODIUM_API_TOKEN" -H 'Content-Type: application/json' -d "$BODY") \
   || ! TEXT=$(printf '%s' "$ANSWER" | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["choices"][0]["message"]["content"].strip())') \
   || [ -z "$TEXT" ]; then
  echo "demo: the endpoint is up but its first chat completion failed:" >&2
  echo "${ANSWER:-(no answer)}" >&2
  "$PODIUM" endpoint get "$EP" >&2 || true
  kill -TERM $UP 2>/dev/null; wait $UP || true
  exit 1
fi
echo "demo: checked: asked \"What is the capital of France?\", the model answered: $TEXT"

cat <<MSG

Podium is serving on $PODIUM_URL  (log: $DATA_DIR/podium.log; Ctrl-C stops it and its replicas)
admin token: $PODIUM_API_TOKEN
endpoint:    $EP   routing key (the "model"): $KEY

Try it:
  curl -s $PODIUM_URL/v1/chat/completions -H "Authorization: Bearer $PODIUM_API_TOKEN" \\
    -H 'Content-Type: application/json' \\
    -d '{"model": "$KEY", "messages": [{"role": "user", "content": "What is the capital of France?"}], "temperature": 0}'

Or with the OpenAI client:
  from openai import OpenAI
  client = OpenAI(base_url="$PODIUM_URL/v1", api_key="$PODIUM_API_TOKEN")
  r = client.chat.completions.create(model="$KEY", messages=[{"role": "user", "content": "What is the capital of France?"}], temperature=0)
  print(r.choices[0].message.content)

CLI: export PODIUM_URL=$PODIUM_URL PODIUM_API_TOKEN=$PODIUM_API_TOKEN; .venv/bin/podium endpoint list
MSG
wait $UP
