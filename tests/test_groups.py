"""Groups, notes and comments through the real app (a real SQLite copy of the web corpus, mails received by a
real SMTP server): creating a group, inviting by a mailed or copied link that works once and expires,
joining, roles, leaving, removal taking effect on the next request, deleting a group or an account with
all its data; the group library and feed; notes (private or shared, found by the library search) and
comments (edit, delete, removal by owners, rate limit, CSRF); and every cross-group access refused with the
same 404 as an id that does not exist."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient
from mailsink import links
from webclient import csrf, local, token_of

from paperradar import mail, notes
from paperradar.accounts import Accounts
from paperradar.groups import Groups
from paperradar.store.groups import GroupStore
from paperradar.web.deps import SESSION_COOKIE

CURIE = ["2606.99002", "2606.99003"]
MARKUP = "2606.99001"
TABLES = ["group_members", "group_invites", "group_tags", "group_library", "notes", "comments"]


def as_user(client, email: str) -> tuple[TestClient, object]:
    """A second browser over the same app, signed in as ``email`` (the sign-in flow itself is
    test_accounts.py's)."""
    svc = client.app.state.services
    acc = Accounts(svc.store, svc.settings)
    user = acc.db.ensure_user(email, "2026-01-01T00:00:00Z")
    c = TestClient(client.app)
    c.cookies.set(SESSION_COOKIE, acc.start_session(user))
    return c, user


def post(c, path: str, data: dict | None = None, page: str = "/groups", **kw):
    return c.post(path, data={**(data or {}), "csrf_token": csrf(c, page)}, follow_redirects=False, **kw)


def make_group(c, name: str = "Reading group") -> int:
    r = post(c, "/groups", {"name": name})
    assert r.status_code == 303
    return int(re.fullmatch(r"/groups/(\d+)", r.headers["location"]).group(1))


def invite_link(c, gid: int) -> str:
    page = post(c, f"/groups/{gid}/invite", {"email": ""}).text
    return re.search(r'class="invite-link" readonly value="([^"]+)"', page).group(1).replace("&amp;", "&")


def join(c, url: str):
    page = c.get(local(url))
    assert page.status_code == 200 and "Join the group" in page.text
    return post(c, "/groups/join", {"token": token_of(url)})


@pytest.fixture
def lab(client):
    """A group of two (owner Ada, member Bob) and an outsider (Eve) with a group of her own."""
    ada, _ = as_user(client, "ada@example.org")
    bob, _ = as_user(client, "bob@example.org")
    eve, _ = as_user(client, "eve@example.org")
    gid = make_group(ada)
    assert join(bob, invite_link(ada, gid)).status_code == 303
    other = make_group(eve, "Eve's group")
    return {"ada": ada, "bob": bob, "eve": eve, "gid": gid, "other": other,
            "store": client.app.state.services.store}


def test_create_invite_by_mail_and_join_once(client, mailbox):
    ada, _ = as_user(client, "ada@example.org")
    gid = make_group(ada, "Graph reading group")
    assert "Graph reading group" in ada.get("/groups").text
    page = post(ada, f"/groups/{gid}/invite", {"email": "Carol@Example.org"})
    assert page.status_code == 200 and "Invitation mailed to carol@example.org" in page.text
    (url,) = links(mailbox.wait_for("carol@example.org"), "/groups/join")
    carol, _ = as_user(client, "carol@example.org")
    r = join(carol, url)
    assert r.status_code == 303 and r.headers["location"] == f"/groups/{gid}"
    assert "carol@example.org" in ada.get(f"/groups/{gid}").text
    # single use: the link again, by anyone, is refused without a traceback
    dave, _ = as_user(client, "dave@example.org")
    again = dave.get(local(url))
    assert again.status_code == 400 and "used already" in again.text
    assert post(dave, "/groups/join", {"token": token_of(url)}).status_code == 400
    assert dave.get(f"/groups/{gid}").status_code == 404


def test_invitation_links_expire_and_cannot_be_forged(client):
    svc = client.app.state.services
    groups = Groups(svc.store, svc.settings)
    ada, owner = as_user(client, "ada@example.org")
    _, bob = as_user(client, "bob@example.org")
    gid = make_group(ada)
    now = dt.datetime(2026, 6, 1, 8, tzinfo=dt.UTC)
    inv = groups.invite(owner, gid, now=now)
    with pytest.raises(mail.InvalidToken, match="expired"):
        groups.join(bob, token_of(inv.url), now=now + dt.timedelta(days=3, minutes=1))
    token = token_of(inv.url)
    forged = token[:-4] + ("0000" if not token.endswith("0000") else "1111")
    guessed = f"{int(token.split('.')[0]) + 1}.{token.split('.', 1)[1]}"
    for bad in (forged, guessed, "x", "9" * 40 + ".1.ab", ""):
        r = as_user(client, "bob@example.org")[0].get("/groups/join", params={"token": bad})
        assert r.status_code == 400 and "Traceback" not in r.text


def test_no_mail_server_shows_the_link_to_copy(client):
    ada, _ = as_user(client, "ada@example.org")
    gid = make_group(ada)
    page = post(ada, f"/groups/{gid}/invite", {"email": ""}).text
    assert "Send this link yourself" in page and "/groups/join?token=" in page


def test_cross_group_access_is_a_404_like_a_missing_group(lab):
    eve, gid, other = lab["eve"], lab["gid"], lab["other"]
    missing = 10**9
    for g in (gid, missing, 2**62):
        for path in (f"/groups/{g}", f"/groups/{g}/for-you", f"/api/v1/groups/{g}"):
            r = eve.get(path)
            assert r.status_code == 404, (path, r.status_code)
            assert "Reading group" not in r.text and "ada@example.org" not in r.text
        for action, data in [("save", {"paper": CURIE[0]}), ("unsave", {"paper": CURIE[0]}),
                             ("invite", {"email": ""}), ("leave", {}), ("delete", {}), ("rename",
                                                                                        {"name": "x"}),
                             ("members/1/remove", {}), ("members/1/role", {"role": "owner"})]:
            r = post(eve, f"/groups/{g}/{action}", data)
            assert r.status_code == 404, (action, g, r.status_code)
    assert eve.get("/groups/99999999999999999999999").status_code in (400, 404)
    assert [g["id"] for g in eve.get("/api/v1/groups").json()["groups"]] == [other]
    # Ada's group is intact after all that
    assert lab["ada"].get(f"/api/v1/groups/{gid}").json()["members"][1]["email"] == "bob@example.org"


def test_group_library_says_who_saved_what(lab):
    ada, bob, gid = lab["ada"], lab["bob"], lab["gid"]
    assert post(bob, f"/groups/{gid}/save", {"paper": CURIE[0], "tag": "graphs"}).status_code == 303
    assert post(ada, f"/groups/{gid}/save", {"paper": CURIE[1], "tag": "graphs"}).status_code == 303
    data = ada.get(f"/api/v1/groups/{gid}").json()
    saved = {p["key"]: p["saved_by"] for p in data["papers"]}
    assert saved == {CURIE[0]: ["bob@example.org"], CURIE[1]: ["ada@example.org"]}
    assert data["tags"] == [{"name": "graphs", "papers": 2}]
    page = bob.get(f"/groups/{gid}", params={"tag": "graphs"}).text
    assert "Saved by bob@example.org" in page and "Saved by ada@example.org" in page
    # from the paper page, into a group: the button names the group
    assert f'formaction="/groups/{gid}/save"' in bob.get(f"/paper/{MARKUP}").text
    r = post(bob, f"/groups/{gid}/save", {"paper": MARKUP, "next": f"/paper/{MARKUP}"})
    assert r.headers["location"] == f"/paper/{MARKUP}"


def test_group_feed_names_the_saved_paper_and_who_saved_it(lab):
    ada, gid = lab["ada"], lab["gid"]
    for key in CURIE:
        post(lab["bob"], f"/groups/{gid}/save", {"paper": key})
    page = ada.get(f"/groups/{gid}/for-you", params={"window": "all"})
    assert page.status_code == 200
    assert "saved by bob@example.org" in page.text and "Close to" in page.text


def test_removal_takes_effect_on_the_next_request(lab):
    ada, bob, gid, store = lab["ada"], lab["bob"], lab["gid"], lab["store"]
    bob_id = store.accounts.user_by_email("bob@example.org").id
    assert bob.get(f"/groups/{gid}").status_code == 200
    assert post(ada, f"/groups/{gid}/members/{bob_id}/remove").status_code == 303
    assert bob.get(f"/groups/{gid}").status_code == 404
    assert post(bob, f"/groups/{gid}/save", {"paper": CURIE[0]}).status_code == 404
    # a member cannot remove or invite (only owners), and cannot see others' groups
    carol, _ = as_user(lab["ada"], "carol@example.org")
    join(carol, invite_link(ada, gid))
    ada_id = store.accounts.user_by_email("ada@example.org").id
    assert post(carol, f"/groups/{gid}/members/{ada_id}/remove").status_code == 400
    assert post(carol, f"/groups/{gid}/invite").status_code == 400


def test_leave_hands_the_group_on_and_delete_removes_everything(lab):
    ada, bob, gid, store = lab["ada"], lab["bob"], lab["gid"], lab["store"]
    post(bob, f"/groups/{gid}/save", {"paper": CURIE[0]})
    post(bob, f"/paper/{CURIE[0]}".replace("/paper/", "/papers/") + "/comments", {"body": "nice",
                                                                                  "group": gid},
         page=f"/paper/{CURIE[0]}")
    post(ada, f"/papers/{CURIE[0]}/notes", {"body": "for the group", "group": gid}, page=f"/paper/{CURIE[0]}")
    assert post(ada, f"/groups/{gid}/leave").status_code == 303
    assert bob.get(f"/api/v1/groups/{gid}").json()["role"] == "owner"
    # Ada's note shared with the group she left is hers alone again
    assert "for the group" not in bob.get(f"/paper/{CURIE[0]}").text
    assert post(bob, f"/groups/{gid}/delete").status_code == 303
    for table in TABLES:
        rows = store.db.execute(f"SELECT count(*) FROM {table} WHERE group_id = ?", (gid,)).fetchone()[0]
        assert rows == 0, table
    assert store.db.execute("SELECT count(*) FROM groups WHERE id = ?", (gid,)).fetchone()[0] == 0


def test_deleting_an_account_deletes_its_group_data(lab):
    ada, gid, store = lab["ada"], lab["gid"], lab["store"]
    eve_id = store.accounts.user_by_email("eve@example.org").id
    post(lab["eve"], f"/papers/{CURIE[0]}/notes", {"body": "eve's note"}, page=f"/paper/{CURIE[0]}")
    post(lab["eve"], f"/papers/{CURIE[0]}/comments", {"body": "eve's comment", "group": lab["other"]},
         page=f"/paper/{CURIE[0]}")
    store.accounts.delete_user(eve_id)  # Eve's own group, with nobody else in it, goes with her
    assert store.db.execute("SELECT count(*) FROM groups WHERE id = ?", (lab["other"],)).fetchone()[0] == 0
    for table in ("notes", "comments", "group_members"):
        assert store.db.execute(f"SELECT count(*) FROM {table} WHERE user_id = ?",
                                (eve_id,)).fetchone()[0] == 0
    # Ada alone owns a group with Bob in it: deleting her account hands it to Bob
    store.accounts.delete_user(store.accounts.user_by_email("ada@example.org").id)
    assert lab["bob"].get(f"/api/v1/groups/{gid}").json()["role"] == "owner"
    assert ada.get("/groups").status_code == 200  # signed out now: the page asks to sign in, no error


def test_notes_private_or_shared_and_found_by_the_library_search(lab):
    ada, bob, eve, gid = lab["ada"], lab["bob"], lab["eve"], lab["gid"]
    page = f"/paper/{CURIE[0]}"
    assert post(ada, f"/papers/{CURIE[0]}/notes", {"body": "my *private* zanzibar thought"},
                page=page).status_code == 303
    assert post(ada, f"/papers/{CURIE[0]}/notes", {"body": "for the **lab**: see [code](https://example.org/x)",
                                                   "group": str(gid)}, page=page).status_code == 303
    mine = ada.get(page).text
    link = '<a href="https://example.org/x" rel="nofollow noopener noreferrer">'
    assert "<em>private</em>" in mine and link in mine
    theirs = bob.get(page).text
    assert "<strong>lab</strong>" in theirs and "zanzibar" not in theirs
    assert "<strong>lab</strong>" not in eve.get(page).text
    # a note shared with a group Eve is not in: refused as if the group did not exist
    assert post(eve, f"/papers/{CURIE[0]}/notes", {"body": "x", "group": str(gid)},
                page=page).status_code == 404
    # the library search finds a paper by its note
    post(ada, f"/papers/{CURIE[0]}/save", {"tag": "t"}, page=page)
    post(ada, f"/papers/{CURIE[1]}/save", {"tag": "t"}, page=page)
    found = ada.get("/library", params={"q": "zanzibar"}).text
    assert "1 paper matching" in found and "zanzibar" in found
    # Eve cannot edit or delete Ada's note
    nid = lab["store"].db.execute("SELECT id FROM notes WHERE body LIKE 'my%'").fetchone()[0]
    assert post(eve, f"/notes/{nid}/edit", {"body": "hacked"}, page=page).status_code == 404
    assert post(bob, f"/notes/{nid}/delete", page=page).status_code == 404
    assert post(ada, f"/notes/{nid}/delete", {"next": page}, page=page).status_code == 303


def test_comments_edit_delete_remove_and_visibility(lab):
    ada, bob, eve, gid = lab["ada"], lab["bob"], lab["eve"], lab["gid"]
    page = f"/paper/{CURIE[1]}"
    assert post(bob, f"/papers/{CURIE[1]}/comments", {"body": "Is Fig. 2 right?", "group": str(gid)},
                page=page).status_code == 303
    assert "Is Fig. 2 right?" in ada.get(page).text
    assert "Is Fig. 2 right?" not in eve.get(page).text
    cid = lab["store"].db.execute("SELECT id FROM comments").fetchone()[0]
    # only the author edits; an outsider's attempts are 404s
    assert post(ada, f"/comments/{cid}/edit", {"body": "x"}, page=page).status_code == 404
    assert post(eve, f"/comments/{cid}/edit", {"body": "x"}, page=page).status_code == 404
    assert post(eve, f"/comments/{cid}/delete", page=page).status_code == 404
    assert post(bob, f"/comments/{cid}/edit", {"body": "Is Fig. 3 right?", "next": page},
                page=page).status_code == 303
    assert "Is Fig. 3 right?" in ada.get(page).text
    # the group's owner removes it
    assert post(ada, f"/comments/{cid}/delete", {"next": page}, page=page).status_code == 303
    assert "Fig. 3" not in bob.get(page).text
    # public comments are off by default: a comment without a group is refused, saying why
    r = post(bob, f"/papers/{CURIE[1]}/comments", {"body": "hello all"}, page=page)
    assert r.status_code == 400 and "public comments" in r.text
    # CSRF: without the token nothing happens
    r = bob.post(f"/papers/{CURIE[1]}/comments", data={"body": "x", "group": str(gid)},
                 follow_redirects=False)
    assert r.status_code == 400
    assert lab["store"].db.execute("SELECT count(*) FROM comments").fetchone()[0] == 0


def test_comment_rate_limit(lab, monkeypatch):
    monkeypatch.setattr(notes, "COMMENT_LIMIT", 3)
    page = f"/paper/{CURIE[1]}"
    codes = [post(lab["bob"], f"/papers/{CURIE[1]}/comments", {"body": f"c{i}", "group": str(lab["gid"])},
                  page=page).status_code for i in range(4)]
    assert codes == [303, 303, 303, 429]


@pytest.mark.parametrize("body", [
    "<script>alert(1)</script>", "[x](javascript:alert(1))", "<img src=x onerror=alert(1)>",
    "\x00\x01\x1b[31m red \u202e \U0010ffff \x7f", ">" * 5000, "[" * 10000, "`" * 10000, "*a " * 6000,
    "<a href='http://x' onclick='alert(1)'>y</a>", "![i](http://tracker.example/p.png)",
])
def test_hostile_notes_never_break_the_page(lab, body):
    ada, page = lab["ada"], f"/paper/{CURIE[0]}"
    r = post(ada, f"/papers/{CURIE[0]}/notes", {"body": body}, page=page)
    assert r.status_code in (303, 400), r.status_code
    shown = ada.get(page)
    assert shown.status_code == 200
    html = shown.text.split('id="notes"')[1].split('id="comments"')[0]
    for tag in re.findall(r"<[a-zA-Z][^>]*>", html):  # text may say anything; no tag may act
        assert not re.match(r"<(script|img|iframe|style)", tag, re.I), tag
        assert "javascript:" not in tag and not re.search(r"\son\w+=", tag), tag


def test_huge_and_empty_notes_are_refused_with_a_message(lab):
    ada, page = lab["ada"], f"/paper/{CURIE[0]}"
    r = post(ada, f"/papers/{CURIE[0]}/notes", {"body": "x" * 20_001}, page=page)
    assert r.status_code == 400 and "at most 20,000 characters" in r.text
    r = post(ada, f"/papers/{CURIE[0]}/notes", {"body": " \x00\n "}, page=page)
    assert r.status_code == 400 and "empty" in r.text
    r = post(ada, "/papers/no-such-paper/notes", {"body": "x"}, page=page)
    assert r.status_code == 404
    assert GroupStore(lab["store"]).notes_on(1, 1) == []


def test_the_digest_counts_new_comments_on_papers_you_saved(lab):
    from paperradar.digest import Digests, Preferences

    svc = lab["ada"].app.state.services
    ada, bob, gid, page = lab["ada"], lab["bob"], lab["gid"], f"/paper/{CURIE[0]}"
    post(ada, f"/papers/{CURIE[0]}/save", {"tag": "t"}, page=page)
    for i in range(3):
        post(bob, f"/papers/{CURIE[0]}/comments", {"body": f"thought {i}", "group": str(gid)}, page=page)
    post(ada, f"/papers/{CURIE[0]}/comments", {"body": "my own", "group": str(gid)}, page=page)
    post(lab["eve"], f"/papers/{CURIE[0]}/comments", {"body": "elsewhere", "group": str(lab["other"])},
         page=page)
    digests = Digests(svc.store, svc.engine, svc.settings)
    sub = digests.subscribe_verified("ada@example.org", Preferences())
    text, html = digests.preview_for(sub)
    assert "3 new comments on papers you saved" in text and "3 new comments on papers you saved" in html
    bob_sub = digests.subscribe_verified("bob@example.org", Preferences())
    assert "new comment" not in digests.preview_for(bob_sub)[0]  # his own, on a paper he did not save
