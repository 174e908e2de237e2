"""The web app: FastAPI over the core. This module builds the app — the services of one worker, the
routers, the middleware, the background jobs — and translates errors, once, for every router.

Where things live: request plumbing (services, signed-in user, CSRF, client address) in ``deps``; the
Jinja environment and ``render`` in ``templating``; form fields in ``forms``; redirects in
``navigation``; headers, limits and tokens in ``security``. The routers — ``pages``, ``feeds``, ``api``,
``subscribe``, ``account``, ``library`` — import those and the core, never each other.

    uvicorn --factory paperradar.web.app:create_app_from_env     (what `paperradar serve` runs)
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from .. import __version__, config, sync
from ..errors import PaperradarError
from ..jobs import Courier, Periodic
from ..search import SearchEngine
from ..store import Store
from . import account, api, feeds, groups, library, pages, security, status, subscribe, suggest, topics
from . import zotero as zotero_routes
from .deps import ResultCache, Services
from .templating import render_error

log = logging.getLogger("paperradar.web")
HERE = Path(__file__).parent
THREADS = 8  # request threads per worker: more only queue on the GIL and make every request slower
CATCH_UP_EVERY = 30.0  # seconds between checks for papers the store has and the indexes do not
SYNC_CHECK_EVERY = 60.0  # seconds between checks whether a feed, the index or a digest is due
SYNC_FIRST_AFTER = 10.0  # the first check, once the server answers


class PaperradarApp(FastAPI):
    """FastAPI, with one change at the edge: after Starlette has answered a bug with the 500 page (and our
    handler has logged it), it re-raises, and uvicorn then drops the connection — the client's next
    request on it is reset. The answer has been sent; the exception is not raised further."""

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except Exception:
            if scope["type"] != "http":
                raise


def create_app(data_dir: str | Path | None = None, *, env: dict[str, str] | None = None,
               engine: SearchEngine | None = None, warm: bool = True,
               settings: config.Settings | None = None, catch_up: bool = True,
               schedule: bool = False) -> FastAPI:
    """The app over the store in ``data_dir``; ``env`` overrides the environment (tests), ``engine``
    lets tests share one loaded model between apps; ``catch_up`` indexes new papers in the background;
    ``schedule`` (what `serve` does) also keeps the store current: sync, index, digests, alerts, checked
    every minute (settings.sync_interval_min: 0 turns it off)."""
    settings = settings or config.load(env, data_dir)
    store = engine.store if engine else Store.open(settings.data_dir)
    engine = engine or SearchEngine(store, embed_threads=1)
    services = Services(store=store, engine=engine, settings=settings,
                        csrf=security.Csrf(settings.secret), courier=Courier(store.path, settings),
                        results=ResultCache(settings.result_cache_mb * 2**20))
    catch_up_job = Periodic("index catch-up", _catch_up(engine), CATCH_UP_EVERY, first_after=CATCH_UP_EVERY)
    radar_job = Periodic("sync", sync.scheduled(settings.data_dir, settings, engine), SYNC_CHECK_EVERY,
                         first_after=SYNC_FIRST_AFTER)
    scheduling = schedule and settings.sync_interval_min > 0

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        import anyio.to_thread
        from threadpoolctl import threadpool_limits

        anyio.to_thread.current_default_thread_limiter().total_tokens = THREADS
        # Request threads already run in parallel: a BLAS thread pool per matrix product (training a
        # user's model) would only fight them for the cores.
        threadpool_limits(1, user_api="blas")
        if warm and store.count():
            try:
                engine.warm(dense=True)  # the first visitor should not wait for the model to load
            except PaperradarError as e:  # a broken index: serve what works and say what to run
                log.error("%s%s", e, f" (hint: {e.hint})" if e.hint else "")
        if catch_up:
            catch_up_job.start()
        if scheduling:
            radar_job.start()
        yield
        catch_up_job.stop()
        radar_job.stop(timeout=5)  # a daemon thread: a sync waiting on a slow server ends with the process
        await anyio.to_thread.run_sync(services.courier.wait)  # a mail being delivered gets to finish

    app = PaperradarApp(title="paperradar", version=__version__, lifespan=lifespan,
                        description="Search, related papers, trending and feeds over a self-hosted "
                                    "paper store.",
                        openapi_url="/api/v1/openapi.json", docs_url=None, redoc_url=None)
    app.state.services = services
    app.state.courier = services.courier
    app.state.catch_up = catch_up_job  # tests run it once with run_once()
    app.state.sync_job = radar_job  # likewise
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for router in (pages.router, subscribe.router, account.router, library.router, api.router,
                   subscribe.api, library.api, feeds.router, api.health_router):
        app.include_router(router)
    app.include_router(status.router)
    app.include_router(suggest.router)
    app.include_router(topics.router)
    app.include_router(zotero_routes.router)
    app.include_router(groups.router)
    app.include_router(groups.api)
    _install_error_handlers(app)
    # Middleware, innermost first; the last added sees the request first.
    app.add_middleware(security.RateLimiter, per_minute=settings.rate_limit)
    app.add_middleware(security.BodyLimit, max_bytes=settings.max_body_kb * 1024,
                       limits={"/api/v1/admin/": settings.max_upload_mb * 2**20,
                               "/library/import": library.MAX_IMPORT_BYTES + 2**16})
    app.add_middleware(security.HeadAsGet)
    if settings.proxies:  # believe X-Forwarded-For/-Proto from the configured proxies, and nobody else
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=[str(n) for n in settings.proxies])
    app.add_middleware(security.SecurityHeaders)  # outermost: headers on everything, 413/429 included
    return app


def _catch_up(engine: SearchEngine):
    """The background job that makes papers ingested while the server runs searchable by themselves. A
    damaged index fails every run until it is rebuilt: that is said once, not every CATCH_UP_EVERY."""
    said: list[str] = []

    def job() -> dict:
        try:
            counts = engine.catch_up()
            if counts.get("vectors") or not engine.has_topics():
                engine.update_topics()  # new papers onto the map; the first topics once there are enough
        except PaperradarError as e:
            message = f"{e}" + (f" (hint: {e.hint})" if e.hint else "")
            if message not in said:
                said[:] = [message]
                log.error("index catch-up: %s", message)
            return {}
        said.clear()
        return counts
    return job


def create_app_from_env() -> FastAPI:
    """The app factory `paperradar serve` hands to uvicorn (each worker process builds its own)."""
    return create_app(schedule=True)


# -- errors: translated once, for pages, the API and feeds -------------------------------------------------
def error_response(request: Request, status: int, message: str, hint: str | None = None):
    if request.url.path.startswith("/api/"):
        body = {"error": {"status": status, "message": message}}
        if hint:
            body["error"]["hint"] = hint
        return JSONResponse(body, status_code=status)
    if request.url.path.startswith("/feeds/"):
        return PlainTextResponse(f"{message}\n", status_code=status)
    return render_error(request, status, message, hint)


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
