"""Server-rendered pages through the real app: what each template received, and what it rendered."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import feedparser
import pytest
from conftest import XSS_TITLE
from fastapi.testclient import TestClient

from paperradar.urls import safe_url
from paperradar.web.app import create_app
from paperradar.web.security import CSRF_COOKIE
from paperradar.web.templating import highlight

ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture(scope="module")
def client(web_data, shared_engine):
    with TestClient(create_app(web_data, engine=shared_engine, env={"PAPERRADAR_RATE_LIMIT": "0"})) as c:
        yield c


def page(client, url, status=200):
    r = client.get(url)
    assert r.status_code == status, r.text[:500]
    assert r.headers["content-type"].startswith("text/html")
    return r


def test_home_shows_search_trending_and_newest(client):
    r = page(client, "/")
    assert r.template.name == "home.html"
    ctx = r.context
    assert ctx["count"] > 200
    assert [i.paper.key for i in ctx["trending"].items][:2] == ["2606.13681", "2606.13392"]  # 118, 103 votes
    newest = [p.announced or p.submitted for p in ctx["newest"]]
    assert len(newest) == 10 and newest == sorted(newest, reverse=True)
    assert 'action="/search"' in r.text and "▲ 118" in r.text
    # Hugging Face's comment count (numComments of the recorded daily papers), linked to the discussion
    assert '<a class="comments" href="https://huggingface.co/papers/2606.13681"' in r.text
    assert ">3 comments</a>" in r.text


@pytest.mark.slow
def test_home_of_an_empty_store_says_how_to_load_the_demo(tmp_path):
    with TestClient(create_app(tmp_path, warm=False)) as c:
        r = page(c, "/")
        assert r.context["count"] == 0
        assert "paperradar ingest demo" in r.text and "serve --demo" in r.text
        r = page(c, "/search?q=anything")
        assert r.context["results"].hits == [] and r.context["suggestions"]


def test_search_page_receives_hits_highlights_and_paging(client):
    r = page(client, "/search?q=graph+neural+networks&sort=relevance")
    assert r.template.name == "search.html"
    ctx = r.context
    assert ctx["args"].q == "graph neural networks" and ctx["page"] == 1
    hits = ctx["results"].hits
    assert len(hits) == 20 and ctx["has_next"]
    assert hits[0].paper.key == "2606.99002"
    assert '<mark>Graph</mark> <mark>neural</mark> <mark>networks</mark>' in r.text
    # the URL holds the whole query: the next page, the feed and the filters keep it
    assert 'href="/search?q=graph+neural+networks&amp;sort=relevance&amp;page=2"' in r.text
    assert 'href="/feeds/search.atom?q=graph+neural+networks"' in r.text
    second = page(client, "/search?q=graph+neural+networks&page=2").context["results"].hits
    assert not {h.paper.key for h in second} & {h.paper.key for h in hits}


def test_search_filters_from_form_fields(client):
    r = page(client, "/search?q=graph+networks&au=Marie+Curie&since=2026-06-05")
    assert r.context["results"].query == 'graph networks au:"Marie Curie" since:2026-06-05'
    assert [h.paper.key for h in r.context["results"].hits] == ["2606.99002"]
    assert 'value="Marie Curie"' in r.text  # the filter box keeps its value


def test_bad_query_is_shown_next_to_the_box(client):
    r = page(client, "/search?q=since:2024-13", status=400)
    assert "bad date" in r.context["error"] and 'role="alert"' in r.text


def test_no_results_gives_suggestions(client):
    r = page(client, "/search?q=graph+networks&cat=astro-ph.EP")  # no such papers
    ctx = r.context
    assert ctx["results"].hits == []
    labels = [label for label, _ in ctx["suggestions"]]
    assert "the same words without the filters" in labels and "today's trending papers" in labels
    assert "No papers match" in r.text


def test_paper_page_has_metadata_links_and_related(client):
    r = page(client, "/paper/2606.99002")
    assert r.template.name == "paper.html"
    ctx = r.context
    assert ctx["paper"].title.startswith("Graph neural networks")
    assert ctx["related"][0].paper.key == "2606.99003"
    assert 'href="https://arxiv.org/abs/2606.99002"' in r.text
    assert 'href="https://arxiv.org/pdf/2606.99002"' in r.text
    assert 'href="/paper/2606.99003"' in r.text
    assert 'href="/like?paper=2606.99002"' in r.text
    page(client, "/paper/0000.00000", status=404)


def test_untrusted_text_renders_inert(client):
    for url in ("/paper/2606.99001", "/search?q=adversarial+sanitizers"):
        html = page(client, url).text
        assert "<script>window" not in html and "<img src=x" not in html and "<iframe" not in html
        assert 'href="javascript:' not in html and 'onerror="' not in html and 'onmouseover="' not in html
        assert "&lt;script&gt;" in html
    html = page(client, "/paper/2606.99001").text
    assert 'href="https://doi.org/10.1000/x%22%3E%3Cscript%3E' in html  # the DOI stays inside its href


def test_template_helpers_escape_and_refuse_scripts():
    assert str(highlight("a <b> c", [(0, 1), (6, 7)])) == "<mark>a</mark> &lt;b&gt; <mark>c</mark>"
    assert str(highlight("abc", [(2, 9), (1, 0)])) == "abc"  # bad spans are ignored, never crash
    assert safe_url("javascript:alert(1)") == "" and safe_url(" JAVASCRIPT:x") == ""
    assert safe_url("https://arxiv.org/abs/1") == "https://arxiv.org/abs/1"


def test_trending_page_periods_and_paging(client):
    r = page(client, "/trending?period=week")
    ctx = r.context
    assert ctx["trending"].period == "week" and ctx["periods"] == ["day", "week", "month"]
    assert ctx["trending"].items[0].paper.key == "2606.13681"
    assert 'aria-current="page">week' in r.text
    page(client, "/trending?period=decade", status=400)


def test_like_form_needs_its_csrf_token(client):
    r = page(client, "/like?paper=2606.99003")
    assert r.context["text"].startswith("Message passing networks for crystal structures.")
    token = re.search(r'name="csrf_token" value="([^"]+)"', r.text).group(1)
    assert client.cookies.get(CSRF_COOKIE)
    ok = client.post("/like", data={"text": r.context["text"], "csrf_token": token})
    assert ok.status_code == 200 and ok.context["hits"][0].paper.key == "2606.99003"
    forged = client.post("/like", data={"text": "crystals", "csrf_token": "0" * 64})
    assert forged.status_code == 400 and "expired" in forged.text
    other = TestClient(client.app)  # another browser: no cookie, someone else's token
    assert other.post("/like", data={"text": "crystals", "csrf_token": token}).status_code == 400


def test_csrf_cookie_flags(web_data, shared_engine):
    with TestClient(create_app(web_data, engine=shared_engine, env={"PAPERRADAR_RATE_LIMIT": "0"})) as c:
        cookie = c.get("/").headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
        assert "set-cookie" not in c.get("/").headers  # set once


def test_error_pages_are_html_without_tracebacks(client):
    r = page(client, "/no/such/page", status=404)
    assert r.template.name == "error.html" and "Traceback" not in r.text
    r = page(client, "/search?q=x&page=0", status=400)
    assert "page" in r.context["message"]


# -- feeds -----------------------------------------------------------------------------------------------
def test_search_feed_is_valid_atom(client):
    # Links start with the configured base URL, whatever Host the request names (a client picks that).
    r = client.get("/feeds/search.atom?q=graph+networks&au=Marie+Curie", headers={"host": "evil.example"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/atom+xml")
    parsed = feedparser.parse(r.content)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert [e.link for e in parsed.entries] == ["http://localhost:8000/paper/2606.99002",
                                                "http://localhost:8000/paper/2606.99003"]  # newest first
    root = ET.fromstring(r.content)
    # RFC 4287: a feed has id, title, updated; every entry has id, title, updated, an author, a link
    for tag in ("id", "title", "updated"):
        assert root.find(ATOM + tag).text
    assert root.find(ATOM + "link[@rel='self']").get("href").startswith(
        "http://localhost:8000/feeds/search.atom")
    for entry in root.findall(ATOM + "entry"):
        for tag in ("id", "title", "updated", "author/" + ATOM + "name", "summary"):
            assert entry.find(ATOM + tag) is not None and entry.find(ATOM + tag).text
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", entry.find(ATOM + "updated").text)
    ids = [e.find(ATOM + "id").text for e in root.findall(ATOM + "entry")]
    assert ids == ["tag:paperradar,2026:2606.99002", "tag:paperradar,2026:2606.99003"]


def test_trending_feed_and_untrusted_text_in_xml(client):
    r = client.get("/feeds/trending.atom?period=week")
    parsed = feedparser.parse(r.content)
    assert not parsed.bozo and parsed.entries[0].link.endswith("/paper/2606.13681")
    xss = client.get("/feeds/search.atom?q=adversarial+sanitizers")
    root = ET.fromstring(xss.content)  # well-formed despite the markup in the paper
    titles = [e.find(ATOM + "title").text for e in root.findall(ATOM + "entry")]
    assert XSS_TITLE in titles
    assert client.get("/feeds/search.atom?q=").status_code == 400


def test_a_query_of_filters_alone_is_not_said_to_match_only_by_meaning(client):
    r = page(client, "/search?q=id%3A2606.13681+id%3A2606.13392")
    assert {h.paper.key for h in r.context["results"].hits} == {"2606.13681", "2606.13392"}
    assert r.context["meaning_only"] is False and "No paper contains these words" not in r.text
    r = page(client, "/search?q=zzqxj+wvkpt+qqfzx")  # words no paper holds: the nearest by meaning, said so
    assert r.context["meaning_only"] is True and "No paper contains these words" in r.text
