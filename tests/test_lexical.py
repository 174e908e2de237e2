"""The tantivy BM25 index: built from a real store file, ranked, filtered, caught up, rebuilt, unbreakable."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paperradar.lexical import (
    LONG_QUERY_TITLE,
    META_FILE,
    SCHEMA_VERSION,
    SHORT_QUERY_WORDS,
    IndexBusy,
    IndexMismatch,
    LexicalIndex,
    highlight,
)
from paperradar.models import Paper
from paperradar.query import QueryError, parse_query
from paperradar.store import Store

CORPUS = Path(__file__).parent / "fixtures" / "corpus_jsonl" / "arxiv-119k.head.jsonl.gz"


def paper(arxiv_id: str, title: str, abstract: str, authors: list[str], categories: list[str],
          day: str, **kw) -> Paper:
    return Paper(title=title, source="arxiv", arxiv_id=arxiv_id, version=kw.pop("version", 1),
                 abstract=abstract, authors=authors, categories=categories, submitted=day, updated=day,
                 announced=day, **kw)


PAPERS = [
    paper("2403.00001", "Diffusion Models for Protein Structure Design",
          "We generate protein backbones with a denoising generative model trained on crystal structures.",
          ["Alice Zhang", "Thomas Müller"], ["q-bio.BM", "cs.LG"], "2024-03-15"),
    paper("2403.00002", "Benchmarking Image Generators at Scale",
          "We compare GANs, autoregressive transformers and diffusion approaches on twelve image datasets, "
          "reporting fidelity, diversity and compute for each generator family.",
          ["Bob Stone"], ["cs.CV"], "2024-03-20"),
    paper("1901.00003", "A Convolutional Network for Handwritten Digit Recognition",
          "A single network trained end to end reads handwritten digits.",
          ["Yann LeCun", "Leon Bottou"], ["cs.CV", "cs.LG"], "2019-01-10"),
    paper("2206.00004", "Neural Network Pruning Revisited",
          "Pruning removes weights of a trained neural network without hurting accuracy.",
          ["Marie Yann", "LeCun Bob"], ["cs.LG", "stat.ML"], "2022-06-01"),
    paper("2506.00005", "Graph Neural Networks: A Survey",
          "A survey of message passing neural architectures for graphs and networks of molecules.",
          ["Chen Wei"], ["cs.LG"], "2025-06-01"),
    paper("2207.00006", "Large Language Models as Zero-Shot Planners",
          "Large language models plan household tasks; the neural planner needs no extra training.",
          ["Dana Roe"], ["cs.CL", "cs.AI"], "2022-07-05"),
    paper("2101.00007", "Random Walks on Expander Graphs",
          "We bound the mixing time of random walks on expander graphs with spectral methods.",
          ["Eve Adams"], ["math.CO"], "2021-01-12"),
]


def ids_of(store: Store, results) -> list[str]:
    return [p.arxiv_id for p in store.get_many([i for i, _ in results])]


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "p.sqlite3")
    s.upsert_papers(PAPERS)
    yield s
    s.close()


@pytest.fixture
def index(tmp_path, store):
    ix = LexicalIndex(tmp_path / "lexical").open_or_create()
    ix.update_from(store)
    yield ix
    ix.close()


def search(index, store, text, **kw) -> list[str]:
    return ids_of(store, index.search(parse_query(text), **kw))


def test_index_holds_every_paper_and_records_its_cursor(index, store, tmp_path):
    assert index.count() == len(PAPERS)
    meta = json.loads((tmp_path / "lexical" / META_FILE).read_text())
    assert meta["engine"] == "tantivy" and meta["schema_version"] == SCHEMA_VERSION
    assert meta["count"] == len(PAPERS) and meta["last_seq"] == store.max_seq()
    assert index.update_from(store) == 0  # nothing new


def test_title_match_outranks_abstract_only_match(index, store):
    results = index.search(parse_query("diffusion"))
    assert ids_of(store, results) == ["2403.00001", "2403.00002"]
    assert results[0][1] > results[1][1] > 0


def test_boosts_are_parameters(index, store, tmp_path):
    # Weighting the abstract far above the title turns the order around.
    assert search(index, store, "diffusion", boosts={"title": 0.01, "abstract": 5.0}) == \
        ["2403.00002", "2403.00001"]
    with pytest.raises(ValueError, match="unknown boost"):
        LexicalIndex(tmp_path / "other", boosts={"body": 1.0})


def test_a_long_query_weighs_title_matches_less(index, store):
    # A query of a few words names a topic as titles do: a title match weighs in full. Longer, it describes
    # what a paper says: its title matches weigh LONG_QUERY_TITLE as much (explicit boosts: as given).
    title_only = store.get("2403.00001").id  # "Diffusion" in its title, not in its abstract
    short_q = parse_query("diffusion image generators")
    long_q = parse_query("diffusion image generators compared on datasets")
    assert len(short_q.terms) <= SHORT_QUERY_WORDS < len(long_q.terms)
    assert dict(index.search(short_q))[title_only] == pytest.approx(
        dict(index.search(short_q, boosts=index.boosts))[title_only])
    fixed = dict(index.search(long_q, boosts=index.boosts))
    title = dict(index.search(long_q, boosts={"title": 1.0, "abstract": 0.0, "authors": 0.0}))[title_only]
    rest = dict(index.search(long_q, boosts={"title": 0.0}))[title_only]  # "on", "generat..." in its abstract
    assert dict(index.search(long_q))[title_only] == pytest.approx(LONG_QUERY_TITLE * title + rest, rel=1e-3)
    assert fixed[title_only] == pytest.approx(title + rest, rel=1e-3)
    index.long_query_title = 1.0
    try:
        assert dict(index.search(long_q)) == pytest.approx(fixed)
    finally:
        index.long_query_title = LONG_QUERY_TITLE


def test_stemming(index, store):
    assert "1901.00003" in search(index, store, "networks")  # title says "Network"
    assert "2506.00005" in search(index, store, "network")  # title says "Networks"
    assert search(index, store, "digit recognitions") == ["1901.00003"]


def test_or_semantics_rank_papers_matching_more_words_first(index, store):
    found = search(index, store, "graph neural networks survey")
    assert found[0] == "2506.00005"
    assert set(found) >= {"2206.00004", "2101.00007", "1901.00003"}


def test_phrase_must_match_adjacent_words(index, store):
    assert search(index, store, '"neural network"') == ["2206.00004", "2506.00005"]  # stemmed
    assert search(index, store, '"network neural"') == []
    assert search(index, store, '"large language models"') == ["2207.00006"]
    assert search(index, store, '"language large"') == []


def test_author_field_phrase_does_not_run_across_authors(index, store):
    assert search(index, store, 'au:"Yann LeCun"') == ["1901.00003"]  # not Marie Yann, LeCun Bob
    assert set(search(index, store, "au:lecun")) == {"1901.00003", "2206.00004"}
    assert search(index, store, "au:muller") == ["2403.00001"]  # Müller, folded
    assert search(index, store, "ti:survey") == ["2506.00005"]
    assert search(index, store, "abs:backbones") == ["2403.00001"]
    assert search(index, store, "ti:backbones") == []
    assert search(index, store, "au:lecun convolutional") == ["1901.00003"]  # a free word must match too


def test_category_filter_with_archive_prefix(index, store):
    assert set(search(index, store, "cat:cs")) == {p.arxiv_id for p in PAPERS} - {"2101.00007"}
    assert set(search(index, store, "cat:cs.CL")) == {"2207.00006"}
    assert set(search(index, store, "cat:stat.ml")) == {"2206.00004"}
    assert set(search(index, store, "cat:math cat:q-bio")) == {"2101.00007", "2403.00001"}  # any of them
    assert search(index, store, "graphs cat:math") == ["2101.00007"]
    assert search(index, store, "cat:c") == []  # a prefix is a whole archive, not any string


def test_exclusions(index, store):
    assert "2506.00005" not in search(index, store, "graph neural -survey")
    assert "2506.00005" not in search(index, store, "neural -ti:survey")
    assert "2206.00004" not in search(index, store, 'neural -"neural network"')
    assert set(search(index, store, "network -cat:cs.CV")) == {"2206.00004", "2506.00005"}
    assert set(search(index, store, "-cat:cs")) == {"2101.00007"}  # exclusions alone filter everything
    assert search(index, store, "lecun -id:1901.00003") == ["2206.00004"]


def test_date_filters(index, store):
    assert set(search(index, store, "neural since:2022-06-02")) == {"2207.00006", "2506.00005"}
    assert set(search(index, store, "neural until:2022-06")) == {"2206.00004"}
    assert set(search(index, store, "network 2019..2022")) == {"1901.00003", "2206.00004"}
    assert search(index, store, "diffusion year:2024 cat:q-bio") == ["2403.00001"]


def test_filters_alone_list_newest_first(index, store):
    results = index.search(parse_query("cat:cs.LG"))
    assert ids_of(store, results) == ["2506.00005", "2403.00001", "2206.00004", "1901.00003"]
    assert all(score == 0.0 for _, score in results)


def test_ids(index, store):
    assert search(index, store, "id:2206.00004v3") == ["2206.00004"]
    assert search(index, store, "2206.00004")[0] == "2206.00004"  # a typed arXiv id comes first
    assert search(index, store, "id:2206.00004 id:2101.00007 since:2022") == ["2206.00004"]


def test_limit_and_order_are_deterministic(index, store):
    full = index.search(parse_query("neural networks graphs language"))
    assert index.search(parse_query("neural networks graphs language"), limit=2) == full[:2]
    assert full == sorted(full, key=lambda r: (-r[1], r[0]))
    assert index.search(parse_query("neural"), limit=0) == []


def test_words_the_analyzer_drops_match_nothing(index, store):
    assert index.search(parse_query("x" * 60)) == []  # not "everything, newest first"
    assert search(index, store, "au:lecun " + "y" * 60) == ["1901.00003", "2206.00004"]


def test_highlight_uses_the_index_stemmer():
    q = parse_query('networks "language models" -survey au:lecun')
    text = "Large Language Models meet network science; language and models apart; a survey."
    spans = highlight(text, q)
    assert [text[a:b] for a, b in spans] == ["Language Models", "network"]
    assert highlight("Yann LeCun", q, field="authors") == [(5, 10)]
    assert highlight("Yann LeCun", q, field="title") == []
    assert highlight("", q) == []
    text = "Network-networks, NETWORKING_x"
    spans = highlight(text, parse_query("network"))
    assert [text[a:b] for a, b in spans] == ["Network", "networks", "NETWORKING"]


def test_incremental_update_adds_and_replaces(index, store):
    old_title = "Random Walks on Expander Graphs"
    assert search(index, store, f'"{old_title}"') == ["2101.00007"]
    store.upsert_papers([
        paper("2101.00007", "Spectral Gaps of Sparse Hypergraphs", PAPERS[-1].abstract, ["Eve Adams"],
              ["math.CO"], "2021-01-12", version=2),
        paper("2601.00008", "Kolmogorov Arnold Networks for Tabular Data",
              "Learnable activation functions on edges replace fixed activations.", ["Fay Lu"], ["cs.LG"],
              "2026-01-02"),
    ])
    assert index.update_from(store, batch=1) == 2
    assert index.count() == len(PAPERS) + 1
    assert search(index, store, "hypergraphs") == ["2101.00007"]  # found by the new title
    assert search(index, store, "ti:expander") == []  # no longer by the old one
    assert search(index, store, "kolmogorov arnold") == ["2601.00008"]
    assert index.last_seq == store.max_seq()
    # The cursor survives reopening: nothing is indexed twice.
    reopened = LexicalIndex(index.path).open_or_create()
    assert reopened.last_seq == store.max_seq() and reopened.update_from(store) == 0
    assert reopened.count() == len(PAPERS) + 1


def test_rebuild_equals_incremental(tmp_path, store):
    papers = load_corpus()
    half = len(papers) // 2
    big = Store(tmp_path / "big.sqlite3")
    big.upsert_papers(papers[:half])
    incremental = LexicalIndex(tmp_path / "incremental").open_or_create()
    incremental.update_from(big, batch=37)
    # The second round adds papers and renames some of the first: their old documents must go.
    renamed = [Paper(title=f"Renamed {p.title}", source="arxiv", arxiv_id=p.arxiv_id, version=2,
                     abstract=p.abstract, authors=p.authors, categories=p.categories,
                     announced=p.announced, submitted=p.submitted) for p in papers[:half:10]]
    big.upsert_papers(papers[half:] + renamed)
    calls = []
    incremental.update_from(big, batch=37, progress=lambda done, total: calls.append((done, total)))
    assert calls and calls[-1][0] == len(papers) - half + len(renamed)
    assert all(d <= t for d, t in calls)
    rebuilt = LexicalIndex(tmp_path / "rebuilt")
    rebuilt.rebuild(big)
    assert rebuilt.count() == incremental.count() == big.count()
    for text in ["gaussian splatting", '"vision-language models"', "quantum -ti:computers",
                 "quantum since:1994", "au:chen", "cat:quant-ph", "cat:cs", "segmentation 2025..", "renamed"]:
        q = parse_query(text)
        a, b = rebuilt.search(q, limit=1000), incremental.search(q, limit=1000)
        assert a, text
        # Same papers; scores may differ a little while deleted documents still count in BM25 statistics.
        assert sorted(i for i, _ in a) == sorted(i for i, _ in b), text
    assert len(rebuilt.search(parse_query("ti:renamed"))) == len(renamed)
    big.close()


def test_rebuild_replaces_an_index_of_another_schema(index, store, tmp_path):
    meta_path = tmp_path / "lexical" / META_FILE
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps(meta | {"schema_version": 0}))
    with pytest.raises(IndexMismatch, match="schema_version") as err:
        LexicalIndex(tmp_path / "lexical").open_or_create()
    assert "paperradar index --rebuild" in err.value.hint
    meta_path.write_text(json.dumps(meta | {"engine": "sqlite-fts5"}))
    with pytest.raises(IndexMismatch, match="engine"):
        LexicalIndex(tmp_path / "lexical").open_or_create()
    fixed = LexicalIndex(tmp_path / "lexical")
    assert fixed.rebuild(store) == len(PAPERS)
    assert search(fixed, store, "diffusion")[0] == "2403.00001"
    assert not (tmp_path / "lexical.rebuild").exists() and not (tmp_path / "lexical.old").exists()


def test_foreign_directory_and_foreign_store_are_refused(index, tmp_path):
    (tmp_path / "lexical" / META_FILE).unlink()
    with pytest.raises(IndexMismatch, match="did not make"):
        LexicalIndex(tmp_path / "lexical").open_or_create()
    other = Store(tmp_path / "empty.sqlite3")
    fresh = LexicalIndex(tmp_path / "fresh").open_or_create()
    with Store(tmp_path / "p.sqlite3") as same:
        fresh.rebuild(same)
    with pytest.raises(IndexMismatch, match="ahead of the store"):
        fresh.update_from(other)
    other.close()


def test_a_second_writer_is_told_the_index_is_busy(index, store):
    writer = index._index.writer(15_000_000, 1)
    try:
        store.upsert_papers([paper("2601.00009", "Another Paper", "", [], ["cs.LG"], "2026-01-03")])
        with pytest.raises(IndexBusy):
            index.update_from(store)
    finally:
        writer.wait_merging_threads()
    assert index.update_from(store) == 1


def load_corpus() -> list[Paper]:
    """The recorded corpus sample, read with gzip + json (as the jsonl source will)."""
    out = []
    with gzip.open(CORPUS, "rt", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            out.append(Paper(title=r["title"], source="jsonl", arxiv_id=r["id"],
                             abstract=" ".join(r["abstract"].split()), authors=r["authors"] or [],
                             categories=r["categories"] or [], announced=r.get("listing_date"),
                             submitted=r.get("date")))
    return out


@pytest.fixture(scope="module")
def corpus_index(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("corpus")
    store = Store(tmp / "p.sqlite3")
    store.upsert_papers(load_corpus())
    ix = LexicalIndex(tmp / "lexical")
    ix.rebuild(store)
    yield ix
    store.close()


_NASTY = st.sampled_from(['"', "-", ":", "ti:", "au:", "cat:", "id:", "since:", "year:", "..", "*", "(", ")",
                          "AND", "OR", "NOT", "\\", "^2", "~", "[", "]", "{", "}", "/", "+", "'", "\x00",
                          "é", "日本", "x" * 60, " ", "2024", "graph", "gaussian", "splatting"])


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=80), st.lists(_NASTY, max_size=25).map("".join)))
def test_no_input_crashes_the_engine(corpus_index, text):
    try:
        q = parse_query(text)
    except QueryError:
        return
    results = corpus_index.search(q, limit=10)
    assert len(results) <= 10
    assert all(isinstance(i, int) and isinstance(s, float) for i, s in results)
