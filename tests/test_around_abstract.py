"""What surrounds the abstract, stored and searchable: Hugging Face's summary, keywords, organisation and
repository (from the recorded daily-papers response), links and venue derived from the abstract and comment
(paperradar.extract) and kept current when those change, and the has: / venue: / org: filters in both the
word index and the dense path. Real SQLite in tmp_path."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from paperradar.ingest import ingest
from paperradar.models import Paper
from paperradar.search import SearchEngine
from paperradar.sources.hf_daily import HFDailySource
from paperradar.store import Store
from paperradar.store.schema import MIGRATIONS

HF_DAILY = Path(__file__).parent / "fixtures" / "hf_daily_papers" / "sotawhat_hf_daily_papers.json"


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "p.sqlite3") as s:
        yield s


def arxiv(arxiv_id: str, comment: str | None = None, abstract: str = "We study things.", **kw) -> Paper:
    return Paper(title=f"Paper {arxiv_id}", source="oai", arxiv_id=arxiv_id, abstract=abstract,
                 comment=comment, categories=["cs.CL"], submitted="2026-06-01", **kw)


def test_hugging_face_fields_are_stored_from_the_recorded_response(store):
    ingest(store, HFDailySource(path=str(HF_DAILY)))
    p = store.get("2606.13681")
    assert p.hf_summary.startswith("EvoArena benchmark and EvoMem memory paradigm")
    assert p.tldr == (p.hf_summary, "huggingface")
    assert p.hf_keywords[:2] == ["large language model agents", "EvoArena"]
    assert p.organization == {"name": "MIT", "fullname": "Massachusetts Institute of Technology"}
    assert p.code_url == "https://github.com/Aiden0526/EvoArena" and p.github_stars == 9
    assert [(link["url"], link["kind"], link["source"]) for link in p.links] == [
        ("https://github.com/Aiden0526/EvoArena", "code", "hf"),
        ("https://aiden0526.github.io/EvoArena/", "project", "hf")]
    assert p.hf_comments == 3
    # idempotent: the same response again changes nothing
    assert ingest(store, HFDailySource(path=str(HF_DAILY))).unchanged == 30


def test_hostile_values_from_a_source_never_become_links(store, tmp_path):
    items = json.loads(HF_DAILY.read_text())[:3]
    bad = copy.deepcopy(items)
    bad[0]["paper"]["githubRepo"] = "javascript:alert(1)//github.com/a/b"
    bad[1]["paper"]["githubRepo"] = "https://github.com.evil.io/owner/repo"
    bad[1]["paper"]["projectPage"] = "data:text/html,<script>alert(1)</script>"
    bad[2]["paper"]["ai_keywords"] = ["<img src=x onerror=alert(1)>", 7, None]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    report = ingest(store, HFDailySource(path=str(path)))
    assert report.added == 3 and report.rejected == 0
    for item in bad[:2]:
        assert store.get(item["paper"]["id"]).links == []
    assert store.get(bad[2]["paper"]["id"]).hf_keywords == ["<img src=x onerror=alert(1)>"]  # text: escaped


def test_links_and_venue_are_derived_and_follow_a_changed_comment(store):
    store.upsert_papers([arxiv("2606.00001", "Accepted to NeurIPS 2025 (spotlight). Code: "
                                             "https://github.com/ada/lovelace.")])
    p = store.get("2606.00001")
    assert p.links == [{"url": "https://github.com/ada/lovelace", "kind": "code", "host": "github.com",
                        "source": "text"}]
    assert p.venue["name"] == "NeurIPS" and p.venue["year"] == 2025
    assert p.venue_label.startswith("NeurIPS 2025")
    seq = p.seq
    # a newer version's comment: the venue and links follow, with a new change number
    store.upsert_papers([arxiv("2606.00001", "ICLR 2026 (oral)", version=2)])
    p = store.get("2606.00001")
    assert p.venue_label == "ICLR 2026 (oral)" and p.links == [] and p.seq > seq
    assert store.upsert_papers([arxiv("2606.00001", "ICLR 2026 (oral)", version=2)]).unchanged == 1


def test_the_migration_derives_stored_papers_and_renumbers_only_those_with_facets(tmp_path, monkeypatch):
    import paperradar.store as store_module

    path = tmp_path / "old.sqlite3"
    monkeypatch.setattr(store_module, "MIGRATIONS", MIGRATIONS[:7])  # before "around the abstract"
    with Store(path) as old, old.transaction():
        for n, (pid, comment) in enumerate([("2606.00001", "Accepted at CVPR 2025"),
                                            ("2606.00002", "12 pages"),
                                            ("2606.00003", "Code at https://gitlab.com/x/y")], 1):
            old.db.execute("INSERT INTO papers(key, arxiv_id, title, title_norm, abstract, comment, "
                           "first_seen, seq) VALUES (?, ?, ?, ?, 'We study things.', ?, "
                           "'2026-06-01T00:00:00Z', ?)", (pid, pid, f"Paper {n}", f"paper {n}", comment, n))
        old.db.execute("UPDATE state SET value = '3' WHERE key = 'seq'")
    monkeypatch.setattr(store_module, "MIGRATIONS", MIGRATIONS)
    with Store(path) as new:
        got = {p.key: p for p in new.changed_since(0)}
        assert got["2606.00001"].venue["name"] == "CVPR" and got["2606.00001"].seq == 4
        assert got["2606.00002"].venue is None and got["2606.00002"].seq == 2  # nothing to index again
        assert got["2606.00003"].links[0]["url"] == "https://gitlab.com/x/y" and got["2606.00003"].seq == 5
        assert new.max_seq() == 5


@pytest.fixture(scope="module")
def engine(tmp_path_factory, embedder):
    store = Store(tmp_path_factory.mktemp("facets") / "e.sqlite3")
    ingest(store, HFDailySource(path=str(HF_DAILY)))
    store.upsert_papers([
        arxiv("2606.90001", "Accepted to CVPR 2025", abstract="Diffusion models for video generation."),
        arxiv("2606.90002", "CVPR2025 workshop", abstract="Diffusion models for image editing."),
        arxiv("2606.90003", "ICLR 2026", abstract="Diffusion models with code at https://github.com/x/diff."),
        arxiv("2606.90004", None, abstract="Diffusion models without any venue."),
    ])
    e = SearchEngine(store, embedder=embedder, embed_threads=1)
    e.update()
    yield e
    e.close()
    store.close()


MINE = {"2606.90001", "2606.90002", "2606.90003", "2606.90004"}


@pytest.mark.parametrize("mode", ["lexical", "hybrid", "dense"])
def test_facet_filters_in_every_mode(engine, mode):
    def keys(q):  # among the four papers made here (the recorded HF papers have some diffusion too)
        return {h.paper.key for h in engine.search(q, limit=50, mode=mode).hits} & MINE

    assert keys("diffusion venue:cvpr") == {"2606.90001", "2606.90002"}
    assert keys('diffusion venue:"CVPR 2025"') == {"2606.90001", "2606.90002"}
    assert keys("diffusion venue:cvpr venue:iclr") == {"2606.90001", "2606.90002", "2606.90003"}
    assert keys("diffusion has:code") == {"2606.90003"}
    assert keys("diffusion has:code venue:cvpr") == set()  # different facets: all of them
    assert "2606.90003" not in keys("diffusion -has:code") and "2606.90004" in keys("diffusion -has:code")


def test_facets_alone_and_organisations(engine):
    with_code = {h.paper.key for h in engine.search("has:code", limit=100, mode="lexical").hits}
    store = engine.store
    expected = {p.key for p in store.changed_since(0) if any(link["kind"] == "code" for link in p.links)}
    assert with_code == expected and len(expected) > 10
    mit = {h.paper.key for h in engine.search("org:mit", limit=50).hits}
    assert mit and all(store.get(k).organization["name"] == "MIT" for k in mit)
    assert mit == {h.paper.key for h in engine.search('org:"Massachusetts Institute of Technology"',
                                                      limit=50).hits}
