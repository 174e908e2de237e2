"""Importing Zotero's export formats — RIS, CSL JSON, Zotero RDF — into a tag, and exporting RIS: real
exports recorded in public repositories (tests/fixtures/zotero/PROVENANCE.md) over a real store file, broken
and hostile files, the RIS round trip, the web form and the command line."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paperradar import bibtex, references
from paperradar.cli import main
from paperradar.library import Library, LibraryError
from paperradar.models import Paper
from paperradar.references import csl_json, ris, zotero_rdf
from paperradar.store import Store

FIXTURES = Path(__file__).parent / "fixtures" / "zotero"
RDF = FIXTURES / "pmcid-fetcher_exported_items.rdf"
CSL = FIXTURES / "bbt_normalizing_english_language_tag_3100.csl.json"
RIS_FULL = FIXTURES / "rispy_example_full.ris"
RIS_URLS = FIXTURES / "rispy_example_urls.ris"


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "paperradar.sqlite3")
    s.upsert_papers([
        Paper(title="Attention Is All You Need", source="arxiv", arxiv_id="1706.03762",
              authors=["Ashish Vaswani", "Noam Shazeer"], categories=["cs.CL"],
              submitted="2017-06-12T00:00:00Z", abstract="The dominant sequence transduction models..."),
        # three of the Zotero RDF export's four DOIs (on its bib:Journal nodes), one of its titles
        Paper(title="TNF blockers and malignancy (as the store has it)", source="crossref",
              doi="10.1007/s11926-012-0290-2", authors=["F. Silva"], submitted="2012-12-01T00:00:00Z"),
        Paper(title="Infliximab in COPD", source="crossref", doi="10.1164/RCCM.200607-995OC",
              authors=["S. I. Rennard"], submitted="2007-05-01T00:00:00Z"),
        Paper(title="Biologics in ulcerative colitis", source="crossref", doi="10.1080/14740338.2017.1298743",
              authors=["G. Fiorino"], submitted="2017-03-01T00:00:00Z"),
        Paper(title="Tumor necrosis factor inhibitors", source="crossref", doi="10.9999/statpearls",
              authors=["V. Gerriets"], submitted="2023-01-01T00:00:00Z"),
        # the CSL JSON export's first DOI (written in upper case there) and its second item's title
        Paper(title="A verse translation", source="crossref", doi="10.1484/J.JML.2.304214",
              authors=["A. Adams"], submitted="2004-01-01T00:00:00Z"),
        Paper(title="The Hagiography of Doubt and Scepticism", source="crossref", doi="10.9999/kaldellis",
              authors=["A. Kaldellis"], submitted="2011-01-01T00:00:00Z"),
        # rispy's example records, by title
        Paper(title="A Mathematical Theory of Communication", source="crossref",
              doi="10.1002/j.1538-7305.1948.tb01338.x", authors=["C. E. Shannon"],
              submitted="1948-07-01T00:00:00Z"),
        Paper(title="Title of reference", source="crossref", doi="10.9999/marx", authors=["K. Marx"],
              submitted="2014-01-01T00:00:00Z"),
    ])
    yield s
    s.close()


@pytest.fixture
def user(store):
    return store.accounts.ensure_user("me@example.org", "2026-01-01T00:00:00Z")


def saved_titles(store, user, tag: str) -> list[str]:
    return sorted(i.paper.title for i in Library(store).items(user, tag))


# -- real exports ------------------------------------------------------------------------------------------

def test_zotero_rdf_export(store, user):
    """A real Zotero RDF export: five journal articles whose DOIs sit on their bib:Journal nodes (by
    rdf:resource), attachments that are not items."""
    report = Library(store).import_file(user, RDF.read_text(), "rdf", filename=RDF.name)
    assert report.format == "zotero-rdf" and report.entries == 5 and not report.problems
    assert [k for k, _ in report.matched] == [
        "http://link.springer.com/10.1007/s11926-012-0290-2",
        "https://www.atsjournals.org/doi/10.1164/rccm.200607-995OC",
        "https://www.tandfonline.com/doi/full/10.1080/14740338.2017.1298743",
        "#item_1487"]  # the last by its title: it has neither DOI nor URL
    assert report.unmatched == [(307, "https://www.frontiersin.org/articles/10.3389/fimmu.2020.545413/full",
                                 "Treatment of Sarcoidosis: A Multidisciplinary Approach")]
    assert report.added == 4 and store.accounts.tag(user.id, "rdf").papers == 4


def test_csl_json_export(store, user):
    """A real (Better BibTeX) CSL JSON export: an upper-case DOI in a URL, HTML markup in a title."""
    report = Library(store).import_file(user, CSL.read_text(), "csl")
    assert report.format == "csl-json" and report.entries == 3 and not report.problems
    assert [k for k, _ in report.matched] == ["adamsVerseTranslationAbbo2004",
                                              "kaldellisHagiographyDoubtScepticism2011"]
    assert report.unmatched == [(4, "ottavianoVergiliusMaroBucolica2013",
                                 "P. Vergilius Maro. Bucolica et Georgica")]
    entries, _ = csl_json.read(CSL.read_text())
    assert bibtex.identifiers(entries[0])[2] == \
        "A verse translation of Abbo of St. Germain's Bella Parisiacae urbis"


def test_ris_exports(store, user):
    """rispy's example files: numbered records, one with "ER  -" and no space, URLs split by ";"."""
    lib = Library(store)
    full = lib.import_file(user, RIS_FULL.read_text(), "ris", filename="refs.ris")
    assert full.format == "ris" and full.entries == 2 and not full.problems
    assert [(k, p.title) for k, p in full.matched] == [("12345", "Title of reference")]
    assert full.unmatched == [(27, "12345", "The title of the reference")]
    urls = lib.import_file(user, RIS_URLS.read_text(), "ris")
    assert urls.entries == 4 and len(urls.matched) == 4 and urls.added == 1  # one paper, four records
    assert saved_titles(store, user, "ris") == ["A Mathematical Theory of Communication",
                                                "Title of reference"]


