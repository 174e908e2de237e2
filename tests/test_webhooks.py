"""Digests in chat, end to end: apprise posting to a real HTTP server in this process that records every call
(tests/webhooksink.py). Slack and Discord go through apprise's own plugins to their own hosts
(hooks.slack.com, discord.com), which the sink answers as an HTTPS proxy; a generic JSON webhook goes to it
directly. What is checked is what arrived: the recorded bodies and headers.

Scenarios: a day's digest to each service, down then up, 500s, a 4xx, slow answers (time-out, then retry),
a destination that keeps failing, two sender threads and two sender processes at once — each message is
taken by the service once. The clock is the injectable ``now``, as in tests/test_digest.py.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import subprocess
import sys
import threading
from collections import Counter

import pytest
from mailsink import MailSink
from webhooksink import WebhookSink

from paperradar import config, notify
from paperradar.clock import stamp
from paperradar.digest import Digests
from paperradar.store import Store

pytestmark = pytest.mark.slow  # real SMTP and webhook servers, subprocesses: the whole suite's

MORNING = dt.datetime(2026, 6, 11, 8, 0, tzinfo=dt.UTC)  # the newest listing day of the test corpus
DAY = dt.timedelta(days=1)
BASE_URL = "http://localhost:8000"
SLACK = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7"
DISCORD = "discord://417429632418316298/JHZ7lQml277CDHmQKMHI8qBe7bk2ZwO5UKjCiOAF7711o33MyqU344Qpgv7YTpadV_js"
DIGEST_DAY = re.compile(r"paperradar (\d{4}-\d{2}-\d{2})")  # in each message's title
PAPERRADAR = [sys.executable, "-c", "from paperradar.cli import main; main()"]


@pytest.fixture
def sink():
    with MailSink() as s:
        yield s


@pytest.fixture
def hooks(tmp_path, monkeypatch):
    with WebhookSink(tmp_path) as h:
        for k, v in h.proxy_env().items():
            monkeypatch.setenv(k, v)
        yield h


def env_for(sink: MailSink, data, **extra) -> dict[str, str]:
    return {"PAPERRADAR_SMTP_HOST": "127.0.0.1", "PAPERRADAR_SMTP_PORT": str(sink.port),
            "PAPERRADAR_MAIL_FROM": "digest@paperradar.test",
            "PAPERRADAR_SECRET_KEY": "test-secret-0123456789", "PAPERRADAR_BASE_URL": BASE_URL,
            "PAPERRADAR_DATA_DIR": str(data),
            "PAPERRADAR_WEBHOOK_PRIVATE_HOSTS": "1", "PAPERRADAR_WEBHOOK_TIMEOUT_S": "1", **extra}


@pytest.fixture
def open_digests(data, sink):
    stores = []

    def make() -> Digests:
        store = Store(data / "paperradar.sqlite3")
        stores.append(store)
        return Digests(store, None, config.load(env_for(sink, data)))

    yield make
    for store in stores:
        store.close()


@pytest.fixture
def digests(open_digests) -> Digests:
    return open_digests()


def subscriber(d: Digests, email: str, *urls: str) -> list[int]:
    """An active subscriber (confirmed days ago) with these destinations; their ids."""
    sub = d.subs.upsert(email, trending=True, searches=[], max_papers=10, hour=8, tz="UTC",
                        nonce=secrets.token_hex(8), now=stamp(MORNING - 3 * DAY))
    d.subs.set_status(sub.id, "active", now=stamp(MORNING - 3 * DAY))
    sub = d.subs.get(sub.id)
    return [d.chats.add(sub, url).id for url in urls]


def delivered_once(hooks: WebhookSink, n: int) -> None:
    """``n`` messages, each taken (answered 2xx) exactly once: what a receiver keeps, by delivery id or by
    where it went."""
    taken = Counter(c.headers.get("x-paperradar-delivery") or (c.path, DIGEST_DAY.search(c.body.decode())[1])
                    for c in hooks.answered())
    assert len(taken) == n and set(taken.values()) == {1}, taken


# -- adding destinations ------------------------------------------------------------------------------------
def test_destinations_are_checked_by_apprise_and_shown_redacted():
    ok = {SLACK: ("slack", "slack://T...2/A...D/T...7"),
          "https://hooks.slack.com/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7": ("slack", None),
          DISCORD: ("discord", None), "jsons://hooks.example.org/in/0123456789abcdef": ("json", None),
          "workflows://prod-01.westus.logic.azure.com:443/abc123def/sigsigsig": ("teams", None),
          "matrixs://token1234567@matrix.org/#lab": ("matrix", None)}
    for url, (service, label) in ok.items():
        parsed = notify.parse_destination(url, allow_private=True)  # no DNS here: the host is not looked up
        assert parsed.service == service
        if label:
            assert parsed.label == label
        for secret in ("TIiajkdnlazkcOXrIdevi7", "JHZ7lQml277CDHm", "0123456789abcdef", "sigsigsig",
                       "token1234567"):
            assert secret not in parsed.label
    bad = {"": "paste", "slack://only-one-token": "slack://TokenA/TokenB/TokenC",
           "msteams://a/b/c": "workflows://", "mailto://ada:pw@example.org": "not a chat service",
           "gopher://x": "not a destination", "json://127.0.0.1:9/hook": "own network",
           "json://10.1.2.3/hook": "PAPERRADAR_WEBHOOK_PRIVATE_HOSTS"}
    for url, says in bad.items():
        with pytest.raises(notify.DestinationError, match=says):
            notify.parse_destination(url)
    assert notify.parse_destination("json://127.0.0.1:9/hook", allow_private=True).service == "json"
    with pytest.raises(notify.DestinationError, match="own network"):
        notify.parse_destination("matrix://token@localhost/#room")
    with pytest.raises(notify.DestinationError, match="own network"):
        notify.parse_destination("json://169.254.169.254/latest/meta-data")


# -- a day's digest -----------------------------------------------------------------------------------------
def test_the_digest_reaches_slack_discord_and_a_json_webhook_once(digests, sink, hooks):
    d = digests
    subscriber(d, "ada@example.org", SLACK, DISCORD, hooks.url("/hook/lab"))
    counts = d.run(MORNING)
    assert (counts["composed"], counts["sent"], counts["chat_sent"]) == (1, 1, 3)
    by_host = {c.host.split(":")[0]: c for c in hooks.calls}
    slack, discord, generic = by_host["hooks.slack.com"], by_host["discord.com"], by_host["127.0.0.1"]

    # Slack: apprise's Slack plugin, to Slack's own host, through TLS; Markdown became Slack's mrkdwn
    assert slack.tunnelled and slack.path == "/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7"
    assert slack.headers["content-type"].startswith("application/json")
    body = slack.json()
    (attachment,) = body["attachments"]
    assert body["mrkdwn"] is True and attachment["title"].startswith("paperradar 2026-06-11: ")
    assert "*Trending (2026-06-11)*" in attachment["text"]
    assert f"<{BASE_URL}/paper/" in attachment["text"]  # <url|title>: titles linked to the paper pages
    assert attachment["footer"] == "paperradar"

    # Discord: its plugin, to discord.com, Markdown links as they are
    assert discord.tunnelled and discord.path.startswith("/api/webhooks/417429632418316298/")
    content = discord.json()["content"]
    assert "**Trending (2026-06-11)**" in content and f"]({BASE_URL}/paper/" in content
    assert len(content) <= 2000  # Discord's limit: one post, not split

    # the generic webhook: JSON with the digest as data too, and the delivery id
    assert not generic.tunnelled and generic.path == "/hook/lab"
    assert generic.headers["content-type"] == "application/json"
    assert len(generic.headers[notify.DELIVERY_HEADER.lower()]) == 32
    data = generic.json()
    assert data["title"].startswith("paperradar 2026-06-11: ")
    (trending,) = data["digest"]["sections"]
    assert trending["title"] == "Trending (2026-06-11)" and trending["total"] >= len(trending["papers"]) > 0
    first = trending["papers"][0]
    assert first["url"].startswith(f"{BASE_URL}/paper/") and first["title"] in data["message"]
    if trending["total"] > notify.PER_SECTION:
        assert f"…and {trending['total'] - notify.PER_SECTION} more" in data["message"]

    # later the same day, and again: nothing more; the next morning, one more each
    assert d.run(MORNING + dt.timedelta(hours=2))["chat_sent"] == 0
    assert d.run(MORNING + dt.timedelta(hours=9))["chat_sent"] == 0
    assert d.run(MORNING + DAY)["chat_sent"] == 3
    assert len(hooks.calls) == 6
    delivered_once(hooks, 6)


def test_a_summary_line_and_untrusted_titles_are_plain_text():
    """compose() is pure: a title cannot ping a channel or make a link, a summary is one line."""
    from paperradar.digest import Digest
    from paperradar.store import StoredPaper, Subscriber

    paper = StoredPaper(id=1, key="2606.00001", arxiv_id="2606.00001", version=1,
                        title="<!channel> [click](http://evil.example) @everyone *bold*", abstract="",
                        authors=[], categories=[], submitted=None, updated=None, announced=None, comment=None,
                        journal_ref=None, doi=None, abs_url=None, pdf_url=None, sources=[], upvotes=None,
                        first_seen="", seq=1, hf_summary="We do a thing.\nIn two lines.")
    sub = Subscriber(1, "a@b.c", "active", True, 10, 8, "UTC", "n", "", None, None, None, 0)

    class Item:
        def __init__(self, p):
            self.paper = p

    digest = Digest(sub, "2026-06-11", "2026-06-11", True, [Item(paper)] * 7, [])
    message = notify.compose(digest, BASE_URL, "slack")
    body = message["body"]
    assert "<!channel>" not in body and "@everyone" not in body and "](http://evil" not in body
    assert f"]({BASE_URL}/paper/2606.00001) — We do a thing. In two lines." in body
    assert "…and 2 more" in body and message["format"] == "markdown"
    assert notify.compose(digest, BASE_URL, "json")["format"] == "text"
    assert len(notify.compose(digest, BASE_URL, "discord", max_chars=400)["body"]) <= 400


# -- failures -----------------------------------------------------------------------------------------------
def next_attempt(d: Digests) -> str:
    return d.store.db.execute("SELECT next_attempt FROM chat_outbox").fetchone()[0]


def test_webhook_down_then_up_posts_once_after_the_backoff(digests, sink, hooks):
    d = digests
    (did,) = subscriber(d, "ada@example.org", hooks.url("/hook"))
    hooks.down()
    counts = d.run(MORNING)
    assert (counts["chat_sent"], counts["chat_retry"]) == (0, 1)
    assert next_attempt(d) == stamp(MORNING + dt.timedelta(seconds=60))
    assert d.run(MORNING + dt.timedelta(seconds=61))["chat_retry"] == 1
    assert next_attempt(d) == stamp(MORNING + dt.timedelta(seconds=61 + 120))
    assert d.subs.destination(did).failures == 2
    hooks.up()
    assert d.run(MORNING + dt.timedelta(seconds=90))["chat_sent"] == 0  # up, but not due yet
    assert d.run(MORNING + dt.timedelta(minutes=4))["chat_sent"] == 1
    assert d.run(MORNING + dt.timedelta(minutes=30))["chat_sent"] == 0
    assert len(hooks.calls) == 1
    delivered_once(hooks, 1)
    dest = d.subs.destination(did)
    assert (dest.status, dest.failures, dest.failing_since) == ("ok", 0, None)
    assert d.subs.chat_messages(did)[0][3:5] == ("sent", 3)


def test_5xx_answers_are_retried_with_backoff(digests, sink, hooks):
    d = digests
    subscriber(d, "ada@example.org", hooks.url("/hook"))
    hooks.replies = [500, 502, 503]
    sent = [d.run(MORNING + dt.timedelta(seconds=s))["chat_sent"] for s in (0, 61, 61 + 121, 61 + 121 + 241)]
    assert sent == [0, 0, 0, 1]
    assert [c.status for c in hooks.calls] == [500, 502, 503, 200]
    assert len({c.headers[notify.DELIVERY_HEADER.lower()] for c in hooks.calls}) == 1  # the same message
    assert [c.body for c in hooks.calls[1:]] == [hooks.calls[0].body] * 3  # composed once
    delivered_once(hooks, 1)


def test_a_4xx_answer_gives_the_message_up(digests, sink, hooks):
    d = digests
    (did,) = subscriber(d, "ada@example.org", hooks.url("/hook"))
    hooks.replies = [404]
    counts = d.run(MORNING)
    assert (counts["chat_sent"], counts["chat_retry"], counts["chat_failed"]) == (0, 0, 1)
    assert d.run(MORNING + dt.timedelta(hours=1))["chat_sent"] == 0
    assert len(hooks.calls) == 1
    ((_, _, _, status, _, error),) = d.subs.chat_messages(did)
    assert status == "failed" and "404" in error


def test_a_slow_answer_times_out_and_is_retried(digests, sink, hooks):
    """The time-out is per call (1 s here); the service that answers too late got the body: the retry
    carries the same delivery id, so a receiver keeps one."""
    d = digests
    subscriber(d, "ada@example.org", SLACK, hooks.url("/hook"))
    hooks.delays = [3.0, 3.0]  # both first posts answer after the client gave up
    counts = d.run(MORNING)
    assert (counts["chat_sent"], counts["chat_retry"]) == (0, 2)
    counts = d.run(MORNING + dt.timedelta(minutes=2))
    assert counts["chat_sent"] == 2
    assert len(hooks.calls) == 4
    assert [c.status for c in hooks.calls if c.host.startswith("127.")] == [None, 200]
    ids = [c.headers[notify.DELIVERY_HEADER.lower()] for c in hooks.calls if c.host.startswith("127.")]
    assert ids[0] == ids[1]
    delivered_once(hooks, 2)


def test_a_destination_that_keeps_failing_is_marked_and_left_alone(digests, sink, hooks):
    d = digests
    (did,) = subscriber(d, "ada@example.org", hooks.url("/hook"))
    hooks.replies = [500] * 100
    d.run(MORNING)
    d.run(MORNING + dt.timedelta(minutes=2))
    d.run(MORNING + dt.timedelta(minutes=6))  # three failures in a row, but within a day: still ok
    assert d.subs.destination(did).status == "ok"
    counts = d.run(MORNING + DAY + dt.timedelta(minutes=1))  # a day on: marked failing, messages given up
    assert counts["chat_failing"] == 1
    dest = d.subs.destination(did)
    assert dest.status == "failing" and dest.failing_since == stamp(MORNING) and "500" in dest.last_error
    assert {m[3] for m in d.subs.chat_messages(did)} == {"failed"}
    calls = len(hooks.calls)
    d.run(MORNING + 2 * DAY)
    d.run(MORNING + 3 * DAY)
    assert len(hooks.calls) == calls  # nothing composed for it, nothing posted
    # the owner resumes it: the next day's digest goes
    hooks.replies = []
    sub = d.subs.by_email("ada@example.org")
    assert d.chats.resume(sub, did)
    assert d.run(MORNING + 4 * DAY)["chat_sent"] == 1


# -- senders at once ----------------------------------------------------------------------------------------
def test_two_sender_threads_post_each_message_once(open_digests, sink, hooks):
    first, second = open_digests(), open_digests()
    for i in range(6):
        subscriber(first, f"u{i}@example.org", hooks.url(f"/hook/{i}"))
    assert first.compose_due(MORNING) == 6
    hooks.delays = [0.3] * 6  # slow enough that the two senders overlap
    results = [None, None]

    def send(i, d):
        results[i] = d.send_chats(MORNING)

    threads = [threading.Thread(target=send, args=(i, d)) for i, d in enumerate((first, second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sum(r["chat_sent"] for r in results) == 6
    assert all(r["chat_sent"] for r in results)  # both took part
    assert len(hooks.calls) == 6
    delivered_once(hooks, 6)


def test_two_sender_processes_post_each_message_once(data, digests, sink, hooks):
    for i in range(4):
        subscriber(digests, f"u{i}@example.org", hooks.url(f"/hook/{i}"))
    hooks.delays = [0.3] * 8
    env = {**os.environ, **env_for(sink, data)}
    procs = [subprocess.Popen([*PAPERRADAR, "digest", "send", "--at", "2026-06-11T08:00:00Z", "--json"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e.decode()[-2000:] for _, e in outs]
    counts = [json.loads(o) for o, _ in outs]
    assert sum(c["composed"] for c in counts) == 4 and sum(c["chat_sent"] for c in counts) == 4
    assert len(hooks.calls) == 4
    delivered_once(hooks, 4)
    assert len(sink.messages) == 4  # and each mail once


# -- the settings page --------------------------------------------------------------------------------------
@pytest.fixture
def web(data, shared_engine, mailbox, hooks):
    from webclient import close, make_client

    with make_client(data, shared_engine, {**mailbox.env, "PAPERRADAR_WEBHOOK_PRIVATE_HOSTS": "1"}) as c:
        yield c
        c.app.state.courier.wait()
    close(c)


def test_the_owner_adds_sees_redacted_and_is_told_of_a_failing_destination(web, mailbox, hooks):
    from test_accounts import sign_in
    from webclient import csrf

    sign_in(web, mailbox, "ada@example.org")
    r = web.post("/settings/destinations", data={"url": SLACK, "csrf_token": csrf(web, "/settings")})
    assert r.status_code == 400 and "start the daily digest first" in r.text
    web.post("/settings/digest", data={"trending": "on", "max_papers": "10", "hour": "8", "tz": "UTC",
                                       "csrf_token": csrf(web, "/settings")})
    r = web.post("/settings/destinations", data={"url": "slack://nope", "csrf_token": csrf(web, "/settings")})
    assert r.status_code == 400 and "not a valid Slack URL" in r.text and 'aria-invalid="true"' in r.text
    r = web.post("/settings/destinations", data={"url": SLACK, "csrf_token": csrf(web, "/settings")},
                 follow_redirects=False)
    assert r.status_code == 303
    page = web.get("/settings").text
    assert "slack://T...2/A...D/T...7" in page and "TIiajkdnlazkcOXrIdevi7" not in page
    r = web.post("/settings/destinations", data={"url": SLACK, "csrf_token": csrf(web, "/settings")})
    assert r.status_code == 400 and "one of your destinations already" in r.text

    store = web.app.state.services.store
    subs = store.subscriptions
    sub = subs.by_email("ada@example.org")
    (dest,) = subs.destinations(sub.id)
    subs.enqueue_chat(dest.id, "2026-06-11", "x" * 32, "{}", stamp(MORNING))
    m = subs.claim_chat("w", stamp(MORNING))
    subs.mark_chat_failure(m.id, "500 Internal Server Error", stamp(MORNING + 2 * DAY), next_attempt=None,
                           fail_limit=1, failing_after=stamp(MORNING + 2 * DAY))
    page = web.get("/settings").text
    assert "keeps failing" in page and "500 Internal Server Error" in page and 'role="alert"' in page
    r = web.post(f"/settings/destinations/{dest.id}/resume", data={"csrf_token": csrf(web, "/settings")})
    assert "keeps failing" not in r.text
    r = web.post(f"/settings/destinations/{dest.id}/delete", data={"csrf_token": csrf(web, "/settings")})
    assert subs.destinations(sub.id) == [] and "slack://T...2" not in r.text
