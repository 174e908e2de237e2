"""The core without a lock in the web handlers: every multi-step operation is one store transaction, every
write is inside one, and slow work (parsing, SMTP) happens outside. Real threads on one Store; the tests
assert outcomes (counts, states), never durations. Where a race needs a window to show, a check is made
slow on purpose (monkeypatched), so that the interleaving is certain either way."""

from __future__ import annotations

import datetime as dt
import re
import threading
import time

import pytest
from mailsink import links
from webclient import token_of

from paperradar import config, library, mail
from paperradar.accounts import Accounts
from paperradar.digest import Digests, Preferences
from paperradar.library import MAX_TAGS, Library, LibraryError
from paperradar.models import Paper
from paperradar.search import SearchEngine
from paperradar.store import Store
from paperradar.store.accounts import AccountStore

NOW = dt.datetime(2026, 6, 11, 9, 0, tzinfo=dt.UTC)
PAPERS = [Paper(title=f"Paper number {i} on graph networks", source="arxiv", arxiv_id=f"2606.{i:05d}",
                abstract=f"Abstract {i} about message passing.", authors=[f"Author {i}"],
                categories=["cs.LG"], announced="2026-06-10", submitted="2026-06-09T10:00:00Z")
          for i in range(1, 41)]
BIB = "\n".join(f"@misc{{k{i}, title={{Paper number {i} on graph networks}}, eprint={{2606.{i:05d}}}}}"
                for i in range(1, 41))


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "paperradar.sqlite3")
    s.upsert_papers(PAPERS)
    yield s
    s.close()


def settings_for(store: Store, sink, **env):
    return config.load({**sink.env, "PAPERRADAR_BASE_URL": "https://papers.test", **env},
                       data_dir=store.path.parent)


def together(*calls, timeout: float = 60) -> list:
    """Run each call in its own thread, released at once; their results (or the exceptions they raised)."""
    results: list = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = calls[i]()
        except Exception as e:  # noqa: BLE001 — the test looks at it
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "a thread is stuck"
    return results


class Writes:
    """Watches the store's write connection: how many transactions each operation opens, and any write
    made outside Store.transaction() (which, from another thread, would join someone else's transaction)."""

    def __init__(self, store: Store):
        self.store = store
        self.begins = 0
        self.outside: list[str] = []
        store.db.set_trace_callback(self._statement)

    def _statement(self, sql: str) -> None:
        if sql.startswith("BEGIN"):
            self.begins += 1
        elif re.match(r"\s*(INSERT|UPDATE|DELETE|REPLACE)\b", sql, re.I) and not self.store.in_transaction():
            self.outside.append(sql)

    def count(self, operation) -> int:
        """Transactions the operation opened."""
        before = self.begins
        operation()
        return self.begins - before


def test_each_operation_is_one_transaction_and_no_write_is_outside_one(store, mailbox):
    watch = Writes(store)
    a = Accounts(store, settings_for(store, mailbox))
    d = Digests(store, None, settings_for(store, mailbox))
    lib = Library(store)
    assert watch.count(lambda: a.request_sign_in("ada@example.org", client="c", now=NOW)) == 1
    (url,) = links(mailbox.wait(1)[0], "/signin/verify")
    users = []
    assert watch.count(lambda: users.append(a.verify(token_of(url), now=NOW))) == 1  # link used + account
    ada = users[0]
    for op in (lambda: a.start_session(ada, now=NOW), lambda: lib.save(ada, "2606.00001", "t1"),
               lambda: lib.save(ada, "2606.00002", "t2"), lambda: lib.unsave(ada, "2606.00002", "t2"),
               lambda: lib.rename_tag(ada, "t2", "t3"), lambda: lib.delete_tag(ada, "t3"),
               lambda: lib.vote(ada, "2606.00001"), lambda: lib.dismiss(ada, "2606.00003"),
               lambda: lib.import_bibtex(ada, BIB, "imported"),
               lambda: d.subscribe("bob@example.org", Preferences(), client="c", now=NOW),
               lambda: d.subscribe_verified(ada.email, Preferences(hour=7), now=NOW),
               lambda: d.set_preferences(d.token("manage", d.subs.by_email(ada.email)),
                                         Preferences(hour=9)),
               lambda: d.stop(ada.email)):
        assert watch.count(op) == 1
    bob = d.subs.by_email("bob@example.org")
    assert watch.count(lambda: d.confirm(d.token("confirm", bob), now=NOW)) == 1
    assert watch.count(lambda: d.unsubscribe(d.token("unsubscribe", bob))) == 1
    d.run(NOW)
    assert watch.outside == []
    assert d.subs.by_email(ada.email).hour == 9 and d.subs.by_email(ada.email).status == "unsubscribed"


