"""OAISource against recorded arXiv OAI-PMH responses (hepcrawl), a hand-written arXivRaw response,
and a three-page resumptionToken harvest assembled from the real records per OAI-PMH 2.0 §3.5."""

from __future__ import annotations

import random
import re
from pathlib import Path
from xml.sax.saxutils import escape

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paperradar.errors import InputUnusable
from paperradar.http import PoliteClient
from paperradar.models import Paper, Rejected
from paperradar.sources.arxiv_oai import OAIError, OAISource, parse_list_records, split_authors
from paperradar.sources.base import Checkpoint

FIXTURES = Path(__file__).parent / "fixtures" / "oai"
HEPCRAWL = FIXTURES / "hepcrawl"
HEP_TH = HEPCRAWL / "functional__arxiv__fixtures__http_server__records__arxiv-physics-hep-th.xml"
HEP_EX = HEPCRAWL / "functional__arxiv__fixtures__http_server__records__arxiv-physics-hep-ex.xml"
SINGLE = HEPCRAWL / "functional__arxiv__fixtures__http_server__records__arxiv-single.xml"
SAMPLE12 = HEPCRAWL / "unit__responses__arxiv__sample_arxiv_record.xml"
SAMPLE0 = HEPCRAWL / "unit__responses__arxiv__sample_arxiv_record0.xml"
SAMPLE4 = HEPCRAWL / "unit__responses__arxiv__sample_arxiv_record4.xml"
ARXIV_RAW = FIXTURES / "handmade_arXivRaw_ListRecords.xml"

ENVELOPE = """<?xml version="1.0" encoding="UTF-8"?>
<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" \
xsi:schemaLocation="http://www.openarchives.org/OAI/2.0/ http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd">
<responseDate>2018-01-26T09:05:29Z</responseDate>
<request verb="ListRecords">https://oaipmh.arxiv.org/oai</request>
{body}
</OAI-PMH>
"""


def records_of(path: Path) -> list[str]:
    """The <record> elements of a recorded response, as text."""
    return re.findall(r"<record>.*?</record>", path.read_text(encoding="utf-8"), re.DOTALL)


def list_records(records: list[str], token: str | None = None, cursor: int | None = None,
                 size: int | None = None) -> bytes:
    """A ListRecords response; with cursor/size it carries a resumptionToken (empty when token is None)."""
    body = "".join(records)
    if cursor is not None:
        attrs = f'completeListSize="{size}" cursor="{cursor}"'
        body += f"<resumptionToken {attrs}>{token or ''}</resumptionToken>"
    return ENVELOPE.format(body=f"<ListRecords>\n{body}\n</ListRecords>").encode("utf-8")


def oai_error(code: str, message: str) -> bytes:
    return ENVELOPE.format(body=f'<error code="{code}">{message}</error>').encode("utf-8")


# Seven real records in three pages: hep-th (3), hep-ex (3), then the single GetRecord one.
PAGE_RECORDS = [records_of(HEP_TH), records_of(HEP_EX), records_of(SINGLE)]
PAGES = {
    None: list_records(PAGE_RECORDS[0], "hx|3", 0, 7),
    "hx|3": list_records(PAGE_RECORDS[1], "hx|6", 3, 7),
    "hx|6": list_records(PAGE_RECORDS[2], None, 6, 7),
}
PAGE_IDS = [["1412.8323", "1507.07790", "1607.01710"], ["1706.05371", "1706.09418", "1707.00874"],
            ["1401.2122"]]


class FakeOAI:
    """An OAI-PMH endpoint: ``first`` answers a fresh ListRecords, ``pages`` answer resumption tokens."""

    def __init__(self, first: bytes, pages: dict[str, bytes] | None = None):
        self.first = first
        self.pages = pages or {}
        self.requests: list[dict[str, str]] = []
        self.now = 0.0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        q = dict(request.url.params)
        self.requests.append(q)
        if "resumptionToken" in q:
            body = self.pages.get(q["resumptionToken"]) or oai_error(
                "badResumptionToken", "The value of the resumptionToken argument is invalid or expired.")
        else:
            body = self.first
        return httpx.Response(200, content=body, headers={"Content-Type": "text/xml"})

    def client(self) -> PoliteClient:
        def sleep(seconds: float) -> None:
            self.now += seconds
        return PoliteClient(transport=httpx.MockTransport(self), sleep=sleep, clock=lambda: self.now)


