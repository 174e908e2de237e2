"""Digest subscriptions through the real app: the forms and the API, the links in real mails (received by a
real SMTP server in this process), one-click unsubscribe, the manage page and the browser preview."""

from __future__ import annotations

import datetime as dt
import re
import time

import pytest
from mailsink import html_of, links, text_of
from webclient import BASE, CSRF, close, csrf, local, make_client, token_of

from paperradar import mail
from paperradar.digest import ADDRESS_LIMIT, CLIENT_LIMIT, Digests
from paperradar.web.subscribe import PREVIEW_CSP


def subs(client):
    return client.app.state.services.store.subscriptions


def subscribe(client, email: str, **fields):
    return client.post("/subscribe", data={"email": email, "trending": "on", "csrf_token": csrf(client),
                                           **fields})


def confirm_link(message) -> str:
    found = links(message, "/confirm")
    assert len(found) == 1, text_of(message)
    return local(found[0])


def subscribe_and_confirm(client, mailbox, email: str, **fields):
    """Subscribe through the form and confirm through the mailed link; the subscriber, now active."""
    before = sum(m["To"] == email for m in mailbox.messages)
    assert subscribe(client, email, **fields).status_code == 200
    link = confirm_link(mailbox.wait_for(email, before + 1))
    r = client.post("/confirm", data={"token": token_of(link), "csrf_token": csrf(client, link)})
    assert r.status_code == 200, r.text
    sub = subs(client).by_email(email)
    assert sub.status == "active"
    return sub


# -- subscribing and confirming ---------------------------------------------------------------------------
def test_home_page_form_sends_one_confirmation_and_nothing_else(client, mailbox):
    home = client.get("/")
    assert 'action="/subscribe"' in home.text and 'name="email"' in home.text
    r = client.post("/subscribe", data={"email": "ada@example.org", "trending": "on",
                                        "csrf_token": CSRF.search(home.text).group(1)})
    assert r.status_code == 200 and r.template.name == "subscribe_sent.html"
    assert "Check your inbox" in r.text and "ada@example.org" in r.text

    [message] = mailbox.wait(1)
    assert mailbox.recipients == [["ada@example.org"]]
    assert message["To"] == "ada@example.org" and message["From"] == "digest@paperradar.test"
    assert message["Subject"] == "Confirm your paperradar digest"
    assert message["List-Unsubscribe"] is None  # not a list mail: nothing to unsubscribe from yet
    link = confirm_link(message)
    assert link in html_of(message).replace("&amp;", "&")
    sub = subs(client).by_email("ada@example.org")
    # the defaults of the one-field form
    assert (sub.status, sub.trending, sub.searches, sub.max_papers, sub.hour, sub.tz) == \
        ("pending", True, (), 10, 8, "UTC")

    # a GET changes nothing (mail scanners open links): it shows a button
    page = client.get(link)
    assert page.status_code == 200 and page.template.name == "confirm.html"
    assert 'action="/confirm"' in page.text and "ada@example.org" in page.text
    assert subs(client).by_email("ada@example.org").status == "pending"
    token = token_of(link)
    assert client.post("/confirm", data={"token": token}).status_code == 400  # no CSRF token
    assert subs(client).by_email("ada@example.org").status == "pending"

    r = client.post("/confirm", data={"token": token, "csrf_token": CSRF.search(page.text).group(1)})
    assert r.status_code == 200 and "Subscription confirmed" in r.text
    sub = subs(client).by_email("ada@example.org")
    assert sub.status == "active" and sub.confirmed
    assert "/subscription?token=" in r.text and "/digest/preview?token=" in r.text

    time.sleep(0.3)
    client.app.state.courier.wait()
    assert len(mailbox.messages) == 1  # the confirmation only: no digest before its hour
    assert subs(client).outbox_counts() == {"sent": 1}


