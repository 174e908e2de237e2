"""Accounts: passwordless sign-in by mailed magic link, sessions, and deleting an account with its data.

A sign-in request always gets the same answer and the same mail, whether the address has an account or
not (following the link creates the account), so the form tells nobody who uses this server. Links are
signed (HMAC over the link's id, a random nonce and the expiry), expire after SIGNIN_TTL and work once.
A session is a random token in a cookie; the database keeps only its SHA-256, so a copy of the database
cannot be used to sign in.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
from urllib.parse import urlencode

from . import mail, zotero
from .clock import stamp, utc
from .config import Settings
from .errors import PaperradarError, RateLimited
from .store import Store, User

log = logging.getLogger("paperradar.accounts")
SIGNIN_TTL = dt.timedelta(minutes=15)
SESSION_TTL = dt.timedelta(days=30)
ADDRESS_LIMIT = 5  # sign-in mails per address per hour
CLIENT_LIMIT = 20  # sign-in mails per client address per hour
LIMIT_WINDOW = dt.timedelta(hours=1)
MAX_SESSION_TOKEN = 100


class SignInError(PaperradarError):
    """A sign-in request that cannot be taken (not an address)."""


class MailUnavailable(PaperradarError):
    http_status = 503


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Accounts:
    """Sign-in and sessions over a store, with the settings' mail, base URL and secret (which signs links).

    Without a mail server (no PAPERRADAR_SMTP_HOST and PAPERRADAR_MAIL_FROM) the sign-in link is
    written to the server's log instead of mailed: a single researcher running paperradar on their own
    machine signs in from the terminal, and nobody else can read that log.
    """

    def __init__(self, store: Store, settings: Settings):
        self.store = store
        self.db = store.accounts
        self.mail = mail.MailSettings.from_settings(settings)
        self.secret = self.mail.secret

    @property
    def mails_links(self) -> bool:
        """Whether sign-in links go by mail (else to the server's log)."""
        return bool(self.mail.host or self.mail.sender)

    # -- magic links ----------------------------------------------------------------------------------
    def request_sign_in(self, email: str, client: str = "", now: dt.datetime | None = None,
                        next_path: str = "") -> None:
        """Mail a sign-in link to ``email`` (``next_path``: the page on this site to land on after), or
        log it when no mail server is set up. Raises SignInError for a malformed address, RateLimited past
        the per-mailbox or per-client limits, MailUnavailable when the mail server cannot take it now.

        The limits count links already made (a refused request adds nothing, so refusals cannot lock the
        owner out for longer) per mailbox (mail.mailbox: sub-addresses count as their mailbox); checking and
        adding are one transaction, so two requests at once cannot both take the last one. The mail goes
        out after that transaction: a slow mail server holds up nobody else's writes."""
        if self.mails_links:
            self.mail.require()  # half a mail setup is an error, not a reason to log links
        address = mail.canonical_address(email)
        if address is None:
            raise SignInError("that does not look like an e-mail address")
        now = utc(now)
        nonce = secrets.token_hex(8)
        expires = now + SIGNIN_TTL
        since = stamp(now - LIMIT_WINDOW)
        with self.store.transaction():
            by_mailbox, by_client = self.db.signin_counts(mail.mailbox(address), client, since)
            if by_mailbox >= ADDRESS_LIMIT or by_client >= CLIENT_LIMIT:
                raise RateLimited("too many sign-in requests; try again in an hour")
            link_id = self.db.add_signin_link(address, mail.mailbox(address), client, nonce, stamp(now),
                                              stamp(expires), since)
        token = mail.make_token(self.secret, "signin", link_id, nonce, int(expires.timestamp()))
        query = {"token": token, **({"next": next_path} if next_path else {})}
        context = {"signin_url": f"{self.mail.base_url}/signin/verify?{urlencode(query)}",
                   "minutes": int(SIGNIN_TTL.total_seconds() // 60), "base_url": self.mail.base_url}
        if not self.mails_links:
            log.warning("no mail server is set up (PAPERRADAR_SMTP_HOST, PAPERRADAR_MAIL_FROM), so here is "
                        "the sign-in link for %s, good once for %d minutes: %s", address,
                        context["minutes"], context["signin_url"])
            return
        message = mail.build_message(
            self.mail, to=address, subject="Sign in to paperradar", message_id=mail.new_message_id(self.mail),
            text=mail.TEMPLATES.get_template("signin.txt").render(context),
            html=mail.TEMPLATES.get_template("signin.html").render(context), date=now.timestamp())
        # Sent now, not through the digest outbox: a sign-in link is useless a quarter of an hour later,
        # and the person is waiting for it.
        try:
            with mail.SmtpConnection(self.mail) as conn:
                conn.send(address, message)
        except mail.TransientMailError as e:
            raise MailUnavailable("the sign-in mail could not be sent just now; try again in a minute",
                                  hint=str(e)) from None
        except mail.PermanentMailError as e:
            raise SignInError(f"the mail server refused this address ({e})") from None

    def verify(self, token: str, now: dt.datetime | None = None) -> User:
        """The user a sign-in link is for (the account is created on first sign-in); the link is used up.
        InvalidToken if it is forged, expired or used already. One transaction: using the link and making
        the account happen together or not at all."""
        now = utc(now)
        link_id, _, _ = mail.parse_token(token)
        with self.store.transaction():
            row = self.db.signin_link(link_id)
            if row is None:
                raise mail.InvalidToken("this sign-in link is not valid, or no longer valid")
            email, nonce, _, used = row
            mail.check_token(self.secret, "signin", token, nonce, now.timestamp(), again="sign in again")
            if used or not self.db.use_signin_link(link_id, stamp(now)):
                raise mail.InvalidToken("this sign-in link was used already; ask for a new one")
            return self.db.ensure_user(email, stamp(now))

    def link_address(self, token: str, now: dt.datetime | None = None) -> str | None:
        """The address a sign-in link would sign in, if the link is genuine, unexpired and unused (the page
        the link opens says whose it is); None otherwise. Uses nothing up."""
        try:
            link_id, _, _ = mail.parse_token(token)
            row = self.db.signin_link(link_id)
            if row is None or row[3]:
                return None
            mail.check_token(self.secret, "signin", token, row[1], utc(now).timestamp())
        except mail.InvalidToken:
            return None
        return row[0]

    def user_by_email(self, email: str) -> User | None:
        """The account of an address, written in any form that has the same canonical one."""
        address = mail.canonical_address(email)
        return self.db.user_by_email(address) if address else None

    # -- sessions -------------------------------------------------------------------------------------
    def start_session(self, user: User, now: dt.datetime | None = None) -> str:
        """A new session for ``user``: the token for its cookie."""
        now = utc(now)
        token = secrets.token_urlsafe(32)
        self.db.add_session(_hash(token), user.id, stamp(now), stamp(now + SESSION_TTL))
        return token

    def session_user(self, token: str | None, now: dt.datetime | None = None) -> User | None:
        if not token or len(token) > MAX_SESSION_TOKEN:
            return None
        return self.db.session_user(_hash(token), stamp(utc(now)))

    def sign_out(self, token: str | None) -> None:
        if token and len(token) <= MAX_SESSION_TOKEN:
            self.db.delete_session(_hash(token))

    def delete(self, user: User) -> None:
        """Delete the account and all its data (library, tags, votes, sessions, digest subscription, Zotero
        key and sync state)."""
        with self.store.transaction():
            self.db.delete_user(user.id)
            zotero.forget(self.store, user.id)  # a later account may be given the same id
