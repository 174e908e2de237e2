"""Accounts on the web: magic-link sign-in, sign-out, settings (digest, delete the account), the library
(tags, search inside, export, BibTeX import), the actions on paper cards (save, vote, not interested) and
the "For you" feed.

The core does the work (paperradar.accounts, .library, .recommend); this module turns forms into its calls.
Every state change is a POST with the CSRF token; pages of a user's own data need the session cookie and
show only that user's data. A sign-in request gets the same answer whatever the address.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse, RedirectResponse, Response

from ..accounts import Accounts, SignInError
from ..digest import MAX_PAPERS, Digests, RateLimited, SubscribeError
from ..library import Library, LibraryError
from ..mail import MailNotConfigured
from ..query import QueryError
from ..recommend import WINDOWS, FeedFilters, Recommender
from ..store import User
from .app import Services
from .pages import _check_csrf, render
from .subscribe import ZONES, _client, _form, _form_of, _no_mail, _preferences

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/v1/me", tags=["v1"])
SESSION_COOKIE = "paperradar_session"
TOKEN = 200
MAX_IMPORT_BYTES = 5 * 2**20


def services(request: Request) -> Services:
    return request.app.state.services


def accounts(request: Request) -> Accounts:
    svc = services(request)
    return Accounts(svc.store, svc.settings)


def current_user(request: Request) -> User | None:
    """The signed-in user of this request (looked up once per request), or None."""
    if not hasattr(request.state, "user"):
        request.state.user = accounts(request).session_user(request.cookies.get(SESSION_COOKIE))
    return request.state.user


def _local(path: str | None, default: str = "/") -> str:
    """A path on this site to go back to; anything else (another site, a scheme) becomes ``default``."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path or any(
            c in path for c in "\r\n"):
        return default
    return path


