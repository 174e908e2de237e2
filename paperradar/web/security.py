"""Request hygiene for the web app: security headers, body-size and rate limits, CSRF tokens.

Plain ASGI middleware (no per-route boilerplate): each wraps the whole app, so an API route, a page, a
static file and an error page all get the same treatment.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import secrets
import time

# No inline script or style anywhere: the templates load /static/app.js and /static/style.css only.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]
CSRF_COOKIE = "paperradar_csrf"
CSRF_FIELD = "csrf_token"


async def _json_error(send, status: int, message: str, extra_headers: list | None = None) -> None:
    body = json.dumps({"error": {"status": status, "message": message}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *(extra_headers or [])]})
    await send({"type": "http.response.body", "body": body})


class SecurityHeaders:
    """Adds the security headers to every HTTP response."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (k, v) for k, v in HEADERS if k not in names]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class HeadAsGet:
    """Answers HEAD like GET without the body (RFC 9110): FastAPI routes declare GET only, and link checkers,
    feed readers and monitors send HEAD."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "HEAD":
            return await self.app(scope, receive, send)

        async def no_body(message):
            if message["type"] == "http.response.body":
                if message.get("more_body"):
                    return
                message = {"type": "http.response.body", "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, no_body)


class BodyLimit:
    """Answers 413 to a request body over the limit (by Content-Length, or counted while streaming).

    ``limits`` maps a path prefix to its own limit (the write API takes file uploads).
    """

    def __init__(self, app, max_bytes: int, limits: dict[str, int] | None = None):
        self.app = app
        self.max_bytes = max_bytes
        self.limits = limits or {}

    def _limit(self, path: str) -> int:
        for prefix, n in self.limits.items():
            if path.startswith(prefix):
                return n
        return self.max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self._limit(scope["path"])
        length = dict(scope.get("headers", [])).get(b"content-length")
        message = f"request body too large (limit {limit:,} bytes)"
        if length is not None:
            try:
                too_big = int(length) > limit
            except ValueError:
                return await _json_error(send, 400, "bad Content-Length header")
            if too_big:
                return await _json_error(send, 413, message)
        seen = 0
        started = answered = False

        async def counting_receive():
            nonlocal seen, answered
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    if not started and not answered:
                        answered = True
                        await _json_error(send, 413, message)
                    # The app sees the client go away, whatever it does with that is not sent.
                    return {"type": "http.disconnect"}
            return msg

        async def tracking_send(msg):
            nonlocal started
            if answered:
                return
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        await self.app(scope, counting_receive, tracking_send)


class RateLimiter:
    """A token bucket per client address: ``per_minute`` requests a minute, bursts of a tenth of that.

    In-process: with several workers each keeps its own buckets (a client gets at most workers x the
    rate). Static files are not counted. The client is the TCP peer, or what a trusted proxy says it is
    (uvicorn's ProxyHeadersMiddleware, installed outside this one only for the configured proxies).
    """

    def __init__(self, app, per_minute: int, clock=time.monotonic, exempt: tuple[str, ...] = ("/static/",)):
        self.app = app
        self.rate = per_minute / 60.0
        self.burst = max(10.0, per_minute / 10)
        self.clock = clock
        self.exempt = exempt
        self.buckets: dict[str, tuple[float, float]] = {}

    def allow(self, client: str) -> float:
        """0 if the request may go on, else the seconds to wait."""
        now = self.clock()
        # No lock: the middleware runs on the event loop, and nothing here awaits.
        tokens, last = self.buckets.get(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1:
            self.buckets[client] = (tokens - 1, now)
            wait = 0.0
        else:
            self.buckets[client] = (tokens, now)
            wait = (1 - tokens) / self.rate
        if len(self.buckets) > 100_000:  # forget idle clients rather than grow without bound
            self.buckets = {k: v for k, v in self.buckets.items() if now - v[1] < 600}
        return wait

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or self.rate <= 0 or scope["path"].startswith(self.exempt):
            return await self.app(scope, receive, send)
        client = (scope.get("client") or ("unknown", 0))[0]
        wait = self.allow(client)
        if wait:
            return await _json_error(send, 429, "too many requests; slow down",
                                     [(b"retry-after", str(math.ceil(wait)).encode())])
        await self.app(scope, receive, send)


class Csrf:
    """Double-submit CSRF tokens: a random cookie, and a form field holding an HMAC under the secret of that
    cookie and, once signed in, of the session too.

    A cross-site form can neither read the cookie nor forge the HMAC, so a POST whose field does not match
    its own cookie is refused; binding the session means a token stops working when its session ends, and
    a cookie planted in someone's browser gives an attacker no token for that person's session.
    """

    def __init__(self, secret: bytes):
        self.secret = secret

    def sign(self, cookie: str, session: str = "") -> str:
        message = b"csrf:" + cookie.encode() + b"|" + session.encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()

    @staticmethod
    def new_cookie() -> str:
        return secrets.token_urlsafe(24)

    def valid(self, cookie: str | None, token: str | None, session: str = "") -> bool:
        if not cookie or not token or not token.isascii() or not cookie.isascii():
            return False  # compare_digest refuses non-ASCII str; such a token is simply wrong
        return hmac.compare_digest(self.sign(cookie, session).encode(), token.encode())


def check_bearer(header: str | None, expected: str | None) -> int:
    """0 if the Authorization header carries the admin token; else the HTTP status to answer (401/403)."""
    if not expected:
        return 403  # write API off: no token configured
    if not header or not header.lower().startswith("bearer "):
        return 401
    given = header[7:].strip().encode("utf-8", "surrogateescape")
    return 0 if hmac.compare_digest(given, expected.encode()) else 403
