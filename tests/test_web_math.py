"""Math in titles and abstracts, and citing a paper, through the real app (issue 12).

Pages mark each LaTeX math segment for static/math.js and keep search highlights out of it; feeds, mails
and the API read math as Unicode text; a paper's BibTeX (the library exporter's entry) is on its page and
at ``GET /api/v1/papers/{id}/bibtex``. The app runs over a small store of its own with the real model
(the browser test, tests/test_web_browser_math.py, serves the same papers).
"""

from __future__ import annotations

import html
import re
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from paperradar import bibtex
from paperradar.mail import TEMPLATES
from paperradar.models import Paper
from paperradar.search import SearchEngine
from paperradar.store import Store
from paperradar.web.app import create_app
from paperradar.web.templating import highlight

MATH_TITLE = r"$\pi^2$: squared circles for transformer attention"
MATH_ABSTRACT = (r"We bound transformer attention by $O(n\log n)$ over \(\mathbb{R}^d\); "
                 r"training costs $5 and $6 per run, and attention heads $h_i^2$ help.")
BROKEN_TITLE = r"Broken $\frac{$ formulas in transformer attention titles"
ACCENT_TITLE = r"Schrödinger bridges & Erdős graphs: 100% of {braces} and $\alpha$-divergences"
PAPERS = [
    Paper(title=MATH_TITLE, source="arxiv", arxiv_id="2606.98001", abstract=MATH_ABSTRACT,
          authors=["Paul Erdős", "Ada Lovelace"], categories=["cs.LG"],
          announced="2026-06-10", submitted="2026-06-09T10:00:00Z"),
    Paper(title=BROKEN_TITLE, source="arxiv", arxiv_id="2606.98002",
          abstract=r"A formula that does not parse, $\frac{$, stays as written; attention is all.",
          authors=["Alan Turing"], categories=["cs.CL"], announced="2026-06-10",
          submitted="2026-06-08T09:00:00Z"),
    Paper(title=ACCENT_TITLE, source="arxiv", arxiv_id="2606.98003", doi="10.1000/math.98003",
          abstract="Entropic transport between distributions with accents in the authors' names.",
          authors=["Émilie du Châtelet", "Jürgen Groß"], categories=["stat.ML"], announced="2026-06-09",
          submitted="2026-06-07T09:00:00Z", journal_ref="J. Appl. Prob. 12 (2026)"),
    Paper(title="Plain words about transformer attention and nothing else", source="arxiv",
          arxiv_id="2606.98004", abstract="Attention without any formula at all.", authors=["Grace Hopper"],
          categories=["cs.CL"], announced="2026-06-08", submitted="2026-06-06T09:00:00Z"),
]
ENV = {"PAPERRADAR_RATE_LIMIT": "0", "PAPERRADAR_BASE_URL": "http://testserver"}
TEX = re.compile(r'<span class="tex">(.*?)</span>', re.S)


def make_math_data(root: Path, embedder) -> Path:
    """A data directory with PAPERS, indexed with the session's model."""
    data = root / "data"
    data.mkdir()
    store = Store(data / "paperradar.sqlite3")
    store.upsert_papers(PAPERS)
    engine = SearchEngine(store, embedder=embedder, embed_threads=1)
    engine.update()
    engine.close()
    store.close()
    return data


@contextmanager
def math_app(data: Path, embedder, env: dict | None = None):
    store = Store(data / "paperradar.sqlite3")
    engine = SearchEngine(store, embedder=embedder, embed_threads=1)
    try:
        yield create_app(data, env={**ENV, **(env or {})}, engine=engine, warm=False)
    finally:
        engine.close()
        store.close()


@pytest.fixture(scope="module")
def client(tmp_path_factory, embedder):
    data = make_math_data(tmp_path_factory.mktemp("mathweb"), embedder)
    with math_app(data, embedder) as app, TestClient(app) as c:
        yield c


def tex_spans(page: str) -> list[str]:
    return [html.unescape(s) for s in TEX.findall(page)]


