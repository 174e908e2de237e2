"""Topics and the map's data (paperradar/topics.py): the pure parts over arrays, then a real build over the
session's corpus (real embeddings, k-means, t-SNE) and its incremental update, the ``topic:`` filter in
every search mode and in digests, and an index that is missing or damaged."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections import Counter

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paperradar import topics
from paperradar.models import Paper
from paperradar.query import QueryError, parse_query
from paperradar.search import SearchEngine
from paperradar.store import Store


# -- pure parts -----------------------------------------------------------------------------------------
def test_topic_counts_scale_with_the_corpus():
    assert topics.fine_count(118_860) == 345
    assert topics.broad_count(118_860) == 31
    assert topics.fine_count(2_600_000) == 1500 and topics.broad_count(2_600_000) == 86
    assert topics.fine_count(4000) == 63 and topics.broad_count(4000) == 10
    for n in (1, 2, 10, 230, 10**5):
        assert 1 <= topics.broad_count(n) <= topics.fine_count(n)


def test_days_and_months():
    assert topics.day_number("1970-01-02") == 1
    assert topics.day_number("2026-06-10T08:00:00Z") == (dt.date(2026, 6, 10) - dt.date(1970, 1, 1)).days
    assert topics.day_number(None) == topics.day_number("") == topics.day_number("2026-13-01") == -1
    days = np.array([topics.day_number(d) for d in ("2026-01-31", "2026-02-01", "1970-01-01")] + [-1])
    months = topics.month_of(days)
    assert [topics.month_text(m) for m in months[:3]] == ["2026-01", "2026-02", "1970-01"]
    assert months[3] == -1


@given(st.lists(st.integers(min_value=-1, max_value=25_000), max_size=200))
def test_per_month_counts_every_dated_paper_once_with_the_empty_months(days):
    series = topics.per_month(np.array(days, dtype=np.int64))
    dated = [d for d in days if d >= 0]
    assert sum(c for _, c in series) == len(dated)
    if dated:
        months = [m for m, _ in series]
        assert months == sorted(set(months)) and len(months) == len(series)
        first = np.datetime64(topics.day_text(min(dated)), "M")
        last = np.datetime64(topics.day_text(max(dated)), "M")
        assert len(series) == int((last - first).astype(int)) + 1
    else:
        assert series == []


def test_rising_finds_the_topic_whose_share_grew():
    end = 20_000
    rng = np.random.default_rng(0)
    before = rng.integers(end - 60, end - 30, size=600) + 1
    now = rng.integers(end - 30, end, size=600) + 1
    # topic 1: 100 papers before, 300 now; topic 2: 300 before, 100 now; topic 3: steady
    topic = np.array([1] * 100 + [2] * 300 + [3] * 200 + [1] * 300 + [2] * 100 + [3] * 200)
    days = np.concatenate([before, now])
    found = topics.rising(topic, days, end, 30)
    assert [t for t, *_ in found] == [1]
    t, growth, n_now, n_before = found[0]
    assert (n_now, n_before) == (300, 100) and growth == pytest.approx(np.log(3), rel=0.05)
    assert topics.rising(topic, days, end, 30, least=301) == []
    assert topics.rising(topic, np.full(len(topic), -1), end, 30) == []  # undated: nothing rises


def test_distinctive_terms_prefer_phrases_and_leave_their_words_out():
    stop = topics._stopwords()
    inside = [topics.text_terms(t, stop) for t in (
        "Diffusion models for image synthesis. We train diffusion models.",
        "Score-based diffusion models, sampled fast",
        "Latent diffusion models generate images")]
    outside = [topics.text_terms(t, stop) for t in (
        "Language models answer questions", "Reinforcement learning for robots", "Image classification")]
    cin, cout = Counter(), Counter()
    for s in inside:
        cin.update(s)
    for s in outside:
        cout.update(s)
    terms = topics.distinctive_terms(cin, 3, cin + cout, 6)
    assert terms[0] == "diffusion models"
    assert "diffusion" not in terms and "models" not in terms
    assert "synthesis we" not in cin  # a phrase does not run across a full stop
    assert "models for" not in cin and "models generate" not in cin  # nor starts on a generic word
    assert topics.text_terms("reasoning large language models", stop) >= {"language models", "reasoning"}
    assert "reasoning large" not in topics.text_terms("reasoning large language models", stop)
    assert topics._stems("social biases") == topics._stems("social bias")
    assert topics._stems("loss") == {"loss"}
    plural = Counter({"quantum algorithms": 5, "quantum algorithm": 5, "grover": 4})
    assert topics.distinctive_terms(plural, 5, plural + Counter({"grover": 1}), 50) == [
        "quantum algorithm", "grover"]  # one of the two spellings
    assert topics.label_of(terms).startswith("diffusion models")
    assert topics.label_of([]) == "(unlabelled)"


def test_match_ids_keeps_the_ids_of_topics_holding_mostly_the_same_papers():
    # old topics 10 (papers 0-9), 11 (10-19), 12 (20-29); papers 30-39 are new
    old = np.array([10] * 10 + [11] * 10 + [12] * 10 + [-1] * 10)
    # new topic 0 = old 11 exactly; new 1 = old 10 plus 2 of old 12 (overlap 10/12); new 2 = the rest
    new = np.array([1] * 10 + [0] * 10 + [1, 1] + [2] * 8 + [2] * 10)
    ids, next_id = topics.match_ids(new, old, 3, next_id=20)
    assert ids == [11, 10, 20] and next_id == 21  # new 2 shares 8 of its 18 papers with 12: under half
    ids, next_id = topics.match_ids(new, np.full(40, -1), 3, next_id=1)
    assert ids == [1, 2, 3] and next_id == 4
    # two new topics both mostly old 10: the closer one keeps the id
    ids, _ = topics.match_ids(np.array([0] * 9 + [1] * 1), np.array([10] * 10), 2, next_id=50)
    assert ids == [10, 50]


def test_place_is_the_similarity_weighted_mean():
    xy = np.array([[[0.0, 0.0], [1.0, 0.0]]], dtype=np.float32)
    assert topics.place(xy, np.array([[0.9, 0.9]])).tolist() == [[0.5, 0.0]]
    closer = topics.place(xy, np.array([[0.95, 0.75]]))[0]
    assert 0 < closer[0] < 0.05  # the much more similar neighbour wins
    missing = topics.place(xy, np.array([[0.9, -1.0]]))[0]  # a slot with no neighbour weighs ~nothing
    assert missing[0] < 1e-6


def test_scale_puts_the_bulk_in_the_unit_square():
    y = topics.scale(np.random.default_rng(2).normal(size=(1000, 2)) * 50 + 7)
    assert np.percentile(y, 0.5, axis=0).min() >= -1.001 and np.percentile(y, 99.5, axis=0).max() <= 1.001
    assert topics.layout(np.eye(3, 8, dtype=np.float32)).shape == (3, 2)


def test_a_layout_beyond_the_sample_places_the_rest_among_their_neighbours():
    """Four well-separated groups: t-SNE lays out 80 of the 200 papers, the other 120 land with their own
    group (nearer its laid-out members' centre than any other group's)."""
    rng = np.random.default_rng(3)
    centres = topics._normalised(rng.normal(size=(4, 16)))
    group = np.repeat(np.arange(4), 50)
    x = topics._normalised(centres[group] + 0.05 * rng.normal(size=(200, 16)))
    y = topics.layout(x, sample=80)
    assert y.shape == (200, 2) and np.isfinite(y).all()
    centre = np.array([y[group == g].mean(axis=0) for g in range(4)])
    nearest = np.argmin(((y[:, None, :] - centre[None]) ** 2).sum(-1), axis=1)
    assert (nearest == group).mean() > 0.95


# -- a real build (t-SNE over the corpus: seconds each, so in the whole suite) --------------------------
@pytest.fixture(scope="module")
def built(tmp_path_factory, web_data, embedder):
    """A copy of the session corpus with its topics built (real embeddings, k-means, t-SNE)."""
    dst = tmp_path_factory.mktemp("topics") / "data"
    shutil.copytree(web_data, dst, ignore=shutil.ignore_patterns("models"))
    store = Store(dst / "paperradar.sqlite3")
    engine = SearchEngine(store, embedder=embedder)
    summary = engine.update_topics(rebuild=True)
    yield dst, summary
    engine.close()
    store.close()


@pytest.fixture
def engine(built, tmp_path, embedder):
    dst = tmp_path / "data"
    shutil.copytree(built[0], dst)
    store = Store(dst / "paperradar.sqlite3")
    e = SearchEngine(store, embedder=embedder)
    yield e
    e.close()
    store.close()


@pytest.mark.slow
def test_every_paper_is_in_one_fine_topic_under_one_broad_topic(built, engine):
    summary = built[1]
    index = engine.topics
    n = len(engine.vectors)
    assert summary["papers"] == n == len(index)
    assert summary["fine"] == len(index.levels("fine")) and summary["broad"] == len(index.levels("broad"))
    assert summary["fine"] >= summary["broad"] >= 2
    fine_ids = {t.id for t in index.levels("fine")}
    broad_ids = {t.id for t in index.levels("broad")}
    assert not fine_ids & broad_ids  # one id space: topic:N means one topic
    assert set(np.asarray(index.topic).tolist()) <= fine_ids
    assert sum(t.size for t in index.levels("fine")) == n == sum(t.size for t in index.levels("broad"))
    for t in index.levels("fine"):
        assert t.parent in broad_ids and t.size == len(index.members(t.id)) > 0
        assert set(t.central) <= set(index.members(t.id).tolist())
        assert t.label and t.terms
    for b in index.levels("broad"):
        kids = index.children(b.id)
        assert kids and b.size == sum(k.size for k in kids)
        together = np.sort(np.concatenate([index.members(k.id) for k in kids]))
        assert np.array_equal(index.members(b.id), together)
    xy = np.asarray(index.xy)
    assert xy.shape == (n, 2) and np.isfinite(xy).all() and np.abs(xy).max() < 5


@pytest.mark.slow
def test_topics_gather_similar_papers(engine):
    """Papers sit closer to their own topic's centroid than the average paper does (real embeddings)."""
    index = engine.topics
    old = topics._old(engine.index_dir / "topics")
    ids, _, x = engine.vectors.everything()
    x = topics._normalised(x)
    own = old["fine_c"][np.searchsorted(np.asarray(old["fine_ids"]), np.asarray(index.topic))]
    to_own = np.einsum("ij,ij->i", x, own)
    to_any = (x @ old["fine_c"].T).mean(axis=1)
    assert (to_own > to_any).mean() > 0.95


