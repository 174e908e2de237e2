"""The web app in a real browser: Debian's Chromium, driven by Playwright, against a real uvicorn server.

What these check is what a person sees: the pages render, the forms and links work, the one script
(/static/app.js) does its job, stored markup stays inert text, and the Content-Security-Policy (no inline
script or style) never has to block anything. Every page opened here is watched: a dialog, a script
error, a console error or a CSP violation on any of them fails the test that opened it.

Needs /usr/bin/chromium (`apt-get install chromium`) and the `playwright` package; the module is skipped
without them. Playwright's own browser downloads are not used.
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import XSS_ABSTRACT, XSS_TITLE, serve_in_thread

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(reason=f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package")
expect = sync_api.expect

pytestmark = pytest.mark.browser
NO_LIMIT = {"PAPERRADAR_RATE_LIMIT": "0"}
TIMEOUT_MS = 10_000
ATOM_NS = "{http://www.w3.org/2005/Atom}"

# Reports Content-Security-Policy violations to the test (an init script is injected by the browser itself,
# so the page's CSP does not apply to it).
CSP_WATCH = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.__reportCsp(`${e.effectiveDirective} blocked ${e.blockedURI || "inline"} on ${e.documentURI}`);
});
"""

OUR_SCRIPTS = {"/static/app.js", "/static/math.js", "/static/cite.js", "/static/katex/katex.min.js",
               "/static/suggest.js"}


# -- the server and the browser -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def base_url(web_data, shared_engine):
    """The app, served by uvicorn on a free localhost port from a background thread."""
    from paperradar.web.app import create_app

    with serve_in_thread(create_app(web_data, engine=shared_engine, env=NO_LIMIT)) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM))
        yield b
        b.close()


@dataclass
class Tab:
    """A page in a fresh browser context, and everything that went wrong on it."""

    page: object
    base: str
    dialogs: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    csp: list[str] = field(default_factory=list)

    def go(self, path: str):
        response = self.page.goto(self.base + path)
        assert response is not None and response.ok, f"{path}: HTTP {response and response.status}"
        return response

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.page.url).query)

    def problems(self) -> list[str]:
        return ([f"dialog: {d}" for d in self.dialogs] + [f"script error: {e}" for e in self.page_errors]
                + [f"console: {c}" for c in self.console_errors] + [f"CSP: {v}" for v in self.csp])


def _console_error(msg) -> str | None:
    if msg.type != "error":
        return None
    url = (msg.location or {}).get("url", "")
    return f"{msg.text} ({url})"


def open_tab(browser, base: str, **context_args):
    context = browser.new_context(**context_args)
    context.set_default_timeout(TIMEOUT_MS)
    csp: list[str] = []
    context.expose_function("__reportCsp", lambda report: csp.append(report))
    context.add_init_script(CSP_WATCH)
    page = context.new_page()
    tab = Tab(page, base, csp=csp)

    def on_dialog(dialog):
        tab.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def on_console(msg):
        text = _console_error(msg)
        if text:
            tab.console_errors.append(text)

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda exc: tab.page_errors.append(str(exc)))
    page.on("console", on_console)
    return context, tab


def _finish(context, tab: Tab) -> None:
    try:
        tab.page.wait_for_timeout(50)  # let late console / CSP reports arrive
        problems = tab.problems()
    finally:
        context.close()
    assert not problems, "the browser reported problems:\n" + "\n".join(problems)


@pytest.fixture
def tab(browser, base_url):
    context, t = open_tab(browser, base_url, viewport={"width": 1280, "height": 900})
    yield t
    _finish(context, t)


@pytest.fixture
def phone(browser, base_url):
    context, t = open_tab(browser, base_url, viewport={"width": 390, "height": 844}, device_scale_factor=1,
                          is_mobile=True, has_touch=True)
    yield t
    _finish(context, t)


# -- helpers ---------------------------------------------------------------------------------------------
def result_keys(page) -> list[str]:
    return page.locator("main .paper").evaluate_all("els => els.map(e => e.dataset.paper)")


def card(page, key: str):
    return page.locator(f'.paper[data-paper="{key}"]')


