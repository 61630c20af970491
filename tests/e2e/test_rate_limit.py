"""A platform token with `--rate-limit` gets 429 + Retry-After past its rate, on the fast and the general
path alike, on token-auth and open endpoints alike (the limit follows the token); other tokens are
unaffected."""

from __future__ import annotations

import httpx

from tests.e2e.conftest import Podium, create_fake


def test_token_rate_limit_answers_429(podium: Podium) -> None:
    ep = create_fake(podium, "limited", "--auth", "token")
    open_ep = create_fake(podium, "open")  # no auth: a limited token sent here is limited all the same
    podium.wait_state(ep["id"], "serving")
    podium.wait_state(open_ep["id"], "serving")
    limited = podium.cli_json("token", "create", "--name", "slow-app", "--scope", "inference", "--rate-limit", "3")
    free = podium.cli_json("token", "create", "--name", "fast-app", "--scope", "inference")
    assert limited["rate_limit_rpm"] == 3
    body = {"model": ep["routing_key"], "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(base_url=podium.url, timeout=10) as c:
        codes = [
            c.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {limited['token']}"})
            for _ in range(4)
        ]
        assert [r.status_code for r in codes] == [200, 200, 200, 429]
        assert int(codes[-1].headers["retry-after"]) >= 1
        assert codes[-1].json()["error"]["code"] == "rate_limit_exceeded"
        for _ in range(5):
            ok = c.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {free['token']}"})
            assert ok.status_code == 200
        open_body = {**body, "model": open_ep["routing_key"]}
        spent = c.post("/v1/chat/completions", json=open_body, headers={"Authorization": f"Bearer {limited['token']}"})
        assert spent.status_code == 429, spent.text  # its rate was spent on the other endpoint
        assert c.post("/v1/chat/completions", json=open_body).status_code == 200  # no token: not limited
