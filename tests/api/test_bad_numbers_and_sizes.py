"""Input found by trying to break the API: non-finite numbers, huge text, header injection through
`health_check_path`, short endpoint tokens. Each is a 422 naming the field, and nothing is stored."""

from __future__ import annotations

import json

import pytest

CMD = {"command": "srv $PORT"}
JSON = {"content-type": "application/json"}

# Python's json (FastAPI's parser) reads all of these; `1e400` overflows to infinity.
NON_FINITE = ["1e400", "-1e400", "Infinity", "-Infinity", "NaN"]
FLOAT_FIELDS = [
    ("scaling", "idle_timeout_s"),
    ("scaling", "queue_timeout_s"),
    ("scaling", "cold_start_timeout_s"),
    ("scaling", "request_timeout_s"),
]


def _raw(number: str, section: str, field: str) -> str:
    body = '{"name": "n", "container": {"command": "c"}, "SECTION": {"FIELD": NUMBER}}'
    return body.replace("SECTION", section).replace("FIELD", field).replace("NUMBER", number)


@pytest.mark.parametrize("number", NON_FINITE)
@pytest.mark.parametrize(("section", "field"), FLOAT_FIELDS)
async def test_non_finite_numbers_are_422_on_create(api, number: str, section: str, field: str) -> None:
    client, store, _ = api
    resp = await client.post("/v0/endpoints", content=_raw(number, section, field), headers=JSON)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["message"].startswith(f"{section}.{field}"), resp.text
    assert await store.list_endpoints() == []


@pytest.mark.parametrize("number", NON_FINITE)
async def test_non_finite_scale_policy_value_is_422(api, number: str) -> None:
    client, store, _ = api
    body = '{"name": "n", "container": {"command": "c"}, "scaling": {"scale_policy": {"value": N}}}'
    body = body.replace("N", number)
    resp = await client.post("/v0/endpoints", content=body, headers=JSON)
    assert resp.status_code == 422 and "scaling.scale_policy.value" in resp.json()["error"]["message"]
    assert await store.list_endpoints() == []


@pytest.mark.parametrize("number", ["1e400", "NaN"])
async def test_non_finite_numbers_are_422_on_patch_and_the_endpoint_keeps_working(api, number: str) -> None:
    client, store, _ = api
    ep = (await client.post("/v0/endpoints", json={"name": "n", "container": CMD})).json()
    before = (await store.get_endpoint(ep["id"])).spec_json
    body = '{"scaling": {"idle_timeout_s": N}}'.replace("N", number)
    resp = await client.patch(f"/v0/endpoints/{ep['id']}", content=body, headers=JSON)
    assert resp.status_code == 422 and resp.json()["error"]["message"].startswith("scaling.idle_timeout_s")
    assert (await store.get_endpoint(ep["id"])).spec_json == before
    assert (await client.get("/v0/endpoints")).status_code == 200
    assert (await client.get(f"/v0/endpoints/{ep['id']}")).status_code == 200


async def test_non_finite_usage_window_is_422(api) -> None:
    client, _, _ = api
    assert (await client.get("/v0/usage", params={"since": "inf"})).status_code == 422
    assert (await client.get("/v0/usage", params={"until": "nan"})).status_code == 422


async def test_huge_finite_timeouts_are_refused(api) -> None:
    """Finite but absurd (1e300 s) would overflow the gateway's deadline arithmetic."""
    client, _, _ = api
    resp = await client.post(
        "/v0/endpoints", json={"name": "n", "container": CMD, "scaling": {"request_timeout_s": 1e300}}
    )
    assert resp.status_code == 422 and resp.json()["error"]["message"].startswith("scaling.request_timeout_s")


