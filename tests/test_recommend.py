"""The recommender's pure parts (the classifier, the soft similarity, the term profile, the filters) and the
library's core (saving, import matching by arXiv id, DOI and title) over a real store file."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paperradar.library import Library, LibraryError, tag_name
from paperradar.models import Paper
from paperradar.query import QueryError
from paperradar.recommend import FeedFilters, soft_similarity, term_profile, terms_of, train_logistic
from paperradar.store import Store


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def test_logistic_regression_separates_two_clusters():
    rng = np.random.default_rng(0)
    centre_pos, centre_neg = rng.normal(size=16), rng.normal(size=16)
    pos = unit(centre_pos + 0.3 * rng.normal(size=(8, 16)))
    neg = unit(centre_neg + 0.3 * rng.normal(size=(200, 16)))
    x = np.vstack([pos, neg])
    y = np.r_[np.ones(8), np.zeros(200)]
    w, b = train_logistic(x, y, np.ones(len(y)), l2=0.1)
    fresh_pos = unit(centre_pos + 0.3 * rng.normal(size=(20, 16)))
    fresh_neg = unit(centre_neg + 0.3 * rng.normal(size=(20, 16)))
    assert (fresh_pos @ w + b).min() > (fresh_neg @ w + b).max()
    # balanced classes: 8 positives are not drowned by 200 negatives
    assert (fresh_pos @ w + b > 0).mean() > 0.9


def test_logistic_regression_weights_count():
    """A heavier negative pulls the boundary toward the positives: its own score drops."""
    x = unit(np.array([[1.0, 0.1], [0.9, 0.3], [1.0, 0.0], [0.7, 0.7], [0.0, 1.0], [-1.0, 0.2]]))
    y = np.array([1, 1, 1, 0, 0, 0], dtype=float)
    plain = train_logistic(x, y, np.ones(6))
    heavy = train_logistic(x, y, np.array([1, 1, 1, 5, 1, 1], dtype=float))
    assert x[3] @ heavy[0] + heavy[1] < x[3] @ plain[0] + plain[1]


def test_soft_similarity_is_a_soft_maximum():
    saved = unit(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
    x = unit(np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]]))
    s = soft_similarity(x, saved)
    sims = x @ saved.T
    assert np.all(s >= sims.max(axis=1) - 1e-6)
    assert np.all(s <= sims.max(axis=1) + np.log(2) / 20 + 1e-6)
    assert s[0] > s[2] > s[1]
    # chunked: the same over many rows
    many = unit(np.random.default_rng(1).normal(size=(20_000, 3)))
    np.testing.assert_allclose(soft_similarity(many, saved)[:5], soft_similarity(many[:5], saved), rtol=1e-5)


def test_term_profile_finds_what_sets_the_positives_apart():
    positives = ["Graph neural networks for molecules", "Message passing graph networks on crystals",
                 "Equivariant graph networks for proteins"]
    negatives = ["Large language models for translation", "Speech recognition with transformers",
                 "Networks of sensors for traffic"] * 5
    profile = term_profile(positives, negatives)
    assert next(iter(profile)) == "graph"
    assert "for" not in profile and "networks" in profile
    assert list(profile.values()) == sorted(profile.values(), reverse=True)


@given(st.text(max_size=300))
@settings(max_examples=200, deadline=None)
def test_terms_of_any_text(text):
    words = terms_of(text)
    assert all(w == w.lower() and len(w) > 2 for w in words)


@given(st.text(max_size=60), st.text(max_size=60), st.text(max_size=60),
       st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(["week", "month", "all", "x", ""]))
@settings(max_examples=200, deadline=None)
def test_feed_filters_validate_or_say_why(cat, include, exclude, score, window):
    f = FeedFilters(window=window, categories=cat.split(), include=include, exclude=exclude.split(),
                    min_score=score)
    try:
        f.validate()
    except QueryError as e:
        assert str(e)


def test_feed_filters_keep():
    from paperradar.store import StoredPaper

    p = StoredPaper(1, "2601.00001", "2601.00001", 1, "Sparse retrieval at scale", "We index many documents.",
                    ["A B"], ["cs.IR", "cs.CL"], "2026-01-01", None, None, None, None, None, None, None, [],
                    None, "", 1)
    assert FeedFilters(categories=["cs"]).validate().keeps(p)
    assert FeedFilters(categories=["cs.cl"]).validate().keeps(p)
    assert not FeedFilters(categories=["math"]).validate().keeps(p)
    assert not FeedFilters(exclude=["Sparse"]).validate().keeps(p)
    assert FeedFilters(exclude=["dense"]).validate().keeps(p)
    assert FeedFilters(include="retrieval documents").validate().keeps(p)
    assert not FeedFilters(include="retrieval images").validate().keeps(p)


# -- the library core --------------------------------------------------------------------------------------
@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "paperradar.sqlite3")
    s.upsert_papers([
        Paper(title="Attention Is All You Need", source="arxiv", arxiv_id="1706.03762",
              authors=["A. Vaswani"], categories=["cs.CL"], submitted="2017-06-12T00:00:00Z",
              abstract="Transformers."),
        Paper(title="A Paper Known by Its DOI", source="crossref", doi="10.1000/xyz123", authors=["B. C"],
              submitted="2020-01-01T00:00:00Z"),
        Paper(title="Renamed Later: Old Title", source="arxiv", arxiv_id="2001.00002", authors=["D. E"],
              submitted="2020-01-02T00:00:00Z"),
    ])
    yield s
    s.close()


def test_import_matches_by_arxiv_id_doi_and_title(store):
    user = store.accounts.ensure_user("me@example.org", "2026-01-01T00:00:00Z")
    text = """