def test_full_form_takes_saved_searches_hour_and_zone(client, mailbox):
    page = client.get("/subscribe")
    assert page.status_code == 200 and 'name="searches"' in page.text and 'name="tz"' in page.text
    r = subscribe(client, "bob@example.org", trending="", max_papers="5", hour="7", tz="Europe/Paris",
                  searches="graph networks cat:cs.LG\n\n  au:curie  \n")
    assert r.status_code == 200, r.text
    sub = subs(client).by_email("bob@example.org")
    assert (sub.trending, sub.searches, sub.max_papers, sub.hour, sub.tz) == \
        (False, ("graph networks cat:cs.LG", "au:curie"), 5, 7, "Europe/Paris")
    mailbox.wait(1)


@pytest.mark.parametrize("fields, message", [
    ({"email": "not an address"}, "does not look like an e-mail address"),
    ({"tz": "Mars/Olympus"}, "unknown time zone"),
    ({"hour": "24"}, "hour of delivery must be 0 to 23"),
    ({"hour": "eight"}, "must be a whole number"),
    ({"max_papers": "500"}, "papers per section must be 1 to 50"),
    ({"searches": "since:2024-02-30"}, "no such day"),
    ({"trending": "", "searches": ""}, "choose trending papers, a saved search, or both"),
])
def test_form_errors_are_shown_on_the_form(client, mailbox, fields, message):
    r = client.post("/subscribe", data={"email": "carol@example.org", "trending": "on",
                                        "csrf_token": csrf(client), **fields})
    assert r.status_code == 400 and r.template.name == "subscribe.html"
    assert message in r.context["error"]
    assert 'role="alert"' in r.text
    assert r.context["form"]["email"] == fields.get("email", "carol@example.org")  # kept for fixing
    assert subs(client).by_email("carol@example.org") is None and not mailbox.messages


def test_subscribe_form_needs_its_csrf_token(client, mailbox):
    r = client.post("/subscribe", data={"email": "dave@example.org", "trending": "on"})
    assert r.status_code == 400 and "reload the page" in r.text
    assert subs(client).by_email("dave@example.org") is None


def test_same_answer_whether_or_not_the_address_is_subscribed(client, mailbox):
    first = subscribe(client, "erin@example.org")
    subscribe_and_confirm(client, mailbox, "frank@example.org", searches="graph networks")
    again = subscribe(client, "frank@example.org", trending="", searches="au:mallory")
    assert again.status_code == first.status_code == 200
    assert again.text == first.text.replace("erin@", "frank@")
    # the owner is told, and given the manage link; nothing changes until they act on it
    third = mailbox.wait_for("frank@example.org", 2)
    assert "already subscribed" in text_of(third)
    assert not links(third, "/confirm") and len(links(third, "/subscription")) == 1
    sub = subs(client).by_email("frank@example.org")
    assert (sub.status, sub.trending, sub.searches) == ("active", True, ("graph networks",))

    # the API answers the same for both, too
    a = client.post("/api/v1/subscriptions", json={"email": "erin@example.org"})
    b = client.post("/api/v1/subscriptions", json={"email": "frank@example.org"})
    assert (a.status_code, a.json()) == (b.status_code, b.json()) == (202, {"status": "confirmation sent"})