def search_from_header(page, text: str) -> None:
    box = page.locator("header form.searchbox input[name=q]")
    box.fill(text)
    with page.expect_navigation():
        box.press("Enter")


# -- the pages ------------------------------------------------------------------------------------------
def test_search_from_the_header_box(tab):
    page = tab.page
    tab.go("/")
    search_from_header(page, "speculative decoding")
    assert urlsplit(page.url).path == "/search"
    assert tab.query["q"] == ["speculative decoding"]
    expect(page).to_have_title(re.compile("^speculative decoding"))
    expect(page.locator("header input[name=q]")).to_have_value("speculative decoding")  # kept for editing
    titles = page.locator("main .paper .paper-title")
    expect(titles.first).to_be_visible()
    assert titles.count() == 20
    assert re.search(r"speculative decoding", titles.first.inner_text(), re.I)
    # the query's words are highlighted, in titles and in abstracts
    title_marks = page.locator(".paper-title mark")
    abstract_marks = page.locator(".paper .abstract mark")
    expect(title_marks.first).to_be_visible()
    expect(abstract_marks.first).to_be_visible()
    marked = [t.lower() for t in title_marks.all_inner_texts() + abstract_marks.all_inner_texts()]
    assert marked and all(t.startswith(("specul", "decod")) for t in marked), marked  # words, or their stems
    expect(page.locator(".summary")).to_contain_text("Results 1–20")


def test_filters_category_author_and_newest_first(tab):
    page = tab.page
    tab.go("/search?q=graph+networks")
    cats_of = "els => els.map(e => [...e.querySelectorAll('.meta .cat')].map(c => c.textContent))"
    before = page.locator("main .paper").evaluate_all(cats_of)
    assert before and any("cs.LG" not in cats for cats in before)  # so the filter has something to do

    filters = page.locator("form.filters")
    filters.get_by_label("Category").fill("cs.LG")
    with page.expect_navigation():
        filters.get_by_role("button", name="Apply").click()
    assert tab.query["cat"] == ["cs.LG"] and tab.query["q"] == ["graph networks"]
    expect(page.locator("form.filters").get_by_label("Category")).to_have_value("cs.LG")
    after = page.locator("main .paper").evaluate_all(cats_of)
    assert len(after) >= 5
    assert all("cs.LG" in cats for cats in after), after

    filters = page.locator("form.filters")
    filters.get_by_label("Category").fill("")
    filters.get_by_label("Author").fill("Marie Curie")
    filters.get_by_label("Sort").select_option("newest")
    with page.expect_navigation():
        filters.get_by_role("button", name="Apply").click()
    assert tab.query["au"] == ["Marie Curie"] and tab.query["sort"] == ["newest"]
    expect(page.locator("form.filters").get_by_label("Sort")).to_have_value("newest")
    # both of her papers, newest first, and nothing else
    assert result_keys(page) == ["2606.99002", "2606.99003"]
    for authors in page.locator("main .paper .authors").all_inner_texts():
        assert "Marie Curie" in authors


def test_newest_first_dates_descend(tab):
    page = tab.page
    tab.go("/search?q=learning&sort=newest")
    days = page.locator("main .paper .meta time").evaluate_all("els => els.map(e => e.dateTime)")
    assert len(days) == 20
    assert days == sorted(days, reverse=True)
    assert days[0] > days[-1]  # more than one day in view, so the order means something


def test_next_page(tab):
    page = tab.page
    tab.go("/search?q=learning")
    first = result_keys(page)
    assert len(first) == 20
    expect(page.locator(".pager a[rel=prev]")).to_have_count(0)
    nxt = page.locator(".pager a[rel=next]")
    expect(nxt).to_be_visible()
    with page.expect_navigation():
        nxt.click()
    assert tab.query["page"] == ["2"] and tab.query["q"] == ["learning"]
    second = result_keys(page)
    assert second and not set(second) & set(first)
    expect(page.locator(".summary")).to_contain_text("Results 21–")
    expect(page.locator(".pager a[rel=prev]")).to_be_visible()


