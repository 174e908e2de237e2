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
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from . import clock, mathtext, urls
from .config import Settings
from .errors import PaperradarError

SMTP_TIMEOUT = 30  # seconds per SMTP command
CONFIRM_TTL = 7 * 24 * 3600  # a confirmation link works for a week
# The mails' templates (mail_templates/: a .txt and a .html of each), shared by digests and sign-in.
TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).parent / "mail_templates"),
                        autoescape=select_autoescape(["html"]), auto_reload=False)
TEMPLATES.globals["paper_url"] = urls.paper_url  # paper_url(base_url, paper): the one way links are built
TEMPLATES.filters["math_text"] = mathtext.to_text  # titles' LaTeX math as Unicode text: "$\\pi^2$" -> "π²"


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

    @property
    def sender_address(self) -> str | None:
        """The address of PAPERRADAR_MAIL_FROM ("paperradar@example.org" or "Paperradar <...>"), canonical:
        the envelope sender and the From: address; None if it is not one."""
        return canonical_address(parseaddr(self.sender or "")[1])

    def require(self) -> None:
        """Refuse to compose or send mail without what it needs — never a default secret."""
        missing = [env for env, value in (("PAPERRADAR_SMTP_HOST", self.host),
                                          ("PAPERRADAR_MAIL_FROM", self.sender)) if not value]
        if missing:
            raise MailNotConfigured("mail is not configured: set " + ", ".join(missing),
                                    hint="see the README section on digests")
        if not _HEADER_URL.fullmatch(self.base_url) or len(self.base_url) > 800:
            # it starts every link in mails, and the List-Unsubscribe header (see build_message)
            raise MailNotConfigured(f"PAPERRADAR_BASE_URL is {self.base_url!r}: links in mails need an "
                                    "http(s) URL of printable ASCII, without spaces or angle brackets, at "
                                    "most 800 characters")
        if self.sender_address is None:
            raise MailNotConfigured(f"PAPERRADAR_MAIL_FROM is {self.sender!r}, not an e-mail address",
                                    hint="e.g. paperradar@example.org")
        if self.tls not in ("none", "starttls", "ssl"):
            raise MailNotConfigured(f"PAPERRADAR_SMTP_TLS is {self.tls!r}; use none, starttls or ssl")


# -- addresses ---------------------------------------------------------------------------------------------
# What we accept is a bare addr-spec in its plainest form, so that the string we check, count, store and
# hand to smtplib is the mailbox that receives the mail. Everything that makes a parser see another mailbox
# than the text suggests is refused, not interpreted: comments "(1)ada@x", display names and angle
# brackets, group syntax "x:ada@x;", route addresses "@relay:ada@x", quoted local parts, address literals
# "ada@[1.2.3.4]", whitespace inside, non-ASCII (delivery does not negotiate SMTPUTF8), several "@",
# encoded-word openers "=?" (mail parsers decode them even there), and the routing characters "%"
# (percent hack) and "!" (bang paths). The local part is RFC 5322 dot-atom text; the domain is a host name
# of at least two labels whose last is not numeric.
_ATEXT = r"A-Za-z0-9#$&'*+/=?^_`{|}~-"  # RFC 5322 atext less "!" and "%"
_LOCAL = re.compile(rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})+")
# Gmail delivers "a.d.a@gmail.com" to "ada@gmail.com"; counted as one mailbox (see mailbox()).
_DOTLESS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}


def canonical_address(text: str | None) -> str | None:
    """The one form of an e-mail address that paperradar checks, counts, stores and sends to, or None when
    ``text`` is not a plain deliverable address (see above for what is refused).

    The whole address is lower-cased, the local part too: RFC 5321 lets a server tell "Ada" from "ada",
    but practically every provider does not, and one person must not get two accounts, two votes or two
    rate limits by changing the case. Surrounding whitespace (from a form field) is dropped."""
    if not isinstance(text, str):
        return None
    address = text.strip()
    if len(address) > 254 or not address.isascii():
        return None
    address = address.lower()
    local, at, domain = address.rpartition("@")
    if (not at or len(local) > 64 or "=?" in local or not _LOCAL.fullmatch(local)
            or not _DOMAIN.fullmatch(domain) or domain.rpartition(".")[2].isdigit()):
        return None
    return address


def mailbox(address: str) -> str:
    """The mailbox a canonical address delivers to, for rate limits: a sub-address ("ada+news@x") counts
    as "ada@x", and dots do not count at Gmail. Only for counting: mail goes to the address as given,
    and an account is the address as given."""
    local, _, domain = address.rpartition("@")
    local = local.split("+", 1)[0] or local
    if domain in _DOTLESS:
        local, domain = local.replace(".", "") or local, _DOTLESS[domain]
    return f"{local}@{domain}"


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
    msg["From"] = Address(parseaddr(settings.sender or "")[0], addr_spec=settings.sender_address)
    msg["To"] = to  # canonical (see canonical_address): the header says exactly what RCPT TO says
    msg["Subject"] = subject
    msg["Date"] = formatdate(date, usegmt=True)
    msg["Message-ID"] = message_id
    msg["Auto-Submitted"] = "auto-generated"
    if unsubscribe_url:
        # RFC 8058 one-click: the client POSTs "List-Unsubscribe=One-Click" to this URL. Clients look for
        # "<https://...>" in the raw header (RFC 2369), but the email package folds an unstructured header
        # whose one word is longer than a line into RFC 2047 encoded-words, which no client decodes there:
        # so the value is set raw and written as it is (see _POLICY), on one line of at most 998.
        value = f"<{unsubscribe_url}>"
        if not _HEADER_URL.fullmatch(unsubscribe_url) or len("List-Unsubscribe: ") + len(value) > 998:
            raise ValueError(f"cannot put {unsubscribe_url!r} in List-Unsubscribe: a URL there is printable "
                             "ASCII without spaces, and the line at most 998 characters")
        msg.set_raw("List-Unsubscribe", value)
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    # quoted-printable: SMTP limits lines to 998 characters, and an abstract is one long line
    msg.set_content(text, cte="quoted-printable")
    msg.add_alternative(html, subtype="html", cte="quoted-printable")
    return msg.as_bytes(policy=_POLICY)


# CRLF line ends, as the wire wants them. refold_source="none": a header set raw (List-Unsubscribe) is written
# exactly as set; every other header is an object that folds (and encodes non-ASCII) as before.
_POLICY = email.policy.SMTP.clone(refold_source="none")
_HEADER_URL = re.compile(r"https?://[!-;=?-~]+")  # printable ASCII but "<" and ">": no space, no CR/LF


def new_message_id(settings: MailSettings) -> str:
    domain = (settings.sender_address or "paperradar.localhost").rpartition("@")[2]
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
        # Only a canonical address goes to RCPT TO: smtplib would rewrite anything else (it keeps the address
        # of "(1)ada@x", and fails mid-transaction on non-ASCII without SMTPUTF8); a row from before
        # addresses were canonical fails for good instead.
        if canonical_address(recipient) != recipient:
            why = "not an ASCII address" if not recipient.isascii() else "not a plain e-mail address"
            raise PermanentMailError(f"cannot send to {recipient!r}: {why}")
        try:
            refused = self.smtp.sendmail(self.settings.sender_address, [recipient], message)
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
