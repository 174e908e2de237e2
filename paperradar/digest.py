"""Subscriptions and the daily digest: subscribe (double opt-in), compose each subscriber's digest once a
day at their hour, and deliver the outbox exactly once — with retries, backoff and bounce handling.

Groups (paperradar.groups) get a digest too, composed the same way once per (group, local day) at the group's
hour: the new papers its feed and saved searches find, and the comments on its library. It is mailed to each
member who has not opted out and posted to the group's chat destinations, through the same outbox.

The clock is a parameter everywhere (``now``, an aware UTC datetime), so `paperradar digest send --at`
and the tests can run any morning. Composing and sending are separate steps joined by the outbox table:
a digest is composed into the outbox once per (subscriber, local day), in the same transaction that moves
the subscriber's cursor; sending claims one mail at a time, so concurrent senders never double-send.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import os
import secrets
import socket
import threading
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import mail, notify, sync, trending
from .clock import stamp, utc
from .config import Settings
from .errors import PaperradarError, RateLimited
from .groups import Groups
from .mail import TEMPLATES
from .notes import Notes
from .query import parse_query
from .recommend import Recommender
from .search import SearchEngine
from .store import Store, Subscriber
from .store.groups import DigestGroup

# RateLimited (now paperradar.errors), utc and stamp (now paperradar.clock) are still imported from here by
# paperradar/web and bench/digest.py; they are the same objects.
__all__ = ["Digest", "Digests", "Preferences", "RateLimited", "SubscribeError", "stamp", "utc"]

MAX_SEARCHES = 10
MAX_PAPERS = 50
GROUP_PAPERS = 10  # papers per section of a group digest
ADDRESS_LIMIT = 5  # subscribe requests per address per day
CLIENT_LIMIT = 20  # subscribe requests per client address per day
LEASE = dt.timedelta(minutes=15)  # a mail claimed longer ago than this by a live-looking sender is retaken
MAX_ATTEMPTS = 12  # transient failures before a mail is given up (about 2 days of backoff)
BOUNCE_LIMIT = 3  # permanent failures in a row before an address is marked bouncing


class SubscribeError(PaperradarError):
    """A subscription request that cannot be taken as given (bad address, query, hour or zone)."""


@dataclass
class Preferences:
    trending: bool = True
    searches: list[str] = field(default_factory=list)
    max_papers: int = 10
    hour: int = 8
    tz: str = "UTC"

    def validate(self) -> Preferences:
        searches = [" ".join(q.split()) for q in self.searches if q and q.strip()]
        if len(searches) > MAX_SEARCHES:
            raise SubscribeError(f"at most {MAX_SEARCHES} saved searches")
        for q in searches:
            parse_query(q)  # a QueryError says what is wrong with it
        if not self.trending and not searches:
            raise SubscribeError("choose trending papers, a saved search, or both")
        try:
            max_papers, hour = int(self.max_papers), int(self.hour)
        except (TypeError, ValueError):
            raise SubscribeError("papers per section and the hour must be whole numbers") from None
        if not 1 <= max_papers <= MAX_PAPERS:
            raise SubscribeError(f"papers per section must be 1 to {MAX_PAPERS}")
        if not 0 <= hour <= 23:
            raise SubscribeError("the hour of delivery must be 0 to 23")
        try:
            ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise SubscribeError(f"unknown time zone {self.tz!r}; use a name like Europe/Paris") from None
        return Preferences(bool(self.trending), searches, max_papers, hour, self.tz)


@dataclass
class Digest:
    """A composed digest, before it becomes a message."""

    subscriber: Subscriber
    day: str  # the subscriber's local day
    listing_day: str | None  # newest listing day covered
    new_listings: bool
    trending: list  # [TrendingItem]
    searches: list[tuple[str, list]]  # [(query, [Hit])]
    for_you: list = field(default_factory=list)  # [Recommendation], for subscribers with an account
    notes: list[str] = field(default_factory=list)  # what the radar could not fetch (sync.problems)
    comments: int = 0  # new comments by others on papers the subscriber saved (paperradar.notes)
    group: DigestGroup | None = None  # a group's digest: ``subscriber`` stands for the group's schedule
    saved_by: dict[int, str] = field(default_factory=dict)  # group digest: saved paper id -> who saved it

    @property
    def papers(self) -> int:
        return len(self.trending) + sum(len(h) for _, h in self.searches) + len(self.for_you)

    @property
    def subject(self) -> str:
        name = f"{self.group.name} · paperradar" if self.group else "paperradar"
        if not self.new_listings:
            if self.notes:
                return f"{name} {self.day}: no new papers (a source is not reachable)"
            return f"{name} {self.day}: no new papers today"
        n = self.papers
        whom = "the group" if self.group else "you"
        return f"{name} {self.day}: {n} paper{'' if n == 1 else 's'} for {whom}"


_ASK = object()  # Digests.due: look the arXiv listing up now


class Digests:
    """The digest service over a store and a search engine, with the settings' mail and secret."""

    def __init__(self, store: Store, engine: SearchEngine | None, settings: Settings):
        self.store = store
        self.subs = store.subscriptions
        self.engine = engine
        self.settings = settings
        self.mail = mail.MailSettings.from_settings(settings)
        self.chats = notify.Chats(store, settings, self.mail.base_url)
        self.groups = Groups(store, settings, engine)

    # -- links ------------------------------------------------------------------------------------------
    def token(self, purpose: str, sub: Subscriber, expires: int = 0) -> str:
        """A signed token for a link (purposes: confirm, unsubscribe, manage)."""
        return mail.make_token(self.mail.secret, purpose, sub.id, sub.nonce, expires)

    def link(self, path: str, purpose: str, sub: Subscriber, expires: int = 0) -> str:
        return f"{self.mail.base_url}{path}?token={self.token(purpose, sub, expires)}"

    def subscriber_for(self, purpose: str, token: str, now: dt.datetime | None = None) -> Subscriber:
        """The subscriber a signed link is for; InvalidToken if forged, stale or expired."""
        sid, _, _ = mail.parse_token(token)
        sub = self.subs.get(sid)
        if sub is None:
            raise mail.InvalidToken("this link is not valid, or no longer valid")
        mail.check_token(self.mail.secret, purpose, token, sub.nonce, utc(now).timestamp())
        return sub

    # -- subscribing ------------------------------------------------------------------------------------
    def subscribe(self, email: str, prefs: Preferences, client: str = "", now: dt.datetime | None = None
                  ) -> None:
        """Double opt-in: record the request and queue a confirmation mail; nothing else is sent until the
        address owner follows its link. The outcome is the same whether the address was known or not.

        The limits count requests already taken, per mailbox (mail.mailbox) and per client: a refused
        request records nothing. Checking the limits, recording the request, the subscriber and its queued
        confirmation are one transaction, so two requests at once cannot both take the last one."""
        self.mail.require()
        address = mail.canonical_address(email)
        if address is None:
            raise SubscribeError("that does not look like an e-mail address")
        prefs = prefs.validate()
        now = utc(now)
        since = stamp(now - dt.timedelta(days=1))
        box = mail.mailbox(address)
        with self.store.transaction():
            by_mailbox, by_client = self.subs.request_counts(box, client, since)
            if by_mailbox >= ADDRESS_LIMIT or by_client >= CLIENT_LIMIT:
                raise RateLimited("too many subscription requests; try again tomorrow")
            self.subs.record_request(address, box, client, stamp(now), since)
            sub = self.subs.upsert(address, trending=prefs.trending, searches=prefs.searches,
                                   max_papers=prefs.max_papers, hour=prefs.hour, tz=prefs.tz,
                                   nonce=secrets.token_hex(8), now=stamp(now))
            # rendered here, not before: the mail's links are signed with the subscriber's nonce, which
            # this transaction may have just set (a template takes a millisecond)
            expires = int(now.timestamp()) + mail.CONFIRM_TTL
            context = {"sub": sub, "confirm_url": self.link("/confirm", "confirm", sub, expires),
                       "manage_url": self.link("/subscription", "manage", sub),
                       "already": sub.status == "active", "base_url": self.mail.base_url}
            message_id = mail.new_message_id(self.mail)
            message = mail.build_message(
                self.mail, to=sub.email, subject="Confirm your paperradar digest", message_id=message_id,
                text=TEMPLATES.get_template("confirm.txt").render(context),
                html=TEMPLATES.get_template("confirm.html").render(context), date=now.timestamp())
            self.subs.enqueue(sub.id, "confirm", stamp(now) + f"/{secrets.token_hex(4)}", sub.email,
                              message_id, message, stamp(now))

    def subscribe_verified(self, email: str, prefs: Preferences,
                           now: dt.datetime | None = None) -> Subscriber:
        """A signed-in user's subscription (their address is proven by the sign-in): created or updated
        with these preferences, and active at once, with no confirmation mail."""
        prefs = prefs.validate()
        now = utc(now)
        with self.store.transaction():
            sub = self.subs.by_email(email)
            if sub is None or sub.status != "active":
                sub = self.subs.upsert(email, trending=prefs.trending, searches=prefs.searches,
                                       max_papers=prefs.max_papers, hour=prefs.hour, tz=prefs.tz,
                                       nonce=secrets.token_hex(8), now=stamp(now))
                self.subs.set_status(sub.id, "active", now=stamp(now))
            self.subs.set_preferences(sub.id, trending=prefs.trending, searches=prefs.searches,
                                      max_papers=prefs.max_papers, hour=prefs.hour, tz=prefs.tz)
            return self.subs.get(sub.id)

    def stop(self, email: str) -> None:
        """Unsubscribe a signed-in user's address (if subscribed)."""
        with self.store.transaction():
            sub = self.subs.by_email(email)
            if sub is not None and sub.status != "unsubscribed":
                self.subs.set_status(sub.id, "unsubscribed")

    # Acting on a link is one transaction with checking it: a link checked just before its subscriber
    # started over (a new nonce) must not act on the new request.
    def confirm(self, token: str, now: dt.datetime | None = None) -> Subscriber:
        now = utc(now)
        with self.store.transaction():
            sub = self.subscriber_for("confirm", token, now)
            if sub.status != "active":
                self.subs.set_status(sub.id, "active", now=stamp(now))
            return self.subs.get(sub.id)

    def unsubscribe(self, token: str) -> Subscriber:
        """One click, no questions (RFC 8058); idempotent."""
        with self.store.transaction():
            sub = self.subscriber_for("unsubscribe", token)
            if sub.status != "unsubscribed":
                self.subs.set_status(sub.id, "unsubscribed")
            return self.subs.get(sub.id)

    def set_preferences(self, token: str, prefs: Preferences) -> Subscriber:
        """Change a subscription's preferences through its manage link (the page a digest links to)."""
        prefs = prefs.validate()
        with self.store.transaction():
            sub = self.subscriber_for("manage", token)
            self.subs.set_preferences(sub.id, trending=prefs.trending, searches=prefs.searches,
                                      max_papers=prefs.max_papers, hour=prefs.hour, tz=prefs.tz)
            return self.subs.get(sub.id)

    # -- composing --------------------------------------------------------------------------------------
    @staticmethod
    def local_day(sub: Subscriber, now: dt.datetime) -> tuple[str, dt.datetime]:
        """The subscriber's local day now, and that day's delivery time (UTC)."""
        zone = ZoneInfo(sub.tz)
        local = now.astimezone(zone)
        slot = dt.datetime.combine(local.date(), dt.time(sub.hour), tzinfo=zone).astimezone(dt.UTC)
        return local.date().isoformat(), slot

    def due(self, sub: Subscriber, now: dt.datetime, listings_in: bool | None | object = _ASK) -> str | None:
        """The local day whose digest is due now, or None: the day's hour has come, the day has no digest
        yet, and the subscription was confirmed before that hour (the first digest is the next one)."""
        day, slot = self.local_day(sub, now)
        if now < slot or (sub.last_digest_day and sub.last_digest_day >= day):
            return None
        if sub.confirmed and sub.confirmed > stamp(slot):
            return None
        # The order of a day is sync, index, digests: wait (a while) for the morning's arXiv listing.
        wait = dt.timedelta(minutes=self.settings.digest_wait_min)
        if listings_in is _ASK:  # compose_due works it out once per run, not once per subscriber
            listings_in = sync.listings_in(self.store, now)
        if now < slot + wait and listings_in is False:
            return None
        return day

    def compose(self, sub: Subscriber, now: dt.datetime, day: str | None = None, *,
                shared: dict | None = None, group: DigestGroup | None = None) -> Digest:
        """``shared``: a dict that compose_due passes to every compose of one run (one ``now``), so the
        work that is the same for many subscribers (the day's candidates and trending ranking, a popular
        saved search over the same new papers) is done once per run instead of once per subscriber.

        ``group``: a group's digest (``sub`` is then group_schedule(group)): its feed instead of a
        person's, and the comments on its library."""
        memo = {} if shared is None else shared

        def once(key: tuple, compute):
            if key not in memo:
                memo[key] = compute()
            return memo[key]

        day = day or self.local_day(sub, now)[0]
        latest = once(("latest", day), lambda: self.store.latest_day(day))
        new = latest is not None and (sub.last_listing_day is None or latest > sub.last_listing_day)
        top, found, for_you, saved_by = [], [], [], {}
        if new:
            since = latest if sub.last_listing_day is None else \
                (dt.date.fromisoformat(sub.last_listing_day) + dt.timedelta(days=1)).isoformat()
            candidates = once(("candidates", since, latest),
                              lambda: [pid for pid, _, _ in self.store.trending_candidates(since, latest)])
            if sub.trending:
                top = once(("trending", sub.max_papers),
                           lambda: trending.trending(self.store, "day", limit=sub.max_papers, now=now).items)
            for q in sub.searches:
                hits = once(("search", q, since, latest, sub.max_papers),
                            lambda q=q: self.engine.new_matches(q, candidates, limit=sub.max_papers,
                                                               since=since))
                found.append((q, hits))
            if group is None:
                for_you = self._for_you(sub, candidates)
            else:
                for_you, saved_by = self._group_for_you(group, sub.max_papers, candidates)
        notes = once(("notes",), lambda: sync.problems(self.store, now))
        comments = self._comments(sub, now) if group is None else self._group_comments(group, now)
        return Digest(sub, day, latest if new else sub.last_listing_day, new, top, found, for_you, notes,
                      comments, group, saved_by)

    def _comments(self, sub: Subscriber, now: dt.datetime) -> int:
        """New comments (the last day) by others on papers the subscriber's account saved, alone or in a
        group: "3 new comments on papers you saved"."""
        user = self.store.accounts.user_by_email(sub.email)
        if user is None or sub.id == 0:
            return 0
        return Notes(self.store, self.settings.comments_public).new_comments(
            user, stamp(now - dt.timedelta(days=1)))

    def _for_you(self, sub: Subscriber, candidates: list[int]) -> list:
        """The subscriber's recommendations among the new papers, when the address has an account with a
        library (the feed's model, or related papers below 3 saved ones; no trending filler: that is the
        trending section's job)."""
        user = self.store.accounts.user_by_email(sub.email)
        if user is None or self.engine is None or not self.store.accounts.saved_ids(user.id):
            return []
        feed = Recommender(self.store, self.engine).feed(user, limit=sub.max_papers, candidates=candidates)
        return [r for r in feed.items if r.why != "trending"]

    # -- group digests ------------------------------------------------------------------------------------
    @staticmethod
    def group_schedule(g: DigestGroup) -> Subscriber:
        """A group as a subscriber to compose for: its hour, zone, saved searches and cursor, no trending
        section (the group digest is what the group's library and searches find). Its creation stands for
        the confirmation: a group made after today's hour gets its first digest tomorrow."""
        return Subscriber(id=0, email="", status="active", trending=False, max_papers=GROUP_PAPERS,
                          hour=g.hour, tz=g.tz, nonce="", created=g.created, confirmed=g.created,
                          last_digest_day=g.last_digest_day, last_listing_day=g.last_listing_day, bounces=0,
                          searches=g.searches)

    def _group_for_you(self, g: DigestGroup, limit: int, candidates: list[int]) -> tuple[list, dict]:
        """The group feed among the new papers (its model, or papers related to its library below 3
        saved ones), and who saved the papers they are close to."""
        group = self.groups.db.as_group(g.id)
        if group is None or self.engine is None or not self.groups.db.saved_ids(g.id):
            return [], {}
        feed, who = self.groups.feed_of(group, limit=limit, candidates=candidates)
        return [r for r in feed.items if r.why != "trending"], who

    def _group_comments(self, g: DigestGroup, now: dt.datetime) -> int:
        """Comments of the last day on papers in the group library, that the group reads."""
        return self.groups.db.new_comments_on_library(g.id, stamp(now - dt.timedelta(days=1)),
                                                      self.settings.comments_public)

    def compose_group(self, g: DigestGroup, now: dt.datetime, day: str | None = None, *,
                      shared: dict | None = None) -> Digest:
        return self.compose(self.group_schedule(g), now, day, shared=shared, group=g)

    def _compose_groups(self, now: dt.datetime, listings, shared: dict) -> int:
        """Compose every group digest due at ``now``: one mail per member who wants it and one message per
        working chat destination, all composed before the transaction that queues them with the group's
        cursor (a second composer at the same time finds the cursor moved and queues nothing)."""
        queued = 0
        for g in self.groups.db.digest_groups():
            day = self.due(self.group_schedule(g), now, listings)
            if day is None:
                continue
            recipients = self.groups.db.digest_recipients(g.id)
            if not recipients and not any(d.status == "ok" for d in self.subs.group_destinations(g.id)):
                continue  # nobody to tell: composed on the first morning someone is
            digest = self.compose_group(g, now, day, shared=shared)
            mails = []
            for uid, address, joined in recipients:
                message_id, message = self.group_message(digest, uid, address, joined, now)
                mails.append((uid, address, message_id, message))
            chats = self.chats.prepare(digest)
            with self.store.transaction():
                if self.groups.db.move_digest_cursor(g.id, day, digest.listing_day):
                    queued += self.subs.enqueue_group(g.id, day, mails, stamp(now))
                    self.chats.enqueue(chats, day, now)
        return queued

    def group_message(self, digest: Digest, user_id: int, address: str, joined: str, now: dt.datetime
                      ) -> tuple[str, bytes]:
        """A member's mail of a group digest: the group's content, their own one-click opt-out link."""
        stop = self.groups.digest_stop_url(digest.group.id, user_id, joined)
        text, html = self.render(digest, stop_url=stop)
        message_id = mail.new_message_id(self.mail)
        return message_id, mail.build_message(
            self.mail, to=address, subject=digest.subject, text=text, html=html, message_id=message_id,
            date=now.timestamp(), unsubscribe_url=stop)

    def render(self, digest: Digest, *, stop_url: str = "") -> tuple[str, str]:
        sub = digest.subscriber
        if digest.group is not None:
            context = {"d": digest, "base_url": self.mail.base_url, "unsubscribe_url": stop_url,
                       "manage_url": f"{self.mail.base_url}/groups/{digest.group.id}#group-digest"}
        else:
            context = {"d": digest, "base_url": self.mail.base_url,
                       "unsubscribe_url": self.link("/unsubscribe", "unsubscribe", sub),
                       "manage_url": self.link("/subscription", "manage", sub)}
        return (TEMPLATES.get_template("digest.txt").render(context),
                TEMPLATES.get_template("digest.html").render(context))

    def preview(self, prefs: Preferences, now: dt.datetime | None = None) -> tuple[str, str]:
        """Today's digest (text, HTML) for these preferences, as a visitor who has not subscribed would get
        it (the web app's preview page). Nothing is recorded or queued, and the preview's own links are
        signed with a throwaway key: they are for nobody, and must not be signed with the real one."""
        prefs = prefs.validate()
        now = utc(now)
        sub = Subscriber(id=0, email="preview@paperradar.invalid", status="active", trending=prefs.trending,
                         max_papers=prefs.max_papers, hour=prefs.hour, tz=prefs.tz, nonce="preview",
                         created=stamp(now), confirmed=None, last_digest_day=None, last_listing_day=None,
                         bounces=0, searches=tuple(prefs.searches))
        throwaway = copy.copy(self)
        throwaway.mail = dataclasses.replace(self.mail, secret=secrets.token_bytes(32))
        return throwaway.render(throwaway.compose(sub, now))

    def preview_for(self, sub: Subscriber, now: dt.datetime | None = None) -> tuple[str, str]:
        """The digest (text, HTML) ``sub`` would get now, links and all; nothing is queued or recorded."""
        return self.render(self.compose(sub, utc(now)))

    def message(self, digest: Digest, now: dt.datetime) -> tuple[str, bytes]:
        text, html = self.render(digest)
        message_id = mail.new_message_id(self.mail)
        return message_id, mail.build_message(
            self.mail, to=digest.subscriber.email, subject=digest.subject, text=text, html=html,
            message_id=message_id, date=now.timestamp(),
            unsubscribe_url=self.link("/unsubscribe", "unsubscribe", digest.subscriber))

    def compose_due(self, now: dt.datetime | None = None) -> int:
        """Compose every digest due at ``now`` into the outbox, subscribers' and groups'; returns how many
        mails were queued (a group digest queues one per member who gets it)."""
        self.mail.require()
        now = utc(now)
        queued = 0
        shared: dict = {}
        listings = sync.listings_in(self.store, now)
        for sub in self.subs.active():
            day = self.due(sub, now, listings)
            if day is None or self.subs.has_mail(sub.id, "digest", day):
                continue
            digest = self.compose(sub, now, day, shared=shared)
            message_id, message = self.message(digest, now)
            chats = self.chats.prepare(digest)
            # the mail, the chat messages and the cursor: all or nothing (a second composer at the same time
            # inserts nothing, and queues no chat message either)
            with self.store.transaction():
                if self.subs.enqueue(sub.id, "digest", day, sub.email, message_id, message, stamp(now),
                                     digest_cursor=(day, digest.listing_day)):
                    queued += 1
                    self.chats.enqueue(chats, day, now)
        return queued + self._compose_groups(now, listings, shared)

    # -- sending ------------------------------------------------------------------------------------------
    @staticmethod
    def worker_id() -> str:
        return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"

    @staticmethod
    def _alive(worker: str | None) -> bool:
        try:
            host, pid, _ = (worker or "").split(":")
        except ValueError:
            return False
        if host != socket.gethostname():
            return True  # another machine's sender: trust its lease
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def send_due(self, now: dt.datetime | None = None, limit: int | None = None) -> dict[str, int]:
        """Deliver the queued mails that are due; returns counts of sent / retry / failed / bouncing."""
        self.mail.require()
        now = utc(now)
        counts = {"sent": 0, "retry": 0, "failed": 0, "bouncing": 0, "requeued": 0}
        counts["requeued"] = self.subs.requeue_abandoned(stamp(now), stamp(now - LEASE), self._alive)
        worker = self.worker_id()
        conn: mail.SmtpConnection | None = None
        try:
            while limit is None or counts["sent"] < limit:
                m = self.subs.claim(worker, stamp(now))
                if m is None:
                    break
                try:
                    if conn is None:
                        conn = mail.SmtpConnection(self.mail).__enter__()
                    conn.send(m.recipient, m.message)
                except mail.TransientMailError as e:
                    if conn is not None and conn.smtp is None:  # the session broke
                        conn = None
                    if m.attempts >= MAX_ATTEMPTS:
                        self.subs.mark_failed(m.id, f"gave up: {e}", bounce_limit=10**9)
                        counts["failed"] += 1
                    else:
                        delay = min(60 * 2 ** (m.attempts - 1), 6 * 3600)
                        self.subs.mark_retry(m.id, str(e), stamp(now + dt.timedelta(seconds=delay)))
                        counts["retry"] += 1
                    if conn is None:
                        break  # the server is unreachable: the rest waits for the next run
                    continue
                except mail.PermanentMailError as e:
                    counts["failed"] += 1
                    counts["bouncing"] += self.subs.mark_failed(m.id, str(e), bounce_limit=BOUNCE_LIMIT)
                    continue
                self.subs.mark_sent(m.id, stamp(utc()))
                counts["sent"] += 1
        finally:
            if conn is not None:
                conn.close()
        return counts

    def send_chats(self, now: dt.datetime | None = None) -> dict[str, int]:
        """Post the chat messages that are due (paperradar.notify); counts of chat_sent / chat_retry ..."""
        return self.chats.send_due(self.worker_id(), self._alive, now)

    def run(self, now: dt.datetime | None = None) -> dict[str, int]:
        """What `paperradar digest send` does: compose what is due, then deliver the outbox, mail and chat."""
        queued = self.compose_due(now)
        return {"composed": queued, **self.send_due(now), **self.send_chats(now)}
