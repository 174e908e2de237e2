"""Accounts on the web: magic-link sign-in, sign-out, and the settings page (digest, delete the account).

The core does the work (paperradar.accounts, .digest); this module turns forms into its calls. Every state
change is a POST with the CSRF token; a sign-in request gets the same answer whatever the address.
"""

from __future__ import annotations

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse

from ..accounts import SignInError
from ..digest import MAX_PAPERS, SubscribeError
from ..errors import RateLimited
from ..mail import MailNotConfigured, canonical_address
from ..notify import DestinationError
from ..query import QueryError
from ..store import User
from .deps import SESSION_COOKIE, accounts, check_csrf, client_address, current_user, digests, library, secure
from .deps import zotero as zotero_sync
from .forms import ZONES, form, form_of, preferences
from .navigation import back, local, to_sign_in
from .templating import no_mail, render

router = APIRouter(include_in_schema=False)
TOKEN = 200


# -- sign in and out ----------------------------------------------------------------------------------------
@router.get("/signin")
def signin_form(request: Request, next: str = Query("/for-you", max_length=2000)):
    if current_user(request):
        return back(next)
    return render(request, "signin.html", {"next": local(next, "/for-you"), "email": "", "error": None})


@router.post("/signin")
def signin(request: Request, email: str = Form("", max_length=320),
           next: str = Form("/for-you", max_length=2000), csrf_token: str = Form("", max_length=200)):
    """Mails a sign-in link. The page that follows is the same for every address (no account enumeration)."""
    check_csrf(request, csrf_token)
    a = accounts(request)
    try:
        a.request_sign_in(email, client=client_address(request), next_path=local(next, ""))
    except (SignInError, RateLimited) as e:
        return render(request, "signin.html", {"next": local(next), "email": email, "error": str(e)},
                      status=e.http_status)
    except MailNotConfigured as e:
        return no_mail(request, e)
    # the address as the link will sign it in (canonical: "Ada@Example.org " is ada@example.org)
    return render(request, "signin_sent.html", {"email": canonical_address(email) or email.strip(),
                                                "mailed": a.mails_links})


@router.get("/signin/verify")
def verify_page(request: Request, token: str = Query("", max_length=TOKEN),
                next: str = Query("", max_length=2000)):
    """A button, not the sign-in itself: mail scanners open links, and the link works only once. The page
    names the address the link signs in (or says the link is no good) before anyone presses it."""
    return render(request, "signin_verify.html", {"token": token, "next": local(next, "/for-you"),
                                                  "address": accounts(request).link_address(token)})


@router.post("/signin/verify")
def verify(request: Request, token: str = Form("", max_length=TOKEN), next: str = Form("", max_length=2000),
           csrf_token: str = Form("", max_length=200)):
    check_csrf(request, csrf_token)
    a = accounts(request)
    user = a.verify(token)
    session = a.start_session(user)
    response = RedirectResponse(local(next, "/for-you"), status_code=303)
    response.set_cookie(SESSION_COOKIE, session, max_age=30 * 24 * 3600, httponly=True, samesite="lax",
                        secure=secure(request), path="/")
    return response


