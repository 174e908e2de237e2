"""Server-rendered pages: home, search, paper, trending, "papers like this text"."""

from __future__ import annotations

import dataclasses
import math
import re
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse

from .. import trending as trending_mod
from ..notes import Notes, render_markdown
from ..query import QueryError, parse_query
from ..shorthand import corrected_text
from .deps import check_csrf, current_user, services
from .params import MAX_OFFSET, PAGE_SIZE, SearchArgs, search_args
from .templating import month_chart, render

router = APIRouter(include_in_schema=False)
MAX_PAGE = MAX_OFFSET // PAGE_SIZE
TREND_MONTHS = 24  # the search page's chart of papers per month: this many months, up to the last match
HAS_CODE = re.compile(r"(?<!\S)has:code(?!\S)", re.I)


# -- pages ----------------------------------------------------------------------------------------------
@router.get("/")
def home(request: Request):
    svc = services(request)
    with svc.bounded():
        count = svc.store.count()
        trend = trending_mod.trending(svc.store, "day", limit=10, cache=svc.trending_cache)
        if not any(i.votes for i in trend.items):  # a day without votes is just "newest": show the week's
            week = trending_mod.trending(svc.store, "week", limit=10, cache=svc.trending_cache)
            trend = week if any(i.votes for i in week.items) else trend
        newest = svc.store.newest(limit=10)
    return render(request, "home.html", {"count": count, "trending": trend, "newest": newest})


@router.get("/favicon.ico")
def favicon():
    """Browsers ask for it on pages without a <link rel=icon>: the digest preview, JSON opened in a tab."""
    return RedirectResponse("/static/favicon.svg", status_code=301)


@router.get("/search")
def search_page(request: Request, args: SearchArgs = Depends(search_args),
                page: int = Query(1, ge=1, le=MAX_PAGE)):
    svc = services(request)
    context = {"args": args, "page": page, "results": None, "error": None, "suggestions": [],
               "did_you_mean": None, "meaning_only": False, "with_code": _with_code(args)}
    if args.empty:
        return render(request, "search.html", context)
    try:
        with svc.bounded():
            results = svc.search(args.query, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE,
                                 mode=args.mode, sort=args.sort)
    except QueryError as e:  # shown on the page, next to the box where it can be fixed
        context.update(error=str(e))
        return render(request, "search.html", context, status=400)
    has_next = len(results.hits) > PAGE_SIZE and page < MAX_PAGE
    results = dataclasses.replace(results, hits=results.hits[:PAGE_SIZE])  # the cached one stays whole
    # Semantic search always finds nearest neighbours; say so when no paper contains the words (a query of
    # filters alone, id: or has:code, has no words to contain).
    meaning_only = (bool(results.hits) and parse_query(args.query).has_text
                    and not any(any(h.highlights.values()) for h in results.hits))
    if page == 1 and results.hits:  # papers per month of this search, a small chart above the results
        with svc.bounded():
            trend = svc.trend(args.query, mode=args.mode, months=TREND_MONTHS)
        if any(m["papers"] for m in trend["months"]):
            context["trend"] = {**trend, "chart": month_chart(trend["months"])}
    context.update(results=results, has_next=has_next, meaning_only=meaning_only,
                   suggestions=_suggestions(args) if meaning_only or not results.hits else [],
                   did_you_mean=_did_you_mean(args, results.did_you_mean))
    return render(request, "search.html", context)


def _with_code(args: SearchArgs) -> tuple[bool, str] | None:
    """The "With code" switch of a search: (on, the URL that turns it the other way), or None where there is
    no switch (no search yet, a query that does not parse, a has:code that cannot be taken out). It is a
    plain link that adds ``has:code`` to the words of the search (or takes it out), so it works without
    JavaScript, and the result page, its feed and the API mean the same thing."""
    if args.empty:
        return None
    try:
        on = "has:code" in parse_query(args.query).facets
    except QueryError:
        return None
    if on and not HAS_CODE.search(args.q):  # has:"code", written some other way: left to the user
        return None
    q = " ".join(HAS_CODE.sub(" ", args.q).split()) if on else f"{args.q.strip()} has:code".strip()
    return on, "/search?" + args.url_params(q=q)