BIG = "x" * 10_000_001  # 10 MB


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "n", "container": CMD, "description": BIG}, "description"),
        ({"name": BIG, "container": CMD}, "name"),
        ({"name": "n", "container": {"command": BIG}}, "container.command"),
        ({"name": "n", "container": {**CMD, "args": [BIG]}}, "container.args.0"),
        ({"name": "n", "container": {**CMD, "args": ["a"] * 1000}}, "container.args"),
        ({"name": "n", "container": {**CMD, "env": {"HF_TOKEN": BIG}}}, "container.env.HF_TOKEN"),
        ({"name": "n", "container": {**CMD, "env": {f"K{i}": "v" for i in range(1000)}}}, "container.env"),
        ({"name": "n", "container": {**CMD, "image": BIG}}, "container.image"),
        ({"name": "n", "container": {**CMD, "registry": {"password": BIG}}}, "container.registry.password"),
        ({"name": "n", "container": CMD, "served_model_name": BIG}, "served_model_name"),
        ({"name": "n", "container": CMD, "ssh_key": BIG}, "ssh_key"),
        ({"name": "n", "container": CMD, "health_check_path": "/" + BIG}, "health_check_path"),
        ({"name": "n", "container": CMD, "compute": {"region": BIG}}, "compute.region"),
        ({"name": "n", "template": {"model_name": BIG}}, "template.model_name"),
    ],
)
async def test_oversized_fields_are_422_naming_the_field(api, body: dict, field: str) -> None:
    client, store, _ = api
    resp = await client.post("/v0/endpoints", json=body)
    assert resp.status_code == 422, resp.text[:300]
    assert resp.json()["error"]["message"].startswith(field + ":"), resp.json()["error"]["message"][:300]
    assert len(resp.content) < 10_000  # the answer does not echo the input back
    assert await store.list_endpoints() == []


async def test_oversized_description_on_patch_and_secret_payload(api) -> None:
    client, store, _ = api
    ep = (await client.post("/v0/endpoints", json={"name": "n", "container": CMD})).json()
    resp = await client.patch(f"/v0/endpoints/{ep['id']}", json={"description": BIG})
    assert resp.status_code == 422 and resp.json()["error"]["message"].startswith("description")
    many = {f"K{i}": "v" for i in range(1000)}
    resp = await client.post("/v0/secrets", json={"name": "s", "payload": many})
    assert resp.status_code == 422 and resp.json()["error"]["message"].startswith("payload")
    assert await store.secrets() == []


async def test_fields_at_their_caps_are_accepted(api) -> None:
    client, _, _ = api
    body = {
        "name": "n" * 128,
        "description": "d" * 10_000,
        "container": {**CMD, "args": ["a" * 4096] * 2, "env": {"HF_TOKEN": "t" * 32_768}},
    }
    assert (await client.post("/v0/endpoints", json=body)).status_code == 201


@pytest.mark.parametrize(
    "path", ["/health\r\nX-Injected: 1", "/health\nx", "/he alth", "/health\t", "/h\x00", "/h\x7f", "health"]
)
async def test_health_check_path_with_crlf_spaces_or_controls_is_422(api, path: str) -> None:
    client, store, _ = api
    resp = await client.post("/v0/endpoints", json={"name": "n", "container": CMD, "health_check_path": path})
    assert resp.status_code == 422 and resp.json()["error"]["message"].startswith("health_check_path")
    assert await store.list_endpoints() == []


async def test_health_check_path_with_a_query_is_fine(api) -> None:
    client, _, _ = api
    body = {"name": "n", "container": CMD, "health_check_path": "/v1/models?x=1"}
    assert (await client.post("/v0/endpoints", json=body)).status_code == 201


@pytest.mark.parametrize("token", ["", "short", "x" * 15])
async def test_endpoint_token_shorter_than_16_is_422(api, token: str) -> None:
    client, store, _ = api
    body = {"name": "n", "container": CMD, "auth": {"mode": "token", "token": token}}
    resp = await client.post("/v0/endpoints", json=body)
    assert resp.status_code == 422 and resp.json()["error"]["message"].startswith("auth.token"), resp.text
    assert await store.list_endpoints() == []
    ep = (await client.post("/v0/endpoints", json={"name": "m", "container": CMD})).json()
    resp = await client.patch(f"/v0/endpoints/{ep['id']}", json={"auth": {"mode": "token", "token": token}})
    assert resp.status_code == 422 and resp.json()["error"]["message"].startswith("auth.token")


async def test_endpoint_token_of_16_is_accepted(api) -> None:
    client, _, _ = api
    body = {"name": "n", "container": CMD, "auth": {"mode": "token", "token": "x" * 16}}
    resp = await client.post("/v0/endpoints", json=body)
    assert resp.status_code == 201 and resp.json()["token"] == "x" * 16
    assert json.dumps(resp.json()["spec"]).count("x" * 16) == 0  # the spec never keeps the token
