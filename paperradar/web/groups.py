"""Groups, notes and comments on the web: the group pages (members, invitations, the shared library and its
feed, the group digest: each member's choice of mail, the owners' schedule, searches and chat destinations),
joining by an invitation link, the one-click link that stops a member's digest mail, and the note and comment
forms of the paper page, with a JSON API of the groups a user is in.

The core does the work and the checks (paperradar.groups, .notes): a group the user is not in is a 404
like one that does not exist. Every state change is a POST with the CSRF token; nothing here is cached, so
a member removed is out on their next request.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse

from ..groups import Groups
from ..notes import Notes, render_markdown
from ..notify import DestinationError
from ..query import QueryError
from ..recommend import WINDOWS, FeedFilters
from .deps import check_csrf, current_user, services
from .navigation import back, local, to_sign_in
from .templating import render

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/v1/groups", tags=["v1"])
MAX_ID = 2**62  # ids beyond SQLite's integers are 404s like any other unknown id, not overflow errors
GroupId = Path(ge=1, le=MAX_ID)
TEXT = 60_000  # form characters of a note or comment (the core's limits are smaller and say so)


def _groups(request: Request) -> Groups:
    svc = services(request)
    return Groups(svc.store, svc.settings, svc.engine)


def _notes(request: Request) -> Notes:
    svc = services(request)
    return Notes(svc.store, svc.settings.comments_public)


def _id(value: str) -> int | None:
    """A form's optional group id ('' or 'private': none)."""
    value = (value or "").strip()
    if not value.isdigit() or len(value) > 18:
        return None
    return int(value)


def _to_group(gid: int, tag: str = "", anchor: str = "") -> RedirectResponse:
    query = f"?{urlencode({'tag': tag})}" if tag else ""
    return RedirectResponse(f"/groups/{gid}{query}{anchor}", status_code=303)


# -- groups --------------------------------------------------------------------------------------------------
@router.get("/groups")
def groups_page(request: Request):
    user = current_user(request)
    if user is None:
        return to_sign_in(request)
    return render(request, "groups.html", {"groups": _groups(request).mine(user)})


@router.post("/groups")
def create_group(request: Request, name: str = Form("", max_length=500), csrf_token: str = Form("",
                                                                                                max_length=200)):
    check_csrf(request, csrf_token)
    user = current_user(request)
    if user is None:
        return to_sign_in(request)
    return _to_group(_groups(request).create(user, name).id)


@router.get("/groups/join")
def join_page(request: Request, token: str = Query("", max_length=300)):
    """What an invitation link opens: which group, and a button (a GET changes nothing)."""
    user = current_user(request)
    if user is None:
        return to_sign_in(request)
    name = _groups(request).invitation(token)
    return render(request, "group_join.html", {"name": name, "token": token})


@router.post("/groups/join")
def join(request: Request, token: str = Form("", max_length=300), csrf_token: str = Form("", max_length=200)):
    check_csrf(request, csrf_token)
    user = current_user(request)
    if user is None:
        return to_sign_in(request)
    return _to_group(_groups(request).join(user, token).id)


def _group_page(request: Request, user, gid: int, tag: str = "", *, invited=None,
                destination_error: str | None = None, destination_url: str = "", status: int = 200):
    groups = _groups(request)
    with services(request).bounded():
        view = groups.view(user, gid, tag or None)
        owner = view.group.role == "owner"
        invites = groups.pending_invites(user, gid) if owner else []
        notes = _notes(request).notes_for(user, [i.paper.id for i in view.items]) if invited is None else {}
        hour, tz, searches = groups.schedule(user, gid)
        destinations = groups.destinations(user, gid) if owner else []
    me = next((m for m in view.members if m.user_id == user.id), None)
    return render(request, "group.html", {
        "v": view, "tag": tag, "invites": invites, "notes": notes, "mails": groups.mails_invites,
        "invited": invited, "md": render_markdown, "digest_mail": me is not None and me.digest,
        "digest_hour": hour, "digest_tz": tz, "digest_searches": searches, "destinations": destinations,
        "destination_error": destination_error, "destination_url": destination_url}, status=status)


@router.get("/groups/{gid}")
def group_page(request: Request, gid: int = GroupId, tag: str = Query("", max_length=200)):
    user = current_user(request)
    if user is None:
        return to_sign_in(request)
    return _group_page(request, user, gid, tag)


@router.post("/groups/{gid}/invite")
def invite(request: Request, gid: int = GroupId, email: str = Form("", max_length=320),
           csrf_token: str = Form("", max_length=200)):
    check_csrf(request, csrf_token)
    user = current_user(request)
    if user is None:
        return to_sign_in(request)
    invited = _groups(request).invite(user, gid, email or None)  # mailed after its transaction
    return _group_page(request, user, gid, invited=invited)


def _owner_action(request: Request, csrf_token: str, action, then):
    check_csrf(request, csrf_token)
    user = current_user(request)
    if user is None:
        return to_sign_in(request)
    action(_groups(request), user)
    return then


