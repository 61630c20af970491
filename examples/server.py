"""A tiny OpenAI-compatible model server: the README's quickstart deploys it as an endpoint.

    python3 examples/server.py --port 8000

Standard library only, so any python3 runs it (a host process or a container). It answers
`GET /health`, `GET /v1/models` and `POST /v1/chat/completions` (streaming too) by echoing the
last user message: enough to see Podium route, scale, stream and meter a real HTTP server.
Replace it with your own server; Podium only needs a port and a health path.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = os.environ.get("PODIUM_SERVED_MODEL_NAME", "echo")


def reply_to(body: dict) -> str:
    messages = body.get("messages") or [{}]
    return f"You said: {messages[-1].get('content', '')}"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _json(self, code: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/health":
            self._json(200, {"status": "ok"})
        elif self.path == "/v1/models":
            self._json(200, {"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "you"}]})
        else:
            self._json(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        if self.path != "/v1/chat/completions":
            self._json(404, {"error": {"message": f"no route {self.path}"}})
            return
        text, created = reply_to(body), int(time.time())
        base = {"id": f"chatcmpl-{created}", "created": created, "model": body.get("model", MODEL)}
        if not body.get("stream"):
            choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            usage = {"prompt_tokens": 1, "completion_tokens": len(text.split()), "total_tokens": 1 + len(text.split())}
            self._json(200, {**base, "object": "chat.completion", "choices": [choice], "usage": usage})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for word in [*text.split(" "), None]:
            delta = {"content": word + " "} if word is not None else {}
            chunk = {**base, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}]}
            if word is None:
                chunk["choices"][0]["finish_reason"] = "stop"
            self._chunk(f"data: {json.dumps(chunk)}\n\n".encode())
        self._chunk(b"data: [DONE]\n\n")
        self._chunk(b"")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def log_message(self, fmt: str, *args: object) -> None:
        print(fmt % args, flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description="A tiny OpenAI-compatible echo server.")
    p.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    p.add_argument("--host", default="127.0.0.1")
    ns = p.parse_args()
    print(f"serving {MODEL!r} on http://{ns.host}:{ns.port}", flush=True)
    ThreadingHTTPServer((ns.host, ns.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
