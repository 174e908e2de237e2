"""What surrounds the abstract, shown wherever a paper is shown: badges on cards and the paper page (code with
its stars, Hugging Face models, datasets and Spaces, the project page, the venue, the organisation), the
one-sentence summary and Hugging Face's keywords, the "With code" switch of the search page, the API's
``summary`` and ``venue_label``, the Atom feed's text and the digest mails. Hostile values (javascript: and
data: links, HTML in keywords, organisation names and venues) never become live links or markup.

Its own small data dir: the recorded Hugging Face daily papers, a few arXiv records with comments, and a
Hugging Face response with hostile values; indexed with the session's model. Real app, real SMTP sink."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import feedparser
import pytest
from fastapi.testclient import TestClient
from mailsink import MailSink

from paperradar import config
from paperradar.digest import Digests, Preferences
from paperradar.ingest import ingest
from paperradar.models import Paper
from paperradar.search import SearchEngine
from paperradar.sources.hf_daily import HFDailySource
from paperradar.store import Store
from paperradar.web.app import create_app
from paperradar.web.templating import around, templates

HF_DAILY = Path(__file__).parent / "fixtures" / "hf_daily_papers" / "sotawhat_hf_daily_papers.json"
BASE_URL = "http://localhost:8000"
MORNING = dt.datetime(2026, 6, 12, 8, 0, tzinfo=dt.UTC)
ATOM = "{http://www.w3.org/2005/Atom}"

NEURIPS = Paper(title="Lattice sieving with learned pruning for cryptanalysis", source="arxiv",
                arxiv_id="2606.90001", authors=["Ada Lovelace"], categories=["cs.CR"],
                abstract="Lattice sieves dominate the cost of attacks on lattice cryptography. We propose a "
                         "learned pruning rule for lattice sieving that halves the cost of finding short "
                         "vectors. Experiments cover dimensions up to 120.",
                comment="Accepted to NeurIPS 2025 (spotlight). Code: https://github.com/ada/x",
                announced="2026-06-11", submitted="2026-06-10T09:00:00Z", upvotes=500)
WORKSHOP = Paper(title="Sieving lattices on graphics cards", source="arxiv", arxiv_id="2606.90002",
                 authors=["Mallory Evil"], categories=["cs.CR"],
                 abstract="Graphics cards run lattice sieves for cryptanalysis fast.",
                 comment='Accepted at the <b onmouseover="alert(1)">Bold</b> Workshop 2025. '
                         "Code: javascript:alert(1)",
                 announced="2026-06-11", submitted="2026-06-10T10:00:00Z", upvotes=400)
# its stored links are overwritten below with what no extraction gives: a value that reached the store some
# other way (an older version, a bug) must still not become a link
TAMPERED = Paper(title="Lattice sieving for post-quantum signatures", source="arxiv", arxiv_id="2606.90003",
                 authors=["Eve Example"], categories=["cs.CR"],
                 abstract="Lattice sieving attacks on post-quantum signature schemes, and their cost.",
                 announced="2026-06-11", submitted="2026-06-10T11:00:00Z", upvotes=300)
TAMPERED_LINKS = [
    {"url": "javascript:alert(1)//github.com/a/b", "kind": "code", "host": "github.com", "source": "hf"},
    {"url": "https://evil.example/owner/repo", "kind": "code", "host": "evil.example", "source": "text"},
    {"url": "data:text/html,<script>alert(2)</script>", "kind": "project", "host": "", "source": "hf"},
    {"url": 'https://huggingface.co/x/y" onmouseover="alert(3)', "kind": "model", "host": "huggingface.co",
     "source": "hf"},
]


def hostile_hf(tmp: Path) -> Path:
    """Two recorded daily papers under new ids, with HTML in the organisation, keywords and summary, and
    javascript: / data: links."""
    items = copy.deepcopy(json.loads(HF_DAILY.read_text())[:2])
    for n, item in enumerate(items):
        item["paper"]["id"] = f"2606.9010{n}"
        item["paper"]["publishedAt"] = "2026-06-11T00:00:00.000Z"
    p = items[0]["paper"]
    p["organization"] = {"name": '"><script>window.__x=1</script>',
                         "fullname": "<img src=x onerror=alert(1)>"}
    p["ai_keywords"] = ['<a href="javascript:alert(1)">click</a>', "lattice sieving"]
    p["ai_summary"] = "We <script>alert(4)</script> summarise."
    p["githubRepo"] = "javascript:alert(5)//github.com/a/b"
    p["projectPage"] = "data:text/html,<script>alert(6)</script>"
    path = tmp / "hostile.json"
    path.write_text(json.dumps(items))
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory, embedder) -> Path:
    data = tmp_path_factory.mktemp("around")
    with Store(data / "paperradar.sqlite3") as store:
        ingest(store, HFDailySource(path=str(HF_DAILY)))
        ingest(store, HFDailySource(path=str(hostile_hf(data))))
        store.upsert_papers([NEURIPS, WORKSHOP, TAMPERED])
        store.db.execute("UPDATE papers SET links = ? WHERE key = ?",
                         (json.dumps(TAMPERED_LINKS), TAMPERED.arxiv_id))
        engine = SearchEngine(store, embedder=embedder)
        engine.update()
        engine.close()
    return data


@pytest.fixture(scope="module")
def engine(data, embedder):
    with Store(data / "paperradar.sqlite3") as store:
        e = SearchEngine(store, embedder=embedder)
        yield e
        e.close()


@pytest.fixture(scope="module")
def client(data, engine):
    with TestClient(create_app(data, engine=engine, env={"PAPERRADAR_RATE_LIMIT": "0"})) as c:
        yield c


def get(client, url: str, status: int = 200):
    r = client.get(url)
    assert r.status_code == status, r.text[:500]
    return r


def card(html: str, key: str) -> str:
    """The HTML of one paper card."""
    start = html.index(f'data-paper="{key}"')
    return html[start:html.index("</article>", start)]


def paper_page(client, key: str) -> str:
    """The paper page's article (without its related papers)."""
    html = get(client, f"/paper/{key}").text
    start = html.index('<article class="paper-page"')
    return html[start:html.index("</article>", start)]


