"""Researchers' shorthand: acronyms mined from the corpus and expanded both ways, typos corrected (only rare
or absent words), "did you mean" on the page and in the API, and no query string that makes it raise."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from paperradar.lexical import LexicalIndex
from paperradar.models import Paper
from paperradar.query import QueryError, parse_query
from paperradar.search import SearchEngine
from paperradar.shorthand import FILE, Shorthand, corrected_text, edits1, mine_pairs
from paperradar.store import Store
from paperradar.web.app import create_app


def paper(n: int, title: str, abstract: str) -> Paper:
    day = f"2024-03-{n % 28 + 1:02d}"
    return Paper(title=title, source="arxiv", arxiv_id=f"2403.{n:05d}", version=1, abstract=abstract,
                 authors=["Ada Lovelace"], categories=["cs.LG"], submitted=day, updated=day, announced=day)


RAG = "We study retrieval-augmented generation (RAG) for open-domain question answering over documents."
PAPERS = [
    paper(1, "Retrieval-Augmented Generation for Question Answering", RAG),
    paper(2, "Better retrievers", "Retrieval augmented generation (RAG) needs good retrievers of passages."),
    paper(3, "RAG at scale", "We scale RAG systems to a billion passages; retrieval is the bottleneck."),
    paper(4, "Rag dolls", "Retrieval-augmented generation (RAG) for toy stories."),
    # SSM: mostly state space models, once in a while a self-similarity matrix (music structure)
    paper(5, "Mamba", "Selective state space models (SSMs) model long sequences in linear time."),
    paper(6, "S4", "Structured state space models (SSMs) for long sequence modeling with HiPPO."),
    paper(7, "Long context", "State space models (SSM) rival attention on long sequence benchmarks."),
    paper(8, "Music boundaries", "A self-similarity matrix (SSM) of audio frames reveals music structure."),
    paper(9, "Chorus detection", "We detect the chorus of music from a self-similarity matrix (SSM)."),
    paper(10, "Beat tracking", "Music beat tracking with a convolutional network and tempo priors."),
    paper(12, "Chunking", "How to chunk documents for RAG pipelines."),
    paper(11, "Sequence models", "Linear recurrent sequence models for long sequence tasks in language."),
]
# Transformers everywhere: the correction of "transfromer" must be frequent enough.
PAPERS += [paper(100 + i, f"Transformer study {i}", f"A transformer language model number {i} for "
                 "diffusion of knowledge.") for i in range(45)]
PAPERS += [paper(60, "Transfromer", "A paper whose title has the typo once and once only."),
           paper(61, "Diffusion of heat", "The heat equation; diffusion in metals.")]


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    data = tmp_path_factory.mktemp("shorthand")
    store = Store(data / "paperradar.sqlite3")
    store.upsert_papers(PAPERS)
    eng = SearchEngine(store, data / "index")
    eng.update(dense=False)
    yield eng
    eng.close()
    store.close()


def ids(engine, text: str) -> list[str]:
    found = engine.lexical.search(parse_query(text), limit=50)
    papers = {p.id: p.key for p in engine.store.get_many(pid for pid, _ in found)}
    return [papers[pid] for pid, _ in found]


# -- mining ---------------------------------------------------------------------------------------------
def test_pairs_are_mined_from_the_text_itself():
    assert mine_pairs(RAG) == [("rag", "retrieval augmented generation")]
    assert mine_pairs("Large language models (LLMs) and a mixture of experts (MoE).") == [
        ("llm", "large language model"), ("moe", "mixture of expert")]
    assert mine_pairs("We use Proximal Policy Optimization (PPO).") == [
        ("ppo", "proximal policy optimization")]
    assert mine_pairs("Bidirectional Encoder Representations from Transformers (BERT)") == [
        ("bert", "bidirectional encoder representations from transformer")]
    assert mine_pairs("multi-modal large language models (MLLMs)") == [
        ("mllm", "multi modal large language model")]
    # not acronyms, or no long form before them
    assert mine_pairs("the results (see Table 1) are (a) fine (ok) and text-to-image (T2I)") == []


def test_tables_are_built_beside_the_index_counted_on_update_and_rebuilt(engine, tmp_path):
    tables = engine.lexical.shorthand
    assert (engine.lexical.path / FILE).exists()
    assert tables.pairs["rag"] == {"retrieval augmented generation": 3}
    assert tables.pairs["ssm"] == {"state space model": 3, "self similarity matrix": 2}
    assert tables.docs == len(PAPERS) and tables.last_seq == engine.lexical.last_seq
    # an update counts only the new paper; a missing file is recounted from the store
    store = Store(tmp_path / "s.sqlite3")
    store.upsert_papers(PAPERS[:4])
    lex = LexicalIndex(tmp_path / "lexical")
    lex.update_from(store)
    assert lex.shorthand.pairs["rag"] == {"retrieval augmented generation": 3}
    store.upsert_papers([paper(99, "More RAG", "Retrieval augmented generation (RAG) again.")])
    lex.update_from(store)
    assert lex.shorthand.pairs["rag"] == {"retrieval augmented generation": 4} and lex.shorthand.docs == 5
    (lex.path / FILE).unlink()
    lex.update_from(store)  # nothing to index, but the tables are missing
    assert lex.shorthand.pairs["rag"] == {"retrieval augmented generation": 4}
    lex.rebuild(store)
    assert Shorthand.load(lex.path).docs == 5
    lex.close()
    store.close()


# -- acronyms at query time -----------------------------------------------------------------------------
def test_an_acronym_finds_its_long_form_and_back(engine):
    found = ids(engine, "RAG")
    assert "2403.00003" in found  # says RAG
    assert "2403.00001" in found  # says retrieval-augmented generation (and defines RAG)
    engine.lexical.expand = False
    try:
        assert ids(engine, "passages retrievers") == ids(engine, "passages retrievers")
        plain = ids(engine, "retrieval augmented generation")
    finally:
        engine.lexical.expand = True
    expanded = ids(engine, "retrieval augmented generation")
    # "Chunking" says only "RAG": the long form finds it by its acronym, below those that say it in full
    assert "2403.00012" not in plain and "2403.00012" in expanded
    assert expanded.index("2403.00012") > expanded.index("2403.00001")


def test_an_ambiguous_acronym_follows_the_rest_of_the_query(engine):
    tables = engine.lexical.shorthand
    assert tables.resolve("ssm", []) == "state space model"  # the corpus's usual meaning
    music = ids(engine, "SSM music")
    assert music[0] in ("2403.00008", "2403.00009")  # self-similarity matrix papers say "music"
    assert music.index("2403.00009") < music.index("2403.00005") if "2403.00005" in music else True
    seq = ids(engine, "SSM long sequence")
    assert seq[0] in ("2403.00005", "2403.00006", "2403.00007")


# -- typos ------------------------------------------------------------------------------------------------
def test_typos_are_corrected_only_when_the_word_is_rare_or_absent(engine):
    lex = engine.lexical
    assert lex.corrections(parse_query("difusion models")) == {"difusion": "diffusion"}
    assert lex.corrections(parse_query("chunkng")) == {}  # "chunking": one paper, not clearly more
    assert lex.corrections(parse_query("transfromer language")) == {"transfromer": "transformer"}
    assert lex.corrections(parse_query("transformer language")) == {}  # frequent: never corrected
    assert lex.corrections(parse_query("rag")) == {}  # an acronym is not a typo
    # "transfromer" is in one paper: corrected, but only a word no paper holds goes to the model instead
    assert lex.corrections_of_absent_words(parse_query("transfromer")) == {}
    assert lex.corrections_of_absent_words(parse_query("trnasformer")) == {"trnasformer": "transformer"}
    found = ids(engine, "transfromer")
    assert found[0] == "2403.00060"  # the paper with the very word typed first
    assert len(found) > 40  # and the transformer papers too
    results = engine.search("transfromer", mode="lexical")
    assert results.did_you_mean == "transformer"
    assert any(h.highlights["title"] for h in results.hits[1:])  # the correction is marked
    assert engine.search("transformer", mode="lexical").did_you_mean is None


def test_the_correction_is_one_edit_away():
    assert "transformer" in edits1("transfromer") and "diffusion" in edits1("difusion")
    assert "transformer" not in edits1("trnsfrmer")
    # a word in lower case is an acronym only where the corpus writes it mostly as one
    tables = Shorthand(pairs={"are": {"au rich element": 3}, "rag": {"retrieval augmented generation": 3}},
                       vocab={"are": 500, "rag": 5})
    assert tables.long_forms("are") == [] and tables.long_forms("ARE") == [("au rich element", 3)]
    assert tables.long_forms("rag") == [("retrieval augmented generation", 3)]
    assert tables.acronyms_in(["au", "rich", "elements"]) == []  # "are" is searched as a word: no
    assert corrected_text('Transfromer "transfromer" ti:transfromer', {"transfromer": "transformer"}) == (
        'transformer "transformer" ti:transfromer')
    tables = Shorthand(vocab={"language": 50, "languages": 30, "langauge": 1})
    assert tables.correction("langauge") == "language"
    assert tables.correction("langauge", known=lambda w: 3) is None  # the index knows it well enough
    assert tables.correction("zzzzzz") is None


# -- the web app ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def client(web_data, shared_engine):
    with TestClient(create_app(web_data, engine=shared_engine, env={"PAPERRADAR_RATE_LIMIT": "0"})) as c:
        yield c


def test_did_you_mean_on_the_page_and_in_the_api(client):
    r = client.get("/search?q=langauge+models&cat=cs.CL")
    assert r.status_code == 200
    assert r.context["did_you_mean"] == ("language models", "/search?q=language+models&cat=cs.CL")
    assert 'Did you mean: <a href="/search?q=language+models&amp;cat=cs.CL">language models</a>' in r.text
    body = client.get("/api/v1/search?q=langauge+models").json()
    assert body["did_you_mean"] == "language models" and body["hits"]
    r = client.get("/search?q=language+models")
    assert r.context["did_you_mean"] is None and "Did you mean" not in r.text
    assert "did_you_mean" not in client.get("/api/v1/search?q=language+models").json()


def test_an_acronym_in_the_app_finds_the_long_form(client):
    hits = client.get("/api/v1/search?q=VLM&mode=lexical&limit=50").json()["hits"]
    texts = [(h["title"] + " " + (h["abstract"] or "")).lower() for h in hits]
    # a paper that never says "VLM" but says it in full
    assert any("vlm" not in t and re.search(r"vision.language model", t) for t in texts)


# -- robustness ---------------------------------------------------------------------------------------------
_ALPHABET = st.sampled_from(list("aeiRAGSM()-: \"'transfromerdifusion") + ["RAG", "SSM", "é", "\x00"])


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=80), st.lists(_ALPHABET, max_size=30).map("".join)))
def test_any_text_never_raises(engine, text):
    mine_pairs(text)
    Shorthand().add(text, text)
    try:
        q = parse_query(text)
    except QueryError:
        return
    engine.lexical.corrections(q)
    engine.lexical.search(q, limit=5)
    engine.search(text, mode="lexical")
