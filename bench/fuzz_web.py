"""A hostile fuzz of the whole web system: pages, the JSON API and the Atom feeds, over a store of awkward
records, in-process through Starlette's TestClient.

    .venv/bin/python bench/fuzz_web.py [--requests 5000] [--seed 1] [--demo 300]
    .venv/bin/python bench/fuzz_web.py > bench/results/fuzz_web.json

The store: hostile and awkward records (papers without any date; DOIs with control characters and no arXiv
id; DOIs holding ``?``, ``#``, ``%``, spaces, ``/..``, Unicode; titles with markup, ``]]>``, template syntax,
RTL marks, lone surrogates, 10,000 characters; empty and huge author lists; odd categories...) written as
JSON lines and read through the real ingest (``JSONLSource``: what it rejects is reported and skipped,
what it accepts must be served), plus the first ``--demo`` papers of the bundled demo corpus, in a real
SQLite store in a temporary directory, indexed with the real model. Accounts, a library with hostile tags,
votes and digest subscriptions are then made through the app itself (sign-in and confirmation links are
taken from the mails a local SMTP sink receives).

The requests: the routes come from the app (``app.routes``, included routers flattened), with their
query, form and JSON body parameters, so a new route or parameter is fuzzed without a change here. First
every route with each of its methods, every stored hostile paper under /paper/, /api/v1/papers/ and
.../related (its key written the way the app's own links write it, percent-encoded properly, and as one
encoded component), a search feed per hostile paper, and the known trouble spots; then seeded random
requests: GET and HEAD (and wrong methods), query-language abuse, invalid percent-escapes, NUL, repeated
parameters, huge and negative numbers, floats for ints, POSTs to every form with and without CSRF tokens
(also non-ASCII ones), bad JSON bodies and wrong content types, as anonymous, signed-in and forged
visitors.

The checks, on every answer: status < 500; an Atom answer parses as XML and with feedparser (``bozo``
false) and each ``<link href>`` is an absolute http(s) URL without control characters or spaces (``<id>``
likewise); an HTML answer has no control character or space in any href/src/action, and no
``javascript:`` link; a redirect's Location is on this site and clean; a JSON answer parses. Afterwards
the paper links the pages and feeds handed out are followed once each (a link to a stored paper must
open it). Prints JSON: requests by route and method, statuses, failures grouped by cause with one
reproducing request each, feeds checked, malformed feeds, broken links, slow requests (> 1 s), the time
taken and the machine. tests/test_fuzz_web.py runs the same fuzz with fewer requests.

The model is derived once into bench/.cache/fuzz_web/models (a minute, the first time). A record that
makes the ingest itself raise is reported under ``store.ingest_crashes``; the rest of the records are then
ingested one by one. Requests go through an ASGI wrapper that decodes the path once from ``raw_path`` (the
TestClient decodes it twice: ``%25ff`` would arrive as U+FFFD).
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import logging
import random
import re
import subprocess
import sys
import tempfile
import time
import types
import typing
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "paperradar" / "data" / "demo.jsonl.gz"
CACHE = Path(__file__).resolve().parent / ".cache" / "fuzz_web"
BASE = "http://testserver"
ADMIN_TOKEN = "fuzz-admin-token"
ATOM = "{http://www.w3.org/2005/Atom}"
SLOW_S = 1.0
FORM = "application/x-www-form-urlencoded"
MAX_FAILURES_LISTED = 200


# -- the app: the one place that knows how it is built (the constructor may change) -------------------------
def make_app(data_dir: Path, engine, env: dict[str, str]):
    from paperradar.web.app import create_app

    return create_app(data_dir, env=env, engine=engine, warm=False)


def open_engine(data_dir: Path, embedder):
    """A search engine over the store in ``data_dir`` that borrows an already loaded model."""
    from paperradar.search import SearchEngine
    from paperradar.store import Store

    return SearchEngine(Store(data_dir / "paperradar.sqlite3"), embedder=embedder, embed_threads=1)


def close_engine(engine) -> None:
    engine.close()
    engine.store.close()


def app_env(mail_env: dict[str, str]) -> dict[str, str]:
    """Settings: mail to the sink (so subscribe and sign-in work), links on the test server, the write API
    open with a known token, and a rate limit no fuzz reaches (the limiter still runs)."""
    return {"PAPERRADAR_RATE_LIMIT": "1000000", "PAPERRADAR_BASE_URL": BASE,
            "PAPERRADAR_ADMIN_TOKEN": ADMIN_TOKEN, **mail_env}


# -- the hostile records ------------------------------------------------------------------------------------
class Raw(str):
    """A value already written for a URL or form body (an invalid percent-escape): inserted as is."""


ABSTRACT = ("We study graph neural networks and language models on adversarial inputs, with attention to "
            "parsers, feeds and hostile metadata in paper stores.")
TITLE_WORDS = "Robust parsing of hostile metadata"
HOSTILE_DOIS = [
    "10.1234/ctl\x01soh", "10.1234/ctl\x7fdel", "10.1234/ctl\u2028ls", "10.1234/esc\x1b[31m\tred",
    "10.1234/nel\x85next", "10.1234/\u202egpj.exe", "10.1234/nul\x00byte", "10.1234/bell\x07\x08",
    "10.1000/a?b=c#frag", "10.1000/100% sure", "10.1000/%ff%00", "10.1000/with space",
    "10.1000/../../etc/passwd", "10.1000/ünïcödé/数据", "10.1000/x/related", "10.1000/y/save",
    "10.1000/emoji😀", "10.1000/<script>alert(1)</script>", '10.1000/"quoted"&amp;', "10.1000/back\\slash",
    "10.1000/semi;colon=1&x", "10.1000//double//slash/", "10.1000/trailing/", "10.1000/+plus+",
    "10.1000/{{7*7}}", "10.1000/#", "10.1000/?", "10.1000/%", "10.1000/%2F%2e%2e", "10.1000/" + "long" * 300,
    "10.1000/CaSe-DiFfErS", "10.1000/case-differs",
]
HOSTILE_TITLES = [
    "<script>alert('title')</script> Transformers are <b>bold</b>", "CDATA end ]]> and <![CDATA[ x ]]> too",
    "{{ 7*7 }} {% raw %} ${7*7} #{7*7} <%= 7*7 %>",
    "\u202eRTL override\u202c with \u200f marks \u200e inside",
    "Lone surrogate \ud800 in a title", "Lone low surrogate \udfff here", "x" * 10_000,
    "y" * 1000, "😀" * 400, "Zero\u200bwidth\ufeffBOM\u2060joiner", "Combining e\u0301\u0301\u0301\u0301",
    "Line\u2028separator and paragraph\u2029separator", "???", "!!! ### %%%", "%ff%00%2e%2e %zz",
    "title/with/slashes/../..", "related", "&amp; &lt;script&gt; &#0; &#x1; entities", "Tab\tand\nnewline",
    "NUL \x00 in a title", "Form feed \x0c in a title", "DEL \x7f in a title", "C1 \x85\x9b controls",
    "Quotes \" ' ` and backslash \\ and 'single'", "مقالة عن الشبكات العصبية", "数据科学中的图神经网络",
    "Ελληνικά και кириллица", "\U0001f600\U0001f4a9 astral only \U00010000",
]


def _records() -> list[dict | bytes]:
    """The awkward records, in order: dicts become JSON lines, bytes are written as they are."""
    recs: list[dict | bytes] = [
        # the first record decides that the file holds papers: a plain one, with an arXiv id, undated
        {"id": "2699.00001", "title": "Undated arXiv paper on graph neural networks",
         "authors": ["Ada Lovelace"], "categories": ["cs.CL"]},
        {"title": "An undated paper with neither arXiv id nor DOI", "authors": ["Nobody Known"]},
        {"title": "Undated and keyed by its DOI", "doi": "10.5555/undated"},
        {"title": "Dated only by an update", "doi": "10.5555/updated-only",
         "updated": "2026-03-02T10:00:00Z"},
        {"id": "10.1000/id-is-a-doi", "title": "A record whose id is a DOI"},
        {"doi": "10.48550/arXiv.2699.00002", "title": "An arXiv DataCite DOI and no id",
         "date": "2026-03-01"},
        {"id": "hep-th/9901001v2", "title": "An old-style arXiv id with a slash", "date": "1999-01-05"},
        {"id": "math.GT/0309136", "title": "An old-style id with a subject class", "date": "2003-09-09"},
        {"id": 12345, "title": "A numeric id (some database's row)", "date": "2026-03-01"},
        {"id": "2699.00003v9999", "title": "Version 9999", "date": "2026-03-01", "upvotes": 9_999_999},
        {"id": "2699.00004", "title": "Negative upvotes", "upvotes": -1},
        {"id": "2699.0000x", "title": "A malformed arXiv id"},
        {"title": "   ", "doi": "10.5555/blank-title"},
        {"doi": "10.5555/no-title"},
        # authors
        {"id": "2699.00010", "title": "No authors at all", "authors": [], "date": "2026-03-01"},
        {"id": "2699.00011", "title": "Empty author string", "authors": "", "date": "2026-03-01"},
        {"id": "2699.00012", "title": "Five thousand authors", "date": "2026-03-02",
         "authors": [f"Author Number{i}" for i in range(5000)]},
        {"id": "2699.00013", "title": "Five thousand and one authors", "authors": ["A B"] * 5001},
        {"id": "2699.00014", "title": "Hostile author names", "date": "2026-03-02",
         "authors": ["<b>Mallory</b>", "Robert'); DROP TABLE papers;--", "Name, With Comma", "\u202eevil",
                     "x" * 1000, "{{7*7}}", "Ünïcödé Ñame", "\\'{E}mile \\v{S}koda", "A\x01B"]},
        {"id": "2699.00015", "title": "An author name over the limit", "authors": ["z" * 1001]},
        {"id": "2699.00016", "title": "Authors as a string", "authors": "A. One and B. Two, C. Three et al"},
        # categories
        {"id": "2699.00020", "title": "Odd categories", "date": "2026-03-02",
         "categories": ["", "cs.CL", "cs.CL", "CS.cl", "../..", "cat:*", "a" * 60, "q-bio.BM", "<b>",
                        "68T50"]},
        {"id": "2699.00021", "title": "Categories as a comma string", "categories": "cs.CL,cs.LG math.AG",
         "date": "2026-03-02"},
        {"id": "2699.00022", "title": "Fifty-one categories", "categories": [f"cs.X{i}" for i in range(51)]},
        # abstracts
        {"id": "2699.00030", "title": "A NUL in the abstract", "abstract": "before\x00after"},
        {"id": "2699.00031", "title": "An abstract at the limit", "abstract": "word " * 3999 + "last",
         "date": "2026-03-02"},
        {"id": "2699.00032", "title": "An abstract with CDATA ends and entities", "date": "2026-03-02",
         "abstract": "]]> <![CDATA[ &#0; &amp; <script>alert(1)</script> {{ 7*7 }} \u2028 \ufffe \uffff"},
        {"id": "2699.00033", "title": "Empty abstract", "abstract": "", "date": "2026-03-02"},
        {"id": "2699.00034", "title": "Vertical tab abstract", "abstract": "a\x0bb"},
        {"id": "2699.00035", "title": "An abstract of 20,001 characters", "abstract": "a" * 20_001},
        # short fields the validation does not look at
        {"id": "2699.00040", "title": "Control characters in comment and journal-ref", "date": "2026-03-02",
         "comment": "see \x01 here \x7f", "journal_ref": "J. Hostile \x1b[2J 1 (2026)",
         "doi": "10.1234/with-arxiv\x01id"},
        # dates
        {"id": "2699.00050", "title": "Submitted in year 9999", "date": "9999-12-31"},
        {"id": "2699.00051", "title": "Submitted in year 1", "date": "0001-01-01"},
        {"id": "2699.00052", "title": "Year 1 east of UTC", "date": "0001-01-01T00:00:00+01:00"},
        {"id": "2699.00053", "title": "The epoch", "listing_date": "1970-01-01"},
        {"id": "2699.00054", "title": "A day that does not exist", "date": "2026-02-30"},
        {"id": "2699.00055", "title": "Far west of UTC", "date": "2026-03-01T23:00:00-14:00"},
        {"id": "2699.00056", "title": "Listed in the future", "listing_date": "2099-01-01"},
        {"id": "2699.00057", "title": "An RFC 2822 date", "date": "Mon, 2 Mar 2026 19:18:42 GMT"},
        # broken lines: the ingest reports and skips them
        b"not json at all",
        b"[1, 2, 3]",
        b'{"title": "invalid UTF-8 \xff\xfe here"}',
        b'{"title": 12}',
        b'{"title": "deep", "authors": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ]
    for i, doi in enumerate(HOSTILE_DOIS):
        recs.append({"doi": doi, "title": f"{TITLE_WORDS}: DOI case {i}",
                     **({"date": "2026-03-02"} if i % 2 else {})})  # every other one undated
    for i, title in enumerate(HOSTILE_TITLES):
        recs.append({"title": title, **({"id": f"2699.{100 + i:05d}"} if i % 3 == 0 else {}),
                     **({"doi": f"10.4444/title-{i}"} if i % 3 == 1 else {}),
                     **({"listing_date": "2026-03-02"} if i % 2 else {})})
    # a unique word in each abstract, so that a search (and its feed) can find each record
    for i, rec in enumerate(recs):
        if isinstance(rec, dict):
            marker = f" fuzzrec{i:03d}"
            if rec.get("abstract") == "":
                if isinstance(rec.get("title"), str) and len(rec["title"]) < 900:
                    rec["title"] += marker
            elif "abstract" in rec:
                rec["abstract"] = rec["abstract"][:19_980] + marker if len(rec["abstract"]) <= 20_000 \
                    else rec["abstract"]
            else:
                rec["abstract"] = ABSTRACT + marker
    return recs


def hostile_jsonl() -> bytes:
    lines = [r if isinstance(r, bytes) else json.dumps(r).encode() for r in _records()]
    return b"\n".join(lines) + b"\n"


MARKERS = [f"fuzzrec{i:03d}" for i in range(len(_records()))]


@dataclass
class Corpus:
    papers: int
    hostile_accepted: int
    demo: int
    rejected: list[str]
    keys: list[str]  # every stored paper's key
    hostile_keys: list[str]
    refs: list[str]  # other ways to name stored papers: DOIs, versioned ids, abs URLs, titles
    ingest_crashes: list[str] = field(default_factory=list)


def build_corpus(data_dir: Path, embedder, demo: int = 300) -> Corpus:
    """The store in ``data_dir``: the hostile records and the first ``demo`` demo papers, through the real
    ingest, indexed (lexical and vectors) with ``embedder``."""
    from paperradar.ingest import ingest
    from paperradar.sources.jsonl import JSONLSource

    data_dir.mkdir(parents=True, exist_ok=True)
    hostile = data_dir / "hostile.jsonl"
    hostile.write_bytes(hostile_jsonl())
    sample = data_dir / "demo-sample.jsonl"
    with gzip.open(DEMO, "rb") as f:
        sample.write_bytes(b"".join(itertools.islice(f, demo)))
    engine = open_engine(data_dir, embedder)
    store = engine.store
    rejected: list[str] = []
    crashes: list[str] = []

    def note(r) -> None:
        rejected.append(str(r)[:300])

    try:
        try:
            added = ingest(store, JSONLSource(str(hostile)), on_reject=note).added
        except Exception as e:  # noqa: BLE001 — an ingest bug: load record by record, and say which crash it
            crashes.append(f"the whole file: {type(e).__name__}: {e}")
            rejected.clear()
            added = _ingest_one_by_one(store, data_dir, note, crashes)
        hostile = sorted(store.changed_since(0, limit=10**6), key=lambda p: p.id)
        demo_report = ingest(store, JSONLSource(str(sample)))
        engine.update()
        keys = [p.key for p in sorted(store.changed_since(0, limit=10**6), key=lambda p: p.id)]
    finally:
        close_engine(engine)
    hostile_keys = [p.key for p in hostile]
    refs = []
    for p in hostile:
        if p.doi:
            refs += [p.doi, p.doi.upper()]
        if p.arxiv_id:
            a = p.arxiv_id
            refs += [f"{a}v{p.version or 1}", f"https://arxiv.org/abs/{a}", f"arXiv:{a}"]
        refs.append(p.title)
    return Corpus(papers=len(keys), hostile_accepted=added, demo=demo_report.added, rejected=rejected,
                  keys=keys, hostile_keys=hostile_keys, refs=refs, ingest_crashes=crashes)


def _ingest_one_by_one(store, data_dir: Path, note, crashes: list[str]) -> int:
    """Each hostile record through the ingest in a file of its own (after a plain first record, which
    makes the file one of papers); a record that crashes the ingest is noted and left out."""
    from paperradar.ingest import ingest
    from paperradar.sources.jsonl import JSONLSource

    recs = _records()
    lines = [r if isinstance(r, bytes) else json.dumps(r).encode() for r in recs]
    added = 0
    for i, line in enumerate(lines):
        path = data_dir / f"hostile-{i:03d}.jsonl"
        path.write_bytes((lines[0] + b"\n" if i else b"") + line + b"\n")
        try:
            added += ingest(store, JSONLSource(str(path)), on_reject=note).added
        except Exception as e:  # noqa: BLE001
            crashes.append(f"record {i} ({_describe(recs[i])}): {type(e).__name__}: {e}")
        finally:
            path.unlink()
    return added


def _describe(rec) -> str:
    if isinstance(rec, bytes):
        return repr(rec[:60])
    return ", ".join(f"{k}={v!r:.50}" for k, v in rec.items() if k != "abstract")


# -- URLs the way a link writes them ------------------------------------------------------------------------
_LINK_ESCAPE = set(' "<>`{}') | {chr(c) for c in range(0x20)} | {"\x7f"}


def as_link(text: str) -> str:
    """``text`` as a browser sends an href written with it raw (the app's own paper links): controls,
    spaces, a few ASCII marks and everything non-ASCII percent-encoded, and ``?``, ``#``, ``%`` left alone."""
    out = []
    for c in text:
        if c in _LINK_ESCAPE or not c.isascii():
            out.append(quote(c.encode("utf-8", "surrogatepass"), safe=""))
        else:
            out.append(c)
    return "".join(out)


_DOT, _DOTDOT = {".", "%2e"}, {"..", ".%2e", "%2e.", "%2e%2e"}


def as_browser(href: str) -> str:
    """What a browser requests for a same-site ``href``: the fragment dropped, dot segments resolved (also
    percent-encoded ones, as the URL Standard has it), then :func:`as_link`'s escaping."""
    path, sep, query = href.split("#", 1)[0].partition("?")
    segments = path.split("/")[1:]
    out: list[str] = []
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if seg.lower() in _DOTDOT:
            if out:
                out.pop()
            if last:
                out.append("")
        elif seg.lower() in _DOT:
            if last:
                out.append("")
        else:
            out.append(seg)
    return as_link("/" + "/".join(out) + sep + query)


def ref_path(ref: str, how: str) -> str:
    """A path segment naming ``ref``: as the app's links write it ("link"), properly percent-encoded
    ("encoded", slashes kept) or as one encoded component ("component")."""
    if how == "link":
        return as_link(ref)
    raw = ref.encode("utf-8", "surrogatepass")
    return quote(raw, safe="/:@" if how == "encoded" else "")


def q_encode(value: str) -> str:
    if isinstance(value, Raw):
        return str(value)
    return quote(value.encode("utf-8", "surrogatepass"), safe="")


def query_string(pairs: list[tuple[str, str]]) -> str:
    return "&".join(f"{q_encode(k)}={q_encode(v)}" for k, v in pairs)


# -- hostile values ------------------------------------------------------------------------------------------
HOSTILE = [
    "", " ", "-x", "-cat:cs.CL", '""', '"', "au:", "since:9999-99-99", "until:0000-00-00", "cat:*", "cat:",
    "-", "--x", "- -", '-"a phrase"', "-ti:x -abs:y -au:z -cat:cs.LG -id:2699.00001", "id:", "id:doi:",
    "year:99999", "2024..2023", "..", "sort:nope", 'ti:""', "abs:-x", "(a OR b) AND NOT c", "*", "?", "\\",
    "'; DROP TABLE papers; --", "<script>alert(1)</script>", "{{7*7}}", "${7*7}", "数据 图神经网络",
    "Ünïcödé façade", "\u202eevil\u202c", "\u200f\u200e", "😀🙃", "\u2028", "\x00", "a\x00b", "\x01\x1b[31m",
    "\x7f", "x" * 2000, "graph " * 400, "9" * 30, "-1", "0", "1.5", "1e9", "NaN", "inf", "-inf", "0x10",
    "١٢٣", "+5", " 7 ", "true", "null", "[]", "{}", "//evil.example/", "javascript:alert(1)",
    "/\\evil.example", "http://evil.example/", "\r\nSet-Cookie: pwned=1", "%", "%%", "&", "=", "#", "+",
    Raw("%ff"), Raw("%00"), Raw("%c3%28"), Raw("%e2%82"), Raw("%ed%a0%80"), Raw("%zz"), Raw("%"),
    Raw("%f0%9f%98"), Raw("a%00b"), Raw("%C0%AF"), Raw("%25ff"), Raw("%2e%2e%2f"), Raw("-%ff"),
    Raw("%ff%fe%fd"), Raw("cat:cs.%ff"),
]
QUERIES = [
    "graph neural networks", "language models", "transformer", "diffusion models", "attention", "molecules",
    "ti:graph", "au:lovelace", 'abs:"language models"', "cat:cs.CL", "cat:cs.CL -cat:cs.LG", "id:2699.00001",
    "since:2026", "until:2026-03", "graph -x", "-x", "-cat:cs.CL", "-graph -language", "cat:cs.CL -x",
    "since:2026-03-01 -x", "sort:newest graph", "sort:trending", "year:2026", "2025..2026",
    "hostile metadata",
    "robust parsing", "id:10.1000/a?b=c#frag", "id:doi:10.1234/ctl", "au:\"Author Number42\"", "au:mallory",
    "ti:\"<script>\"", "数据科学", "quotes \" ' `",
]
TAGS = ["reading", "<script>alert(1)</script>", "a/b?c#d", "100% sure", "数据 科学", "\u202eevil",
        "  spaced  ", "x" * 200, "{{7*7}}", "Tab\tTag"]
BIBTEX = [
    b"@article{a, title={A paper}, author={Ada Lovelace}, year=2026, eprint={2699.00001}}",
    b"@article{b, title={Unbalanced {braces}, doi={10.1000/a?b=c#frag}}",
    b"@misc{c, title={\x00NUL}, note={\xff\xfe not UTF-8}}",
    b"@article{" + b"{" * 5000 + b"}",
    b"@string{x = \"y\"} @article{d, title = x # \" and \" # x, doi = {10.1234/ctl\x01soh}}",
    b"",
    b"not bibtex at all <script>",
    "@book{e, title={Ünïcödé \u202e}, author={A and B and C}, doi={10.1000/ünïcödé/数据}}".encode(),
    b"@article{f, " + b"title={t}, " * 2000 + b"}",
]
GOOD: dict[str, list] = {
    "q": QUERIES, "cat": ["cs.CL", "cs", "cs.CL cs.LG", "math.AG", "q-bio.BM", "cs.CL,cs.CV"],
    "au": ["Ada Lovelace", "lovelace", "Author Number7", "Mallory", "Ünïcödé"],
    "since": ["2026", "2026-03", "2026-03-01", "1999", "2027"],
    "until": ["2026", "2026-02", "2026-03-02", "2000"],
    "sort": ["relevance", "newest", "trending"], "mode": ["hybrid", "lexical", "dense"],
    "period": ["day", "week", "month"], "page": ["1", "2", "3", "50"], "limit": ["1", "5", "20", "100"],
    "offset": ["0", "5", "100", "1000"], "max_papers": ["1", "10", "30"], "hour": ["0", "8", "23"],
    "tz": ["UTC", "Europe/Paris", "America/Los_Angeles", "Asia/Kolkata", "Pacific/Chatham"],
    "email": ["ada@example.org", "new.reader@example.org", "x+tag@example.org", "ÜNÏ@exämple.org"],
    "next": ["/", "/for-you", "/library", "/search?q=graph", "/paper/2699.00001"],
    "tag": TAGS, "name": TAGS, "text": [ABSTRACT, "graph neural networks", "x" * 19_999, "数据 " * 100],
    "searches": ["graph neural networks\ncat:cs.CL -x", "-x", "au:lovelace\n\n\nsince:2026"],
    "format": ["bibtex", "json"], "window": ["month", "week", "day", "all"], "include": ["graph", "model"],
    "exclude": ["cs.CV", "cs.CL, cs.LG"], "min_score": ["0", "0.5", "1"], "on": ["true", "false"],
    "trending": ["true", "false"], "saved": ["1", "0"], "index": ["false", "true"],
    "confirm": ["wrong@example.org", ""],
}
WEIGHTS = {  # relative frequency of routes in the random phase (default 1)
    "/search": 4, "/api/v1/search": 4, "/feeds/search.atom": 4, "/paper/{ref:path}": 4,
    "/api/v1/papers/{ref:path}": 3, "/api/v1/papers/{ref:path}/related": 2, "/feeds/trending.atom": 2,
    "/trending": 2, "/api/v1/trending": 2, "/": 2, "/api/v1/admin/ingest": 0.5, "/api/v1/admin/reindex": 0.3,
    "/settings/delete": 0.5, "/signout": 0.5, "/library/import": 0.5,
}


# -- routes, from the app -----------------------------------------------------------------------------------
@dataclass
class Param:
    name: str
    kind: str  # query, form, file, json
    annotation: object = None


@dataclass
class RouteInfo:
    path: str
    methods: list[str]
    endpoint: object
    path_params: list[str] = field(default_factory=list)
    params: list[Param] = field(default_factory=list)
    json_model: object = None


def _walk(dependant, kind: str) -> list:
    if dependant is None:
        return []
    out = list(getattr(dependant, kind, []) or [])
    for sub in getattr(dependant, "dependencies", []) or []:
        out += _walk(sub, kind)
    return out


def _flatten(routes) -> typing.Iterator:
    for r in routes:
        contexts = getattr(r, "effective_route_contexts", None)  # FastAPI's lazily included routers
        if contexts is not None:
            yield from contexts()
        else:
            yield r


def app_routes(app) -> list[RouteInfo]:
    """Every route of the app with its methods and parameters (a mounted app, /static, is one route)."""
    out = []
    for r in _flatten(app.routes):
        path = getattr(r, "path", None)
        if path is None:
            continue
        methods = sorted(getattr(r, "methods", None) or [])
        endpoint = getattr(r, "endpoint", None)
        if not methods:  # a Mount
            methods, endpoint = ["GET"], getattr(r, "app", None)
        info = RouteInfo(path=path or "/", methods=[m for m in methods if m != "HEAD"] or methods,
                         endpoint=endpoint)
        dep = getattr(r, "dependant", None)
        info.path_params = [f.alias for f in _walk(dep, "path_params")] or re.findall(r"{(\w+)", path)
        for f in _walk(dep, "query_params"):
            info.params.append(Param(f.alias, "query", f.field_info.annotation))
        for f in _walk(dep, "body_params"):
            kind = type(f.field_info).__name__
            ann = f.field_info.annotation
            if kind == "File":
                info.params.append(Param(f.alias, "file", ann))
            elif kind == "Form":
                info.params.append(Param(f.alias, "form", ann))
            elif isinstance(ann, type) and hasattr(ann, "model_fields"):
                info.json_model = ann
            else:
                info.params.append(Param(f.alias, "json", ann))
        out.append(info)
    return out


def _literal_values(annotation) -> list[str]:
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Literal:
        return [str(a) for a in args]
    for a in args:  # Optional[Literal[...]]
        if typing.get_origin(a) is typing.Literal:
            return [str(x) for x in typing.get_args(a)]
    return []


# -- one request, and what was wrong with its answer ---------------------------------------------------------
@dataclass
class Req:
    method: str
    url: str
    route: str
    headers: dict = field(default_factory=dict)
    content: bytes | None = None
    files: dict | None = None
    data: dict | None = None
    persona: str = "visitor"
    cookie: bytes | None = None  # the whole Cookie header
    tag: str = "random"  # seed, csrf, known, key, marker, ref, link, random


@dataclass
class Failure:
    kind: str  # 5xx, malformed feed, bad href, bad redirect, bad json, broken link, exception
    method: str
    url: str
    status: int | None
    detail: str
    body: str = ""
    persona: str = ""
    cause: str = ""

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v not in ("", None)}


