"""Core calls the web app and the CLI make instead of doing the work themselves: a digest preview for an
anonymous visitor (Digests.preview) or a subscriber (Digests.preview_for), and the For you feed of a tag
named by the user (Recommender.feed(tag=...))."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from paperradar import config, mail
from paperradar.digest import Digests, Preferences, SubscribeError
from paperradar.errors import NotFound
from paperradar.library import Library
from paperradar.recommend import Recommender
from paperradar.search import SearchEngine
from paperradar.store import Store

MORNING = dt.datetime(2026, 6, 11, 8, 0, tzinfo=dt.UTC)
TOKEN = re.compile(r"token=([0-9]+\.[0-9]+\.[0-9a-f]{40})")


@pytest.fixture
def engine(data, shared_engine):
    store = Store(data / "paperradar.sqlite3")
    e = SearchEngine(store, embedder=shared_engine.embedder, embed_threads=1)
    yield e
    e.close()
    store.close()


@pytest.fixture
def digests(engine, data, mailbox) -> Digests:
    return Digests(engine.store, engine, config.load(mailbox.env, data_dir=data))


def test_an_anonymous_preview_is_composed_by_the_core_with_links_for_nobody(digests):
    d = digests
    begins: list[str] = []
    d.store.db.set_trace_callback(lambda sql: begins.append(sql) if sql.startswith("BEGIN") else None)
    text, html = d.preview(Preferences(trending=True, searches=["graph neural networks"], max_papers=5),
                           now=MORNING)
    d.store.db.set_trace_callback(None)
    assert begins == []  # nothing recorded or queued
    assert "Trending" in text and "Your search: graph neural networks" in text and "Trending" in html
    assert "<script" not in html.lower()
    tokens = TOKEN.findall(text)
    assert tokens, text
    for token in tokens:  # signed with a throwaway key: good for no subscriber, not even "number 0"
        sid, expires, _ = mail.parse_token(token)
        assert sid == 0
        for purpose in ("unsubscribe", "manage"):
            assert token != mail.make_token(d.mail.secret, purpose, 0, "preview", expires)
    assert d.preview(Preferences(), now=MORNING)[0].count("token=") >= 2  # a fresh key each time
    with pytest.raises(SubscribeError):
        d.preview(Preferences(trending=False, searches=[]), now=MORNING)


def test_a_subscribers_preview_has_their_own_links(digests):
    d = digests
    d.subscribe("ada@example.org", Preferences(trending=True), client="c", now=MORNING)
    sub = d.subs.by_email("ada@example.org")
    text, html = d.preview_for(sub, now=MORNING)
    assert f"token={d.token('unsubscribe', sub)}" in text and "Trending" in html
    assert d.subs.mails(sub.id)[-1][2] == "confirm"  # no digest queued by a preview


def test_the_feed_of_a_tag_named_by_the_user(engine):
    store = engine.store
    user = store.accounts.ensure_user("ada@example.org", "2026-01-01T00:00:00Z")
    lib = Library(store)
    papers = store.newest(limit=6)
    for p in papers[:4]:
        lib.save(user, p.key, "Graphs")
    for p in papers[4:]:
        lib.save(user, p.key, "other")
    user = store.accounts.user(user.id)
    rec = Recommender(store, engine)
    by_name = rec.feed(user, tag="graphs", limit=5, now=MORNING)  # tag names are case-insensitive
    by_id = rec.feed(user, store.accounts.tag(user.id, "Graphs").id, limit=5, now=MORNING)
    assert by_name.saved == by_id.saved == 4 and by_name.mode == "model"
    assert [r.paper.id for r in by_name.items] == [r.paper.id for r in by_id.items]
    assert rec.feed(user, tag=None, limit=5, now=MORNING).saved == 6
    with pytest.raises(NotFound, match="no tag 'nope'"):
        rec.feed(user, tag="nope", now=MORNING)
