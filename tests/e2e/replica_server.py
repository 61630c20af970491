"""A tiny stdlib HTTP server used as a replica in lifecycle tests, steered by env and files:

REPLICA_EXIT_AFTER=N     exit(3) after answering N non-health requests (a crash)
REPLICA_UNHEALTHY_FILE=F /health answers 503 while file F exists
REPLICA_BOOT_S=S         sleep S seconds before listening (a slow boot)
REPLICA_IGNORE_TERM=1    ignore SIGTERM (forces the SIGKILL path)
GET /slow?s=S            answers after S seconds (an in-flight request during a drain)
REPLICA_HOST=IP          listen there (default 127.0.0.1; a Ray node's IP for the Ray runtime)
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

COUNTS = {"served": 0}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: object) -> None:
        print(fmt % args, flush=True)

    def _send(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path == "/health":
            marker = os.environ.get("REPLICA_UNHEALTHY_FILE")
            self._send(503 if marker and os.path.exists(marker) else 200, {"pid": os.getpid()})
            return
        if url.path == "/env":
            name = parse_qs(url.query).get("name", [""])[0]
            self._send(200, {"name": name, "value": os.environ.get(name)})
            return
        if url.path == "/slow":
            time.sleep(float(parse_qs(url.query).get("s", ["1"])[0]))
        COUNTS["served"] += 1
        self._send(200, {"pid": os.getpid(), "path": url.path, "replica": os.environ.get("PODIUM_REPLICA_ID")})
        limit = int(os.environ.get("REPLICA_EXIT_AFTER", "0"))
        if limit and COUNTS["served"] >= limit:
            self.wfile.flush()
            os._exit(3)

    do_POST = do_GET


def main() -> None:
    if os.environ.get("REPLICA_IGNORE_TERM"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(float(os.environ.get("REPLICA_BOOT_S", "0")))
    port = int(sys.argv[1] if len(sys.argv) > 1 else os.environ["PORT"])
    ThreadingHTTPServer((os.environ.get("REPLICA_HOST", "127.0.0.1"), port), Handler).serve_forever()


if __name__ == "__main__":
    main()
