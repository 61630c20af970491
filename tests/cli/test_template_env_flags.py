"""CLI flags for a template endpoint's env secrets (issue 18: gated models need HF_TOKEN)."""

from __future__ import annotations

from podium.cli.spec_flags import build_spec


def test_endpoint_create_flags_give_a_template_env_secrets() -> None:
    """`podium endpoint create --template M --env-secret HF_TOKEN=hf-token`: the template's, not a container's."""
    doc = build_spec({"template": "m/n", "env_secret": ["HF_TOKEN=hf-token"]}, True)
    assert doc == {"template": {"model_name": "m/n", "flavor_name": "base", "env_secrets": {"HF_TOKEN": "hf-token"}}}
    assert build_spec({"image": "x", "env_secret": ["A=b"]}, True)["container"]["env_secrets"] == {"A": "b"}
