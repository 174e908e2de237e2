"""Subscribing in a real browser: the home-page form, the confirmation mail (received by a real SMTP server
in this process), its link opened in the browser, the confirm button, and the digest preview under its own
Content-Security-Policy. Skipped without Chromium or Playwright, like test_web_browser.py."""

from __future__ import annotations

import re

import pytest
from conftest import serve_copy_with_mail
from mailsink import links
from test_web_browser import _finish, browser, expect, open_tab  # noqa: F401 (browser: a fixture)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory, web_data, shared_engine, sink):
    with serve_copy_with_mail(tmp_path_factory, web_data, shared_engine, sink.env, "subscribe") as served:
        yield served


def test_subscribe_from_the_home_page_and_confirm_from_the_mail(browser, server, sink):  # noqa: F811
    base, app = server
    context, tab = open_tab(browser, base, viewport={"width": 1280, "height": 900})
    try:
        page = tab.page
        tab.go("/")
        form = page.locator("section.hero form.subscribe-mini")
        form.get_by_label("Get the day's trending papers by mail").fill("reader@example.org")
        with page.expect_navigation():
            form.get_by_role("button", name="Subscribe").click()
        expect(page.locator("h1")).to_have_text("Check your inbox")
        expect(page.locator("main")).to_contain_text("reader@example.org")

        message = sink.wait_for("reader@example.org")
        assert message["Subject"] == "Confirm your paperradar digest"
        [link] = links(message, "/confirm")
        assert link.startswith(base + "/confirm?token=")
        subs = app.state.services.store.subscriptions
        assert subs.by_email("reader@example.org").status == "pending"

        # a fresh browser session, as when the link is opened from a mail client
        page.context.clear_cookies()
        response = page.goto(link)
        assert response.ok
        expect(page.locator("h1")).to_have_text("Confirm your digest")
        assert subs.by_email("reader@example.org").status == "pending"  # opening the link is not enough
        with page.expect_navigation():
            page.get_by_role("button", name="Confirm").click()
        expect(page.locator("h1")).to_have_text("Subscription confirmed")
        sub = subs.by_email("reader@example.org")
        assert sub.status == "active" and sub.confirmed

        # the preview of this subscriber's digest: the mail's inline styles apply, nothing is blocked
        with page.expect_navigation():
            page.get_by_role("link", name="Preview your digest").click()
        assert re.match(re.escape(base) + r"/digest/preview\?token=", page.url)
        expect(page.locator("body")).to_have_css("background-color", "rgb(245, 247, 250)")
        expect(page.get_by_role("link", name="Unsubscribe")).to_be_visible()
        app.state.courier.wait()
        assert len([m for m in sink.messages if m["To"] == "reader@example.org"]) == 1
    finally:
        _finish(context, tab)
