"""The JSON API, version 1: public read endpoints, and write endpoints behind the admin token.

Errors are JSON ``{"error": {"status", "message", "hint"?}}`` with the matching HTTP status (see app.py).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response  # JSON returned as is: no second jsonable_encoder pass
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from .. import health, mathtext
from .. import trending as trending_mod
from ..ingest import MAX_REJECTS_SHOWN, ingest
from ..library import paper_bibtex
from ..sources import FILE_FORMATS, file_source
from ..store import StoredPaper
from .deps import Services, services
from .params import MAX_OFFSET, SearchArgs, search_args
from .security import check_bearer

router = APIRouter(prefix="/api/v1", tags=["v1"])
health_router = APIRouter(include_in_schema=False)
MAX_API_LIMIT = 100
BIBTEX = "text/x-bibtex; charset=utf-8"


def _readable(paper: dict, p: StoredPaper) -> dict:
    """A paper's dict with ``title_text`` beside ``title``: the title with its LaTeX math as Unicode text
    ("$\\pi^2$" -> "π²"), for clients that cannot render math; ``title`` stays as stored. Then what the
    pages show around the abstract: ``summary`` ({"text", "source"}: Hugging Face's AI summary,
    "huggingface", else the abstract's sentence that states the contribution, "abstract"; or null) and
    ``venue_label`` ("NeurIPS 2025 (spotlight)", or null)."""
    out = {}
    for k, v in paper.items():
        out[k] = v
        if k == "title":
            out["title_text"] = mathtext.to_text(v)
    tldr = p.tldr
    out["summary"] = {"text": tldr[0], "source": tldr[1]} if tldr else None
    out["venue_label"] = p.venue_label
    return out


def _page(limit: int, offset: int) -> None:
    if offset + limit > MAX_OFFSET + MAX_API_LIMIT:
        raise HTTPException(400, f"offset + limit may be at most {MAX_OFFSET + MAX_API_LIMIT}")


# -- reading ------------------------------------------------------------------------------------------------
@router.get("/search", summary="Search papers")
def search(request: Request, args: SearchArgs = Depends(search_args),
           limit: int = Query(20, ge=1, le=MAX_API_LIMIT), offset: int = Query(0, ge=0, le=MAX_OFFSET)):
    """Hybrid (BM25 + embeddings) search. The query language is described in the README."""
    if args.empty:
        raise HTTPException(400, "q is empty: give some words or a filter (cat, au, since, until)")
    svc = services(request)
    with svc.bounded():
        results = svc.search(args.query, limit=limit, offset=offset, mode=args.mode, sort=args.sort)
    hits = [_readable(h.to_dict(), h.paper) for h in results.hits]
    body = {"query": results.query, "mode": results.mode, "sort": results.sort, "limit": limit,
            "offset": offset, "took_ms": results.took_ms, "hits": hits}
    if results.did_you_mean:  # the query with its typos corrected; its words were searched too
        body["did_you_mean"] = results.did_you_mean
    if results.loosened:  # quoted phrases no paper holds: their words were searched as free words
        body["loosened_phrases"] = list(results.loosened)
    return JSONResponse(body)


@router.get("/papers/{ref:path}/related", summary="Papers related to a paper")
def related(request: Request, ref: str, limit: int = Query(10, ge=1, le=MAX_API_LIMIT)):
    svc = services(request)
    with svc.bounded():
        paper = svc.store.get(ref)
        hits = svc.related(paper.key, limit=limit)
    return {"paper": paper.key, "hits": [_readable(h.to_dict(), h.paper) for h in hits]}


@router.get("/papers/{ref:path}/bibtex", summary="A paper's BibTeX entry",
            response_class=Response, responses={200: {"content": {"text/x-bibtex": {}}}})
def paper_bibtex_entry(request: Request, ref: str):
    """The paper's BibTeX entry (the library export's entry, without keywords and abstract), to cite it."""
    svc = services(request)
    with svc.bounded():
        p = svc.store.get(ref)
    return Response(paper_bibtex(p), media_type=BIBTEX)


@router.get("/papers/{ref:path}", summary="One paper")
def paper(request: Request, ref: str):
    """A paper by arXiv id (any version), DOI, store key or exact title."""
    svc = services(request)
    with svc.bounded():
        p = svc.store.get(ref)
        votes = svc.store.vote_totals([p.id]).get(p.id, 0)
    return JSONResponse({**_readable(p.to_dict(), p), "votes": votes})


class LikeBody(BaseModel):
    text: str = Field(..., max_length=20_000, description="A pasted abstract or any text.")
    limit: int = Field(10, ge=1, le=MAX_API_LIMIT)


@router.post("/like", summary="Papers like a text")
def like(request: Request, body: LikeBody):
    """Papers whose embeddings are closest to the text's (e.g. your own abstract)."""
    svc = services(request)
    with svc.bounded():
        hits = svc.engine.like_text(body.text, limit=body.limit)
    return {"hits": [_readable(h.to_dict(), h.paper) for h in hits]}


