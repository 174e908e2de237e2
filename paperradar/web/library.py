"""The library on the web: the actions on paper cards (save, vote, not interested), the library pages
(tags, search inside, export as BibTeX / RIS / JSON, import of BibTeX, RIS, CSL JSON or Zotero RDF) and
the "For you" feed with its JSON twin.

The core does the work (paperradar.library, .recommend); pages of a user's own data need the session
cookie and show only that user's data; every state change is a POST with the CSRF token.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse, RedirectResponse, Response

from .. import references
from ..library import LibraryError
from ..notes import render_markdown
from ..query import QueryError
from ..recommend import WINDOWS, FeedFilters, Recommender
from ..store import User
from .deps import check_csrf, current_user, library, services
from .navigation import back, to_sign_in
from .templating import render

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/v1/me", tags=["v1"])
MAX_IMPORT_BYTES = 5 * 2**20
EXPORTS = {"bibtex": ("application/x-bibtex", "bib"), "ris": ("application/x-research-info-systems", "ris"),
           "json": ("application/json", "json")}


# -- actions on papers ---------------------------------------------------------------------------------------
def _act(request: Request, csrf_token: str, action, then: Response) -> Response:
    """Run ``action(library, user)`` for the signed-in user and answer ``then`` (else: to sign in)."""
    check_csrf(request, csrf_token)
    user = current_user(request)
    if user is None:
        return to_sign_in(request)
    action(library(request), user)
    return then


@router.post("/papers/{ref:path}/save")
def save(request: Request, ref: str, tag: str = Form("", max_length=200),
         next: str = Form("/", max_length=2000), csrf_token: str = Form("", max_length=200)):
    return _act(request, csrf_token, lambda lib, u: lib.save(u, ref, tag or None), back(next))


@router.post("/papers/{ref:path}/unsave")
def unsave(request: Request, ref: str, tag: str = Form("", max_length=200),
           next: str = Form("/", max_length=2000), csrf_token: str = Form("", max_length=200)):
    return _act(request, csrf_token, lambda lib, u: lib.unsave(u, ref, tag or None), back(next))


@router.post("/papers/{ref:path}/vote")
def vote(request: Request, ref: str, on: bool = Form(True), next: str = Form("/", max_length=2000),
         csrf_token: str = Form("", max_length=200)):
    return _act(request, csrf_token, lambda lib, u: lib.vote(u, ref, on), back(next))


@router.post("/papers/{ref:path}/dismiss")
def dismiss(request: Request, ref: str, on: bool = Form(True), next: str = Form("/", max_length=2000),
            csrf_token: str = Form("", max_length=200)):
    return _act(request, csrf_token, lambda lib, u: lib.dismiss(u, ref, on), back(next))


# -- the library ---------------------------------------------------------------------------------------------
@router.get("/library")
def library_page(request: Request, tag: str = Query("", max_length=200), q: str = Query("", max_length=1000)):
    user = current_user(request)
    if user is None:
        return to_sign_in(request)
    svc = services(request)
    lib = library(request)
    error = None
    with svc.bounded():
        tags = lib.tags(user)
        try:
            items = lib.items(user, tag or None, q)
        except QueryError as e:
            items, error = lib.items(user, tag or None), str(e)
    return render(request, "library.html", {"me": user, "tags": tags, "tag": tag, "q": q, "items": items,
                                            "error": error, "formats": references.FORMATS.values(),
                                            "md": render_markdown},
                  status=400 if error else 200)


@router.get("/library/export")
def library_export(request: Request, tag: str = Query("", max_length=200),
                   format: str = Query("bibtex", pattern="^(bibtex|json|ris)$")):
    user = current_user(request)
    if user is None:
        return to_sign_in(request)
    lib = library(request)
    with services(request).bounded():
        if format == "bibtex":
            body = lib.export_bibtex(user, tag or None)
        elif format == "ris":
            body = lib.export_ris(user, tag or None)
        else:
            body = json.dumps(lib.export_json(user, tag or None), indent=2, ensure_ascii=False) + "\n"
    # ASCII only: a header is latin-1, and a tag may be any script
    name = "".join(c if (c.isascii() and c.isalnum()) or c in "-_" else "-" for c in (tag or "library"))[:60]
    media, ext = EXPORTS[format]
    return Response(body, media_type=f"{media}; charset=utf-8",
                    headers={"content-disposition": f'attachment; filename="paperradar-{name}.{ext}"'})


@router.post("/library/import")
def library_import(request: Request, file: UploadFile = File(...), tag: str = Form("", max_length=200),
                   format: str = Form(references.AUTO, max_length=20),
                   csrf_token: str = Form("", max_length=200)):
    check_csrf(request, csrf_token)
    user = current_user(request)
    if user is None:
        return to_sign_in(request)
    data = file.file.read(MAX_IMPORT_BYTES + 1)  # a spooled temporary file: this thread may block on it
    if len(data) > MAX_IMPORT_BYTES:
        raise LibraryError(f"the file is larger than {MAX_IMPORT_BYTES // 2**20} MB")
    # parsed here, in the request's thread; the core matches and saves in one transaction
    report = library(request).import_file(user, references.decode(data), tag or None, format=format,
                                          filename=file.filename)
    return render(request, "library_import.html", {"me": user, "report": report, "filename": file.filename,
                                                   "format": references.FORMATS[report.format]})


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
    return Recommender(svc.store, svc.engine).feed(user, tag=tag or None, filters=filters, limit=limit)


@router.get("/for-you")
def for_you(request: Request, tag: str = Query("", max_length=200),
            window: str = Query("month", max_length=20), cat: str = Query("", max_length=200),
            include: str = Query("", max_length=1000),
            exclude: str = Query("", max_length=1000), min_score: float = Query(0.0, ge=0.0, le=1.0)):
    user = current_user(request)
    if user is None:
        return to_sign_in(request)
    args = {"tag": tag, "window": window, "cat": cat, "include": include, "exclude": exclude,
            "min_score": min_score}
    error, feed = None, None
    svc = services(request)
    with svc.bounded():
        tags = library(request).tags(user)
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