def harvest_server() -> FakeOAI:
    return FakeOAI(PAGES[None], {k: v for k, v in PAGES.items() if k})


def papers_of(items) -> list[Paper]:
    return [i for i in items if isinstance(i, Paper)]


def by_id(items) -> dict[str, Paper]:
    return {p.arxiv_id: p for p in papers_of(items)}


# --- the arXiv format, field by field -------------------------------------------------------------

def test_list_records_hep_th_field_by_field():
    items, token, size = parse_list_records(HEP_TH.read_bytes(), "OAI page 1")
    assert token is None and size is None
    assert [p.arxiv_id for p in items] == PAGE_IDS[0]
    p = by_id(items)["1507.07790"]
    assert p.source == "oai" and p.version is None and p.announced is None
    assert p.title == "Relativistic quantum dynamics of vector bosons in an Aharonov-Bohm potential"
    assert p.authors == ["Luis B. Castro", "Edilberto O. Silva"]
    assert p.categories == ["hep-th", "math-ph", "math.MP", "quant-ph"]
    assert p.submitted == "2015-07-28" and p.updated == "2016-03-04"
    assert p.comment == "7 pages"
    assert p.journal_ref == "J. Phys. A: Math. Theor. 51 (2018) 035201"
    assert p.doi == "10.1088/1751-8121/aa9c53"
    assert p.abstract.startswith("The Aharonov-Bohm (AB) problem for vector bosons by the "
                                 "Duffin-Kemmer-Petiau")
    assert "\n" not in p.abstract
    hoehn = by_id(items)["1412.8323"]
    assert hoehn.authors == ["Philipp A Hoehn"]
    assert hoehn.categories[0] == "quant-ph"
    assert hoehn.journal_ref is None and hoehn.doi is None
    assert hoehn.comment.startswith("78 pages, many figures, graphs and references. Version accepted for "
                                    "publication in Quantum (completed")


def announced_of(created: str, datestamp: str, updated: str | None = None) -> str | None:
    """The announcement day parse_page gives a record of the hep-th response with these dates."""
    xml = HEP_TH.read_text()
    record = xml[xml.index("<record>"):xml.index("</record>") + len("</record>")]
    record = re.sub(r"<datestamp>[^<]*</datestamp>", f"<datestamp>{datestamp}</datestamp>", record)
    record = re.sub(r"<created>[^<]*</created>", f"<created>{created}</created>", record)
    record = re.sub(r"<updated>[^<]*</updated>", f"<updated>{updated}</updated>" if updated else "", record)
    page = xml[:xml.index("<record>")] + record + xml[xml.rindex("</record>") + len("</record>"):]
    (paper,) = parse_list_records(page.encode(), "OAI page 1")[0]
    return paper.announced


def test_a_first_version_is_announced_on_its_datestamp_other_records_are_not_dated_by_it():
    # A v1 record's datestamp is the day arXiv's OAI interface got it: its announcement (a Friday's
    # submission is announced on Monday evening, listed Tuesday). Without it, a paper only arXiv lists
    # would be dated by its submission, before the listing a digest covers.
    assert announced_of("2026-06-12", "2026-06-16") == "2026-06-16"
    assert announced_of("2026-06-12", "2026-06-12") == "2026-06-12"
    assert announced_of("2007-04-02", "2008-11-26") is None  # a metadata fix long after: not an announcement
    assert announced_of("2026-06-12", "2026-06-20", updated="2026-06-19") is None  # a later version
    assert announced_of("2026-06-12", "2026-06-10") is None  # before its submission: not believed


