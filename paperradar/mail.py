"""Mail: settings, signed links, RFC 5322 messages and SMTP delivery with failures classified.

Transient failures (connection refused, timeouts, 4xx replies) are retried later by the outbox; permanent
ones (5xx replies for the recipient) count toward marking an address as bouncing.
"""

from __future__ import annotations

import email.policy
import hashlib
import hmac
import re
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from . import clock
from .config import Settings
from .errors import PaperradarError

SMTP_TIMEOUT = 30  # seconds per SMTP command
CONFIRM_TTL = 7 * 24 * 3600  # a confirmation link works for a week
# The mails' templates (mail_templates/: a .txt and a .html of each), shared by digests and sign-in.
TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).parent / "mail_templates"),
                        autoescape=select_autoescape(["html"]), auto_reload=False)


class MailNotConfigured(PaperradarError):
    http_status = 503


class InvalidToken(PaperradarError):
    """A link's token is forged, for another purpose, expired, or from before the subscriber's reset."""

    http_status = 400


class TransientMailError(Exception):
    """Try again later: the server is down or said 4xx."""


class PermanentMailError(Exception):
    """The server refused the recipient or the message for good (5xx)."""


@dataclass(frozen=True)
class MailSettings:
    host: str | None
    port: int
    tls: str
    user: str | None
    password: str | None
    sender: str | None
    base_url: str
    secret: bytes | None

    @classmethod
    def from_settings(cls, settings: Settings) -> MailSettings:
        return cls(host=settings.smtp_host, port=settings.smtp_port, tls=settings.smtp_tls.lower(),
                   user=settings.smtp_user, password=settings.smtp_password, sender=settings.mail_from,
                   base_url=settings.public_url, secret=settings.secret)

    def require(self) -> None:
        """Refuse to compose or send mail without what it needs — never a default secret."""
        missing = [env for env, value in (("PAPERRADAR_SMTP_HOST", self.host),
                                          ("PAPERRADAR_MAIL_FROM", self.sender)) if not value]
        if missing:
            raise MailNotConfigured("mail is not configured: set " + ", ".join(missing),
                                    hint="see the README section on digests")
        if self.tls not in ("none", "starttls", "ssl"):
            raise MailNotConfigured(f"PAPERRADAR_SMTP_TLS is {self.tls!r}; use none, starttls or ssl")


# -- addresses ---------------------------------------------------------------------------------------------
EMAIL = re.compile(r"^[^@\s<>\"',;]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+$")


def valid_address(email: str | None) -> str | None:
    """The address stripped, or None when it does not look deliverable. ASCII only: delivery does not
    negotiate SMTPUTF8, and smtplib cannot put such an address on the wire."""
    email = (email or "").strip()
    if len(email) > 254 or not (email.isascii() and email.isprintable()) or not EMAIL.match(email):
        return None
    return email


# -- signed links -------------------------------------------------------------------------------------------
_TOKEN = re.compile(r"([0-9]{1,18})\.([0-9]{1,18})\.([0-9a-f]{40})", re.ASCII)


def make_token(secret: bytes, purpose: str, sid: int, nonce: str, expires: int = 0) -> str:
    """``<id>.<expiry>.<mac>``: the MAC covers the purpose, the subscriber's current nonce and the expiry,
    so a token cannot be forged, reused for another purpose, or used after the subscriber starts over."""
    mac = hmac.new(secret, f"{purpose}:{sid}:{nonce}:{expires}".encode(), hashlib.sha256).hexdigest()[:40]
    return f"{sid}.{expires}.{mac}"


def parse_token(token: str) -> tuple[int, int, str]:
    # Strict: a forged id too large for SQLite, or a non-ASCII MAC (which hmac.compare_digest refuses
    # with TypeError), must be an InvalidToken like any other bad link, not a server error.
    found = _TOKEN.fullmatch(token or "")
    if found is None:
        raise InvalidToken("this link is not valid (it may be incomplete: copy the whole link)")
    return int(found[1]), int(found[2]), found[3]