@pytest.mark.slow
def test_the_topic_filter_in_every_mode(engine):
    index = engine.topics
    t = max(index.levels("fine"), key=lambda t: t.size)
    members = set(index.members(t.id).tolist())
    word = t.terms[0].split()[0]
    for mode in ("lexical", "dense", "hybrid"):
        found = engine.retrieve(f"{word} topic:{t.id}", mode=mode, limit=50)
        assert found and {pid for pid, _ in found} <= members, mode
    alone = engine.search(f"topic:{t.id}", limit=200, sort="newest")
    assert {h.paper.id for h in alone.hits} == members
    b = index.get(t.parent)
    broad = {pid for pid, _ in engine.retrieve(f"topic:{b.id}", mode="lexical", limit=1000)}
    assert broad == set(index.members(b.id).tolist())
    other = next(x for x in index.levels("fine") if x.id != t.id)
    both = {pid for pid, _ in engine.retrieve(f"topic:{t.id} topic:{other.id}", mode="lexical", limit=1000)}
    assert both == members | set(index.members(other.id).tolist())  # several topics: any of them
    with pytest.raises(QueryError, match="no topic 99999"):
        engine.retrieve("topic:99999")
    with pytest.raises(QueryError, match="not a topic number"):
        parse_query("topic:abc")
    assert parse_query("topic:7 topic:7").topics == (7,)


