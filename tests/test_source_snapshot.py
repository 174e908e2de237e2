"""SnapshotSource on 200 real records in the Kaggle arxiv-metadata-oai-snapshot format."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from paperradar.errors import InputUnusable, PaperradarError
from paperradar.models import Paper, Rejected
from paperradar.sources import base
from paperradar.sources.arxiv_snapshot import SnapshotSource, parse_versions, snapshot_authors
from paperradar.sources.jsonl import latex_to_unicode

FIXTURES = Path(__file__).parent / "fixtures" / "kaggle_snapshot"
SAMPLE = FIXTURES / "wanng-ide_arxiv-metadata-oai-snapshot.sample.json"
RAW = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]


def papers(source) -> list[Paper]:
    items = list(source)
    assert all(isinstance(i, Paper) for i in items), [i for i in items if not isinstance(i, Paper)]
    return items


def by_id(items) -> dict[str, Paper]:
    return {p.arxiv_id: p for p in items}


def test_reads_every_record_with_progress_in_bytes():
    source = SnapshotSource(str(SAMPLE))
    assert source.progress() == (0, None)
    items = papers(source)
    assert len(items) == 200 == len(RAW)
    assert [p.arxiv_id for p in items] == [r["id"] for r in RAW]
    assert {p.source for p in items} == {"snapshot"}
    size = SAMPLE.stat().st_size
    assert source.progress() == (size, size)


def test_first_record_field_by_field():
    p = by_id(papers(SnapshotSource(str(SAMPLE))))["0704.0001"]
    assert p.title == "Calculation of prompt diphoton production cross sections at Tevatron and LHC energies"
    assert p.abstract.startswith("A fully differential calculation in perturbative quantum chromodynamics is "
                                 "presented for the production of massive photon pairs at hadron colliders.")
    assert p.abstract.endswith("can be obtained with judicious selection of events.")
    assert "\n" not in p.abstract and "  " not in p.abstract
    # authors_parsed gives "Balázs" already; the dump's "C. -P." is put back to arXiv's "C.-P."
    assert p.authors == ["C. Balázs", "E. L. Berger", "P. M. Nadolsky", "C.-P. Yuan"]
    assert p.categories == ["hep-ph"]
    assert p.version == 2
    assert p.submitted == "2007-04-02T19:18:42Z"
    assert p.updated == "2007-07-24T20:10:27Z"
    assert p.announced is None  # update_date (2008-11-26) is a metadata date, not an announcement
    assert p.comment == "37 pages, 15 figures; published version"
    assert p.journal_ref == "Phys.Rev.D76:013009,2007"
    assert p.doi == "10.1103/PhysRevD.76.013009"
    assert p.key == "0704.0001"


def test_latex_authors_and_wrapped_journal_ref_field_by_field():
    p = by_id(papers(SnapshotSource(str(SAMPLE))))["0704.0062"]
    assert p.title == "On-line Viterbi Algorithm and Its Relationship to Random Walks"
    assert p.abstract.startswith("In this paper, we introduce the on-line Viterbi algorithm for decoding "
                                 "hidden Markov models (HMMs) in much smaller than linear space.")
    assert p.authors == ["Rastislav Šrámek", "Broňa Brejová", "Tomáš Vinař"]
    assert p.categories == ["cs.DS"]
    assert p.version == 1
    assert p.submitted == p.updated == "2007-03-31T23:52:33Z"
    assert p.doi == "10.1007/978-3-540-74126-8_23"
    assert p.journal_ref == ("Algorithms in Bioinformatics: 7th International Workshop (WABI), 4645 volume "
                             "of Lecture Notes in Computer Science, pp. 240-251, Philadelphia, PA, USA, "
                             "September 2007. Springer")
    assert p.comment is None


def test_primary_category_first_versions_and_missing_doi():
    got = by_id(papers(SnapshotSource(str(SAMPLE))))
    p = got["0704.0002"]
    assert p.categories == ["math.CO", "cs.CG"]
    assert p.authors == ["Ileana Streinu", "Louis Theran"]
    assert (p.doi, p.journal_ref) == (None, None)
    assert p.submitted == "2007-03-31T02:26:18Z" and p.updated == "2008-12-13T17:26:00Z"
    five = got["0704.0064"]
    assert five.version == 5
    assert (five.submitted, five.updated) == ("2007-04-01T13:32:15Z", "2008-10-24T12:23:58Z")
    assert five.authors == ["R. P. Malik"]  # the affiliation "(Bhu)" is not part of the name
    assert got["0704.0049"].authors == ["Mikkel Øbro"]
    assert got["0704.0163"].authors == ["Peter Brommer", "Franz Gähler"]


def test_every_record_matches_the_raw_fields():
    for raw, p in zip(RAW, papers(SnapshotSource(str(SAMPLE))), strict=True):
        assert p.categories == raw["categories"].split()
        assert p.version == len(raw["versions"])
        assert p.doi == (raw["doi"].split()[0] if raw["doi"] else None)
        assert len(p.authors) == len(raw["authors_parsed"])
        assert not any("\\" in a or "{" in a for a in p.authors)


def test_authors_string_is_used_when_authors_parsed_is_missing():
    raw = next(r for r in RAW if r["id"] == "0704.0062")
    assert raw["authors"] == "Rastislav \\v{S}r\\'amek, Bro\\v{n}a Brejov\\'a, Tom\\'a\\v{s} Vina\\v{r}"
    assert snapshot_authors({"authors": raw["authors"]}) == [
        "Rastislav Šrámek", "Broňa Brejová", "Tomáš Vinař"]
    greilich = next(r for r in RAW if r["authors"].startswith("A. Greilich"))
    names = snapshot_authors({"authors": greilich["authors"]})  # "(1)" markers and the affiliation block
    assert names[:2] == ["A. Greilich", "M. Wiemann"] and names[-1] == "M. Bayer"
    assert len(names) == len(greilich["authors_parsed"])
    assert snapshot_authors({"authors": "The BABAR Collaboration, B. Aubert, et al"}) == [
        "The BABAR Collaboration", "B. Aubert"]


@pytest.mark.parametrize(("latex", "text"), [
    ("C. Bal\\'azs", "C. Balázs"),
    ("Rastislav \\v{S}r\\'amek", "Rastislav Šrámek"),
    ("Mikkel {\\O}bro", "Mikkel Øbro"),
    ('Franz G\\"ahler', "Franz Gähler"),
    ('G{\\"u}nter', "Günter"),
    ("Fran\\c{c}ois", "François"),
    ("{\\'E}ric", "Éric"),
    ("S\\o ren", "Søren"),
    ("Pawe\\l{} Nowak", "Paweł Nowak"),
    ("Jos\\'{\\i}as", "Josías"),
    ("Nguy\\~ên", "Nguyễn"),  # seen in the 119k corpus
    ("Tolúl\\d{o}pé", "Tolúlọpé"),
    ("Peter St\\ütz", "Peter Stütz"),
    ("\\\\Ajinkya Umesh Mulik", "Ajinkya Umesh Mulik"),
    ("Plain Name", "Plain Name"),
])
def test_latex_accents(latex, text):
    assert latex_to_unicode(latex) == text


def test_versions_out_of_order_and_bad():
    versions = [{"version": "v2", "created": "Tue, 24 Jul 2007 20:10:27 GMT"},
                {"version": "v1", "created": "Mon, 2 Apr 2007 19:18:42 GMT"}]
    assert parse_versions(versions) == (2, "2007-04-02T19:18:42Z", "2007-07-24T20:10:27Z")
    assert parse_versions([]) == (None, None, None)
    with pytest.raises(ValueError, match="version"):
        parse_versions([{"version": "first", "created": "x"}])


def expected_ids(pred) -> list[str]:
    return [r["id"] for r in RAW if pred(r)]


def test_category_filter_exact_and_archive_prefix():
    def cats(r):
        return r["categories"].split()

    got = [p.arxiv_id for p in papers(SnapshotSource(str(SAMPLE), categories=["cs"]))]
    assert got == expected_ids(lambda r: any(c.startswith("cs.") for c in cats(r)))
    assert len(got) == 8
    got = [p.arxiv_id for p in papers(SnapshotSource(str(SAMPLE), categories=["math.CO"]))]
    assert got == expected_ids(lambda r: "math.CO" in cats(r)) and len(got) == 6
    # "math" is an archive: it takes math.CO, math.QA... but not math-ph, a different archive.
    got = [p.arxiv_id for p in papers(SnapshotSource(str(SAMPLE), categories=["math", "hep-th"]))]
    assert got == expected_ids(lambda r: any(c.split(".")[0] in ("math", "hep-th") for c in cats(r)))
    assert not papers(SnapshotSource(str(SAMPLE), categories=["cs.CL"]))


def test_date_filter_on_first_version_utc_date():
    source = SnapshotSource(str(SAMPLE), since="2007-04-02", until="2007-04-02")
    got = [p.arxiv_id for p in papers(source)]
    first = {r["id"]: r["versions"][0]["created"] for r in RAW}
    assert got == [i for i, created in first.items() if " 2 Apr 2007 " in created]
    assert len(got) == 108
    before = [p.arxiv_id for p in papers(SnapshotSource(str(SAMPLE), until="2007-03-31"))]
    assert before == [i for i, created in first.items() if " Mar 2007 " in created]
    assert "0704.0002" in before  # submitted 31 Mar although its id says April
    both = papers(SnapshotSource(str(SAMPLE), categories=["cs"], since="2007-04-01"))
    assert all(p.submitted >= "2007-04-01" and any(c.startswith("cs.") for c in p.categories) for p in both)


def test_bad_filter_dates_are_the_users_mistake():
    with pytest.raises(PaperradarError, match="since"):
        SnapshotSource(str(SAMPLE), since="April 2007")
    with pytest.raises(PaperradarError, match="until"):
        SnapshotSource(str(SAMPLE), until="2007-13-01")


def test_gzip_copy_gives_the_same_papers(tmp_path):
    gz = tmp_path / "snapshot.json.gz"
    with SAMPLE.open("rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    source = SnapshotSource(str(gz))
    assert papers(source) == papers(SnapshotSource(str(SAMPLE)))
    assert source.progress() == (gz.stat().st_size, gz.stat().st_size)


def test_corrupted_line_in_the_middle_is_one_reject(tmp_path):
    lines = SAMPLE.read_bytes().splitlines(keepends=True)
    lines[99] = lines[99][: len(lines[99]) // 2] + b"\n"  # line 100 cut in half
    broken = tmp_path / "broken.json"
    broken.write_bytes(b"".join(lines))
    items = list(SnapshotSource(str(broken)))
    rejects = [i for i in items if isinstance(i, Rejected)]
    assert len(rejects) == 1
    assert rejects[0].where == "broken.json line 100"
    assert "not valid JSON" in rejects[0].reason
    ingested = [p.arxiv_id for p in items if isinstance(p, Paper)]
    assert ingested == [r["id"] for i, r in enumerate(RAW) if i != 99]


def test_bad_records_are_rejected_with_reasons(tmp_path, monkeypatch):
    good = SAMPLE.read_bytes().splitlines(keepends=True)[:3]
    no_id = json.dumps({**RAW[3], "id": "not-an-id"}).encode() + b"\n"
    bad_utf8 = good[1].replace(b"Sparsity", b"Sparsit\xff")
    f = tmp_path / "mixed.json"
    monkeypatch.setattr(base, "MAX_LINE", 3000)  # the real limit is 4 MiB; the sample lines are ~1.5 KB
    f.write_bytes(good[0] + no_id + bad_utf8 + b"[1, 2]\n" + b"{" + b" " * 5000 + b"}\n" + good[2])
    items = list(SnapshotSource(str(f)))
    assert [str(i) if isinstance(i, Rejected) else i.arxiv_id for i in items] == [
        "0704.0001",
        "mixed.json line 2: id 'not-an-id' is not an arXiv identifier",
        "mixed.json line 3: not valid UTF-8",
        "mixed.json line 4: a JSON list, not an object",
        "mixed.json line 5: line longer than 4 MiB",
        "0704.0003",
    ]


def test_unusable_inputs(tmp_path):
    with pytest.raises(InputUnusable, match="cannot open"):
        list(SnapshotSource(str(tmp_path / "missing.json")))
    png = tmp_path / "picture.json"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    with pytest.raises(InputUnusable, match="binary"):
        list(SnapshotSource(str(png)))
    array = tmp_path / "array.json"
    array.write_text(json.dumps(RAW[:2]))
    with pytest.raises(InputUnusable, match="JSON array"):
        list(SnapshotSource(str(array)))
    corpus_like = tmp_path / "corpus.jsonl"
    corpus_like.write_text(json.dumps({"id": "2503.11731", "title": "T", "abstract": "A", "authors": ["X"],
                                       "categories": ["cs.CV"], "listing_date": "2025-03-18"}) + "\n")
    with pytest.raises(InputUnusable, match="not the arXiv snapshot") as e:
        list(SnapshotSource(str(corpus_like)))
    assert "jsonl" in e.value.hint


def test_category_arguments_are_forgiving():
    expected = [p.arxiv_id for p in papers(SnapshotSource(str(SAMPLE), categories=["math.CO", "cs.DS"]))]
    for given in ("math.CO,cs.DS", ["math.CO cs.DS"], [" math.CO", "cs.DS "]):
        assert [p.arxiv_id for p in papers(SnapshotSource(str(SAMPLE), categories=given))] == expected
    assert len(expected) == 7