def test_concurrent_imports_saves_and_votes_on_one_store(store):
    users = [store.accounts.ensure_user(f"u{i}@example.org", "2026-01-01T00:00:00Z") for i in range(4)]
    lib = Library(store)
    calls = [lambda u=u: lib.import_bibtex(u, BIB, "refs", now=NOW) for u in users]
    calls += [lambda u=u: lib.import_bibtex(u, BIB, "refs", now=NOW) for u in users]  # each twice at once
    calls += [lambda u=u, i=i: [lib.save(u, f"2606.{j:05d}", "saved") for j in range(1, 11)]
              for i, u in enumerate(users)]
    calls += [lambda u=u: [lib.vote(u, f"2606.{j:05d}") for j in range(1, 41)] for u in users]
    results = together(*calls)
    assert not [r for r in results if isinstance(r, Exception)], results
    reports = results[:8]
    for i, u in enumerate(users):
        first, second = reports[i], reports[i + 4]
        assert len(first.matched) == len(second.matched) == 40
        assert sorted([first.added, second.added]) == [0, 40]  # one of them added them all
        assert store.accounts.tag(u.id, "refs").papers == 40
        assert store.accounts.tag(u.id, "saved").papers == 10
        assert store.accounts.user(u.id).library_version == 2 + 10  # two imports, ten saves
    totals = store.vote_totals(p.id for p in store.get_many(range(1, 41)))
    assert set(totals.values()) == {4}


def test_the_tag_limit_holds_when_saves_race(store, monkeypatch):
    """Counting the tags and adding one are one transaction: ten saves into ten new tags, at once, for a user
    one tag short of the limit, make exactly one tag."""
    user = store.accounts.ensure_user("ada@example.org", "2026-01-01T00:00:00Z")
    for i in range(MAX_TAGS - 1):
        store.accounts.save(user.id, f"tag {i}", 1, "2026-01-01T00:00:00Z")
    read_tags = AccountStore.tags

    def slow_tags(self, user_id):  # the window between counting and writing, made wide
        tags = read_tags(self, user_id)
        time.sleep(0.05)
        return tags

    monkeypatch.setattr(AccountStore, "tags", slow_tags)
    lib = Library(store)
    results = together(*[lambda i=i: lib.save(user, "2606.00002", f"new {i}") for i in range(10)])
    assert sum(r is True for r in results) == 1
    assert all(isinstance(r, LibraryError) for r in results if r is not True)
    assert len(store.accounts.tags(user.id)) == MAX_TAGS


def test_a_stale_confirmation_cannot_confirm_a_subscriber_who_started_over(store, mailbox, monkeypatch):
    """Checking a link and acting on it are one transaction: a confirmation link checked just before its
    subscriber unsubscribed and asked again (a new nonce, pending) must not activate the new request."""
    d = Digests(store, None, settings_for(store, mailbox))
    d.subscribe("ada@example.org", Preferences(), client="c", now=NOW)
    sub = d.subs.by_email("ada@example.org")
    stale = d.token("confirm", sub, int(NOW.timestamp()) + 3600)
    checked, go_on = threading.Event(), threading.Event()
    check = mail.check_token

    def slow_check(*args, **kw):
        check(*args, **kw)
        if args[1] == "confirm":
            checked.set()
            go_on.wait(0.5)  # with the check inside the transaction, the restart waits for it

    monkeypatch.setattr(mail, "check_token", slow_check)
    confirming = threading.Thread(target=lambda: d.confirm(stale, now=NOW))
    confirming.start()
    assert checked.wait(10)
    d.unsubscribe(d.token("unsubscribe", d.subs.get(sub.id)))  # the owner starts over
    d.subscribe("ada@example.org", Preferences(), client="c", now=NOW + dt.timedelta(minutes=1))
    go_on.set()
    confirming.join(10)
    assert d.subs.get(sub.id).status == "pending"  # waits for the new confirmation


