"""Accounts, sessions, magic links, the personal library and cached recommendation models (the SQL behind
paperradar.accounts, paperradar.library and paperradar.recommend).

Every change to what a user saved or dismissed bumps ``users.library_version`` in the same transaction;
a cached model trained on an older version is stale, so a model is never trained twice on the same data
and never served after the data changed.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import NotFound

if TYPE_CHECKING:
    from . import Store


@dataclass(frozen=True)
class User:
    id: int
    email: str
    created: str
    last_seen: str | None
    library_version: int

    @property
    def voter(self) -> str:
        """How this user's votes are recorded in the votes table."""
        return f"user:{self.id}"


@dataclass(frozen=True)
class Tag:
    id: int
    name: str
    papers: int


@dataclass(frozen=True)
class Marks:
    """What a user did with one paper: shown on its card."""

    tags: tuple[str, ...] = ()
    voted: bool = False
    dismissed: bool = False


_USER = "SELECT id, email, created, last_seen, library_version FROM users"


class AccountStore:
    """See Store.accounts. Writes go through the store's write connection, in its transactions."""

    def __init__(self, store: Store):
        self.store = store

    @property
    def db(self) -> sqlite3.Connection:
        return self.store.db

    @property
    def _r(self) -> sqlite3.Connection:
        return self.store._r

    # -- users ----------------------------------------------------------------------------------------
    def user(self, user_id: int) -> User | None:
        row = self._r.execute(_USER + " WHERE id = ?", (user_id,)).fetchone()
        return User(*row) if row else None

    def user_by_email(self, email: str) -> User | None:
        row = self._r.execute(_USER + " WHERE email = ?", (email,)).fetchone()
        return User(*row) if row else None

    def ensure_user(self, email: str, now: str) -> User:
        """The account of this address, created on its first sign-in."""
        with self.store.transaction():
            self.db.execute("INSERT OR IGNORE INTO users(email, created) VALUES (?, ?)", (email, now))
            row = self.db.execute(_USER + " WHERE email = ?", (email,)).fetchone()
        return User(*row)

    def summary(self) -> list[tuple[str, str, str | None, int, int, int]]:
        """(email, created, last seen, saved papers, tags, dismissed) of every account, oldest first."""
        return self._r.execute(
            "SELECT u.email, u.created, u.last_seen, "
            "(SELECT count(DISTINCT paper_id) FROM library l WHERE l.user_id = u.id), "
            "(SELECT count(*) FROM tags t WHERE t.user_id = u.id), "
            "(SELECT count(*) FROM dismissed d WHERE d.user_id = u.id) FROM users u ORDER BY u.id").fetchall()

    def count_users(self) -> int:
        return self._r.execute("SELECT count(*) FROM users").fetchone()[0]

    def delete_user(self, user_id: int) -> None:
        """Remove the account and everything of it: sessions, tags, library, dismissals, models, group
        memberships, notes, comments and what it saved to groups (by cascade), its votes, its digest
        subscription (with saved searches and queued mail), its sign-in links, and the groups it alone owned
        and alone was in."""
        with self.store.transaction():
            row = self.db.execute("SELECT email FROM users WHERE id = ?", (user_id,)).fetchone()
            if row is None:
                return
            self.db.execute("DELETE FROM votes WHERE voter = ?", (f"user:{user_id}",))
            self.db.execute("DELETE FROM subscribers WHERE email = ?", row)
            self.db.execute("DELETE FROM subscribe_requests WHERE email = ?", row)
            self.db.execute("DELETE FROM signin_links WHERE email = ?", row)
            # a group of which this is the only owner: handed to its oldest other member, or deleted with
            # all its data when nobody else is in it (its members, notes and comments go by cascade)
            for (gid,) in self.db.execute(
                    "SELECT group_id FROM group_members WHERE user_id = ? AND role = 'owner' AND group_id "
                    "NOT IN (SELECT group_id FROM group_members WHERE role = 'owner' AND user_id != ?)",
                    (user_id, user_id)).fetchall():
                heir = self.db.execute("SELECT user_id FROM group_members WHERE group_id = ? AND "
                                       "user_id != ? ORDER BY joined, user_id LIMIT 1",
                                       (gid, user_id)).fetchone()
                if heir is None:
                    self.db.execute("DELETE FROM groups WHERE id = ?", (gid,))
                else:
                    self.db.execute("UPDATE group_members SET role = 'owner' WHERE group_id = ? AND "
                                    "user_id = ?", (gid, heir[0]))
            self.db.execute("DELETE FROM users WHERE id = ?", (user_id,))

    # -- magic links ----------------------------------------------------------------------------------
    def signin_counts(self, mailbox: str, client: str, since: str) -> tuple[int, int]:
        """Sign-in links made since ``since`` for this mailbox, and for this client (the rate limits; run it
        in the transaction that adds the next link, so that two requests cannot both pass)."""
        count = "SELECT count(*) FROM signin_links WHERE {} = ? AND created >= ?"
        return (self._r.execute(count.format("mailbox"), (mailbox, since)).fetchone()[0],
                self._r.execute(count.format("client"), (client, since)).fetchone()[0])

    def add_signin_link(self, email: str, mailbox: str, client: str, nonce: str, now: str, expires: str,
                        since: str) -> int:
        """Record a sign-in link; returns its id. Links made before ``since`` that have expired are
        forgotten."""
        with self.store.transaction():
            self.db.execute("DELETE FROM signin_links WHERE created < ? AND expires < ?", (since, now))
            return self.db.execute(
                "INSERT INTO signin_links(email, mailbox, client, nonce, created, expires) "
                "VALUES (?, ?, ?, ?, ?, ?)", (email, mailbox, client, nonce, now, expires)).lastrowid

    def signin_link(self, link_id: int) -> tuple[str, str, str, str | None] | None:
        """(email, nonce, expires, used) of a link, or None."""
        return self._r.execute("SELECT email, nonce, expires, used FROM signin_links WHERE id = ?",
                               (link_id,)).fetchone()

    def use_signin_link(self, link_id: int, now: str) -> bool:
        """Mark a link used; False if it was used already (single use, even under concurrency)."""
        with self.store.transaction():
            cur = self.db.execute("UPDATE signin_links SET used = ? WHERE id = ? AND used IS NULL",
                                  (now, link_id))
        return cur.rowcount == 1

    # -- sessions -------------------------------------------------------------------------------------
    def add_session(self, token_hash: str, user_id: int, now: str, expires: str) -> None:
        with self.store.transaction():
            self.db.execute("DELETE FROM sessions WHERE user_id = ? AND expires < ?", (user_id, now))
            self.db.execute("INSERT INTO sessions(token_hash, user_id, created, expires) VALUES (?, ?, ?, ?)",
                            (token_hash, user_id, now, expires))
            self.db.execute("UPDATE users SET last_seen = ? WHERE id = ?", (now, user_id))

    def session_user(self, token_hash: str, now: str) -> User | None:
        row = self._r.execute(
            "SELECT u.id, u.email, u.created, u.last_seen, u.library_version FROM sessions s "
            "JOIN users u ON u.id = s.user_id WHERE s.token_hash = ? AND s.expires > ?",
            (token_hash, now)).fetchone()
        return User(*row) if row else None

    def delete_session(self, token_hash: str) -> None:
        with self.store.transaction():
            self.db.execute("DELETE FROM sessions WHERE token_hash = ?", (token_hash,))

    # -- tags and the library -------------------------------------------------------------------------
    def tags(self, user_id: int) -> list[Tag]:
        return [Tag(*r) for r in self._r.execute(
            "SELECT t.id, t.name, count(l.paper_id) FROM tags t LEFT JOIN library l ON l.tag_id = t.id "
            "WHERE t.user_id = ? GROUP BY t.id ORDER BY t.name COLLATE NOCASE, t.id", (user_id,))]

    def tag(self, user_id: int, name: str) -> Tag:
        """A tag of this user by name (case-insensitive); NotFound otherwise."""
        row = self._r.execute(
            "SELECT t.id, t.name, (SELECT count(*) FROM library l WHERE l.tag_id = t.id) FROM tags t "
            "WHERE t.user_id = ? AND t.name = ?", (user_id, name)).fetchone()
        if row is None:
            raise NotFound(f"you have no tag {name!r}")
        return Tag(*row)

    def _bump(self, user_id: int) -> None:
        self.db.execute("UPDATE users SET library_version = library_version + 1 WHERE id = ?", (user_id,))

    def save(self, user_id: int, tag_name: str, paper_id: int, now: str) -> bool:
        """Put a paper into a tag (made if new); False if it was there already."""
        with self.store.transaction():
            if self.db.execute("SELECT 1 FROM papers WHERE id = ?", (paper_id,)).fetchone() is None:
                raise NotFound(f"no paper with id {paper_id}")
            self.db.execute("INSERT OR IGNORE INTO tags(user_id, name, created) VALUES (?, ?, ?)",
                            (user_id, tag_name, now))
            tag_id = self.db.execute("SELECT id FROM tags WHERE user_id = ? AND name = ?",
                                     (user_id, tag_name)).fetchone()[0]
            cur = self.db.execute("INSERT OR IGNORE INTO library(tag_id, paper_id, user_id, added) "
                                  "VALUES (?, ?, ?, ?)", (tag_id, paper_id, user_id, now))
            # saving a paper takes back a "not interested"
            self.db.execute("DELETE FROM dismissed WHERE user_id = ? AND paper_id = ?", (user_id, paper_id))
            self._bump(user_id)
        return cur.rowcount == 1

    def save_many(self, user_id: int, tag_name: str, paper_ids: list[int], now: str) -> int:
        """Put papers into a tag in one transaction (imports); returns how many were new there."""
        with self.store.transaction():
            self.db.execute("INSERT OR IGNORE INTO tags(user_id, name, created) VALUES (?, ?, ?)",
                            (user_id, tag_name, now))
            tag_id = self.db.execute("SELECT id FROM tags WHERE user_id = ? AND name = ?",
                                     (user_id, tag_name)).fetchone()[0]
            before = self.db.total_changes
            self.db.executemany("INSERT OR IGNORE INTO library(tag_id, paper_id, user_id, added) "
                                "VALUES (?, ?, ?, ?)", [(tag_id, pid, user_id, now) for pid in paper_ids])
            added = self.db.total_changes - before
            self._bump(user_id)
        return added

    def unsave(self, user_id: int, paper_id: int, tag_id: int | None = None) -> int:
        """Take a paper out of one tag, or out of every tag (``tag_id`` None); returns rows removed."""
        with self.store.transaction():
            if tag_id is None:
                cur = self.db.execute("DELETE FROM library WHERE user_id = ? AND paper_id = ?",
                                      (user_id, paper_id))
            else:
                cur = self.db.execute("DELETE FROM library WHERE user_id = ? AND paper_id = ? AND tag_id = ?",
                                      (user_id, paper_id, tag_id))
            self._bump(user_id)
        return cur.rowcount

    def rename_tag(self, user_id: int, tag_id: int, name: str) -> None:
        with self.store.transaction():
            try:
                cur = self.db.execute("UPDATE tags SET name = ? WHERE id = ? AND user_id = ?",
                                      (name, tag_id, user_id))
            except sqlite3.IntegrityError:
                raise NotFound(f"you have a tag named {name!r} already") from None
            if cur.rowcount == 0:
                raise NotFound("no such tag")

    def delete_tag(self, user_id: int, tag_id: int) -> None:
        with self.store.transaction():
            cur = self.db.execute("DELETE FROM tags WHERE id = ? AND user_id = ?", (tag_id, user_id))
            if cur.rowcount == 0:
                raise NotFound("no such tag")
            self._bump(user_id)

    def library(self, user_id: int, tag_id: int | None = None) -> list[tuple[int, str, tuple[str, ...]]]:
        """(paper id, when first saved, its tags) of the papers in the library or in one tag, newest first."""
        where, args = "l.user_id = ?", [user_id]
        if tag_id is not None:
            where += " AND l.paper_id IN (SELECT paper_id FROM library WHERE tag_id = ?)"
            args.append(tag_id)
        rows = self._r.execute(
            "SELECT l.paper_id, min(l.added), json_group_array(t.name) FROM library l "
            f"JOIN tags t ON t.id = l.tag_id WHERE {where} GROUP BY l.paper_id "
            "ORDER BY min(l.added) DESC, l.paper_id DESC", args).fetchall()
        return [(pid, added, tuple(sorted(json.loads(names), key=str.lower))) for pid, added, names in rows]

    def saved_ids(self, user_id: int, tag_id: int | None = None) -> list[int]:
        """Saved paper ids, oldest save first (the last one is the most recent)."""
        if tag_id is None:
            q, args = ("SELECT paper_id FROM library WHERE user_id = ? GROUP BY paper_id "
                       "ORDER BY min(added), paper_id", (user_id,))
        else:
            q, args = ("SELECT paper_id FROM library WHERE tag_id = ? AND user_id = ? "
                       "ORDER BY added, paper_id", (tag_id, user_id))
        return [pid for (pid,) in self._r.execute(q, args)]

    def dismiss(self, user_id: int, paper_id: int, now: str, on: bool = True) -> None:
        """Mark a paper "not interested" (or take that back)."""
        with self.store.transaction():
            if on:
                if self.db.execute("SELECT 1 FROM papers WHERE id = ?", (paper_id,)).fetchone() is None:
                    raise NotFound(f"no paper with id {paper_id}")
                self.db.execute("INSERT OR IGNORE INTO dismissed(user_id, paper_id, created) "
                                "VALUES (?, ?, ?)", (user_id, paper_id, now))
            else:
                self.db.execute("DELETE FROM dismissed WHERE user_id = ? AND paper_id = ?",
                                (user_id, paper_id))
            self._bump(user_id)

    def dismissed_ids(self, user_id: int) -> list[int]:
        return [pid for (pid,) in self._r.execute(
            "SELECT paper_id FROM dismissed WHERE user_id = ? ORDER BY created, paper_id", (user_id,))]

    def marks(self, user: User, paper_ids: list[int]) -> dict[int, Marks]:
        """What this user did with each of these papers (saved into which tags, voted, dismissed)."""
        if not paper_ids:
            return {}
        ids = ",".join("?" * len(paper_ids))
        tags: dict[int, list[str]] = {}
        for pid, name in self._r.execute(
                f"SELECT l.paper_id, t.name FROM library l JOIN tags t ON t.id = l.tag_id "
                f"WHERE l.user_id = ? AND l.paper_id IN ({ids}) ORDER BY t.name COLLATE NOCASE",
                (user.id, *paper_ids)):
            tags.setdefault(pid, []).append(name)
        voted = {pid for (pid,) in self._r.execute(
            f"SELECT paper_id FROM votes WHERE voter = ? AND paper_id IN ({ids})", (user.voter, *paper_ids))}
        dismissed = {pid for (pid,) in self._r.execute(
            f"SELECT paper_id FROM dismissed WHERE user_id = ? AND paper_id IN ({ids})",
            (user.id, *paper_ids))}
        return {pid: Marks(tuple(tags.get(pid, ())), pid in voted, pid in dismissed) for pid in paper_ids}

    def voted_ids(self, user: User) -> list[int]:
        return [pid for (pid,) in self._r.execute(
            "SELECT paper_id FROM votes WHERE voter = ? ORDER BY created", (user.voter,))]

    # -- cached models --------------------------------------------------------------------------------
    def model(self, user_id: int, tag_id: int) -> tuple[int, str, str] | None:
        """(library version, index stamp, model JSON) of the cached model, or None."""
        return self._r.execute("SELECT library_version, index_stamp, model FROM user_models "
                               "WHERE user_id = ? AND tag_id = ?", (user_id, tag_id)).fetchone()

    def put_model(self, user_id: int, tag_id: int, library_version: int, index_stamp: str, model: str,
                  now: str) -> None:
        with self.store.transaction():
            self.db.execute(
                "INSERT INTO user_models(user_id, tag_id, library_version, index_stamp, model, trained) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(user_id, tag_id) DO UPDATE SET "
                "library_version = excluded.library_version, index_stamp = excluded.index_stamp, "
                "model = excluded.model, trained = excluded.trained "
                # two feeds at once train outside any transaction: the one that read an older library
                # and finished last must not replace the newer model
                "WHERE excluded.library_version >= user_models.library_version",
                (user_id, tag_id, library_version, index_stamp, model, now))

    def users_by_emails(self, emails: list[str]) -> dict[str, User]:
        """Accounts of these addresses (lower-cased address -> user): the digest's signed-in subscribers."""
        out: dict[str, User] = {}
        for i in range(0, len(emails), 500):
            chunk = emails[i:i + 500]
            for row in self._r.execute(_USER + f" WHERE email IN ({','.join('?' * len(chunk))})", chunk):
                out[row[1].lower()] = User(*row)
        return out
