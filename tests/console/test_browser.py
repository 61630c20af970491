"""The console in a real browser: Playwright drives Debian's chromium against a real `podium up`,
through sign in, deploy a container endpoint, watch it become serving (live, no reload), chat in
the playground, read its logs, look at the charts, change scaling, create and revoke a token, a
read-only token's view (no buttons, 403 on a write), an async job on the Jobs tab, a rollback from
the Revisions tab, the Models page, and delete with confirmation. Every page is
screenshotted at 1280x800 (and the main ones at 390x844) into $PODIUM_TEST_ARTIFACTS (else a tmp
dir); forms are checked for labels and pages for horizontal overflow at phone width.

Needs `bash scripts/ci-browser.sh` (chromium + playwright); under CI=true a missing one fails."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port
from tests.e2e.conftest import ADMIN, Podium, assert_no_replicas_left, fake_worker_command, start_podium, stop_podium

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 30_000  # the longest any condition may take (a replica start on a busy 2-core box)

pytestmark = pytest.mark.slow

sync_api = pytest.importorskip("playwright.sync_api", reason="run scripts/ci-browser.sh")
if not Path(CHROMIUM).exists():
    pytest.skip("no /usr/bin/chromium: run scripts/ci-browser.sh", allow_module_level=True)


@pytest.fixture
def podium(tmp_path: Path) -> Iterator[Podium]:
    p = start_podium(tmp_path / "data", free_port())
    try:
        yield p
    finally:
        stop_podium(p)
        assert_no_replicas_left(p.mark)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    where = Path(os.environ.get("PODIUM_TEST_ARTIFACTS") or tmp_path) / "console"
    where.mkdir(parents=True, exist_ok=True)
    return where


@pytest.fixture
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


class Checks:
    """Screenshots plus the accessibility checks every page gets."""

    def __init__(self, page: Any, where: Path) -> None:
        self.page, self.where = page, where

    def shot(self, name: str) -> None:
        unlabelled = self.page.evaluate(
            """() => [...document.querySelectorAll('input:not([type=hidden]),select,textarea')]
                 .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).map(e => e.name)"""
        )
        assert unlabelled == [], f"{name}: fields without a label: {unlabelled}"
        width = self.page.viewport_size["width"]
        self.page.screenshot(path=str(self.where / f"{name}-{width}.png"), full_page=True)
        if width < 600:
            wide = self.page.evaluate("() => document.documentElement.scrollWidth")
            assert wide <= width + 1, f"{name}: page is {wide}px wide at {width}px"

    def phone(self, name: str) -> None:
        self.page.set_viewport_size({"width": 390, "height": 844})
        self.shot(name)
        self.page.set_viewport_size({"width": 1280, "height": 800})


def test_console_flows_in_a_browser(podium: Podium, browser: Any, shots: Path) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.set_default_timeout(WAIT_MS)
    check = Checks(page, shots)
    expect = sync_api.expect
    outside = _offline(page)

    # sign in, by keyboard only: the token field has focus, Enter submits
    page.goto(podium.url + "/")
    assert page.locator("header a", has_text="Tokens").count() == 0  # signed out: no signed-in links
    check.shot("sign-in")
    page.keyboard.type(ADMIN)
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("Endpoints")
    check.shot("endpoints-empty")

    # deploy a container endpoint from the form
    page.get_by_role("link", name="New container endpoint").click()
    page.get_by_label("Name", exact=True).fill("web-chat")
    page.get_by_label("Command (entrypoint)").fill(fake_worker_command())
    page.get_by_label("Environment", exact=True).fill(f"PODIUM_TEST_MARK={podium.mark}")
    check.shot("create-container")
    check.phone("create-container")
    page.get_by_role("button", name="Create endpoint").click()
    expect(page.locator("h1")).to_contain_text("web-chat")
    endpoint_url = page.url
    eid = endpoint_url.rstrip("/").rsplit("/", 1)[1]

    # it becomes serving while the page stays loaded (live refresh, not a reload)
    page.evaluate("() => { window.notReloaded = true; }")
    expect(page.locator("#ep-state [data-state=serving]")).to_be_visible()
    assert page.evaluate("() => window.notReloaded") is True
    expect(page.locator("#ep-replicas")).to_contain_text("ready")
    check.shot("endpoint")
    check.phone("endpoint")
    page.goto(podium.url + "/")
    expect(page.locator("#ep-table [data-state=serving]")).to_be_visible()
    check.shot("endpoints")
    page.goto(endpoint_url)

    # chat in the playground, reached by keyboard: Tab to the tab link, Enter
    _tab_to(page, "Playground")
    page.keyboard.press("Enter")
    page.get_by_label("Message").fill("hello from the browser")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#chat-log .msg.reply")).to_be_visible()
    assert "$PODIUM_API_TOKEN" in page.locator("#snippet-0").inner_text()
    assert podium.url in page.locator("#snippet-1").inner_text()
    check.shot("playground")
    check.phone("playground")

    # read its logs (followed: the text arrives by polling)
    page.get_by_role("link", name="Logs").click()
    expect(page.locator("#logs")).to_contain_text("fake worker serving")
    check.shot("logs")

    # charts: the chat above shows up as a request in /metrics
    page.get_by_role("link", name="Charts").click()
    expect(page.locator("#ep-charts figure")).to_have_count(6)
    expect(page.locator("#ep-charts figure", has_text="Latency p50")).not_to_contain_text("no data yet")
    expect(page.locator("#ep-charts figure", has_text="Requests/s").locator("polyline")).to_be_attached()
    check.shot("charts")

    # change scaling in place
    page.get_by_role("link", name="Scaling").click()
    page.get_by_label("Max replicas").fill("3")
    page.get_by_role("button", name="Save scaling").click()
    expect(page.get_by_role("status")).to_contain_text("Scaling saved")
    with podium.http() as h:
        assert h.get(f"/v0/endpoints/{eid}").json()["spec"]["scaling"]["max_replicas"] == 3
    check.shot("scaling")
    _jobs_revisions_models(page, podium, eid, check)

    # create a token (shown once), use it read-only, then revoke it
    page.get_by_role("link", name="Tokens").click()
    page.get_by_label("Name").fill("viewer")
    page.get_by_label("inference").uncheck()
    page.get_by_label("read", exact=True).check()
    page.get_by_role("button", name="Create token").click()
    value = page.locator("#new-token").inner_text().strip()
    assert value.startswith("pdm"), value
    check.shot("token-created")
    check.phone("token-created")
    page.goto(podium.url + "/console/tokens")
    assert value not in page.content()  # shown once
    _read_only_view(page, podium, value, endpoint_url, eid, check)
    page.goto(podium.url + "/console/tokens")
    row = page.locator("tr", has_text="viewer")
    row.locator("summary").click()
    row.get_by_role("button", name="Yes, revoke viewer").click()
    expect(page.locator("tr", has_text="viewer")).to_have_count(0)
    assert httpx.get(f"{podium.url}/v0/endpoints", headers={"Authorization": f"Bearer {value}"}).status_code == 401
    for name in ("secrets", "volumes", "usage", "deploy"):
        page.goto(f"{podium.url}/console/{name}")
        check.shot(name)

    # delete, with a confirmation first
    page.goto(endpoint_url)
    page.get_by_role("link", name="Delete…").click()
    check.shot("confirm-delete")
    page.get_by_role("button", name=re.compile("Yes, delete")).click()
    expect(page.locator("h1")).to_have_text("Endpoints")
    expect(page.locator("#ep-table")).not_to_contain_text("web-chat")  # gone, live
    check.phone("endpoints")

    # the API page works offline: Swagger UI renders with every request kept on this machine
    page.goto(podium.url + "/v0/docs")
    expect(page.locator(".swagger-ui .info")).to_be_visible()
    check.shot("api-docs")
    assert outside == [], f"requests that left the machine: {outside}"


def _jobs_revisions_models(page: Any, podium: Podium, eid: str, check: Checks) -> None:
    """An async job shows on the Jobs tab with its status code; a new revision is rolled back from
    the Revisions tab (the API then says revision 1); the Models page renders."""
    expect = sync_api.expect
    with podium.http() as h:
        key = h.get(f"/v0/endpoints/{eid}").json()["routing_key"]
        body = {"model": key, "messages": [{"role": "user", "content": "a job"}]}
        job = h.post("/v1/chat/completions", json=body, headers={"Prefer": "respond-async"}).json()["id"]
        deadline = time.monotonic() + WAIT_MS / 1000
        while h.get(f"/jobs/{job}").json()["status"] != "succeeded":
            assert time.monotonic() < deadline, "the job did not finish"
            time.sleep(0.1)
    page.get_by_role("link", name="Jobs").click()
    expect(page.locator("tr", has_text=job)).to_contain_text("succeeded")
    expect(page.locator("tr", has_text=job)).to_contain_text("200")
    check.shot("jobs")

    with podium.http() as h:
        env = {**h.get(f"/v0/endpoints/{eid}").json()["spec"]["container"]["env"], "CONSOLE_REVISION": "2"}
        assert h.patch(f"/v0/endpoints/{eid}", json={"container": {"env": env}}).json()["status"]["revision"] == 2
    page.get_by_role("link", name="Revisions").click()
    expect(page.locator("tr", has_text="container.env")).to_contain_text("(current)")
    check.shot("revisions")
    check.phone("revisions")
    page.locator("tr", has_text="created").get_by_role("button", name="Roll back to this revision").click()
    expect(page.get_by_role("status").first).to_contain_text("Rolling back to revision 1")
    with podium.http() as h:
        assert h.get(f"/v0/endpoints/{eid}").json()["status"]["revision"] == 1
    page.goto(f"{podium.url}/console/models")
    expect(page.locator("h1")).to_have_text("Models")
    check.shot("models")


def _offline(page: Any) -> list[str]:
    """Abort (and list) every request not to 127.0.0.1: no page may need a CDN."""
    outside: list[str] = []

    def route(r: Any) -> None:
        url = r.request.url
        if url.startswith(("http://127.0.0.1:", "data:")):
            r.continue_()
        else:
            outside.append(url)
            r.abort()

    page.route("**/*", route)
    return outside


def _tab_to(page: Any, text: str, presses: int = 40) -> None:
    """Press Tab until the focused element's text is `text` (bounded): keyboard navigation works."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.textContent.trim()") == text:
            return
    raise AssertionError(f"{text!r} is not reachable with Tab")


def _read_only_view(page: Any, podium: Podium, token: str, endpoint_url: str, eid: str, check: Checks) -> None:
    """A read-scoped token sees the endpoint, no buttons, no env values; a write answers 403."""
    page.goto(podium.url + "/console/logout")
    page.get_by_label(re.compile("Token")).fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.goto(endpoint_url)
    sync_api.expect(page.locator("h1")).to_contain_text("web-chat")
    assert page.get_by_role("button").count() == 0 and page.get_by_role("link", name="Delete…").count() == 0
    assert podium.mark not in page.content()  # env values are for admins only
    check.shot("read-only-endpoint")
    status = page.evaluate(
        """async (url) => (await fetch(url, {method: 'POST', body: new URLSearchParams({confirm: 'yes'})})).status""",
        f"{podium.url}/console/endpoints/{eid}/delete",
    )
    assert status == 403
    page.goto(podium.url + "/console/logout")
    page.get_by_label(re.compile("Token")).fill(ADMIN)
    page.get_by_role("button", name="Sign in").click()
    sync_api.expect(page.locator("h1")).to_have_text("Endpoints")