def test_a_slow_mail_server_holds_up_no_other_write(store, mailbox):
    """A sign-in waits on the SMTP server (held inside DATA); meanwhile other threads save, vote and
    subscribe on the same store."""
    a = Accounts(store, settings_for(store, mailbox))
    d = Digests(store, None, settings_for(store, mailbox))
    lib = Library(store)
    user = store.accounts.ensure_user("ada@example.org", "2026-01-01T00:00:00Z")
    mailbox.hold_at = 1
    signing_in = threading.Thread(target=lambda: a.request_sign_in("bob@example.org", client="c", now=NOW))
    signing_in.start()
    try:
        assert mailbox.holding.wait(10)
        others = threading.Thread(target=lambda: (
            lib.save(user, "2606.00001"), lib.vote(user, "2606.00001"),
            d.subscribe("cy@example.org", Preferences(), client="c", now=NOW)))
        others.start()
        others.join(20)
        assert not others.is_alive() and signing_in.is_alive()  # done while the mail server still holds
    finally:
        mailbox.release.set()
        signing_in.join(20)
    assert [m["To"] for m in mailbox.wait(1)] == ["bob@example.org"]
    assert store.accounts.saved_ids(user.id) == [1] and store.vote_totals([1]) == {1: 1}
    assert d.subs.by_email("cy@example.org").status == "pending"
    assert store.db.execute("SELECT count(*) FROM signin_links").fetchone()[0] == 1


def test_concurrent_feeds_cache_one_model(tmp_path, web_data, shared_engine):
    """Two feeds at once for one user train (outside any transaction) and cache the model; the cache ends
    with the model of the current library, and a later feed reuses it."""
    import shutil

    shutil.copytree(web_data, tmp_path / "d", ignore=shutil.ignore_patterns("models"))
    from paperradar.recommend import Recommender

    with Store(tmp_path / "d" / "paperradar.sqlite3") as store:
        engine = SearchEngine(store, embedder=shared_engine.embedder, embed_threads=1)
        try:
            user = store.accounts.ensure_user("ada@example.org", "2026-01-01T00:00:00Z")
            lib = Library(store)
            for p in store.newest(limit=5):
                lib.save(user, p.key)
            user = store.accounts.user(user.id)
            rec = Recommender(store, engine)
            feeds = together(*[lambda: rec.feed(user, limit=5, now=NOW) for _ in range(3)])
            assert all(f.mode == "model" for f in feeds), feeds
            ranked = [[r.paper.id for r in f.items] for f in feeds]
            assert ranked[1:] == [ranked[0]] * 2
            (version, _, _), = [store.accounts.model(user.id, 0)]
            assert version == user.library_version
        finally:
            engine.close()


def test_import_parses_outside_the_transaction(store, monkeypatch):
    """The BibTeX file is parsed before the transaction opens (a big file must not hold up every writer)."""
    user = store.accounts.ensure_user("ada@example.org", "2026-01-01T00:00:00Z")
    parse, during = library.bibtex.parse, []

    def watched(text):
        during.append(store.in_transaction() or store._tx_lock._is_owned())
        return parse(text)

    monkeypatch.setattr(library.bibtex, "parse", watched)
    assert Library(store).import_bibtex(user, BIB, "refs").added == 40
    assert during == [False]
