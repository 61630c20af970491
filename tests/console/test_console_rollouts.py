"""The console's views of this morning's features over a real SQLite store (in-process ASGI, the
services themselves): the Revisions tab and its Roll back / Promote buttons, revision and rollout on
the overview, the Models page with its delete (a model in use is refused, and says so), the Jobs tab
with Cancel, and prompt/completion tokens on the usage page. Signed out, every new page is the sign-in
form; read-only tokens get no buttons and a 403 on every new write."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import httpx
import pytest

from podium.api.app import create_app
from podium.api.deps import Services
from podium.catalog import Catalog
from podium.console.actions import router as actions
from podium.console.pages import router
from podium.core.specs import (
    Compute,
    ContainerSource,
    EndpointSpec,
    Rollout,
    RolloutStrategy,
    Scaling,
    TemplateSource,
)
from podium.core.stats import EngineLoad
from podium.gateway.routes import adapter_routing_key
from podium.jobs.intake import new_job_id
from podium.jobs.repo import JobRepo
from podium.jobs.tables import CANCELLED, QUEUED, SUCCEEDED, JobRow
from podium.services.endpoints import EndpointService
from podium.services.tokens import TokenService
from podium.services.usage import token_store
from podium.services.validation import SourceValidator
from podium.settings import Settings
from podium.store.db import migrate
from podium.store.repos import Store
from podium.store.tables import ReplicaRow
from podium.store.token_usage import TokenDelta
from tests.models.ggufs import gguf_bytes

ADMIN = "console-admin-token"
BEARER = {"Authorization": f"Bearer {ADMIN}"}
SECRET_ENV = "env-value-never-shown-to-readers"


@dataclass
class Console:
    c: httpx.AsyncClient
    store: Store
    endpoints: EndpointService
    eid: str
    reader: str


@pytest.fixture
async def console(tmp_path: Path) -> AsyncIterator[Console]:
    settings = Settings(data_dir=tmp_path)
    migrate(settings.db_url)
    store = Store(settings.db_url)
    tokens = TokenService(store)
    await tokens.ensure_bootstrap(ADMIN)
    _, reader = await tokens.create("viewer", ["read"])
    catalog = Catalog.load(detect_gpus=lambda: None, cpu_count=lambda: 2)
    endpoints = EndpointService(store, lambda _=None: None, SourceValidator(catalog, "local"))
    app = create_app(Services(settings, tokens, endpoints, catalog=catalog, decisions=Engines()))
    app.include_router(router)
    app.include_router(actions)
    spec = EndpointSpec(name="chat", container=ContainerSource(command="serve-v1", env={"KEY": SECRET_ENV}))
    created = await endpoints.create(spec, "container")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://podium") as c:
        yield Console(c, store, endpoints, created.record.row.id, reader)
    await store.close()


async def _sign_in(c: httpx.AsyncClient, token: str) -> None:
    c.cookies.clear()
    assert (await c.post("/console/login", data={"token": token})).status_code == 303


async def _new_revision(con: Console, command: str, canary: bool = False) -> None:
    rec = await con.endpoints.get(con.eid)
    rollout = Rollout(strategy=RolloutStrategy.CANARY) if canary else rec.spec.rollout
    container = rec.spec.container.model_copy(update={"command": command})  # type: ignore[union-attr]
    await con.endpoints.update(con.eid, rec.spec.model_copy(update={"container": container, "rollout": rollout}))


class Engines:
    """Stands in for the autoscaler's engine scrapes (`Services.decisions`), which need replicas."""

    def last_decision(self, endpoint_id: str) -> None:
        return None

    def replica_engine(self, replica_id: str) -> dict[str, Any] | None:
        return {"engine": "llamacpp", "waiting": 3, "running": 2, "kv_cache_usage": 0.42, "scraped_at": 0.0}

    def endpoint_engine(self, endpoint_id: str) -> EngineLoad | None:
        return EngineLoad(replicas=1, waiting=3, running=2, kv_cache_avg=0.42, kv_cache_max=0.42)