class Tags(HTMLParser):
    def __init__(self, html: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def inert(html: str) -> None:
    """No hostile value of the data dir became an element, an event handler or a link: the page's only
    elements are its own, and every href is a path of this site or an http(s) URL."""
    for tag, attrs in Tags(html).tags:
        assert tag not in ("img", "iframe", "b"), (tag, attrs)
        assert tag != "script" or attrs.get("src", "").startswith("/static/"), (tag, attrs)
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        href = attrs.get("href")
        if href is not None:
            assert href.startswith(("/", "#", "https://", "http://")), href
            assert "evil.example" not in href and '"' not in href, href


# -- cards --------------------------------------------------------------------------------------------------
def test_cards_show_code_stars_hugging_face_links_venue_and_organisation(client):
    html = get(client, "/search?q=sparse+attention+long+context").text
    c = card(html, "2606.13392")
    assert ('<a class="badge code" href="https://github.com/MiniMax-AI/MSA" rel="noopener nofollow"'
            in c)
    assert '<span class="stars" title="GitHub stars">★ 251</span>' in c
    assert ('<a class="badge hf" href="https://huggingface.co/MiniMaxAI/MiniMax-M3" rel="noopener nofollow"'
            in c)
    assert ">HF model</a>" in c
    assert '<a class="org" href="/search?q=org%3AMiniMaxAI"' in c and ">MiniMax</a>" in c
    # Hugging Face's summary, labelled as theirs, above the abstract
    assert c.index("AI summary · Hugging Face") < c.index('class="abstract')
    assert "MiniMax Sparse Attention enables efficient processing" in c

    html = get(client, "/search?q=lattice+sieving").text
    c = card(html, "2606.90001")
    venue = re.search(r'<a class="badge venue" href="([^"]+)"[^>]*>([^<]+)</a>', c)
    assert venue and venue.group(2) == "NeurIPS 2025 (spotlight)"
    assert parse_qs(urlsplit(venue.group(1).replace("&amp;", "&")).query) == {"q": ['venue:"NeurIPS 2025"']}
    assert '<a class="badge code" href="https://github.com/ada/x" rel="noopener nofollow"' in c
    assert "stars" not in c  # no star count known for a repository found in the comment
    # no Hugging Face summary: the card shows no summary line (the abstract's own sentence would repeat it)
    assert "tldr" not in c and "Summary (from the abstract)" not in c


def test_project_pages_and_datasets_once_each(client):
    c = card(get(client, "/search?q=piano+performance").text, "2606.12282")
    # the recorded response gives the project page with and without its final slash: one badge
    assert c.count('class="badge project"') == 1 and "Project page</a>" in c
    c = paper_page(client, "2606.13120")
    assert '<a class="badge hf" href="https://huggingface.co/datasets/Krystalan/EvoBrowseComp"' in c
    assert ">HF dataset</a>" in c


def test_the_venue_badge_search_finds_the_venue(client):
    c = paper_page(client, "2606.90001")
    href = re.search(r'<a class="badge venue" href="([^"]+)"', c).group(1).replace("&amp;", "&")
    hits = get(client, href).context["results"].hits
    assert [h.paper.key for h in hits] == ["2606.90001"]


# -- the paper page -----------------------------------------------------------------------------------------
def test_paper_page_shows_summary_keywords_and_badges(client):
    page = paper_page(client, "2606.13681")
    assert '<p class="tldr math"><span class="tldr-label">AI summary · Hugging Face</span> EvoArena' in page
    keywords = re.search(r'<p class="keywords"><span class="tldr-label">Keywords · Hugging Face</span>'
                         r"(.*?)</p>", page).group(1)
    assert re.findall(r">([^<]+)</a>", keywords)[:2] == ["large language model agents", "EvoArena"]
    assert ('<a class="badge code" href="https://github.com/Aiden0526/EvoArena" rel="noopener nofollow"'
            in page)
    assert "★ 9" in page
    assert '<a class="badge project" href="https://aiden0526.github.io/EvoArena/"' in page
    assert ">Massachusetts Institute of Technology</a>" in page
    # a keyword's link searches for it, and finds the paper
    href = re.search(r'<a class="keyword" href="([^"]+)">EvoArena</a>', page).group(1).replace("&amp;", "&")
    assert "2606.13681" in [h.paper.key for h in get(client, href).context["results"].hits]
    # the math and the Cite box are still there
    assert "<summary>Cite (BibTeX)</summary>" in page and '<h1 class="math">' in page


def test_paper_page_without_hugging_face_says_where_the_summary_comes_from(client):
    page = paper_page(client, "2606.90001")
    assert ('<span class="tldr-label">Summary (from the abstract)</span> We propose a learned pruning rule'
            in page)
    assert "AI summary" not in page and "Keywords" not in page


def test_the_org_link_finds_the_organisations_papers(client):
    page = paper_page(client, "2606.13681")
    href = re.search(r'<a class="org" href="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert parse_qs(urlsplit(href).query) == {"q": ["org:MIT"]}
    assert {h.paper.key for h in get(client, href).context["results"].hits} == {"2606.13681"}


# -- the "With code" switch ---------------------------------------------------------------------------------
def toggle(html: str) -> tuple[bool, str]:
    m = re.search(r'<a class="with-code( on)?" href="([^"]+)"', html)
    assert m, "no With code switch"
    return bool(m.group(1)), m.group(2).replace("&amp;", "&")


def test_with_code_switch_adds_and_removes_has_code(client):
    r = get(client, "/search?q=language+model+agents&since=2026-06&sort=newest")
    hits = r.context["results"].hits
    assert any(not around(h.paper).code for h in hits)  # the switch has something to filter out
    on, href = toggle(r.text)
    assert not on
    assert parse_qs(urlsplit(href).query) == {"q": ["language model agents has:code"], "since": ["2026-06"],
                                              "sort": ["newest"]}
    r = get(client, href)
    hits = r.context["results"].hits
    assert hits and all(any(link["kind"] == "code" for link in h.paper.links) for h in hits)
    # each shows its code badge (but the paper whose stored links were tampered with: none is safe)
    assert all('class="badge code"' in card(r.text, h.paper.key) for h in hits if h.paper.key != "2606.90003")
    on, back = toggle(r.text)
    assert on and "With code<span" in r.text
    assert parse_qs(urlsplit(back).query) == {"q": ["language model agents"], "since": ["2026-06"],
                                              "sort": ["newest"]}
    # a filter-only search (no words) gets the switch too, and the form keeps has:code in its hidden q
    on, href = toggle(get(client, "/search?cat=cs.CR").text)
    assert parse_qs(urlsplit(href).query) == {"q": ["has:code"], "cat": ["cs.CR"]}
    r = get(client, href)
    # (the tampered paper's stored links say code: the filter goes by what is stored)
    assert sorted(h.paper.key for h in r.context["results"].hits) == ["2606.90001", "2606.90003"]
    assert '<input type="hidden" name="q" value="has:code">' in r.text
    assert toggle(r.text) == (True, "/search?cat=cs.CR")


def test_no_switch_without_a_search_or_with_a_bad_one(client):
    assert 'class="with-code' not in get(client, "/search").text
    assert 'class="with-code' not in get(client, "/search?q=since:2024-13", status=400).text
    # -has:code is an exclusion: the switch adds has:code and leaves it (the result is empty, and says so)
    on, href = toggle(get(client, "/search?q=lattice+-has:code").text)
    assert not on and parse_qs(urlsplit(href).query) == {"q": ["lattice -has:code has:code"]}


# -- API ----------------------------------------------------------------------------------------------------
def test_api_papers_carry_summary_and_venue_label(client):
    p = get(client, "/api/v1/papers/2606.90001").json()
    assert p["summary"] == {"text": "We propose a learned pruning rule for lattice sieving that halves the "
                                    "cost of finding short vectors.", "source": "abstract"}
    assert p["venue_label"] == "NeurIPS 2025 (spotlight)"
    assert p["venue"]["name"] == "NeurIPS" and p["links"][0]["url"] == "https://github.com/ada/x"
    p = get(client, "/api/v1/papers/2606.13681").json()
    assert p["summary"]["source"] == "huggingface" and p["summary"]["text"].startswith("EvoArena benchmark")
    assert p["venue_label"] is None and p["hf_keywords"][0] == "large language model agents"
    hits = get(client, "/api/v1/search?q=has:code&cat=cs.CR").json()["hits"]
    assert {h["key"]: h["venue_label"] for h in hits} == {"2606.90001": "NeurIPS 2025 (spotlight)",
                                                         "2606.90003": None}
    for url in ("/api/v1/trending?period=month", "/api/v1/papers/2606.90001/related"):
        body = get(client, url).json()
        for item in body.get("papers") or body["hits"]:
            assert "summary" in item and "venue_label" in item


# -- the Atom feed ------------------------------------------------------------------------------------------
def test_feed_entries_end_with_venue_and_code_lines(client):
    r = get(client, "/feeds/search.atom?q=lattice+sieving")
    feed = feedparser.parse(r.content)
    assert not feed.bozo, feed.get("bozo_exception")
    entries = {e.link.rsplit("/", 1)[-1]: e for e in feed.entries}
    text = entries["2606.90001"].summary
    assert text.endswith("Experiments cover dimensions up to 120.\n\nVenue: NeurIPS 2025 (spotlight)\n"
                         "Code: https://github.com/ada/x")
    assert "Venue:" not in entries["2606.90003"].summary and "Code:" not in entries["2606.90003"].summary
    assert entries["2606.90003"].summary.endswith("and their cost.")
    # the unknown workshop's text is text: escaped in the XML, read back as written
    summaries = {e.find(f"{ATOM}id").text.rsplit(":", 1)[-1]: e.find(f"{ATOM}summary")
                 for e in ET.fromstring(r.content).iter(f"{ATOM}entry")}
    workshop = summaries["2606.90002"]
    assert workshop.get("type") == "text" and not list(workshop)  # no child elements: text
    assert workshop.text.endswith('Venue: <b onmouseover="alert(1)">Bold</b> Workshop 2025')
    assert b"<b onmouseover" not in r.content


# -- hostile values -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("url", ["/paper/2606.90003", "/paper/2606.90002", "/paper/2606.90100",
                                 "/search?q=lattice", "/search?q=psychometric+self-reports",
                                 "/trending?period=month"])
