"""ArxivAPISource against recorded arXiv API responses replayed through httpx.MockTransport."""

from __future__ import annotations

import random
import re
from datetime import date
from pathlib import Path
from xml.sax.saxutils import escape

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paperradar.errors import InputUnusable
from paperradar.http import PoliteClient
from paperradar.models import Paper, Rejected
from paperradar.sources.arxiv_api import ArxivAPISource, build_search_query, parse_feed

FIXTURES = Path(__file__).parent / "fixtures" / "arxiv_api"
RECORDED = FIXTURES / "recorded"
RAW = FIXTURES / "raw_xml"
SOTAWHAT = FIXTURES / "sotawhat" / "arxiv_transformer.xml"
RECORDED_STATUS = {"id_abc": 400}  # see PROVENANCE.md: the invalid-id answer came with HTTP 400


class FakeTime:
    """A clock that only moves when someone sleeps; remembers every wait asked for."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def client_for(handler, time: FakeTime | None = None, min_interval: float = 3.0) -> PoliteClient:
    time = time or FakeTime()
    return PoliteClient(min_interval=min_interval, transport=httpx.MockTransport(handler),
                        sleep=time.sleep, clock=time.clock)


class Recorded:
    """Serves recorded_body_xml files by the request's id_list/search_query, start and max_results."""

    def __init__(self, time: FakeTime | None = None, recorded_max: str | None = None):
        self.time = time or FakeTime()
        self.recorded_max = recorded_max  # match this max_results instead of the one asked for
        self.requests: list[dict[str, str]] = []
        self.times: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        q = dict(request.url.params)
        self.requests.append(q)
        self.times.append(self.time.now)
        if q.get("id_list"):
            key = "id_" + re.sub(r"[/,]", "_", q["id_list"])
        else:
            key = "q_" + q["search_query"]
        size = self.recorded_max or q["max_results"]
        found = sorted(RECORDED.glob(f"{key}_s{q['start']}_m{size}_*.xml"))
        if len(found) != 1:
            return httpx.Response(404, text=f"no recording for {q}")
        return httpx.Response(RECORDED_STATUS.get(key, 200), content=found[0].read_bytes(),
                              headers={"Content-Type": "application/atom+xml"})


def recorded(prefix: str) -> bytes:
    [path] = RECORDED.glob(prefix + "_s*.xml")
    return path.read_bytes()


def serve(body: bytes, status: int = 200):
    requests: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(dict(request.url.params))
        return httpx.Response(status, content=body)

    handler.requests = requests  # type: ignore[attr-defined]
    return handler


def run(source: ArxivAPISource) -> tuple[list[Paper], list[Rejected]]:
    items = list(source)
    return [i for i in items if isinstance(i, Paper)], [i for i in items if isinstance(i, Rejected)]


def by_ids(*ids: str, server: Recorded | None = None, **kw) -> tuple[list[Paper], list[Rejected]]:
    server = server or Recorded()
    return run(ArxivAPISource(id_list=ids, client=client_for(server, server.time), **kw))


# --- field by field -------------------------------------------------------------------------------

def test_old_style_id_with_journal_ref_and_affiliations():
    papers, rejected = by_ids("astro-ph/0601001")
    assert rejected == []
    [p] = papers
    assert p.source == "arxiv"
    assert p.arxiv_id == "astro-ph/0601001" and p.version == 1
    assert p.title == ("Frequency of Hot Jupiters and Very Hot Jupiters from the OGLE-III Transit Surveys "
                       "Toward the Galactic Bulge and Carina")
    assert p.authors == ["Andrew Gould", "Susan Dorsher", "B. Scott Gaudi", "Andrzej Udalski"]
    assert p.categories == ["astro-ph"]
    assert p.submitted == "2006-01-02T14:57:58Z" and p.updated == "2006-01-02T14:57:58Z"
    assert p.journal_ref == "ActaAstron.56:1-50,2006"
    assert p.comment.startswith("62 pages including 16 figures and 9 tables. Submitted to Acta Astronomica.")
    assert p.doi is None
    assert p.abstract.startswith("We derive the frequencies of hot Jupiters (HJs) with 3--5 day periods")
    assert "V_max<17.5" in p.abstract  # entities decoded
    assert p.announced is None


def test_versioned_id_primary_category_first():
    papers, _ = by_ids("quant-ph/0201082v1")
    [p] = papers
    assert (p.arxiv_id, p.version) == ("quant-ph/0201082", 1)
    assert p.title == ("Quantum Computers and Quantum Computer Languages: Quantum Assembly Language and "
                       "Quantum C Language")
    assert p.authors == ["Stephen Blaha"]
    assert p.categories == ["quant-ph", "cs.PL"]
    assert p.comment == "32 pages"
    assert p.submitted == "2002-01-18T15:08:05Z"
    assert p.abstract.startswith("We show a representation")  # leading blanks gone


