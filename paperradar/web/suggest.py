"""``GET /api/v1/suggest``: suggestions while typing in the search box (static/suggest.js asks, debounced).

The index (paperradar.suggest) is loaded on a worker's first request from the base the last build saved
(``<data dir>/index/suggest/``, memory-mapped), else built: inline on a small store, else in a background
thread — until it is ready the answer is an empty list (the search box works without suggestions), marked
``X-Suggest-Ready: 0`` and not cached. It follows the store at most every
CATCH_UP_EVERY seconds, in a thread started by the request that finds it due (one indexed count when
nothing changed).
"""

from __future__ import annotations

import logging
import threading
import time

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from ..suggest import MAX_LIMIT, MAX_Q, Suggester
from .deps import services

router = APIRouter(prefix="/api/v1", tags=["v1"])
log = logging.getLogger("paperradar.web")
INLINE_BUILD_MAX = 20_000  # papers: a store this small is indexed within the first request
CATCH_UP_EVERY = 30.0
MAX_AGE = 300  # seconds a browser may keep an answer: suggestions change slowly
_lock = threading.Lock()


class _Holder:
    """The worker's suggester, its build thread, and when it last caught up."""

    def __init__(self, store, directory):
        self.suggester = Suggester(store, directory=directory)
        self.building: threading.Thread | None = None
        self.checked = time.monotonic()

    def _build(self) -> None:
        try:
            self.suggester.rebuild()
        except Exception:  # the search box works without suggestions: say so in the log, serve none
            log.exception("building the suggestion index")

    def _catch_up(self) -> None:
        try:
            self.suggester.catch_up()
        except Exception:
            log.exception("suggestion index catch-up")

    def ready(self, store) -> bool:
        if self.suggester.ready:
            now = time.monotonic()
            if now - self.checked >= CATCH_UP_EVERY:
                self.checked = now
                with _lock:
                    # in a thread: a delta grown past MERGE_AT means a rebuild, too long for a request
                    if self.building is None or not self.building.is_alive():
                        self._start(self._catch_up)
            return True
        with _lock:
            if self.building is None:
                if self.suggester.load():  # the saved base: ready now, what changed since follows
                    self.checked = time.monotonic()
                    self._start(self._catch_up)
                    return True
                if store.count() <= INLINE_BUILD_MAX:
                    self._build()
                    return self.suggester.ready
                self._start(self._build)
        return False

    def _start(self, job) -> None:
        self.building = threading.Thread(target=job, name="suggest-index", daemon=True)
        self.building.start()


def _holder(request: Request) -> _Holder:
    state = request.app.state
    holder = getattr(state, "suggest", None)
    if holder is None:
        with _lock:
            holder = getattr(state, "suggest", None)
            if holder is None:
                store = services(request).store  # the base lives with the store it was built from
                holder = state.suggest = _Holder(store, store.path.parent / "index" / "suggest")
    return holder


@router.get("/suggest", summary="Suggestions while typing")
def suggest(request: Request, q: str = Query("", max_length=MAX_Q),
            limit: int = Query(8, ge=1, le=MAX_LIMIT)):
    """Titles, authors, categories and frequent phrases that start with ``q`` (or complete its last word):
    ``{"q", "suggestions": [{"text", "kind": "title|author|category|phrase", "url"}]}``."""
    holder = _holder(request)
    ready = holder.ready(services(request).store)
    found = holder.suggester.suggest(q, limit) if ready else []
    headers = {"X-Suggest-Ready": "1" if ready else "0",
               "Cache-Control": f"public, max-age={MAX_AGE}" if ready else "no-store"}
    return JSONResponse({"q": q, "suggestions": [s.to_dict() for s in found]}, headers=headers)
