"""Fuzz every operation of the control plane from its own OpenAPI schema: no input may cause a 5xx.

In-process (ASGI), real SQLite, an admin token so requests get past auth into validation and the
services; a bounded number of examples per operation keeps it to a few seconds.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from podium.api.app import create_app
from podium.api.deps import Services
from podium.runtime.fake import FakeBackend
from podium.services.endpoints import EndpointService
from podium.services.tokens import TokenService, sha256_hex
from podium.services.validation import SourceValidator
from podium.settings import Settings
from podium.store.db import migrate
from podium.store.repos import Store
from tests.api.fake_catalog import FakeCatalog

ADMIN = "fuzz-admin-token"


def _bootstrap_admin(db: Path) -> None:
    """Sync insert: the app's event loop (run by the test client) must own the async engine."""
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO tokens (id, name, scopes, sha256, created_at) VALUES (?, ?, ?, ?, ?)",
            ("tok-fuzz", "fuzz", "admin", sha256_hex(ADMIN), time.time()),
        )


@pytest.fixture(scope="module")
def fuzz_schema(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    data_dir = tmp_path_factory.mktemp("fuzz")
    conf = Settings(data_dir=data_dir, admin_token=ADMIN)
    migrate(conf.db_url)
    _bootstrap_admin(data_dir / "podium.db")
    store = Store(conf.db_url)
    catalog = FakeCatalog()
    endpoints = EndpointService(store, lambda _id=None: None, SourceValidator(catalog, "local"))
    app = create_app(Services(conf, TokenService(store), endpoints, catalog=catalog, runtime=FakeBackend()))
    return schemathesis.openapi.from_asgi("/v0/openapi.json", app)


def _seed(app: Any) -> list[str]:
    """Objects whose names the fuzzer may put in paths, so PATCH/DELETE/versions reach real rows."""
    keys = ["seed-ep", "seed-secret", "seed-secret@1", "seed-vol", "local"]
    with TestClient(app, headers={"Authorization": f"Bearer {ADMIN}"}) as client:
        for path, body in (
            ("/v0/secrets", {"name": "seed-secret", "payload": {"AUTH_TOKEN": "t", "HF_TOKEN": "h"}}),
            ("/v0/volumes", {"name": "seed-vol"}),
            (
                "/v0/endpoints",
                {
                    "name": "seed",
                    "app_name": "seed-ep",
                    "container": {"command": "srv $PORT", "env_secrets": {"HF_TOKEN": "seed-secret"}},
                    "volumes": [{"source": "seed-vol", "container_path": "/data"}],
                    "scaling": {"min_replicas": 0, "max_replicas": 2},
                },
            ),
            ("/v0/dedicated_endpoints", {"name": "seed-dedicated", "model_name": "tiny/chat"}),
        ):
            resp = client.post(path, json=body)
            assert resp.status_code == 201, (path, resp.text)
        keys.append(resp.json()["endpoint_id"])
    return keys


def test_no_server_errors(fuzz_schema: schemathesis.BaseSchema) -> None:
    """Each operation in turn, deletes last (schemathesis' pytest plugin does not run on pytest 9)."""
    seeds = _seed(fuzz_schema.app)
    operations = sorted((r.ok() for r in fuzz_schema.get_all_operations()), key=lambda op: op.method == "delete")
    assert len(operations) >= 25  # every router is in the schema
    for operation in operations:
        cases = st.one_of(  # well-formed inputs, and inputs that break the schema on purpose
            operation.as_strategy(), operation.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE)
        )
        run = given(case=cases, seed=st.sampled_from([None, *seeds]))(_check)
        settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)(run)()


def _check(case: schemathesis.Case, seed: str | None) -> None:
    if seed is not None and case.path_parameters:
        case.path_parameters = {k: seed for k in case.path_parameters}
    response = case.call(headers={"Authorization": f"Bearer {ADMIN}"})
    assert response.status_code < 500, f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text}"
    if response.status_code >= 400:
        error = response.json()["error"]
        assert error["code"] and error["message"], response.text


def test_every_operation_wants_a_token_and_writes_want_admin(fuzz_schema: schemathesis.BaseSchema) -> None:
    """The error table for auth, over the whole schema: no token 401, a read token writing 403."""
    with TestClient(fuzz_schema.app) as client:
        admin = {"Authorization": f"Bearer {ADMIN}"}
        reader = client.post("/v0/tokens", json={"name": "r", "scopes": ["read"]}, headers=admin).json()["token"]
        for result in fuzz_schema.get_all_operations():
            op = result.ok()
            path = op.path.format(**{p.name: "x" for p in op.path_parameters})
            for headers, expected in (({}, 401), ({"Authorization": "Bearer nope"}, 401)):
                resp = client.request(op.method.upper(), path, headers=headers, json={})
                assert resp.status_code == expected, (op.method, path, resp.status_code)
                assert resp.json()["error"]["code"] == "unauthorized"
            read = client.request(op.method.upper(), path, headers={"Authorization": f"Bearer {reader}"}, json={})
            if op.method.upper() == "GET" and op.path != "/v0/tokens":
                assert read.status_code != 403, (op.method, path)
            else:
                assert read.status_code == 403, (op.method, path, read.status_code)
