"""One contract, every source: what the ingest driver relies on, checked on each source's recorded real
input (network sources through httpx's mock transport, with a clock that only moves when they sleep).

- a source yields only Paper, Rejected and Checkpoint items, and at least one paper;
- every paper passes validation and carries the source's own name, which the merge rules rank;
- every rejected record says where it was;
- ingesting the same input twice changes nothing the second time;
- a damaged input (cut in half) gives papers, rejects or InputUnusable — never another exception.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path

import httpx
import pytest

from paperradar.errors import InputUnusable
from paperradar.http import PoliteClient
from paperradar.ingest import ingest
from paperradar.models import SOURCE_RANK, Paper, Rejected
from paperradar.sources import FILE_FORMATS
from paperradar.sources.arxiv_api import ArxivAPISource
from paperradar.sources.arxiv_oai import OAISource
from paperradar.sources.arxiv_snapshot import SnapshotSource
from paperradar.sources.base import Checkpoint
from paperradar.sources.hf_daily import HFDailySource
from paperradar.store import Store

FIXTURES = Path(__file__).parent / "fixtures"
API_FEED = FIXTURES / "arxiv_api" / "sotawhat" / "arxiv_transformer.xml"
OAI_PAGE = FIXTURES / "oai" / "hepcrawl" / (
    "functional__arxiv__fixtures__http_server__records__arxiv-physics-hep-th.xml")
SNAPSHOT = FIXTURES / "kaggle_snapshot" / "wanng-ide_arxiv-metadata-oai-snapshot.sample.json"
HF_DAILY = FIXTURES / "hf_daily_papers" / "sotawhat_hf_daily_papers.json"
HF_PAGE = sorted((FIXTURES / "hf_pages").glob("*.txt"))[0]
JSONL = FIXTURES / "corpus_jsonl" / "arxiv-119k.head.jsonl.gz"


def _client(body: bytes) -> PoliteClient:
    """A client whose every request is answered with ``body`` (one page, no resumption token)."""
    now = [1000.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    handler = lambda request: httpx.Response(200, content=body)  # noqa: E731
    return PoliteClient(transport=httpx.MockTransport(handler), sleep=sleep, clock=lambda: now[0])


def _csv(tmp: Path, rows: int = 40) -> Path:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "title", "abstract", "authors", "categories", "update_date"])
    with gzip.open(JSONL, "rt") as f:
        for _, line in zip(range(rows), f, strict=False):
            r = json.loads(line)
            authors, cats = r.get("authors") or "", r["categories"]
            writer.writerow([r["id"], r["title"], r["abstract"],
                             ", ".join(authors) if isinstance(authors, list) else authors,
                             " ".join(cats) if isinstance(cats, list) else cats, r.get("update_date", "")])
    path = tmp / "papers.csv"
    path.write_text(out.getvalue())
    return path


def _copy(src: Path, tmp: Path, name: str | None = None) -> Path:
    dst = tmp / (name or src.name)
    dst.write_bytes(src.read_bytes())
    return dst


def _cut(path: Path) -> Path:
    """The first half of the file's (uncompressed) bytes."""
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    cut = path.with_name("cut-" + path.name.removesuffix(".gz"))
    cut.write_bytes(data[: len(data) // 2])
    return cut


# Each source: a name, and a function (tmp dir, damaged?) -> a fresh source over its recorded input.
SOURCES = {
    "arxiv": lambda tmp, cut: ArxivAPISource(
        query="transformer", max_results=10, client=_client(
            API_FEED.read_bytes()[: len(API_FEED.read_bytes()) // 2] if cut else API_FEED.read_bytes())),
    "oai": lambda tmp, cut: OAISource(
        set_spec="physics", from_date="2017-12-14", client=_client(
            OAI_PAGE.read_bytes()[: len(OAI_PAGE.read_bytes()) // 2] if cut else OAI_PAGE.read_bytes())),
    "snapshot": lambda tmp, cut: SnapshotSource(str(_cut(_copy(SNAPSHOT, tmp)) if cut else SNAPSHOT)),
    "hf-daily": lambda tmp, cut: HFDailySource(path=str(_cut(_copy(HF_DAILY, tmp)) if cut else HF_DAILY)),
    "page": lambda tmp, cut: FILE_FORMATS["hf-page"].open(str(_cut(_copy(HF_PAGE, tmp)) if cut else HF_PAGE)),
    "jsonl": lambda tmp, cut: FILE_FORMATS["jsonl"].open(str(_cut(_copy(JSONL, tmp)) if cut else JSONL)),
    "csv": lambda tmp, cut: FILE_FORMATS["csv"].open(str(_cut(_csv(tmp)) if cut else _csv(tmp))),
}


def test_every_source_is_in_the_contract():
    """A new source module is covered here, or this fails."""
    import importlib
    import pkgutil

    import paperradar.sources as package
    from paperradar.sources.base import Source

    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"paperradar.sources.{module.name}")

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    named = {c.name for c in subclasses(Source) if c.name and c.__module__.startswith("paperradar.sources")}
    assert named == set(SOURCES)


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_a_source_yields_valid_papers_and_positioned_rejects(name, tmp_path):
    source = SOURCES[name](tmp_path, False)
    items = list(source)
    assert items and all(isinstance(i, (Paper, Rejected, Checkpoint)) for i in items)
    papers = [i for i in items if isinstance(i, Paper)]
    assert papers, f"{name} yielded no paper from its recorded input"
    for p in papers:
        assert p.validate() is p
        assert p.source == source.name and p.source in SOURCE_RANK
    for r in items:
        if isinstance(r, Rejected):
            assert r.where.strip() and r.reason.strip()


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_ingesting_a_source_twice_changes_nothing_the_second_time(name, tmp_path):
    with Store(tmp_path / "s.sqlite3") as store:
        first = ingest(store, SOURCES[name](tmp_path, False))
        seq = store.max_seq()
        again = ingest(store, SOURCES[name](tmp_path, False))
        assert first.added > 0
        assert (again.added, again.updated) == (0, 0) and store.max_seq() == seq


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_a_damaged_input_gives_papers_rejects_or_input_unusable(name, tmp_path):
    try:
        items = list(SOURCES[name](tmp_path, True))
    except InputUnusable as e:
        assert str(e).strip()
        return
    assert all(isinstance(i, (Paper, Rejected, Checkpoint)) for i in items)
    for p in items:
        if isinstance(p, Paper):
            p.validate()