# -- pages: math marked for the renderer, highlights outside it ---------------------------------------------
def test_paper_page_marks_math_for_the_renderer(client):
    r = client.get("/paper/2606.98001")
    assert r.status_code == 200
    page = r.text
    assert '<script src="/static/math.js" defer></script>' in page
    assert re.search(r'<h1 class="math"><span class="tex">\$\\pi\^2\$</span>: squared circles', page)
    assert tex_spans(page)[:3] == [r"$\pi^2$", r"$O(n\log n)$", r"\(\mathbb{R}^d\)"]
    assert r"$h_i^2$" in tex_spans(page)
    # prices are text, and the abstract's paragraph is marked for the renderer too
    assert "training costs $5 and $6 per run" in page
    assert re.search(r'<p class="abstract-full math">We bound', page)
    # the tab's title is text: no LaTeX, no markup
    assert re.search(r"<title>π²: squared circles for transformer attention · paperradar</title>", page)


def test_without_script_the_latex_is_the_text(client):
    """What the renderer finds is the original, escaped text: a page without JavaScript shows it as is."""
    page = client.get("/paper/2606.98002").text
    assert tex_spans(page)[0] == r"$\frac{$"  # broken: marked all the same; math.js leaves it as text
    text = html.unescape(re.sub(r"<[^>]+>", "", re.search(r"<h1.*?</h1>", page, re.S).group()))
    assert text == BROKEN_TITLE


def test_search_highlights_words_but_never_inside_math(client):
    r = client.get("/search", params={"q": "squared attention pi"})
    assert r.status_code == 200
    card = re.search(r'<article class="paper"[^>]*data-paper="2606.98001".*?</article>', r.text, re.S).group()
    title = re.search(r'<h3 class="paper-title math">.*?</h3>', card, re.S).group()
    assert "<mark>squared</mark>" in title and "<mark>attention</mark>" in title
    assert '<span class="tex">$\\pi^2$</span>' in title  # "pi" is in the query, but inside math
    abstract = re.search(r'<p class="abstract collapsed math">.*?</p>', card, re.S).group()
    assert "<mark>attention</mark>" in abstract
    for span in TEX.findall(card):
        assert "<mark>" not in span


def test_highlight_clips_a_span_at_math():
    text = r"pi and $\pi$ and pi"
    assert highlight(text, [(0, 2), (8, 10), (17, 19)], math=True) == (
        r'<mark>pi</mark> and <span class="tex">$\pi$</span> and <mark>pi</mark>')
    # a span running into a formula keeps its part outside it
    assert highlight(text, [(3, 9)], math=True) == \
        r'pi <mark>and </mark><span class="tex">$\pi$</span> and pi'
    # escaped, inside math as out of it; without math=True nothing changes
    assert highlight("<b> $a<b$", [], math=True) == '&lt;b&gt; <span class="tex">$a&lt;b$</span>'
    assert highlight("$x$", [(1, 2)]) == "$<mark>x</mark>$"


def test_paper_cards_elsewhere_mark_math(client):
    page = client.get("/search", params={"q": "formulas", "sort": "newest"}).text
    assert r"$\frac{$" in tex_spans(page)
    assert re.search(r'<h3 class="paper-title math">', page)


# -- feeds, mails and the API: readable text -----------------------------------------------------------------
def test_api_gives_title_text_beside_the_title(client):
    p = client.get("/api/v1/papers/2606.98001").json()
    assert p["title"] == MATH_TITLE
    assert p["title_text"] == "π²: squared circles for transformer attention"
    assert list(p).index("title_text") == list(p).index("title") + 1
    broken = client.get("/api/v1/papers/2606.98002").json()
    assert broken["title_text"] == BROKEN_TITLE  # kept as written
    hits = client.get("/api/v1/search", params={"q": "squared circles"}).json()["hits"]
    top = next(h for h in hits if h["arxiv_id"] == "2606.98001")
    assert top["title_text"].startswith("π²:") and top["title"] == MATH_TITLE


def test_feeds_read_math_as_text(client):
    r = client.get("/feeds/search.atom", params={"q": "squared circles"})
    assert r.status_code == 200
    assert "<title>π²: squared circles for transformer attention</title>" in r.text
    assert "O(n log n) over ℝᵈ" in r.text
    assert r"\pi" not in r.text.split("<entry>", 1)[1].split("</entry>", 1)[0]


