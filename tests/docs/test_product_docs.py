"""The product documents' snippets, run verbatim against a real `podium up`.

Only the host, the token and ids are substituted: the dedicated-endpoints documents' Python
(templates, create, PATCH with and without `enabled`, list, DELETE) against a Podium whose operator
declared the documents' regions `eu-north1`, `eu-west1` and `us-central1`, and the serverless
document's recipe for calling a replica by its IP (`get --format json | jq -r
'.status.instances[0].public_ip'`, then `curl http://<ip>/v1/chat/completions`).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import PYTHON, free_port
from tests.e2e.conftest import ADMIN, Podium, create_fake, start_podium, stop_podium

pytestmark = pytest.mark.e2e

DOCS = Path(os.environ.get("PODIUM_PRODUCT_DOCS", Path(__file__).parent / "product_docs"))  # copies, as published
DOC_HOST = "https://api.tokenfactory.nebius.com"
OPERATOR_REGIONS = """
regions:
  - name: eu-north1
    inventory: {gpus: {h100: 4}, cpu_slots: 4}
  - name: eu-west1
    inventory: {gpus: {}, cpu_slots: 2}
  - name: us-central1
    inventory: {gpus: {l40s: 1}, cpu_slots: 2}
"""


def _docs() -> dict[str, str]:
    """name -> text of every product document (missing documents fail: they ship with the tests)."""
    files = sorted(DOCS.glob("*.txt")) if DOCS.is_dir() else []
    assert files, f"product documents not found in {DOCS}"
    return {f.name: f.read_text() for f in files}


def python_snippets(text: str) -> list[str]:
    """Every Python snippet of a document, fenced (```python) or pasted as plain text: from an
    `import os` line, the longest run of lines that compiles (the prose after it does not)."""
    lines = [line.replace("\t", "    ") for line in text.splitlines()]
    out = []
    for start, line in enumerate(lines):
        if not line.strip().startswith("import os"):
            continue
        indent = len(line) - len(line.lstrip())
        block = [ln[indent:] if ln[:indent].isspace() else ln for ln in lines[start:]]
        for end in range(len(block), 0, -1):
            source = "\n".join(block[:end]).strip("\n")
            try:
                compile(source, "<doc>", "exec")
            except SyntaxError:
                continue
            out.append(source + "\n")
            break
    return out


def _kind(snippet: str) -> str:
    """templates, create, patch, list, delete or inference: which call a snippet makes."""
    if "OpenAI(" in snippet:
        return "inference"
    for verb in ("post", "patch", "delete"):
        if f"requests.{verb}(" in snippet:
            return {"post": "create"}.get(verb, verb)
    return "templates" if "/templates" in snippet else "list"


@pytest.fixture(scope="module")
def snippets() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for text in _docs().values():
        for snippet in python_snippets(text):
            out.setdefault(_kind(snippet), [])
            if snippet not in out[_kind(snippet)]:
                out[_kind(snippet)].append(snippet)
    return out


@pytest.fixture
def regional_podium(tmp_path: Path) -> Iterator[Podium]:
    data_dir = tmp_path / "data"
    (data_dir / "catalog").mkdir(parents=True)
    (data_dir / "catalog" / "regions.yaml").write_text(OPERATOR_REGIONS)
    p = start_podium(data_dir, free_port())
    try:
        yield p
    finally:
        stop_podium(p)


def run_snippet(p: Podium, snippet: str, **ids: str) -> subprocess.CompletedProcess[str]:
    """The snippet as written; only the host and the `<endpoint_id>`-style placeholders change, and
    the token comes from API_TOKEN, as the documents say."""
    source = snippet.replace(DOC_HOST, p.url)
    for name, value in ids.items():
        source = source.replace(f"<{name}>", value)
    env = {**os.environ, "API_TOKEN": ADMIN}
    return subprocess.run([PYTHON, "-c", source], env=env, capture_output=True, text=True, timeout=60)


def _ok(res: subprocess.CompletedProcess[str]) -> str:
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


def test_dedicated_snippets_run_verbatim(regional_podium: Podium, snippets: dict[str, list[str]]) -> None:
    p = regional_podium
    assert {"templates", "create", "patch", "list", "delete"} <= set(snippets), sorted(snippets)
    assert any('"enabled": True' in s for s in snippets["patch"]), "the PATCH with enabled is tested"

    templates = json.loads(_ok(run_snippet(p, snippets["templates"][0])))["templates"]
    offered = [t for t in templates if t["model_name"] == "openai/gpt-oss-20b" and t["flavor_name"] == "base"]
    assert any("gpu-h100-sxm" in t["platforms"] and "eu-north1" in t["regions"] for t in offered)

    created = json.loads(_ok(run_snippet(p, snippets["create"][0])))
    endpoint_id = created["endpoint_id"]
    assert created["routing_key"] and created["gpu_type"] == "h100" and created["region"] == "eu-north1"

    for patch in snippets["patch"]:
        patched = json.loads(_ok(run_snippet(p, patch, endpoint_id=endpoint_id)))
        assert patched["name"] == "GPT-20B Endpoint (updated)" and patched["enabled"] is True
        assert (patched["scaling"]["min_replicas"], patched["scaling"]["max_replicas"]) == (2, 4)

    listed = json.loads(_ok(run_snippet(p, snippets["list"][0])))["endpoints"]
    assert [e["endpoint_id"] for e in listed] == [endpoint_id]

    out = _ok(run_snippet(p, snippets["delete"][0], endpoint_id=endpoint_id))
    assert out.strip().splitlines()[0] in ("200", "202")


def test_documents_payload_elsewhere(regional_podium: Podium, snippets: dict[str, list[str]]) -> None:
    """The verbatim create payload where the region has no H100 is the capacity 409 (never an
    unknown-value 422); an undeclared region is a 422 listing the declared ones."""
    p = regional_podium
    create = snippets["create"][0]
    for region in ("eu-west1", "us-central1"):
        res = run_snippet(p, create.replace('"region": "eu-north1"', f'"region": "{region}"'))
        assert res.returncode != 0 and "409 Client Error" in res.stderr, res.stderr
    res = run_snippet(p, create.replace('"region": "eu-north1"', '"region": "mars-1"'))
    assert "422 Client Error" in res.stderr
    with p.http() as h:
        body = {"name": "x", "model_name": "openai/gpt-oss-20b", "gpu_type": "gpu-h100-sxm", "region": "mars-1"}
        refused = h.post("/v0/dedicated_endpoints", json=body).json()["error"]
    assert "regions: eu-north1, eu-west1, local, us-central1" in refused["message"]


def _bash_blocks(text: str) -> list[str]:
    return [re.sub(r"^ {0,12}", "", b, flags=re.M) for b in re.findall(r"```bash[^\n]*\n(.*?)```", text, re.S)]


def test_calling_a_replica_by_its_ip(tmp_path: Path) -> None:
    """The serverless document: `get --format json | jq -r '.status.instances[0].public_ip'`, then
    `curl "http://<endpoint_IP_address>/v1/chat/completions"` answers."""
    serverless = next(t for t in _docs().values() if "instances[0].public_ip" in t)
    blocks = _bash_blocks(serverless)
    get = next(b for b in blocks if "public_ip" in b)
    curl = next(b for b in blocks if "/v1/chat/completions" in b and b.lstrip().startswith("curl"))
    p = start_podium(tmp_path / "data", free_port())
    try:
        token = "doc-endpoint-token-0123456789"
        ep = create_fake(p, "my-chatbot", "--auth", "token", "--token", token)
        p.wait_state(ep["id"], "serving")
        cli = f"{PYTHON} -m podium.cli.main"
        script = "\n".join(
            [
                "set -euo pipefail",
                "IP=$(" + get.strip().replace("nebius ai", cli).replace("<endpoint_ID>", ep["id"]) + ")",
                'echo "ip=$IP"',
                curl.strip().replace("<endpoint_IP_address>", "$IP").replace("<token>", token),
            ]
        )
        res = subprocess.run(["bash", "-c", script], env=p.env, capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stdout + res.stderr
        reply = json.loads(res.stdout.split("\n", 1)[1])
        assert reply["choices"][0]["message"]["content"], res.stdout
        ip = res.stdout.split("\n", 1)[0].removeprefix("ip=")
        assert httpx.get(f"http://{ip}/health", timeout=5).status_code == 200
    finally:
        stop_podium(p)
