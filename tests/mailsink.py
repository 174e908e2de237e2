"""A real SMTP server (aiosmtpd) in the test process that keeps every message it receives."""

from __future__ import annotations

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
        self.messages: list[EmailMessage] = []
        self.recipients: list[list[str]] = []
        self._cond = threading.Condition()
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's handler hook
        message = email.message_from_bytes(envelope.original_content or envelope.content,
                                           policy=email.policy.default)
        with self._cond:
            self.messages.append(message)
            self.recipients.append(list(envelope.rcpt_tos))
            self._cond.notify_all()
        return "250 OK"

    def __enter__(self) -> MailSink:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()

    @property
    def env(self) -> dict[str, str]:
        return {"PAPERRADAR_SMTP_HOST": "127.0.0.1", "PAPERRADAR_SMTP_PORT": str(self.port),
                "PAPERRADAR_MAIL_FROM": "digest@paperradar.test",
                "PAPERRADAR_SECRET_KEY": "test-secret-do-not-use-in-production"}

    def clear(self) -> None:
        with self._cond:
            self.messages.clear()
            self.recipients.clear()

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
