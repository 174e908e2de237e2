"""Every sort path is total: a store with undated papers (a saved Hugging Face page gives none) searches
by filters or exclusions alone, by newest, by trending and by relevance without an error; undated papers
come last, ties go by paper id."""

from __future__ import annotations

import pytest

from paperradar.models import Paper
from paperradar.search import SearchEngine
from paperradar.store import Store


def dated(arxiv_id: str, title: str, day: str, categories: list[str]) -> Paper:
    return Paper(title=title, source="arxiv", arxiv_id=arxiv_id, abstract=f"{title}. We study it.",
                 categories=categories, announced=day, submitted=day)


# Titles only, no dates, no categories: what a saved Hugging Face Papers page yields.
UNDATED = [Paper(title=t, source="hf_page", abstract=f"{t} with neural networks.") for t in (
    "Sparse attention for long documents", "Speculative decoding at scale",
    "Neural radiance fields in the wild")]
DATED = [
    dated("2405.00001", "Neural machine translation for low resource languages", "2024-05-02", ["cs.CL"]),
    dated("2405.00002", "Neural scene reconstruction", "2024-05-02", ["cs.CV"]),  # same day as the first
    dated("2406.00003", "Neural networks for weather forecasting", "2024-06-10", ["cs.LG"]),
]


@pytest.fixture(scope="module")
def engine(tmp_path_factory, embedder):
    data = tmp_path_factory.mktemp("undated")
    store = Store(data / "paperradar.sqlite3")
    store.upsert_papers(UNDATED[:1] + DATED + UNDATED[1:])  # undated ids before and after the dated ones
    eng = SearchEngine(store, data / "index", embedder=embedder)
    eng.update()
    yield eng
    eng.close()
    store.close()


def keys(results) -> list[str]:
    return [h.paper.key for h in results.hits]


def ids(results) -> list[int]:
    return [h.paper.id for h in results.hits]


def undated_ids(engine) -> list[int]:
    return sorted(p.id for p in engine.store.get_many(range(1, 100)) if not (p.announced or p.submitted))


@pytest.mark.parametrize("text", ["-x", "-cat:cs.CL", "-au:nobody", "cat:cs -ti:translation"])
@pytest.mark.parametrize("sort", ["relevance", "newest", "trending"])
@pytest.mark.parametrize("mode", ["hybrid", "lexical", "dense"])
def test_filters_and_exclusions_alone_sort_undated_papers_last(engine, text, sort, mode):
    r = engine.search(text, limit=20, sort=sort, mode=mode)
    assert r.hits
    dates = [h.paper.announced or h.paper.submitted for h in r.hits]
    known = [d for d in dates if d]
    assert dates[:len(known)] == known  # undated last
    assert known == sorted(known, reverse=True)  # newest first (trending without votes: newest too)


def test_exclusions_alone_list_everything_else_newest_first_ties_by_id(engine):
    undated = undated_ids(engine)
    assert len(undated) == 3
    expected = ["2406.00003", "2405.00001", "2405.00002"]  # two on the same day: by id
    for sort in ("relevance", "newest", "trending"):
        r = engine.search("-x", limit=20, sort=sort)
        assert keys(r)[:3] == expected, sort
        assert ids(r)[3:] == undated, sort  # undated: by id
    assert keys(engine.search("-cat:cs.CL", limit=20, sort="newest"))[:2] == ["2406.00003", "2405.00002"]


def test_words_sorted_by_date_put_undated_papers_last(engine):
    for mode in ("hybrid", "lexical", "dense"):
        for sort in ("newest", "trending"):
            r = engine.search("neural", limit=20, sort=sort, mode=mode)
            dates = [h.paper.announced or h.paper.submitted for h in r.hits]
            n = sum(1 for d in dates if d)
            assert n == 3 and all(dates[:n]) and not any(dates[n:]), (mode, sort)
            assert ids(r)[n:] == sorted(ids(r)[n:]), (mode, sort)


def test_pages_of_a_date_sort_neither_repeat_nor_skip(engine):
    whole = ids(engine.search("-x", limit=20, sort="newest"))
    pages = [ids(engine.search("-x", limit=2, offset=o, sort="newest")) for o in range(0, 6, 2)]
    assert [i for page in pages for i in page] == whole


def test_trending_puts_undated_papers_last_even_with_votes(tmp_path):
    """An undated paper's age is unknown: however many votes it has, it does not outrank a dated one."""
    store = Store(tmp_path / "p.sqlite3")
    voted = Paper(title="Neural codecs with many votes", source="hf_page", upvotes=500)
    store.upsert_papers([voted, dated("1901.00001", "Neural networks of long ago", "1990-01-02", ["cs.NE"]),
                         dated("2606.00002", "Neural networks of today", "2026-06-02", ["cs.LG"])])
    eng = SearchEngine(store, tmp_path / "index")
    eng.update(dense=False)
    for text in ("neural", "-x"):
        r = eng.search(text, limit=5, mode="lexical", sort="trending")
        assert keys(r) == ["2606.00002", "1901.00001", voted.key], text
    eng.close()
    store.close()