def test_get_record_single_field_by_field():
    [p], token, _ = parse_list_records(SINGLE.read_bytes(), "GetRecord")
    assert token is None
    assert p.arxiv_id == "1401.2122"
    assert p.title == "New integrable (3+1)-dimensional systems and contact geometry"
    assert p.authors == ["A. Sergyeyev"]
    assert p.categories == ["math.AP", "hep-th", "math-ph", "math.DG", "math.MP", "nlin.SI"]
    assert (p.submitted, p.updated) == ("2014-01-09", "2017-10-23")
    assert p.comment == ("16 pages, LaTeX, no figures, revised and abridged, in this version (v5) the typos "
                         "were fixed (including some that have unfortunately crept into the published "
                         "version too), Letters in Mathematical Physics (2017)")
    assert p.journal_ref == "Lett. Math. Phys. 108 (2018), no. 2, 359-376"
    assert p.doi == "10.1007/s11005-017-1013-4"
    assert p.abstract.startswith("We introduce a novel systematic construction for integrable "
                                 "(3+1)-dimensional dispersionless systems")


def test_arxiv_element_without_namespace_and_several_dois():
    [p], _, _ = parse_list_records(SAMPLE0.read_bytes(), "GetRecord")
    assert p.arxiv_id == "1601.03238"
    assert p.authors == ["Planck Collaboration", "Jieci Wang", "Zehua Tian", "Jiliang Jing", "Heng Fan"]
    assert p.categories == ["quant-ph", "gr-qc", "hep-th", "chao-dyn", "nlin.CD"]
    assert p.doi == "10.1103/PhysRevD.93.016005"  # the first of three
    assert p.journal_ref == "Phys.Rev. D93 (2015) 016005"
    assert p.submitted == "2016-01-13" and p.updated is None


def test_author_suffix_and_punctuation_only_authors():
    [p], _, _ = parse_list_records(SAMPLE4.read_bytes(), "GetRecord")
    raw = SAMPLE4.read_text(encoding="utf-8")
    assert p.authors[:4] == ["Keck Array", "BICEP2 Collaborations", "P. Ade", "Z. Ahmed"]
    assert "R. W. IV" in p.authors  # <keyname>W.</keyname><forenames>R.</forenames><suffix>IV</suffix>
    assert ":" not in p.authors
    assert len(p.authors) == raw.count("<author>") - 1
    assert p.authors[-1] == "K. W. Yoon"
    assert p.title == ("BICEP2 / Keck Array VII: Matrix based E/B Separation applied to BICEP2 "
                       "and the Keck Array")


def test_twelve_records_in_one_response_all_parse():
    items, _, _ = parse_list_records(SAMPLE12.read_bytes(), "sample")
    assert len(items) == 12 and all(isinstance(i, Paper) for i in items)
    saxton = by_id(items)["1606.07066"]
    assert saxton.authors == ["Curtis J. Saxton", "Ziri Younsi", "Kinwah Wu"]  # first of two keynames
    assert all(p.abstract and p.categories and p.submitted for p in papers_of(items))


# --- arXivRaw ---------------------------------------------------------------------------------------

def test_arxiv_raw_versions_dates_and_author_string():
    server = FakeOAI(ARXIV_RAW.read_bytes())
    source = OAISource(metadata_prefix="arXivRaw", from_date="2008-11-01", until="2008-12-31",
                       client=server.client())
    items = list(source)
    assert server.requests == [{"verb": "ListRecords", "metadataPrefix": "arXivRaw", "from": "2008-11-01",
                                "until": "2008-12-31"}]
    p = by_id(items)["0704.0001"]
    assert p.version == 2
    assert p.submitted == "2007-04-02T19:18:42Z" and p.updated == "2007-07-24T20:10:27Z"
    assert p.title == "Calculation of prompt diphoton production cross sections at Tevatron and LHC energies"
    assert p.authors == ["C. Bal\\'azs", "E. L. Berger", "P. M. Nadolsky", "C.-P. Yuan"]
    assert p.categories == ["hep-ph"]
    assert p.comment == "37 pages, 15 figures; published version"
    assert p.journal_ref == "Phys.Rev.D76:013009,2007"
    assert p.doi == "10.1103/PhysRevD.76.013009"
    q = by_id(items)["0704.0002"]
    assert q.authors == ["Ileana Streinu", "Louis Theran"]
    assert q.categories == ["math.CO", "cs.CG"]
    assert (q.version, q.submitted, q.updated) == (2, "2007-03-31T02:26:18Z", "2008-12-13T17:26:00Z")
    assert q.doi is None and q.journal_ref is None
    assert items[-1] == Checkpoint("oai:arXivRaw:*", {"resumption_token": None, "from": "2008-11-01",
                                                      "until": "2008-12-31", "last_datestamp": "2008-12-13"})


