"""One admission step (route + auth + rate) for the fast and the general path: each request once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from podium.gateway.auth import TokenBook
from podium.gateway.routes import EndpointRoute, PlatformToken
from tests.gateway.conftest import FakeReplica, Harness, make_route, sha

CHAT = {"model": "my-model", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def auth_checks(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every TokenBook.allows call, by endpoint: how many times a request was checked."""
    calls: list[str] = []
    allows = TokenBook.allows

    def counting(self: TokenBook, route: EndpointRoute, digest: str | None) -> bool:
        calls.append(route.endpoint_id)
        return allows(self, route, digest)

    monkeypatch.setattr(TokenBook, "allows", counting)
    yield calls


async def test_each_request_is_checked_once_on_either_path(
    harness: Harness, replica: FakeReplica, auth_checks: list[str]
) -> None:
    harness.gateway.set_route(make_route([replica], auth_token_sha256=sha("secret")))
    good = {"authorization": "Bearer secret"}
    async with harness.client() as c:
        # the first request finds no pooled connection: admitted by the fast handler, answered by the general path
        assert (await c.post("/v1/chat/completions", json=CHAT, headers=good)).status_code == 200
        assert harness.gateway.fast_hits == 0 and auth_checks == ["ep-test"]
        assert (await c.post("/v1/chat/completions", json=CHAT, headers=good)).status_code == 200
        assert harness.gateway.fast_hits == 1 and len(auth_checks) == 2
        bad = await c.post("/v1/chat/completions", json=CHAT, headers={"authorization": "Bearer nope"})
        assert bad.status_code == 401 and bad.json()["error"]["type"] == "authentication_error"
        assert len(auth_checks) == 3
    assert harness.gateway.stats()["ep-test"].in_flight == 0


async def test_a_rate_limited_token_is_relayed_fast_and_charged_once(harness: Harness, replica: FakeReplica) -> None:
    harness.gateway.set_platform_tokens([PlatformToken("tok-lim", sha("limited"), frozenset({"inference"}), 3)])
    harness.gateway.set_route(make_route([replica]))
    headers = {"authorization": "Bearer limited"}
    async with harness.client() as c:
        codes = [(await c.post("/v1/chat/completions", json=CHAT, headers=headers)).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]  # a burst of 3 rpm: three pass, each charged once
    assert harness.gateway.fast_hits == 2  # the first opened the pooled connection; the next two were relayed
