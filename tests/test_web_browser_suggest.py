"""Suggestions while typing, in a real browser: the listbox appears, the arrow keys and Enter navigate,
Escape closes it, and the Content-Security-Policy never has to block anything (the harness of
test_web_browser.py watches every page)."""

from __future__ import annotations

import pytest
from test_web_browser import base_url, browser, expect, tab  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser


def test_typing_shows_the_listbox_and_arrow_enter_navigates(tab):  # noqa: F811
    tab.go("/")
    box = tab.page.locator("header form.searchbox input[name=q]")
    box.click()
    box.press_sequentially("graph neu", delay=30)
    listbox = tab.page.locator("header .suggest-list")
    expect(listbox).to_be_visible()
    expect(box).to_have_attribute("aria-expanded", "true")
    assert listbox.locator("[role=option]").count() >= 1
    box.press("ArrowDown")
    first = listbox.locator("[role=option]").first
    expect(first).to_have_attribute("aria-selected", "true")
    expect(box).to_have_attribute("aria-activedescendant", first.get_attribute("id"))
    with tab.page.expect_navigation():
        box.press("Enter")
    assert tab.page.url.split("?")[0].endswith(("/search",)) or "/paper/" in tab.page.url


def test_escape_closes_and_the_form_still_submits(tab):  # noqa: F811
    tab.go("/")
    box = tab.page.locator("header form.searchbox input[name=q]")
    box.click()
    box.press_sequentially("graph", delay=30)
    listbox = tab.page.locator("header .suggest-list")
    expect(listbox).to_be_visible()
    box.press("Escape")
    expect(listbox).to_be_hidden()
    expect(box).to_have_attribute("aria-expanded", "false")
    with tab.page.expect_navigation():
        box.press("Enter")
    assert tab.query.get("q") == ["graph"]
