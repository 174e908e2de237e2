"""A real HTTP server in the test process that records every webhook call it gets: the chat services' side of
the chat digest tests (tests/test_webhooks.py).

It keeps each request as it came over the wire (method, path, headers, body bytes) with what it answered.
It can answer a status of choice (``replies``: a queue of statuses for the next calls), be slow (``delay``:
seconds to wait before answering the next calls), go down and come back up on the same port.

It is also an HTTPS proxy for the services apprise posts to at fixed hosts (Slack's hooks.slack.com,
Discord's discord.com): with ``HTTPS_PROXY`` pointing at it and ``REQUESTS_CA_BUNDLE`` at its certificate
(see :meth:`WebhookSink.proxy_env`), a CONNECT is answered by this server itself, which ends TLS with a
certificate made for those hosts and records the request inside as it records any other. Nothing leaves
the machine, and apprise's real Slack and Discord plugins run end to end.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socketserver import _SocketWriter

HOSTS = ("hooks.slack.com", "discord.com", "localhost")


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for HOSTS (openssl), the test's stand-in for the services' own."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    san = ",".join(f"DNS:{h}" for h in HOSTS)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "2", "-subj", "/CN=paperradar-test",
                    "-addext", f"subjectAltName={san}"], check=True, capture_output=True)
    return cert, key


@dataclass
class Call:
    method: str
    host: str  # the Host header: the service the client meant
    path: str
    headers: dict[str, str]
    body: bytes
    status: int | None = None  # what the server answered; None: it was slow and the client had gone
    tunnelled: bool = False  # came through a CONNECT (TLS), i.e. to a service's own host
    at: float = field(default_factory=time.monotonic)

    def json(self):
        return json.loads(self.body)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_CONNECT(self) -> None:
        sink = self.server.sink
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        self.connection = sink.tls.wrap_socket(self.connection, server_side=True)
        self.rfile = self.connection.makefile("rb")
        self.wfile = _SocketWriter(self.connection)
        self.tunnelled = True
        self.close_connection = False  # handle() goes on reading requests, now inside the tunnel

    def finish(self) -> None:
        super().finish()
        if getattr(self, "tunnelled", False):
            self.connection.close()  # the TLS socket; the server closes only the plain one under it

    def do_POST(self) -> None:
        sink = self.server.sink
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        call = Call(self.command, self.headers.get("host", ""), self.path,
                    {k.lower(): v for k, v in self.headers.items()}, body,
                    tunnelled=getattr(self, "tunnelled", False))
        status, delay = sink._next()
        with sink.cond:
            sink.calls.append(call)
            sink.cond.notify_all()
        if delay:
            sink.stop.wait(delay)
        answer = b"ok"
        # Recorded before the answer leaves: the client may act on it (and the test read the calls) before
        # this thread runs again. A slow answer reaches nobody when the client gave up first: not answered.
        call.status = None if delay >= sink.slow_threshold else status
        try:
            self.send_response(status)
            self.send_header("content-type", "text/plain")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)
            self.wfile.flush()
        except OSError:
            call.status = None  # the client had gone: nothing was taken

    do_PUT = do_POST


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    sink: WebhookSink


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebhookSink:
    """``with WebhookSink(tmp) as sink``: ``sink.url("/hook")`` is its address; ``sink.calls`` what came."""

    def __init__(self, directory: Path, *, slow_threshold: float = 1.0):
        self.cert, key = make_certificate(directory)
        self.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.tls.load_cert_chain(self.cert, key)
        self.port = _free_port()
        self.calls: list[Call] = []
        self.replies: list[int] = []  # statuses for the next calls, in order (then 200)
        self.delays: list[float] = []  # seconds to wait before answering the next calls, in order (then 0)
        self.slow_threshold = slow_threshold  # a delay this long is past the client's time-out
        self.cond = threading.Condition()
        self.stop = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def _next(self) -> tuple[int, float]:
        with self.cond:
            status = self.replies.pop(0) if self.replies else 200
            delay = self.delays.pop(0) if self.delays else 0.0
        return status, delay

    def url(self, path: str = "/hook") -> str:
        return f"json://127.0.0.1:{self.port}{path}"

    def proxy_env(self) -> dict[str, str]:
        """The environment that sends apprise's HTTPS posts through this server (see the module's doc)."""
        return {"HTTPS_PROXY": f"http://127.0.0.1:{self.port}", "REQUESTS_CA_BUNDLE": str(self.cert),
                "NO_PROXY": "127.0.0.1"}

    def answered(self) -> list[Call]:
        """The calls answered 2xx: what the service took."""
        return [c for c in self.calls if c.status is not None and 200 <= c.status < 300]

    def wait_for(self, n: int, timeout: float = 10.0) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.calls) >= n, timeout), f"{len(self.calls)} calls"

    def up(self) -> None:
        self.stop.clear()
        self._server = _Server(("127.0.0.1", self.port), _Handler)
        self._server.sink = self
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def down(self) -> None:
        """Closed: connections are refused until up()."""
        self.stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> WebhookSink:
        self.up()
        return self

    def __exit__(self, *exc) -> None:
        self.down()