def test_long_abstract_expands_and_collapses(tab):
    page = tab.page
    tab.go("/search?q=speculative+decoding")
    first = page.locator("main .paper").first
    abstract, button = first.locator(".abstract"), first.locator("button.toggle")
    expect(abstract).to_have_class(re.compile(r"\bcollapsed\b"))
    expect(button).to_be_visible()
    expect(button).to_have_text("more")
    height = abstract.evaluate("e => e.clientHeight")
    button.click()
    expect(abstract).not_to_have_class(re.compile(r"\bcollapsed\b"))
    expect(button).to_have_text("less")
    expect(button).to_have_attribute("aria-expanded", "true")
    assert abstract.evaluate("e => e.clientHeight") > height
    button.click()
    expect(abstract).to_have_class(re.compile(r"\bcollapsed\b"))
    expect(button).to_have_text("more")


def test_short_abstract_has_no_toggle(tab):
    tab.go("/search?au=Marie+Curie")
    toggles = tab.page.locator("main .paper button.toggle")
    expect(toggles).to_have_count(2)
    for i in range(2):
        expect(toggles.nth(i)).to_be_hidden()


def test_open_a_paper_then_a_related_one(tab):
    page = tab.page
    tab.go("/search?q=molecular+property+prediction")
    link = card(page, "2606.99002").locator(".paper-title a")
    with page.expect_navigation():
        link.click()
    assert urlsplit(page.url).path == "/paper/2606.99002"
    expect(page.locator("h1")).to_have_text("Graph neural networks for molecular property prediction")
    expect(page.locator(".paper-page .authors")).to_have_text("Marie Curie")
    links = page.locator(".paper-page .links")
    expect(links.get_by_role("link", name="abs", exact=True)).to_have_attribute(
        "href", "https://arxiv.org/abs/2606.99002")
    expect(links.get_by_role("link", name="pdf", exact=True)).to_have_attribute(
        "href", "https://arxiv.org/pdf/2606.99002")
    related = page.locator(".related .paper")
    expect(related.first).to_be_visible()
    assert 1 <= related.count() <= 10
    assert "2606.99002" not in result_keys(page)  # a paper is not related to itself
    target = related.first.locator(".paper-title a")
    title, key = target.inner_text(), related.first.get_attribute("data-paper")
    with page.expect_navigation():
        target.click()
    assert urlsplit(page.url).path == f"/paper/{key}"
    expect(page.locator("h1")).to_have_text(title)
    expect(page.locator(".related .paper").first).to_be_visible()


def test_trending_periods(tab):
    page = tab.page
    tab.go("/trending")
    current = page.locator(".periods a[aria-current=page]")
    expect(current).to_have_text("day")
    papers = page.locator("main .paper")
    expect(papers.first).to_be_visible()
    votes = page.locator("main .paper .votes").all_inner_texts()
    assert votes and all(re.fullmatch(r"▲ \d+", v) for v in votes)

    with page.expect_navigation():
        page.locator(".periods").get_by_role("link", name="week").click()
    assert tab.query["period"] == ["week"]
    expect(page).to_have_title(re.compile(r"Trending \(week\)"))
    expect(current).to_have_text("week")
    keys = result_keys(page)
    assert "2606.13681" in keys[:3], keys[:5]  # 118 votes, listed on the window's last day
    expect(card(page, "2606.13681").locator(".votes")).to_have_text("▲ 118")

    with page.expect_navigation():
        page.locator(".periods").get_by_role("link", name="month").click()
    assert tab.query["period"] == ["month"]
    expect(current).to_have_text("month")
    expect(page.locator("main p.muted").first).to_contain_text("papers")
    assert len(result_keys(page)) == 20
    expect(page.locator(".pager a[rel=next]")).to_be_visible()


def test_papers_like_this_abstract(tab):
    page = tab.page
    tab.go("/paper/2606.99002")
    with page.expect_navigation():
        page.get_by_role("link", name="Find papers like this abstract").click()
    assert urlsplit(page.url).path == "/like" and tab.query["paper"] == ["2606.99002"]
    text = page.locator("form.like textarea")
    expect(text).to_have_value(re.compile(r"^Graph neural networks for molecular property prediction\. We "))
    cookie = next(c for c in page.context.cookies() if c["name"] == "paperradar_csrf")
    assert cookie["httpOnly"]
    with page.expect_navigation():
        page.get_by_role("button", name="Find similar papers").click()
    expect(page.get_by_role("heading", name="Most similar")).to_be_visible()
    expect(page.locator("[role=alert]")).to_have_count(0)
    keys = result_keys(page)
    assert keys[0] == "2606.99002"  # its own text is the closest match
    assert "2606.99003" in keys  # the other graph-network paper on atoms