def test_arxiv_ids_as_zotero_writes_them(store, user):
    """An arXiv preprint as Zotero 7 exports it in each format: the arXiv URL, "arXiv:<id>" in number/
    prism:number and the extra field, the 10.48550 DOI; each finds the paper."""
    ris_text = ("TY  - UNPB\nTI  - Attention Is All You Need\nAU  - Vaswani, Ashish\nDO  - "
                "10.48550/arXiv.1706.03762\nUR  - http://arxiv.org/abs/1706.03762\n"
                "N1  - arXiv:1706.03762 [cs]\nER  - \n")
    csl = json.dumps([{"id": "http://zotero.org/users/1/items/AB", "type": "article", "title": "Whatever",
                       "number": "arXiv:1706.03762", "publisher": "arXiv"}])
    rdf = """<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
 xmlns:z="http://www.zotero.org/namespaces/export#" xmlns:dc="http://purl.org/dc/elements/1.1/"
 xmlns:prism="http://prismstandard.org/namespaces/1.2/basic/">
    <rdf:Description rdf:about="urn:x">
        <z:itemType>preprint</z:itemType>
        <dc:title>Not the title</dc:title>
        <prism:number>arXiv:1706.03762</prism:number>
    </rdf:Description>
</rdf:RDF>"""
    for text in (ris_text, csl, rdf):
        report = Library(store).import_file(user, text, "arxiv")
        assert [p.arxiv_id for _, p in report.matched] == ["1706.03762"], report.format


# -- detection and the explicit choice ---------------------------------------------------------------------

def test_format_detection():
    detect = references.detect
    assert detect(RDF.read_text()).name == "zotero-rdf"
    assert detect(CSL.read_text()).name == "csl-json"
    assert detect(RIS_FULL.read_text()).name == "ris"  # "1." before the first TY
    assert detect("\ufeff@article{a, title={T}}").name == "bibtex"
    assert detect("nothing to tell", "refs.ris").name == "ris"
    assert detect("nothing to tell", "My Library.rdf").name == "zotero-rdf"
    assert detect("nothing to tell").name == "bibtex"
    assert references.format_named("ris", "[]").name == "ris"  # a choice overrides the content
    with pytest.raises(references.Unreadable, match="unknown format"):
        references.format_named("endnote-xml")


def test_the_wrong_explicit_format_is_a_clear_error(store, user):
    lib = Library(store)
    with pytest.raises(LibraryError, match="cannot read that file as Zotero RDF: not XML"):
        lib.import_file(user, CSL.read_text(), "x", format="zotero-rdf")
    with pytest.raises(LibraryError, match="cannot read that file as CSL JSON"):
        lib.import_file(user, RDF.read_text(), "x", format="csl-json")
    with pytest.raises(LibraryError, match="that file holds no RIS records"):
        lib.import_file(user, CSL.read_text(), "x", format="ris")
    assert store.accounts.tags(user.id) == []