def test_split_authors_drops_affiliations():
    assert split_authors("A. One (MIT, Cambridge), B. Two and C. Three (ETH (Zurich))") == [
        "A. One", "B. Two", "C. Three"]
    assert split_authors("Ileana Streinu and Louis Theran") == ["Ileana Streinu", "Louis Theran"]
    assert split_authors("Alexander Anderson") == ["Alexander Anderson"]  # "and" inside a word stays


# --- resumption, checkpoints, incremental harvests ------------------------------------------------

def test_three_page_harvest_with_resumption_tokens():
    server = harvest_server()
    source = OAISource(from_date="2017-12-14", client=server.client())
    items = list(source)
    assert server.requests[0] == {"verb": "ListRecords", "metadataPrefix": "arXiv", "from": "2017-12-14"}
    # OAI-PMH: a request with a resumptionToken carries only verb + resumptionToken
    assert server.requests[1:] == [{"verb": "ListRecords", "resumptionToken": "hx|3"},
                                   {"verb": "ListRecords", "resumptionToken": "hx|6"}]
    kinds = ["C" if isinstance(i, Checkpoint) else "P" for i in items]
    assert "".join(kinds) == "PPPCPPPCPC"
    assert [p.arxiv_id for p in papers_of(items)] == sum(PAGE_IDS, [])
    checkpoints = [i for i in items if isinstance(i, Checkpoint)]
    assert {c.key for c in checkpoints} == {"oai:arXiv:*"}
    assert [c.state for c in checkpoints] == [
        {"resumption_token": "hx|3", "from": "2017-12-14", "until": None, "last_datestamp": "2017-12-14"},
        {"resumption_token": "hx|6", "from": "2017-12-14", "until": None, "last_datestamp": "2017-12-14"},
        {"resumption_token": None, "from": "2017-12-14", "until": None, "last_datestamp": "2018-01-25"},
    ]
    assert source.progress() == (7, 7)


def test_interrupted_harvest_resumes_with_only_the_remaining_pages():
    first = harvest_server()
    items = iter(OAISource(set_spec="physics", from_date="2017-12-14", client=first.client()))
    seen = []
    for item in items:
        if isinstance(item, Checkpoint):
            saved = item
            break
        seen.append(item)
    items.close()  # the process dies here; the store has page 1 and `saved`
    assert [p.arxiv_id for p in seen] == PAGE_IDS[0]
    assert saved.key == "oai:arXiv:physics" and len(first.requests) == 1
    assert first.requests[0]["set"] == "physics"

    second = harvest_server()
    source = OAISource(set_spec="physics", state=saved.state, client=second.client())
    rest = list(source)
    assert second.requests == [{"verb": "ListRecords", "resumptionToken": "hx|3"},
                               {"verb": "ListRecords", "resumptionToken": "hx|6"}]
    assert [p.arxiv_id for p in papers_of(rest)] == PAGE_IDS[1] + PAGE_IDS[2]
    assert rest[-1].state == {"resumption_token": None, "from": "2017-12-14", "until": None,
                              "last_datestamp": "2018-01-25"}
    assert source.progress() == (7, 7)  # the cursor says where in the list the resumed pages are


