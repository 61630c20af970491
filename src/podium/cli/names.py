"""Endpoint names on the command line: `podium endpoint get my-chatbot` works like `get ep-…`.

The API finds an endpoint by id, app name or routing key, but not by display name, because a
name need not be unique. The CLI therefore lists endpoints once and picks the one the user
means; every command that takes an endpoint goes through `endpoint_id`, so they all agree.
"""

from __future__ import annotations

from typing import Any

from podium.cli.client import Api, fail, stderr


def pick_key(arg: str | None, opt: str | None) -> str:
    """The endpoint the user named, positionally or with `--id`."""
    key = arg or opt
    if not key:
        fail("give an endpoint id or name (positional or --id)")
    return key


def endpoint_id(api: Api, arg: str | None, opt: str | None = None) -> str:
    """The id of the endpoint the user means, given its id, app name, routing key or name.

    Keys the API treats as unique (id, app name, routing key) win over names. A name shared by
    several endpoints is an error listing their ids, so a script never acts on the wrong one.
    An unknown key is passed through unchanged: the API's 404 then says what was not found."""
    key = pick_key(arg, opt)
    endpoints: list[dict[str, Any]] = api.get("/v0/endpoints")["endpoints"]
    named = [e for e in endpoints if e["name"] == key]
    for ep in endpoints:
        if key == ep["id"]:
            return key
        if key in (ep["app_name"], ep["routing_key"]):
            others = [e["id"] for e in named if e["id"] != ep["id"]]
            if others:
                what = "app name" if key == ep["app_name"] else "routing key"
                stderr(f"note: using {ep['id']}, whose {what} is {key!r}; also named {key!r}: {', '.join(others)}")
            return str(ep["id"])
    if len(named) == 1:
        return str(named[0]["id"])
    if named:
        listed = ", ".join(f"{e['id']} (app {e['app_name']})" for e in named)
        fail(f"{len(named)} endpoints are named {key!r}: {listed}; give one of these ids instead")
    return key