@pytest.mark.slow
def test_a_saved_search_of_a_topic_gets_only_its_new_papers(engine):
    index = engine.topics
    t = max(index.levels("fine"), key=lambda t: t.size)
    members = index.members(t.id).tolist()
    outsiders = [int(i) for i in np.asarray(index.ids) if int(i) not in set(members)][:20]
    hits = engine.new_matches(f"topic:{t.id}", members[:5] + outsiders, limit=50)
    assert {h.paper.id for h in hits} == set(members[:5])


NEW = [Paper(title=f"Retrieval-augmented language models for question answering, part {i}", source="arxiv",
             arxiv_id=f"2607.0{i:04d}", abstract="We retrieve passages from a corpus and condition a "
             f"language model on them to answer open-domain questions; variant {i} adds a reranker.",
             authors=["Ada Lovelace"], categories=["cs.CL"], announced="2026-07-01") for i in range(1, 6)]


@pytest.mark.slow
def test_new_papers_join_their_nearest_topic_without_a_new_layout(engine):
    index = engine.topics
    before_xy = np.asarray(index.xy).copy()
    version = index.version
    assert engine.update_topics() == {"built": True, "added": 0, "moved": 0, "removed": 0}
    engine.store.upsert_papers(NEW)
    engine.update()
    done = engine.update_topics()
    assert (done["added"], done["moved"], done["removed"]) == (5, 0, 0)
    after = engine.topics
    assert after.version != version and len(after) == len(index) + 5
    old_rows = np.searchsorted(np.asarray(after.ids), np.asarray(index.ids))
    assert np.array_equal(np.asarray(after.xy)[old_rows], before_xy)  # the layout stayed
    old = topics._old(engine.index_dir / "topics")
    for p in NEW:
        pid = engine.store.get(p.arxiv_id).id
        ids, v = engine.vectors.rows([pid])
        want = np.asarray(old["fine_ids"])[np.argmax(topics._normalised(v) @ old["fine_c"].T)]
        assert after.topic_of(pid).id == want
        row = int(np.searchsorted(np.asarray(after.ids), pid))
        assert np.abs(np.asarray(after.xy)[row]).max() < 5
        assert after.day[row] == topics.day_number("2026-07-01")
    assert after.drift()["added"] == 5
    # a paper whose text changed is re-embedded and placed again; a change of votes is not
    first = engine.store.get(NEW[0].arxiv_id)
    engine.store.upsert_papers([Paper(title=first.title, source="hf", arxiv_id=NEW[0].arxiv_id, upvotes=7)])
    engine.update()
    assert engine.update_topics()["moved"] == 0
    engine.store.upsert_papers([Paper(title="Protein folding with graph networks", source="arxiv",
                                      arxiv_id=NEW[0].arxiv_id, version=2, updated="2026-07-05",
                                      abstract="Atoms and bonds.")])
    engine.update()
    assert engine.update_topics()["moved"] == 1