def test_incremental_harvest_starts_from_last_datestamp():
    server = FakeOAI(list_records(PAGE_RECORDS[2]))
    state = {"resumption_token": None, "from": "2017-12-14", "until": None, "last_datestamp": "2018-01-25"}
    items = list(OAISource(set_spec="math", state=state, client=server.client()))
    assert server.requests == [{"verb": "ListRecords", "metadataPrefix": "arXiv", "set": "math",
                                "from": "2018-01-25"}]
    assert [p.arxiv_id for p in papers_of(items)] == ["1401.2122"]
    assert items[-1] == Checkpoint("oai:arXiv:math", {"resumption_token": None, "from": "2018-01-25",
                                                      "until": None, "last_datestamp": "2018-01-25"})


def test_explicit_from_date_wins_over_saved_datestamp():
    server = FakeOAI(list_records([]))
    state = {"resumption_token": None, "from": None, "until": None, "last_datestamp": "2018-01-25"}
    list(OAISource(from_date="2010-01-01", state=state, client=server.client()))
    assert server.requests[0]["from"] == "2010-01-01"


def test_no_records_match_is_an_empty_result():
    server = FakeOAI(oai_error("noRecordsMatch", "The combination of the values of the from, until, set "
                                                 "and metadataPrefix arguments results in an empty list."))
    state = {"resumption_token": None, "from": "2018-01-01", "until": None, "last_datestamp": "2018-01-25"}
    items = list(OAISource(state=state, client=server.client()))
    assert [i for i in items if not isinstance(i, Checkpoint)] == []
    # the harvest is complete and remembers where it had got to
    assert items == [Checkpoint("oai:arXiv:*", {"resumption_token": None, "from": "2018-01-25",
                                                "until": None, "last_datestamp": "2018-01-25"})]


def test_expired_token_on_resume_restarts_from_the_saved_from():
    server = harvest_server()
    state = {"resumption_token": "old|3", "from": "2017-12-14", "until": None, "last_datestamp": "2017-12-14"}
    items = list(OAISource(state=state, client=server.client()))
    assert server.requests == [
        {"verb": "ListRecords", "resumptionToken": "old|3"},
        {"verb": "ListRecords", "metadataPrefix": "arXiv", "from": "2017-12-14"},
        {"verb": "ListRecords", "resumptionToken": "hx|3"},
        {"verb": "ListRecords", "resumptionToken": "hx|6"},
    ]
    assert len(papers_of(items)) == 7


def test_a_server_that_refuses_its_own_tokens_does_not_loop():
    server = FakeOAI(PAGES[None])  # knows no tokens at all
    state = {"resumption_token": "old|3", "from": "2017-12-14", "until": None, "last_datestamp": None}
    with pytest.raises(OAIError, match="badResumptionToken"):
        list(OAISource(state=state, client=server.client()))
    assert len(server.requests) == 3  # old token, restart, fresh token refused


@pytest.mark.parametrize("code, message", [
    ("badArgument", "Illegal argument 'foo'"),
    ("cannotDisseminateFormat", "Unknown metadata format"),
    ("badResumptionToken", "The value of the resumptionToken argument is invalid or expired."),
    ("noSetHierarchy", "This repository does not support sets"),
])
def test_other_oai_errors_are_unusable_with_code_and_message(code, message):
    server = FakeOAI(oai_error(code, message))
    with pytest.raises(InputUnusable) as caught:
        list(OAISource(set_spec="cs", client=server.client()))
    assert code in str(caught.value) and message in str(caught.value)
    assert caught.value.code == code


# --- malformed and deleted records, unusable pages ------------------------------------------------

def test_malformed_record_is_rejected_with_position_others_kept():
    records = records_of(HEP_TH)
    records[1] = records[1].replace("<id>1507.07790</id>", "<id>junk</id>")
    records[2] = re.sub(r"<title>.*?</title>", "", records[2], flags=re.DOTALL)
    server = FakeOAI(list_records(records + records_of(HEP_EX)))
    items = list(OAISource(client=server.client()))
    assert [type(i).__name__ for i in items] == ["Paper", "Rejected", "Rejected", "Paper", "Paper", "Paper",
                                                 "Checkpoint"]
    assert items[1] == Rejected("OAI page 1 record 2", "not an arXiv identifier: 'junk'")
    assert items[2] == Rejected("OAI page 1 record 3", "missing title")


