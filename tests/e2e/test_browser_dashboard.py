"""The dashboard in a real Chromium (Playwright) against the real oidc-provider test IdP.

An admin (by the `groups` roles claim) signs in, installs `echo` from the catalog, reads its consent
page and approves, creates a profile and reads its one-time token from the page; an MCP client with
that token sees `echo_echo` and calls it, and the call shows on the Audit page. Every page is
screenshotted at 1280 and 390 px wide into `test-artifacts/browser/`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.gateway import REPO, Gateway, RawSession
from tests.support.idp import Idp, IdpUnavailable, oidc_gateway

pytestmark = [pytest.mark.root, pytest.mark.node, pytest.mark.slow]
CHROMIUM = os.environ.get("GIG_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts" / "browser"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, Idp]]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (scripts/test installs the Debian package)")
    pytest.importorskip("playwright.sync_api", reason="pip install playwright (dev extra)")
    try:
        with oidc_gateway(tmp_path_factory.mktemp("browser"), install="") as pair:
            yield pair
    except IdpUnavailable as exc:
        pytest.skip(str(exc))


def _shoot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for label, (width, height) in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(ARTIFACTS / f"{name}-{label}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def _browser_flow(gw: Gateway) -> str:
    from playwright.sync_api import expect, sync_playwright

    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.grant_permissions(["clipboard-read", "clipboard-write"], origin=gw.url)
            page = context.new_page()
            page.goto(f"{gw.url}/")
            assert page.url.startswith(f"{gw.url}/login"), page.url
            _shoot(page, "01-login")
            page.get_by_role("button", name="Sign in").click()
            # The IdP's devInteractions: any login and password, then its consent page.
            page.fill("input[name=login]", "admin-alice")
            page.fill("input[name=password]", "anything")
            page.click("button[type=submit]")
            page.click("button[type=submit]")
            page.wait_for_url(f"{gw.url}/")
            expect(page.locator(".who")).to_contain_text("admin-alice")
            expect(page.locator(".badge")).to_have_text("admin")
            _shoot(page, "02-overview-empty")

            page.goto(f"{gw.url}/catalog")
            _shoot(page, "03-catalog")
            page.get_by_role("button", name="Install echo", exact=True).click()
            page.wait_for_url(f"{gw.url}/consent/echo*", timeout=240_000)
            expect(page.get_by_role("heading", name="Network access — enforced")).to_be_visible()
            expect(page.locator("main")).to_contain_text("No network access at all")
            expect(page.locator("main")).to_contain_text("echo")
            _shoot(page, "04-consent")
            page.get_by_role("button", name="Approve").click()
            page.wait_for_url(f"{gw.url}/apps/echo*")
            expect(page.locator(".flash.ok")).to_contain_text("You approved echo")
            _shoot(page, "05-app-echo")

            page.goto(f"{gw.url}/profiles")
            page.fill("#slug", "work")
            page.get_by_label("echo", exact=True).check()
            page.get_by_role("button", name="Create profile").click()
            token_box = page.get_by_test_id("profile-token")
            expect(token_box).to_be_visible()
            token = token_box.inner_text().strip()
            assert token.startswith("gig_"), token
            page.locator("button[data-copy='#profile-token']").click()
            expect(page.locator("main")).to_contain_text("claude mcp add --transport http gig-work")
            _shoot(page, "06-profile-token")

            raw = RawSession(gw, path="/mcp/p/work", token=token).open()
            tools = [t["name"] for t in raw.request("tools/list")["result"]["tools"]]
            assert "echo_echo" in tools, tools
            reply = raw.call("echo_echo", {"message": "hello from the browser test"})
            assert "result" in reply and not reply["result"].get("isError"), reply

            for _ in range(50):  # the audit writer batches: the row lands within moments
                page.goto(f"{gw.url}/audit")
                if page.locator("td code", has_text="echo_echo").count():
                    break
                page.wait_for_timeout(100)
            expect(page.locator("td code", has_text="echo_echo").first).to_be_visible()
            expect(page.locator("tbody tr").first).to_contain_text("admin-alice")
            _shoot(page, "07-audit")
            for path, name in (("/", "08-overview"), ("/apps", "09-apps"), ("/credentials", "10-credentials"),
                               ("/sandboxes", "11-sandboxes"), ("/users", "12-users"), ("/account", "13-account"),
                               ("/audit?kind=egress", "14-audit-egress")):
                page.goto(f"{gw.url}{path}")
                _shoot(page, name)
            expect(page.get_by_role("heading", name="Audit")).to_be_visible()
            return token
        finally:
            browser.close()


async def test_admin_installs_consents_and_calls_through_the_dashboard(world: tuple[Gateway, Idp]) -> None:
    gw, _idp = world
    # Playwright's sync API runs its own loop: keep it off the test's event loop.
    token = await asyncio.to_thread(_browser_flow, gw)
    assert token.startswith("gig_")
    shots = sorted(p.name for p in ARTIFACTS.glob("*.png"))
    assert len(shots) == 2 * 14, shots