# -- malformed records: reported with their line, skipped, nothing else lost --------------------------------

def test_broken_ris_records_are_skipped_with_their_line(store, user):
    text = ("TY  - JOUR\nTI  - A Mathematical Theory of Communication\nER  - \n\n"
            "TY  - JOUR\nTI  - never closed\n\n"  # line 5: runs into the next TY
            "TY  - JOUR\nTI  - Title of reference\nER  -\n"
            "TY  - JOUR\nTI  - the file ends inside me\n")  # line 11
    report = Library(store).import_file(user, text, "t")
    assert [p.line for p in report.problems] == [5, 11]
    assert "no ER line" in report.problems[0].message and "ends inside" in report.problems[1].message
    assert [p.title for _, p in report.matched] == ["A Mathematical Theory of Communication",
                                                    "Title of reference"]


def test_broken_csl_json_items_are_skipped_with_their_line(store, user):
    text = """[
  {"id": "a", "title": "A Mathematical Theory of Communication"},
  "not an item",
  {"id": "b", "title": "oops" "missing comma",
   "DOI": "10.9999/kaldellis"},
  {"id": "c", "title": ["a", "list"]},
  {"id": "d", "title": "Title of reference"}
]"""
    report = Library(store).import_file(user, text, "t")
    assert [p.line for p in report.problems] == [3, 4, 6]
    assert report.problems[0].message == "not an object; skipped"
    assert report.problems[1].message.startswith("invalid JSON at line 4, column 31")
    assert report.problems[1].message.endswith("skipped up to the next item, line 6")
    assert report.problems[2].message == "its title is not text; skipped"
    assert [k for k, _ in report.matched] == ["a", "d"] and report.entries == 2


def test_broken_xml_keeps_the_items_before_the_break(store, user):
    text = RDF.read_text()
    cut = text.index("<dc:title>Treatment of Sarcoidosis")  # inside the fourth item
    report = Library(store).import_file(user, text[:cut] + "<broken", "t")
    assert report.entries == 3 and len(report.matched) == 3
    (problem,) = report.problems
    assert problem.line == text[:cut].count("\n") + 1 and "the XML breaks here" in problem.message


