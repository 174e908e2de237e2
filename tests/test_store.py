"""The paper store: migrations, idempotent upserts, merging across sources, the change sequence."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paperradar.errors import NotFound, StoreError
from paperradar.models import Paper
from paperradar.store import MIGRATIONS, Store


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "papers.sqlite3")
    yield s
    s.close()


def arxiv_paper(**kw) -> Paper:
    base = dict(
        title="Attention Is All You Need", source="arxiv", arxiv_id="1706.03762", version=1,
        abstract="The dominant sequence transduction models are based on recurrent networks.",
        authors=["Ashish Vaswani", "Noam Shazeer"], categories=["cs.CL", "cs.LG"],
        submitted="2017-06-12T17:57:34Z", updated="2017-06-12T17:57:34Z",
    )
    base.update(kw)
    return Paper(**base)


def test_schema_is_migrated_once_and_in_wal_mode(tmp_path):
    path = tmp_path / "p.sqlite3"
    s = Store(path)
    assert s.schema_version() == len(MIGRATIONS)
    assert s.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert s.migrate() == []  # nothing left to apply
    s.close()
    rows = sqlite3.connect(path).execute("SELECT version, name FROM schema_migrations").fetchall()
    assert [r[0] for r in rows] == list(range(1, len(MIGRATIONS) + 1))


def test_database_from_a_newer_version_is_refused(tmp_path):
    path = tmp_path / "p.sqlite3"
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute("INSERT INTO schema_migrations VALUES (999, 'future', 'now')")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="newer"):
        Store(path)


def test_store_open_uses_the_data_dir(tmp_path):
    with Store.open(tmp_path / "data") as s:
        assert s.path == tmp_path / "data" / "paperradar.sqlite3"
    assert (tmp_path / "data" / "paperradar.sqlite3").exists()


def test_upsert_is_idempotent_and_keeps_the_change_sequence(store):
    papers = [arxiv_paper(), arxiv_paper(arxiv_id="2503.11731", title="Industrial-Grade Sensor Simulation")]
    first = store.upsert_papers(papers)
    assert (first.added, first.updated, first.unchanged) == (2, 0, 0)
    seq = store.max_seq()
    again = store.upsert_papers(papers)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 2)
    assert store.max_seq() == seq
    assert store.changed_since(seq) == []
    assert [p.key for p in store.changed_since(0)] == ["1706.03762", "2503.11731"]


def test_newer_version_replaces_older_and_older_never_wins(store):
    store.upsert_papers([arxiv_paper()])
    v1 = store.get("1706.03762")
    store.upsert_papers([arxiv_paper(version=5, title="Attention Is All You Need (v5)",
                                     updated="2023-08-02T00:41:18Z", journal_ref=None)])
    v5 = store.get("1706.03762v5")
    assert (v5.version, v5.title, v5.updated) == (5, "Attention Is All You Need (v5)", "2023-08-02T00:41:18Z")
    assert v5.id == v1.id and v5.seq > v1.seq
    counts = store.upsert_papers([arxiv_paper()])  # v1 again, e.g. from an old snapshot
    assert counts.unchanged == 1
    assert store.get("1706.03762").title == "Attention Is All You Need (v5)"


def test_hf_upvotes_merge_into_arxiv_metadata(store):
    store.upsert_papers([arxiv_paper()])
    hf = Paper(title="Attention is all you need", source="hf-daily", arxiv_id="1706.03762",
               abstract="short", authors=["A. Vaswani"], upvotes=42, announced="2017-06-13")
    counts = store.upsert_papers([hf])
    assert counts.updated == 1
    p = store.get("1706.03762")
    assert p.upvotes == 42
    assert p.title == "Attention Is All You Need"  # arXiv metadata outranks Hugging Face's
    assert p.authors == ["Ashish Vaswani", "Noam Shazeer"]
    assert p.announced == "2017-06-13"  # but HF fills what arXiv did not say
    assert p.sources == ["arxiv", "hf-daily"]
    assert store.upsert_papers([hf]).unchanged == 1
    # Upvotes move: the latest report wins.
    store.upsert_papers([Paper(title="x", source="hf-daily", arxiv_id="1706.03762", upvotes=50)])
    assert store.get("1706.03762").upvotes == 50


def test_title_only_paper_is_rekeyed_when_its_arxiv_id_arrives(store):
    page = Paper(title="Attention Is All You Need", source="page", abstract="From the saved page.")
    store.upsert_papers([page])
    before = store.get("Attention is all you need")
    assert before.key == "title:attention is all you need" and before.arxiv_id is None
    counts = store.upsert_papers([arxiv_paper()])
    assert (counts.added, counts.updated) == (0, 1)
    assert store.count() == 1
    after = store.get("1706.03762")
    assert after.id == before.id  # derived indexes keep their document id
    assert after.abstract.startswith("The dominant")  # arXiv outranks the page
    assert after.sources == ["page", "arxiv"]
    assert after.abs_url == "https://arxiv.org/abs/1706.03762"
    # The page again: merges into the arXiv paper, changes nothing.
    assert store.upsert_papers([page]).unchanged == 1
    assert store.count() == 1


def test_page_after_arxiv_merges_by_title(store):
    store.upsert_papers([arxiv_paper()])
    counts = store.upsert_papers([Paper(title="Attention is all you need!", source="page", abstract="x")])
    assert counts.updated == 1 and store.count() == 1
    assert store.get("1706.03762").sources == ["arxiv", "page"]


def test_title_and_arxiv_record_in_one_batch(store):
    counts = store.upsert_papers([Paper(title="Attention Is All You Need", source="page"), arxiv_paper()])
    assert (counts.added, counts.updated) == (1, 0) and store.count() == 1
    assert store.get("1706.03762").sources == ["page", "arxiv"]


def test_doi_keyed_paper_merges_with_arxiv_record(store):
    store.upsert_papers([Paper(title="Some Journal Paper", source="csv", doi="10.1000/XYZ")])
    assert store.get("10.1000/xyz").key == "doi:10.1000/xyz"
    store.upsert_papers([arxiv_paper(title="Some journal paper (preprint)", doi="10.1000/XYZ",
                                     arxiv_id="2101.00001")])
    assert store.count() == 1
    assert store.get("2101.00001").doi == "10.1000/XYZ"


def test_old_style_ids_and_lookup_forms(store):
    store.upsert_papers([arxiv_paper(arxiv_id="hep-th/9901001", version=2, title="Old style")])
    for ref in ("hep-th/9901001", "hep-th/9901001v2", "https://arxiv.org/abs/hep-th/9901001v1",
                "arxiv:hep-th/9901001", "Old Style"):
        assert store.get(ref).key == "hep-th/9901001"
    with pytest.raises(NotFound):
        store.get("2401.99999")


def test_stats(store):
    store.upsert_papers([
        arxiv_paper(announced="2017-06-13"),
        arxiv_paper(arxiv_id="2503.11731", title="B", categories=["cs.CV", "cs.RO"], announced="2025-03-18"),
        Paper(title="C", source="page"),
    ])
    s = store.stats()
    assert s["papers"] == 3 and s["with_arxiv_id"] == 2
    assert s["by_source"] == {"arxiv": 2, "page": 1}
    assert s["by_primary_category"] == {"(none)": 1, "cs.CL": 1, "cs.CV": 1}
    assert s["by_month"] == {"2025-03": 1, "2017-06": 1}


def test_state_round_trip(store):
    assert store.get_state("oai:arXiv:cs") is None
    with store.transaction():
        store.set_state("oai:arXiv:cs", {"resumption_token": "abc", "last_datestamp": "2024-01-02"})
    assert store.get_state("oai:arXiv:cs") == {"resumption_token": "abc", "last_datestamp": "2024-01-02"}


def test_a_failed_batch_leaves_nothing_behind(store):
    store.upsert_papers([arxiv_paper()])
    seq = store.max_seq()
    with pytest.raises(RuntimeError), store.transaction():
        store.upsert_papers([arxiv_paper(arxiv_id="2201.00001", title="Other")])
        raise RuntimeError("crash mid-batch")
    assert store.count() == 1 and store.max_seq() == seq


# Titles may collide across papers; a DOI belongs to one paper (records without an arXiv id may carry
# any of them).
_DOI_OF = {None: None, "2401.00001": "10.1/a", "2401.00002": None, "hep-th/9901001": "10.1/b"}


def _consistent_doi(p: Paper, use_doi: bool) -> Paper:
    if p.arxiv_id:
        p.doi = _DOI_OF[p.arxiv_id] if use_doi else None
    return p


_records = st.builds(
    _consistent_doi,
    st.builds(
    Paper,
    title=st.sampled_from(["Alpha", "Beta paper", "Gamma: a study", "alpha"]),
    source=st.sampled_from(["arxiv", "oai", "jsonl", "hf-daily", "page"]),
    arxiv_id=st.sampled_from([None, "2401.00001", "2401.00002", "hep-th/9901001"]),
    version=st.sampled_from([None, 1, 2, 3]),
    abstract=st.sampled_from(["", "one", "two"]),
    authors=st.lists(st.sampled_from(["A", "B", "C"]), max_size=3),
    upvotes=st.sampled_from([None, 0, 5]),
    doi=st.sampled_from([None, "10.1/a", "10.1/b"]),
    ),
    st.booleans(),
)


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(_records, max_size=6), max_size=4))
def test_reingesting_any_input_changes_nothing(tmp_path_factory, batches):
    with Store(tmp_path_factory.mktemp("h") / "p.sqlite3") as s:
        for batch in batches:
            s.upsert_papers(batch)
        snapshot = [p.to_dict() for p in s.changed_since(0, limit=1000)]
        seq = s.max_seq()
        for batch in batches:
            counts = s.upsert_papers(batch)
            assert counts.added == counts.updated == 0
        assert s.max_seq() == seq
        assert [p.to_dict() for p in s.changed_since(0, limit=1000)] == snapshot


def test_same_title_different_dois_stay_two_papers(store):
    store.upsert_papers([Paper(title="Erratum", source="csv", doi="10.1/x"),
                         Paper(title="Erratum", source="csv", doi="10.1/y")])
    assert store.count() == 2


# -- migrations of existing data ----------------------------------------------------------------------------
def test_stored_addresses_become_canonical_and_one_mailbox_one_account(tmp_path, monkeypatch):
    """Migration 5. Before it, "(1)victim@x" and "x0:victim@x;" passed the address check and were stored
    as typed while their mail went to "victim@x": one mailbox could own several accounts, each with a vote,
    and several subscriptions. After it, they are one account (library joined, one vote per paper) and one
    subscription, and addresses that never had a mailbox are left alone."""
    import paperradar.store as store_module

    path = tmp_path / "p.sqlite3"
    monkeypatch.setattr(store_module, "MIGRATIONS", MIGRATIONS[:4])  # a database of before the migration
    with Store(path) as old:
        with old.transaction():  # the papers table of then (today's code reads columns added since)
            p1, p2 = (old.db.execute("INSERT INTO papers(key, arxiv_id, title, title_norm, first_seen, seq) "
                                     "VALUES (?, ?, ?, ?, '2026-01-01T00:00:00Z', ?)", (k, k, t, t.lower(), n)
                                     ).lastrowid
                      for n, (k, t) in enumerate((("1706.03762", "Attention"), ("1810.04805", "BERT")), 1))
        acc = old.accounts
        users = [acc.ensure_user(e, f"2026-01-0{i}T00:00:00Z") for i, e in enumerate(
            ["Victim@Example.com", "(1)victim@example.com", "x0:victim@example.com;", "ok@example.org",
             "[x]broken@example.org"], 1)]
        v1, v2, v3, ok, broken = users
        for u in (v1, v2, v3, ok):
            old.add_vote(p1, u.voter)
        acc.save(v1.id, "reading", p1, "2026-01-05T00:00:00Z")
        acc.save(v2.id, "Reading", p2, "2026-01-06T00:00:00Z")  # the same tag, by name
        acc.save(v3.id, "other", p2, "2026-01-07T00:00:00Z")
        acc.dismiss(v3.id, p1, "2026-01-07T00:00:00Z")
        acc.add_session("hash3", v3.id, "2026-01-07T00:00:00Z", "2027-01-01T00:00:00Z")
        subs = old.subscriptions
        prefs = dict(trending=True, searches=[], max_papers=10, hour=8, tz="UTC", now="2026-01-01T00:00:00Z")
        pending = subs.upsert("(1)victim@example.com", nonce="a", **prefs)
        active = subs.upsert("x0:victim@example.com;", nonce="b", **prefs)
        subs.set_status(active.id, "active", now="2026-01-02T00:00:00Z")
        subs.enqueue(active.id, "digest", "2026-01-03", "x0:victim@example.com;", "<m@x>", b"m",
                     "2026-01-03T00:00:00Z")
        old.db.execute("INSERT INTO signin_links(email, client, nonce, created, expires) VALUES "
                       "('(1)victim@example.com', '1.2.3.4', 'n', '2026-01-01T00:00:00Z', "
                       "'2026-01-01T00:15:00Z')")
    monkeypatch.undo()

    with Store(path) as s:
        assert s.schema_version() == len(MIGRATIONS)
        rows = s.db.execute("SELECT id, email FROM users ORDER BY id").fetchall()
        assert rows == [(v1.id, "victim@example.com"), (ok.id, "ok@example.org"),
                        (broken.id, "[x]broken@example.org")]
        victim = s.accounts.user(v1.id)
        assert victim.created == "2026-01-01T00:00:00Z" and victim.library_version > v1.library_version
        assert s.vote_totals([p1]) == {p1: 2}  # the mailbox's one vote, and ok@'s
        assert [(t.name, t.papers) for t in s.accounts.tags(v1.id)] == [("other", 1), ("reading", 2)]
        assert s.accounts.dismissed_ids(v1.id) == [p1]
        assert s.accounts.session_user("hash3", "2026-06-01T00:00:00Z").id == v1.id
        assert s.db.execute("SELECT id, email, status FROM subscribers").fetchall() == [
            (active.id, "victim@example.com", "active")]
        assert s.db.execute("SELECT recipient FROM outbox").fetchall() == [("victim@example.com",)]
        assert s.db.execute("SELECT email, mailbox FROM signin_links").fetchall() == [
            ("victim@example.com", "victim@example.com")]
        assert pending.id not in {r[0] for r in s.db.execute("SELECT id FROM subscribers")}
