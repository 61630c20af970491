"""The real `openai` client against the gateway: what users run."""

from __future__ import annotations

import openai
import pytest

from tests.gateway.conftest import ENDPOINT_TOKEN, FakeReplica, Harness, make_route, sha


async def test_openai_client_chat_stream_models_and_errors(harness: Harness, replica: FakeReplica) -> None:
    harness.gateway.set_route(
        make_route([replica], auth_token_sha256=sha(ENDPOINT_TOKEN), served_model_name="served/name")
    )
    client = openai.AsyncOpenAI(base_url=f"{harness.url}/v1", api_key=ENDPOINT_TOKEN, max_retries=0)
    try:
        reply = await client.chat.completions.create(model="my-model", messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content == "hello"
        assert reply.model == "served/name"  # the replica saw the rewritten name
        stream = await client.chat.completions.create(
            model="my-model", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        pieces = [c.choices[0].delta.content async for c in stream if c.choices]
        assert pieces == ["tok0 ", "tok1 ", "tok2 "]
        models = await client.models.list()
        assert [m.id for m in models.data] == ["my-model"]
        with pytest.raises(openai.NotFoundError):
            await client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
        bad = openai.AsyncOpenAI(base_url=f"{harness.url}/v1", api_key="wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError) as info:
            await bad.chat.completions.create(model="my-model", messages=[{"role": "user", "content": "x"}])
        assert "API key" in str(info.value)
        await bad.close()
    finally:
        await client.close()