def _did_you_mean(args: SearchArgs, meant: str | None) -> tuple[str, str] | None:
    """(corrected words, URL of their search) when the query had typos, the other settings kept. The
    engine searched the correction already; the link searches it alone."""
    if not meant:
        return None
    # A correction replaces whole words one for one: the words that differ are the corrections, and only
    # the box's words (args.q) hold free words to correct.
    fixes = {wrong: right for wrong, right in zip(args.query.lower().split(), meant.lower().split(),
                                                  strict=False) if wrong != right}
    q = corrected_text(args.q, fixes)
    return (q, "/search?" + args.url_params(q=q)) if q != args.q else None


def _suggestions(args: SearchArgs) -> list[tuple[str, str]]:
    """(label, URL) of searches to try when one found nothing."""
    out = []
    if args.has_filters:
        out.append(("the same words without the filters", "/search?" + urlencode({"q": args.q})))
    words = args.q.split()
    if any(w.startswith(("-", '"')) or ":" in w for w in words):
        plain = " ".join(w.lstrip("-").replace('"', "") for w in words if ":" not in w)
        if plain:
            out.append((f"just the words: {plain}", "/search?" + urlencode({"q": plain})))
    if len(words) > 1:
        out.append(("any of the words (lexical only)", "/search?" + args.url_params(mode="lexical")))
    out.append(("today's trending papers", "/trending"))
    return out


@router.get("/paper/{ref:path}")
def paper_page(request: Request, ref: str):
    svc = services(request)
    with svc.bounded():
        paper = svc.store.get(ref)
        votes = svc.store.vote_totals([paper.id]).get(paper.id, 0)
        related = svc.related(paper.key, limit=10) if len(svc.engine.vectors) else []
        discussion = _discussion(request, paper.id)
    return render(request, "paper.html", {"paper": paper, "votes": votes, "related": related, **discussion})


def _discussion(request: Request, paper_id: int) -> dict:
    """The notes and comments a signed-in reader may see on a paper, and their groups (the forms)."""
    me = current_user(request)
    if me is None:
        return {}
    notes = Notes(services(request).store, services(request).settings.comments_public)
    return {"notes": notes.notes_on(me, paper_id), "comments": notes.comments_on(me, paper_id),
            "my_groups": notes.groups(me), "md": render_markdown,
            "can_remove": lambda c: notes.can_remove(me, c), "comments_public": notes.public}


@router.get("/trending")
def trending_page(request: Request, period: trending_mod.Period = "day",
                  page: int = Query(1, ge=1, le=MAX_PAGE)):
    svc = services(request)
    with svc.bounded():
        result = trending_mod.trending(svc.store, period, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE,
                                       cache=svc.trending_cache)
    pages = max(1, min(MAX_PAGE, math.ceil(result.total / PAGE_SIZE)))
    return render(request, "trending.html", {"trending": result, "page": page, "pages": pages,
                                             "periods": list(trending_mod.PERIODS)})


@router.get("/like")
def like_form(request: Request, paper: str = Query("", max_length=200)):
    svc = services(request)
    text = ""
    if paper:
        with svc.bounded():
            p = svc.store.get(paper)
        text = f"{p.title}. {p.abstract}" if p.abstract else p.title
    return render(request, "like.html", {"text": text, "hits": None, "error": None})


@router.post("/like")
def like_results(request: Request, text: str = Form("", max_length=20_000),
                 csrf_token: str = Form("", max_length=200)):
    check_csrf(request, csrf_token)
    svc = services(request)
    try:
        with svc.bounded():
            hits = svc.engine.like_text(text, limit=PAGE_SIZE)
    except QueryError as e:
        return render(request, "like.html", {"text": text, "hits": None, "error": str(e)}, status=400)
    return render(request, "like.html", {"text": text, "hits": hits, "error": None})