def test_hostile_values_stay_text(client, url):
    html = get(client, url).text
    inert(html)


def test_hostile_values_shown_as_text(client):
    page = paper_page(client, "2606.90100")
    assert "&lt;img src=x onerror=alert(1)&gt;" in page  # the organisation's name, as text
    assert '<span class="org">' in page  # a name with a quote is not made into a search
    assert "&lt;a href=&#34;javascript:alert(1)&#34;&gt;click&lt;/a&gt;" in page  # a keyword, as text
    assert "We &lt;script&gt;alert(4)&lt;/script&gt; summarise." in page
    assert 'class="badge code"' not in page and 'class="badge project"' not in page
    page = paper_page(client, "2606.90003")
    assert 'class="around"' not in page  # every stored link refused: no badge row at all
    page = paper_page(client, "2606.90002")
    # an unknown venue's text, as text; not a search link (its quotes would make it another search)
    assert ('<span class="badge venue">&lt;b onmouseover=&#34;alert(1)&#34;&gt;Bold&lt;/b&gt; Workshop '
            "2025</span>") in page


def test_around_keeps_only_http_links_of_their_kind():
    from paperradar.store import StoredPaper

    p = StoredPaper(id=1, key="k", arxiv_id=None, version=None, title="t", abstract="", authors=[],
                    categories=[], submitted=None, updated=None, announced=None, comment=None,
                    journal_ref=None, doi=None, abs_url=None, pdf_url=None, sources=[], upvotes=None,
                    first_seen="2026-01-01", seq=1, links=TAMPERED_LINKS + [
                        {"url": "https://gitlab.com/a/b", "kind": "code"},
                        {"url": "https://github.com/c/d", "kind": "code"},
                        {"url": "https://huggingface.co/spaces/o/demo", "kind": "space"},
                        {"url": "https://github.com/o/m", "kind": "model"}])
    a = around(p)
    assert (a.code, a.stars) == ("https://gitlab.com/a/b", None)
    assert a.hf == [("HF Space", "https://huggingface.co/spaces/o/demo", "o/demo")]
    assert not a.project and not a.venue and not a.org and bool(a)
    rendered = templates.env.from_string('{% from "_macros.html" import badges with context %}'
                                         "{{ badges(p) }}").render(p=p)
    inert(rendered)
    assert rendered.count("<a ") == 2


