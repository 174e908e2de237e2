"""JSONLSource and CSVSource on real records of the 119k arXiv corpus, and on damaged input."""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import json
import os
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paperradar.errors import InputUnusable
from paperradar.models import Paper, Rejected
from paperradar.sources.jsonl import CSVSource, JSONLSource, collapse, iso_date, split_authors

HEAD = Path(__file__).parent / "fixtures" / "corpus_jsonl" / "arxiv-119k.head.jsonl.gz"
HEAD_LINES = gzip.decompress(HEAD.read_bytes()).splitlines(keepends=True)
HEAD_RAW = [json.loads(line) for line in HEAD_LINES]
CORPUS = Path(__file__).parents[2] / "shared" / "data" / "corpus" / "arxiv-119k.jsonl.gz"


def only_papers(source) -> list[Paper]:
    items = list(source)
    assert all(isinstance(i, Paper) for i in items), [i for i in items if not isinstance(i, Paper)]
    return items


def described(items) -> list[str]:
    """Papers as their arXiv id (or key), rejects as "where: reason"."""
    return [str(i) if isinstance(i, Rejected) else (i.arxiv_id or i.key) for i in items]


def write_lines(path: Path, lines: list[bytes]) -> str:
    path.write_bytes(b"".join(line if line.endswith(b"\n") else line + b"\n" for line in lines))
    return str(path)


def test_reads_the_corpus_head_with_byte_progress():
    source = JSONLSource(str(HEAD))
    items = only_papers(source)
    assert len(items) == 200
    assert [p.arxiv_id for p in items] == [r["id"] for r in HEAD_RAW]
    assert {p.source for p in items} == {"jsonl"}
    assert source.progress() == (HEAD.stat().st_size, HEAD.stat().st_size)


def test_listing_record_field_by_field():
    p = only_papers(JSONLSource(str(HEAD)))[1]
    assert p.arxiv_id == "2503.11742" and p.version is None
    assert p.title == "Safe Vision-Language Models via Unsafe Weights Manipulation"
    assert p.abstract.startswith("Vision-language models (VLMs) often inherit the biases and unsafe "
                                 "associations "
                                 "present within their large-scale training dataset.")
    assert p.abstract == " ".join(HEAD_RAW[1]["abstract"].split())
    assert p.authors == ["Moreno D'Incà", "Elia Peruzzo", "Xingqian Xu", "Humphrey Shi", "Nicu Sebe",
                         "Massimiliano Mancini"]
    assert p.categories == ["cs.CV", "cs.AI"]
    assert p.comment == "Work in progress"
    assert p.announced == "2025-03-18"  # listing_date
    assert p.submitted is None and p.updated is None
    assert (p.doi, p.journal_ref, p.upvotes) == (None, None, None)
    first = only_papers(JSONLSource(str(HEAD)))[0]
    assert len(first.authors) == 16
    assert (first.authors[0], first.authors[-1]) == ("Xianming Zeng", "Qiang Li")
    assert first.comment is None


def test_oai_record_with_date_and_null_authors_field_by_field():
    p = only_papers(JSONLSource(str(HEAD)))[190]
    assert p.arxiv_id == "gr-qc/9210004"
    assert p.title == "The Spacetime Approach to Quantum Mechanics"
    assert p.abstract.startswith("Feynman's sum-over-histories formulation of quantum mechanics is reviewed "
                                 "as an independent statement")
    assert 'the usual Schr\\"odinger-Heisenberg formulation' in p.abstract  # abstracts keep their LaTeX
    assert p.authors == []  # null in the file
    assert p.categories == ["quant-ph"]
    assert p.submitted == "1992-10-07"  # "date" is the paper's OAI date
    assert p.announced is None and p.comment is None


def test_acm_and_msc_classes_are_not_categories():
    got = {p.arxiv_id: p.categories for p in only_papers(JSONLSource(str(HEAD)))}
    assert got["2503.12260"] == ["cs.CV"]  # listed as ["cs.CV", "I.4"]
    assert got["2503.12780"] == ["cs.CV", "cs.AI", "cs.LG", "eess.IV", "stat.ML"]  # "68Txx", "I.2.1" dropped