def test_new_style_id_without_journal_ref_or_doi():
    papers, _ = by_ids("1605.08386")
    [p] = papers
    assert (p.arxiv_id, p.version) == ("1605.08386", 1)
    assert p.title == "Heat-bath random walks with Markov bases"
    assert p.authors == ["Caprice Stanley", "Tobias Windisch"]
    assert p.categories == ["math.CO", "math.ST"]
    assert p.comment == "20 pages, 3 figures"
    assert p.journal_ref is None and p.doi is None
    assert p.abs_url == "https://arxiv.org/abs/1605.08386"


def test_two_ids_one_unknown_gives_one_paper_with_authors_in_order():
    server = Recorded()
    papers, rejected = by_ids("0808.05394", "1707.08567", server=server)
    assert server.requests == [{"search_query": "", "id_list": "0808.05394,1707.08567",
                                "start": "0", "max_results": "100"}]
    assert rejected == []
    [p] = papers
    assert p.arxiv_id == "1707.08567"
    assert len(p.authors) == 34
    assert p.authors[:3] == ["Kees A. Schouhamer Immink", "Stan Baggen", "Ferdaous Chaabane"]
    assert p.authors[-1] == "Hirosuke Yamamoto"
    # The recording double-encoded UTF-8 (see PROVENANCE.md); we keep what the bytes say.
    assert p.authors[-2] == "Dirk WÃ¼bben"
    assert p.comment == "44 pages, editors for the proceedings: Yanling Chen and A. J. Han Vinck"


def test_old_format_feed_with_doi_and_wrapped_title():
    items, total = parse_feed((RAW / "id_list=1111.2011v2.xml").read_bytes(), "raw page 1")
    assert total == 1
    [p] = items
    assert (p.arxiv_id, p.version) == ("1111.2011", 2)
    assert p.title == ("Quantum Criticality for Extended Nodes on a Bethe Lattice in the Large "
                       "Connectivity Limit")
    assert p.authors == ["James M. Murray", "Adrian Del Maestro", "Zlatko Tesanovic"]
    # primary_category comes *before* the category list in this format; order still primary first
    assert p.categories == ["cond-mat.str-el", "cond-mat.stat-mech"]
    assert p.submitted == "2011-11-08T18:48:36Z" and p.updated == "2012-04-02T12:38:54Z"
    assert p.doi == "10.1103/PhysRevB.85.115117"
    assert p.journal_ref == "Phys. Rev. B 85, 115117 (2012)"
    assert p.comment == "8 pages, 3 figures. Published version"
    assert "\n" not in p.abstract and p.abstract.endswith("describing a single node.")


@pytest.mark.parametrize("path", sorted(RAW.glob("*.xml")), ids=lambda p: p.name[:40])
def test_every_old_format_feed_parses(path):
    items, total = parse_feed(path.read_bytes(), path.name)
    assert items and all(isinstance(i, Paper) for i in items)
    assert total is not None and total >= len(items)
    assert all(p.arxiv_id and p.version and p.categories and p.submitted for p in items)


# --- errors, empty results, malformed entries -----------------------------------------------------

def test_invalid_id_error_entry_is_rejected_not_a_paper():
    papers, rejected = by_ids("abc")  # answered with HTTP 400 and an Atom error entry
    assert papers == []
    assert rejected == [Rejected("arXiv API page 1 entry 1", "arXiv API error: incorrect id format for abc")]


def test_empty_result_yields_nothing():
    server = Recorded()
    source = ArxivAPISource(id_list=["0000.0000"], client=client_for(server, server.time))
    assert list(source) == []
    assert len(server.requests) == 1


def test_malformed_entry_is_rejected_with_position_and_others_kept():
    body = SOTAWHAT.read_bytes().replace(b"<id>http://arxiv.org/abs/2606.13591v1</id>",
                                         b"<id>http://arxiv.org/abs/not-an-id</id>")
    body = body.replace(b"<title>Adjusted Cup-Product Neural Layer</title>", b"<title> </title>")
    items, total = parse_feed(body, "arXiv API page 3")
    assert total == 28946
    assert [type(i).__name__ for i in items] == ["Paper", "Rejected", "Rejected", "Paper", "Paper"]
    assert items[1].where == "arXiv API page 3 entry 2" and "not an arXiv identifier" in items[1].reason
    assert items[2] == Rejected("arXiv API page 3 entry 3", "missing title")


@pytest.mark.parametrize("body", [b"", b"<html><body>Rate exceeded.</body></html", b"\x1f\x8b\x08\x00gzip",
                                  b"<html><body>ok</body></html>"])
def test_a_page_that_is_not_a_feed_is_unusable(body):
    with pytest.raises(InputUnusable, match="arXiv API page 1"):
        list(ArxivAPISource(query="testing", client=client_for(serve(body))))