def test_deleted_records_are_skipped():
    deleted = ("<record><header status=\"deleted\"><identifier>oai:arXiv.org:1412.0001</identifier>"
               "<datestamp>2017-12-15</datestamp><setSpec>physics:hep-th</setSpec></header></record>")
    server = FakeOAI(list_records([deleted, *records_of(HEP_TH)], None, 0, 4))
    source = OAISource(client=server.client())
    items = list(source)
    assert [p.arxiv_id for p in papers_of(items)] == PAGE_IDS[0]
    assert not [i for i in items if isinstance(i, Rejected)]
    assert items[-1].state["last_datestamp"] == "2017-12-15"
    assert source.progress() == (4, 4)


@pytest.mark.parametrize("body", [b"", b"<html><body>503 Service Unavailable</body></html>", b"<OAI-PMH",
                                  b'<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/"></OAI-PMH>'])
def test_a_page_that_is_not_oai_is_unusable(body):
    with pytest.raises(InputUnusable, match="OAI page 1"):
        list(OAISource(client=FakeOAI(body).client()))


@pytest.mark.parametrize("kwargs", [{"metadata_prefix": "oai_dc"}, {"from_date": "14/12/2017"},
                                    {"until": "2017-13-01"},
                                    {"from_date": "2018-01-02", "until": "2018-01-01"}])
def test_bad_arguments_are_explained(kwargs):
    with pytest.raises(InputUnusable):
        OAISource(**kwargs)


def test_default_client_keeps_arxivs_rate():
    client = OAISource.default_client()
    try:
        assert client.min_interval == 3.0
    finally:
        client.close()


# --- robustness -----------------------------------------------------------------------------------

REAL_RESPONSES = [p.read_bytes() for p in (HEP_TH, SINGLE, SAMPLE0, SAMPLE4, ARXIV_RAW)] + [PAGES[None]]


def check_parse(data: bytes) -> None:
    try:
        items, token, size = parse_list_records(data, "fuzz")
    except InputUnusable:
        return
    assert token is None or isinstance(token, str)
    assert size is None or size >= 0
    assert all(isinstance(i, Paper | Rejected) for i in items)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_parse_list_records_on_arbitrary_bytes(data):
    check_parse(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=st.sampled_from(REAL_RESPONSES), seed=st.integers(0, 2**32 - 1),
       junk=st.binary(max_size=40), mode=st.sampled_from(["insert", "cut", "replace", "truncate"]))
def test_parse_list_records_on_mutated_real_responses(doc, seed, junk, mode):
    rng = random.Random(seed)
    i = rng.randrange(len(doc))
    j = min(len(doc), i + rng.randrange(1, 200))
    data = {"insert": doc[:i] + junk + doc[i:], "cut": doc[:i] + doc[j:],
            "replace": doc[:i] + junk + doc[j:], "truncate": doc[:i]}[mode]
    check_parse(data)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200),
       tag=st.sampled_from(["id", "created", "updated", "keyname", "categories", "doi", "datestamp"]))
def test_parse_list_records_on_arbitrary_field_text(text, tag):
    safe = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]", "", text)
    doc = SINGLE.read_text(encoding="utf-8")
    doc = re.sub(rf"<{tag}>[^<]*</{tag}>", lambda _: f"<{tag}>{escape(safe)}</{tag}>", doc, count=1)
    check_parse(doc.encode("utf-8"))


def test_version_labels_and_dates_in_arxiv_raw_are_checked():
    doc = ARXIV_RAW.read_text(encoding="utf-8")
    bad = doc.replace('version="v2"><date>Tue, 24 Jul 2007', 'version="2"><date>Tue, 24 Jul 2007', 1)
    bad = bad.replace("Sat, 13 Dec 2008 17:26:00 GMT", "yesterday", 1)
    items, _, _ = parse_list_records(bad.encode("utf-8"), "OAI page 4")
    assert items == [Rejected("OAI page 4 record 1", "bad version label '2'"),
                     Rejected("OAI page 4 record 2", "bad version date 'yesterday'")]