def test_mail_templates_read_math_as_text():
    assert TEMPLATES.from_string("{{ t | math_text }}").render(t=MATH_TITLE) == \
        "π²: squared circles for transformer attention"
    for name in ("digest.txt", "digest.html"):
        source = TEMPLATES.loader.get_source(TEMPLATES, name)[0]
        titles = re.findall(r"\{\{ [\w.]*title( \| [^}]*)?\}\}", source)
        assert titles and all("math_text" in t for t in titles), (name, titles)


# -- BibTeX -------------------------------------------------------------------------------------------------
def test_bibtex_endpoint(client):
    r = client.get("/api/v1/papers/2606.98003/bibtex")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/x-bibtex; charset=utf-8"
    entries, problems = bibtex.parse(r.text)
    assert not problems and len(entries) == 1
    e = entries[0]
    assert e.type == "misc" and e.key == "chatelet2026schrodinger"
    # text escaped on the way out, math written as LaTeX math (BibTeX and LaTeX typeset it)
    assert e.fields["title"] == (r"Schrödinger bridges \& Erdős graphs: 100\% of \{braces\} and "
                                 r"$\alpha$-divergences")
    assert bibtex.plain(e.fields["title"]) == ACCENT_TITLE.replace("$\\alpha$", "α")
    assert bibtex.plain(e.fields["author"]) == "Émilie du Châtelet and Jürgen Groß"
    assert e.fields["eprint"] == "2606.98003" and e.fields["doi"] == "10.1000/math.98003"
    assert e.fields["journal"] == "J. Appl. Prob. 12 (2026)" and e.fields["year"] == "2026"
    assert "abstract" not in e.fields and "keywords" not in e.fields


@pytest.mark.parametrize("ref", ["2606.98003", "2606.98003v2", "arXiv:2606.98003", "10.1000/math.98003",
                                 "https://arxiv.org/abs/2606.98003"])
def test_bibtex_takes_what_the_paper_route_takes(client, ref):
    assert client.get(f"/api/v1/papers/{ref}").status_code == 200
    r = client.get(f"/api/v1/papers/{ref}/bibtex")
    assert r.status_code == 200 and "eprint = {2606.98003}" in r.text


def test_bibtex_of_a_math_title_reads_back(client):
    r = client.get("/api/v1/papers/2606.98001/bibtex")
    (entry,), _ = bibtex.parse(r.text)
    assert entry.fields["title"] == MATH_TITLE  # the formula as it is: math to BibTeX too
    # the key's title word is the first real word, not what is left of the formula ("erdos20262" before)
    assert entry.key == "erdos2026squared" and entry.fields["primaryclass"] == "cs.LG"


def test_bibtex_of_an_unknown_paper_is_404(client):
    r = client.get("/api/v1/papers/2606.00000/bibtex")
    assert r.status_code == 404
    assert r.json()["error"]["status"] == 404


def test_the_page_shows_the_bibtex_and_a_copy_button(client):
    page = client.get("/paper/2606.98003").text
    pre = re.search(r'<pre id="bibtex">(.*?)</pre>', page, re.S)
    assert pre and html.unescape(pre.group(1)) == client.get("/api/v1/papers/2606.98003/bibtex").text
    assert re.search(r'<details class="cite">\s*<summary>', page)
    assert '<button type="button" class="copy-bibtex" data-copy="bibtex" hidden>Copy BibTeX</button>' in page
    assert '<script src="/static/cite.js" defer></script>' in page
    link = re.search(r'<a href="(/api/v1/papers/[^"]+/bibtex)" download="2606.98003.bib">', page)
    assert link and client.get(html.unescape(link.group(1))).text == html.unescape(pre.group(1))


def test_static_files_are_served(client):
    for path, kind in [("/static/math.js", "javascript"), ("/static/cite.js", "javascript"),
                       ("/static/katex/katex.min.js", "javascript"), ("/static/katex/LICENSE", "")]:
        r = client.get(path)
        assert r.status_code == 200 and kind in r.headers["content-type"], path