async def test_revisions_tab_rolls_back_and_promotes(console: Console) -> None:
    con = console
    now = time.time()
    old = ReplicaRow(id="rep-old", endpoint_id=con.eid, generation=1, state="ready", backend="local",
                     address="127.0.0.1:1", created_at=now, started_at=now, ready_at=now)  # fmt: skip
    await con.store.add_replica(old)
    await _new_revision(con, "serve-v2")
    await _sign_in(con.c, ADMIN)
    tab = await con.c.get(f"/console/endpoints/{con.eid}/revisions")
    assert tab.status_code == 200 and "container.command" in tab.text  # what changed, by field name
    assert "2 <b>(current)</b>" in tab.text and tab.text.count("Roll back to this revision") == 1
    assert "1 / 1" in tab.text  # revision 1's replica, ready
    overview = (await con.c.get(f"/console/endpoints/{con.eid}")).text
    assert (
        "Revision <b>2</b>" in overview
        and "Rolling update from revision 1 to 2: 0/0 new ready, 1 old still serving" in overview
    )
    assert "<td>rep-old</td>" not in overview and "</td><td>1</td><td>127.0.0.1:1</td>" in overview  # its revision
    assert "llamacpp: 3 waiting, 2 running, KV cache 42%" in overview  # the replica's engine
    assert "Engines (1 ready replica(s)): 3 waiting, 2 running, KV cache mean 42%" in overview

    done = await con.c.post(f"/console/endpoints/{con.eid}/revisions/rollback", data={"revision": "1"})
    assert done.status_code == 303 and done.headers["location"].endswith("?rolled=1")
    assert (await con.store.get_endpoint(con.eid)).generation == 1  # the endpoint really switched
    assert "serve-v1" in (await con.store.get_endpoint(con.eid)).spec_json
    back = (await con.c.get(done.headers["location"])).text
    assert "Rolling back to revision 1" in back and "1 <b>(current)</b>" in back

    again = await con.c.post(f"/console/endpoints/{con.eid}/revisions/rollback", data={"revision": "1"})
    shown = (await con.c.get(again.headers["location"])).text
    assert "is on revision 1 already" in shown  # the service's refusal, on the tab
    bad = await con.c.post(f"/console/endpoints/{con.eid}/revisions/rollback", data={"revision": "x"})
    assert "error=" in bad.headers["location"]

    await _new_revision(con, "serve-v3", canary=True)
    # the counts the controller saves while it judges a canary, side by side with the old revision's
    await con.store.revisions.set(con.eid, 3, requests=40, errors=2, latency_s=0.12)
    await con.store.revisions.set(con.eid, 1, requests=360, errors=0, latency_s=0.1)
    canary = (await con.c.get(f"/console/endpoints/{con.eid}/revisions")).text
    assert "Canary: revision 3" in canary and "<button>Promote</button>" in canary
    assert "revision 3 (canary): 40 req, 2 5xx (5.0%), mean 120 ms" in canary
    assert "revision 1: 360 req, 0 5xx (0.0%), mean 100 ms" in canary
    promoted = await con.c.post(f"/console/endpoints/{con.eid}/revisions/promote")
    assert promoted.headers["location"].endswith("?promoted=1")
    assert (await con.store.revisions.get(con.eid, 3)).state == "rolling"  # type: ignore[union-attr]
    after = (await con.c.get(promoted.headers["location"])).text
    assert "Canary promoted" in after and "<button>Promote</button>" not in after


async def _upload(c: httpx.AsyncClient, name: str, data: bytes, **form: str) -> dict[str, Any]:
    """One multipart request to the API (`curl -F file=@m.gguf`): the registry the page reads."""
    res = await c.post(
        "/v0/models",
        files={"file": ("m.gguf", data)},
        data={"name": name, **form},
        headers=BEARER,
    )
    assert res.status_code == 201, res.text
    return res.json()  # type: ignore[no-any-return]


async def test_models_page_lists_and_refuses_deleting_a_model_in_use(console: Console) -> None:
    con = console
    await _sign_in(con.c, ADMIN)
    assert "No models yet" in (await con.c.get("/console/models")).text
    used = await _upload(con.c, "acme/tiny", gguf_bytes("llama", pad=3000))
    spare = await _upload(con.c, "spare-model", gguf_bytes("qwen2"))
    await _upload(con.c, "acme-pirate", gguf_bytes(kind="adapter"), base="acme/tiny")  # before its base deploys
    spec = EndpointSpec(
        name="uses-it",
        template=TemplateSource(model_name="acme/tiny", flavor_name="base"),
        compute=Compute(gpu_type="cpu", gpu_count=0),
        scaling=Scaling(min_replicas=0, max_replicas=1),
    )
    dep = (await con.endpoints.create(spec, "template")).record.row.id
    listed = (await con.c.get("/console/models")).text
    for text in ("acme/tiny", "gguf", "llama", "llama.cpp", "ready", "podium model upload", dep, "KiB"):
        assert text in listed, text
    key = (await con.store.get_endpoint(dep)).routing_key
    pirate = listed.split("acme-pirate<br>")[1].split("</tr>")[0]
    assert "adapter" in pirate and adapter_routing_key(key, "acme-pirate") in pirate  # its key on that endpoint

    refused = await con.c.post(f"/console/models/{used['id']}/delete")
    assert refused.status_code == 409 and "is in use" in refused.text and dep in refused.text
    assert "acme/tiny" in (await con.c.get("/console/models")).text
    done = await con.c.post(f"/console/models/{spare['id']}/delete")
    assert done.status_code == 303 and "Model spare-model deleted" in (await con.c.get(done.headers["location"])).text
    names = [m["name"] for m in (await con.c.get("/v0/models", headers=BEARER)).json()["models"]]
    assert names == ["acme/tiny", "acme-pirate"]


