"""Topics, the map and trends: ``/topics`` (broad and fine topics, rising ones), ``/topics/{id}`` (a topic's
chart, papers, feed and subscription), ``/map`` (the corpus in 2D), and their JSON/binary API.

The topics index (paperradar/topics.py) is derived; where there is none yet, the pages say why and the API
answers 404 with the command that builds it.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from .. import topics as topics_mod
from ..topics import TopicIndex, TopicsUnavailable, day_text, month_of, per_month
from ..urls import paper_path
from .deps import current_user, library, services
from .params import PAGE_SIZE
from .templating import month_chart, render

router = APIRouter()
RISING_MONTHS = (1, 3, 6)
TOP_POOL = 500  # a rising topic's top papers are chosen among its newest this many of the window
MAP_HITS = 500  # a search's best hits highlighted on the map


def _index(request: Request) -> TopicIndex:
    return services(request).engine.topics


def _optional_index(request: Request) -> tuple[TopicIndex | None, str | None]:
    try:
        return _index(request), None
    except TopicsUnavailable as e:
        return None, str(e) + (f" ({e.hint})" if e.hint else "")


def _topic(index: TopicIndex, topic_id: int):
    t = index.get(topic_id)
    if t is None:
        raise HTTPException(404, f"there is no topic {topic_id}; /topics lists them")
    return t


def _per_month(index: TopicIndex, topic_id: int, months: int = 36) -> list[dict]:
    """A topic's papers per month over the ``months`` months up to the newest paper's."""
    days = index.days_of(topic_id)
    last = index.last_day()
    if last < 0:
        return []
    end = int(month_of(np.array([last]))[0])
    series = per_month(days[days >= 0], first=end - months + 1, last=end)
    return [{"month": m, "papers": c} for m, c in series]


def _rising(index: TopicIndex, months: int, level: str, limit: int, store=None, top: int = 3) -> list[dict]:
    """The rising topics, each with its ``top`` papers of the window (most votes, then newest) when
    ``store`` is given."""
    out = []
    for t, growth, now, before in index.rising(months, level=level)[:limit]:
        item = {"topic": t.to_dict(), "growth": round(growth, 4), "papers": now, "papers_before": before,
                "months": months}
        if store is not None:
            recent = index.recent_members(t.id, 30 * months).tolist()[-TOP_POOL:]
            votes = store.vote_totals(recent)
            papers = store.get_many(recent)
            papers.sort(key=lambda p: (-votes.get(p.id, 0),
                                       -topics_mod.day_number(p.announced or p.submitted), p.id))
            item["top"] = papers[:top]
        out.append(item)
    return out


# -- pages ----------------------------------------------------------------------------------------------
@router.get("/topics", include_in_schema=False)
def topics_page(request: Request, months: int = Query(3, ge=1, le=6)):
    svc = services(request)
    with svc.bounded():
        index, missing = _optional_index(request)
        context = {"index": index, "missing": missing, "months": months, "choices": RISING_MONTHS}
        if index is not None:
            broad = index.levels("broad")
            context.update(broad=[(b, index.children(b.id)) for b in broad],
                           rising=_rising(index, months, "fine", 12, store=svc.store), drift=index.drift())
            series = {r["topic"]["id"]: _per_month(index, r["topic"]["id"], 12) for r in context["rising"]}
            context["charts"] = {t: {"chart": month_chart(s), "series": s} for t, s in series.items()}
    return render(request, "topics.html", context)


@router.get("/topics/{topic_id}", include_in_schema=False)
def topic_page(request: Request, topic_id: int, page: int = Query(1, ge=1, le=50)):
    svc = services(request)
    with svc.bounded():
        index = _index(request)
        t = _topic(index, topic_id)
        series = _per_month(index, topic_id)
        central = svc.store.get_many(t.central)
        newest = svc.search(f"topic:{topic_id}", limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE,
                            mode="lexical", sort="newest")
        parent = index.get(t.parent) if t.parent is not None else None
        children = index.children(topic_id)
        growth = {m: next(((g, a, b) for x, g, a, b in index.rising(m, level=t.level, least=1)
                           if x.id == topic_id), None) for m in RISING_MONTHS}
    return render(request, "topic.html", {
        "topic": t, "parent": parent, "children": children, "series": series,
        "chart": month_chart(series), "central": central, "newest": newest.hits[:PAGE_SIZE],
        "has_next": len(newest.hits) > PAGE_SIZE, "page": page, "growth": growth})


@router.get("/map", include_in_schema=False)
def map_page(request: Request, q: str = Query("", max_length=1000)):
    svc = services(request)
    with svc.bounded():
        index, missing = _optional_index(request)
    return render(request, "map.html", {"index": index, "missing": missing, "q": q,
                                        "signed_in": current_user(request) is not None})


# -- API ------------------------------------------------------------------------------------------------
@router.get("/api/v1/topics", tags=["v1"], summary="Every topic, broad and fine")
def topics_api(request: Request, level: Literal["broad", "fine", "all"] = "all"):
    """Topics with their label, distinctive terms, most central papers (ids), size, map position and
    parent; the drift report says when a full recluster is due."""
    svc = services(request)
    with svc.bounded():
        index = _index(request)
        levels = ("broad", "fine") if level == "all" else (level,)
        return JSONResponse({"version": index.version, "papers": len(index), "drift": index.drift(),
                             "topics": [t.to_dict() for lv in levels for t in index.levels(lv)]})


@router.get("/api/v1/topics/rising", tags=["v1"], summary="Topics whose share of new papers grew most")
def rising_api(request: Request, months: int = Query(3, ge=1, le=24),
               level: Literal["broad", "fine"] = "fine", limit: int = Query(10, ge=1, le=100)):
    """The last ``months`` (30-day) months against as many before: growth is the log-ratio of the topic's
    shares of new papers (smoothed), with the papers counted in each period."""
    svc = services(request)
    with svc.bounded():
        index = _index(request)
        return JSONResponse({"months": months, "level": level, "until": _last_day(index),
                             "topics": _rising(index, months, level, limit)})


def _last_day(index: TopicIndex) -> str | None:
    last = index.last_day()
    return day_text(last) if last >= 0 else None


@router.get("/api/v1/topics/{topic_id}", tags=["v1"], summary="One topic: papers per month, central papers")
def topic_api(request: Request, topic_id: int):
    svc = services(request)
    with svc.bounded():
        index = _index(request)
        t = _topic(index, topic_id)
        central = svc.store.get_many(t.central)
        return JSONResponse({**t.to_dict(), "children": [c.id for c in index.children(topic_id)],
                             "per_month": _per_month(index, topic_id),
                             "central_papers": [p.to_dict() for p in central],
                             "feed": f"/feeds/search.atom?q=topic%3A{topic_id}&sort=newest",
                             "search": f"topic:{topic_id}"})


@router.get("/api/v1/trend", tags=["v1"], summary="Papers per month for a search")
def trend_api(request: Request, q: str = Query(..., min_length=1, max_length=1000),
              mode: Literal["hybrid", "lexical", "dense"] = "hybrid",
              months: int = Query(0, ge=0, le=600)):
    """Papers per month among the search's best 1,000 matches (a query of filters alone: its papers), from
    the first month to the last (or the last ``months``), zeros included."""
    svc = services(request)
    with svc.bounded():
        return JSONResponse(svc.trend(q, mode=mode, months=months or None))


@router.get("/api/v1/map", tags=["v1"], summary="The map: its topics, months and the points' format")
def map_api(request: Request):
    svc = services(request)
    with svc.bounded():
        index = _index(request)
        meta = index.map_meta()
    meta["points"] = f"/api/v1/map/points?v={meta['version']}"
    return JSONResponse(meta)


@router.get("/api/v1/map/points", tags=["v1"], summary="Every paper's map point (binary columns)")
def map_points(request: Request, v: str = Query("", max_length=100)):
    """Little-endian columns (see ``/api/v1/map``'s ``columns``): x, y float32; paper id, topic uint32;
    month since 1970-01 int16. With ``v`` the current version, cached for a year (a new version has a new
    URL); with another ``v``, a redirect to the current one."""
    svc = services(request)
    with svc.bounded():
        index = _index(request)
        if v and v != index.version:
            return Response(status_code=307, headers={"location": f"/api/v1/map/points?v={index.version}",
                                                       "cache-control": "no-store"})
        body = index.points()
    cache = "public, max-age=31536000, immutable" if v else "no-cache"
    return Response(body, media_type="application/octet-stream",
                    headers={"cache-control": cache, "x-map-version": index.version,
                             "x-map-count": str(len(index))})


@router.get("/api/v1/map/hits", tags=["v1"], summary="A search's best hits, to highlight on the map")
def map_hits(request: Request, q: str = Query(..., min_length=1, max_length=1000),
             mode: Literal["hybrid", "lexical", "dense"] = "hybrid",
             limit: int = Query(MAP_HITS, ge=1, le=2000)):
    svc = services(request)
    with svc.bounded():
        found = svc.engine.retrieve(q, mode=mode, limit=limit)
        meant = svc.engine.did_you_mean(q)
    return JSONResponse({"query": q, "ids": [pid for pid, _ in found], "did_you_mean": meant})


@router.get("/api/v1/map/library", tags=["v1"], summary="The signed-in user's saved papers (ids)")
def map_library(request: Request):
    user = current_user(request)
    if user is None:
        raise HTTPException(401, "sign in to see your library on the map")
    with services(request).bounded():
        return JSONResponse({"ids": [item.paper.id for item in library(request).items(user)]})


@router.get("/api/v1/map/papers/{paper_id}", tags=["v1"], summary="A map point's paper: title and page")
def map_paper(request: Request, paper_id: int = Path(..., ge=1, le=2**63 - 1)):
    """For the map's tooltips and clicks: the points carry the store's integer ids, the pages take keys."""
    svc = services(request)
    with svc.bounded():
        found = svc.store.get_many([paper_id])
    if not found:
        raise HTTPException(404, f"there is no paper {paper_id}")
    p = found[0]
    return JSONResponse({"id": p.id, "key": p.key, "title": p.title, "url": paper_path(p),
                         "date": (p.announced or p.submitted or p.updated or "")[:10] or None,
                         "authors": p.authors[:3], "more_authors": max(len(p.authors) - 3, 0)})