def test_damaged_lines_are_rejected_and_the_rest_kept(tmp_path):
    good = HEAD_LINES[:6]
    no_title = json.dumps({**HEAD_RAW[6], "title": ""}).encode()
    bad_utf8 = HEAD_LINES[7].replace(b"the", b"th\xe9", 1)
    huge = json.dumps({**HEAD_RAW[8], "abstract": "x" * (5 * 2**20)}).encode()  # a 5 MB line
    assert len(huge) > 5 * 2**20
    lines = [good[0], b'{"id": "2503.1", "title": ', good[1], no_title, good[2], bad_utf8, good[3], huge,
             good[4], b'["a", "list"]', b"42", b"", good[5]]
    items = list(JSONLSource(write_lines(tmp_path / "damaged.jsonl", lines)))
    assert described(items) == [
        HEAD_RAW[0]["id"],
        "damaged.jsonl line 2: not valid JSON (Expecting value at character 28)",
        HEAD_RAW[1]["id"],
        "damaged.jsonl line 4: missing title",
        HEAD_RAW[2]["id"],
        "damaged.jsonl line 6: not valid UTF-8",
        HEAD_RAW[3]["id"],
        "damaged.jsonl line 8: line longer than 4 MiB",
        HEAD_RAW[4]["id"],
        "damaged.jsonl line 10: a JSON list, not an object",
        "damaged.jsonl line 11: a JSON int, not an object",
        HEAD_RAW[5]["id"],  # the blank line 12 is skipped
    ]


def test_bad_field_values_are_rejected_with_reasons(tmp_path):
    base = {"title": "A title", "abstract": "An abstract."}
    records = [
        {**base, "id": "2503.1173x"},  # meant as an arXiv id, mangled
        {**base, "arxiv_id": "hello"},
        {**base, "id": "2503.11731", "listing_date": "18 March, maybe"},
        {**base, "id": "2503.11731", "authors": [1, 2]},
        {**base, "id": "2503.11731", "title": ["not", "a", "string"]},
        {**base, "id": "2503.11731", "upvotes": -3},
        {**base, "id": "2503.11731", "abstract": "x" * 20_001},
    ]
    lines = [json.dumps(r).encode() for r in records]
    lines.append(b'{"id": "2503.11731", "title": "Lone \\ud800 surrogate"}')
    items = list(JSONLSource(write_lines(tmp_path / "fields.jsonl", lines)))
    assert described(items) == [
        "fields.jsonl line 1: malformed arXiv id '2503.1173x'",
        "fields.jsonl line 2: malformed arXiv id 'hello'",
        "fields.jsonl line 3: announced '18 March, maybe' is not a date",
        "fields.jsonl line 4: authors holds a int, not a name",
        "fields.jsonl line 5: title is a list, not a string",
        "fields.jsonl line 6: absurd upvote count -3",
        "fields.jsonl line 7: abstract is 20001 characters (limit 20000)",
        "fields.jsonl line 8: invalid Unicode escape (lone surrogate)",
    ]


def test_synonyms_and_other_identifiers(tmp_path):
    records = [
        {"arxiv_id": "arXiv:2503.11731v2", "title": "T1", "summary": "S1", "categories": "cs.CL cs.AI",
         "authors": "Ada Lovelace, Alan Turing and Grace Hopper", "journal_ref": "Nature 1, 2 (2025)",
         "doi": "https://doi.org/10.1000/xyz", "upvotes": 7, "submitted": "2025-03-14T09:30:00+02:00",
         "updated": "Mon, 2 Apr 2007 19:18:42 GMT", "comments": "5 pages"},
        {"id": "https://arxiv.org/abs/hep-th/9901001v3", "title": "T2", "version": "v4",
         "authors": [{"name": "Emmy Noether"}], "journal-ref": "J. Old 1", "announced": "2025-03-18"},
        {"id": "10.1103/PhysRevD.76.013009", "title": "Keyed by the DOI in its id"},
        {"id": 12345, "title": "Keyed by title: numeric ids are row numbers"},
        {"id": "W2741809807", "title": "An OpenAlex id says nothing about arXiv"},
        {"doi": "10.48550/arXiv.2503.11742", "title": "arXiv's own DOI names the paper"},
    ]
    path = write_lines(tmp_path / "syn.jsonl", [json.dumps(r).encode() for r in records])
    got = only_papers(JSONLSource(path))
    first = got[0]
    assert (first.arxiv_id, first.version, first.abstract) == ("2503.11731", 2, "S1")
    assert first.authors == ["Ada Lovelace", "Alan Turing", "Grace Hopper"]
    assert first.categories == ["cs.CL", "cs.AI"]
    assert (first.journal_ref, first.doi, first.upvotes, first.comment) == (
        "Nature 1, 2 (2025)", "10.1000/xyz", 7, "5 pages")
    assert (first.submitted, first.updated) == ("2025-03-14T07:30:00Z", "2007-04-02T19:18:42Z")
    second = got[1]
    assert (second.arxiv_id, second.version, second.authors) == ("hep-th/9901001", 4, ["Emmy Noether"])
    assert (second.journal_ref, second.announced) == ("J. Old 1", "2025-03-18")
    assert [p.key for p in got[2:]] == [
        "doi:10.1103/physrevd.76.013009",
        "title:keyed by title numeric ids are row numbers",
        "title:an openalex id says nothing about arxiv",
        "2503.11742",
    ]