def test_http_error_without_feed_is_unusable():
    with pytest.raises(InputUnusable, match="HTTP 404"):
        list(ArxivAPISource(query="testing", client=client_for(serve(b"not found", 404))))


# --- searching and paging -------------------------------------------------------------------------

def test_paging_collects_distinct_papers_and_stops_at_max_results():
    server = Recorded()
    source = ArxivAPISource(query="testing", max_results=60, page_size=10,
                            client=client_for(server, server.time))
    papers, rejected = run(source)
    assert rejected == []
    assert len(papers) == 60 and len({p.arxiv_id for p in papers}) == 60
    assert [r["start"] for r in server.requests] == ["0", "10", "20", "30", "40", "50"]
    assert {(r["max_results"], r["sortBy"], r["sortOrder"]) for r in server.requests} == {
        ("10", "submittedDate", "descending")}
    assert source.progress() == (60, 60)
    assert papers[0].arxiv_id == "2202.12139"


def test_max_results_smaller_than_page_asks_for_no_more():
    server = Recorded()
    papers, _ = run(ArxivAPISource(query="testing", max_results=15, page_size=100,
                                   client=client_for(server, server.time)))
    assert len(papers) == 15
    assert [(r["start"], r["max_results"]) for r in server.requests] == [("0", "15")]


def test_paging_stops_at_total_results():
    handler = serve((RAW / "search_query=au_del_maestro_AND_ti__quantum_criticality_.xml").read_bytes())
    source = ArxivAPISource(query='au:del_maestro AND ti:"quantum criticality"', page_size=10,
                            client=client_for(handler))
    papers, _ = run(source)
    assert len(papers) == 2
    assert len(handler.requests) == 1
    assert source.progress() == (2, 2)


def test_query_categories_and_dates_are_combined():
    handler = serve(SOTAWHAT.read_bytes())
    source = ArxivAPISource(query="all:transformer", categories=["cs.LG", "cs.CL"], since="2026-06-01",
                            until="2026-06-14", max_results=5, client=client_for(handler))
    papers, _ = run(source)
    assert handler.requests[0]["search_query"] == (
        "(all:transformer) AND (cat:cs.LG OR cat:cs.CL) AND submittedDate:[202606010000 TO 202606142359]")
    assert [p.arxiv_id for p in papers] == ["2606.13677", "2606.13591", "2606.13568", "2606.13515",
                                            papers[4].arxiv_id]
    mana = papers[0]
    assert mana.title == "Mana: Dexterous Manipulation of Articulated Tools"
    assert mana.authors == ["Zhao-Heng Yin", "Guanya Shi", "Pieter Abbeel", "C. Karen Liu"]
    assert mana.categories == ["cs.RO", "cs.AI", "cs.CV", "cs.LG"]
    assert mana.comment == "Project Page: https://zhaohengyin.github.io/mana"
    assert mana.submitted == "2026-06-11T17:59:49Z"
    assert "(<1 minute per tool)" in mana.abstract


def test_build_search_query():
    assert build_search_query("electron", (), None, None) == "electron"
    assert build_search_query(None, ["cs.CL"], None, None) == "cat:cs.CL"
    assert build_search_query(None, ["cs.CL", "cs.IR"], "2024-01-31", None).startswith(
        "(cat:cs.CL OR cat:cs.IR) AND submittedDate:[202401310000 TO ")
    assert build_search_query(None, (), None, "2024-02-01", today=date(2030, 1, 1)) == (
        "submittedDate:[199101010000 TO 202402012359]")


@pytest.mark.parametrize("kwargs, message", [
    ({}, "nothing to ask"),
    ({"query": "x", "since": "yesterday"}, "since must be a date"),
    ({"query": "x", "since": "2024-02-02", "until": "2024-02-01"}, "after until"),
    ({"query": "x", "page_size": 0}, "page_size"),
])
def test_bad_arguments_are_explained(kwargs, message):
    with pytest.raises(InputUnusable, match=message):
        ArxivAPISource(**kwargs)


def test_id_list_is_sent_in_batches():
    # The recordings asked for max_results=100; a batch of one asks for 1 and gets the same answer.
    server = Recorded(recorded_max="100")
    ids = ("1605.08386", "2104.12255v1", "quant-ph/0201082v1")
    papers, _ = run(ArxivAPISource(id_list=ids, page_size=1, client=client_for(server, server.time)))
    assert [(r["id_list"], r["max_results"]) for r in server.requests] == [(i, "1") for i in ids]
    assert [(p.arxiv_id, p.version) for p in papers] == [
        ("1605.08386", 1), ("2104.12255", 1), ("quant-ph/0201082", 1)]
    assert papers[1].title == "0"  # a real title that is only "0" is still a title


# --- politeness: retries and rate limit -----------------------------------------------------------

