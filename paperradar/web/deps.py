"""Request plumbing, in one place: what every router takes from a request.

``Services`` is built once per worker by the app (store, search engine, settings, caches, the mail
courier); the functions here give a handler the services, the signed-in user, the client's address, the
CSRF check and the core objects (accounts, digests, library) over them. Routers import this module, the
templating and forms modules, and the core — never each other.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from cachetools import TTLCache
from fastapi import Request

from ..accounts import Accounts
from ..config import Settings
from ..digest import Digests
from ..jobs import Courier
from ..library import Library
from ..query import QueryError
from ..search import Results, SearchEngine
from ..store import Store, User
from ..trending import RankingCache
from ..zotero import ZoteroSync
from .security import CSRF_COOKIE, Csrf

SESSION_COOKIE = "paperradar_session"
REFRESH_EVERY = 2.0  # seconds between checks for index changes made by other processes
RESULT_TTL = 60.0  # seconds a cached result page may be reused (trending order and votes move)
_ENTRY_OVERHEAD = 400  # bytes per cached entry beyond its hits: the key, the Results object
_HIT_OVERHEAD = 600  # bytes per hit beyond its paper's fields: Hit, StoredPaper, their dicts


def _field_size(value) -> int:
    if isinstance(value, (list, tuple)):
        return sys.getsizeof(value) + sum(sys.getsizeof(v) for v in value)
    return sys.getsizeof(value)


def size_of(value) -> int:
    """What a cached value holds in memory, in bytes: every field of every paper it holds plus a fixed cost
    per object — an estimate that errs high (tests/test_web_hardening.py compares it with a walk of the
    object graph)."""
    if isinstance(value, dict):  # a small JSON-like answer (a search's papers per month)
        return _ENTRY_OVERHEAD + len(json.dumps(value)) * 2
    hits = value.hits if isinstance(value, Results) else value
    total = _ENTRY_OVERHEAD
    for h in hits:
        total += _HIT_OVERHEAD + sum(_field_size(v) for v in vars(h.paper).values())
        total += sum(100 + 72 * len(spans) for spans in h.highlights.values())
    return total


class ResultCache:
    """Result pages (searches, related papers) kept while the indexes are unchanged, bounded by bytes
    (``result_cache_mb``), each for at most RESULT_TTL seconds. cachetools does the bookkeeping; its
    lock guards a dictionary operation, never the search itself."""

    def __init__(self, max_bytes: int):
        self._cache: TTLCache = TTLCache(maxsize=max(max_bytes, 1), ttl=RESULT_TTL, getsizeof=size_of)
        self._lock = threading.Lock()

    def get(self, key, compute):
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None:
            return hit
        value = compute()  # outside the lock: two threads may compute the same page once each
        try:
            with self._lock:
                self._cache[key] = value
        except ValueError:  # larger than the whole cache: serve it, do not keep it
            pass
        return value

    @property
    def bytes(self) -> int:
        return self._cache.currsize

    @property
    def max_bytes(self) -> int:
        return self._cache.maxsize

    def __len__(self) -> int:
        return len(self._cache)


@dataclass
class Services:
    """What the handlers of one worker share: built once by the app."""

    store: Store
    engine: SearchEngine
    settings: Settings
    csrf: Csrf
    courier: Courier
    results: ResultCache
    trending_cache: RankingCache = field(default_factory=RankingCache)
    _checked: float = 0.0

    def search(self, query: str, *, limit: int, offset: int = 0, mode: str = "hybrid",
               sort: str | None = None) -> Results:
        """engine.search, cached (people repeat, refine and page through searches)."""
        return self.results.get(("search", query, limit, offset, mode, sort, self.engine.version()),
                                lambda: self.engine.search(query, limit=limit, offset=offset, mode=mode,
                                                           sort=sort))

    def trend(self, query: str, *, mode: str = "hybrid", months: int | None = None) -> dict:
        """engine.trend (papers per month of a search), cached like search."""
        return self.results.get(("trend", query, mode, months, self.engine.version()),
                                lambda: self.engine.trend(query, mode=mode, months=months))

    def related(self, key: str, limit: int) -> list:
        """engine.related, cached like search (a popular paper's page is opened again and again)."""
        return self.results.get(("related", key, limit, self.engine.version()),
                                lambda: self.engine.related(key, limit=limit))

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


def services(request: Request) -> Services:
    return request.app.state.services


def accounts(request: Request) -> Accounts:
    svc = services(request)
    return Accounts(svc.store, svc.settings)


def digests(request: Request) -> Digests:
    svc = services(request)
    return Digests(svc.store, svc.engine, svc.settings)


def library(request: Request) -> Library:
    return Library(services(request).store)


def zotero(request: Request) -> ZoteroSync:
    svc = services(request)
    return ZoteroSync(svc.store, svc.settings.zotero_api_url)


def current_user(request: Request) -> User | None:
    """The signed-in user of this request (looked up once per request), or None."""
    if not hasattr(request.state, "user"):
        request.state.user = accounts(request).session_user(request.cookies.get(SESSION_COOKIE))
    return request.state.user


def _session_binding(request: Request) -> str:
    """What ties a CSRF token to the session: the session cookie while it signs someone in, else ''."""
    return request.cookies.get(SESSION_COOKIE, "") if current_user(request) else ""


def csrf_token(request: Request, cookie: str) -> str:
    return services(request).csrf.sign(cookie, _session_binding(request))


def check_csrf(request: Request, token: str) -> None:
    """QueryError (400, shown on the page) unless ``token`` belongs to this browser's cookie and session."""
    if not services(request).csrf.valid(request.cookies.get(CSRF_COOKIE), token, _session_binding(request)):
        raise QueryError("this form has expired or did not come from this site; reload the page and "
                         "submit it again")


def client_address(request: Request) -> str:
    """The client's address: the TCP peer, or what a configured trusted proxy reported (the proxy-headers
    middleware has already rewritten the scope; nothing else is believed)."""
    return request.client.host if request.client else ""


def secure(request: Request) -> bool:
    """Whether cookies should be Secure: served over https, directly or behind a trusted proxy, or the
    public address is https."""
    return request.url.scheme == "https" or services(request).settings.public_url.startswith("https:")
