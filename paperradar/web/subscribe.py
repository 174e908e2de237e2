"""Digest subscriptions on the web: the subscribe forms and their JSON twin, the pages the links in mails
open (confirm, one-click unsubscribe, manage), and a browser preview of a digest.

The core (paperradar.digest) does the work: validation, rate limits, double opt-in, signed links. This
module turns form fields into its calls and its answers into pages. Whatever the address, a subscribe
request gets the same answer, so nobody can learn from it who subscribes.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field

from ..digest import MAX_PAPERS, Digests, Preferences, SubscribeError
from ..errors import RateLimited
from ..mail import MailNotConfigured
from ..notify import DestinationError
from ..query import MAX_QUERY, QueryError
from ..store import Subscriber
from .deps import check_csrf, client_address, digests, services
from .forms import ZONES, form, form_of, preferences
from .templating import no_mail, render

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/v1", tags=["v1"])
# The preview is a mail's HTML: inline style attributes, no script, nothing from elsewhere.
PREVIEW_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'"
TOKEN = 200  # longest token accepted (they are ~60 characters)
FORM_ERRORS = (SubscribeError, QueryError, RateLimited)  # shown on the form, next to what to change


def _page(request: Request, name: str, context: dict, status: int = 200):
    return render(request, name, {"zones": ZONES, "max_papers_limit": MAX_PAPERS, **context}, status=status)


# -- subscribing --------------------------------------------------------------------------------------------
@router.get("/subscribe")
def subscribe_form(request: Request, email: str = Query("", max_length=254),
                   q: str = Query("", max_length=1000)):
    """The full form; ``q`` fills in a saved search (a topic page's or a search's "Subscribe")."""
    error = None
    try:
        digests(request).mail.require()
    except MailNotConfigured:
        error = "This server has no mail set up yet, so it cannot take subscriptions."
    return _page(request, "subscribe.html", {"form": form(email, searches=" ".join(q.split())),
                                             "error": error})


@router.post("/subscribe")
def subscribe(request: Request, email: str = Form("", max_length=320), trending: bool = Form(False),
              searches: str = Form("", max_length=12_000), max_papers: str = Form("10", max_length=20),
              hour: str = Form("8", max_length=20), tz: str = Form("UTC", max_length=100),
              csrf_token: str = Form("", max_length=200)):
    """The home page's and footer's one-field form (trending, 10 papers, 08:00 UTC) and the full form."""
    check_csrf(request, csrf_token)
    values = form(email, trending, searches, max_papers, hour, tz)
    try:
        prefs = preferences(trending, searches, max_papers, hour, tz)
        digests(request).subscribe(email, prefs, client=client_address(request))
    except FORM_ERRORS as e:
        return _page(request, "subscribe.html", {"form": values, "error": str(e)}, status=e.http_status)
    except MailNotConfigured as e:
        return no_mail(request, e)
    services(request).courier.kick()
    return render(request, "subscribe_sent.html", {"email": email.strip()})


class SubscriptionRequest(BaseModel):
    email: str = Field(..., max_length=320, description="The address to mail; it gets a confirmation link.")
    trending: bool = Field(True, description="Include the day's trending papers.")
    searches: list[Annotated[str, Field(max_length=MAX_QUERY)]] = Field(
        default_factory=list, max_length=100,
        description="Saved searches in the query language, filters included: 'graph networks cat:cs.LG'.")
    max_papers: int = Field(10, description=f"Papers per section, 1 to {MAX_PAPERS}.")
    hour: int = Field(8, description="Hour of delivery, 0 to 23, in the time zone tz.")
    tz: str = Field("UTC", max_length=100, description="IANA time zone, e.g. Europe/Paris.")


@api.post("/subscriptions", summary="Subscribe to the daily digest", status_code=202)
def subscribe_api(request: Request, body: SubscriptionRequest):
    """Double opt-in: mails a confirmation link, and nothing else until it is followed. The answer is the
    same whether or not the address was subscribed already."""
    prefs = Preferences(body.trending, body.searches, body.max_papers, body.hour, body.tz)
    digests(request).subscribe(body.email, prefs, client=client_address(request))
    services(request).courier.kick()
    return JSONResponse({"status": "confirmation sent"}, status_code=202)


# -- the links in mails -------------------------------------------------------------------------------------
@router.get("/confirm")
def confirm_page(request: Request, token: str = Query("", max_length=TOKEN)):
    """A button, not the confirmation itself: mail scanners open links, and a GET changes nothing."""
    sub = digests(request).subscriber_for("confirm", token)
    return render(request, "confirm.html", {"token": token, "sub": sub, "confirmed": False})


@router.post("/confirm")
def confirm(request: Request, token: str = Form("", max_length=TOKEN),
            csrf_token: str = Form("", max_length=200)):
    check_csrf(request, csrf_token)
    d = digests(request)
    sub = d.confirm(token)
    return render(request, "confirm.html", {"token": token, "sub": sub, "confirmed": True,
                                            "manage_token": d.token("manage", sub)})


@router.get("/unsubscribe")
def unsubscribe_page(request: Request, token: str = Query("", max_length=TOKEN)):
    sub = digests(request).subscriber_for("unsubscribe", token)
    return render(request, "unsubscribe.html", {"token": token, "sub": sub, "done": False})


@router.post("/unsubscribe")
def unsubscribe(request: Request, token: str = Query("", max_length=TOKEN)):
    """RFC 8058 one-click: mail clients POST ``List-Unsubscribe=One-Click`` here without a CSRF token (they
    have no page to take one from); the signed token in the URL is the authorization."""
    sub = digests(request).unsubscribe(token)
    return render(request, "unsubscribe.html", {"token": token, "sub": sub, "done": True})


@router.get("/subscription")
def manage_page(request: Request, token: str = Query("", max_length=TOKEN)):
    d = digests(request)
    sub = d.subscriber_for("manage", token)
    return _manage(request, d, sub, token, form_of(sub))


def _manage(request: Request, d: Digests, sub: Subscriber, token: str, values: dict, *,
            error: str | None = None, saved: bool = False, status: int = 200,
            destination_error: str | None = None, destination_url: str = ""):
    return _page(request, "subscription.html", {
        "sub": sub, "token": token, "form": values, "error": error, "saved": saved,
        "unsubscribe_token": d.token("unsubscribe", sub), "destinations": d.subs.destinations(sub.id),
        "destination_error": destination_error, "destination_url": destination_url}, status=status)


@router.post("/subscription/destinations")
def manage_destination_add(request: Request, token: str = Form("", max_length=TOKEN),
                           url: str = Form("", max_length=2000), csrf_token: str = Form("", max_length=200)):
    """Add a chat destination through the manage link (the subscriber's own page, no account needed)."""
    check_csrf(request, csrf_token)
    d = digests(request)
    sub = d.subscriber_for("manage", token)
    try:
        if sub.status != "active":
            raise DestinationError("this digest is not active: chat destinations get the same digest")
        d.chats.add(sub, url)
    except DestinationError as e:
        return _manage(request, d, sub, token, form_of(sub), destination_error=str(e), destination_url=url,
                       status=e.http_status)
    return _manage(request, d, sub, token, form_of(sub), saved=True)


@router.post("/subscription/destinations/{destination_id}/{action}")
def manage_destination_change(request: Request, destination_id: int, action: str,
                              token: str = Form("", max_length=TOKEN),
                              csrf_token: str = Form("", max_length=200)):
    """Remove a destination, or resume one that was failing."""
    check_csrf(request, csrf_token)
    d = digests(request)
    sub = d.subscriber_for("manage", token)
    if action in ("delete", "resume"):
        (d.chats.remove if action == "delete" else d.chats.resume)(sub, destination_id)
    return _manage(request, d, sub, token, form_of(sub), saved=True)


@router.post("/subscription")
def manage(request: Request, token: str = Form("", max_length=TOKEN), trending: bool = Form(False),
           searches: str = Form("", max_length=12_000), max_papers: str = Form("10", max_length=20),
           hour: str = Form("8", max_length=20), tz: str = Form("UTC", max_length=100),
           csrf_token: str = Form("", max_length=200)):
    check_csrf(request, csrf_token)
    d = digests(request)
    sub = d.subscriber_for("manage", token)
    values = form(sub.email, trending, searches, max_papers, hour, tz)
    try:
        prefs = preferences(trending, searches, max_papers, hour, tz).validate()
    except (SubscribeError, QueryError) as e:
        return _manage(request, d, sub, token, values, error=str(e), status=e.http_status)
    sub = d.set_preferences(token, prefs)  # checks the link again, in the transaction that writes
    return _manage(request, d, sub, token, form_of(sub), saved=True)


# -- preview ------------------------------------------------------------------------------------------------
@router.get("/digest/preview")
def preview(request: Request, token: str = Query("", max_length=TOKEN),
            q: list[str] = Query([], description="Saved searches to preview (repeatable)."),
            trending: bool = Query(True), max_papers: int = Query(10, ge=1, le=MAX_PAPERS)):
    """Today's digest as its mail would show it: a subscriber's (with their manage token), else one for
    trending papers and the ``q`` searches. Nothing is queued or recorded."""
    d = digests(request)
    with services(request).bounded():
        if token:
            _, html = d.preview_for(d.subscriber_for("manage", token))
        else:
            _, html = d.preview(Preferences(trending, q, max_papers))
    return HTMLResponse(html, headers={"content-security-policy": PREVIEW_CSP})
