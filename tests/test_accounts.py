"""Accounts through the real app: magic-link sign-in with mails received by a real SMTP server, sessions,
sign-out, no account enumeration, sign-in rate limits, CSRF on every state change, users seeing only their
own data, saving / tagging / voting / dismissing, the library (search, export, BibTeX import), the "For
you" feed with reasons, the settings page's digest, and deleting an account with all its data."""

from __future__ import annotations

import datetime as dt
import json
import re
from urllib.parse import urlencode

import pytest
from mailsink import links
from webclient import CSRF, close, csrf, local, make_client, token_of

from paperradar import accounts as accounts_mod
from paperradar import bibtex, mail
from paperradar.accounts import Accounts
from paperradar.digest import Digests, Preferences
from paperradar.library import Library
from paperradar.store import Store
from paperradar.web.deps import SESSION_COOKIE

# papers of the web corpus (tests/conftest.py): three on graph networks for science, by the Curies
CURIE = ["2606.99002", "2606.99003"]


def store_of(client) -> Store:
    return client.app.state.services.store


def sign_in(client, mailbox, email: str) -> None:
    """The whole flow: ask for a link, take it from the mail, press the button."""
    r = client.post("/signin", data={"email": email, "csrf_token": csrf(client, "/signin")})
    assert r.status_code == 200 and "Check your inbox" in r.text
    n = sum(1 for m in mailbox.messages if m["To"] == email)
    message = mailbox.wait_for(email, n)
    (url,) = links(message, "/signin/verify")
    page = client.get(local(url))
    assert page.status_code == 200 and 'action="/signin/verify"' in page.text
    r = client.post("/signin/verify", data={"token": token_of(url), "csrf_token": CSRF.search(
        page.text).group(1)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/for-you"
    assert SESSION_COOKIE in r.cookies or client.cookies.get(SESSION_COOKIE)


def test_sign_in_by_mailed_link_then_sign_out(client, mailbox):
    assert "Sign in" in client.get("/").text
    sign_in(client, mailbox, "ada@example.org")
    home = client.get("/").text
    assert "ada@example.org" in home and 'action="/signout"' in home
    user = store_of(client).accounts.user_by_email("ada@example.org")
    assert user is not None
    # the session cookie is HttpOnly and SameSite=Lax; the database holds only its hash
    token = client.cookies.get(SESSION_COOKIE)
    hashes = [h for (h,) in store_of(client).db.execute("SELECT token_hash FROM sessions")]
    assert token not in hashes and len(hashes) == 1
    r = client.post("/signout", data={"csrf_token": csrf(client)}, follow_redirects=False)
    assert r.status_code == 303
    assert store_of(client).db.execute("SELECT count(*) FROM sessions").fetchone()[0] == 0
    client.cookies.set(SESSION_COOKIE, token)  # the old cookie no longer signs in
    assert "Sign in" in client.get("/").text and "ada@example.org" not in client.get("/").text


def test_sign_in_cookie_flags(client, mailbox):
    r = client.post("/signin", data={"email": "flags@example.org", "csrf_token": csrf(client, "/signin")})
    assert r.status_code == 200
    (url,) = links(mailbox.wait_for("flags@example.org"), "/signin/verify")
    page = client.get(local(url))
    r = client.post("/signin/verify", data={"token": token_of(url),
                                            "csrf_token": CSRF.search(page.text).group(1)},
                    follow_redirects=False)
    cookie = next(v for k, v in r.headers.multi_items() if k == "set-cookie" and SESSION_COOKIE in v).lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "max-age=" in cookie


def test_sign_in_comes_back_to_the_page_it_started_from(client, mailbox):
    for start, lands in [("/paper/2606.99002", "/paper/2606.99002"), ("//evil.example/x", "/for-you"),
                         ("https://evil.example/", "/for-you")]:
        form = client.get("/signin?" + urlencode({"next": start})).text
        r = client.post("/signin", data={"email": "back@example.org",
                                         "csrf_token": CSRF.search(form).group(1),
                                         "next": re.search(r'name="next" value="([^"]*)"', form).group(1)})
        assert r.status_code == 200
        n = sum(1 for m in mailbox.messages if m["To"] == "back@example.org")
        (url,) = links(mailbox.wait_for("back@example.org", n), "/signin/verify")
        page = client.get(local(url)).text
        r = client.post("/signin/verify", data={
            "token": token_of(url), "csrf_token": CSRF.search(page).group(1),
            "next": re.search(r'name="next" value="([^"]*)"', page).group(1)}, follow_redirects=False)
        assert r.headers["location"] == lands, start
        client.cookies.clear()


def test_link_works_once_and_expires(client, mailbox):
    a = Accounts(store_of(client), client.app.state.services.settings)
    now = dt.datetime(2026, 6, 12, 9, 0, tzinfo=dt.UTC)
    a.request_sign_in("once@example.org", now=now)
    token = token_of(links(mailbox.wait_for("once@example.org"), "/signin/verify")[0])
    user = a.verify(token, now=now + dt.timedelta(minutes=1))
    assert user.email == "once@example.org"
    with pytest.raises(mail.InvalidToken, match="used already"):
        a.verify(token, now=now + dt.timedelta(minutes=2))
    a.request_sign_in("once@example.org", now=now)
    late = token_of(links(mailbox.wait_for("once@example.org", 2), "/signin/verify")[0])
    with pytest.raises(mail.InvalidToken, match="expired; sign in again"):
        a.verify(late, now=now + accounts_mod.SIGNIN_TTL + dt.timedelta(seconds=1))
    link_id, expires, _ = mail.parse_token(late)
    forged = mail.make_token(b"another key", "signin", link_id, "nonce", expires)
    for bad in (forged, late[:-1] + ("0" if late[-1] != "0" else "1"), "garbage", "99999.0." + "0" * 40):
        with pytest.raises(mail.InvalidToken):
            a.verify(bad, now=now)
    # a page for the bad link, not a server error
    assert client.get("/signin/verify?token=garbage").status_code == 200  # the GET only shows a button
    r = client.post("/signin/verify", data={"token": "garbage", "csrf_token": csrf(client)})
    assert r.status_code == 400 and "not valid" in r.text


def test_same_answer_for_known_and_unknown_addresses(client, mailbox):
    sign_in(client, mailbox, "known@example.org")
    client.post("/signout", data={"csrf_token": csrf(client)})
    pages = []
    for email in ("known@example.org", "unknown@example.org"):
        r = client.post("/signin", data={"email": email, "csrf_token": csrf(client, "/signin")})
        pages.append((r.status_code, r.text.replace(email, "EMAIL")))
    assert pages[0] == pages[1]
    # both get a link: the unknown address gets its account when (and if) it follows it
    mailbox.wait_for("unknown@example.org")
    assert store_of(client).accounts.user_by_email("unknown@example.org") is None
    known, unknown = (m for m in mailbox.messages[-2:])
    assert known["Subject"] == unknown["Subject"] == "Sign in to paperradar"


def test_sign_in_mails_are_rate_limited(client, mailbox):
    token = csrf(client, "/signin")
    codes = [client.post("/signin", data={"email": "limit@example.org", "csrf_token": token}).status_code
             for _ in range(accounts_mod.ADDRESS_LIMIT + 2)]
    assert codes[:accounts_mod.ADDRESS_LIMIT] == [200] * accounts_mod.ADDRESS_LIMIT
    assert codes[accounts_mod.ADDRESS_LIMIT:] == [429, 429]
    assert len([m for m in mailbox.wait(accounts_mod.ADDRESS_LIMIT) if m["To"] == "limit@example.org"]) \
        == accounts_mod.ADDRESS_LIMIT
    # and per client, whatever the addresses
    a = Accounts(store_of(client), client.app.state.services.settings)
    with pytest.raises(Exception, match="too many sign-in requests"):
        for i in range(accounts_mod.CLIENT_LIMIT + 1):
            a.request_sign_in(f"user{i}@example.org", client="203.0.113.9")


def test_bad_addresses_are_refused_on_the_form(client):
    for bad in ("not an address", "a@b", "x" * 300 + "@example.org", "ünï@example.org"):
        r = client.post("/signin", data={"email": bad, "csrf_token": csrf(client, "/signin")})
        assert r.status_code == 400 and "does not look like an e-mail address" in r.text


def test_every_state_change_needs_csrf(client, mailbox):
    sign_in(client, mailbox, "csrf@example.org")
    for path, fields in [("/signin", {"email": "x@example.org"}), ("/signout", {}),
                         ("/papers/2606.99002/save", {"tag": "x"}), ("/papers/2606.99002/vote", {}),
                         ("/papers/2606.99002/dismiss", {}), ("/papers/2606.99002/unsave", {}),
                         ("/settings/digest", {"trending": "on"}), ("/settings/digest/stop", {}),
                         ("/settings/delete", {"confirm": "csrf@example.org"}),
                         ("/library/tag/rename", {"tag": "x", "name": "y"}),
                         ("/library/tag/delete", {"tag": "x"}),
                         ("/signin/verify", {"token": "1.1." + "0" * 40})]:
        for token in ("", "forged"):
            r = client.post(path, data={**fields, "csrf_token": token})
            assert r.status_code == 400 and "did not come from this site" in r.text, path
    r = client.post("/library/import", data={"csrf_token": "forged"},
                    files={"file": ("x.bib", b"@misc{a, title={T}}")})
    assert r.status_code == 400
    user = store_of(client).accounts.user_by_email("csrf@example.org")
    assert user is not None and store_of(client).accounts.saved_ids(user.id) == []
    assert store_of(client).vote_totals([store_of(client).get("2606.99002").id]) == {
        store_of(client).get("2606.99002").id: 0}


def test_signed_out_visitors_are_sent_to_sign_in(client):
    for path in ("/for-you", "/library", "/settings", "/library/export?format=json"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/signin?next="), path
    r = client.post("/papers/2606.99002/save", data={"csrf_token": csrf(client)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/signin")
    assert client.get("/api/v1/me/feed").status_code == 401


def test_save_tag_vote_dismiss_and_the_library(client, mailbox):
    sign_in(client, mailbox, "lib@example.org")
    token = csrf(client)
    r = client.post("/papers/2606.99002/save", data={"tag": "graphs", "next": "/paper/2606.99002",
                                                     "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/paper/2606.99002"
    client.post("/papers/2606.99003/save", data={"tag": "Graphs", "csrf_token": token})  # same tag
    client.post("/papers/2606.99003/save", data={"tag": "to read", "csrf_token": token})
    client.post("/papers/2606.99002/vote", data={"on": "true", "csrf_token": token})
    client.post("/papers/2606.99002/vote", data={"on": "true", "csrf_token": token})  # one vote per user
    s = store_of(client)
    pid = s.get("2606.99002").id
    assert s.vote_totals([pid])[pid] == 1
    page = client.get("/paper/2606.99002").text
    assert "▲ Voted" in page and 'href="/library?tag=graphs"' in page
    lib = client.get("/library").text
    assert "Message passing networks" in lib and "graphs" in lib and "to read" in lib
    tagged = client.get("/library?tag=to+read").text
    assert "Message passing networks" in tagged and "2606.99002" not in tagged.split("<h1>")[1]
    assert "Message passing" in client.get("/library?q=crystal").text
    assert "Message passing" not in client.get("/library?q=proteins+-crystal").text.split("<h1>")[1]
    # unvote, dismiss, undo
    client.post("/papers/2606.99002/vote", data={"on": "false", "csrf_token": token})
    assert s.vote_totals([pid])[pid] == 0
    client.post(f"/papers/{CURIE[0]}/dismiss", data={"on": "true", "csrf_token": token})
    user = s.accounts.user_by_email("lib@example.org")
    assert s.accounts.dismissed_ids(user.id) == [pid]
    # rename and delete a tag
    client.post("/library/tag/rename", data={"tag": "to read", "name": "later", "csrf_token": token})
    assert [t.name for t in s.accounts.tags(user.id)] == ["graphs", "later"]
    client.post("/library/tag/delete", data={"tag": "later", "csrf_token": token})
    assert [t.name for t in s.accounts.tags(user.id)] == ["graphs"]
    assert client.get("/library?tag=nope").status_code == 404


def test_users_see_only_their_own_library(client, mailbox, data, shared_engine):
    sign_in(client, mailbox, "alice@example.org")
    client.post("/papers/2606.99002/save", data={"tag": "secret project", "csrf_token": csrf(client)})
    with make_client(data, shared_engine, mailbox.env) as other:
        sign_in(other, mailbox, "bob@example.org")
        assert "secret project" not in other.get("/library").text
        assert other.get("/library?tag=secret+project").status_code == 404
        exported = json.loads(other.get("/library/export?format=json").text)
        assert exported["papers"] == []
        assert "secret project" not in other.get("/settings").text
        # bob cannot delete alice's tag by name: it is looked up among his own
        assert other.post("/library/tag/delete", data={"tag": "secret project",
                                                        "csrf_token": csrf(other)}).status_code == 404
        assert "alice@example.org" not in other.get("/for-you").text
    close(other)
    assert "secret project" in client.get("/library").text


def test_export_bibtex_and_json_then_import(client, mailbox):
    sign_in(client, mailbox, "export@example.org")
    token = csrf(client)
    for ref in CURIE:
        client.post(f"/papers/{ref}/save", data={"tag": "curie", "csrf_token": token})
    r = client.get("/library/export?tag=curie&format=bibtex")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-bibtex")
    assert 'filename="paperradar-curie.bib"' in r.headers["content-disposition"]
    entries, problems = bibtex.parse(r.text)
    assert not problems and sorted(e.fields["eprint"] for e in entries) == sorted(CURIE)
    assert all(e.fields["archiveprefix"] == "arXiv" for e in entries)
    j = client.get("/library/export?format=json").json()
    assert j["format"] == "paperradar-library" and sorted(p["arxiv_id"] for p in j["papers"]) == sorted(CURIE)
    assert all(p["tags"] == ["curie"] for p in j["papers"])
    # import: our own export into another tag, plus entries matched by DOI-less title, unknown, malformed
    other = store_of(client).newest(limit=1)[0]
    extra = (f"@article{{bytitle,\n  title = {{{other.title.upper()}}},\n  author = {{Someone}}\n}}\n\n"
             "@misc{unknown,\n  title = {A paper this server has never heard of},\n"
             "  eprint = {2101.00001}\n}\n\n"
             "@misc{broken,\n  title = {unbalanced\n\n")
    r = client.post("/library/import", data={"tag": "imported here", "csrf_token": token},
                    files={"file": ("refs.bib", (r.text + "\n" + extra).encode())})
    assert r.status_code == 200
    assert "3 matched" in r.text and "1 not found" in r.text and "malformed" in r.text
    assert "A paper this server has never heard of" in r.text
    user = store_of(client).accounts.user_by_email("export@example.org")
    tag = store_of(client).accounts.tag(user.id, "imported here")
    assert tag.papers == 3


def test_for_you_feed_with_reasons(client, mailbox):
    sign_in(client, mailbox, "feed@example.org")
    s = store_of(client)
    r = client.get("/for-you")
    assert r.status_code == 200 and "Save a few papers" in r.text  # cold start, nothing saved
    token = csrf(client)
    client.post(f"/papers/{CURIE[0]}/save", data={"tag": "graphs", "csrf_token": token})
    r = client.get("/for-you")
    assert "until there are 3" in r.text and "Related to your saved" in r.text
    # three papers on graph networks: the model takes over, and says why
    graph_papers = [h.paper for h in client.app.state.services.engine.search(
        "graph neural networks", limit=6).hits if h.paper.arxiv_id not in CURIE]
    for p in [*CURIE, *(q.key for q in graph_papers[:2])]:
        client.post(f"/papers/{p}/save", data={"tag": "graphs", "csrf_token": token})
    api = client.get("/api/v1/me/feed?window=all&limit=10").json()
    assert api["mode"] == "model" and api["saved"] == 4 and api["items"]
    first = api["items"][0]
    assert first["because"] and 0 < first["score"] <= 1 and first["why"] == "model"
    saved = set(s.accounts.saved_ids(s.accounts.user_by_email("feed@example.org").id))
    assert not {i["id"] for i in api["items"]} & saved
    page = client.get("/for-you?window=all").text
    assert "Ranked by a model of your 4 saved papers" in page and "Close to your saved" in page
    # filters: categories, words to leave out, threshold
    only = client.get("/api/v1/me/feed?window=all&cat=cs.CL&limit=20").json()["items"]
    assert all(any(c == "cs.CL" or c.startswith("cs.CL.") for c in i["categories"]) for i in only)
    word = re.findall(r"[a-z][a-z0-9]+", first["title"].lower())[0]
    left = client.get(f"/api/v1/me/feed?window=all&exclude={word}:").json()["items"]  # punctuation is no word
    assert left and all(word not in re.findall(r"[a-z][a-z0-9]+", i["title"].lower()) for i in left)
    strong = client.get("/api/v1/me/feed?window=all&min_score=0.9").json()["items"]
    assert all(i["score"] >= 0.9 for i in strong)
    # "not interested" hides a paper and is learnt from
    client.post(f"/papers/{first['key']}/dismiss", data={"on": "true", "csrf_token": token})
    assert first["id"] not in {i["id"] for i in client.get("/api/v1/me/feed?window=all").json()["items"]}
    assert client.get("/for-you?window=decade").status_code == 400


def test_model_is_cached_until_the_library_changes(client, mailbox):
    from paperradar.recommend import Recommender

    s = store_of(client)
    user = s.accounts.ensure_user("cache@example.org", "2026-06-12T00:00:00Z")
    lib = Library(s)
    for ref in (*CURIE, "2606.99001"):
        lib.save(user, ref, "t")
    rec = Recommender(s, client.app.state.services.engine)
    user = s.accounts.user(user.id)
    rec.model(user)
    trained = s.db.execute("SELECT trained, library_version FROM user_models").fetchall()
    calls = []
    rec.train = lambda *a, **k: calls.append(a)  # a cached model is not retrained
    rec.model(user)
    assert calls == []
    assert s.db.execute("SELECT trained, library_version FROM user_models").fetchall() == trained
    lib.dismiss(user, s.newest(limit=1)[0].key)
    assert s.accounts.user(user.id).library_version > user.library_version


def test_settings_digest_and_delete_account(client, mailbox):
    sign_in(client, mailbox, "gone@example.org")
    token = csrf(client)
    r = client.post("/settings/digest", data={"trending": "on", "searches": "graph networks",
                                              "max_papers": "5", "hour": "7", "tz": "Europe/Paris",
                                              "csrf_token": token},
                    follow_redirects=False)
    assert r.status_code == 303
    s = store_of(client)
    sub = s.subscriptions.by_email("gone@example.org")
    assert sub.status == "active" and sub.searches == ("graph networks",) and sub.tz == "Europe/Paris"
    assert "Active: mailed at 07:00" in client.get("/settings").text
    client.post(f"/papers/{CURIE[0]}/save", data={"tag": "mine", "csrf_token": token})
    client.post(f"/papers/{CURIE[0]}/vote", data={"on": "true", "csrf_token": token})
    client.post(f"/papers/{CURIE[1]}/dismiss", data={"csrf_token": token})
    # the address must be typed
    assert client.post("/settings/delete", data={"confirm": "x@example.org", "csrf_token": token}
                       ).status_code == 400
    user = s.accounts.user_by_email("gone@example.org")
    r = client.post("/settings/delete", data={"confirm": "GONE@example.org", "csrf_token": token})
    assert r.status_code == 200 and "Account deleted" in r.text
    counts = {t: s.db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
              for t in ("users", "sessions", "tags", "library", "dismissed", "user_models", "signin_links")}
    assert counts == dict.fromkeys(counts, 0)
    assert s.db.execute("SELECT count(*) FROM votes WHERE voter = ?", (user.voter,)).fetchone()[0] == 0
    assert s.subscriptions.by_email("gone@example.org") is None
    assert client.get("/library", follow_redirects=False).status_code == 303


def test_digest_has_a_for_you_section_for_signed_in_subscribers(client, mailbox):
    s = store_of(client)
    settings = client.app.state.services.settings
    d = Digests(s, client.app.state.services.engine, settings)
    d.subscribe_verified("reader@example.org", Preferences(trending=True))
    d.subscribe_verified("anon@example.org", Preferences(trending=True))
    user = s.accounts.ensure_user("reader@example.org", "2026-06-01T00:00:00Z")
    for ref in (*CURIE, "2606.99001"):
        Library(s).save(user, ref, "graphs")
    now = dt.datetime(2026, 6, 12, 9, 0, tzinfo=dt.UTC)
    mine = d.compose(s.subscriptions.by_email("reader@example.org"), now)
    theirs = d.compose(s.subscriptions.by_email("anon@example.org"), now)
    assert mine.for_you and not theirs.for_you
    assert all(r.paper.id not in s.accounts.saved_ids(user.id) for r in mine.for_you)
    text, html = d.render(mine)
    assert "For you" in text and "For you" in html and "Close to your saved" in text
    assert "For you" not in d.render(theirs)[0]


def test_without_a_mail_server_the_link_goes_to_the_log(data, shared_engine, caplog):
    """A single researcher on their own machine: no SMTP set up, the sign-in link is in the server's log
    (signed with the data directory's key), and the page says where to find it."""
    with make_client(data, shared_engine, {}) as client:
        with caplog.at_level("WARNING", logger="paperradar.accounts"):
            r = client.post("/signin", data={"email": "solo@example.org",
                                             "csrf_token": csrf(client, "/signin")})
        assert r.status_code == 200 and "written to its log" in r.text
        (record,) = [rec for rec in caplog.records if rec.name == "paperradar.accounts"]
        url = re.search(r"https?://\S+", record.getMessage()).group(0)
        assert "solo@example.org" in record.getMessage()
        page = client.get(local(url))
        r = client.post("/signin/verify", data={"token": token_of(url), "csrf_token": CSRF.search(
            page.text).group(1)}, follow_redirects=False)
        assert r.status_code == 303 and "solo@example.org" in client.get("/settings").text
    close(client)


def test_export_of_a_tag_in_any_script(client, mailbox):
    sign_in(client, mailbox, "script@example.org")
    client.post(f"/papers/{CURIE[0]}/save", data={"tag": "数据 données", "csrf_token": csrf(client)})
    r = client.get("/library/export?" + urlencode({"tag": "数据 données", "format": "json"}))
    assert r.status_code == 200 and r.json()["papers"][0]["arxiv_id"] == CURIE[0]
    assert r.headers["content-disposition"].isascii()