def _job(endpoint_id: str, status: str, at: float) -> JobRow:
    return JobRow(
        id=new_job_id(),
        endpoint_id=endpoint_id,
        token_sha256="t" * 64,
        method="POST",
        path="/v1/chat/completions",
        content_type="application/json",
        body=b'{"messages": "job-body-never-shown"}',
        status=status,
        attempts=0,
        created_at=at,
        webhook_attempts="[]",
    )


async def test_jobs_tab_lists_and_cancels(console: Console) -> None:
    con = console
    repo = JobRepo(con.store.session)
    queued, finished = _job(con.eid, QUEUED, time.time()), _job(con.eid, QUEUED, time.time() - 5)
    await repo.submit(queued, bound=10)
    await repo.submit(finished, bound=10)
    async with con.store.session.begin() as s:  # a finished one, as a runner leaves it
        row = await s.get(JobRow, finished.id)
        assert row is not None
        row.status, row.response_status, row.finished_at = SUCCEEDED, 200, time.time()
    await _sign_in(con.c, ADMIN)
    tab = (await con.c.get(f"/console/endpoints/{con.eid}/jobs")).text
    assert queued.id in tab and finished.id in tab and "<td>200</td>" in tab
    assert tab.count(">Cancel</button>") == 1 and "job-body-never-shown" not in tab
    only = (await con.c.get(f"/console/endpoints/{con.eid}/jobs?status=succeeded")).text
    assert finished.id in only and queued.id not in only

    done = await con.c.post(f"/console/jobs/{queued.id}/cancel", data={"endpoint": con.eid})
    assert done.headers["location"].endswith(f"?cancelled={queued.id}")
    assert (await repo.get(queued.id)).status == CANCELLED  # type: ignore[union-attr]
    late = await con.c.post(f"/console/jobs/{finished.id}/cancel", data={"endpoint": con.eid})
    assert "succeeded%20already" in late.headers["location"]
    assert ">Cancel</button>" not in (await con.c.get(f"/console/endpoints/{con.eid}/jobs")).text


async def test_usage_shows_prompt_and_completion_tokens(console: Console) -> None:
    con = console
    admin = next(t for t in await con.store.tokens() if "admin" in t.scopes)
    await token_store(con.store).add([TokenDelta("gw", con.eid, admin.id, 1234, 567)], time.time())
    await _sign_in(con.c, ADMIN)
    usage = (await con.c.get("/console/usage")).text
    assert "<td>1234</td><td>567</td>" in usage and "Prompt tokens" in usage
    assert "Tokens per API token" in usage and escape(admin.name) in usage


async def test_signed_out_and_read_only(console: Console) -> None:
    con = console
    pages = (f"/console/endpoints/{con.eid}/revisions", f"/console/endpoints/{con.eid}/jobs", "/console/models")
    for path in pages:
        assert "<h1>Sign in" in (await con.c.get(path)).text, path
    await _new_revision(con, "serve-v2")
    await _sign_in(con.c, con.reader)
    for path in pages:
        got = await con.c.get(path)
        assert got.status_code == 200 and "<form" not in got.text, path  # no write offered
        assert SECRET_ENV not in got.text and ADMIN not in got.text, path
    assert SECRET_ENV not in (await con.c.get(f"/console/endpoints/{con.eid}")).text
    writes = (
        f"/console/endpoints/{con.eid}/revisions/rollback",
        f"/console/endpoints/{con.eid}/revisions/promote",
        "/console/models/any/delete",
        "/console/jobs/any/cancel",
    )
    for path in writes:
        assert (await con.c.post(path, data={"revision": "1"})).status_code == 403, path
    assert (await con.store.get_endpoint(con.eid)).generation == 2  # nothing rolled back
