"""Running the app under uvicorn with the limits a public server needs.

uvicorn gives a keep-alive time-out and a cap on connections, but no time limit on receiving a request's
headers: a client that sends one byte every few seconds holds its connection forever, and a few hundred
of them starve everyone else (slowloris). :class:`HeaderTimeoutProtocol` closes a connection whose request
headers have not all arrived ``header_timeout_s`` after it opened (or after its previous response).
Behind a reverse proxy (nginx, Caddy), the proxy buffers requests and this never triggers; see the README.
"""

from __future__ import annotations

import asyncio
import functools

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .. import config


@functools.cache
def _configured_header_timeout() -> float:
    # Read in each worker process (uvicorn starts workers by spawning: nothing set here survives that).
    return float(config.load().header_timeout_s)


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a deadline for each request's headers."""

    _header_timer: asyncio.TimerHandle | None = None
    header_timeout: float | None = None  # None: the settings' header_timeout_s, read in this process

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout or _configured_header_timeout(),
                                                  self._header_timed_out)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timed_out(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def on_headers_complete(self) -> None:
        self._cancel_header_timer()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_header_timer()  # the next request on this connection gets the same deadline

    def connection_lost(self, exc) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)


def uvicorn_options(settings: config.Settings, *, host: str, port: int, workers: int = 1,
                    access_log: bool = True) -> dict:
    """The uvicorn options `serve` runs with (tests start a server with the same ones on a free port)."""
    protocol = HeaderTimeoutProtocol
    if workers == 1:  # one process: the class can carry the value (spawned workers read the settings)
        protocol = type("HeaderTimeoutProtocol", (HeaderTimeoutProtocol,),
                        {"header_timeout": float(settings.header_timeout_s)})
    return {"host": host, "port": port, "workers": workers, "access_log": access_log, "log_level": "info",
            "http": protocol,
            # X-Forwarded-* are believed only from settings.trusted_proxies, by the app itself.
            "proxy_headers": False, "server_header": False,
            "timeout_keep_alive": settings.keep_alive_s, "limit_concurrency": settings.max_connections,
            "h11_max_incomplete_event_size": 16 * 1024}


def run(settings: config.Settings, *, host: str, port: int, workers: int, access_log: bool) -> None:
    """Serve the app factory with the settings' limits (blocks until Ctrl-C)."""
    import uvicorn

    uvicorn.run("paperradar.web.app:create_app_from_env", factory=True,
                **uvicorn_options(settings, host=host, port=port, workers=workers, access_log=access_log))
