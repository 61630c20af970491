"""A model hub on 127.0.0.1 for `podium model pull` tests: the two hub routes pull uses, over the
repos in a folder (ROOT/ORG/NAME/files...). `--gated ORG/NAME=TOKEN` makes a repo answer 401
without `Authorization: Bearer TOKEN`. Prints its port on the first line of stdout.

    python -m tests.cli.fake_hub ROOT [--gated ORG/NAME=TOKEN]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse


def make_handler(root: Path, gated: dict[str, str]) -> type[BaseHTTPRequestHandler]:
    class Hub(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # quiet
            pass

        def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            path = unquote(urlparse(self.path).path)
            api = path.startswith("/api/models/")
            parts = path.removeprefix("/api/models/").strip("/").split("/") if api else path.strip("/").split("/")
            repo = "/".join(parts[:2])
            folder = root / repo
            if not folder.is_dir():
                return self._send(404, b'{"error": "not found"}')
            if repo in gated and self.headers.get("Authorization") != f"Bearer {gated[repo]}":
                return self._send(401, b'{"error": "gated"}')
            files = sorted(p for p in folder.rglob("*") if p.is_file())
            sha = hashlib.sha1(b"".join(p.read_bytes() for p in files)).hexdigest()
            if api:
                siblings = [{"rfilename": str(p.relative_to(folder)), "size": p.stat().st_size} for p in files]
                return self._send(200, json.dumps({"id": repo, "sha": sha, "siblings": siblings}).encode())
            if len(parts) < 5 or parts[2] != "resolve" or parts[3] != sha:
                return self._send(404, b'{"error": "no such revision"}')
            target = folder / "/".join(parts[4:])
            if not target.is_file():
                return self._send(404, b'{"error": "no such file"}')
            self._send(200, target.read_bytes(), "application/octet-stream")

    return Hub


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("root")
    p.add_argument("--gated", action="append", default=[])
    ns = p.parse_args()
    gated = dict(item.split("=", 1) for item in ns.gated)
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(Path(ns.root), gated))
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
