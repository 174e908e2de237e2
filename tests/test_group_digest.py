"""The group digest end to end: a group of five over the real app (a real SQLite copy of the web corpus), its
mails received by the real SMTP server (tests/mailsink.py) and its chat messages by the real local webhook
server (tests/webhooksink.py). One mail per member and one message per destination per day, whatever runs
twice; papers close to the group library, and the new comments on it; a member who opted out (on the page or
by the mail's one-click link) or was removed gets none; group and personal destinations never get each
other's digests; a failing group destination is marked and shown to the owners. The clock is the injectable
``now``, as in tests/test_digest.py.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient
from mailsink import links
from webclient import BASE, close, csrf, local, make_client, token_of
from webhooksink import WebhookSink

from paperradar import notify
from paperradar.accounts import Accounts
from paperradar.clock import stamp
from paperradar.digest import Digests, Preferences
from paperradar.web.deps import SESSION_COOKIE

pytestmark = pytest.mark.slow  # real SMTP and webhook servers, subprocesses: the whole suite's

MORNING = dt.datetime(2026, 6, 11, 8, 0, tzinfo=dt.UTC)  # the newest listing day of the test corpus
DAY = dt.timedelta(days=1)
FIRST = MORNING - DAY  # 2026-06-10: "Graph neural networks for molecular property prediction" is listed
SAVED = "2606.99003"  # "Message passing networks for crystal structures", listed 2026-06-03
NEAR = "Graph neural networks for molecular property prediction"
MEMBERS = ["ada@example.org", "bob@example.org", "cy@example.org", "dan@example.org", "eve@example.org"]
GROUP_TITLE = re.compile(r"^Reading group · paperradar (\d{4}-\d{2}-\d{2}): \d+ papers? for the group$")


@pytest.fixture
def hooks(tmp_path, monkeypatch):
    with WebhookSink(tmp_path) as h:
        for k, v in h.proxy_env().items():
            monkeypatch.setenv(k, v)
        yield h


@pytest.fixture
def app(data, shared_engine, mailbox):
    env = {**mailbox.env, "PAPERRADAR_WEBHOOK_PRIVATE_HOSTS": "1", "PAPERRADAR_WEBHOOK_TIMEOUT_S": "1"}
    c = make_client(data, shared_engine, env)
    with c:
        yield c
    close(c)


def as_user(app: TestClient, email: str) -> tuple[TestClient, object]:
    svc = app.app.state.services
    acc = Accounts(svc.store, svc.settings)
    user = acc.db.ensure_user(email, "2026-01-01T00:00:00Z")
    c = TestClient(app.app)
    c.cookies.set(SESSION_COOKIE, acc.start_session(user))
    return c, user


def post(c: TestClient, path: str, data: dict | None = None, page: str = "/groups"):
    return c.post(path, data={**(data or {}), "csrf_token": csrf(c, page)}, follow_redirects=False)


@pytest.fixture
def lab(app):
    """A reading group of five made three days before the first digest, with one saved paper, two chat
    destinations added by its owner, and a comment on the saved paper the evening before."""
    svc = app.app.state.services
    d = Digests(svc.store, svc.engine, svc.settings)
    people = {email.split("@")[0]: as_user(app, email) for email in MEMBERS}
    ada = people["ada"][1]
    g = d.groups.create(ada, "Reading group", now=FIRST - 3 * DAY)
    for name, (_, user) in people.items():
        if name != "ada":
            d.groups.db.add_member(g.id, user.id, "member", stamp(FIRST - 3 * DAY))
    d.groups.save(people["bob"][1], g.id, SAVED, now=FIRST - 2 * DAY)
    from paperradar.notes import Notes

    Notes(svc.store).add_comment(people["cy"][1], SAVED, "Worth a look for the molecules work", g.id,
                                 now=FIRST - dt.timedelta(hours=3))
    return {"d": d, "gid": g.id, "people": people, "store": svc.store}


def group_calls(hooks: WebhookSink, path: str) -> list:
    return [c for c in hooks.answered() if c.path == path]


def test_five_members_one_mail_each_and_one_message_per_destination_per_day(lab, mailbox, hooks):
    d, gid, people = lab["d"], lab["gid"], lab["people"]
    ada, bob = people["ada"][1], people["bob"][1]
    lab_hook, journal_hook = hooks.url("/hook/lab"), hooks.url("/hook/journal-club")
    d.groups.add_destination(ada, gid, lab_hook)
    d.groups.add_destination(ada, gid, journal_hook)
    # Ada also has her own digest, with her own destination: it and the group's never mix
    d.subscribe_verified(ada.email, Preferences(trending=True), now=FIRST - 3 * DAY)
    d.chats.add(d.subs.by_email(ada.email), hooks.url("/hook/ada"))

    first = d.run(FIRST)
    again = d.run(FIRST)
    later = d.run(FIRST + dt.timedelta(hours=3))
    assert first["composed"] == 6 and first["sent"] == 6 and first["chat_sent"] == 3  # 5 + Ada's own
    assert again["composed"] == later["composed"] == 0 and again["sent"] == later["sent"] == 0
    assert again["chat_sent"] == later["chat_sent"] == 0

    group_mails = {m["To"]: m for m in mailbox.messages if GROUP_TITLE.match(str(m["Subject"]))}
    assert sorted(group_mails) == MEMBERS  # one each
    assert len(mailbox.to(ada.email)) == 2  # the group's and her own
    for msg in group_mails.values():
        text = msg.get_body(("plain",)).get_content()
        html = msg.get_body(("html",)).get_content()
        assert "== For the group ==" in text and NEAR in text and NEAR in html
        assert "saved by bob@example.org" in text  # the reason names the saved paper and who saved it
        assert f"1 new comment on papers the group saved: {BASE}/groups/{gid}" in text
        assert "new comment on papers the group saved" in html
        (stop,) = links(msg, f"/groups/{gid}/digest/stop")
        assert msg["List-Unsubscribe"] == f"<{stop}>"
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert "Trending" not in text  # the group digest is the group's papers, not the day's trending
    # on the wire: CRLF line ends, no line over SMTP's 998 characters
    assert all(raw.endswith(b"\r\n") and b"\n" not in raw.replace(b"\r\n", b"") for raw in mailbox.raw)
    assert all(len(line) <= 998 for raw in mailbox.raw for line in raw.split(b"\r\n"))

    # the chat destinations: one message each, the group's digest; Ada's hook got her own only
    for path in ("/hook/lab", "/hook/journal-club"):
        (call,) = group_calls(hooks, path)
        data = call.json()
        assert GROUP_TITLE.match(data["title"])
        (section,) = data["digest"]["sections"]
        assert section["title"] == "For the group" and NEAR in [p["title"] for p in section["papers"]]
        assert data["digest"]["comments"] == 1
        assert "1 new comment on papers the group saved" in data["message"]
    (own,) = group_calls(hooks, "/hook/ada")
    assert own.json()["title"].startswith("paperradar 2026-06-10: ")
    assert "For the group" not in own.body.decode()

    # the next day: Cy removed, Dan stopped by his mail's one-click link, Eve on the group page
    assert post(people["ada"][0], f"/groups/{gid}/members/{people['cy'][1].id}/remove").status_code == 303
    stop = links(group_mails["dan@example.org"], f"/groups/{gid}/digest/stop")[0]
    page = people["dan"][0].get(local(stop))
    assert page.status_code == 200 and "Stop the group digest" in page.text
    assert TestClient(people["dan"][0].app).post(local(stop)).status_code == 200  # no cookie, no CSRF
    eve = people["eve"][0]
    assert post(eve, f"/groups/{gid}/digest", {"mail": "off"}, page=f"/groups/{gid}").status_code == 303
    assert "You do not get it by mail." in eve.get(f"/groups/{gid}").text
    mailbox.clear()
    second = d.run(MORNING)
    assert d.run(MORNING)["composed"] == 0 and d.run(MORNING + dt.timedelta(hours=1))["sent"] == 0
    group_mails = [m for m in mailbox.messages if GROUP_TITLE.match(str(m["Subject"]))]
    assert sorted(m["To"] for m in group_mails) == [ada.email, bob.email]
    assert second["chat_sent"] == 3
    for path in ("/hook/lab", "/hook/journal-club"):
        days = [GROUP_TITLE.match(c.json()["title"])[1] for c in group_calls(hooks, path)]
        assert days == ["2026-06-10", "2026-06-11"]
    assert len(group_calls(hooks, "/hook/ada")) == 2
    # each delivery id once: what a receiver keeps
    ids = [c.headers["x-paperradar-delivery"] for c in hooks.answered()]
    assert len(ids) == len(set(ids)) == 6

    # the stop link works once per membership: forged, or of someone out of the group, it is refused
    assert people["dan"][0].get(local(stop).replace(token_of(stop), "1.0.abc")).status_code in (400, 404)
    assert d.groups.db.digest_recipients(gid) == [(ada.id, ada.email, d.groups.db.joined(gid, ada.id)),
                                                  (bob.id, bob.email, d.groups.db.joined(gid, bob.id))]


def test_a_member_removed_after_the_digest_was_queued_gets_nothing(lab, mailbox, hooks):
    d, gid, people = lab["d"], lab["gid"], lab["people"]
    assert d.compose_due(FIRST) == 5
    d.groups.remove(people["ada"][1], gid, people["eve"][1].id)
    d.groups.set_digest(people["dan"][1], gid, False)
    assert d.send_due(FIRST)["sent"] == 3
    assert not mailbox.to("eve@example.org") and not mailbox.to("dan@example.org")


def test_group_destinations_are_checked_redacted_and_for_owners_only(lab, app, hooks):
    d, gid, people = lab["d"], lab["gid"], lab["people"]
    ada_c, bob_c = people["ada"][0], people["bob"][0]
    secret = "https://hooks.slack.com/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7"
    r = post(ada_c, f"/groups/{gid}/destinations", {"url": secret}, page=f"/groups/{gid}")
    assert r.status_code == 303
    page = ada_c.get(f"/groups/{gid}").text
    assert "slack://T...2/A...D/T...7" in page and "TIiajkdnlazkcOXrIdevi7" not in page
    bad = post(ada_c, f"/groups/{gid}/destinations", {"url": "mailto://a:b@example.org"},
               page=f"/groups/{gid}")
    assert bad.status_code == 400 and "not a chat service" in bad.text
    assert post(ada_c, f"/groups/{gid}/destinations", {"url": "json://10.1.2.3/x"},
                page=f"/groups/{gid}").status_code == 303  # this server allows private hosts (the tests')
    # a member who is no owner sees none of it and can change none of it
    assert "slack://T...2" not in bob_c.get(f"/groups/{gid}").text
    assert post(bob_c, f"/groups/{gid}/destinations", {"url": hooks.url("/x")},
                page=f"/groups/{gid}").status_code == 400
    (did, *_) = [x.id for x in d.subs.group_destinations(gid)]
    r = post(bob_c, f"/groups/{gid}/destinations/{did}/delete", page=f"/groups/{gid}")
    assert r.status_code == 400
    # someone outside the group: a 404, as for a group that does not exist
    outsider, _ = as_user(app, "zed@example.org")
    assert post(outsider, f"/groups/{gid}/destinations", {"url": hooks.url("/x")}).status_code == 404
    assert post(outsider, f"/groups/{gid}/destinations/{did}/delete").status_code == 404
    # the personal pages never list them
    d.subscribe_verified("ada@example.org", Preferences(trending=True), now=FIRST)
    assert d.subs.destinations(d.subs.by_email("ada@example.org").id) == []
    assert "slack://T...2" not in ada_c.get("/settings").text
    assert post(ada_c, f"/groups/{gid}/destinations/{did}/delete", page=f"/groups/{gid}").status_code == 303
    assert len(d.subs.group_destinations(gid)) == 1


def test_a_failing_group_destination_is_marked_and_shown_to_owners(lab, hooks):
    d, gid, people = lab["d"], lab["gid"], lab["people"]
    dest = d.groups.add_destination(people["ada"][1], gid, hooks.url("/hook/lab"))
    hooks.replies = [500] * 100
    d.run(FIRST)
    d.run(FIRST + dt.timedelta(minutes=2))
    d.run(FIRST + dt.timedelta(minutes=6))
    assert d.subs.destination(dest.id).status == "ok"  # three failures within a day: still ok
    assert d.run(FIRST + DAY + dt.timedelta(minutes=1))["chat_failing"] == 1
    assert d.subs.destination(dest.id).status == "failing"
    page = people["ada"][0].get(f"/groups/{gid}").text
    assert "keeps failing" in page and "500" in page and dest.label in page
    assert "keeps failing" not in people["bob"][0].get(f"/groups/{gid}").text  # owners are told
    calls = len(hooks.calls)
    d.run(FIRST + 2 * DAY)
    assert len(hooks.calls) == calls  # nothing composed for it, nothing posted
    # resumed by an owner: the next day's digest goes
    hooks.replies = []
    r = post(people["ada"][0], f"/groups/{gid}/destinations/{dest.id}/resume", page=f"/groups/{gid}")
    assert r.status_code == 303
    assert d.run(FIRST + 3 * DAY)["chat_sent"] == 1


def test_the_group_schedule_and_saved_searches(lab, mailbox):
    d, gid, people = lab["d"], lab["gid"], lab["people"]
    ada_c = people["ada"][0]
    r = post(ada_c, f"/groups/{gid}/digest/schedule",
             {"hour": "7", "tz": "Europe/Paris", "searches": "graph neural networks\n\nbread baking"},
             page=f"/groups/{gid}")
    assert r.status_code == 303
    assert d.groups.schedule(people["ada"][1], gid) == (7, "Europe/Paris", ["graph neural networks",
                                                                              "bread baking"])
    assert post(ada_c, f"/groups/{gid}/digest/schedule", {"hour": "7", "tz": "Mars/Olympus"},
                page=f"/groups/{gid}").status_code == 400
    assert post(people["bob"][0], f"/groups/{gid}/digest/schedule", {"hour": "9", "tz": "UTC"},
                page=f"/groups/{gid}").status_code == 400
    # 07:00 in Paris is 05:00 UTC: due then, not before
    assert d.compose_due(FIRST.replace(hour=4, minute=59)) == 0
    assert d.compose_due(FIRST.replace(hour=5)) == 5
    d.send_due(FIRST.replace(hour=5))
    text = mailbox.to("bob@example.org")[0].get_body(("plain",)).get_content()
    assert "== Group search: graph neural networks ==" in text and NEAR in text.split("Group search")[1]


def test_group_chat_message_is_not_a_personal_one():
    """compose() of a group digest: its own headings and comments line (pure, no database)."""
    from paperradar.digest import Digest
    from paperradar.store import Subscriber
    from paperradar.store.groups import DigestGroup

    sub = Subscriber(0, "", "active", False, 10, 8, "UTC", "", "", None, None, None, 0, ("lattice qcd",))
    g = DigestGroup(1, "Lab <!channel>", "", 8, "UTC", None, None, ("lattice qcd",))
    digest = Digest(sub, "2026-06-11", "2026-06-11", True, [], [("lattice qcd", [])], comments=3, group=g)
    message = notify.compose(digest, BASE, "slack")
    assert "**Group search: lattice qcd**" in message["body"]
    assert "3 new comments on papers the group saved" in message["body"]
    assert message["title"] == "Lab ‹!channel› · paperradar 2026-06-11: 0 papers for the group"


def test_migration_12_keeps_the_outbox_and_the_destinations(tmp_path, monkeypatch):
    """Migration 12 rebuilds outbox, destinations and chat_outbox: what was queued and added stays."""
    import paperradar.store as store_module
    from paperradar.store import MIGRATIONS, Store

    monkeypatch.setattr(store_module, "MIGRATIONS", MIGRATIONS[:11])
    old = Store(tmp_path / "paperradar.sqlite3")
    assert old.schema_version() == 11
    with old.transaction():
        old.db.execute("INSERT INTO subscribers(id, email, nonce, created) VALUES (1, 'a@b.c', 'n', 'x')")
        old.db.execute("INSERT INTO outbox(subscriber_id, kind, day, recipient, message_id, message, "
                       "next_attempt, created) "
                       "VALUES (1, 'digest', '2026-06-10', 'a@b.c', '<m@x>', x'00', 'x', 'x')")
        old.db.execute("INSERT INTO destinations(id, subscriber_id, service, url, label, created) "
                       "VALUES (7, 1, 'json', 'json://h/x', 'json://h/x', 'x')")
        old.db.execute("INSERT INTO chat_outbox(destination_id, day, delivery_id, message, next_attempt, "
                       "created) VALUES (7, '2026-06-10', 'd1', '{}', 'x', 'x')")
    old.close()
    monkeypatch.setattr(store_module, "MIGRATIONS", MIGRATIONS)
    new = Store(tmp_path / "paperradar.sqlite3")
    try:
        assert new.schema_version() == 12
        assert [m[2:5] for m in new.subscriptions.mails(1)] == [("digest", "2026-06-10", "queued")]
        (dest,) = new.subscriptions.destinations(1)
        assert (dest.id, dest.group_id) == (7, None)
        assert [m[1:4] for m in new.subscriptions.chat_messages(7)] == [(7, "2026-06-10", "queued")]
        assert new.db.execute("PRAGMA foreign_key_check").fetchall() == []
        with new.transaction():  # the cascade still holds: a subscriber's destinations and messages go
            new.db.execute("DELETE FROM subscribers WHERE id = 1")
        assert new.subscriptions.chat_counts() == {} and new.subscriptions.outbox_counts() == {}
    finally:
        new.close()
