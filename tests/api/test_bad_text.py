"""JSON can carry lone surrogates; wherever they land they are a 422, never a 500 or a stored row."""

from __future__ import annotations

import pytest

BAD = "\\udfff"  # as the JSON escape, so the client sends it verbatim

CASES = [
    ("/v0/secrets", '{"name": "x", "payload": {"A": "%s"}}'),
    ("/v0/endpoints", '{"name": "n", "container": {"command": "c", "env": {"A": "%s"}}}'),
    ("/v0/endpoints", '{"name": "n", "container": {"command": "c", "args": ["%s"]}}'),
    ("/v0/endpoints", '{"name": "n", "container": {"command": "c", "env_secrets": {"A": "%s"}}}'),
    ("/v0/endpoints", '{"name": "%s", "container": {"command": "c"}}'),
    ("/v0/dedicated_endpoints", '{"name": "n", "model_name": "%s"}'),
    ("/v0/volumes", '{"name": "%s"}'),
    ("/v0/tokens", '{"name": "%s", "scopes": ["read"]}'),
]


@pytest.mark.parametrize(("path", "template"), CASES)
async def test_lone_surrogates_are_422(api, path: str, template: str) -> None:
    client, store, _ = api
    resp = await client.post(path, content=template % BAD, headers={"content-type": "application/json"})
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["code"] == "invalid"
    assert await store.list_endpoints() == [] and await store.secrets() == []


async def test_nul_in_env_is_422(api) -> None:
    client, _, _ = api
    body = {"name": "n", "container": {"command": "c", "env": {"A": "x\x00y"}}}
    resp = await client.post("/v0/endpoints", json=body)
    assert resp.status_code == 422 and resp.json()["error"]["message"].startswith("container.env")


@pytest.mark.parametrize(
    ("container", "field"),
    [({"command": "a\x00b"}, "container.command"), ({"command": "c", "args": ["x\x00"]}, "container.args")],
)
async def test_nul_in_command_or_args_is_422(api, container: dict, field: str) -> None:
    client, _, _ = api
    resp = await client.post("/v0/endpoints", json={"name": "n", "container": container})
    assert resp.status_code == 422 and resp.json()["error"]["message"].startswith(field), resp.text
