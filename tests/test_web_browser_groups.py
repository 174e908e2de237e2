"""Groups in a real browser: making a group, inviting by the mailed link (received by a real SMTP server in
this process) and joining through it in a second browser, saving a paper to the group library, a note
shared with the group and a comment, seen by the other member. Watched like every browser test (a script
error, a console error or a CSP violation fails it); skipped without Chromium or Playwright.

With PAPERRADAR_SCREENSHOTS set to a folder, the group page and the paper page's discussion are saved
there (the README's pictures: docs/screenshots)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import serve_copy_with_mail
from mailsink import links
from test_web_browser import _finish, browser, expect, open_tab  # noqa: F401 (browser: a fixture)
from test_web_browser_accounts import click_and_wait, path_of, sign_in

pytestmark = pytest.mark.browser
CURIE = "2606.99002"


@pytest.fixture(scope="module")
def server(tmp_path_factory, web_data, shared_engine, sink):
    with serve_copy_with_mail(tmp_path_factory, web_data, shared_engine, sink.env, "groups") as served:
        yield served


@pytest.fixture
def tabs(browser, server):  # noqa: F811
    opened = [open_tab(browser, server[0], viewport={"width": 1280, "height": 900}) for _ in range(2)]
    yield [t for _, t in opened]
    for context, t in opened:
        _finish(context, t)


def shot(page, name: str) -> None:
    folder = os.environ.get("PAPERRADAR_SCREENSHOTS")
    if folder:
        page.screenshot(path=str(Path(folder) / name), full_page=False)


def test_a_group_invites_joins_saves_notes_and_comments(tabs, server, sink):
    ada, bob = tabs
    sign_in(ada, sink, "ada.lab@example.org")
    page = ada.page
    click_and_wait(page, page.locator("header").get_by_role("link", name="Groups"))
    page.get_by_label("Name").fill("Graph reading group")
    click_and_wait(page, page.get_by_role("button", name="Create the group"))
    group_path = path_of(page)
    expect(page.locator("h1")).to_have_text("Graph reading group")

    before = sum(1 for m in sink.messages if m["To"] == "bob.lab@example.org")
    page.get_by_label("Mail an invitation to (or leave empty for a link to copy)").fill("bob.lab@example.org")
    click_and_wait(page, page.get_by_role("button", name="Invite"))
    expect(page.get_by_role("status")).to_contain_text("Invitation mailed to bob.lab@example.org")
    [link] = links(sink.wait_for("bob.lab@example.org", before + 1), "/groups/join")

    sign_in(bob, sink, "bob.lab@example.org")
    assert bob.page.goto(link).ok
    click_and_wait(bob.page, bob.page.get_by_role("button", name="Join the group"))
    assert path_of(bob.page) == group_path
    bob.page.get_by_label("Add a paper (arXiv id or link)").fill(CURIE)
    bob.page.get_by_label("to the tag").fill("graphs")
    click_and_wait(bob.page, bob.page.get_by_role("button", name="Add to the group"))
    expect(bob.page.locator(".saved-by")).to_contain_text("Saved by bob.lab@example.org")

    # the link works once: following it again is refused, with a message
    again = bob.page.goto(link)
    assert again.status == 400
    expect(bob.page.locator("main")).to_contain_text("used already")
    assert [e for e in bob.console_errors if "400 (Bad Request)" not in e] == []
    bob.console_errors.clear()  # that 400 was the point

    bob.go(f"/paper/{CURIE}")
    bob.page.get_by_label("A note (Markdown", exact=False).fill("Read **section 3** first: "
                                                                "[slides](https://example.org/slides)")
    bob.page.get_by_label("Who sees the note").select_option(label="shared with Graph reading group")
    click_and_wait(bob.page, bob.page.get_by_role("button", name="Add the note"))
    bob.page.get_by_label("Comment", exact=True).fill("Does Fig. 2 hold for *directed* graphs?")
    click_and_wait(bob.page, bob.page.get_by_role("button", name="Comment", exact=True))
    expect(bob.page.locator(".comment")).to_contain_text("Does Fig. 2 hold for directed graphs?")

    ada.go(f"/paper/{CURIE}")
    note = page.locator(".note").first
    expect(note.locator("strong")).to_have_text("section 3")
    expect(note.get_by_role("link", name="slides")).to_have_attribute("rel", "nofollow noopener noreferrer")
    expect(page.locator(".comment em")).to_have_text("directed")
    page.locator("#discussion").scroll_into_view_if_needed()
    shot(page, "discussion.png")
    ada.go(group_path)
    expect(page.locator(".members")).to_contain_text("bob.lab@example.org")
    expect(page.locator(".saved-by")).to_contain_text("bob.lab@example.org")
    shot(page, "group.png")
