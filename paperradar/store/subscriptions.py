"""Subscribers, saved searches and the outbox of digest mail (the SQL behind paperradar.digest)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from . import Store


# -- subscriptions and the outbox ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Subscriber:
    id: int
    email: str
    status: str
    trending: bool
    max_papers: int
    hour: int
    tz: str
    nonce: str
    created: str
    confirmed: str | None
    last_digest_day: str | None
    last_listing_day: str | None
    bounces: int
    searches: tuple[str, ...] = ()


@dataclass(frozen=True)
class OutboxMail:
    id: int
    subscriber_id: int
    kind: str
    day: str
    recipient: str
    message_id: str
    message: bytes
    attempts: int


@dataclass(frozen=True)
class Destination:
    """A chat service or webhook a subscriber's digest, or a group's (``group_id``), also goes to
    (paperradar.notify)."""

    id: int
    subscriber_id: int | None  # None for a group's destination
    service: str
    url: str  # the apprise URL, token included: never shown; ``label`` is its redacted form
    label: str
    created: str
    status: str  # ok | failing
    failures: int
    failing_since: str | None
    last_error: str | None
    last_success: str | None
    group_id: int | None = None


@dataclass(frozen=True)
class ChatMessage:
    id: int
    destination_id: int
    day: str
    delivery_id: str
    message: str  # JSON {"title", "body", "format", "digest"}
    attempts: int
    service: str
    url: str


_DEST_COLUMNS = ("id, subscriber_id, service, url, label, created, status, failures, failing_since, "
                 "last_error, last_success, group_id")
_SUB_COLUMNS = ("id, email, status, trending, max_papers, hour, tz, nonce, created, confirmed, "
                "last_digest_day, last_listing_day, bounces")


class SubscriptionStore:
    """Subscribers, saved searches and the outbox, in the paper store's database (see Store.subscriptions).

    Claiming outbox mail is one UPDATE ... RETURNING inside BEGIN IMMEDIATE, so two senders (threads or
    processes) never claim the same mail.
    """

    def __init__(self, store: Store):
        self.store = store

    @property
    def db(self) -> sqlite3.Connection:
        return self.store.db

    def _sub(self, row: tuple) -> Subscriber:
        searches = tuple(q for (q,) in self.store._r.execute(
            "SELECT query FROM saved_searches WHERE subscriber_id = ? ORDER BY id", (row[0],)))
        return Subscriber(*row[:3], bool(row[3]), *row[4:], searches=searches)

    def get(self, subscriber_id: int) -> Subscriber | None:
        row = self.store._r.execute(f"SELECT {_SUB_COLUMNS} FROM subscribers WHERE id = ?",
                                    (subscriber_id,)).fetchone()
        return self._sub(row) if row else None

    def by_email(self, email: str) -> Subscriber | None:
        row = self.store._r.execute(f"SELECT {_SUB_COLUMNS} FROM subscribers WHERE email = ?",
                                    (email,)).fetchone()
        return self._sub(row) if row else None

    def active(self) -> list[Subscriber]:
        rows = self.store._r.execute(f"SELECT {_SUB_COLUMNS} FROM subscribers WHERE status = 'active' "
                                     "ORDER BY id").fetchall()
        searches: dict[int, list[str]] = {}
        for sid, q in self.store._r.execute(
                "SELECT s.subscriber_id, s.query FROM saved_searches s JOIN subscribers b "
                "ON b.id = s.subscriber_id WHERE b.status = 'active' ORDER BY s.id"):
            searches.setdefault(sid, []).append(q)
        return [Subscriber(*r[:3], bool(r[3]), *r[4:], searches=tuple(searches.get(r[0], ())))
                for r in rows]

    def count_by_status(self) -> dict[str, int]:
        return dict(self.store._r.execute("SELECT status, count(*) FROM subscribers GROUP BY status"))

    def upsert(self, email: str, *, trending: bool, searches: list[str], max_papers: int, hour: int, tz: str,
               nonce: str, now: str) -> Subscriber:
        """Create a pending subscriber, or update the preferences of an existing one (its status is kept:
        a new request for a confirmed address changes nothing until confirmed again)."""
        with self.store.transaction():
            row = self.db.execute("SELECT id, status FROM subscribers WHERE email = ?", (email,)).fetchone()
            if row is None:
                sid = self.db.execute(
                    "INSERT INTO subscribers(email, trending, max_papers, hour, tz, nonce, created) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (email, int(trending), max_papers, hour, tz, nonce, now)).lastrowid
            else:
                sid = row[0]
                if row[1] in ("unsubscribed", "bouncing"):  # starts over: pending until confirmed again
                    self.db.execute("UPDATE subscribers SET status = 'pending', bounces = 0, nonce = ? "
                                    "WHERE id = ?", (nonce, sid))
                    # digests still queued from before carry links signed with the old nonce: drop them
                    self.db.execute("UPDATE outbox SET status = 'failed', last_error = 'superseded: the "
                                    "subscriber started over' WHERE subscriber_id = ? AND kind = 'digest' "
                                    "AND status = 'queued'", (sid,))
            if row is None or row[1] != "active":
                self._set_preferences(sid, trending, searches, max_papers, hour, tz)
        return self.get(sid)

    def set_preferences(self, sid: int, *, trending: bool, searches: list[str], max_papers: int, hour: int,
                        tz: str) -> None:
        with self.store.transaction():
            self._set_preferences(sid, trending, searches, max_papers, hour, tz)

    def _set_preferences(self, sid, trending, searches, max_papers, hour, tz) -> None:
        self.db.execute("UPDATE subscribers SET trending = ?, max_papers = ?, hour = ?, tz = ? WHERE id = ?",
                        (int(trending), max_papers, hour, tz, sid))
        self.db.execute("DELETE FROM saved_searches WHERE subscriber_id = ?", (sid,))
        self.db.executemany("INSERT INTO saved_searches(subscriber_id, query) VALUES (?, ?)",
                            [(sid, q) for q in searches])

    def set_status(self, sid: int, status: str, *, now: str | None = None, nonce: str | None = None) -> None:
        with self.store.transaction():
            self.db.execute("UPDATE subscribers SET status = ?, confirmed = coalesce(?, confirmed), "
                            "nonce = coalesce(?, nonce) WHERE id = ?",
                            (status, now if status == "active" else None, nonce, sid))

    def request_counts(self, mailbox: str, client: str, since: str) -> tuple[int, int]:
        """Subscribe requests since ``since`` for this mailbox, and for this client (the rate limits; run it
        in the transaction that records the next request, so that two requests cannot both pass)."""
        count = "SELECT count(*) FROM subscribe_requests WHERE {} = ? AND at >= ?"
        return (self.store._r.execute(count.format("mailbox"), (mailbox, since)).fetchone()[0],
                self.store._r.execute(count.format("client"), (client, since)).fetchone()[0])

    def record_request(self, email: str, mailbox: str, client: str, now: str, since: str) -> None:
        """Log a subscribe request; requests from before ``since`` are forgotten."""
        with self.store.transaction():
            self.db.execute("DELETE FROM subscribe_requests WHERE at < ?", (since,))
            self.db.execute("INSERT INTO subscribe_requests(email, mailbox, client, at) VALUES (?, ?, ?, ?)",
                            (email, mailbox, client, now))

    # -- outbox ----------------------------------------------------------------------------------------------
    def enqueue(self, sid: int, kind: str, day: str, recipient: str, message_id: str, message: bytes,
                now: str, *, digest_cursor: tuple[str, str | None] | None = None) -> bool:
        """Queue a composed mail; False if (subscriber, kind, day) is already queued. A digest also moves
        the subscriber's digest cursor (day, listing day) in the same transaction."""
        with self.store.transaction():
            cur = self.db.execute(
                "INSERT OR IGNORE INTO outbox(subscriber_id, kind, day, recipient, message_id, message, "
                "next_attempt, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (sid, kind, day, recipient, message_id, message, now, now))
            if cur.rowcount and digest_cursor:
                self.db.execute("UPDATE subscribers SET last_digest_day = ?, "
                                "last_listing_day = coalesce(?, last_listing_day) WHERE id = ?",
                                (*digest_cursor, sid))
        return cur.rowcount == 1

    def enqueue_group(self, group_id: int, day: str, mails: list[tuple[int, str, str, bytes]],
                      now: str) -> int:
        """Queue a group digest's mails, (member's user id, address, message id, message) each; run it in
        the transaction that moves the group's digest cursor. Returns how many were new."""
        with self.store.transaction():
            return sum(self.db.execute(
                "INSERT OR IGNORE INTO outbox(group_id, user_id, kind, day, recipient, message_id, message, "
                "next_attempt, created) VALUES (?, ?, 'group', ?, ?, ?, ?, ?, ?)",
                (group_id, uid, day, recipient, message_id, message, now, now)).rowcount
                for uid, recipient, message_id, message in mails)

    def group_mails(self, group_id: int) -> list[tuple]:
        """(id, user id, day, recipient, status, attempts, last_error) of a group's digest mails (tests)."""
        return self.store._r.execute(
            "SELECT id, user_id, day, recipient, status, attempts, last_error FROM outbox WHERE group_id = ? "
            "ORDER BY id", (group_id,)).fetchall()

    def has_mail(self, sid: int, kind: str, day: str) -> bool:
        return self.store._r.execute("SELECT 1 FROM outbox WHERE subscriber_id = ? AND kind = ? AND day = ?",
                                     (sid, kind, day)).fetchone() is not None

    def requeue_abandoned(self, now: str, lease_before: str, alive) -> int:
        """Put back mails whose sender died mid-send: its process is gone (``alive(claimed_by)`` False) or
        its lease ran out (claimed before ``lease_before``)."""
        with self.store.transaction():
            rows = self.db.execute("SELECT id, claimed_by, claimed_at FROM outbox WHERE status = 'sending'"
                                   ).fetchall()
            dead = [i for i, who, at in rows if at < lease_before or not alive(who)]
            self.db.executemany("UPDATE outbox SET status = 'queued', next_attempt = ?, claimed_by = NULL "
                                "WHERE id = ? AND status = 'sending'", [(now, i) for i in dead])
        return len(dead)

    def claim(self, worker: str, now: str) -> OutboxMail | None:
        """Take the next due mail for sending (status 'sending'), or None. A group digest's mail is due
        while its member is still in the group and still wants it: a member removed, or who opted out,
        after it was queued gets nothing."""
        with self.store.transaction():
            row = self.db.execute(
                "UPDATE outbox SET status = 'sending', claimed_by = ?, claimed_at = ?, "
                "attempts = attempts + 1 "
                "WHERE id = (SELECT o.id FROM outbox o LEFT JOIN subscribers s ON s.id = o.subscriber_id "
                "WHERE o.status = 'queued' AND o.next_attempt <= ? "
                "AND (s.status = 'active' OR o.kind = 'confirm' OR (o.group_id IS NOT NULL AND EXISTS "
                "(SELECT 1 FROM group_members m WHERE m.group_id = o.group_id AND m.user_id = o.user_id "
                "AND m.digest = 1))) "
                "ORDER BY o.next_attempt, o.id LIMIT 1) "
                "RETURNING id, subscriber_id, kind, day, recipient, message_id, message, attempts",
                (worker, now, now)).fetchone()
        return OutboxMail(*row) if row else None

    def mark_sent(self, mail_id: int, now: str) -> None:
        with self.store.transaction():
            self.db.execute("UPDATE outbox SET status = 'sent', sent_at = ?, last_error = NULL WHERE id = ?",
                            (now, mail_id))
            self.db.execute("UPDATE subscribers SET bounces = 0 WHERE id = "
                            "(SELECT subscriber_id FROM outbox WHERE id = ?)", (mail_id,))

    def mark_retry(self, mail_id: int, error: str, next_attempt: str) -> None:
        with self.store.transaction():
            self.db.execute("UPDATE outbox SET status = 'queued', claimed_by = NULL, last_error = ?, "
                            "next_attempt = ? WHERE id = ?", (error[:500], next_attempt, mail_id))

    def mark_failed(self, mail_id: int, error: str, *, bounce_limit: int) -> bool:
        """A permanent failure: the mail is given up; the subscriber is marked bouncing after
        ``bounce_limit`` of them in a row. Returns True if the subscriber is now bouncing."""
        with self.store.transaction():
            self.db.execute("UPDATE outbox SET status = 'failed', claimed_by = NULL, last_error = ? "
                            "WHERE id = ?", (error[:500], mail_id))
            sid = self.db.execute("SELECT subscriber_id FROM outbox WHERE id = ?", (mail_id,)).fetchone()[0]
            if sid is None:  # a group digest's mail: the member is no subscriber to mark
                return False
            bounces = self.db.execute("UPDATE subscribers SET bounces = bounces + 1 WHERE id = ? "
                                      "RETURNING bounces", (sid,)).fetchone()[0]
            if bounces >= bounce_limit:
                self.db.execute("UPDATE subscribers SET status = 'bouncing' WHERE id = ?", (sid,))
                return True
        return False

    def outbox_counts(self) -> dict[str, int]:
        return dict(self.store._r.execute("SELECT status, count(*) FROM outbox GROUP BY status"))

    def mails(self, sid: int | None = None) -> list[tuple]:
        """(id, subscriber, kind, day, status, attempts, last_error) of outbox mails (operators, tests)."""
        q = "SELECT id, subscriber_id, kind, day, status, attempts, last_error FROM outbox"
        args: tuple = ()
        if sid is not None:
            q += " WHERE subscriber_id = ?"
            args = (sid,)
        return self.store._r.execute(q + " ORDER BY id", args).fetchall()

    # -- chat destinations and their outbox (paperradar.notify) ---------------------------------------------
    def destinations(self, sid: int) -> list[Destination]:
        """A subscriber's own destinations (never a group's: those get the group digest only)."""
        return [Destination(*r) for r in self.store._r.execute(
            f"SELECT {_DEST_COLUMNS} FROM destinations WHERE subscriber_id = ? AND group_id IS NULL "
            "ORDER BY id", (sid,))]

    def group_destinations(self, group_id: int) -> list[Destination]:
        return [Destination(*r) for r in self.store._r.execute(
            f"SELECT {_DEST_COLUMNS} FROM destinations WHERE group_id = ? ORDER BY id", (group_id,))]

    def destination(self, did: int) -> Destination | None:
        row = self.store._r.execute(f"SELECT {_DEST_COLUMNS} FROM destinations WHERE id = ?",
                                    (did,)).fetchone()
        return Destination(*row) if row else None

    def add_destination(self, sid: int, service: str, url: str, label: str, now: str) -> Destination | None:
        """None if the subscriber has this URL already."""
        with self.store.transaction():
            cur = self.db.execute("INSERT OR IGNORE INTO destinations(subscriber_id, service, url, label, "
                                  "created) VALUES (?, ?, ?, ?, ?)", (sid, service, url, label, now))
            return self.destination(cur.lastrowid) if cur.rowcount else None

    def add_group_destination(self, group_id: int, user_id: int, service: str, url: str, label: str,
                              now: str) -> Destination | None:
        """None if the group has this URL already."""
        with self.store.transaction():
            cur = self.db.execute("INSERT OR IGNORE INTO destinations(group_id, added_by, service, url, "
                                  "label, created) VALUES (?, ?, ?, ?, ?, ?)",
                                  (group_id, user_id, service, url, label, now))
            return self.destination(cur.lastrowid) if cur.rowcount else None

    def remove_destination(self, sid: int, did: int) -> bool:
        with self.store.transaction():
            return self.db.execute("DELETE FROM destinations WHERE id = ? AND subscriber_id = ?",
                                   (did, sid)).rowcount == 1

    def remove_group_destination(self, group_id: int, did: int) -> bool:
        with self.store.transaction():
            return self.db.execute("DELETE FROM destinations WHERE id = ? AND group_id = ?",
                                   (did, group_id)).rowcount == 1

    def resume_group_destination(self, group_id: int, did: int) -> bool:
        with self.store.transaction():
            return self.db.execute("UPDATE destinations SET status = 'ok', failures = 0, "
                                   "failing_since = NULL WHERE id = ? AND group_id = ?",
                                   (did, group_id)).rowcount == 1

    def resume_destination(self, sid: int, did: int) -> bool:
        """A failing destination the owner says is fixed: it gets the next digest again."""
        with self.store.transaction():
            return self.db.execute("UPDATE destinations SET status = 'ok', failures = 0, "
                                   "failing_since = NULL WHERE id = ? AND subscriber_id = ?",
                                   (did, sid)).rowcount == 1

    def enqueue_chat(self, did: int, day: str, delivery_id: str, message: str, now: str) -> bool:
        """Queue a composed chat message; False if (destination, day) has one already. Run it in the
        transaction that queues the subscriber's mail and moves their digest cursor."""
        with self.store.transaction():
            cur = self.db.execute(
                "INSERT OR IGNORE INTO chat_outbox(destination_id, day, delivery_id, message, next_attempt, "
                "created) VALUES (?, ?, ?, ?, ?, ?)", (did, day, delivery_id, message, now, now))
        return cur.rowcount == 1

    def requeue_abandoned_chat(self, now: str, lease_before: str, alive) -> int:
        """As requeue_abandoned, for chat messages whose sender died mid-post."""
        with self.store.transaction():
            rows = self.db.execute("SELECT id, claimed_by, claimed_at FROM chat_outbox "
                                   "WHERE status = 'sending'").fetchall()
            dead = [i for i, who, at in rows if at < lease_before or not alive(who)]
            self.db.executemany("UPDATE chat_outbox SET status = 'queued', next_attempt = ?, "
                                "claimed_by = NULL WHERE id = ? AND status = 'sending'",
                                [(now, i) for i in dead])
        return len(dead)

    def claim_chat(self, worker: str, now: str) -> ChatMessage | None:
        """Take the next due chat message for posting (status 'sending'), or None: one UPDATE ... RETURNING,
        so two senders never take the same one."""
        with self.store.transaction():
            row = self.db.execute(
                "UPDATE chat_outbox SET status = 'sending', claimed_by = ?, claimed_at = ?, "
                "attempts = attempts + 1 "
                "WHERE id = (SELECT o.id FROM chat_outbox o JOIN destinations d ON d.id = o.destination_id "
                "LEFT JOIN subscribers s ON s.id = d.subscriber_id "
                "WHERE o.status = 'queued' AND o.next_attempt <= ? "
                "AND (s.status = 'active' OR d.group_id IS NOT NULL) "
                "AND d.status = 'ok' ORDER BY o.next_attempt, o.id LIMIT 1) "
                "RETURNING id, destination_id, day, delivery_id, message, attempts", (worker, now, now)
            ).fetchone()
            if row is None:
                return None
            service, url = self.db.execute("SELECT service, url FROM destinations WHERE id = ?",
                                           (row[1],)).fetchone()
        return ChatMessage(*row, service=service, url=url)

    def mark_chat_sent(self, mid: int, now: str) -> None:
        with self.store.transaction():
            self.db.execute("UPDATE chat_outbox SET status = 'sent', sent_at = ?, claimed_by = NULL, "
                            "last_error = NULL WHERE id = ?", (now, mid))
            self.db.execute("UPDATE destinations SET status = 'ok', failures = 0, failing_since = NULL, "
                            "last_success = ? "
                            "WHERE id = (SELECT destination_id FROM chat_outbox WHERE id = ?)",
                            (now, mid))

    def mark_chat_failure(self, mid: int, error: str, now: str, *, next_attempt: str | None, fail_limit: int,
                          failing_after: str) -> bool:
        """A failed post: queued again for ``next_attempt``, or given up (None). Either counts against the
        destination, which is marked failing — its queued messages given up, no new ones composed — after
        ``fail_limit`` failures in a row of which the first was before ``failing_after``. Returns True if
        it is now failing."""
        error = error[:500]
        with self.store.transaction():
            if next_attempt is None:
                self.db.execute("UPDATE chat_outbox SET status = 'failed', claimed_by = NULL, last_error = ? "
                                "WHERE id = ?", (error, mid))
            else:
                self.db.execute("UPDATE chat_outbox SET status = 'queued', claimed_by = NULL, "
                                "last_error = ?, next_attempt = ? WHERE id = ?", (error, next_attempt, mid))
            did, failures, since = self.db.execute(
                "UPDATE destinations SET failures = failures + 1, "
                "failing_since = coalesce(failing_since, ?), last_error = ? "
                "WHERE id = (SELECT destination_id FROM chat_outbox WHERE id = ?) "
                "RETURNING id, failures, failing_since", (now, error, mid)).fetchone()
            if failures >= fail_limit and since <= failing_after:
                self.db.execute("UPDATE destinations SET status = 'failing' WHERE id = ?", (did,))
                self.db.execute("UPDATE chat_outbox SET status = 'failed', last_error = 'given up: the "
                                "destination is failing' WHERE destination_id = ? AND status = 'queued'",
                                (did,))
                return True
        return False

    def chat_counts(self) -> dict[str, int]:
        return dict(self.store._r.execute("SELECT status, count(*) FROM chat_outbox GROUP BY status"))

    def destination_counts(self) -> dict[str, int]:
        return dict(self.store._r.execute("SELECT status, count(*) FROM destinations GROUP BY status"))

    def chat_messages(self, did: int | None = None) -> list[tuple]:
        """(id, destination, day, status, attempts, last_error) of chat messages (operators, tests)."""
        q = "SELECT id, destination_id, day, status, attempts, last_error FROM chat_outbox"
        args: tuple = ()
        if did is not None:
            q += " WHERE destination_id = ?"
            args = (did,)
        return self.store._r.execute(q + " ORDER BY id", args).fetchall()