# -- digest mails -------------------------------------------------------------------------------------------
def test_digest_shows_venue_and_code_under_each_paper(data, engine):
    with MailSink() as sink:
        env = {"PAPERRADAR_SMTP_HOST": "127.0.0.1", "PAPERRADAR_SMTP_PORT": str(sink.port),
               "PAPERRADAR_MAIL_FROM": "digest@paperradar.test",
               "PAPERRADAR_SECRET_KEY": "test-secret-0123456789",
               "PAPERRADAR_BASE_URL": BASE_URL, "PAPERRADAR_DATA_DIR": str(data)}
        d = Digests(engine.store, engine, config.load(env))
        prefs = Preferences(trending=True, max_papers=50,
                            searches=["lattice sieving cryptanalysis"]).validate()
        sub = d.subs.upsert("ada@example.org", trending=prefs.trending, searches=prefs.searches,
                            max_papers=prefs.max_papers, hour=prefs.hour, tz=prefs.tz, nonce="n0",
                            now="2026-06-08T08:00:00Z")
        d.subs.set_status(sub.id, "active", now="2026-06-08T08:00:00Z")
        d.run(MORNING)
        (msg,) = sink.to("ada@example.org")
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    block = text[text.index("* Lattice sieving with learned pruning"):]
    block = block[:block.index("\n\n") if "\n\n" in block else None]
    lines = block.splitlines()
    assert lines[3:6] == ["  Venue: NeurIPS 2025 (spotlight)", "  Code: https://github.com/ada/x",
                          f"  {BASE_URL}/paper/2606.90001"], block
    assert "  Code: https://github.com/MiniMax-AI/MSA" in text
    assert ('Code: <a href="https://github.com/ada/x" style="color:#1d4ed8">https://github.com/ada/x</a>'
            in html)
    assert ">NeurIPS 2025 (spotlight)</span>" in html
    # hostile values: the tampered paper's javascript: link is left out; the workshop's HTML is text
    assert "* Lattice sieving for post-quantum" in text
    assert "javascript:" not in text.lower() and "javascript:" not in html.lower()
    assert "&lt;b onmouseover=&#34;alert(1)&#34;&gt;Bold&lt;/b&gt; Workshop 2025" in html
    assert "<b onmouseover" not in html