@pytest.mark.slow
def test_topics_built_from_vectors_embedded_another_way_are_built_again(engine):
    meta_path = engine.index_dir / "topics" / "meta.json"
    meta = json.loads(meta_path.read_text())
    assert meta["model"] == engine.vectors.model
    meta["model"] = "all-MiniLM-L6-v2/onnx-int8-pc-r2"  # before papers were read in passages
    meta_path.write_text(json.dumps(meta))
    done = engine.update_topics()
    assert done["rebuilt"] is True
    assert json.loads(meta_path.read_text())["model"] == engine.vectors.model
    assert engine.update_topics() == {"built": True, "added": 0, "moved": 0, "removed": 0}


@pytest.mark.slow
def test_a_rebuild_keeps_the_ids_of_topics_that_did_not_change(engine):
    old = engine.topics
    before = {t.id: set(old.members(t.id).tolist()) for t in old.levels("fine")}
    engine.update_topics(rebuild=True)
    new = engine.topics
    after = {t.id: set(new.members(t.id).tolist()) for t in new.levels("fine")}
    kept = set(before) & set(after)
    # k-means over the same vectors (multithreaded: not bit-for-bit the same clusters): a topic that keeps
    # its id is the same group of papers, mostly; one that changed gets an id never used before
    assert len(kept) >= 0.5 * len(before)
    for t in kept:
        assert len(before[t] & after[t]) / len(before[t] | after[t]) >= 0.5, t
    assert min(set(after) - kept, default=10**9) > max(before)