@router.get("/trending", summary="Trending papers")
def trending(request: Request, period: trending_mod.Period = "day",
             limit: int = Query(20, ge=1, le=MAX_API_LIMIT), offset: int = Query(0, ge=0, le=MAX_OFFSET)):
    """Papers of the last day, week or month of listings, ranked by time-decayed votes."""
    svc = services(request)
    with svc.bounded():
        page = trending_mod.trending(svc.store, period, limit=limit, offset=offset, cache=svc.trending_cache)
    return JSONResponse({"period": page.period, "since": page.since, "until": page.until,
                         "total": page.total, "limit": limit, "offset": offset,
                         "papers": [_readable(i.to_dict(), i.paper) for i in page.items]})


@router.get("/stats", summary="Store and index statistics")
def stats(request: Request):
    svc = services(request)
    with svc.bounded():
        s = svc.store.stats()
        pending = svc.engine.pending()
    s.pop("database", None)  # a server path is nobody's business
    return {**s, "index_pending": pending}


# -- writing (admin token) ----------------------------------------------------------------------------------
def require_admin(request: Request, authorization: str | None = Header(None)) -> None:
    status = check_bearer(authorization, services(request).settings.admin_token)
    if status == 401:
        raise HTTPException(401, "admin token required (Authorization: Bearer ...)",
                            headers={"WWW-Authenticate": "Bearer"})
    if status:
        raise HTTPException(403, "wrong admin token, or the write API is off (set PAPERRADAR_ADMIN_TOKEN)")


@router.post("/admin/ingest", summary="Ingest an uploaded file", dependencies=[Depends(require_admin)])
async def admin_ingest(request: Request, format: Literal[tuple(FILE_FORMATS)] = "jsonl",
                       index: bool = Query(True, description="Index the new papers before answering.")):
    """The request body is the file (JSON lines, CSV, a saved Hugging Face page or daily-papers JSON;
    gzip is detected). Rejected records are reported with their line, the rest is ingested."""
    svc = services(request)
    uploads = svc.settings.data_dir / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=uploads))
    path = tmp / f"upload.{format}"  # what reject messages call the input: "upload.jsonl line 3: ..."
    try:
        with path.open("wb") as f:
            async for chunk in request.stream():
                f.write(chunk)
        return await run_in_threadpool(_ingest_file, svc, format, str(path), index)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _ingest_file(svc: Services, format: str, path: str, index: bool) -> dict:
    rejects: list[str] = []

    def on_reject(r) -> None:
        if len(rejects) < MAX_REJECTS_SHOWN:
            rejects.append(str(r))

    # No lock: ingest commits batch by batch, one transaction each, and the engine runs one update at a
    # time by itself; searches meanwhile see the indexes as they were.
    report = ingest(svc.store, file_source(format, path), on_reject=on_reject,
                    batch_size=svc.settings.batch_size)
    indexed = svc.engine.update() if index else {"lexical": 0, "vectors": 0}
    return {"added": report.added, "updated": report.updated, "unchanged": report.unchanged,
            "rejected": report.rejected, "rejects": rejects, "indexed": indexed}


@router.post("/admin/reindex", summary="Bring the search indexes up to date",
             dependencies=[Depends(require_admin)])
def admin_reindex(request: Request):
    return {"indexed": services(request).engine.update()}


# -- health --------------------------------------------------------------------------------------------------
@health_router.get("/healthz")
def healthz(request: Request):
    """200 when the store and the indexes answer, 503 naming what does not (load balancers, systemd)."""
    svc = services(request)
    result = health.check(svc.store, svc.engine, time_limit_ms=svc.settings.sql_time_limit_ms)
    return JSONResponse(result.to_dict(), status_code=200 if result.ok else 503)