# -- tokens ------------------------------------------------------------------------------------------------
def test_forged_stale_and_wrong_purpose_tokens_are_refused(client, mailbox):
    subscribe(client, "gina@example.org")
    link = confirm_link(mailbox.wait(1)[0])
    token = token_of(link)
    sub = subs(client).by_email("gina@example.org")
    secret = mailbox.env["PAPERRADAR_SECRET_KEY"].encode()
    sid, expires, mac = token.split(".")
    forged = [
        f"{sid}.{expires}.{'0' * len(mac)}",  # a made-up signature
        f"{sid}.0.{mac}",  # the expiry taken off
        mail.make_token(b"another server's secret", "confirm", sub.id, sub.nonce, int(expires)),
        mail.make_token(secret, "confirm", sub.id + 1, sub.nonce, int(expires)),  # somebody else
        mail.make_token(secret, "unsubscribe", sub.id, sub.nonce),  # another purpose
        mail.make_token(secret, "manage", sub.id, sub.nonce),
        f"{'9' * 30}.0.{mac}",  # an id too large for SQLite
        f"{sid}.{expires}.{'é' * len(mac)}",  # not ASCII: hmac.compare_digest would raise TypeError
        "garbage", "",
    ]
    page = csrf(client)
    for bad in forged:
        r = client.get("/confirm", params={"token": bad})
        assert r.status_code == 400 and r.template.name == "error.html", bad
        assert "not valid" in r.text
        r = client.post("/confirm", data={"token": bad, "csrf_token": page})
        assert r.status_code == 400, bad
    # a confirmation link for another purpose
    for path in ("/unsubscribe", "/subscription", "/digest/preview"):
        assert client.get(path, params={"token": token}).status_code == 400, path
    assert client.post("/unsubscribe", params={"token": token}).status_code == 400
    # an expired confirmation link
    old = int(time.time()) - 10
    r = client.get("/confirm", params={"token": mail.make_token(secret, "confirm", sub.id, sub.nonce, old)})
    assert r.status_code == 400 and "expired" in r.text
    assert subs(client).by_email("gina@example.org").status == "pending"
    # the real one still works
    assert client.post("/confirm", data={"token": token, "csrf_token": page}).status_code == 200