@router.post("/signout")
def signout(request: Request, csrf_token: str = Form("", max_length=200)):
    check_csrf(request, csrf_token)
    accounts(request).sign_out(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# -- settings ----------------------------------------------------------------------------------------------
def _settings_page(request: Request, user: User, *, values: dict | None = None, error: str | None = None,
                   saved: bool = False, status: int = 200, destination_error: str | None = None,
                   destination_url: str = ""):
    sub = digests(request).subs.by_email(user.email)
    values = values or (form_of(sub) if sub else form(user.email))
    return render(request, "settings.html", {
        "me": user, "sub": sub, "form": values, "error": error, "saved": saved, "zones": ZONES,
        "max_papers_limit": MAX_PAPERS, "tags": library(request).tags(user),
        "destinations": digests(request).subs.destinations(sub.id) if sub else [],
        "destination_error": destination_error, "destination_url": destination_url,
        "zotero": zotero_sync(request).connection(user)}, status=status)


@router.get("/settings")
def settings_page(request: Request, saved: bool = Query(False)):
    user = current_user(request)
    if user is None:
        return to_sign_in(request)
    return _settings_page(request, user, saved=saved)


@router.post("/settings/digest")
def settings_digest(request: Request, trending: bool = Form(False),
                    searches: str = Form("", max_length=12_000), max_papers: str = Form("10", max_length=20),
                    hour: str = Form("8", max_length=20),
                    tz: str = Form("UTC", max_length=100), csrf_token: str = Form("", max_length=200)):
    """Subscribe or change the digest of the signed-in user: their address is proven, so no confirmation."""
    check_csrf(request, csrf_token)
    user = current_user(request)
    if user is None:
        return to_sign_in(request)
    try:
        prefs = preferences(trending, searches, max_papers, hour, tz)
        digests(request).subscribe_verified(user.email, prefs)
    except (SubscribeError, QueryError) as e:
        values = form(user.email, trending, searches, max_papers, hour, tz)
        return _settings_page(request, user, values=values, error=str(e), status=e.http_status)
    return RedirectResponse("/settings?saved=1", status_code=303)


@router.post("/settings/digest/stop")
def settings_digest_stop(request: Request, csrf_token: str = Form("", max_length=200)):
    check_csrf(request, csrf_token)
    user = current_user(request)
    if user is None:
        return to_sign_in(request)
    digests(request).stop(user.email)
    return RedirectResponse("/settings?saved=1", status_code=303)


# -- chat destinations of the digest (paperradar.notify) -----------------------------------------------------
@router.post("/settings/destinations")
def settings_destination_add(request: Request, url: str = Form("", max_length=2000),
                             csrf_token: str = Form("", max_length=200)):
    """Add a chat destination (an apprise URL) to the signed-in user's digest; a bad one is explained."""
    check_csrf(request, csrf_token)
    user = current_user(request)
    if user is None:
        return to_sign_in(request)
    d = digests(request)
    sub = d.subs.by_email(user.email)
    if sub is None or sub.status != "active":  # the destinations' section is not shown: say it on top
        return _settings_page(request, user, error="start the daily digest first: chat destinations get the "
                              "same digest", status=400)
    try:
        d.chats.add(sub, url)
    except DestinationError as e:
        # the URL goes back into the field only while it is not saved (it is the owner's own input)
        return _settings_page(request, user, destination_error=str(e), destination_url=url,
                              status=e.http_status)
    return RedirectResponse("/settings?saved=1#destinations-title", status_code=303)


@router.post("/settings/destinations/{destination_id}/{action}")
def settings_destination_change(request: Request, destination_id: int, action: str,
                                csrf_token: str = Form("", max_length=200)):
    """Remove a destination, or resume one that was failing."""
    check_csrf(request, csrf_token)
    user = current_user(request)
    if user is None:
        return to_sign_in(request)
    d = digests(request)
    sub = d.subs.by_email(user.email)
    if sub is not None and action in ("delete", "resume"):
        (d.chats.remove if action == "delete" else d.chats.resume)(sub, destination_id)
    return RedirectResponse("/settings?saved=1#destinations-title", status_code=303)


@router.post("/settings/delete")
def delete_account(request: Request, confirm: str = Form("", max_length=320),
                   csrf_token: str = Form("", max_length=200)):
    """Delete the account and all its data; the user types their address to confirm."""
    check_csrf(request, csrf_token)
    user = current_user(request)
    if user is None:
        return to_sign_in(request)
    if confirm.strip().lower() != user.email.lower():
        return _settings_page(request, user, error="type your address to confirm deleting the account",
                              status=400)
    accounts(request).delete(user)
    request.state.user = None
    response = render(request, "account_deleted.html", {"email": user.email})
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


