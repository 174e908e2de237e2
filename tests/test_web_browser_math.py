"""Math and citing in a real browser: Debian's Chromium, driven by Playwright, against a real uvicorn.

A title with ``$\\pi^2$`` is drawn as MathML by the vendored KaTeX with no Content-Security-Policy
violation and no console error; ``$\\frac{$`` stays as its text; pages without math do not load KaTeX;
"Copy BibTeX" puts the paper's BibTeX on the clipboard; without JavaScript the LaTeX and the BibTeX are
there as text. The papers are those of tests/test_web_math.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import serve_in_thread
from test_web_math import BROKEN_TITLE, MATH_TITLE, make_math_data, math_app

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(reason=f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package")
expect = sync_api.expect

pytestmark = pytest.mark.browser
TIMEOUT_MS = 10_000
KATEX = "/static/katex/katex.min.js"
# CSP violations reported to the test (an init script is the browser's own: the page's CSP does not apply).
CSP_WATCH = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.__reportCsp(`${e.effectiveDirective} blocked ${e.blockedURI || "inline"}`);
});
"""


@pytest.fixture(scope="module")
def base_url(tmp_path_factory, embedder):
    data = make_math_data(tmp_path_factory.mktemp("mathbrowser"), embedder)
    with math_app(data, embedder) as app, serve_in_thread(app) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM))
        yield b
        b.close()


class Watched:
    """A page in a fresh context, with every console message, script error, CSP violation and request."""

    def __init__(self, browser, base: str, **context_args):
        self.base = base
        self.context = browser.new_context(**context_args)
        self.context.set_default_timeout(TIMEOUT_MS)
        self.problems: list[str] = []
        self.requests: list[str] = []
        if context_args.get("java_script_enabled", True):
            self.context.expose_function("__reportCsp", lambda v: self.problems.append(f"CSP: {v}"))
            self.context.add_init_script(CSP_WATCH)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: m.type in ("error", "warning")
                     and self.problems.append(f"console {m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.problems.append(f"script error: {e}"))
        self.page.on("request", lambda r: self.requests.append(r.url[len(base):]))

    def go(self, path: str):
        response = self.page.goto(self.base + path)
        assert response is not None and response.ok, path
        self.page.wait_for_load_state("load")
        return self.page

    def close(self) -> None:
        self.page.wait_for_timeout(50)  # late reports
        self.context.close()
        assert not self.problems, "\n".join(self.problems)


@pytest.fixture
def tab(browser, base_url):
    t = Watched(browser, base_url)
    yield t
    t.close()


def test_a_title_with_math_renders_as_mathml(tab):
    page = tab.go("/paper/2606.98001")
    title = page.locator("h1.math")
    expect(title.locator(".tex.tex-done math")).to_have_count(1)
    assert title.locator("annotation").text_content() == r"\pi^2"  # the source stays in the MathML
    assert title.locator("math msup mi").text_content() == "π"
    assert title.locator("math msup mn").text_content() == "2"
    # the abstract's formulas too, \mathbb{R} in Unicode's double-struck letter (MathML Core draws no
    # mathvariant); prices stay text
    abstract = page.locator(".abstract-full.math")
    expect(abstract.locator(".tex-done math")).to_have_count(3)
    assert "ℝ" in abstract.locator("math").nth(1).text_content()
    assert "training costs $5 and $6 per run" in abstract.inner_text()
    # MathML only: no inline style for the CSP to block, no KaTeX font or stylesheet fetched
    assert page.locator("main [style]").count() == 0
    assert KATEX in tab.requests and not any("font" in r or r.endswith(".css") and "katex" in r
                                             for r in tab.requests)
    assert page.locator("h1 math").bounding_box()["width"] > 5  # drawn, not an empty box


def test_broken_latex_stays_as_its_text(tab):
    page = tab.go("/paper/2606.98002")
    expect(page.locator("h1 .tex.tex-error")).to_have_count(1)
    assert page.locator("h1 math").count() == 0
    assert page.locator("h1").inner_text() == BROKEN_TITLE


def test_a_page_without_math_does_not_load_katex(tab):
    page = tab.go("/like")
    page.wait_for_timeout(100)
    assert "/static/math.js" in tab.requests and KATEX not in tab.requests


def test_search_results_highlight_words_and_render_math(tab):
    page = tab.go("/search?q=squared+attention+pi")
    card = page.locator('.paper[data-paper="arxiv:2606.98001"], .paper[data-paper="2606.98001"]').first
    expect(card.locator(".paper-title .tex-done math")).to_have_count(1)
    marks = [m.lower() for m in card.locator(".paper-title mark").all_inner_texts()]
    assert "squared" in marks and "attention" in marks
    assert card.locator(".tex mark").count() == 0


def test_copy_bibtex_puts_it_on_the_clipboard(browser, base_url):
    tab = Watched(browser, base_url, permissions=["clipboard-read", "clipboard-write"])
    try:
        page = tab.go("/paper/2606.98001")
        button = page.locator("button.copy-bibtex")  # by class: its name changes when clicked
        expect(button).to_have_accessible_name("Copy BibTeX")
        button.click()
        expect(button).to_have_text("Copied")
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied == page.locator("pre#bibtex").text_content()
        assert copied.startswith("@misc{erdos2026squared,") and r"title = {$\pi^2$: squared" in copied
        expect(button).to_have_text("Copy BibTeX", timeout=5000)
    finally:
        tab.close()


def test_without_javascript_latex_and_bibtex_are_text(browser, base_url):
    tab = Watched(browser, base_url, java_script_enabled=False)
    try:
        page = tab.go("/paper/2606.98001")
        assert page.locator("h1").inner_text() == MATH_TITLE
        assert page.locator("math").count() == 0
        expect(page.locator("button.copy-bibtex")).to_be_hidden()
        page.locator("details.cite summary").click()
        expect(page.locator("pre#bibtex")).to_be_visible()
        assert page.locator("pre#bibtex").inner_text().startswith("@misc{erdos2026")
        assert KATEX not in tab.requests
    finally:
        tab.close()


def test_copy_bibtex_without_the_clipboard_api_copies_the_selection(browser, base_url):
    """Over plain http on a LAN (not a secure context) there is no navigator.clipboard."""
    tab = Watched(browser, base_url)
    tab.context.add_init_script(
        "Object.defineProperty(Navigator.prototype, 'clipboard', {get: () => undefined})")
    try:
        page = tab.go("/paper/2606.98001")
        assert page.evaluate("navigator.clipboard") is None
        button = page.locator("button.copy-bibtex")
        button.click()
        expect(button).to_have_text("Copied")  # document.execCommand("copy") of the selected BibTeX
        assert page.evaluate("getSelection().toString()") == ""  # and the selection is given back
    finally:
        tab.close()