_BIDI = "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def bad_chars(url: str) -> list[str]:
    """Characters no URL may hold raw: controls, spaces and other separators, lone surrogates, bidi
    formatting (RFC 3987 4.1)."""
    out = []
    for c in url:
        cat = unicodedata.category(c)
        if c.isspace() or cat in ("Cc", "Cs", "Zs", "Zl", "Zp") or c in _BIDI:
            out.append(f"U+{ord(c):04X}")
    return out


def url_problems(url: str | None, *, absolute: bool = False) -> list[str]:
    if url is None:
        return ["missing"]
    problems = []
    bad = bad_chars(url)
    if bad:
        problems.append("control character or space " + ",".join(sorted(set(bad))[:5]))
    try:
        parts = urlsplit(url)
    except ValueError as e:
        return [*problems, f"unparsable ({e})"]
    if absolute and (parts.scheme not in ("http", "https") or not parts.netloc):
        problems.append("not an absolute http(s) URL")
    if parts.scheme.lower() in ("javascript", "data", "vbscript"):
        problems.append(f"{parts.scheme}: URL")
    return problems


class _Links(HTMLParser):
    ATTRS = ("href", "src", "action", "formaction")

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.urls: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.tokens: list[tuple[str, str]] = []  # (form action, token) of hidden "token" inputs
        self._action = ""

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for name in self.ATTRS:
            if name in a and a[name] is not None:
                self.urls.append((tag, name, a[name]))
        if tag == "form":
            self._action = a.get("action") or ""
        if tag == "input" and a.get("name") == "token" and a.get("value"):
            self.tokens.append((self._action, a["value"]))


