"""Limits that hold whichever way data comes in (the tag limit for BibTeX imports too), and a database
that only its owner can read: it holds e-mail addresses and what each person reads."""

from __future__ import annotations

import os
import stat

import pytest

from paperradar.library import MAX_TAGS, Library, LibraryError
from paperradar.models import Paper
from paperradar.store import MIGRATIONS, Store

BIB = "@misc{a, title={Attention is all you need}, eprint={1706.03762}}\n"


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "paperradar.sqlite3")
    s.upsert_papers([Paper(title="Attention Is All You Need", source="arxiv", arxiv_id="1706.03762",
                           abstract="Transformers.", submitted="2017-06-12T17:57:34Z")])
    yield s
    s.close()


def test_an_import_cannot_make_a_tag_past_the_limit(store):
    user = store.accounts.ensure_user("ada@example.org", "2026-01-01T00:00:00Z")
    lib = Library(store)
    for i in range(MAX_TAGS):
        store.accounts.save(user.id, f"tag {i}", 1, "2026-01-01T00:00:00Z")
    with pytest.raises(LibraryError, match=f"at most {MAX_TAGS} tags"):
        lib.import_bibtex(user, BIB, "one too many")
    with pytest.raises(LibraryError, match=f"at most {MAX_TAGS} tags"):
        lib.import_bibtex(user, BIB)  # the default tag, "imported", is new too
    assert len(store.accounts.tags(user.id)) == MAX_TAGS
    assert lib.import_bibtex(user, BIB, "TAG 7").matched  # an existing tag (any case) takes it
    assert len(store.accounts.tags(user.id)) == MAX_TAGS


def modes(path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in sorted(path.parent.glob(path.name + "*"))}


@pytest.fixture
def umask_022():
    old = os.umask(0o022)  # what most systems use: files readable by everyone unless made otherwise
    yield
    os.umask(old)


def test_the_database_is_created_readable_by_its_owner_only(tmp_path, umask_022):
    path = tmp_path / "data" / "paperradar.sqlite3"
    with Store(path) as s:
        s.accounts.ensure_user("ada@example.org", "2026-01-01T00:00:00Z")
        s.count()  # a reader connection too
        assert modes(path) == {"paperradar.sqlite3": 0o600, "paperradar.sqlite3-shm": 0o600,
                               "paperradar.sqlite3-wal": 0o600}


def test_an_existing_readable_database_is_made_private_once(tmp_path, umask_022, monkeypatch):
    import paperradar.store as store_module

    path = tmp_path / "paperradar.sqlite3"
    monkeypatch.setattr(store_module, "MIGRATIONS", MIGRATIONS[:5])
    Store(path).close()
    monkeypatch.undo()
    os.chmod(path, 0o644)  # as older versions made it
    with Store(path):
        assert set(modes(path).values()) == {0o600}
    os.chmod(path, 0o640)  # the owner's own choice afterwards (a backup group, say) is kept
    with Store(path):
        assert modes(path)["paperradar.sqlite3"] == 0o640
