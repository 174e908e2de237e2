"""A real SMTP server (aiosmtpd) in the test process that keeps every message it receives: the one mail
sink of the test suite (digests, subscriptions, sign-in, the browser tests).

It keeps each message parsed (``messages``) and as it came over the wire (``raw``), with its envelope
recipients (``recipients``), and every RCPT address it was given (``rcpts``, refused ones too). It can be
told to refuse recipients (451 transient, 550 permanent) or our sender, to hold one message inside DATA
until released (a slow or hung server), to make the first DATA wait for a second session (so two senders
provably overlap), and to go down and come back up on the same port.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import socket
import threading
import time
from email.message import EmailMessage

from aiosmtpd.controller import Controller

LINK = re.compile(r"https?://[^\s<>\"]+")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MailSink:
    """Start with ``with MailSink() as sink``; ``sink.env`` is the app settings that point at it."""

    def __init__(self):
        self._cond = threading.Condition()
        self.messages: list[EmailMessage] = []
        self.raw: list[bytes] = []  # the same messages, as they came over the wire
        self.recipients: list[list[str]] = []  # each message's envelope recipients (RCPT TO)
        self.rcpts: list[str] = []  # every RCPT address given, accepted or not
        self.replies: dict[str, str] = {}  # recipient -> reply to its RCPT, instead of 250
        self.mail_reply: str | None = None  # reply to MAIL FROM, instead of 250
        self.hold_at: int | None = None  # hold the n-th DATA (1-based) until released
        self.holding = threading.Event()
        self.release = threading.Event()
        self.dropped = threading.Event()  # the held message's client went away: not accepted
        self.overlap = 0  # wait in DATA until this many sessions have sent MAIL
        self.sessions: set[int] = set()
        self.datas = 0
        self.port = free_port()
        self.controller: Controller | None = None

    # -- aiosmtpd's handler hooks ---------------------------------------------------------------------
    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        with self._cond:
            self.sessions.add(id(session))
        if self.mail_reply:
            return self.mail_reply
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self._cond:
            self.rcpts.append(address)
        reply = self.replies.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self._cond:
            self.datas += 1
            n = self.datas
        deadline = time.monotonic() + 20
        while len(self.sessions) < self.overlap and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        if n == self.hold_at:
            # The slow part is here, before the 250: a sender killed now never got the 250, so the
            # message is not accepted (aiosmtpd cancels this handler when the connection drops), and the
            # re-run's copy is the only one. A sender killed after the 250 but before it committed
            # "sent" would send that one mail twice: a window no SMTP client can close.
            self.holding.set()
            try:
                while not self.release.is_set():
                    await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                self.dropped.set()
                raise
        raw = envelope.original_content or envelope.content
        message = email.message_from_bytes(raw, policy=email.policy.default)
        with self._cond:
            self.messages.append(message)
            self.raw.append(raw)
            self.recipients.append(list(envelope.rcpt_tos))
            self._cond.notify_all()
        return "250 Message accepted for delivery"

    # -- serving ----------------------------------------------------------------------------------------
    def up(self) -> None:
        """Start serving on ``self.port`` (again: an aiosmtpd Controller cannot be restarted)."""
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def down(self) -> None:
        """Stop serving: connections are refused, as when the mail server is down."""
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def __enter__(self) -> MailSink:
        self.up()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.down()

    @property
    def env(self) -> dict[str, str]:
        return {"PAPERRADAR_SMTP_HOST": "127.0.0.1", "PAPERRADAR_SMTP_PORT": str(self.port),
                "PAPERRADAR_MAIL_FROM": "digest@paperradar.test",
                "PAPERRADAR_SECRET_KEY": "test-secret-do-not-use-in-production"}

    # -- what arrived -----------------------------------------------------------------------------------
    def clear(self) -> None:
        with self._cond:
            self.messages.clear()
            self.raw.clear()
            self.recipients.clear()
            self.rcpts.clear()

    def reset(self) -> None:
        """Clear what arrived, and serve normally again: no refusals, no hold, no waiting for overlap."""
        self.clear()
        with self._cond:
            self.replies.clear()
            self.mail_reply = self.hold_at = None
            self.overlap = self.datas = 0
            self.sessions.clear()
            self.release.set()  # a message still held from before goes through
            self.holding, self.release, self.dropped = threading.Event(), threading.Event(), threading.Event()
        if self.controller is None:
            self.up()

    def to(self, address: str) -> list[EmailMessage]:
        """The messages whose To: is ``address``, so far."""
        with self._cond:
            return [m for m in self.messages if m["To"] == address]

    def wait(self, n: int, timeout: float = 10.0) -> list[EmailMessage]:
        """The first ``n`` messages, once they have arrived."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.messages) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {n} mails, got {len(self.messages)}")
                self._cond.wait(left)
            return list(self.messages[:n])

    def wait_for(self, to: str, n: int = 1, timeout: float = 10.0) -> EmailMessage:
        """The ``n``th message to ``to``, once it has arrived."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                mine = [m for m in self.messages if m["To"] == to]
                if len(mine) >= n:
                    return mine[n - 1]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {n} mails to {to}, got {len(mine)}")
                self._cond.wait(left)


def text_of(message: EmailMessage) -> str:
    return message.get_body(("plain",)).get_content()


def html_of(message: EmailMessage) -> str:
    return message.get_body(("html",)).get_content()


def links(message: EmailMessage, path: str) -> list[str]:
    """The links to ``path`` (e.g. "/confirm") in a mail's text part."""
    return [u for u in LINK.findall(text_of(message)) if re.match(r"https?://[^/]+" + re.escape(path) + r"\?",
                                                                   u)]


def unfolded_headers(raw: bytes) -> dict[str, list[str]]:
    """The header section of a message as it came over the wire, unfolded (RFC 5322 2.2.3: CRLF followed
    by whitespace is removed) but not decoded: {lower-case name: [values as sent]}."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    out: dict[str, list[str]] = {}
    for line in re.sub(r"\r\n(?=[ \t])", "", head).split("\r\n"):
        name, _, value = line.partition(":")
        out.setdefault(name.lower(), []).append(value.strip())
    return out
