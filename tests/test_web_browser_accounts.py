"""Accounts in a real browser: signing in with the link from a real mail (received by a real SMTP server in
this process), saving papers into tags, voting and "not interested" from paper pages and search results,
the library (tags, search inside, BibTeX and JSON downloads, BibTeX import through the file input), the
"For you" feed and its filters, deleting the account, and the same pages at phone width.

One server per module, over a private copy of the corpus (these flows write); every test signs in with an
address of its own, so none depends on another. Every page opened is watched as in test_web_browser.py: a
dialog, a script error, a console error or a CSP violation fails the test that opened it. Skipped without
Chromium or Playwright, like test_web_browser.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import serve_copy_with_mail
from mailsink import links
from test_web_browser import (  # noqa: F401 (browser: a fixture)
    _finish,
    assert_inline_script_blocked,
    browser,
    card,
    expect,
    open_tab,
    result_keys,
    search_from_header,
)

from paperradar import bibtex

pytestmark = pytest.mark.browser
# papers of the web corpus (tests/conftest.py): two on graph networks by the Curies, one full of markup
CURIE = ["2606.99002", "2606.99003"]
MARKUP = "2606.99001"
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 1, "is_mobile": True,
         "has_touch": True}

OUR_SCRIPTS = {"/static/app.js", "/static/math.js", "/static/cite.js", "/static/katex/katex.min.js",
               "/static/suggest.js"}


@pytest.fixture(scope="module")
def server(tmp_path_factory, web_data, shared_engine, sink):
    with serve_copy_with_mail(tmp_path_factory, web_data, shared_engine, sink.env, "accounts") as served:
        yield served


@pytest.fixture
def tab(browser, server):  # noqa: F811
    context, t = open_tab(browser, server[0], viewport={"width": 1280, "height": 900})
    yield t
    _finish(context, t)


@pytest.fixture
def phone(browser, server):  # noqa: F811
    context, t = open_tab(browser, server[0], **PHONE)
    yield t
    _finish(context, t)


# -- helpers ---------------------------------------------------------------------------------------------
def path_of(page) -> str:
    return urlsplit(page.url).path


def keys_in(scope) -> list[str]:
    return scope.locator(".paper").evaluate_all("els => els.map(e => e.dataset.paper)")


def paper_id(server, key: str) -> int:
    return server[1].state.services.store.get(key).id


def click_and_wait(page, locator) -> None:
    with page.expect_navigation():
        locator.click()


def mailed_link(sink, email: str, before: int) -> str:
    """The sign-in link of the mail to ``email`` that follows the ``before`` it had already."""
    [link] = links(sink.wait_for(email, before + 1), "/signin/verify")
    return link


def sign_in(tab, sink, email: str) -> None:
    """The whole flow, as a person does it: header link, address, the link from the mail, the button."""
    page = tab.page
    tab.go("/")
    click_and_wait(page, page.locator("header").get_by_role("link", name="Sign in"))
    before = sum(1 for m in sink.messages if m["To"] == email)
    page.get_by_label("Your e-mail address").fill(email)
    click_and_wait(page, page.get_by_role("button", name="Mail me a sign-in link"))
    expect(page.locator("h1")).to_have_text("Check your inbox")
    assert page.goto(mailed_link(sink, email, before)).ok
    expect(page.locator("strong.address")).to_have_text(email)  # the page says whose link it is
    click_and_wait(page, page.get_by_role("button", name="Sign in", exact=True))
    assert path_of(page) == "/for-you"
    expect(page.locator("header a.me")).to_have_text(email)


def save_on_paper_page(tab, key: str, tag: str) -> None:
    page = tab.page
    tab.go(f"/paper/{key}")
    actions = page.locator(".paper-page .actions")
    actions.get_by_label("Tag to save into").fill(tag)
    click_and_wait(page, actions.get_by_role("button", name="Save", exact=True))
    expect(actions.locator(".saved-in").get_by_role("link", name=tag, exact=True)).to_be_visible()


def downloaded(page, link) -> tuple[str, str]:
    """(suggested file name, text) of the download that clicking ``link`` starts."""
    with page.expect_download() as info:
        link.click()
    download = info.value
    assert download.failure() is None
    return download.suggested_filename, Path(download.path()).read_text(encoding="utf-8")


# -- the flows ---------------------------------------------------------------------------------------------
def test_sign_in_with_the_mailed_link_then_sign_out(tab, server, sink):
    base, app = server
    page = tab.page
    tab.go("/trending")
    header = page.locator("header")
    expect(header.get_by_role("link", name="For you")).to_have_count(0)
    click_and_wait(page, header.get_by_role("link", name="Sign in"))
    assert path_of(page) == "/signin"
    expect(page.locator("h1")).to_have_text("Sign in")
    page.get_by_label("Your e-mail address").fill("ada@example.org")
    click_and_wait(page, page.get_by_role("button", name="Mail me a sign-in link"))
    expect(page.locator("h1")).to_have_text("Check your inbox")
    expect(page.get_by_role("status")).to_contain_text("ada@example.org")

    message = sink.wait_for("ada@example.org")
    assert message["Subject"] == "Sign in to paperradar"
    [link] = links(message, "/signin/verify")
    assert link.startswith(base + "/signin/verify?token=")
    assert app.state.services.store.accounts.user_by_email("ada@example.org") is None  # not before the link

    # a fresh browser session, as when the link is opened from a mail client
    page.context.clear_cookies()
    assert page.goto(link).ok
    expect(page.locator("h1")).to_have_text("Sign in to paperradar")
    expect(header.locator("a.me")).to_have_count(0)  # opening the link is not enough
    click_and_wait(page, page.get_by_role("button", name="Sign in", exact=True))
    assert page.url == base + "/for-you"
    expect(page.locator("h1")).to_have_text("For you")
    me = header.get_by_role("link", name="ada@example.org")
    expect(me).to_have_attribute("href", "/settings")
    for name in ("For you", "Library"):
        expect(header.get_by_role("link", name=name, exact=True)).to_be_visible()
    expect(header.get_by_role("link", name="Sign in")).to_have_count(0)
    session = next(c for c in page.context.cookies() if c["name"] == "paperradar_session")
    assert session["httpOnly"] and session["sameSite"] == "Lax"
    # signed in on every page, not only this one
    tab.go("/paper/2606.99002")
    expect(me).to_be_visible()
    expect(page.locator(".paper-page .actions")).to_be_visible()

    click_and_wait(page, header.get_by_role("button", name="Sign out"))
    assert page.url == base + "/"
    expect(header.get_by_role("link", name="Sign in")).to_be_visible()
    expect(header.get_by_text("ada@example.org")).to_have_count(0)
    expect(header.get_by_role("button", name="Sign out")).to_have_count(0)
    assert not [c for c in page.context.cookies() if c["name"] == "paperradar_session"]
    # the link worked once: opened again, its page says so before anyone presses, and signs nobody in
    assert page.goto(link).ok
    expect(page.locator("main")).to_contain_text("not valid any more")
    expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_disabled()
    expect(header.get_by_role("link", name="Sign in")).to_be_visible()


def test_save_tag_vote_and_dismiss_on_a_paper_page_and_in_results(tab, server, sink):
    base, _ = server
    page = tab.page
    sign_in(tab, sink, "saver@example.org")

    # on the paper's own page
    key, pid = CURIE[0], paper_id(server, CURIE[0])
    back = f"{base}/paper/{key}#paper-{pid}"
    tab.go(f"/paper/{key}")
    actions = page.locator(".paper-page .actions")
    expect(actions.locator(".saved-in")).to_have_count(0)
    votes = page.locator(".paper-page dd.votes")
    before = int(re.fullmatch(r"▲ (\d+)", votes.inner_text()).group(1))
    actions.get_by_label("Tag to save into").fill("graphs")
    click_and_wait(page, actions.get_by_role("button", name="Save", exact=True))
    assert page.url == back
    expect(actions.locator(".saved-in")).to_have_text("Saved in graphs")
    expect(actions.get_by_role("link", name="graphs")).to_have_attribute("href", "/library?tag=graphs")
    assert page.locator("datalist#my-tags option").evaluate_all("els => els.map(e => e.value)") == ["graphs"]

    vote = actions.locator("button.vote")
    expect(vote).to_have_text("▲ Upvote")
    expect(vote).to_have_attribute("aria-pressed", "false")
    click_and_wait(page, actions.get_by_role("button", name="▲ Upvote"))
    assert page.url == back
    expect(vote).to_have_text("▲ Voted")
    expect(vote).to_have_attribute("aria-pressed", "true")
    expect(votes).to_have_text(f"▲ {before + 1}")
    click_and_wait(page, actions.get_by_role("button", name="▲ Voted"))  # taken back
    expect(vote).to_have_text("▲ Upvote")
    expect(votes).to_have_text(f"▲ {before}")
    click_and_wait(page, actions.get_by_role("button", name="▲ Upvote"))
    expect(votes).to_have_text(f"▲ {before + 1}")

    click_and_wait(page, actions.get_by_role("button", name="Not interested"))
    assert page.url == back
    expect(actions.locator("button.dismiss")).to_have_text("Interested after all")
    click_and_wait(page, actions.get_by_role("button", name="Interested after all"))
    expect(actions.locator("button.dismiss")).to_have_text("Not interested")
    expect(actions.locator(".saved-in")).to_have_text("Saved in graphs")  # none of it touched the tags

    # on a card in search results: back to the same results, scrolled to the same card
    key, pid = CURIE[1], paper_id(server, CURIE[1])
    search_from_header(page, "message passing networks for crystal structures")
    results = page.url
    assert key in result_keys(page)
    hit = card(page, key)
    assert hit.get_attribute("id") == f"paper-{pid}"
    for tag in ("graphs", "crystals"):
        hit.get_by_label("Tag to save into").fill(tag)
        click_and_wait(page, hit.get_by_role("button", name="Save", exact=True))
        assert page.url == f"{results}#paper-{pid}"
        expect(hit).to_be_in_viewport()
    expect(hit.locator(".saved-in")).to_contain_text("Saved in")
    assert sorted(hit.locator(".saved-in a.tag").all_inner_texts()) == ["crystals", "graphs"]
    click_and_wait(page, hit.get_by_role("button", name="▲ Upvote"))
    assert page.url == f"{results}#paper-{pid}"
    expect(hit.locator("button.vote")).to_have_text("▲ Voted")
    click_and_wait(page, hit.get_by_role("button", name="Not interested"))
    assert page.url == f"{results}#paper-{pid}"
    expect(hit.locator("button.dismiss")).to_have_text("Interested after all")
    expect(hit).to_be_in_viewport()
    # only that card changed (and the one saved on its page, if it is listed too)
    for other in set(result_keys(page)) - set(CURIE):
        expect(card(page, other).locator(".saved-in")).to_have_count(0)
        expect(card(page, other).locator("button.vote")).to_have_text("▲ Upvote")
    # the vote counts on the paper's page
    tab.go(f"/paper/{key}")
    expect(page.locator(".paper-page dd.votes")).to_have_text("▲ 1")
    expect(page.locator(".paper-page .actions button.vote")).to_have_text("▲ Voted")


def test_library_tags_search_export_and_import(tab, server, sink):
    base, app = server
    page = tab.page
    sign_in(tab, sink, "librarian@example.org")
    for key, tag in [(CURIE[0], "graphs"), (CURIE[1], "graphs"), (CURIE[1], "crystals"),
                     (MARKUP, "security")]:
        save_on_paper_page(tab, key, tag)

    click_and_wait(page, page.locator("header").get_by_role("link", name="Library"))
    assert path_of(page) == "/library"
    items, tags = page.locator("section.items"), page.locator("aside.tags")
    expect(items.locator("h1")).to_have_text("Your library")
    expect(items.locator(".paper")).to_have_count(3)
    assert sorted(keys_in(items)) == sorted([*CURIE, MARKUP])
    assert [" ".join(t.split()) for t in tags.locator("li").all_inner_texts()] == [
        "All papers", "crystals 1", "graphs 2", "security 1"]
    expect(tags.locator("a[aria-current=page]")).to_have_text("All papers")

    # a tag
    click_and_wait(page, tags.get_by_role("link", name="graphs"))
    assert tab.query == {"tag": ["graphs"]}
    expect(items.locator("h1")).to_have_text("graphs")
    expect(tags.locator("a[aria-current=page]")).to_have_text("graphs")
    expect(items.locator(".paper")).to_have_count(2)
    assert sorted(keys_in(items)) == CURIE
    expect(items.get_by_role("button", name="Remove from graphs")).to_have_count(2)

    # searching inside the tag, then inside the whole library
    box = items.get_by_role("searchbox", name="Search in the library")
    expect(box).to_have_attribute("placeholder", "Search in graphs")
    box.fill("crystal")
    click_and_wait(page, items.get_by_role("button", name="Search"))
    assert tab.query == {"tag": ["graphs"], "q": ["crystal"]}
    expect(items.locator(".paper")).to_have_count(1)
    assert keys_in(items) == [CURIE[1]]
    expect(items).to_contain_text("1 paper matching “crystal”")
    click_and_wait(page, tags.get_by_role("link", name="All papers"))
    box.fill("sanitizers")
    click_and_wait(page, items.get_by_role("button", name="Search"))
    assert tab.query == {"q": ["sanitizers"]}
    assert keys_in(items) == [MARKUP]
    box.fill("zzqxv")
    click_and_wait(page, items.get_by_role("button", name="Search"))
    expect(items.locator(".paper")).to_have_count(0)
    expect(items).to_contain_text("Nothing here matches.")

    # export: the whole library, then one tag, as downloads
    tab.go("/library")
    name, text = downloaded(page, items.get_by_role("link", name="BibTeX"))
    assert name == "paperradar-library.bib" and "eprint" in text
    entries, problems = bibtex.parse(text)
    assert not problems
    assert sorted(e.fields["eprint"] for e in entries) == sorted([*CURIE, MARKUP])
    name, text = downloaded(page, items.get_by_role("link", name="JSON"))
    assert name == "paperradar-library.json"
    exported = json.loads(text)
    assert exported["format"] == "paperradar-library"
    assert {p["arxiv_id"]: sorted(p["tags"]) for p in exported["papers"]} == {
        CURIE[0]: ["graphs"], CURIE[1]: ["crystals", "graphs"], MARKUP: ["security"]}
    click_and_wait(page, tags.get_by_role("link", name="crystals"))
    name, text = downloaded(page, items.get_by_role("link", name="BibTeX"))
    assert name == "paperradar-crystals.bib"
    assert [e.fields["eprint"] for e in bibtex.parse(text)[0]] == [CURIE[1]]

    # import a BibTeX file: one entry by arXiv id, one by title, one unknown, one malformed
    known = app.state.services.store.get("2606.13681")
    by_title = next(p for p in app.state.services.store.newest(limit=20)
                    if p.key not in (*CURIE, MARKUP, known.key))
    payload = (f"@article{{byid,\n  title = {{Whatever}},\n  eprint = {{{known.key}}},\n"
               "  archiveprefix = {arXiv}\n}\n\n"
               f"@inproceedings{{bytitle,\n  title = {{{by_title.title.upper()}}},\n"
               "  author = {Someone}\n}\n\n"
               "@misc{unknown,\n  title = {A paper this server has never heard of},\n"
               "  eprint = {2101.00001}\n}\n\n"
               "@misc{broken,\n  title = {unbalanced\n\n")
    tab.go("/library")
    form = page.locator("form.import")
    expect(form.get_by_label("into the tag")).to_have_value("imported")
    form.get_by_label("into the tag").fill("from refs")
    form.get_by_label("A BibTeX file").set_input_files(
        files=[{"name": "refs.bib", "mimeType": "application/x-bibtex", "buffer": payload.encode()}])
    click_and_wait(page, form.get_by_role("button", name="Import"))
    assert path_of(page) == "/library/import"
    expect(page.locator("h1")).to_have_text("Imported refs.bib")
    report = page.get_by_role("status")
    expect(report).to_contain_text("2 matched a paper here (2 new in from refs)")
    expect(report).to_contain_text("1 not found")
    expect(report).to_contain_text("1 malformed and skipped")
    expect(page.locator("table.report")).to_contain_text("A paper this server has never heard of")
    expect(page.locator("ul.report li")).to_have_count(1)
    click_and_wait(page, report.get_by_role("link", name="from refs"))
    assert tab.query == {"tag": ["from refs"]}
    assert sorted(keys_in(items)) == sorted([known.key, by_title.key])
    assert "from refs 2" in [" ".join(t.split()) for t in tags.locator("li").all_inner_texts()]


def test_for_you_ranks_by_the_saved_papers_and_keeps_its_filters(tab, server, sink):
    page = tab.page
    sign_in(tab, sink, "reader@example.org")
    expect(page.locator(".feed-mode")).to_contain_text("Save a few papers")  # nothing saved yet

    # save the first three results of a search, from their cards
    search_from_header(page, "graph neural networks")
    saved = result_keys(page)[:3]
    for key in saved:
        hit = card(page, key)
        hit.get_by_label("Tag to save into").fill("graphs")
        click_and_wait(page, hit.get_by_role("button", name="Save", exact=True))
        expect(hit.locator(".saved-in")).to_have_text("Saved in graphs")

    click_and_wait(page, page.locator("header").get_by_role("link", name="For you"))
    assert path_of(page) == "/for-you"
    expect(page.locator(".feed-mode")).to_contain_text("Ranked by a model of your 3 saved papers")
    cards = page.locator("main .paper")
    expect(cards.first).to_be_visible()
    keys = result_keys(page)
    assert keys and not set(keys) & set(saved)  # what is saved already is not recommended
    for why in page.locator("main .paper .why").all_inner_texts():
        assert re.match(r"\d+% match · Close to your saved ", why), why
    first = cards.first.locator(".why")
    expect(first.locator(".match")).to_have_text(re.compile(r"^\d+% match$"))
    because = first.get_by_role("link").first
    assert urlsplit(because.get_attribute("href")).path.removeprefix("/paper/") in saved
    expect(cards.first.locator(".actions")).to_be_visible()  # the feed's cards can be saved from too

    # the filters: all time, one category
    filters = page.locator("form.feed-filters")
    expect(filters.get_by_label("Listed in the last")).to_have_value("month")
    filters.get_by_label("Listed in the last").select_option("all")
    filters.get_by_label("Categories").fill("cs.LG")
    click_and_wait(page, filters.get_by_role("button", name="Apply"))
    assert path_of(page) == "/for-you"
    assert tab.query["window"] == ["all"] and tab.query["cat"] == ["cs.LG"]
    expect(filters.get_by_label("Listed in the last")).to_have_value("all")
    expect(filters.get_by_label("Categories")).to_have_value("cs.LG")
    expect(page.locator(".feed-mode")).to_contain_text("Ranked by a model of your 3 saved papers")
    cats = page.locator("main .paper").evaluate_all(
        "els => els.map(e => [...e.querySelectorAll('.meta .cat')].map(c => c.textContent))")
    assert cats and all("cs.LG" in c for c in cats), cats
    # the page reloaded with its URL is the same page
    tab.go(urlsplit(page.url).path + "?" + urlsplit(page.url).query)
    expect(filters.get_by_label("Listed in the last")).to_have_value("all")
    # "not interested" takes a paper out of the feed
    gone = result_keys(page)[0]
    click_and_wait(page, card(page, gone).get_by_role("button", name="Not interested"))
    assert tab.query["window"] == ["all"] and tab.query["cat"] == ["cs.LG"]
    assert gone not in result_keys(page)


def test_delete_the_account(tab, server, sink):
    base, app = server
    page = tab.page
    sign_in(tab, sink, "leaver@example.org")
    save_on_paper_page(tab, CURIE[0], "mine")
    click_and_wait(page, page.locator("header").get_by_role("link", name="leaver@example.org"))
    assert path_of(page) == "/settings"
    expect(page.locator("main")).to_contain_text("Signed in as leaver@example.org")
    form = page.locator("form.delete-account")

    # another address does not delete it
    form.get_by_label("Type your address to confirm").fill("someone@example.org")
    click_and_wait(page, form.get_by_role("button", name="Delete my account"))
    expect(page.get_by_role("alert")).to_have_text("type your address to confirm deleting the account")
    assert app.state.services.store.accounts.user_by_email("leaver@example.org") is not None
    refusal = f"Failed to load resource: the server responded with a status of 400 (Bad Request) ({base}" \
              "/settings/delete)"
    assert refusal in tab.console_errors
    tab.console_errors.remove(refusal)  # expected here

    form.get_by_label("Type your address to confirm").fill("leaver@example.org")
    click_and_wait(page, form.get_by_role("button", name="Delete my account"))
    expect(page.locator("h1")).to_have_text("Account deleted")
    expect(page.get_by_role("status")).to_contain_text("leaver@example.org")
    expect(page.locator("header").get_by_role("link", name="Sign in")).to_be_visible()
    expect(page.locator("header").get_by_text("leaver@example.org")).to_have_count(0)
    assert app.state.services.store.accounts.user_by_email("leaver@example.org") is None

    tab.go("/library")
    assert path_of(page) == "/signin" and tab.query == {"next": ["/library"]}
    expect(page.locator("h1")).to_have_text("Sign in")
    tab.go(f"/paper/{CURIE[0]}")
    expect(page.locator(".paper-page .actions")).to_have_count(0)
    expect(page.locator(".paper-page").get_by_role("link", name="Sign in")).to_be_visible()


ACCOUNT_PAGES = ["/for-you", "/for-you?window=all&cat=cs.LG", "/library", "/library?tag=graphs",
                 "/library?q=crystal", "/settings", f"/paper/{CURIE[0]}", "/search?q=graph+networks",
                 "/trending?period=week", "/"]


def test_account_pages_need_no_inline_script(tab, sink):
    page = tab.page
    tab.go("/signin")
    assert tab.csp == [] and tab.console_errors == [] and tab.page_errors == []
    sign_in(tab, sink, "strict@example.org")
    save_on_paper_page(tab, CURIE[0], "graphs")
    for path in ACCOUNT_PAGES:
        response = tab.go(path)
        assert "script-src 'self'" in response.headers["content-security-policy"], path
        page.wait_for_load_state("load")
        assert tab.problems() == [], path
        srcs = page.locator("script").evaluate_all("els => els.map(e => e.getAttribute('src'))")
        assert "/static/app.js" in srcs and set(srcs) <= OUR_SCRIPTS, path
        assert page.locator("[style]").count() == 0, path
    # The watch works on these pages too: an inline script added now is blocked and reported.
    assert_inline_script_blocked(tab)


PHONE_PAGES = ["/for-you", "/for-you?window=all", "/library", "/library?tag=graph+networks+on+atoms",
               "/settings", f"/paper/{CURIE[0]}"]
# The elements of <main> that reach past the window's right edge.
PAST_THE_EDGE = """() => [...document.querySelectorAll("main, main *")]
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
  .map(e => `${e.tagName.toLowerCase()}.${e.className}: ${Math.round(e.getBoundingClientRect().right)} px`)"""


@pytest.fixture(scope="module")
def phone_session(browser, server, sink):  # noqa: F811
    """The cookies of a user signed in on a phone with three papers saved, so that the pages show paper
    cards with their actions (the longest lines of a signed-in page)."""
    context, t = open_tab(browser, server[0], **PHONE)
    try:
        sign_in(t, sink, "a.rather.long.address@example.org")
        for key in (*CURIE, MARKUP):
            save_on_paper_page(t, key, "graph networks on atoms")
        state = context.storage_state()
    finally:
        _finish(context, t)
    return state


def test_phone_width_content_fits_when_signed_in(browser, server, phone_session):  # noqa: F811
    """The pages' own content at 390 px. A desktop context, not a mobile one: a mobile browser widens its
    layout to whatever overflows, which would lay <main> out wider than the phone."""
    context, t = open_tab(browser, server[0], viewport=PHONE["viewport"], storage_state=phone_session)
    try:
        page = t.page
        for path in PHONE_PAGES:
            t.go(path)
            assert page.evaluate("window.innerWidth") == 390
            assert page.evaluate(PAST_THE_EDGE) == [], path
        t.go("/for-you")
        expect(page.locator("main .paper .actions").first).to_be_visible()
        expect(page.locator("main .paper .why").first).to_be_visible()
        expect(page.locator("form.feed-filters").get_by_role("button", name="Apply")).to_be_in_viewport()
        t.go("/library")
        box = page.locator("main").get_by_role("searchbox", name="Search in the library")
        expect(box).to_be_in_viewport()
        expect(page.locator("main .paper").first).to_be_visible()
    finally:
        _finish(context, t)


def test_phone_width_has_no_sideways_scroll_when_signed_in(browser, server, phone_session):  # noqa: F811
    context, t = open_tab(browser, server[0], **PHONE, storage_state=phone_session)
    try:
        page = t.page
        wide = []
        for path in PHONE_PAGES:
            t.go(path)
            width, window = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            # a mobile browser widens its window to the content: 390 is part of the check
            if not width <= window + 1 or window != 390:
                wide.append(f"{path}: {width} px in a {window} px window")
        assert not wide, "pages wider than the phone:\n" + "\n".join(wide)
    finally:
        _finish(context, t)
