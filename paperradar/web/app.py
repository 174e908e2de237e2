"""The web app: FastAPI over the core (store, search engine, trending). Pages in pages.py, the JSON API
in api.py, Atom feeds in feeds.py, digest subscriptions in subscribe.py; this module builds the app and
translates errors, once, for all of them.

    uvicorn --factory paperradar.web.app:create_app_from_env     (what `paperradar serve` runs)
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__, config
from ..errors import PaperradarError
from ..search import Results, SearchEngine
from ..store import Store
from ..trending import RankingCache
from . import security

log = logging.getLogger("paperradar.web")
HERE = Path(__file__).parent
REFRESH_EVERY = 2.0  # seconds between checks for index changes made by other processes
THREADS = 8  # request threads per worker: more only queue on the GIL and make every request slower
SEARCH_CACHE = 2048  # result pages kept per worker
SEARCH_TTL = 60.0  # seconds a cached page may be reused (trending order and votes move)


@dataclass
class Services:
    """What every request handler uses: the store, the search engine, and the settings."""

    store: Store
    engine: SearchEngine
    data_dir: Path
    settings: config.Settings
    csrf: security.Csrf
    write_lock: threading.Lock = field(default_factory=threading.Lock)
    trending_cache: RankingCache = field(default_factory=RankingCache)
    _checked: float = 0.0
    _results: OrderedDict = field(default_factory=OrderedDict)
    _results_lock: threading.Lock = field(default_factory=threading.Lock)

    def search(self, query: str, *, limit: int, offset: int = 0, mode: str = "hybrid",
               sort: str | None = None) -> Results:
        """engine.search, with the last SEARCH_CACHE result pages kept while the indexes are unchanged
        (people repeat, refine and page through searches; a page is ~20 papers)."""
        return self._cached(("search", query, limit, offset, mode, sort), lambda: self.engine.search(
            query, limit=limit, offset=offset, mode=mode, sort=sort))

    def related(self, key: str, limit: int) -> list:
        """engine.related, cached like search (a popular paper's page is opened again and again)."""
        return self._cached(("related", key, limit), lambda: self.engine.related(key, limit=limit))

    def _cached(self, key: tuple, compute):
        key = (*key, self.engine.version())
        now = time.monotonic()
        with self._results_lock:
            hit = self._results.get(key)
            if hit and now - hit[0] < SEARCH_TTL:
                self._results.move_to_end(key)
                return hit[1]
        value = compute()
        with self._results_lock:
            self._results[key] = (now, value)
            while len(self._results) > SEARCH_CACHE:
                self._results.popitem(last=False)
        return value

    def refresh(self) -> None:
        """Pick up index changes from other processes, at most every REFRESH_EVERY seconds."""
        now = time.monotonic()
        if now - self._checked >= REFRESH_EVERY:
            self._checked = now
            self.engine.refresh()

    @contextmanager
    def bounded(self):
        """Run a request's reads under the SQL time limit, on a fresh view of the indexes."""
        self.refresh()
        with self.store.time_limit(self.settings.sql_time_limit_ms):
            yield


def create_app(data_dir: str | Path | None = None, *, env: dict[str, str] | None = None,
               engine: SearchEngine | None = None, warm: bool = True) -> FastAPI:
    """The app over the store in ``data_dir``; ``env`` overrides the environment (tests), ``engine``
    lets tests share one loaded model between apps."""
    settings = config.load(env, data_dir)
    data_dir = settings.data_dir
    store = engine.store if engine else Store.open(data_dir)
    engine = engine or SearchEngine(store, embed_threads=1)
    services = Services(store=store, engine=engine, data_dir=data_dir, settings=settings,
                        csrf=security.Csrf(settings.secret))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        import anyio.to_thread

        anyio.to_thread.current_default_thread_limiter().total_tokens = THREADS
        from threadpoolctl import threadpool_limits

        # Request threads already run in parallel: a BLAS thread pool per matrix product (training a
        # user's model) would only fight them for the cores.
        threadpool_limits(1, user_api="blas")
        if warm and store.count():
            engine.warm(dense=True)  # the first visitor should not wait for the model to load
        yield
        await anyio.to_thread.run_sync(app.state.courier.wait)  # a mail being delivered gets to finish

    app = FastAPI(title="paperradar", version=__version__, lifespan=lifespan,
                  description="Search, related papers, trending and feeds over a self-hosted paper store.",
                  openapi_url="/api/v1/openapi.json", docs_url=None, redoc_url=None)
    app.state.services = services
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    from . import account, api, feeds, pages, subscribe

    app.state.courier = subscribe.Courier(store.path, settings)
    app.include_router(pages.router)
    app.include_router(subscribe.router)
    app.include_router(account.router)
    app.include_router(api.router)
    app.include_router(subscribe.api)
    app.include_router(account.api)
    app.include_router(feeds.router)
    _install_error_handlers(app)
    # Outermost last: headers on everything, including 413/429 answers.
    app.add_middleware(security.RateLimiter, per_minute=settings.rate_limit)
    app.add_middleware(security.BodyLimit, max_bytes=settings.max_body_kb * 1024,
                       limits={"/api/v1/admin/": settings.max_upload_mb * 2**20,
                               "/library/import": account.MAX_IMPORT_BYTES + 2**16})
    app.add_middleware(security.SecurityHeaders)
    return app


def create_app_from_env() -> FastAPI:
    """The app factory `paperradar serve` hands to uvicorn (each worker process builds its own)."""
    return create_app()


# -- errors: translated once, for pages, the API and feeds -------------------------------------------------
def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def error_response(request: Request, status: int, message: str, hint: str | None = None):
    if _wants_json(request):
        body = {"error": {"status": status, "message": message}}
        if hint:
            body["error"]["hint"] = hint
        return JSONResponse(body, status_code=status)
    if request.url.path.startswith("/feeds/"):
        return PlainTextResponse(f"{message}\n", status_code=status)
    from .pages import render

    return render(request, "error.html", {"status": status, "message": message, "hint": hint}, status=status)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(PaperradarError)
    async def core_error(request: Request, exc: PaperradarError):
        return error_response(request, exc.http_status, str(exc), exc.hint)

    @app.exception_handler(RequestValidationError)
    async def bad_parameters(request: Request, exc: RequestValidationError):
        problems = []
        for err in exc.errors():
            where = ".".join(str(x) for x in err.get("loc", ()) if x not in ("query", "body", "path"))
            problems.append(f"{where}: {err.get('msg', 'invalid')}" if where else err.get("msg", "invalid"))
        return error_response(request, 400, "bad request: " + "; ".join(problems))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        response = error_response(request, exc.status_code, message)
        for k, v in (exc.headers or {}).items():
            response.headers[k] = v
        return response

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(request, 500, "internal error; the details are in the server log")