def test_like_form_without_its_cookie_is_refused(tab):
    page = tab.page
    tab.go("/like?paper=2606.99002")
    page.context.clear_cookies()  # as if the form came from another site, or the cookie expired
    with page.expect_navigation():
        page.get_by_role("button", name="Find similar papers").click()
    expect(page.locator(".error[role=alert]")).to_contain_text("this form has expired")
    expect(page.get_by_role("heading", name="Most similar")).to_have_count(0)
    refusal = ("Failed to load resource: the server responded with a status of 400 (Bad Request) "
               f"({tab.base}/like)")
    assert refusal in tab.console_errors
    tab.console_errors.remove(refusal)  # expected here


def test_stored_markup_stays_text(tab):
    page = tab.page
    hostile = ("window.__xss !== undefined || document.querySelector("
               "'main script, main iframe, main img, main style, [onerror], [onmouseover], [onclick], "
               "[href^=\"javascript:\" i], [src^=\"javascript:\" i]') !== null")
    tab.go("/")
    search_from_header(page, "adversarial sanitizers")
    hit = card(page, "2606.99001")
    expect(hit.locator(".paper-title")).to_have_text(XSS_TITLE)  # the markup, as text
    expect(hit.locator(".paper-title")).to_contain_text("<script>")
    expect(hit.locator(".authors")).to_contain_text("Mallory <b>Evil</b>")
    expect(hit.locator(".abstract mark").first).to_have_text(re.compile("adversarial|sanitizers", re.I))
    hit.locator(".abstract").hover()
    hit.locator(".abstract").click()
    assert page.evaluate(hostile) is False

    with page.expect_navigation():
        hit.locator(".paper-title a").click()
    assert urlsplit(page.url).path == "/paper/2606.99001"
    expect(page.locator("h1")).to_have_text(XSS_TITLE)
    expect(page.locator("h1")).to_contain_text("<script>window.__xss = 1</script>")
    expect(page.locator("h1")).to_be_visible()  # the abstract's <style>body{display:none}</style> did nothing
    abstract = page.locator(".abstract-full")
    expect(abstract).to_have_text(XSS_ABSTRACT)
    expect(page.locator(".facts")).to_contain_text('<iframe src="javascript:window.__xss=5"></iframe>')
    abstract.hover()
    abstract.click()
    page.locator(".paper-page .authors").hover()
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.evaluate(hostile) is False
    expect(page.locator('a[href^="javascript:" i]')).to_have_count(0)
    # our own scripts only, from /static (no inline script): the app, the math renderer and the cite button
    srcs = page.locator("script").evaluate_all("els => els.map(e => e.getAttribute('src'))")
    assert "/static/app.js" in srcs and set(srcs) <= OUR_SCRIPTS

    with page.expect_navigation():
        page.get_by_role("link", name="Find papers like this abstract").click()
    expect(page.locator("form.like textarea")).to_have_value(f"{XSS_TITLE}. {XSS_ABSTRACT}")
    with page.expect_navigation():
        page.get_by_role("button", name="Find similar papers").click()
    expect(card(page, "2606.99001").locator(".paper-title")).to_have_text(XSS_TITLE)
    assert page.evaluate(hostile) is False
    assert not tab.dialogs


@pytest.mark.parametrize("path", ["/", "/search?q=speculative+decoding", "/paper/2606.13681",
                                  "/trending?period=week", "/search?q=zzqxv&au=Nobody+Atall"])
def test_phone_width_has_no_sideways_scroll(phone, path):
    page = phone.page
    phone.go(path)
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1] == 390, f"{path}: the page is {width[0]} px wide in a {width[1]} px window"
    box = page.locator("header form.searchbox input[name=q]")
    expect(box).to_be_visible()
    assert box.bounding_box()["width"] >= 150
    if path.startswith("/search"):
        filters = page.locator("form.filters")
        expect(filters).to_be_visible()
        for name in ("Category", "Author", "Since", "Until", "Sort"):
            expect(filters.get_by_label(name)).to_be_in_viewport()
        expect(filters.get_by_role("button", name="Apply")).to_be_visible()


