"""One stored spec that no longer parses (as `1e400` stored as `null` once made) must not take the
API down: that endpoint reads as `failed` with a reason, every other endpoint keeps working."""

from __future__ import annotations

import json

CMD = {"command": "srv $PORT"}


async def _break(store, endpoint_id: str) -> None:  # type: ignore[no-untyped-def]
    """What the old bug left behind: a number stored as null."""
    row = await store.get_endpoint(endpoint_id)
    doc = json.loads(row.spec_json)
    doc["scaling"]["idle_timeout_s"] = None
    await store.update_endpoint(endpoint_id, spec_json=json.dumps(doc))


async def test_reads_show_the_bad_row_failed_and_the_others_fine(api) -> None:
    client, store, _ = api
    good = (await client.post("/v0/endpoints", json={"name": "good", "container": CMD})).json()
    bad = (await client.post("/v0/endpoints", json={"name": "bad", "container": {**CMD, "env": {"K": "v"}}})).json()
    await _break(store, bad["id"])

    listed = await client.get("/v0/endpoints")
    assert listed.status_code == 200, listed.text
    by_id = {e["id"]: e for e in listed.json()["endpoints"]}
    assert by_id[good["id"]]["status"]["state"] == good["status"]["state"]
    assert by_id[bad["id"]]["status"]["state"] == "failed"
    reason = by_id[bad["id"]]["status"]["last_error"]
    assert "stored spec cannot be read" in reason and "scaling.idle_timeout_s" in reason

    got = await client.get(f"/v0/endpoints/{bad['id']}")
    assert got.status_code == 200 and got.json()["status"]["state"] == "failed"
    assert got.json()["name"] == "bad"
    assert (await client.get(f"/v0/endpoints/{bad['id']}/events")).status_code == 200

    # everything else keeps working: create, patch, stop another endpoint
    assert (await client.post("/v0/endpoints", json={"name": "new", "container": CMD})).status_code == 201
    assert (await client.patch(f"/v0/endpoints/{good['id']}", json={"description": "d"})).status_code == 200
    assert (await client.post(f"/v0/endpoints/{good['id']}/stop")).status_code == 200
    assert (await client.get("/v0/secrets")).status_code == 200
    assert (await client.post("/v0/secrets", json={"name": "s", "payload": {"A": "b"}})).status_code == 201
    assert (await client.delete("/v0/secrets/s")).status_code in (200, 204)


async def test_the_bad_row_can_be_repaired_with_a_whole_spec_or_deleted(api) -> None:
    client, store, _ = api
    bad = (await client.post("/v0/endpoints", json={"name": "bad", "container": CMD})).json()
    await _break(store, bad["id"])
    refused = await client.post(f"/v0/endpoints/{bad['id']}/start")
    assert refused.status_code == 409 and "cannot be read" in refused.json()["error"]["message"]
    assert (await store.get_endpoint(bad["id"])).spec_json.count("null") >= 1  # start wrote nothing

    whole = {"container": CMD, "enabled": True, "compute": {"region": "elsewhere"}}  # the stand-in's region is no rule
    repaired = await client.patch(f"/v0/endpoints/{bad['id']}", json=whole)
    assert repaired.status_code == 200, repaired.text
    assert repaired.json()["status"]["last_error"] is None
    assert (await client.get(f"/v0/endpoints/{bad['id']}")).json()["spec"]["container"]["command"] == CMD["command"]

    await _break(store, bad["id"])
    assert (await client.delete(f"/v0/endpoints/{bad['id']}")).status_code == 202


async def test_dedicated_view_lists_a_bad_template_row_failed(capi) -> None:
    client, store, _ = capi
    ep = await client.post("/v0/dedicated_endpoints", json={"name": "d", "model_name": "big/llm", "gpu_count": 1})
    assert ep.status_code == 201, ep.text
    await _break(store, ep.json()["id"])
    listed = await client.get("/v0/dedicated_endpoints")
    assert listed.status_code == 200 and [e["state"] for e in listed.json()["endpoints"]] == ["failed"]
    got = await client.get(f"/v0/dedicated_endpoints/{ep.json()['id']}")
    assert got.status_code == 200 and got.json()["status"]["last_error"].startswith("stored spec cannot be read")


async def test_not_json_at_all_is_also_just_failed(api) -> None:
    client, store, _ = api
    bad = (await client.post("/v0/endpoints", json={"name": "bad", "container": CMD})).json()
    await store.update_endpoint(bad["id"], spec_json="{not json")
    listed = await client.get("/v0/endpoints")
    assert listed.status_code == 200 and listed.json()["endpoints"][0]["status"]["state"] == "failed"


async def test_a_bad_row_with_odd_columns_is_still_just_failed(api) -> None:
    client, store, _ = api
    bad = (await client.post("/v0/endpoints", json={"name": "bad", "container": CMD})).json()
    await store.update_endpoint(bad["id"], spec_json="[]", name="n" * 300)
    got = await client.get(f"/v0/endpoints/{bad['id']}")
    assert got.status_code == 200 and got.json()["status"]["state"] == "failed"
