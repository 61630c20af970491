"""Endpoint names on the command line: `podium endpoint get my-chatbot` works like `get ep-…`.

The API finds an endpoint by id, app name or routing key, but not by display name, because a
name need not be unique. The CLI therefore lists endpoints once and picks the one the user
means; every command that takes an endpoint goes through `endpoint_id`, so they all agree.
"""

from __future__ import annotations

from typing import Any

from podium.cli.client import Api, fail


def pick_key(arg: str | None, opt: str | None) -> str:
    """The endpoint the user named, positionally or with `--id`."""
    key = arg or opt
    if not key:
        fail("give an endpoint id or name (positional or --id)")
    return key


def endpoint_id(api: Api, arg: str | None, opt: str | None = None) -> str:
    """The id of the endpoint the user means, given its id, name, app name or routing key.

    An id is exact. Anything else must match exactly one endpoint: a name shared by several
    endpoints (or one endpoint's name that is another's app name) is an error listing their ids,
    so a script never acts on the wrong one. An unknown key is passed through unchanged: the
    API's 404 then says what was not found."""
    key = pick_key(arg, opt)
    endpoints: list[dict[str, Any]] = api.get("/v0/endpoints")["endpoints"]
    if any(ep["id"] == key for ep in endpoints):
        return key
    matches = [ep for ep in endpoints if key in (ep["name"], ep["app_name"], ep["routing_key"])]
    if len(matches) == 1:
        return str(matches[0]["id"])
    if matches:
        listed = ", ".join(f"{e['id']} (name {e['name']}, app {e['app_name']})" for e in matches)
        fail(f"{len(matches)} endpoints match {key!r}: {listed}; give one of these ids instead")
    return key
