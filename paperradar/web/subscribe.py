"""Digest subscriptions on the web: the subscribe forms and their JSON twin, the pages the links in mails
open (confirm, one-click unsubscribe, manage), and a browser preview of a digest.

The core (paperradar.digest) does the work: validation, rate limits, double opt-in, signed links. This
module turns form fields into its calls and its answers into pages. Whatever the address, a subscribe
request gets the same answer, so nobody can learn from it who subscribes.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import threading
from pathlib import Path
from typing import Annotated
from zoneinfo import available_timezones

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field

from ..digest import MAX_PAPERS, Digests, Preferences, RateLimited, SubscribeError, stamp, utc
from ..mail import MailNotConfigured
from ..query import MAX_QUERY, QueryError
from ..store import Store, Subscriber
from .app import Services
from .pages import _check_csrf, render

log = logging.getLogger("paperradar.web")
router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/v1", tags=["v1"])
ZONES = sorted(available_timezones())
# The preview is a mail's HTML: inline style attributes, no script, nothing from elsewhere.
PREVIEW_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'"
TOKEN = 200  # longest token accepted (they are ~60 characters)
FORM_ERRORS = (SubscribeError, QueryError, RateLimited)  # shown on the form, next to what to change


def services(request: Request) -> Services:
    return request.app.state.services


def digests(request: Request) -> Digests:
    svc = services(request)
    return Digests(svc.store, svc.engine, svc.settings)


def _client(request: Request) -> str:
    return request.client.host if request.client else ""


class Courier:
    """Delivers the outbox soon after a request queued a mail: one background thread at a time, on its own
    database connection; a kick while it runs makes it go round once more. Failures are logged and left
    in the outbox, which `paperradar digest send` retries."""

    def __init__(self, db_path: Path, settings: dict):
        self.db_path = db_path
        self.settings = settings
        self._lock = threading.Lock()
        self._pending = False
        self._thread: threading.Thread | None = None

    def kick(self) -> None:
        with self._lock:
            self._pending = True
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="paperradar-mail", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._pending:
                    self._thread = None
                    return
                self._pending = False
            try:
                with Store(self.db_path) as store:
                    counts = Digests(store, None, self.settings).send_due()
                if counts["retry"] or counts["failed"]:
                    log.warning("mail delivery: %s", counts)
            except Exception:
                log.exception("could not deliver the outbox now; `paperradar digest send` will retry")

    def wait(self, timeout: float = 30.0) -> None:
        """Let a delivery under way finish (shutdown, tests)."""
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)


def _courier(request: Request) -> Courier:
    return request.app.state.courier


def _no_mail(request: Request, e: MailNotConfigured):
    return render(request, "error.html", {
        "status": 503, "message": "This server has no mail set up, so it cannot send digests yet.",
        "hint": f"For its administrator: {e}" + (f" ({e.hint})." if e.hint else ".")}, status=503)


def _number(value: str, what: str) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        raise SubscribeError(f"{what} must be a whole number") from None


def _preferences(trending: bool, searches: str, max_papers: str, hour: str, tz: str) -> Preferences:
    """Form fields as Preferences (not yet validated): one saved search per line."""
    return Preferences(trending=trending, searches=searches.splitlines(),
                       max_papers=_number(max_papers, "papers per section"),
                       hour=_number(hour, "the hour of delivery"), tz=tz.strip() or "UTC")


def _form(email="", trending=True, searches="", max_papers=10, hour=8, tz="UTC") -> dict:
    """The values a preferences form shows."""
    return {"email": email, "trending": trending, "searches": searches, "max_papers": max_papers,
            "hour": hour, "tz": tz}


def _form_of(sub: Subscriber) -> dict:
    return _form(sub.email, sub.trending, "\n".join(sub.searches), sub.max_papers, sub.hour, sub.tz)


def _page(request: Request, name: str, context: dict, status: int = 200):
    return render(request, name, {"zones": ZONES, "max_papers_limit": MAX_PAPERS, **context}, status=status)


# -- subscribing --------------------------------------------------------------------------------------------
@router.get("/subscribe")
def subscribe_form(request: Request, email: str = Query("", max_length=254)):
    error = None
    try:
        digests(request).mail.require()
    except MailNotConfigured:
        error = "This server has no mail set up yet, so it cannot take subscriptions."
    return _page(request, "subscribe.html", {"form": _form(email), "error": error})


@router.post("/subscribe")
def subscribe(request: Request, email: str = Form("", max_length=320), trending: bool = Form(False),
              searches: str = Form("", max_length=12_000), max_papers: str = Form("10", max_length=20),
              hour: str = Form("8", max_length=20), tz: str = Form("UTC", max_length=100),
              csrf_token: str = Form("", max_length=200)):
    """The home page's and footer's one-field form (trending, 10 papers, 08:00 UTC) and the full form."""
    _check_csrf(request, csrf_token)
    form = _form(email, trending, searches, max_papers, hour, tz)
    try:
        prefs = _preferences(trending, searches, max_papers, hour, tz)
        with services(request).write_lock:
            digests(request).subscribe(email, prefs, client=_client(request))
    except FORM_ERRORS as e:
        return _page(request, "subscribe.html", {"form": form, "error": str(e)}, status=e.http_status)
    except MailNotConfigured as e:
        return _no_mail(request, e)
    _courier(request).kick()
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
    with services(request).write_lock:
        digests(request).subscribe(body.email, prefs, client=_client(request))
    _courier(request).kick()
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
    _check_csrf(request, csrf_token)
    d = digests(request)
    with services(request).write_lock:
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
    with services(request).write_lock:
        sub = digests(request).unsubscribe(token)
    return render(request, "unsubscribe.html", {"token": token, "sub": sub, "done": True})


@router.get("/subscription")
def manage_page(request: Request, token: str = Query("", max_length=TOKEN)):
    d = digests(request)
    sub = d.subscriber_for("manage", token)
    return _manage(request, d, sub, token, _form_of(sub))


def _manage(request: Request, d: Digests, sub: Subscriber, token: str, form: dict, *,
            error: str | None = None, saved: bool = False, status: int = 200):
    return _page(request, "subscription.html", {
        "sub": sub, "token": token, "form": form, "error": error, "saved": saved,
        "unsubscribe_token": d.token("unsubscribe", sub)}, status=status)


@router.post("/subscription")
def manage(request: Request, token: str = Form("", max_length=TOKEN), trending: bool = Form(False),
           searches: str = Form("", max_length=12_000), max_papers: str = Form("10", max_length=20),
           hour: str = Form("8", max_length=20), tz: str = Form("UTC", max_length=100),
           csrf_token: str = Form("", max_length=200)):
    _check_csrf(request, csrf_token)
    d = digests(request)
    sub = d.subscriber_for("manage", token)
    form = _form(sub.email, trending, searches, max_papers, hour, tz)
    try:
        prefs = _preferences(trending, searches, max_papers, hour, tz).validate()
    except (SubscribeError, QueryError) as e:
        return _manage(request, d, sub, token, form, error=str(e), status=e.http_status)
    with services(request).write_lock:
        d.subs.set_preferences(sub.id, **dataclasses.asdict(prefs))
    sub = d.subs.get(sub.id)
    return _manage(request, d, sub, token, _form_of(sub), saved=True)


# -- preview ------------------------------------------------------------------------------------------------
@router.get("/digest/preview")
def preview(request: Request, token: str = Query("", max_length=TOKEN),
            q: list[str] = Query([], description="Saved searches to preview (repeatable)."),
            trending: bool = Query(True), max_papers: int = Query(10, ge=1, le=MAX_PAPERS)):
    """Today's digest as its mail would show it: a subscriber's (with their manage token), else one for
    trending papers and the ``q`` searches. Nothing is queued or recorded."""
    svc = services(request)
    now = utc()
    if token:
        d = digests(request)
        sub = d.subscriber_for("manage", token)
    else:
        prefs = Preferences(trending, q, max_papers).validate()
        # A throwaway key: the preview's own links are for nobody and must not be signed with the real one.
        d = Digests(svc.store, svc.engine, svc.settings.replace(secret_key=secrets.token_hex(16)))
        sub = Subscriber(id=0, email="preview@paperradar.invalid", status="active", trending=prefs.trending,
                         max_papers=prefs.max_papers, hour=prefs.hour, tz=prefs.tz, nonce="preview",
                         created=stamp(now), confirmed=None, last_digest_day=None, last_listing_day=None,
                         bounces=0, searches=tuple(prefs.searches))
    with svc.bounded():
        _, html = d.render(d.compose(sub, now))
    return HTMLResponse(html, headers={"content-security-policy": PREVIEW_CSP})