def check_feed(body: bytes) -> tuple[list[str], list[str]]:
    """(problems, entry link paths) of an Atom document."""
    import feedparser
    from defusedxml import ElementTree

    try:
        root = ElementTree.fromstring(body)
    except Exception as e:  # noqa: BLE001 — any parse error is the finding
        return [f"not well-formed XML: {type(e).__name__}: {e}"], []
    problems = []
    if root.tag != ATOM + "feed":
        problems.append(f"root element is {root.tag}, not an Atom feed")
    parsed = feedparser.parse(body)
    if parsed.bozo:
        problems.append(f"feedparser bozo: {type(parsed.bozo_exception).__name__}: {parsed.bozo_exception}")
    links = []
    for el in root.iter(ATOM + "link"):
        href = el.get("href")
        for p in url_problems(href, absolute=True):
            problems.append(f"<link href> {p}: {href!r:.160}")
        if href and el.get("rel", "alternate") == "alternate":
            links.append(href)
    for el in root.iter(ATOM + "id"):
        bad = bad_chars(el.text or "")
        if bad or not (el.text or "").strip():
            problems.append(f"<id> empty or with control characters: {el.text!r:.160}")
    return problems, links


# -- the fuzzer ----------------------------------------------------------------------------------------------
class _Recorder:
    """ASGI wrapper that notes which endpoint handled the last request (Starlette puts it in the scope).

    It also undoes a TestClient quirk: Starlette's TestClient percent-decodes httpx's already decoded path
    a second time ("%25ff" arrives as U+FFFD), so the path is decoded again from ``raw_path``, once, as
    uvicorn does."""

    def __init__(self, app):
        self.app = app
        self.endpoint = None

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope.get("raw_path") is not None:
            scope = {**scope, "path": unquote(scope["raw_path"].decode("latin-1"))}
        try:
            await self.app(scope, receive, send)
        finally:
            if scope["type"] == "http":
                self.endpoint = scope.get("endpoint")