@router.post("/groups/{gid}/invites/{iid}/revoke")
def revoke(request: Request, gid: int = GroupId, iid: int = Path(ge=1, le=MAX_ID),
           csrf_token: str = Form("", max_length=200)):
    return _owner_action(request, csrf_token, lambda g, u: g.revoke(u, gid, iid), _to_group(gid))


@router.post("/groups/{gid}/rename")
def rename(request: Request, gid: int = GroupId, name: str = Form("", max_length=500),
           csrf_token: str = Form("", max_length=200)):
    return _owner_action(request, csrf_token, lambda g, u: g.rename(u, gid, name), _to_group(gid))


@router.post("/groups/{gid}/members/{uid}/remove")
def remove_member(request: Request, gid: int = GroupId, uid: int = Path(ge=1, le=MAX_ID),
                  csrf_token: str = Form("", max_length=200)):
    return _owner_action(request, csrf_token, lambda g, u: g.remove(u, gid, uid), _to_group(gid))


@router.post("/groups/{gid}/members/{uid}/role")
def set_role(request: Request, gid: int = GroupId, uid: int = Path(ge=1, le=MAX_ID),
             role: str = Form("", max_length=20), csrf_token: str = Form("", max_length=200)):
    return _owner_action(request, csrf_token, lambda g, u: g.set_role(u, gid, uid, role), _to_group(gid))


@router.post("/groups/{gid}/leave")
def leave(request: Request, gid: int = GroupId, csrf_token: str = Form("", max_length=200)):
    return _owner_action(request, csrf_token, lambda g, u: g.leave(u, gid),
                         RedirectResponse("/groups", status_code=303))


@router.post("/groups/{gid}/delete")
def delete(request: Request, gid: int = GroupId, csrf_token: str = Form("", max_length=200)):
    return _owner_action(request, csrf_token, lambda g, u: g.delete(u, gid),
                         RedirectResponse("/groups", status_code=303))


# -- the group digest ----------------------------------------------------------------------------------------
@router.post("/groups/{gid}/digest")
def group_digest_mail(request: Request, gid: int = GroupId, mail: str = Form("", max_length=10),
                      csrf_token: str = Form("", max_length=200)):
    """A member's own choice: the group digest by mail or not."""
    return _owner_action(request, csrf_token, lambda g, u: g.set_digest(u, gid, mail == "on"),
                         _to_group(gid, anchor="#group-digest"))


@router.post("/groups/{gid}/digest/schedule")
def group_digest_schedule(request: Request, gid: int = GroupId, hour: str = Form("8", max_length=10),
                          tz: str = Form("UTC", max_length=100), searches: str = Form("", max_length=5000),
                          csrf_token: str = Form("", max_length=200)):
    return _owner_action(request, csrf_token,
                         lambda g, u: g.set_schedule(u, gid, hour, tz, searches.splitlines()),
                         _to_group(gid, anchor="#group-digest"))


@router.post("/groups/{gid}/destinations")
def group_destination_add(request: Request, gid: int = GroupId, url: str = Form("", max_length=2000),
                          csrf_token: str = Form("", max_length=200)):
    """An owner adds a chat destination for the group digest; a bad one is explained on the page."""
    check_csrf(request, csrf_token)
    user = current_user(request)
    if user is None:
        return to_sign_in(request)
    try:
        _groups(request).add_destination(user, gid, url)
    except DestinationError as e:
        # the URL goes back into the field only while it is not saved (it is the owner's own input)
        return _group_page(request, user, gid, destination_error=str(e), destination_url=url,
                           status=e.http_status)
    return _to_group(gid, anchor="#destinations-title")


@router.post("/groups/{gid}/destinations/{did}/{action}")
def group_destination_change(request: Request, gid: int = GroupId, did: int = Path(ge=1, le=MAX_ID),
                             action: str = Path(pattern="^(delete|resume)$"),
                             csrf_token: str = Form("", max_length=200)):
    return _owner_action(request, csrf_token, lambda g, u: g.change_destination(u, gid, did, action),
                         _to_group(gid, anchor="#destinations-title"))


@router.get("/groups/{gid}/digest/stop")
def group_digest_stop_page(request: Request, gid: int = GroupId, token: str = Query("", max_length=300)):
    """What the stop link of a digest mail opens: a button (a GET changes nothing)."""
    name, address = _groups(request).stop_digest(gid, token, act=False)
    return render(request, "group_digest_stop.html", {"gid": gid, "name": name, "address": address,
                                                      "token": token, "done": False})


@router.post("/groups/{gid}/digest/stop")
def group_digest_stop(request: Request, gid: int = GroupId, token: str = Query("", max_length=300)):
    """RFC 8058 one-click: mail clients POST here without a CSRF token; the signed token is the
    authorization (it names the member, and is good while they stay in the group)."""
    name, address = _groups(request).stop_digest(gid, token)
    return render(request, "group_digest_stop.html", {"gid": gid, "name": name, "address": address,
                                                      "token": token, "done": True})


# -- the group library and feed ------------------------------------------------------------------------------
@router.post("/groups/{gid}/save")
def group_save(request: Request, gid: int = GroupId, paper: str = Form("", max_length=200),
               tag: str = Form("", max_length=200), next: str = Form("", max_length=2000),
               csrf_token: str = Form("", max_length=200)):
    then = back(next) if local(next, "") else _to_group(gid)
    return _owner_action(request, csrf_token, lambda g, u: g.save(u, gid, paper, tag or None), then)