def test_csv_equals_jsonl(tmp_path):
    path = tmp_path / "papers.csv"
    columns = ["id", "title", "abstract", "authors", "categories", "comment", "listing_date", "date",
               "source"]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for r in HEAD_RAW:
            cells = {**r, "authors": json.dumps(r["authors"], ensure_ascii=False) if r["authors"] else "",
                     "categories": " ".join(r["categories"])}
            writer.writerow(["" if cells.get(c) is None else cells[c] for c in columns])
    source = CSVSource(str(path))
    got = only_papers(source)
    expected = [dataclasses.replace(p, source="csv") for p in only_papers(JSONLSource(str(HEAD)))]
    assert got == expected
    assert source.progress() == (path.stat().st_size, path.stat().st_size)


def test_csv_separated_lists_and_rejects_with_physical_line_numbers(tmp_path):
    rows = [
        ["title", "abstract", "authors", "categories", "id"],
        ["First", "An abstract\nwrapped over\nthree lines", "Ada Lovelace, Alan Turing and Grace Hopper",
         '["cs.CL", "cs.AI"]', "2503.11731"],
        ["", "no title here", "", "", ""],
        ["Third", "ok", "Noether, Emmy; Hilbert, David", "math.AG,math.NT", "", "an extra cell"],
        ["Fourth", "ok", "", "", "10.1000/abc"],
    ]
    path = tmp_path / "lists.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    with path.open("ab") as f:
        f.write(b"Fifth,caf\xe9 latin-1,,,\n")
        f.write(b"Sixth," + b"y" * (5 * 2**20) + b",,,\n")
        f.write(b'Seventh,"ok",,,hep-th/9901001\n')
    items = list(CSVSource(str(path)))
    assert described(items) == [
        "2503.11731",
        "lists.csv line 5: missing title",
        "lists.csv line 6: 6 fields but the header names 5",
        "doi:10.1000/abc",
        "lists.csv line 8: not valid UTF-8",
        "lists.csv line 9: line longer than 4 MiB",
        "hep-th/9901001",
    ]
    first = items[0]
    assert first.abstract == "An abstract wrapped over three lines"
    assert first.authors == ["Ada Lovelace", "Alan Turing", "Grace Hopper"]
    assert first.categories == ["cs.CL", "cs.AI"]
    assert split_authors("Noether, Emmy; Hilbert, David") == ["Noether, Emmy", "Hilbert, David"]


def test_stdin(monkeypatch):
    data = b"".join(HEAD_LINES[:3]) + b"not json\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    items = list(JSONLSource("-"))
    assert described(items) == [r["id"] for r in HEAD_RAW[:3]] + [
        "stdin line 4: not valid JSON (Expecting value at character 1)"]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(gzip.compress(data))))  # gzip on stdin too
    assert len(only_papers(list(JSONLSource("-"))[:3])) == 3


def test_unusable_inputs(tmp_path):
    with pytest.raises(InputUnusable, match="cannot open"):
        list(JSONLSource(str(tmp_path / "missing.jsonl")))
    binary = tmp_path / "index.jsonl"
    binary.write_bytes(b"SQLite format 3\x00" + os.urandom(2000))
    with pytest.raises(InputUnusable, match="binary"):
        list(JSONLSource(str(binary)))
    array = tmp_path / "array.jsonl"
    array.write_text(json.dumps(HEAD_RAW[:2]))
    with pytest.raises(InputUnusable, match="JSON array") as e:
        list(JSONLSource(str(array)))
    assert "jq" in e.value.hint
    prose = tmp_path / "notes.jsonl"
    prose.write_text("Some notes\nabout papers\n")
    with pytest.raises(InputUnusable, match="not JSON lines"):
        list(JSONLSource(str(prose)))
    other = tmp_path / "log.jsonl"
    other.write_text('{"level": "info", "msg": "started"}\n')
    with pytest.raises(InputUnusable, match="none of the paper fields"):
        list(JSONLSource(str(other)))
    truncated_gzip = tmp_path / "cut.jsonl.gz"
    truncated_gzip.write_bytes(HEAD.read_bytes()[:5000])
    with pytest.raises(InputUnusable, match="cannot read past line"):
        list(JSONLSource(str(truncated_gzip)))
    headless = tmp_path / "no_header.csv"
    headless.write_text("2503.11731,Some title,Some abstract\n")
    with pytest.raises(InputUnusable, match="no 'title' column"):
        list(CSVSource(str(headless)))
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    assert list(JSONLSource(str(empty))) == []  # nothing to import is not an error