def _to_sign_in(request: Request) -> RedirectResponse:
    """Off to the sign-in page, and back here (a POST: back to the page it came from) afterwards."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":
        referer = urlsplit(request.headers.get("referer", ""))
        here = referer.path + (f"?{referer.query}" if referer.query else "") \
            if referer.netloc == request.url.netloc else "/"
    return RedirectResponse("/signin?" + urlencode({"next": here}), status_code=303)


def _back(next_path: str | None) -> RedirectResponse:
    return RedirectResponse(_local(next_path), status_code=303)


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or services(request).settings.base_url.startswith(
        "https:")


# -- sign in and out ----------------------------------------------------------------------------------------
@router.get("/signin")
def signin_form(request: Request, next: str = Query("/for-you", max_length=2000)):
    if current_user(request):
        return _back(next)
    return render(request, "signin.html", {"next": _local(next, "/for-you"), "email": "", "error": None})


@router.post("/signin")
def signin(request: Request, email: str = Form("", max_length=320),
           next: str = Form("/for-you", max_length=2000), csrf_token: str = Form("", max_length=200)):
    """Mails a sign-in link. The page that follows is the same for every address (no account enumeration)."""
    _check_csrf(request, csrf_token)
    a = accounts(request)
    try:
        with services(request).write_lock:
            a.request_sign_in(email, client=_client(request), next_path=_local(next, ""))
    except (SignInError, RateLimited) as e:
        return render(request, "signin.html", {"next": _local(next), "email": email, "error": str(e)},
                      status=e.http_status)
    except MailNotConfigured as e:
        return _no_mail(request, e)
    return render(request, "signin_sent.html", {"email": email.strip(), "mailed": a.mails_links})


@router.get("/signin/verify")
def verify_page(request: Request, token: str = Query("", max_length=TOKEN),
                next: str = Query("", max_length=2000)):
    """A button, not the sign-in itself: mail scanners open links, and the link works only once."""
    return render(request, "signin_verify.html", {"token": token, "next": _local(next, "/for-you")})


@router.post("/signin/verify")
def verify(request: Request, token: str = Form("", max_length=TOKEN), next: str = Form("", max_length=2000),
           csrf_token: str = Form("", max_length=200)):
    _check_csrf(request, csrf_token)
    a = accounts(request)
    with services(request).write_lock:
        user = a.verify(token)
        session = a.start_session(user)
    response = RedirectResponse(_local(next, "/for-you"), status_code=303)
    response.set_cookie(SESSION_COOKIE, session, max_age=30 * 24 * 3600, httponly=True, samesite="lax",
                        secure=_secure(request), path="/")
    return response


@router.post("/signout")
def signout(request: Request, csrf_token: str = Form("", max_length=200)):
    _check_csrf(request, csrf_token)
    with services(request).write_lock:
        accounts(request).sign_out(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# -- settings ----------------------------------------------------------------------------------------------
def _digests(request: Request) -> Digests:
    svc = services(request)
    return Digests(svc.store, svc.engine, svc.settings)


def _settings_page(request: Request, user: User, *, form: dict | None = None, error: str | None = None,
                   saved: bool = False, status: int = 200):
    sub = _digests(request).subs.by_email(user.email)
    form = form or (_form_of(sub) if sub else _form(user.email))
    return render(request, "settings.html", {
        "me": user, "sub": sub, "form": form, "error": error, "saved": saved, "zones": ZONES,
        "max_papers_limit": MAX_PAPERS, "tags": Library(services(request).store).tags(user)}, status=status)


@router.get("/settings")
def settings_page(request: Request, saved: bool = Query(False)):
    user = current_user(request)
    if user is None:
        return _to_sign_in(request)
    return _settings_page(request, user, saved=saved)


@router.post("/settings/digest")
def settings_digest(request: Request, trending: bool = Form(False),
                    searches: str = Form("", max_length=12_000), max_papers: str = Form("10", max_length=20),
                    hour: str = Form("8", max_length=20),
                    tz: str = Form("UTC", max_length=100), csrf_token: str = Form("", max_length=200)):
    """Subscribe or change the digest of the signed-in user: their address is proven, so no confirmation."""
    _check_csrf(request, csrf_token)
    user = current_user(request)
    if user is None:
        return _to_sign_in(request)
    try:
        prefs = _preferences(trending, searches, max_papers, hour, tz)
        with services(request).write_lock:
            _digests(request).subscribe_verified(user.email, prefs)
    except (SubscribeError, QueryError) as e:
        return _settings_page(request, user, form=_form(user.email, trending, searches, max_papers, hour, tz),
                              error=str(e), status=e.http_status)
    return RedirectResponse("/settings?saved=1", status_code=303)


@router.post("/settings/digest/stop")
def settings_digest_stop(request: Request, csrf_token: str = Form("", max_length=200)):
    _check_csrf(request, csrf_token)
    user = current_user(request)
    if user is None:
        return _to_sign_in(request)
    with services(request).write_lock:
        _digests(request).stop(user.email)
    return RedirectResponse("/settings?saved=1", status_code=303)


@router.post("/settings/delete")
def delete_account(request: Request, confirm: str = Form("", max_length=320),
                   csrf_token: str = Form("", max_length=200)):
    """Delete the account and all its data; the user types their address to confirm."""
    _check_csrf(request, csrf_token)
    user = current_user(request)
    if user is None:
        return _to_sign_in(request)
    if confirm.strip().lower() != user.email.lower():
        return _settings_page(request, user, error="type your address to confirm deleting the account",
                              status=400)
    with services(request).write_lock:
        accounts(request).delete(user)
    request.state.user = None
    response = render(request, "account_deleted.html", {"email": user.email})
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# -- actions on papers ---------------------------------------------------------------------------------------
def _act(request: Request, csrf_token: str, action, then: Response) -> Response:
    """Run ``action(library, user)`` for the signed-in user and answer ``then`` (else: to sign in)."""
    _check_csrf(request, csrf_token)
    user = current_user(request)
    if user is None:
        return _to_sign_in(request)
    with services(request).write_lock:
        action(Library(services(request).store), user)
    return then


@router.post("/papers/{ref:path}/save")
def save(request: Request, ref: str, tag: str = Form("", max_length=200),
         next: str = Form("/", max_length=2000), csrf_token: str = Form("", max_length=200)):
    return _act(request, csrf_token, lambda lib, u: lib.save(u, ref, tag or None), _back(next))


@router.post("/papers/{ref:path}/unsave")
def unsave(request: Request, ref: str, tag: str = Form("", max_length=200),
           next: str = Form("/", max_length=2000), csrf_token: str = Form("", max_length=200)):
    return _act(request, csrf_token, lambda lib, u: lib.unsave(u, ref, tag or None), _back(next))


@router.post("/papers/{ref:path}/vote")
def vote(request: Request, ref: str, on: bool = Form(True), next: str = Form("/", max_length=2000),
         csrf_token: str = Form("", max_length=200)):
    return _act(request, csrf_token, lambda lib, u: lib.vote(u, ref, on), _back(next))


@router.post("/papers/{ref:path}/dismiss")
def dismiss(request: Request, ref: str, on: bool = Form(True), next: str = Form("/", max_length=2000),
            csrf_token: str = Form("", max_length=200)):
    return _act(request, csrf_token, lambda lib, u: lib.dismiss(u, ref, on), _back(next))


# -- the library ---------------------------------------------------------------------------------------------
@router.get("/library")
def library_page(request: Request, tag: str = Query("", max_length=200), q: str = Query("", max_length=1000)):
    user = current_user(request)
    if user is None:
        return _to_sign_in(request)
    svc = services(request)
    lib = Library(svc.store)
    error = None
    with svc.bounded():
        tags = lib.tags(user)
        try:
            items = lib.items(user, tag or None, q)
        except QueryError as e:
            items, error = lib.items(user, tag or None), str(e)
    return render(request, "library.html", {"me": user, "tags": tags, "tag": tag, "q": q, "items": items,
                                            "error": error}, status=400 if error else 200)


@router.get("/library/export")
def library_export(request: Request, tag: str = Query("", max_length=200),
                   format: str = Query("bibtex", pattern="^(bibtex|json)$")):
    user = current_user(request)
    if user is None:
        return _to_sign_in(request)
    lib = Library(services(request).store)
    with services(request).bounded():
        body = lib.export_bibtex(user, tag or None) if format == "bibtex" else \
            json.dumps(lib.export_json(user, tag or None), indent=2, ensure_ascii=False) + "\n"
    # ASCII only: a header is latin-1, and a tag may be any script
    name = "".join(c if (c.isascii() and c.isalnum()) or c in "-_" else "-" for c in (tag or "library"))[:60]
    media = "application/x-bibtex" if format == "bibtex" else "application/json"
    ext = "bib" if format == "bibtex" else "json"
    return Response(body, media_type=f"{media}; charset=utf-8",
                    headers={"content-disposition": f'attachment; filename="paperradar-{name}.{ext}"'})


@router.post("/library/import")
def library_import(request: Request, file: UploadFile = File(...), tag: str = Form("", max_length=200),
                   csrf_token: str = Form("", max_length=200)):
    _check_csrf(request, csrf_token)
    user = current_user(request)
    if user is None:
        return _to_sign_in(request)
    data = file.file.read(MAX_IMPORT_BYTES + 1)  # a spooled temporary file: this thread may block on it
    if len(data) > MAX_IMPORT_BYTES:
        raise LibraryError(f"the file is larger than {MAX_IMPORT_BYTES // 2**20} MB")
    with services(request).write_lock:
        report = Library(services(request).store).import_bibtex(user, data.decode("utf-8", errors="replace"),
                                                                tag or None)
    return render(request, "library_import.html", {"me": user, "report": report, "filename": file.filename})


@router.post("/library/tag/rename")
def tag_rename(request: Request, tag: str = Form("", max_length=200), name: str = Form("", max_length=200),
               csrf_token: str = Form("", max_length=200)):
    return _act(request, csrf_token, lambda lib, u: lib.rename_tag(u, tag, name),
                RedirectResponse("/library?" + urlencode({"tag": " ".join(name.split())}), status_code=303))


@router.post("/library/tag/delete")
def tag_delete(request: Request, tag: str = Form("", max_length=200),
               csrf_token: str = Form("", max_length=200)):
    return _act(request, csrf_token, lambda lib, u: lib.delete_tag(u, tag),
                RedirectResponse("/library", status_code=303))


# -- the feed ------------------------------------------------------------------------------------------------
def _filters(window: str, cat: str, include: str, exclude: str, min_score: float) -> FeedFilters:
    return FeedFilters(window=window, categories=cat.replace(",", " ").split(), include=include,
                       exclude=exclude.replace(",", " ").split(), min_score=min_score)


def _feed(request: Request, user: User, tag: str, filters: FeedFilters, limit: int):
    svc = services(request)
    tag_id = svc.store.accounts.tag(user.id, tag).id if tag else None
    return Recommender(svc.store, svc.engine).feed(user, tag_id, filters, limit=limit)


@router.get("/for-you")
def for_you(request: Request, tag: str = Query("", max_length=200),
            window: str = Query("month", max_length=20), cat: str = Query("", max_length=200),
            include: str = Query("", max_length=1000),
            exclude: str = Query("", max_length=1000), min_score: float = Query(0.0, ge=0.0, le=1.0)):
    user = current_user(request)
    if user is None:
        return _to_sign_in(request)
    args = {"tag": tag, "window": window, "cat": cat, "include": include, "exclude": exclude,
            "min_score": min_score}
    error, feed = None, None
    svc = services(request)
    with svc.bounded():
        tags = Library(svc.store).tags(user)
        try:
            feed = _feed(request, user, tag, _filters(window, cat, include, exclude, min_score), 30)
        except QueryError as e:
            error = str(e)
    return render(request, "for_you.html", {"me": user, "feed": feed, "args": None, "f": args, "tags": tags,
                                            "windows": list(WINDOWS), "error": error},
                  status=400 if error else 200)


@api.get("/feed", summary="The signed-in user's recommendations")
def feed_api(request: Request, tag: str = Query("", max_length=200),
             window: str = Query("month", max_length=20), cat: str = Query("", max_length=200),
             include: str = Query("", max_length=1000),
             exclude: str = Query("", max_length=1000), min_score: float = Query(0.0, ge=0.0, le=1.0),
             limit: int = Query(20, ge=1, le=100)):
    """Needs the session cookie of a signed-in browser. Each item says why: ``because`` (the closest saved
    papers) and ``terms`` (words of the user's profile it contains)."""
    user = current_user(request)
    if user is None:
        return JSONResponse({"error": {"status": 401, "message": "sign in first"}}, status_code=401)
    with services(request).bounded():
        feed = _feed(request, user, tag, _filters(window, cat, include, exclude, min_score), limit)
    return {"mode": feed.mode, "saved": feed.saved, "since": feed.since, "until": feed.until,
            "terms": feed.terms, "items": [i.to_dict() for i in feed.items]}