def check_token(secret: bytes, purpose: str, token: str, nonce: str, now: float | None = None,
                again: str = "subscribe again") -> None:
    """InvalidToken unless the token is this purpose's MAC over this nonce and has not expired; the
    message for an expired link tells the reader what to do (``again``) to get a new one."""
    sid, expires, mac = parse_token(token)
    want = make_token(secret, purpose, sid, nonce, expires).rsplit(".", 1)[1]
    if not hmac.compare_digest(want, mac):
        raise InvalidToken("this link is not valid, or no longer valid")
    if expires and (clock.seconds() if now is None else now) > expires:
        raise InvalidToken(f"this link has expired; {again} to get a new one")


# -- messages -----------------------------------------------------------------------------------------------
def build_message(settings: MailSettings, *, to: str, subject: str, text: str, html: str, message_id: str,
                  unsubscribe_url: str | None = None, date: float | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = settings.sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(date, usegmt=True)
    msg["Message-ID"] = message_id
    msg["Auto-Submitted"] = "auto-generated"
    if unsubscribe_url:
        # RFC 8058 one-click: the client POSTs "List-Unsubscribe=One-Click" to this URL.
        msg["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    # quoted-printable: SMTP limits lines to 998 characters, and an abstract is one long line
    msg.set_content(text, cte="quoted-printable")
    msg.add_alternative(html, subtype="html", cte="quoted-printable")
    return msg.as_bytes(policy=email.policy.SMTP)  # CRLF line ends, as the wire wants them


def new_message_id(settings: MailSettings) -> str:
    domain = (settings.sender or "paperradar.localhost").rpartition("@")[2] or "paperradar.localhost"
    return make_msgid(domain=domain)


class SmtpConnection:
    """One SMTP session for a batch of mails; every failure becomes Transient- or PermanentMailError."""

    def __init__(self, settings: MailSettings):
        self.settings = settings
        self.smtp: smtplib.SMTP | None = None

    def __enter__(self) -> SmtpConnection:
        s = self.settings
        try:
            if s.tls == "ssl":
                self.smtp = smtplib.SMTP_SSL(s.host, s.port, timeout=SMTP_TIMEOUT,
                                             context=ssl.create_default_context())
            else:
                self.smtp = smtplib.SMTP(s.host, s.port, timeout=SMTP_TIMEOUT)
                if s.tls == "starttls":
                    self.smtp.starttls(context=ssl.create_default_context())
            if s.user:
                self.smtp.login(s.user, s.password or "")
        except (OSError, smtplib.SMTPException) as e:
            self.close()
            raise TransientMailError(f"cannot reach the SMTP server {s.host}:{s.port}: {e}") from None
        return self

    def send(self, recipient: str, message: bytes) -> None:
        if not recipient.isascii():  # smtplib would raise UnicodeEncodeError mid-transaction (no SMTPUTF8)
            raise PermanentMailError(f"cannot send to {recipient!r}: not an ASCII address")
        try:
            refused = self.smtp.sendmail(self.settings.sender, [recipient], message)
        except smtplib.SMTPRecipientsRefused as e:
            code, reply = next(iter(e.recipients.values()))
            raise (PermanentMailError if code >= 500 else TransientMailError)(f"{code} {reply!r}") from None
        except smtplib.SMTPSenderRefused as e:
            # The server refuses our sender (relay or From: misconfiguration), not the recipient: retry
            # later instead of counting a bounce against every subscriber.
            raise TransientMailError(f"the SMTP server refused the sender {e.sender}: {e.smtp_code} "
                                     f"{e.smtp_error!r}") from None
        except smtplib.SMTPResponseException as e:
            raise (PermanentMailError if e.smtp_code >= 500 else TransientMailError)(
                f"{e.smtp_code} {e.smtp_error!r}") from None
        except (OSError, smtplib.SMTPException) as e:  # socket timeouts are OSErrors
            self.close()
            raise TransientMailError(f"SMTP session failed: {e}") from None
        if refused:
            code, reply = refused[recipient]
            raise (PermanentMailError if code >= 500 else TransientMailError)(f"{code} {reply!r}")

    def close(self) -> None:
        if self.smtp is not None:
            try:
                self.smtp.quit()
            except (OSError, smtplib.SMTPException):
                pass
            self.smtp = None

    def __exit__(self, *exc) -> None:
        self.close()