@misc{vaswani, title={Attention is all you need}, eprint={1706.03762v5}, archivePrefix={arXiv}}
@article{bydoi, title={Whatever the title says}, doi={https://doi.org/10.1000/XYZ123}}
@inproceedings{bytitle, title = {Renamed {L}ater: {O}ld Title}, author = {D. E}}
@misc{arxivdoi, title={No}, doi={10.48550/arXiv.2001.00002}}
@article{nowhere, title={Not In This Store}, journal={Nature}}
@article{broken, title={oops
"""
    report = Library(store).import_bibtex(user, text, "refs")
    assert [k for k, _ in report.matched] == ["vaswani", "bydoi", "bytitle", "arxivdoi"]
    assert [(k, t) for _, k, t in report.unmatched] == [("nowhere", "Not In This Store")]
    assert len(report.problems) == 1 and report.problems[0].line == 7
    assert report.added == 3  # bytitle and arxivdoi are the same paper
    assert store.accounts.tag(user.id, "refs").papers == 3
    again = Library(store).import_bibtex(user, text, "refs")
    assert again.added == 0


def test_import_of_nothing_is_an_error(store):
    user = store.accounts.ensure_user("me@example.org", "2026-01-01T00:00:00Z")
    with pytest.raises(LibraryError, match="no BibTeX entries"):
        Library(store).import_bibtex(user, "just some text, no entries", None)


def test_export_round_trips_through_import(store):
    user = store.accounts.ensure_user("me@example.org", "2026-01-01T00:00:00Z")
    lib = Library(store)
    for ref in ("1706.03762", "10.1000/xyz123", "2001.00002"):
        lib.save(user, ref, "all of them")
    other = store.accounts.ensure_user("you@example.org", "2026-01-01T00:00:00Z")
    report = lib.import_bibtex(other, lib.export_bibtex(user), "copied")
    assert len(report.matched) == 3 and not report.unmatched and not report.problems
    exported = lib.export_json(user)
    assert sorted(p["title"] for p in exported["papers"]) == sorted(
        p["title"] for p in lib.export_json(other)["papers"])


@given(st.text(max_size=80))
@settings(max_examples=200, deadline=None)
def test_tag_names_are_cleaned_or_refused(name):
    try:
        clean = tag_name(name)
    except LibraryError:
        return
    assert clean == " ".join(clean.split()) and 0 < len(clean) <= 60 and clean.isprintable()
