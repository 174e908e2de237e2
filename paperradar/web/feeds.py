"""Atom 1.0 feeds (RFC 4287) for any search and for trending, so a feed reader can follow a topic.

Entry ids are tag URIs built from the paper key, stable across hosts and restarts; ``updated`` is the
paper's last change (or listing) time.
"""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from .. import trending as trending_mod
from .app import Services
from .pages import paper_url, templates
from .params import SearchArgs, search_args

router = APIRouter(prefix="/feeds", include_in_schema=False)
FEED_SIZE = 30
ATOM = "application/atom+xml; charset=utf-8"
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: str | None) -> str:
    """Text with the characters XML 1.0 forbids (control characters, lone surrogates) removed; the
    template's autoescape does the rest."""
    return _NOT_XML.sub("", value or "")


templates.env.filters["xml"] = xml_text


def _services(request: Request) -> Services:
    return request.app.state.services


def _timestamp(value: str | None) -> str | None:
    """An RFC 3339 timestamp from a stored date or datetime, or None."""
    if not value:
        return None
    try:
        if len(value) == 10:
            d = dt.datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=dt.UTC)
        else:
            d = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            d = d if d.tzinfo else d.replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    return d.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _entry(request: Request, p) -> dict:
    updated = (_timestamp(p.updated) or _timestamp(p.announced) or _timestamp(p.submitted)
               or _timestamp(p.first_seen) or "1970-01-01T00:00:00Z")
    return {"id": "tag:paperradar,2026:" + quote(p.key, safe=":/.-_"),
            "title": p.title, "link": str(request.base_url).rstrip("/") + paper_url(p),
            "updated": updated, "published": _timestamp(p.submitted), "authors": p.authors or ["unknown"],
            "summary": p.abstract, "categories": p.categories}


def _feed(request: Request, title: str, alternate: str, papers: list) -> Response:
    entries = [_entry(request, p) for p in papers]
    base = str(request.base_url).rstrip("/")
    updated = max((e["updated"] for e in entries), default="1970-01-01T00:00:00Z")
    body = templates.get_template("feed.xml").render(
        title=title, self_url=str(request.url), alternate=base + alternate,
        id="tag:paperradar,2026:" + quote(request.url.path + "?" + request.url.query, safe=":/?=&.-_"),
        updated=updated, entries=entries)
    return Response(body, media_type=ATOM)


@router.get("/search.atom")
def search_feed(request: Request, args: SearchArgs = Depends(search_args)):
    """The newest papers matching a search (sorted newest first unless the URL says otherwise)."""
    if args.empty:
        return Response("q is empty\n", status_code=400, media_type="text/plain")
    svc = _services(request)
    with svc.bounded():
        results = svc.search(args.query, limit=FEED_SIZE, mode=args.mode, sort=args.sort or "newest")
    return _feed(request, f"paperradar: {args.query}", "/search?" + args.url_params(),
                 [h.paper for h in results.hits])


@router.get("/trending.atom")
def trending_feed(request: Request, period: trending_mod.Period = "day"):
    svc = _services(request)
    with svc.bounded():
        page = trending_mod.trending(svc.store, period, limit=FEED_SIZE, cache=svc.trending_cache)
    return _feed(request, f"paperradar: trending papers ({period})", f"/trending?period={period}",
                 [i.paper for i in page.items])
