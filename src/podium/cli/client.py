"""A small HTTP client for the CLI. API errors become a printed message and exit code 1."""

from __future__ import annotations

import os
import sys
from typing import Any, NoReturn

import httpx
import typer


def fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


class Api:
    def __init__(self, url: str | None = None, token: str | None = None, timeout: float = 30.0) -> None:
        self.url = (url or os.environ.get("PODIUM_URL") or "http://127.0.0.1:8800").rstrip("/")
        self.token = token or os.environ.get("PODIUM_API_TOKEN") or _token_from_data_dir()
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            resp = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            fail(f"cannot reach Podium at {self.url}: {exc} (is `podium up` running? set PODIUM_URL)")
        if resp.status_code >= 400:
            fail(error_text(resp))
        if not resp.content:
            return None
        try:
            return resp.json()
        except ValueError:
            return resp.text

    def get(self, path: str, **kw: Any) -> Any:
        return self.call("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.call("POST", path, **kw)

    def patch(self, path: str, **kw: Any) -> Any:
        return self.call("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.call("DELETE", path, **kw)


def error_text(resp: httpx.Response) -> str:
    try:
        err = resp.json().get("error", {})
        text = f"{resp.status_code} {err.get('code', '')}: {err.get('message', resp.text)}"
    except (ValueError, AttributeError):
        text = f"{resp.status_code}: {resp.text[:500]}"
    return text + _hint(resp)


def _hint(resp: httpx.Response) -> str:
    """What a newcomer needs after a 401: which variables the CLI reads, and where the token is."""
    if resp.status_code != 401:
        return ""
    sent = "PODIUM_API_TOKEN was not set" if "authorization" not in resp.request.headers else "the token was refused"
    base = f"{resp.request.url.scheme}://{resp.request.url.netloc.decode()}"
    return (
        f"\nhint: {sent}. Set PODIUM_API_TOKEN to a Podium token (the admin token is in <data-dir>/admin_token "
        f"on the machine that runs `podium up`; `podium token create` makes others), and PODIUM_URL to "
        f"your Podium (now {base})."
    )


def _token_from_data_dir() -> str | None:
    """Convenience on the machine that runs `podium up`: read the saved admin token."""
    from podium.settings import default_data_dir

    path = default_data_dir() / "admin_token"
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def stderr(msg: str) -> None:
    print(msg, file=sys.stderr)