def test_helpers():
    assert collapse("  a\nb \t c  ") == "a b c" == " ".join("  a\nb \t c  ".split())
    assert collapse("Schrödinger\u00a0cat\n") == "Schrödinger cat"
    assert iso_date("2026-05-30T00:00:00.000Z", "x", date_only=True) == "2026-05-30"
    assert iso_date("2025-03-14T23:30:00-02:00", "x") == "2025-03-15T01:30:00Z"
    assert iso_date("", "x") is None


@given(st.text(max_size=300))
def test_collapse_matches_clean_text(text):
    assert collapse(text) == " ".join(text.split())


def _items_from(data: bytes, source_class=JSONLSource) -> list:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "fuzz.jsonl"
        path.write_bytes(data)
        return list(source_class(str(path)))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=12))
def test_arbitrary_byte_lines_only_give_papers_or_rejects(lines):
    # The first line is a real record, so the file is recognisably JSON lines; after it anything goes.
    data = HEAD_LINES[0] + b"\n".join(lines)
    items = _items_from(data)
    assert isinstance(items[0], Paper)
    assert all(isinstance(i, Paper | Rejected) for i in items)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(
    st.binary(max_size=120),
    st.dictionaries(st.sampled_from(["id", "title", "abstract", "authors", "categories", "date", "version",
                                     "upvotes", "doi", "listing_date"]),
                    st.one_of(st.none(), st.text(max_size=30), st.integers(), st.lists(st.text(max_size=10)))
                    ).map(lambda d: json.dumps(d).encode())), max_size=10))
@pytest.mark.slow
def test_arbitrary_records_never_raise_beyond_input_unusable(lines):
    for source_class in (JSONLSource, CSVSource):
        try:
            items = _items_from(b"\n".join(lines), source_class)
        except InputUnusable:
            continue
        assert all(isinstance(i, Paper | Rejected) for i in items)


@pytest.mark.slow
@pytest.mark.skipif(not CORPUS.exists(), reason=f"the 119k corpus is not at {CORPUS}")
def test_whole_119k_corpus():
    counts = {Paper: 0, Rejected: 0}
    rejects = []
    glued = None
    for item in JSONLSource(str(CORPUS)):
        if isinstance(item, Paper) and item.arxiv_id == "2506.02197":
            glued = item
        counts[type(item)] += 1
        if isinstance(item, Rejected):
            rejects.append(str(item))
    assert counts[Paper] == 118_860
    assert rejects == []
    # Line 13402 glues ~30 authors into one name ("Xiangyu Kongand Xiaoxia Xingand ..."), kept as is.
    assert glued is not None and max(len(a) for a in glued.authors) > 300



def test_a_title_without_any_letter_or_digit_is_rejected_and_the_batch_kept(tmp_path):
    """'???' normalises to nothing (no key, nothing to merge by): before, the store's NOT NULL title_norm
    failed and the whole batch was lost; now the record is rejected with its line and the rest goes in."""
    from paperradar.ingest import ingest
    from paperradar.store import Store

    path = tmp_path / "wordless.jsonl"
    rows = [{"doi": "10.7777/a", "title": "A real title", "abstract": "x"},
            {"doi": "10.7777/b", "title": "???", "abstract": "x"},
            {"doi": "10.7777/c", "title": "\U0001f600\U0001f600", "abstract": "x"},
            {"doi": "10.7777/d", "title": "Another real title", "abstract": "x"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    rejects: list[Rejected] = []
    with Store(tmp_path / "s.sqlite3") as store:
        report = ingest(store, JSONLSource(str(path)), on_reject=rejects.append)
        assert (report.added, report.rejected, store.count()) == (2, 2, 2)
    assert [str(r) for r in rejects] == ["wordless.jsonl line 2: the title has no letter or digit",
                                         "wordless.jsonl line 3: the title has no letter or digit"]


def test_a_date_far_in_the_future_is_a_rejected_record(tmp_path):
    """9999-12-31 would put a paper first in every "newest" list forever: the record is reported and
    skipped; next week's listing (a date a little ahead, as time zones make) is fine."""
    import datetime as dt

    from paperradar.ingest import ingest
    from paperradar.store import Store

    soon = (dt.date.today() + dt.timedelta(days=7)).isoformat()
    path = tmp_path / "dates.jsonl"
    rows = [{"id": "2601.00001", "title": "From the far future", "abstract": "x", "date": "9999-12-31"},
            {"id": "2601.00002", "title": "Listed next week", "abstract": "x", "date": soon}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    rejects: list[Rejected] = []
    with Store(tmp_path / "s.sqlite3") as store:
        report = ingest(store, JSONLSource(str(path)), on_reject=rejects.append)
        assert (report.added, report.rejected) == (1, 1)
        assert store.get("2601.00002").title == "Listed next week"
    assert [str(r) for r in rejects] == ["dates.jsonl line 1: submitted 9999-12-31 is in the future"]
