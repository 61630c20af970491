"""Property: any well-formed endpoint spec, valid or not in context (unknown secrets, volumes,
platforms, capacity), gets 201, 409 or 422 — never a 5xx — and what was accepted reads back as sent.

Schema fuzzing rarely produces a spec that passes validation; this drives the services behind it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from tests.api.test_fuzz import ADMIN, fuzz_schema  # noqa: F401 (the fixture that builds the app)

NAMES = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
SELECTORS = st.sampled_from(["seed-secret", "seed-secret@1", "seed-secret:HF_TOKEN", "missing", "seed-secret@9"])
SOURCES = st.sampled_from(["seed-vol", "/tmp", "s3://bucket", "no-such-volume"])
COMPUTE = st.fixed_dictionaries(
    {},
    optional={
        "platform": st.sampled_from(["gpu-h100-sxm", "cpu-e2", "gpu-zz"]),
        "preset": st.sampled_from(["1gpu-16vcpu-200gb", "2gpu-32vcpu-400gb", "4vcpu-16gb", "nope"]),
        "gpu_type": st.sampled_from(["cpu", "h100", "l40s"]),
        "gpu_count": st.integers(0, 3),
        "region": st.sampled_from(["local", "eu", "mars"]),
    },
)
SPECS = st.fixed_dictionaries(
    {
        "name": NAMES,
        "container": st.fixed_dictionaries(
            {"command": st.just("srv $PORT")},
            optional={
                "env": st.dictionaries(st.sampled_from(["A", "B_1", "_C"]), st.text(max_size=5), max_size=2),
                "env_secrets": st.dictionaries(st.sampled_from(["HF_TOKEN", "OTHER"]), SELECTORS, max_size=2),
            },
        ),
    },
    optional={
        "compute": COMPUTE,
        "scaling": st.fixed_dictionaries({"min_replicas": st.integers(0, 3), "max_replicas": st.integers(3, 5)}),
        "volumes": st.lists(
            st.fixed_dictionaries({"source": SOURCES, "container_path": st.sampled_from(["/data", "/m"])}), max_size=2
        ),
        "auth": st.one_of(
            st.just({"mode": "token"}),
            st.fixed_dictionaries({"mode": st.just("token"), "token_secret": SELECTORS}),
            st.just({"mode": "none", "token": "x"}),
        ),
        "enabled": st.booleans(),
    },
)


@pytest.fixture(scope="module")
def client(fuzz_schema) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]  # noqa: F811
    with TestClient(fuzz_schema.app, headers={"Authorization": f"Bearer {ADMIN}"}) as c:
        c.post("/v0/secrets", json={"name": "seed-secret", "payload": {"AUTH_TOKEN": "t", "HF_TOKEN": "h"}})
        c.post("/v0/volumes", json={"name": "seed-vol"})
        yield c


@given(spec=SPECS, patch=st.fixed_dictionaries({}, optional={"compute": COMPUTE, "volumes": st.just([])}))
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_any_spec_is_accepted_or_refused_cleanly(
    client: TestClient, spec: dict[str, Any], patch: dict[str, Any]
) -> None:
    created = client.post("/v0/endpoints", json=spec)
    assert created.status_code in (201, 409, 422), created.text
    if created.status_code != 201:
        assert created.json()["error"]["message"]
        return
    ep = created.json()
    got = client.get(f"/v0/endpoints/{ep['id']}").json()
    assert got["spec"]["name"] == spec["name"] and got["spec"]["volumes"] == ep["spec"]["volumes"]
    patched = client.patch(f"/v0/endpoints/{ep['id']}", json=patch)
    assert patched.status_code in (200, 409, 422), patched.text
    assert client.delete(f"/v0/endpoints/{ep['id']}").status_code == 202  # release the reservation
