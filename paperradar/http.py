"""A polite HTTP client for live sources: rate limit, timeouts, retries with exponential backoff.

arXiv asks for at most one request every 3 seconds and answers 429/503 when pushed; both are retried
after a growing delay (or the server's Retry-After). A ``Backoff`` header on any answer (Zotero's way of
saying "slow down") holds the next request back that many seconds. Time is injectable so tests run instantly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import httpx

from . import __version__
from .errors import InputUnusable

RETRY_STATUS = {429, 500, 502, 503, 504}
# httpx logs every request at INFO: a scheduled sync against an unreachable source would fill the server's
# log with them. What a run did (or why it failed) is logged once by paperradar.sync instead.
logging.getLogger("httpx").setLevel(logging.WARNING)
USER_AGENT = f"paperradar/{__version__} (self-hosted paper discovery; +https://github.com/paperradar)"


class PoliteClient:
    """GET with a minimum interval between requests and bounded retries.

    ``transport`` lets tests replay recorded responses (httpx.MockTransport); ``sleep`` and ``clock``
    let them skip real waiting while still checking the waits that were asked for.
    """

    def __init__(
        self,
        *,
        min_interval: float = 3.0,
        retries: int = 5,
        backoff: float = 2.0,
        max_backoff: float = 120.0,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.min_interval = min_interval
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.sleep = sleep
        self.clock = clock
        self._last: float | None = None
        self._not_before: float | None = None  # set by a Backoff header
        self._client = httpx.Client(
            transport=transport,
            timeout=timeout,
            headers={"User-Agent": USER_AGENT},
            follow_redirects=True,
        )

    def _wait_turn(self) -> None:
        if self._last is not None:
            wait = self.min_interval - (self.clock() - self._last)
            if self._not_before is not None:
                wait = max(wait, self._not_before - self.clock())
            if wait > 0:
                self.sleep(wait)
        self._not_before = None
        self._last = self.clock()

    def get(self, url: str, params: dict | None = None) -> httpx.Response:
        """GET ``url``; return a 2xx/4xx response, or raise InputUnusable once retries are spent."""
        return self.request("GET", url, params=params)

    def request(self, method: str, url: str, *, params: dict | None = None, headers: dict | None = None,
                content: bytes | None = None) -> httpx.Response:
        """Send a request with the same pacing and retries as :meth:`get`. Only idempotent requests should
        be retried: a caller sending a POST makes it so (Zotero's ``Zotero-Write-Token``)."""
        delay = self.backoff
        problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                self.sleep(min(delay, self.max_backoff))
                delay *= 2
            self._wait_turn()
            try:
                response = self._client.request(method, url, params=params, headers=headers, content=content)
            except (httpx.TimeoutException, httpx.TransportError) as e:
                problem = f"{type(e).__name__}: {e}"
                continue
            backoff = response.headers.get("Backoff", "")
            if backoff.isdigit():
                self._not_before = self.clock() + min(float(backoff), self.max_backoff)
            if response.status_code in RETRY_STATUS:
                problem = f"HTTP {response.status_code}"
                retry_after = response.headers.get("Retry-After", "")
                if retry_after.isdigit():
                    delay = max(delay, float(retry_after))
                continue
            return response
        raise InputUnusable(
            f"{url}: gave up after {self.retries + 1} attempts ({problem})",
            hint="the server is unreachable or overloaded; try again later",
        )

    def close(self) -> None:
        self._client.close()