def flaky(failures: list[httpx.Response], then: bytes):
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return failures.pop(0) if failures else httpx.Response(200, content=then)

    handler.calls = calls  # type: ignore[attr-defined]
    return handler


def test_503_twice_then_the_page_with_growing_backoff():
    time = FakeTime()
    handler = flaky([httpx.Response(503), httpx.Response(503)], recorded("id_1605.08386"))
    papers, _ = run(ArxivAPISource(id_list=["1605.08386"], client=client_for(handler, time, min_interval=0)))
    assert [p.arxiv_id for p in papers] == ["1605.08386"]
    assert len(handler.calls) == 3
    assert time.sleeps == [2.0, 4.0]


def test_429_retry_after_is_honoured():
    time = FakeTime()
    handler = flaky([httpx.Response(429, headers={"Retry-After": "30"})], SOTAWHAT.read_bytes())
    client = client_for(handler, time, min_interval=0)
    papers, _ = run(ArxivAPISource(query="x", max_results=5, client=client))
    assert len(papers) == 5
    assert time.sleeps == [30.0]


def test_always_503_is_unusable():
    time = FakeTime()
    handler = flaky([httpx.Response(503)] * 100, b"")
    with pytest.raises(InputUnusable, match="gave up after 6 attempts"):
        list(ArxivAPISource(query="x", client=client_for(handler, time)))
    assert len(handler.calls) == 6


def test_consecutive_pages_are_three_seconds_apart():
    time = FakeTime()
    server = Recorded(time)
    client = client_for(server, time)
    papers, _ = run(ArxivAPISource(query="testing", max_results=60, page_size=10, client=client))
    assert len(papers) == 60
    gaps = [b - a for a, b in zip(server.times, server.times[1:], strict=False)]
    assert len(gaps) == 5 and all(gap >= 3.0 for gap in gaps)


def test_default_client_keeps_arxivs_rate():
    client = ArxivAPISource.default_client()
    try:
        assert client.min_interval == 3.0
    finally:
        client.close()


# --- robustness -----------------------------------------------------------------------------------

REAL_FEEDS = [p.read_bytes() for p in [SOTAWHAT, RAW / "id_list=1111.2011v2.xml",
                                       *sorted(RECORDED.glob("id_*.xml"))]]


def check_parse(data: bytes) -> None:
    try:
        items, total = parse_feed(data, "fuzz")
    except InputUnusable:
        return
    assert total is None or total >= 0
    for item in items:
        assert isinstance(item, Paper | Rejected)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_parse_feed_on_arbitrary_bytes_only_raises_input_unusable(data):
    check_parse(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(feed=st.sampled_from(REAL_FEEDS), seed=st.integers(0, 2**32 - 1),
       junk=st.binary(min_size=0, max_size=40),
       mode=st.sampled_from(["insert", "cut", "replace", "truncate"]))
def test_parse_feed_on_mutated_real_feeds_only_raises_input_unusable(feed, seed, junk, mode):
    rng = random.Random(seed)
    i = rng.randrange(len(feed))
    j = min(len(feed), i + rng.randrange(1, 200))
    if mode == "insert":
        data = feed[:i] + junk + feed[i:]
    elif mode == "cut":
        data = feed[:i] + feed[j:]
    elif mode == "replace":
        data = feed[:i] + junk + feed[j:]
    else:
        data = feed[:i]
    check_parse(data)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=300), where=st.sampled_from(["title", "summary", "id", "name", "published",
                                                          "totalResults", "doi"]))
def test_parse_feed_on_arbitrary_field_text(text, where):
    # Field contents arbitrary (escaped, so the XML stays well-formed): never a crash, only papers/rejections.
    feed = SOTAWHAT.read_text(encoding="utf-8")
    pattern = {"title": r"<title>Mana[^<]*</title>", "summary": r"<summary>Articulated[^<]*</summary>",
               "id": r"<id>http://arxiv.org/abs/2606.13677v1</id>", "name": r"<name>Guanya Shi</name>",
               "published": r"<published>2026-06-11T17:59:49Z</published>",
               "totalResults": r"<opensearch:totalResults>28946</opensearch:totalResults>",
               "doi": r"<arxiv:primary_category term=\"cs.RO\"/>"}[where]
    tag = {"totalResults": "opensearch:totalResults", "doi": "arxiv:doi", "name": "name"}.get(where, where)
    safe = "".join(c for c in text if c == "\t" or c == "\n" or (" " <= c and c not in "\ufffe\uffff"))
    safe = re.sub(r"[\ud800-\udfff]", "", safe)
    replacement = f"<{tag}>{escape(safe)}</{tag}>"
    if where == "doi":
        replacement = f'<arxiv:primary_category term="cs.RO"/>{replacement}'
    check_parse(re.sub(pattern, lambda _: replacement, feed, count=1).encode("utf-8"))
