"""Zotero sync on the web: the page of a user's key, library, collection and tag, and the sync button.

The core does the work (paperradar.zotero). The API key goes in once, through a password field, and is never
written into a page again (the page shows its last four characters); a sync's error is kept with the sync
state and shown on this page and on the settings page. Every state change is a POST with the CSRF token.
"""

from __future__ import annotations

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse

from ..library import LibraryError
from ..store import User
from ..zotero import ZoteroError
from .deps import check_csrf, current_user, library, zotero
from .navigation import to_sign_in
from .templating import render

router = APIRouter(include_in_schema=False)
HERE = "/settings/zotero"


def _page(request: Request, user: User, *, form: dict | None = None, error: str | None = None,
          hint: str | None = None, saved: bool = False, status: int = 200):
    z = zotero(request).connection(user)
    form = form or {"library_type": (z["library"].split("/")[0] if z else "users"),
                    "library_id": (z["library"].split("/")[1] if z else ""),
                    "collection": z["collection_name"] if z else "", "tag": z["tag"] if z else ""}
    context = {"me": user, "z": z, "form": form, "error": error, "hint": hint, "saved": saved,
               "tags": library(request).tags(user)}
    return render(request, "zotero.html", context, status=status)


@router.get(HERE)
def zotero_page(request: Request, saved: bool = Query(False)):
    user = current_user(request)
    if user is None:
        return to_sign_in(request)
    return _page(request, user, saved=saved)


@router.post(HERE)
def zotero_save(request: Request, api_key: str = Form("", max_length=200),
                library_type: str = Form("users", max_length=20), library_id: str = Form("", max_length=20),
                collection: str = Form("", max_length=300), tag: str = Form("", max_length=200),
                csrf_token: str = Form("", max_length=200)):
    """Save the key (blank: keep the saved one), library, collection and tag, once Zotero accepts them."""
    check_csrf(request, csrf_token)
    user = current_user(request)
    if user is None:
        return to_sign_in(request)
    try:
        zotero(request).connect(user, api_key=api_key, library_type=library_type, library_id=library_id,
                                collection=collection, tag=tag)
    except (ZoteroError, LibraryError) as e:
        # the form comes back without the key: it is never written into a page
        form = {"library_type": library_type, "library_id": library_id, "collection": collection, "tag": tag}
        return _page(request, user, form=form, error=str(e), hint=e.hint, status=e.http_status)
    return RedirectResponse(HERE + "?saved=1", status_code=303)


@router.post(HERE + "/sync")
def zotero_sync(request: Request, csrf_token: str = Form("", max_length=200)):
    """Sync now; the page shows what changed, or why Zotero said no."""
    check_csrf(request, csrf_token)
    user = current_user(request)
    if user is None:
        return to_sign_in(request)
    try:
        zotero(request).sync(user)
    except ZoteroError as e:
        return _page(request, user, error=f"Zotero sync failed: {e}", hint=e.hint, status=e.http_status)
    return RedirectResponse(HERE, status_code=303)


@router.post(HERE + "/remove")
def zotero_remove(request: Request, csrf_token: str = Form("", max_length=200)):
    """Forget the key and the sync state; the tag and the Zotero collection stay as they are."""
    check_csrf(request, csrf_token)
    user = current_user(request)
    if user is None:
        return to_sign_in(request)
    zotero(request).disconnect(user)
    return RedirectResponse(HERE + "?saved=1", status_code=303)