@pytest.mark.slow
def test_the_points_are_columns_the_page_can_read(engine):
    index = engine.topics
    raw = index.points()
    n = len(index)
    assert len(raw) == 18 * n
    x = np.frombuffer(raw, "<f4", n, 0)
    y = np.frombuffer(raw, "<f4", n, 4 * n)
    ids = np.frombuffer(raw, "<u4", n, 8 * n)
    topic = np.frombuffer(raw, "<u4", n, 12 * n)
    month = np.frombuffer(raw, "<i2", n, 16 * n)
    assert np.array_equal(x, np.asarray(index.xy)[:, 0]) and np.array_equal(y, np.asarray(index.xy)[:, 1])
    assert np.array_equal(ids, np.asarray(index.ids)) and np.array_equal(topic, np.asarray(index.topic))
    assert np.array_equal(month, topics.month_of(np.asarray(index.day)))
    meta = index.map_meta()
    assert meta["count"] == n and [c[0] for c in meta["columns"]] == ["x", "y", "id", "topic", "month"]
    assert json.dumps(meta)  # plain JSON


def test_no_topics_below_the_threshold_and_a_clear_error_without_them(tmp_path, web_data, embedder):
    dst = tmp_path / "data"
    shutil.copytree(web_data, dst, ignore=shutil.ignore_patterns("models"))
    store = Store(dst / "paperradar.sqlite3")
    engine = SearchEngine(store, embedder=embedder)
    try:
        done = engine.update_topics()  # ~230 papers: fewer than TOPICS_MIN
        assert done["built"] is False and "500" in done["reason"]
        assert not engine.has_topics()
        with pytest.raises(topics.TopicsUnavailable):
            engine.topics  # noqa: B018
        with pytest.raises(QueryError, match="none yet"):
            engine.retrieve("topic:3")
    finally:
        engine.close()
        store.close()


@pytest.mark.slow
def test_a_damaged_index_is_reported_not_crashed_on(engine):
    meta = engine.index_dir / "topics" / "meta.json"
    meta.write_text("{not json")
    with pytest.raises(topics.TopicsUnavailable, match="unreadable"):
        engine.topics  # noqa: B018
    (engine.index_dir / "topics" / "xy.npy").write_bytes(b"garbage")
    meta.write_text(json.dumps({"format": topics.FORMAT}))
    with pytest.raises(topics.TopicsUnavailable):
        engine.topics  # noqa: B018
    engine.update_topics(rebuild=True)  # the fix the hint names
    assert len(engine.topics) == len(engine.vectors)


@pytest.mark.slow
def test_the_cli_lists_topics_and_rising_ones(engine):
    from click.testing import CliRunner

    from paperradar.cli import cli

    data = str(engine.index_dir.parent)
    out = CliRunner().invoke(cli, ["--data-dir", data, "topics", "--json"])
    assert out.exit_code == 0, out.output
    body = json.loads(out.output)
    assert [t["id"] for t in body["topics"]] == [t.id for t in engine.topics.levels("broad")]
    text = CliRunner().invoke(cli, ["--data-dir", data, "topics", "--level", "fine", "--limit", "3"])
    assert text.exit_code == 0 and len(text.output.strip().splitlines()) == 3
    assert text.output.startswith("topic:")
    rising = CliRunner().invoke(cli, ["--data-dir", data, "topics", "--rising", "1", "--json"])
    assert rising.exit_code == 0 and all(t["growth"] > 0 for t in json.loads(rising.output)["topics"])


def test_the_cli_says_when_there_are_no_topics(tmp_path, monkeypatch, capsys):
    from paperradar.cli import main

    monkeypatch.setattr("sys.argv", ["paperradar", "--data-dir", str(tmp_path), "topics"])
    with pytest.raises(SystemExit) as exit_:
        main()
    err = capsys.readouterr().err
    assert exit_.value.code == 1 and err.startswith("error: no topics yet")
    assert "hint: paperradar index" in err