@router.post("/groups/{gid}/unsave")
def group_unsave(request: Request, gid: int = GroupId, paper: str = Form("", max_length=200),
                 tag: str = Form("", max_length=200), csrf_token: str = Form("", max_length=200)):
    return _owner_action(request, csrf_token, lambda g, u: g.unsave(u, gid, paper, tag or None),
                         _to_group(gid, tag))


@router.get("/groups/{gid}/for-you")
def group_feed(request: Request, gid: int = GroupId, window: str = Query("month", max_length=20)):
    user = current_user(request)
    if user is None:
        return to_sign_in(request)
    groups = _groups(request)
    error, feed, who = None, None, {}
    with services(request).bounded():
        group = groups.get(user, gid)
        try:
            feed, who = groups.feed(user, gid, FeedFilters(window=window), limit=30)
        except QueryError as e:
            error = str(e)
    return render(request, "group_for_you.html", {"group": group, "feed": feed, "who": who, "window": window,
                                                  "windows": list(WINDOWS), "error": error},
                  status=400 if error else 200)


# -- notes and comments (the paper page's forms) ---------------------------------------------------------
def _paper_back(ref: str, anchor: str) -> RedirectResponse:
    return RedirectResponse(f"/paper/{quote(ref, safe='/:')}#{anchor}", status_code=303)


def _act(request: Request, csrf_token: str, action, then):
    check_csrf(request, csrf_token)
    user = current_user(request)
    if user is None:
        return to_sign_in(request)
    action(_notes(request), user)
    return then


@router.post("/papers/{ref:path}/notes")
def add_note(request: Request, ref: str, body: str = Form("", max_length=TEXT), group: str = Form("",
                                                                                                  max_length=40),
             csrf_token: str = Form("", max_length=200)):
    return _act(request, csrf_token, lambda n, u: n.add_note(u, ref, body, _id(group)), _paper_back(ref,
                                                                                                    "notes"))


@router.post("/notes/{nid}/edit")
def edit_note(request: Request, nid: int = Path(ge=1, le=MAX_ID), body: str = Form("", max_length=TEXT),
              group: str = Form("", max_length=40), next: str = Form("/", max_length=2000),
              csrf_token: str = Form("", max_length=200)):
    return _act(request, csrf_token, lambda n, u: n.edit_note(u, nid, body, _id(group)), back(next))


@router.post("/notes/{nid}/delete")
def delete_note(request: Request, nid: int = Path(ge=1, le=MAX_ID), next: str = Form("/", max_length=2000),
                csrf_token: str = Form("", max_length=200)):
    return _act(request, csrf_token, lambda n, u: n.delete_note(u, nid), back(next))


@router.post("/papers/{ref:path}/comments")
def add_comment(request: Request, ref: str, body: str = Form("", max_length=TEXT),
                group: str = Form("", max_length=40), csrf_token: str = Form("", max_length=200)):
    return _act(request, csrf_token, lambda n, u: n.add_comment(u, ref, body, _id(group)),
                _paper_back(ref, "comments"))


@router.post("/comments/{cid}/edit")
def edit_comment(request: Request, cid: int = Path(ge=1, le=MAX_ID), body: str = Form("", max_length=TEXT),
                 next: str = Form("/", max_length=2000), csrf_token: str = Form("", max_length=200)):
    return _act(request, csrf_token, lambda n, u: n.edit_comment(u, cid, body), back(next))


@router.post("/comments/{cid}/delete")
def delete_comment(request: Request, cid: int = Path(ge=1, le=MAX_ID), next: str = Form("/", max_length=2000),
                   csrf_token: str = Form("", max_length=200)):
    return _act(request, csrf_token, lambda n, u: n.delete_comment(u, cid), back(next))


# -- the API -------------------------------------------------------------------------------------------------
def _unauthorised() -> JSONResponse:
    return JSONResponse({"error": {"status": 401, "message": "sign in first"}}, status_code=401)


@api.get("", summary="The groups the signed-in user is in")
def groups_api(request: Request):
    user = current_user(request)
    if user is None:
        return _unauthorised()
    return {"groups": [{"id": g.id, "name": g.name, "role": g.role} for g in _groups(request).mine(user)]}


@api.get("/{gid}", summary="A group's members and library")
def group_api(request: Request, gid: int = GroupId):
    """Needs the session cookie of a member; any other group is a 404, as if it did not exist."""
    user = current_user(request)
    if user is None:
        return _unauthorised()
    with services(request).bounded():
        v = _groups(request).view(user, gid)
    return {"id": v.group.id, "name": v.group.name, "role": v.group.role,
            "members": [{"email": m.email, "role": m.role} for m in v.members],
            "tags": [{"name": name, "papers": n} for _, name, n in v.tags],
            "papers": [{**i.paper.to_dict(), "tags": list(i.tags), "saved_by": list(i.saved_by),
                        "added": i.added}
                       for i in v.items]}