def test_no_results_suggests_other_searches(tab):
    page = tab.page
    tab.go("/search?q=zzqxv+cat:cs.LG&au=Nobody+Atall")
    box = page.locator("section.noresults")
    expect(box.get_by_role("heading", name="No papers match")).to_be_visible()
    expect(page.locator("main .paper")).to_have_count(0)
    suggestions = box.locator("li a")
    expect(suggestions).to_have_count(4)
    expect(suggestions.nth(0)).to_have_text("the same words without the filters")
    expect(suggestions.nth(1)).to_have_text("just the words: zzqxv")
    with page.expect_navigation():
        suggestions.get_by_text("today's trending papers").click()
    assert urlsplit(page.url).path == "/trending"
    expect(page.locator("main .paper").first).to_be_visible()


def test_words_that_occur_nowhere_are_said_to_match_by_meaning_only(tab):
    tab.go("/search?q=zzqxv+cat:cs.LG")
    notice = tab.page.locator(".meaning-only")
    expect(notice).to_contain_text("No paper contains these words")
    assert notice.locator("a").count() >= 1  # with suggestions
    assert tab.page.locator("main .paper mark").count() == 0


def test_search_feed_link(tab):
    page = tab.page
    tab.go("/search?q=speculative+decoding&sort=relevance")
    alternate = page.locator('link[rel=alternate][type="application/atom+xml"]')
    expect(alternate).to_have_count(1)
    href = alternate.get_attribute("href")
    assert href == page.locator("a.feed").get_attribute("href")  # the visible link: the same feed
    assert "sort=" not in href  # a feed is newest-first
    response = page.request.get(page.url.split("/search")[0] + href)
    assert response.status == 200
    assert response.headers["content-type"].startswith("application/atom+xml")
    feed = ET.fromstring(response.body())
    assert feed.findtext(f"{ATOM_NS}title") == "paperradar: speculative decoding"
    entries = feed.findall(f"{ATOM_NS}entry")
    assert entries
    assert all("/paper/" in e.find(f"{ATOM_NS}link").get("href") for e in entries)


def test_trending_feed_link(tab):
    page = tab.page
    tab.go("/trending?period=week")
    href = page.locator('link[rel=alternate][type="application/atom+xml"]').get_attribute("href")
    assert href == "/feeds/trending.atom?period=week"
    response = page.request.get(tab.base + href)
    assert response.status == 200 and response.headers["content-type"].startswith("application/atom+xml")
    entries = ET.fromstring(response.body()).findall(f"{ATOM_NS}entry")
    assert any(e.find(f"{ATOM_NS}link").get("href").endswith("/paper/2606.13681") for e in entries)


@pytest.mark.parametrize("path", ["/", "/search?q=speculative+decoding", "/paper/2606.99001",
                                  "/trending", "/like?paper=2606.99002", "/search?q=zzqxv&au=Nobody+Atall"])
def test_pages_need_no_inline_script(tab, path):
    page = tab.page
    response = tab.go(path)
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.wait_for_load_state("load")
    assert tab.csp == [] and tab.console_errors == [] and tab.page_errors == []
    # The watch works, and the policy is enforced: an inline script added now is blocked and reported.
    assert_inline_script_blocked(tab)


def assert_inline_script_blocked(tab) -> None:
    """Add an inline script to the page: the CSP must block it and the tab's watch must report it (then
    the report is cleared, so the test's own end-of-test check stays clean)."""
    page = tab.page
    page.evaluate("""() => { const s = document.createElement("script");
                             s.textContent = "window.__inline = 1"; document.body.append(s); }""")
    deadline = time.monotonic() + 5
    while not tab.csp and time.monotonic() < deadline:
        page.wait_for_timeout(20)
    assert page.evaluate("typeof window.__inline") == "undefined"
    assert tab.csp and tab.csp[0].startswith("script-src-elem blocked inline"), tab.csp
    tab.csp.clear()
    tab.console_errors[:] = [e for e in tab.console_errors if "Content Security Policy" not in e]