class _ErrorLog(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


def _cause(record: logging.LogRecord) -> str:
    """Exception type and the innermost paperradar frame of a logged error."""
    import traceback

    if not record.exc_info or not record.exc_info[1]:
        return record.getMessage()[:200]
    exc = record.exc_info[1]
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/paperradar/" in f.filename] or frames
    where = ""
    if ours:
        f = ours[-1]
        name = f.filename.split("/paperradar/", 1)[-1]
        where = f" at {name}:{f.lineno} in {f.name}"
    return f"{type(exc).__name__}{where}: {str(exc)[:160]}"


CSRF_INPUT = re.compile(r'name="(csrf[^"]*)" value="([^"]*)"')


class Fuzzer:
    """Seeds accounts and data through the app, then sends requests and checks every answer.

    ``client`` is a TestClient over ``recorder(app)``. Who sends a request (``Req.persona``): "anonymous"
    (no cookie), "visitor" (the CSRF cookie), "ada" (signed in, with a library and a digest), "forged"
    (garbage cookies), "spare" (a session of ada's that signing out may end), "victim" (an account that
    deleting it may end).
    """

    def __init__(self, client, app, corpus: Corpus, sink, seed: int = 1):
        self.client = client
        self.app = app
        self.corpus = corpus
        self.sink = sink
        self.rng = random.Random(seed)
        self.app_recorder = client.app  # the _Recorder the client drives
        self.routes = app_routes(app)
        self.exercised: set[tuple[int, str]] = set()  # (id of endpoint, method) that handled a request
        self.statuses: Counter = Counter()
        self.phases: Counter = Counter()  # requests by Req.tag
        self.route_status: dict[str, Counter] = defaultdict(Counter)
        self.failures: list[Failure] = []
        self.feeds_checked = 0
        self.malformed_feeds = 0
        self.html_checked = 0
        self.slow: list[dict] = []
        self.links: dict[str, str] = {}  # internal link -> the URL of the page that gave it
        self.links_followed = 0
        self.unsendable: Counter = Counter()
        self.head_405: Counter = Counter()
        self.sent = 0
        self.tokens: dict[str, set[str]] = defaultdict(set)  # path -> tokens seen in mails, links, forms
        self.errors = _ErrorLog()
        self.csrf_name = self.session_name = ""
        self.csrf_cookie = ""
        self.csrf_field = "csrf_token"
        self.other_token = ""  # a valid token, of another cookie
        self._csrf_tokens: dict[bytes | None, str] = {}  # cookie header -> the token its pages carry
        self.ada = ""
        self.spare: list[str] = []  # sessions of ada that signing out may end
        self.victims: list[tuple[str, str]] = []  # (session, address) of accounts the fuzz may delete

    # -- sending --------------------------------------------------------------------------------------------
    def cookie(self, persona: str, session: str | None = None) -> bytes | None:
        if persona == "anonymous":
            return None
        csrf = f"{self.csrf_name}={self.csrf_cookie}".encode()
        if persona == "forged":
            rng = self.rng
            return b"; ".join([
                rng.choice([b"%s=\xc3\xa9" % self.csrf_name.encode(), b"%s=" % self.csrf_name.encode(),
                            f"{self.csrf_name}={'x' * 5000}".encode(), csrf]),
                rng.choice([f"{self.session_name}=forged".encode(), f"{self.session_name}=".encode(),
                            b"%s=\xff\xfe" % self.session_name.encode(),
                            f"{self.session_name}={'s' * 101}".encode(),
                            f'{self.session_name}="quoted;value"'.encode(), b"garbage;;==;"])])
        if persona == "ada":
            session = self.ada
        return csrf + (f"; {self.session_name}={session}".encode() if session else b"")

    def send(self, req: Req):
        """Send one request and check its answer; returns the response (None if it could not be sent)."""
        headers = dict(req.headers)
        if req.cookie is not None:
            headers["cookie"] = req.cookie
        self.client.cookies.clear()  # only the Cookie header of the request counts
        self.errors.records.clear()
        self.app_recorder.endpoint = None
        start = time.perf_counter()
        try:
            kwargs = {"headers": headers, "follow_redirects": False}
            if req.files is not None:
                kwargs.update(files=req.files, data=req.data or {})
            elif req.content is not None:
                kwargs["content"] = req.content
            response = self.client.request(req.method, req.url, **kwargs)
        except Exception as e:  # noqa: BLE001 — the client could not send it (an invalid URL or header)
            self.unsendable[f"{type(e).__name__}: {str(e)[:80]}"] += 1
            return None
        took = time.perf_counter() - start
        self.sent += 1
        endpoint = self.app_recorder.endpoint
        if endpoint is not None and response.status_code != 405:
            self.exercised.add((id(endpoint), req.method))
        self.statuses[response.status_code] += 1
        self.phases[req.tag] += 1
        self.route_status[f"{req.method} {req.route}"][response.status_code] += 1
        if took > SLOW_S:
            self.slow.append({"method": req.method, "url": req.url[:300], "status": response.status_code,
                              "seconds": round(took, 2), "persona": req.persona})
        if req.method == "HEAD" and response.status_code == 405:
            self.head_405[req.route] += 1
        self._check(req, response)
        return response

    def _fail(self, req: Req, response, kind: str, detail: str, cause: str = "") -> None:
        body = response.content[:300].decode("utf-8", "replace") if response is not None else ""
        self.failures.append(Failure(kind, req.method, req.url[:2000], getattr(response, "status_code", None),
                                     detail[:500], body, req.persona, cause))

    def _check(self, req: Req, response) -> None:
        status = response.status_code
        ctype = response.headers.get("content-type", "")
        if status >= 500:
            causes = [_cause(r) for r in self.errors.records]
            cause = causes[0] if causes else f"HTTP {status} answered by the app: {response.text[:120]!r}"
            self._fail(req, response, "5xx", f"status {status}", cause)
        if req.method == "HEAD":
            return
        body = response.content
        if "atom" in ctype or (req.route.startswith("/feeds/") and status == 200):
            self.feeds_checked += 1
            problems, links = check_feed(body)
            if problems:
                self.malformed_feeds += 1
                for p in problems:
                    self._fail(req, response, "malformed feed", p, cause=re.sub(r":\s.*", "", p))
            for href in links:
                self._note_link(href, req.url)
        elif "text/html" in ctype:
            self.html_checked += 1
            parser = _Links()
            parser.feed(response.text)
            for tag, attr, value in parser.urls:
                for p in url_problems(value):
                    self._fail(req, response, "bad href", f"<{tag} {attr}> {p}: {value!r:.200}",
                               cause=f"<{tag} {attr}> {p.split(' U+')[0]}")
                self._note_link(value, req.url)
                if "token=" in value:  # links of the mails' pages: manage, unsubscribe, preview
                    parts = urlsplit(value)
                    token = dict(parse_qsl(parts.query)).get("token")
                    if token and len(self.tokens[parts.path]) < 50:
                        self.tokens[parts.path].add(token)
            for action, token in parser.tokens:
                self.tokens[urlsplit(action).path].add(token)
        elif "json" in ctype and body:
            try:
                json.loads(body)
            except ValueError as e:
                self._fail(req, response, "bad json", str(e))
        if 300 <= status < 400:
            location = response.headers.get("location")
            problems = url_problems(location)
            if location is not None and urlsplit(location).netloc not in ("", "testserver"):
                problems.append("redirect off this site")
            for p in problems:
                self._fail(req, response, "bad redirect", f"Location {p}: {location!r:.200}",
                           cause=f"Location {p.split(' U+')[0]}")

    def _note_link(self, href: str, page: str) -> None:
        """Keep the paper links a page or feed hands out, to follow them once at the end."""
        if href.startswith(BASE + "/"):
            href = href[len(BASE):]
        if href.startswith("/paper/") and href not in self.links and len(self.links) < 5000:
            self.links[href] = page

    def csrf_token(self, cookie: bytes | None) -> str:
        """The CSRF token the pages carry for this cookie (sessions have their own), fetched once."""
        if cookie not in self._csrf_tokens:
            r = self.send(Req("GET", "/", "/", cookie=cookie, tag="csrf"))
            m = CSRF_INPUT.search(r.text) if r is not None else None
            self._csrf_tokens[cookie] = m.group(2) if m else ""
        return self._csrf_tokens[cookie]

    # -- seeding: accounts, a library, subscriptions, all through the app -----------------------------------
    def _form(self, path: str, fields: dict, persona: str = "visitor", route: str | None = None,
              session: str | None = None):
        cookie = self.cookie(persona, session)
        pairs = [*fields.items(), (self.csrf_field, self.csrf_token(cookie))]
        body = query_string(pairs).encode()
        return self.send(Req("POST", path, route or path, {"content-type": FORM}, body, persona=persona,
                             cookie=cookie, tag="seed"))

    def _mail_links(self, to: str, path: str, n: int = 1) -> list[str]:
        from mailsink import links

        return links(self.sink.wait_for(to, n), path)

    def _sign_in(self, email: str, n: int) -> str:
        """A session for ``email`` by its mailed link; ``n``: which mail to this address it is."""
        r = self._form("/signin", {"email": email, "next": "/for-you"})
        assert r is not None and r.status_code == 200, f"signing in: {r.status_code if r else None}"
        (url,) = self._mail_links(email, "/signin/verify", n)
        token = dict(parse_qsl(urlsplit(url).query))["token"]
        r = self._form("/signin/verify", {"token": token, "next": "/for-you"})
        assert r is not None and r.status_code == 303, f"following the sign-in link: {r.status_code}"
        for name, value in r.cookies.items():
            if name != self.csrf_name:
                self.session_name = name
                return value
        raise AssertionError("signing in set no session cookie")

    def _token_of(self, url: str) -> str:
        return dict(parse_qsl(urlsplit(url.replace("&amp;", "&")).query))["token"]

    def seed(self) -> None:
        r = self.send(Req("GET", "/", "/", persona="anonymous", tag="seed"))
        assert r is not None and r.status_code == 200, "the home page does not open"
        ((self.csrf_name, self.csrf_cookie),) = list(r.cookies.items())
        self.csrf_field, token = CSRF_INPUT.search(r.text).groups()
        self._csrf_tokens[self.cookie("visitor")] = token
        other = self.send(Req("GET", "/", "/", persona="anonymous", tag="seed"))
        self.other_token = CSRF_INPUT.search(other.text).group(2)
        self.ada = self._sign_in("ada@example.org", 1)
        self.spare = [self._sign_in("ada@example.org", n) for n in (2, 3)]
        self.victims = [(self._sign_in(a, 1), a) for a in ("victim0@example.org", "victim1@example.org")]
        # a sign-in link nobody used yet: the fuzz may use it once
        self._form("/signin", {"email": "bob@example.org"})
        for url in self._mail_links("bob@example.org", "/signin/verify"):
            self.tokens["/signin/verify"].add(self._token_of(url))
        # ada's library: hostile papers under hostile tags, votes, a dismissal; demo papers too, so that
        # her feed has a model to train; and a digest
        keys = self.corpus.hostile_keys
        for i, key in enumerate(keys):
            ref = ref_path(key, "encoded")
            if i % 2 == 0:
                self._form(f"/papers/{ref}/save", {"tag": TAGS[i % len(TAGS)], "next": "/library"}, "ada",
                           "/papers/{ref:path}/save")
            if i % 3 == 0:
                self._form(f"/papers/{ref}/vote", {"on": "true"}, "ada", "/papers/{ref:path}/vote")
        for key in self.corpus.keys[len(keys)::7][:12]:
            self._form(f"/papers/{ref_path(key, 'encoded')}/save", {"tag": "reading"}, "ada",
                       "/papers/{ref:path}/save")
        self._form(f"/papers/{ref_path(keys[1], 'encoded')}/dismiss", {"on": "true"}, "ada",
                   "/papers/{ref:path}/dismiss")
        self._form("/settings/digest", {"trending": "true", "searches": "graph neural networks\n-x",
                                        "hour": "8", "max_papers": "10", "tz": "UTC"}, "ada")
        # digest subscriptions by the double opt-in: a confirmed one (whose pages give the manage and
        # unsubscribe tokens) and a pending one (a confirm token)
        for i, confirm in enumerate((True, False)):
            email = f"reader{i}@example.org"
            self._form("/subscribe", {"email": email, "trending": "true", "max_papers": "10", "hour": "8",
                                      "tz": "UTC", "searches": "graph neural networks\n-x\ncat:cs.CL"})
            (url,) = self._mail_links(email, "/confirm")
            token = self._token_of(url)
            self.tokens["/confirm"].add(token)
            if confirm:
                page = self._form("/confirm", {"token": token})
                for href in re.findall(r'href="(/[^"?]*\?[^"]*token=[^"]*)"', page.text):
                    self.tokens[href.split("?", 1)[0]].add(self._token_of(href))
                for t in list(self.tokens.get("/subscription", ())):
                    self.send(Req("GET", f"/subscription?token={q_encode(t)}", "/subscription",
                                  cookie=self.cookie("visitor"), tag="seed"))

    # -- generating ---------------------------------------------------------------------------------------
    def _value(self, name: str, annotation=None, *, hostile: float = 0.0, path: str = "") -> str:
        rng = self.rng
        if rng.random() < hostile:
            return rng.choice(HOSTILE)
        if name == "token":
            mine = sorted(self.tokens.get(path, ()))
            anyone = sorted(t for ts in self.tokens.values() for t in ts)
            if mine and rng.random() < 0.7:
                return rng.choice(mine)
            return rng.choice(anyone + ["", "x", "a.b.c", "0" * 60, "é" * 10, "t" * 201])
        if name in ("paper", "ref"):
            return rng.choice(self.corpus.keys + self.corpus.refs)
        if name in GOOD:
            return rng.choice(GOOD[name])
        literal = _literal_values(annotation)
        if literal:
            return rng.choice(literal)
        base = annotation
        if typing.get_origin(annotation) in (typing.Union, types.UnionType):
            base = next((a for a in typing.get_args(annotation) if a is not type(None)), str)
        if base is int:
            return str(rng.choice([0, 1, 2, 5, 10, 20, 100, 101, 1000, 1001]))
        if base is float:
            return rng.choice(["0", "0.25", "0.5", "1"])
        if base is bool:
            return rng.choice(["true", "false", "1", "0", "on", "off"])
        return rng.choice(["graph", "paper", "x", "数据", "a b"])

    def _csrf_value(self, cookie: bytes | None, hostile: float) -> str:
        if self.rng.random() >= hostile:
            return self.csrf_token(cookie)
        token = self.csrf_token(self.cookie("visitor"))
        return self.rng.choice(["", "é", "\u0100", "€" * 64, "x" * 64, token.upper(), self.other_token,
                                token + " ", "\x00" * 64, "t" * 201, Raw("%ff" * 32), token])

    def _path(self, route: RouteInfo, hostile: float) -> str:
        path = route.path
        for name in route.path_params:
            if name == "ref":
                value = self._ref_value(hostile)
            else:
                value = q_encode(self._value(name, hostile=hostile))
            path = re.sub("{" + re.escape(name) + "(:[^}]*)?}", lambda _m, v=value: v, path)
        return path

    def _ref_value(self, hostile: float) -> str:
        rng = self.rng
        if rng.random() < hostile / 3:
            return rng.choice(["", "..", "%2e%2e", "%ff", "a%00b", "%2F", "/", "//", "x" * 3000, "%", "?",
                               "doi:", "title:", "%E2%80%AE", "2699.00001v0", "2699.00001v99999999999"])
        pool = self.corpus.hostile_keys if rng.random() < 0.6 else self.corpus.keys + self.corpus.refs
        ref = rng.choice(pool)
        return ref_path(ref, rng.choice(["link", "encoded", "component"]))

    def _query(self, route: RouteInfo, hostile: float) -> str:
        rng = self.rng
        pairs = []
        for p in route.params:
            if p.kind == "query" and rng.random() < (0.9 if p.name == "q" else 0.6):
                repeat = rng.random() < hostile / 3 or typing.get_origin(p.annotation) is list
                pairs += [(p.name, self._value(p.name, p.annotation, hostile=hostile, path=route.path))
                          for _ in range(2 if repeat else 1)]
        if rng.random() < hostile / 3:
            pairs.append((rng.choice(["unknown", "q[]", "__proto__", "", "é"]), self._value("x", hostile=1)))
        qs = query_string(pairs)
        if rng.random() < hostile / 5:
            qs += rng.choice(["&&&", "&=", "&%ff=%fe", "&a=%zz", "&%00", ";q=x", "&q", "#frag"])
        return qs

    def _body(self, route: RouteInfo, req: Req, hostile: float) -> None:
        rng = self.rng
        if route.json_model is not None or any(p.kind == "json" for p in route.params):
            self._json_body(route, req, hostile)
            return
        forms = [p for p in route.params if p.kind in ("form", "file")]
        if not forms:
            if route.path.startswith("/api/v1/admin/ingest"):
                req.content = self._upload()
                req.headers["content-type"] = rng.choice(["application/octet-stream", "application/x-ndjson",
                                                          "text/csv", "application/gzip"])
            elif rng.random() < hostile:
                req.content = rng.choice([b"x=1", b"\xff\xfe", b"{}"])
            return
        pairs = []
        for p in forms:
            if p.kind == "file" or rng.random() < hostile / 3:
                continue  # a field left out
            if p.name == self.csrf_field:
                pairs.append((p.name, self._csrf_value(req.cookie, hostile)))
            elif route.path == "/settings/delete" and p.name == "confirm" and req.persona == "victim":
                pairs.append((p.name, self.victims.pop()[1] if self.victims else "gone@example.org"))
            else:
                pairs.append((p.name, self._value(p.name, p.annotation, hostile=hostile, path=route.path)))
        files = [p for p in forms if p.kind == "file"]
        roll = rng.random()
        if files or roll < hostile / 8:
            pairs = [(n, v) for n, v in pairs if not isinstance(v, Raw) and _encodable(v)]
            req.data = dict(pairs)
            req.files = {f.name: (rng.choice(["lib.bib", "é.bib", "../../x", ""]), rng.choice(BIBTEX))
                         for f in files} or {"unexpected": ("x.txt", b"x")}
            if rng.random() < hostile / 3:
                req.files = {}
        elif roll < hostile / 4:
            req.content = rng.choice([b"%ff=%fe&\x00", b"\xff\xfe\xfd", b"csrf_token", b"=&=&=",
                                      query_string(pairs).encode() + b"&" + b"a=" * 5000])
            req.headers["content-type"] = FORM
        else:
            req.content = query_string(pairs).encode()
            req.headers["content-type"] = FORM
            if rng.random() < hostile / 2:
                req.headers["content-type"] = rng.choice(
                    ["application/json", "text/plain", "", FORM + "; charset=latin-1", "multipart/form-data",
                     "multipart/form-data; boundary=x"])

    def _json_body(self, route: RouteInfo, req: Req, hostile: float) -> None:
        rng = self.rng
        req.headers["content-type"] = "application/json"
        if rng.random() < hostile / 2:
            req.headers["content-type"] = rng.choice(["text/plain", "", FORM, "multipart/form-data",
                                                      "application/json; charset=latin-1"])
        if rng.random() < hostile / 2:
            req.content = rng.choice([
                b"", b"{", b"null", b"[]", b'"text"', b"{}", b'{"text": "\\ud800"}', b"\xef\xbb\xbf{}",
                b"[" * 50_000 + b"]" * 50_000, b'{"text": ' + b"[" * 5000 + b"]" * 5000 + b"}",
                b"\xff\xfe{\x00}", b'{"text": "x", "text": 1}', b'{"email": 1e999, "hour": NaN}',
                b'{"max_papers": 99999999999999999999999999999}', b'{"text": "' + b"x" * 70_000 + b'"}'])
            return
        fields = getattr(route.json_model, "model_fields", {}) if route.json_model is not None else {}
        body = {}
        for name, info in fields.items():
            if rng.random() < hostile / 3:
                continue
            if rng.random() < hostile / 2:
                body[name] = rng.choice([None, 1, -1, 1.5, True, [], {}, ["x"], "x" * 30_000, "\x00", "é",
                                         {"$gt": ""}, 2**70, -(2**63)])
                continue
            ann = info.annotation
            value = self._value(name, ann, hostile=hostile / 2)
            if typing.get_origin(ann) is list:
                n = rng.choice([0, 1, 3, 101])
                body[name] = [str(self._value("q", hostile=hostile)) for _ in range(n)]
            elif ann is int:
                body[name] = _int_or_str(value)
            elif ann is bool:
                body[name] = value in ("true", "1", "on")
            else:
                body[name] = str(value)
        req.content = json.dumps(body).encode()

    def _upload(self) -> bytes:
        rng = self.rng
        recs = [r for r in _records() if rng.random() < 0.08]
        lines = [r if isinstance(r, bytes) else json.dumps(r).encode() for r in recs]
        n = rng.randint(0, 10**6)  # fresh hostile DOIs, so that the store changes under the fuzz
        lines.append(json.dumps({"doi": f"10.9999/new {n}?#%\x01", "title": f"Uploaded hostile record {n}",
                                 "abstract": ABSTRACT}).encode())
        return rng.choice([b"\n".join(lines)] * 2 + [b"\x1f\x8b\x08garbage", b"", b"id,title\n1,\xff"])

    def _who(self, route: RouteInfo) -> tuple[str, bytes | None]:
        rng = self.rng
        if route.path == "/signout" and self.spare and rng.random() < 0.5:
            return "spare", self.cookie("spare", self.spare.pop())
        if route.path == "/settings/delete" and self.victims and rng.random() < 0.5:
            return "victim", self.cookie("victim", self.victims[-1][0])
        # ada's own session must outlive the run: signing out ends only spare ones
        persona = rng.choices(["visitor", "ada", "anonymous", "forged"],
                              weights=[6, 0 if route.path == "/signout" else 6, 2, 1])[0]
        return persona, self.cookie(persona)

    def random_request(self, route: RouteInfo | None = None, method: str | None = None) -> Req:
        """A request to ``route`` (else one picked by WEIGHTS): half of them well-formed (every value of
        its kind, a valid CSRF token), half hostile (values from HOSTILE, tokens forged, bodies broken)."""
        rng = self.rng
        if route is None:
            route = rng.choices(self.routes, weights=[WEIGHTS.get(r.path, 1) for r in self.routes])[0]
        hostile = rng.choice([0.0, 0.5])
        if method is None:
            method = rng.choice(route.methods)
            roll = rng.random()
            if method == "GET" and roll < 0.2:
                method = "HEAD"
            elif roll < hostile / 15:
                method = rng.choice(["PUT", "DELETE", "PATCH", "OPTIONS", "POST", "GET"])
        persona, cookie = self._who(route)
        path = self._path(route, hostile)
        if path.startswith("/static"):
            path = "/static/" + rng.choice(["style.css", "app.js", "favicon.svg", "../app.py", "%2e%2e/x",
                                            "nope", "%ff", ""])
        qs = self._query(route, hostile) if method in ("GET", "HEAD") or rng.random() < hostile / 2 else ""
        if route.path == "/unsubscribe" and method == "POST":  # one-click: the token is in the URL
            qs = query_string([("token", self._value("token", hostile=hostile, path="/unsubscribe"))])
        req = Req(method, path + ("?" + qs if qs else ""), route.path, persona=persona, cookie=cookie)
        if method not in ("GET", "HEAD"):
            self._body(route, req, hostile)
        if route.path.startswith("/api/v1/admin/"):
            req.headers["authorization"] = rng.choice([f"Bearer {ADMIN_TOKEN}"] * 2 + [
                "Bearer wrong", "Basic x", "Bearer ", b"Bearer \xc3\xa9"])
        elif rng.random() < hostile / 10:
            req.headers[rng.choice(["authorization", "x-forwarded-for", "host", "accept", "referer"])] = \
                rng.choice([b"\xc3\xa9", b"Bearer \xff", b"evil.example", b"*/*;q=x", b"//evil.example"])
        return req

    def targeted(self) -> typing.Iterator[Req]:
        """Requests that must be in every run: each route with each of its methods, every hostile paper
        by every kind of link, a search page and feed per hostile record, and the known trouble spots."""
        visitor, ada = self.cookie("visitor"), self.cookie("ada")
        for route in self.routes:
            for method in route.methods:
                yield self.random_request(route, method)
        for q in ("-x", "-cat:cs.CL", "-x -y", "cat:cs.CL", "since:2026", "-graph"):
            for path in ("/search", "/api/v1/search", "/feeds/search.atom"):
                yield Req("GET", f"{path}?q={q_encode(q)}", path, cookie=visitor, tag="known")
            yield Req("GET", f"/search?q={q_encode(q)}&sort=newest", "/search", cookie=visitor, tag="known")
        for path in ("/", "/search?q=graph", "/trending", "/feeds/trending.atom", "/api/v1/stats",
                     "/feeds/search.atom?q=graph", f"/paper/{self.corpus.keys[0]}"):
            route = "/paper/{ref:path}" if path.startswith("/paper/") else urlsplit(path).path
            yield Req("HEAD", path, route, cookie=visitor, tag="known")
        # the hostile records themselves, through the write API (the fuzz's store already holds what it takes)
        yield Req("POST", "/api/v1/admin/ingest?format=jsonl&index=false", "/api/v1/admin/ingest",
                  {"authorization": f"Bearer {ADMIN_TOKEN}", "content-type": "application/x-ndjson"},
                  hostile_jsonl(), cookie=visitor, tag="known")
        for token in ("é", "\u0100", "€"):
            yield Req("POST", "/like", "/like", {"content-type": FORM},
                      query_string([("text", "graph"), (self.csrf_field, token)]).encode(), cookie=visitor,
                      tag="known")
        for page in ("/library", "/for-you", "/settings", "/api/v1/me/feed", "/library/export?format=json",
                     "/for-you?window=all", "/library/export?format=bibtex&tag=" + q_encode(TAGS[1])):
            yield Req("GET", page, urlsplit(page).path, persona="ada", cookie=ada, tag="known")
        for period in ("day", "week", "month"):
            yield Req("GET", f"/feeds/trending.atom?period={period}", "/feeds/trending.atom", cookie=visitor,
                      tag="known")
            yield Req("GET", f"/trending?period={period}", "/trending", persona="ada", cookie=ada,
                      tag="known")
        for sort in ("newest", "relevance", "trending"):
            yield Req("GET", f"/feeds/search.atom?q=hostile+metadata&sort={sort}", "/feeds/search.atom",
                      cookie=visitor, tag="known")
        for i, key in enumerate(self.corpus.hostile_keys):
            p = ref_path(key, ("link", "encoded", "component")[i % 3])
            persona, cookie = ("visitor", visitor) if i % 2 else ("ada", ada)
            yield Req("GET", f"/paper/{p}", "/paper/{ref:path}", persona=persona, cookie=cookie, tag="key")
            yield Req("GET", f"/api/v1/papers/{p}", "/api/v1/papers/{ref:path}", cookie=visitor, tag="key")
            yield Req("GET", f"/api/v1/papers/{p}/related", "/api/v1/papers/{ref:path}/related",
                      cookie=visitor, tag="key")
        for marker in MARKERS:
            # lexical: a hybrid search sorted newest puts dated neighbours before an undated exact match
            yield Req("GET", f"/feeds/search.atom?q={marker}&mode=lexical", "/feeds/search.atom",
                      cookie=visitor, tag="marker")
            yield Req("GET", f"/search?q={marker}", "/search", persona="ada", cookie=ada, tag="marker")
        for ref in self.corpus.refs:
            yield Req("GET", f"/paper/{ref_path(ref, 'encoded')}", "/paper/{ref:path}", cookie=visitor,
                      tag="ref")

    # -- running ------------------------------------------------------------------------------------------
    def run(self, n: int, link_checks: int = 400, targeted_share: float = 1.0) -> dict:
        """Seed, then ``n`` requests: the targeted ones first (at most ``targeted_share`` of ``n``, in their
        order: routes and known trouble first), random ones after; then follow the links handed out."""
        start = time.perf_counter()
        paperradar_log = logging.getLogger("paperradar")
        paperradar_log.addHandler(self.errors)
        try:
            self.seed()
            seeded = self.sent
            targeted = itertools.islice(self.targeted(), max(len(self.routes) * 2, int(n * targeted_share)))
            planned = itertools.chain(targeted, iter(self.random_request, None))
            while self.sent - seeded < n:
                self.send(next(planned))
            fuzzed = self.sent - seeded
            broken = self.follow_links(link_checks)
        finally:
            paperradar_log.removeHandler(self.errors)
        return self.report(fuzzed, seeded, broken, time.perf_counter() - start)

    def follow_links(self, limit: int) -> list[dict]:
        """GET each distinct paper link the pages and feeds gave (awkward ones first), as a browser would
        send it: it must open the paper."""
        def plain(h: str) -> bool:
            return h.isascii() and h.replace("/", "").replace(".", "").replace(":", "").isalnum()

        links = sorted(self.links, key=lambda h: (plain(h), h))[:limit]
        broken = []
        for href in links:
            r = self.send(Req("GET", as_browser(href), "/paper/{ref:path}",
                              cookie=self.cookie("visitor"), tag="link"))
            if r is not None and r.status_code != 200:
                broken.append({"href": href[:300], "status": r.status_code,
                               "found_on": self.links[href][:300]})
        self.links_followed = len(links)
        return broken

    def unexercised(self) -> list[str]:
        return [f"{m} {r.path}" for r in self.routes for m in r.methods
                if (id(r.endpoint), m) not in self.exercised]

    def report(self, fuzzed: int, seeded: int, broken: list[dict], took: float) -> dict:
        causes: dict[str, dict] = {}
        for f in self.failures:
            c = causes.setdefault(f"{f.kind}: {f.cause or f.detail}", {
                "kind": f.kind, "cause": f.cause or f.detail, "count": 0,
                "example": {"method": f.method, "url": f.url[:500], "status": f.status, "persona": f.persona,
                            "detail": f.detail[:300], "body": f.body[:200]}})
            c["count"] += 1
        return {
            "requests": fuzzed,
            "seed_requests": seeded,
            "link_checks": self.links_followed,
            "store": {"papers": self.corpus.papers, "hostile_records_accepted": self.corpus.hostile_accepted,
                      "hostile_records_rejected": len(self.corpus.rejected), "demo_papers": self.corpus.demo,
                      "rejects": self.corpus.rejected, "ingest_crashes": self.corpus.ingest_crashes},
            "routes": len(self.routes),
            "unexercised_routes": self.unexercised(),
            "requests_by_phase": dict(self.phases.most_common()),
            "requests_by_route": {k: {str(s): n for s, n in sorted(v.items())}
                                  for k, v in sorted(self.route_status.items())},
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "server_errors": sum(v for k, v in self.statuses.items() if k >= 500),
            "feeds_checked": self.feeds_checked,
            "malformed_feeds": self.malformed_feeds,
            "html_pages_checked": self.html_checked,
            "failures_total": len(self.failures),
            "failure_causes": sorted(causes.values(), key=lambda c: (c["kind"], -c["count"])),
            "failures": [f.to_dict() for f in self.failures[:MAX_FAILURES_LISTED]],
            "broken_links": broken,
            "head_405": dict(sorted(self.head_405.items())),
            "slow_requests": sorted(self.slow, key=lambda s: -s["seconds"])[:50],
            "unsendable": dict(self.unsendable),
            "seconds": round(took, 1),
        }


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _int_or_str(value: str):
    try:
        return int(value)
    except ValueError:
        return value


def recorder(app) -> _Recorder:
    return _Recorder(app)


def summary(report: dict) -> str:
    """The failures, grouped by cause, one example each: for an assertion message."""
    lines = []
    for c in report["failure_causes"]:
        e = c["example"]
        lines.append(f"{c['count']:5d} x {c['kind']}: {c['cause']}\n"
                     f"        {e['method']} {e['url'][:300]} -> {e['status']} ({e.get('detail', '')[:200]})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--demo", type=int, default=300, help="demo corpus papers beside the hostile records")
    ap.add_argument("--link-checks", type=int, default=400)
    args = ap.parse_args(argv)

    sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # this checkout's package; the tests' SMTP sink
    from _machine import describe
    from fastapi.testclient import TestClient
    from mailsink import MailSink

    from paperradar.embed import Embedder

    logging.getLogger("paperradar").propagate = False  # logged tracebacks go into the report, not stderr
    logging.getLogger("python_multipart").setLevel(logging.ERROR)  # a warning per broken multipart body
    t0 = time.perf_counter()
    embedder = Embedder.load(CACHE / "models", threads=1)
    with tempfile.TemporaryDirectory(prefix="fuzz-web-") as tmp, MailSink() as sink:
        data = Path(tmp) / "data"
        corpus = build_corpus(data, embedder, args.demo)
        build_s = time.perf_counter() - t0
        engine = open_engine(data, embedder)
        app = make_app(data, engine, app_env(sink.env))
        try:
            with TestClient(recorder(app), base_url=BASE, raise_server_exceptions=False) as client:
                report = Fuzzer(client, app, corpus, sink, args.seed).run(args.requests, args.link_checks)
                courier = getattr(app.state, "courier", None)
                if courier is not None:  # a mail under way gets to finish before the sink stops
                    courier.wait()
        finally:
            close_engine(engine)
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    report = {"benchmark": "fuzz_web", "commit": commit, "seed": args.seed,
              "build_seconds": round(build_s, 1), **report,
              "requests_per_second": round(report["requests"] / max(report["seconds"], 1e-9), 1),
              "machine": describe()}
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
