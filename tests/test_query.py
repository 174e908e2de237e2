"""The query language: every string is a Query or a QueryError with a message, never anything else."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paperradar.errors import PaperradarError
from paperradar.query import MAX_QUERY, FieldTerm, Query, QueryError, parse_query


def test_free_words_are_terms_and_semantic_text():
    q = parse_query("graph neural networks")
    assert q.terms == ("graph", "neural", "networks")
    assert q.text == "graph neural networks"
    assert q.sort == "relevance" and q.since is None and q.until is None
    assert q.has_text and not q.has_filters


def test_query_is_frozen():
    q = parse_query("x")
    with pytest.raises(AttributeError):
        q.terms = ()


def test_phrases_fields_and_exclusions():
    q = parse_query('au:"Yann LeCun" "self supervised" -ti:survey -"large language" -cat:cs.CV -noise')
    assert q.fields == (FieldTerm("authors", "Yann LeCun"),)
    assert q.phrases == ("self supervised",)
    assert q.exclude == (FieldTerm("title", "survey"), FieldTerm("any", "large language"),
                         FieldTerm("category", "cs.cv"), FieldTerm("any", "noise"))
    assert q.text == "self supervised"  # operators and field terms are not semantic text


def test_field_aliases_and_case():
    q = parse_query("TI:attention Author:vaswani abstract:transduction CAT:CS.CL")
    assert q.fields == (FieldTerm("title", "attention"), FieldTerm("authors", "vaswani"),
                        FieldTerm("abstract", "transduction"))
    assert q.categories == ("cs.cl",)
    assert q.terms == ()


def test_ids_are_normalized():
    q = parse_query("id:2503.11731v2 id:https://arxiv.org/abs/hep-th/9901001 id:10.1000/XYZ")
    assert q.ids == ("2503.11731", "hep-th/9901001", "10.1000/xyz")


def test_unknown_field_is_plain_text():
    q = parse_query("foo:bar baz")
    assert q.terms == ("foo:bar", "baz")
    assert q.text == "foo:bar baz"


@pytest.mark.parametrize("text, since, until", [
    ("since:2024", "2024-01-01", None),
    ("since:2024-03", "2024-03-01", None),
    ("since:2024-03-15", "2024-03-15", None),
    ("until:2024", None, "2024-12-31"),
    ("until:2024-02", None, "2024-02-29"),  # leap year: the whole month
    ("until:2023-02", None, "2023-02-28"),
    ("year:2024", "2024-01-01", "2024-12-31"),
    ("year:2023..2025", "2023-01-01", "2025-12-31"),
    ("2023..2025", "2023-01-01", "2025-12-31"),
    ("2023..", "2023-01-01", None),
    ("..2020", None, "2020-12-31"),
    ("since:2020 since:2022 until:2025 until:2024-06", "2022-01-01", "2024-06-30"),  # narrowed
])
def test_dates(text, since, until):
    q = parse_query(text + " word")
    assert (q.since, q.until) == (since, until)
    assert q.terms == ("word",)


@pytest.mark.parametrize("text, message", [
    ("since:2024-13-45", "bad date"),
    ("since:2024-02-30", "no such day"),
    ("until:24", "YYYY"),
    ("since:yesterday x", "bad date"),
    ("year:2024-03", "not a year"),
    ("since:2025 until:2024", "empty"),
    ("sort:best x", "sort:relevance"),
    ("-since:2024 x", "cannot exclude"),
    ("-2020..2022 x", "cannot exclude"),
    ("ti: attention", "needs a value"),
    ("au:", "needs a value"),
    ("cat:!!", "no letters"),
    ("", "empty query"),
    ("   \t\n", "empty query"),
    ("!!! ... -", "empty query"),
    ("sort:newest", "empty query"),  # a sort is not a filter
    ("x" * (MAX_QUERY + 1), "limit"),
])
def test_errors_explain(text, message):
    with pytest.raises(QueryError, match=message):
        parse_query(text)


def test_query_error_is_a_paperradar_error():
    assert issubclass(QueryError, PaperradarError)


def test_filters_alone_are_a_query():
    q = parse_query("cat:cs.LG since:2024 sort:newest")
    assert q.categories == ("cs.lg",) and q.since == "2024-01-01" and q.sort == "newest"
    assert not q.has_text and q.text == ""
    assert parse_query("-survey").exclude == (FieldTerm("any", "survey"),)


def test_a_dash_before_a_number_is_not_an_exclusion():
    q = parse_query("Differentiated E2f-1, -2, -3 TKO cells at -40 C -x")
    assert q.exclude == (FieldTerm("any", "x"),)
    assert q.terms == ("Differentiated", "E2f-1,", "-2,", "-3", "TKO", "cells", "at", "-40", "C")
    assert q.text == "Differentiated E2f-1, -2, -3 TKO cells at -40 C"


def test_unbalanced_quote_takes_the_rest_as_a_phrase():
    q = parse_query('diffusion "score based models')
    assert q.terms == ("diffusion",)
    assert q.phrases == ("score based models",)
    q = parse_query('au:"Yann LeCun')
    assert q.fields == (FieldTerm("authors", "Yann LeCun"),)


def test_quote_inside_a_word_starts_a_phrase():
    q = parse_query('foo"bar baz" qux')
    assert q.terms == ("foo", "qux") and q.phrases == ("bar baz",)


def test_typographic_quotes_and_control_characters():
    q = parse_query("\u201cneural fields\u201d\x00model\ud800")
    assert q.phrases == ("neural fields",)
    assert q.terms == ("model",)


def test_duplicates_are_dropped():
    q = parse_query("Graph graph GRAPH cat:cs cat:CS")
    assert q.terms == ("Graph",) and q.categories == ("cs",)


def test_sort_values():
    assert parse_query("x sort:Newest").sort == "newest"
    assert parse_query("x sort:trending").sort == "trending"


_ALPHABET = st.sampled_from(list('abc XYZ-":.0129') + ["ti:", "au:", "cat:", "id:", "since:", "until:",
                                                        "year:", "sort:", "..", "é", "\u201c", "\x00"])


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=120), st.lists(_ALPHABET, max_size=40).map("".join)))
def test_any_text_is_a_query_or_a_query_error(text):
    try:
        q = parse_query(text)
    except QueryError as e:
        assert str(e)
        return
    assert isinstance(q, Query)
    assert q.has_text or q.has_filters
    for value in (*q.terms, *q.phrases, *(f.value for f in q.fields), *(f.value for f in q.exclude)):
        assert value and value == value.strip()
    if q.since and q.until:
        assert q.since <= q.until


def test_facets_of_what_surrounds_the_abstract():
    q = parse_query('diffusion has:code venue:CVPR2025 venue:"ICLR 2026" org:Caltech -has:model')
    assert q.facets == ("has:code", "venue:cvpr 2025", "venue:iclr 2026", "org:caltech")
    assert q.facet_groups() == [("has:code",), ("venue:cvpr 2025", "venue:iclr 2026"), ("org:caltech",)]
    assert q.exclude == (FieldTerm("facet", "has:model"),)
    assert q.text == "diffusion" and q.has_filters
    assert parse_query("has:code").facets == ("has:code",)  # a facet alone is a query
    assert parse_query("venue:neurips").facets == ("venue:neurips",)


@pytest.mark.parametrize(("text", "message"), [
    ("has:weights", "has:weights is not known; use one of has:code"),
    ("venue:", "venue: needs a value"),
    ("org:??", "has no letters or digits"),
])
def test_facet_errors_explain(text, message):
    with pytest.raises(QueryError, match=re.escape(message)):
        parse_query(text)
