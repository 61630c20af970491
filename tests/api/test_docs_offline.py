"""`/v0/docs` works on a machine that reaches no network: the page names no other host, and the
Swagger UI files it loads are served by Podium itself."""

from __future__ import annotations

import re

import httpx


def asset_urls(html: str) -> list[str]:
    """Every URL the page loads or links (src, href, and the JS's `url:`)."""
    pairs = re.findall(r"""(?:src|href)=["']([^"']+)["']|url:\s*['"]([^'"]+)['"]""", html)
    return [a or b for a, b in pairs]


async def check_docs(client: httpx.AsyncClient) -> None:
    page = await client.get("/v0/docs", headers={"Authorization": ""})
    assert page.status_code == 200 and "swagger" in page.text.lower()
    assert not re.search(r"https?://", page.text), "the docs page names another host"
    urls = asset_urls(page.text)
    assert any(u.endswith("swagger-ui-bundle.js") for u in urls) and any(u.endswith(".css") for u in urls)
    for url in urls:
        assert url.startswith("/"), url
        res = await client.get(url)
        assert res.status_code == 200 and res.content, url


async def test_docs_page_and_assets_are_local(api) -> None:
    client, _, _ = api
    await check_docs(client)