# -- the digest mail and one-click unsubscribe ---------------------------------------------------------------
def test_digest_mail_has_one_click_unsubscribe(client, mailbox):
    sub = subscribe_and_confirm(client, mailbox, "hana@example.org")
    client.app.state.courier.wait()
    svc = client.app.state.services
    digests = Digests(svc.store, svc.engine, svc.settings)
    tomorrow = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    morning = tomorrow.replace(hour=8, minute=30, second=0, microsecond=0)
    assert digests.compose_due(morning) == 1
    assert digests.send_due(morning)["sent"] == 1
    message = mailbox.wait_for("hana@example.org", 2)
    assert message["Subject"].startswith("paperradar ")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    header = message["List-Unsubscribe"]
    assert header.startswith(f"<{BASE}/unsubscribe?token=") and header.endswith(">")
    url = header[1:-1]
    assert url in text_of(message) and len(links(message, "/subscription")) == 1

    # RFC 8058: the mail client POSTs the body below, with no cookie and no CSRF token
    client.cookies.clear()
    r = client.post(local(url), content=b"List-Unsubscribe=One-Click",
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200 and "Unsubscribed" in r.text
    assert subs(client).get(sub.id).status == "unsubscribed"
    assert client.post(local(url), data={"List-Unsubscribe": "One-Click"}).status_code == 200  # idempotent
    page = client.get(local(url))
    assert page.status_code == 200 and "already unsubscribed" in page.text
    # no more digests
    later = morning + dt.timedelta(days=1)
    assert digests.compose_due(later) == 0

    # subscribing again starts over (pending, new nonce): the old links are stale
    mailbox.clear()
    assert subscribe(client, "hana@example.org").status_code == 200
    assert subs(client).get(sub.id).status == "pending"
    assert client.post(local(url), data={"List-Unsubscribe": "One-Click"}).status_code == 400
    assert client.get(local(links(message, "/subscription")[0])).status_code == 400
    token = token_of(confirm_link(mailbox.wait(1)[0]))
    assert client.post("/confirm", data={"token": token, "csrf_token": csrf(client)}).status_code == 200
    assert subs(client).get(sub.id).status == "active"


# -- managing -----------------------------------------------------------------------------------------------
def manage_link(client, mailbox, email: str) -> str:
    """The manage link, as the 'already subscribed' mail gives it."""
    before = sum(m["To"] == email for m in mailbox.messages)
    subscribe(client, email)
    found = links(mailbox.wait_for(email, before + 1), "/subscription")
    assert len(found) == 1
    return local(found[0])


def test_manage_page_saves_preferences(client, mailbox):
    sub = subscribe_and_confirm(client, mailbox, "ivan@example.org")
    link = manage_link(client, mailbox, "ivan@example.org")
    page = client.get(link)
    assert page.status_code == 200 and page.template.name == "subscription.html"
    assert page.context["form"]["trending"] is True and page.context["form"]["hour"] == 8
    assert "ivan@example.org" in page.text and 'action="/unsubscribe?token=' in page.text
    token, form_token = token_of(link), CSRF.search(page.text).group(1)
    fields = {"token": token, "csrf_token": form_token, "searches": "graph networks cat:cs.LG\nau:curie",
              "max_papers": "5", "hour": "7", "tz": "Europe/Paris"}  # trending unticked

    assert client.post("/subscription", data={**fields, "csrf_token": ""}).status_code == 400
    r = client.post("/subscription", data={**fields, "tz": "Nowhere/Special"})
    assert r.status_code == 400 and "unknown time zone" in r.context["error"]
    assert r.context["form"]["searches"] == fields["searches"]  # kept for fixing
    assert subs(client).get(sub.id).tz == "UTC"  # nothing saved

    r = client.post("/subscription", data=fields)
    assert r.status_code == 200 and r.context["saved"] and "Saved." in r.text
    after = subs(client).get(sub.id)
    assert (after.trending, after.searches, after.max_papers, after.hour, after.tz, after.status) == \
        (False, ("graph networks cat:cs.LG", "au:curie"), 5, 7, "Europe/Paris", "active")
    forged = token[:-1] + ("0" if token[-1] != "0" else "1")
    assert client.post("/subscription", data={**fields, "token": forged}).status_code == 400

    # its unsubscribe button
    unsubscribe = re.search(r'action="(/unsubscribe\?token=[^"]+)"', r.text).group(1)
    assert client.post(unsubscribe, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert subs(client).get(sub.id).status == "unsubscribed"
    assert "subscribe again" in client.get(link).text


# -- preview ----------------------------------------------------------------------------------------------
def test_digest_preview_renders_in_the_browser_without_queuing(client, mailbox):
    r = client.get("/digest/preview")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.headers["content-security-policy"] == PREVIEW_CSP and "script" not in PREVIEW_CSP
    assert r.headers["x-frame-options"] == "DENY"  # the other security headers are still added
    assert r.text.startswith("<!doctype html>") and "Trending" in r.text
    # the newest listing day's papers, as a first digest would have them
    r = client.get("/digest/preview", params=[("q", "sparse attention"), ("q", "adversarial sanitizers"),
                                              ("trending", "false")])
    assert r.status_code == 200 and ">Trending" not in r.text
    assert "Your search: <span" in r.text and "sparse attention" in r.text
    assert "adversarial sanitizers" in r.text
    assert "MiniMax Sparse Attention" in r.text and "<script" not in r.text
    assert client.get("/digest/preview", params={"q": "since:2024-02-30"}).status_code == 400
    assert client.get("/digest/preview", params={"max_papers": "0"}).status_code == 400

    sub = subscribe_and_confirm(client, mailbox, "jane@example.org", trending="",
                                searches="message passing crystal")
    link = manage_link(client, mailbox, "jane@example.org")
    client.app.state.courier.wait()
    sent = subs(client).outbox_counts()
    r = client.get("/digest/preview", params={"token": token_of(link)})
    assert r.status_code == 200 and "message passing crystal" in r.text
    assert r.headers["content-security-policy"] == PREVIEW_CSP
    assert subs(client).outbox_counts() == sent and subs(client).get(sub.id).last_digest_day is None


# -- the API ----------------------------------------------------------------------------------------------
def test_api_mirrors_the_form(client, mailbox):
    r = client.post("/api/v1/subscriptions", json={
        "email": "kim@example.org", "trending": False, "searches": ["graph networks au:curie"],
        "max_papers": 3, "hour": 6, "tz": "America/New_York"})
    assert (r.status_code, r.json()) == (202, {"status": "confirmation sent"})
    message = mailbox.wait(1)[0]
    assert message["To"] == "kim@example.org" and len(links(message, "/confirm")) == 1
    sub = subs(client).by_email("kim@example.org")
    assert (sub.status, sub.trending, sub.searches, sub.max_papers, sub.hour, sub.tz) == \
        ("pending", False, ("graph networks au:curie",), 3, 6, "America/New_York")
    r = client.post("/api/v1/subscriptions", json={"email": "lee@example.org"})  # the form's defaults
    assert r.status_code == 202
    sub = subs(client).by_email("lee@example.org")
    assert (sub.trending, sub.searches, sub.max_papers, sub.hour, sub.tz) == (True, (), 10, 8, "UTC")

    for body, fragment in [
        ({"email": "nope"}, "e-mail address"),
        ({"email": "kim@example.org", "tz": "Mars/Olympus"}, "unknown time zone"),
        ({"email": "kim@example.org", "hour": 24}, "0 to 23"),
        ({"email": "kim@example.org", "searches": ["since:2024-02-30"]}, "no such day"),
        ({"email": "kim@example.org", "trending": False}, "choose trending papers"),
        ({"trending": True}, "email"),
        ({"email": "kim@example.org", "searches": "not a list"}, "searches"),
    ]:
        r = client.post("/api/v1/subscriptions", json=body)
        error = r.json()["error"]
        assert r.status_code == error["status"] == 400 and fragment in error["message"], (body, error)
    schema = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/subscriptions" in schema["paths"] and "/subscribe" not in schema["paths"]


# -- limits and configuration ----------------------------------------------------------------------------
def test_rate_limited_per_address_and_per_client(client, mailbox):
    for _ in range(ADDRESS_LIMIT):
        assert subscribe(client, "mia@example.org").status_code == 200
    r = subscribe(client, "mia@example.org")
    assert r.status_code == 429 and "too many subscription requests" in r.context["error"]
    r = client.post("/api/v1/subscriptions", json={"email": "mia@example.org"})
    assert r.status_code == 429 and r.json()["error"]["status"] == 429
    made = ADDRESS_LIMIT  # refused requests count for nothing (they wrote nothing)
    for i in range(CLIENT_LIMIT - made):  # other addresses, same client
        assert subscribe(client, f"other{i}@example.org").status_code == 200
    assert subscribe(client, "one-more@example.org").status_code == 429
    mailbox.wait(CLIENT_LIMIT)
    client.app.state.courier.wait()
    time.sleep(0.2)
    assert len(mailbox.messages) == CLIENT_LIMIT  # refused requests mail nobody


def test_without_mail_settings_subscribing_answers_503(data, shared_engine, mailbox):
    with make_client(data, shared_engine, {}) as c:
        assert "no mail set up" in c.get("/subscribe").text
        r = subscribe(c, "nina@example.org")
        assert r.status_code == 503 and "no mail set up" in r.text and "PAPERRADAR_SMTP_HOST" in r.text
        r = c.post("/api/v1/subscriptions", json={"email": "nina@example.org"})
        assert r.status_code == 503 and "PAPERRADAR_SMTP_HOST" in r.json()["error"]["message"]
        # links are signed with the data directory's key even without mail: a bad one is just invalid
        assert c.get("/confirm", params={"token": "1.0.abc"}).status_code == 400
        assert c.get("/digest/preview").status_code == 200  # a preview needs no mail
        assert c.app.state.services.store.subscriptions.by_email("nina@example.org") is None
    close(c)
    assert not mailbox.messages
