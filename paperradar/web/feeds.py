"""Atom 1.0 feeds (RFC 4287) for any search and for trending, so a feed reader can follow a topic.

Entry ids are tag URIs built from the paper key, stable across hosts and restarts; ``updated`` is the
paper's last change (or listing) time. Every link starts with the configured public address
(``base_url``), never the request's Host header, which the client chooses.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from .. import mathtext, urls
from .. import trending as trending_mod
from .deps import services
from .params import SearchArgs, search_args
from .templating import around, templates

router = APIRouter(prefix="/feeds", include_in_schema=False)
FEED_SIZE = 30
ATOM = "application/atom+xml; charset=utf-8"


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
        return d.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (ValueError, OverflowError):  # "0001-01-01T00:00:00+05:00" is before year 1 in UTC
        return None


def _entry(base: str, p) -> dict:
    updated = (_timestamp(p.updated) or _timestamp(p.announced) or _timestamp(p.submitted)
               or _timestamp(p.first_seen) or "1970-01-01T00:00:00Z")
    return {"id": "tag:paperradar,2026:" + quote(p.key, safe=":/.-_"),
            # feed readers show text, not LaTeX: "$\\pi^2$" is written "π²"
            "title": mathtext.to_text(p.title), "link": urls.paper_url(base, p),
            "updated": updated, "published": _timestamp(p.submitted), "authors": p.authors or ["unknown"],
            "summary": _summary(p), "categories": p.categories}


def _summary(p) -> str:
    """The entry's text: the abstract, then the venue and the code repository as plain text lines (a feed
    reader links a bare URL by itself; the entry stays type="text")."""
    a = around(p)
    extra = ([f"Venue: {a.venue}"] if a.venue else []) + ([f"Code: {a.code}"] if a.code else [])
    text = mathtext.to_text(p.abstract)
    return "\n\n".join(part for part in (text, "\n".join(extra)) if part)


def _feed(request: Request, title: str, alternate: str, papers: list) -> Response:
    base = services(request).settings.public_url
    entries = [_entry(base, p) for p in papers]
    query = f"?{request.url.query}" if request.url.query else ""
    updated = max((e["updated"] for e in entries), default="1970-01-01T00:00:00Z")
    body = templates.get_template("feed.xml").render(
        title=title, self_url=base + request.url.path + query, alternate=base + alternate,
        id="tag:paperradar,2026:" + quote(request.url.path + "?" + request.url.query, safe=":/?=&.-_"),
        updated=updated, entries=entries)
    return Response(body, media_type=ATOM)


@router.get("/search.atom")
def search_feed(request: Request, args: SearchArgs = Depends(search_args)):
    """The newest papers matching a search (sorted newest first unless the URL says otherwise)."""
    if args.empty:
        return Response("q is empty\n", status_code=400, media_type="text/plain")
    svc = services(request)
    with svc.bounded():
        results = svc.search(args.query, limit=FEED_SIZE, mode=args.mode, sort=args.sort or "newest")
    return _feed(request, f"paperradar: {args.query}", "/search?" + args.url_params(),
                 [h.paper for h in results.hits])


@router.get("/trending.atom")
def trending_feed(request: Request, period: trending_mod.Period = "day"):
    svc = services(request)
    with svc.bounded():
        page = trending_mod.trending(svc.store, period, limit=FEED_SIZE, cache=svc.trending_cache)
    return _feed(request, f"paperradar: trending papers ({period})", f"/trending?period={period}",
                 [i.paper for i in page.items])