# -- hostile input ------------------------------------------------------------------------------------------

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE rdf:RDF [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><x>&c;</x></rdf:RDF>"""
EXTERNAL = """<?xml version="1.0"?>
<!DOCTYPE rdf:RDF [<!ENTITY e SYSTEM "file:///etc/passwd">]>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><x>&e;</x></rdf:RDF>"""


@pytest.mark.parametrize("text", [BILLION_LAUGHS, EXTERNAL])
def test_xml_entities_and_dtds_are_refused(store, user, text):
    with pytest.raises(LibraryError, match="declares a DTD"):
        Library(store).import_file(user, text, "t")


def test_deep_nesting_is_refused_quickly(store, user):
    deep = "<rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'>" + "<a>" * 100_000
    with pytest.raises(LibraryError, match="nests more than 64"):
        Library(store).import_file(user, deep, "t")
    for text in ("[" * 100_000, "[\n  " + "[" * 100_000, '{"title": ' + "[" * 100_000):
        try:
            report = Library(store).import_file(user, text, "t")
        except LibraryError as e:
            assert "nested too deeply" in str(e)
        else:
            assert "nested too deeply" in report.problems[0].message and not report.matched


def test_control_characters_in_a_doi_stop_at_the_doi(store, user):
    """A DOI carrying a NUL or a terminal escape: the characters become spaces, so the DOI still matches
    and nothing of them reaches a report."""
    text = ("TY  - JOUR\nTI  - x\x1b[2J\nDO  - 10.1007/s11926-012-0290-2\x00\x1b]0;pwned\x07\n"
            "ID  - k\x1b[31m\nER  - \n")
    report = Library(store).import_file(user, text, "t")
    assert [p.doi for _, p in report.matched] == ["10.1007/s11926-012-0290-2"]
    assert all(c.isprintable() for c in report.matched[0][0])
    csl = json.dumps([{"id": "z", "title": "t", "DOI": "10.1484/j.jml.2.304214\u0000\u009b31m"}])
    assert len(Library(store).import_file(user, csl, "t").matched) == 1


def test_huge_files_are_refused_or_read_in_linear_time(store, user, monkeypatch):
    from paperradar import library

    monkeypatch.setattr(library, "MAX_IMPORT_CHARS", 1000)
    with pytest.raises(LibraryError, match="larger than"):
        Library(store).import_file(user, "TY  - JOUR\n" * 200, "t")
    monkeypatch.undo()
    many = "".join(f"TY  - JOUR\nTI  - Paper {i}\nDO  - 10.1000/{i}\nER  - \n" for i in range(4000))
    items = json.dumps([{"id": str(i), "title": f"Paper {i}", "DOI": f"10.1000/{i}"} for i in range(4000)],
                       indent=1)
    for text in (many, items, "[\n " + "\n ".join('{"title": "x" "y"},' for _ in range(20_000)) + "\n]"):
        t = time.perf_counter()
        fmt = references.detect(text)
        entries, problems = references.read(text, fmt)
        assert time.perf_counter() - t < 3, fmt.name  # linear: 0.1–0.3 s each here
        assert len(entries) + len(problems) in (4000, 20_000)


# -- RIS export ---------------------------------------------------------------------------------------------

def test_ris_export_round_trips_through_the_import(store, user):
    lib = Library(store)
    for ref in ("1706.03762", "10.1007/s11926-012-0290-2", "10.9999/marx"):
        lib.save(user, ref, "mine")
    lib.save(user, "1706.03762", "also here")
    text = lib.export_ris(user)
    assert "TY  - GEN\nID  - vaswani2017attention\nTI  - Attention Is All You Need\n" in text
    assert "UR  - https://arxiv.org/abs/1706.03762\n" in text and "N1  - arXiv:1706.03762 [cs.CL]\n" in text
    assert "KW  - mine\nKW  - also here\n" in text or "KW  - also here\nKW  - mine\n" in text
    assert "1." not in text.split("\n")  # no rispy record numbers
    other = store.accounts.ensure_user("you@example.org", "2026-01-01T00:00:00Z")
    report = lib.import_file(other, text, "copied")
    assert report.format == "ris" and len(report.matched) == 3
    assert not report.unmatched and not report.problems
    assert saved_titles(store, other, "copied") == saved_titles(store, user, "mine")


# -- the parsers never raise for bad records ----------------------------------------------------------------

RIS_LINES = st.lists(st.one_of(
    st.sampled_from(["TY  - JOUR", "ER  - ", "ER  -", "TI  - A Mathematical Theory of Communication",
                     "AU  - Doe, J", "UR  - a;b", "KW  - x", "", "1.", "  continued"]),
    st.builds(lambda tag, v: f"{tag}  - {v}", st.sampled_from(["TI", "DO", "N1", "ZZ", "A1"]),
              st.text(max_size=20)),
    st.text(max_size=30)), max_size=40)


@given(RIS_LINES)
@settings(max_examples=300, deadline=None)
def test_ris_reader_never_raises(lines):
    entries, problems = ris.read("\n".join(lines))
    starts = sum(1 for ln in lines if ln.startswith("TY  -"))
    assert len(entries) + len(problems) == starts  # every record is read or reported, none vanishes


CSL_KEYS = st.sampled_from(["id", "title", "DOI", "URL", "author", "issued", "number", "date-parts", "family",
                            "given", "literal"])
JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(CSL_KEYS, inner,
                                                                                       max_size=5),
                           max_leaves=20)


@given(st.lists(JSON_VALUES, max_size=8), st.integers(0, 400))
@settings(max_examples=300, deadline=None)
def test_csl_json_reader_never_raises(items, cut):
    text = json.dumps(items, indent=2)
    entries, problems = csl_json.read(text)
    assert len(entries) + len(problems) == len(items)
    try:
        csl_json.read(text[:cut])  # a truncated file: reported, never a traceback
    except references.Unreadable:
        pass


@given(st.text(max_size=300), st.integers(0, 22_000))
@settings(max_examples=200, deadline=None)
def test_zotero_rdf_reader_never_raises(junk, at):
    text = RDF.read_text()
    try:
        entries, _ = zotero_rdf.read(text[:at] + junk + text[at:])
    except references.Unreadable:
        return
    assert len(entries) <= (text[:at] + junk + text[at:]).count("<z:itemType>")


# -- the command line ---------------------------------------------------------------------------------------

def test_users_import_and_export_on_the_command_line(tmp_path, store, user, monkeypatch, capsys):
    def run(*args: str) -> int:
        monkeypatch.setattr("sys.argv", ["paperradar", "--data-dir", str(tmp_path), *args])
        try:
            main()
        except SystemExit as e:
            return e.code
        return 0

    assert run("users", "import", "me@example.org", str(RDF), "--tag", "zotero", "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["format"], out["entries"], out["matched"], out["added"]) == ("zotero-rdf", 5, 4, 4)
    assert run("users", "import", "me@example.org", str(RIS_FULL), "--tag", "zotero") == 0
    printed = capsys.readouterr().out
    assert "2 read (ris): 1 matched, 1 new in 'zotero'" in printed and "line 27: 12345" in printed
    assert run("users", "export", "me@example.org", "--tag", "zotero", "--format", "ris") == 0
    exported = capsys.readouterr().out
    assert exported.count("TY  - ") == 5
    assert run("users", "import", "me@example.org", str(CSL), "--format", "zotero-rdf") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot read that file as Zotero RDF") and "Traceback" not in err
    assert run("users", "import", "me@example.org", str(tmp_path / "missing.ris")) == 2
    assert "cannot read" in capsys.readouterr().err


# -- the web form and the export link -----------------------------------------------------------------------

def test_web_import_of_each_format_and_ris_export(client, mailbox):
    from test_accounts import CURIE, sign_in, store_of
    from webclient import csrf

    sign_in(client, mailbox, "zotero@example.org")
    token = csrf(client)
    page = client.get("/library").text
    assert 'name="format"' in page and '<option value="zotero-rdf">Zotero RDF</option>' in page
    assert "format=ris" in page
    for ref in CURIE:
        client.post(f"/papers/{ref}/save", data={"tag": "curie", "csrf_token": token})
    r = client.get("/library/export?tag=curie&format=ris")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/x-research-info-systems")
    assert 'filename="paperradar-curie.ris"' in r.headers["content-disposition"]
    assert r.text.count("TY  - ") == 2
    uploads = {
        "from-ris": ("export.ris", r.content, "auto"),
        "from-csl": ("items.json", json.dumps([
            {"id": "one", "type": "article", "URL": f"https://arxiv.org/abs/{CURIE[0]}", "title": "x"},
            {"id": "two", "type": "article", "title": {"not": "text"}}]).encode(), "auto"),
        "from-rdf": ("lib.xml", RDF.read_text().replace(
            "http://link.springer.com/10.1007/s11926-012-0290-2", f"https://arxiv.org/abs/{CURIE[1]}").encode(),
            "zotero-rdf"),
    }
    for tag, (name, body, fmt) in uploads.items():
        r = client.post("/library/import", data={"tag": tag, "format": fmt, "csrf_token": token},
                        files={"file": (name, body)})
        assert r.status_code == 200, (tag, r.text)
        user = store_of(client).accounts.user_by_email("zotero@example.org")
        assert store_of(client).accounts.tag(user.id, tag).papers == (2 if tag == "from-ris" else 1)
    assert "Zotero RDF: 5 items read: 1 matched a paper here" in r.text and "4 not found" in r.text
    r = client.post("/library/import", data={"tag": "t", "csrf_token": token},
                    files={"file": ("items.json", uploads["from-csl"][1])})
    assert "CSL JSON: 1 item read: 1 matched" in r.text and "1 malformed and skipped" in r.text
    assert "Malformed items (skipped)" in r.text
    assert "line 1: its title is not text; skipped" in r.text


def test_web_import_refuses_bad_and_hostile_files_with_a_message(client, mailbox):
    from test_accounts import sign_in, store_of
    from webclient import csrf

    sign_in(client, mailbox, "hostile@example.org")
    token = csrf(client)
    for name, body, fmt, said in [
        ("bomb.rdf", BILLION_LAUGHS.encode(), "auto", "declares a DTD"),
        ("items.json", CSL.read_bytes(), "zotero-rdf", "cannot read that file as Zotero RDF"),
        ("deep.rdf", b"<rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'>" + b"<a>" * 10_000,
         "auto", "nests more than 64"),
        ("x.ris", RIS_FULL.read_bytes(), "endnote", "unknown format"),
        ("empty.ris", b"just text", "ris", "no RIS records"),
    ]:
        r = client.post("/library/import", data={"tag": "t", "format": fmt, "csrf_token": token},
                        files={"file": (name, body)})
        assert r.status_code == 400 and said in r.text and "Traceback" not in r.text, name
    r = client.post("/library/import", data={"tag": "t", "csrf_token": "forged"},
                    files={"file": ("x.ris", RIS_FULL.read_bytes())})
    assert r.status_code == 400 and "did not come from this site" in r.text
    user = store_of(client).accounts.user_by_email("hostile@example.org")
    assert store_of(client).accounts.tags(user.id) == []
