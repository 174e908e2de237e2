"""Groups, their members, invitations and shared library, notes and comments: the SQL behind
paperradar.groups and paperradar.notes.

Every read that takes a group id also takes the reader's user id and joins group_members, so a query
cannot hand a group's data to someone outside it: the core turns "nothing found" into NotFound (404), the
same answer for a group that does not exist and for one the reader is not in.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from . import Store


@dataclass(frozen=True)
class Group:
    id: int
    name: str
    created: str
    hour: int
    tz: str
    library_version: int
    role: str  # the reader's role: owner | member


@dataclass(frozen=True)
class Member:
    user_id: int
    email: str
    role: str
    joined: str
    digest: bool = True  # mailed the group digest (each member may opt out)


@dataclass(frozen=True)
class DigestGroup:
    """A group as the digest job sees it: its schedule, saved searches and digest cursor."""

    id: int
    name: str
    created: str
    hour: int
    tz: str
    last_digest_day: str | None
    last_listing_day: str | None
    searches: tuple[str, ...] = ()


@dataclass(frozen=True)
class Invite:
    id: int
    group_id: int
    email: str | None
    nonce: str
    expires: str
    used: str | None


@dataclass(frozen=True)
class Note:
    id: int
    user_id: int
    author: str
    paper_id: int
    group_id: int | None
    group_name: str | None
    body: str
    created: str
    updated: str


@dataclass(frozen=True)
class Comment:
    id: int
    paper_id: int
    user_id: int
    author: str
    group_id: int | None
    group_name: str | None
    body: str
    created: str
    edited: str | None


_GROUP = ("SELECT g.id, g.name, g.created, g.hour, g.tz, g.library_version, m.role FROM groups g "
          "JOIN group_members m ON m.group_id = g.id AND m.user_id = ?")
_NOTE = ("SELECT n.id, n.user_id, u.email, n.paper_id, n.group_id, g.name, n.body, n.created, n.updated "
         "FROM notes n JOIN users u ON u.id = n.user_id LEFT JOIN groups g ON g.id = n.group_id")
_COMMENT = ("SELECT c.id, c.paper_id, c.user_id, u.email, c.group_id, g.name, c.body, c.created, c.edited "
            "FROM comments c JOIN users u ON u.id = c.user_id LEFT JOIN groups g ON g.id = c.group_id")
# the groups a user is in, as a subquery over one parameter (the user id)
_MINE = "(SELECT group_id FROM group_members WHERE user_id = ?)"


class GroupStore:
    """See the module docstring. Writes go through the store's write connection, in its transactions."""

    def __init__(self, store: Store):
        self.store = store

    @property
    def db(self) -> sqlite3.Connection:
        return self.store.db

    @property
    def _r(self) -> sqlite3.Connection:
        return self.store._r

    # -- groups and members -----------------------------------------------------------------------------
    def create(self, user_id: int, name: str, now: str) -> int:
        with self.store.transaction():
            gid = self.db.execute("INSERT INTO groups(name, created) VALUES (?, ?)", (name, now)).lastrowid
            self.db.execute("INSERT INTO group_members(group_id, user_id, role, joined) VALUES (?, ?, "
                            "'owner', ?)",
                            (gid, user_id, now))
        return gid

    def group(self, user_id: int, group_id: int) -> Group | None:
        """The group, if ``user_id`` is a member of it (else None, whether it exists or not)."""
        row = self._r.execute(_GROUP + " WHERE g.id = ?", (user_id, group_id)).fetchone()
        return Group(*row) if row else None

    def groups_of(self, user_id: int) -> list[Group]:
        return [Group(*r) for r in self._r.execute(_GROUP + " ORDER BY g.name COLLATE NOCASE, g.id",
                                                   (user_id,))]

    def count_groups_of(self, user_id: int) -> int:
        return self._r.execute("SELECT count(*) FROM group_members WHERE user_id = ?",
                               (user_id,)).fetchone()[0]

    def members(self, group_id: int) -> list[Member]:
        return [Member(*r) for r in self._r.execute(
            "SELECT m.user_id, u.email, m.role, m.joined, m.digest = 1 FROM group_members m JOIN users u ON "
            "u.id = "
            "m.user_id "
            "WHERE m.group_id = ? ORDER BY m.role = 'member', u.email COLLATE NOCASE", (group_id,))]

    def role(self, group_id: int, user_id: int) -> str | None:
        row = self._r.execute("SELECT role FROM group_members WHERE group_id = ? AND user_id = ?",
                              (group_id, user_id)).fetchone()
        return row[0] if row else None

    def add_member(self, group_id: int, user_id: int, role: str, now: str) -> bool:
        with self.store.transaction():
            return self.db.execute("INSERT OR IGNORE INTO group_members(group_id, user_id, role, joined) "
                                   "VALUES (?, ?, ?, ?)", (group_id, user_id, role, now)).rowcount == 1

    def set_role(self, group_id: int, user_id: int, role: str) -> bool:
        with self.store.transaction():
            return self.db.execute("UPDATE group_members SET role = ? WHERE group_id = ? AND user_id = ?",
                                   (role, group_id, user_id)).rowcount == 1

    def remove_member(self, group_id: int, user_id: int) -> bool:
        """Take a member out; what they shared stays with the group (their notes shared with it become
        theirs alone again: a note shared with a group one has left is private)."""
        with self.store.transaction():
            self.db.execute("UPDATE notes SET group_id = NULL WHERE group_id = ? AND user_id = ?",
                            (group_id, user_id))
            return self.db.execute("DELETE FROM group_members WHERE group_id = ? AND user_id = ?",
                                   (group_id, user_id)).rowcount == 1

    def rename(self, group_id: int, name: str) -> None:
        with self.store.transaction():
            self.db.execute("UPDATE groups SET name = ? WHERE id = ?", (name, group_id))

    def delete(self, group_id: int) -> None:
        """The group and everything of it (members, invitations, tags, library, model, notes shared with
        it, comments in it, its chat destinations and their queue: by cascade)."""
        with self.store.transaction():
            self.db.execute("DELETE FROM groups WHERE id = ?", (group_id,))

    def owned_alone(self, user_id: int) -> list[int]:
        """The groups whose only owner is this user (deleting the account deletes them, or hands them on)."""
        return [gid for (gid,) in self._r.execute(
            "SELECT group_id FROM group_members WHERE user_id = ? AND role = 'owner' AND group_id NOT IN "
            "(SELECT group_id FROM group_members WHERE role = 'owner' AND user_id != ?)", (user_id, user_id))]

    def oldest_member(self, group_id: int, but: int) -> int | None:
        row = self._r.execute("SELECT user_id FROM group_members WHERE group_id = ? AND user_id != ? "
                              "ORDER BY joined, user_id LIMIT 1", (group_id, but)).fetchone()
        return row[0] if row else None

    # -- the group digest -------------------------------------------------------------------------------
    def digest_groups(self) -> list[DigestGroup]:
        """Every group with its schedule, searches and cursor (the digest job)."""
        searches: dict[int, list[str]] = {}
        for gid, q in self._r.execute("SELECT group_id, query FROM group_searches ORDER BY id"):
            searches.setdefault(gid, []).append(q)
        return [DigestGroup(*r, searches=tuple(searches.get(r[0], ()))) for r in self._r.execute(
            "SELECT id, name, created, hour, tz, last_digest_day, last_listing_day FROM groups ORDER BY id")]

    def digest_group(self, group_id: int) -> DigestGroup | None:
        return next((g for g in self.digest_groups() if g.id == group_id), None)

    def as_group(self, group_id: int) -> Group | None:
        """The group with no reader (the digest job's feed; no role)."""
        row = self._r.execute("SELECT id, name, created, hour, tz, library_version, '' FROM groups "
                              "WHERE id = ?", (group_id,)).fetchone()
        return Group(*row) if row else None

    def searches(self, group_id: int) -> list[str]:
        return [q for (q,) in self._r.execute("SELECT query FROM group_searches WHERE group_id = ? "
                                              "ORDER BY id", (group_id,))]

    def set_schedule(self, group_id: int, hour: int, tz: str, searches: list[str]) -> None:
        with self.store.transaction():
            self.db.execute("UPDATE groups SET hour = ?, tz = ? WHERE id = ?", (hour, tz, group_id))
            self.db.execute("DELETE FROM group_searches WHERE group_id = ?", (group_id,))
            self.db.executemany("INSERT INTO group_searches(group_id, query) VALUES (?, ?)",
                                [(group_id, q) for q in searches])

    def digest_recipients(self, group_id: int) -> list[tuple[int, str, str]]:
        """(user id, address, joined) of the members who get the group digest by mail."""
        return self._r.execute("SELECT m.user_id, u.email, m.joined FROM group_members m JOIN users u "
                               "ON u.id = m.user_id WHERE m.group_id = ? AND m.digest = 1 ORDER BY m.user_id",
                               (group_id,)).fetchall()

    def joined(self, group_id: int, user_id: int) -> str | None:
        row = self._r.execute("SELECT joined FROM group_members WHERE group_id = ? AND user_id = ?",
                              (group_id, user_id)).fetchone()
        return row[0] if row else None

    def set_digest(self, group_id: int, user_id: int, on: bool) -> bool:
        with self.store.transaction():
            return self.db.execute("UPDATE group_members SET digest = ? WHERE group_id = ? AND user_id = ?",
                                   (int(on), group_id, user_id)).rowcount == 1

    def move_digest_cursor(self, group_id: int, day: str, listing_day: str | None) -> bool:
        """Record the group's digest of ``day``; False if it has one already (another composer was first).
        Run it in the transaction that queues that digest's mails and chat messages."""
        with self.store.transaction():
            return self.db.execute(
                "UPDATE groups SET last_digest_day = ?, last_listing_day = coalesce(?, last_listing_day) "
                "WHERE id = ? AND (last_digest_day IS NULL OR last_digest_day < ?)",
                (day, listing_day, group_id, day)).rowcount == 1

    def new_comments_on_library(self, group_id: int, since: str, public: bool) -> int:
        """Comments since ``since`` on papers in the group library that the group reads: its own, and the
        public ones when the operator allows them (the group digest's "N new comments")."""
        where = "c.group_id = ?" + (" OR c.group_id IS NULL" if public else "")
        return self._r.execute(
            f"SELECT count(*) FROM comments c WHERE c.created >= ? AND ({where}) AND c.paper_id IN "
            "(SELECT paper_id FROM group_library WHERE group_id = ?)",
            (since, group_id, group_id)).fetchone()[0]

    def all_groups(self) -> list[tuple[int, str, int, str]]:
        """(id, name, hour, tz) of every group (the digest job)."""
        return self._r.execute("SELECT id, name, hour, tz FROM groups ORDER BY id").fetchall()

    # -- invitations ------------------------------------------------------------------------------------
    def add_invite(self, group_id: int, email: str | None, user_id: int, nonce: str, now: str,
                   expires: str) -> int:
        with self.store.transaction():
            # expired links are of no use to anyone: forgotten when the next one is made
            self.db.execute("DELETE FROM group_invites WHERE group_id = ? AND expires < ?", (group_id, now))
            return self.db.execute(
                "INSERT INTO group_invites(group_id, email, invited_by, nonce, created, expires) "
                "VALUES (?, ?, ?, ?, ?, ?)", (group_id, email, user_id, nonce, now, expires)).lastrowid

    def invites_since(self, group_id: int, since: str) -> int:
        return self._r.execute("SELECT count(*) FROM group_invites WHERE group_id = ? AND created >= ?",
                               (group_id, since)).fetchone()[0]

    def invite(self, invite_id: int) -> Invite | None:
        row = self._r.execute("SELECT id, group_id, email, nonce, expires, used FROM group_invites "
                              "WHERE id = ?",
                              (invite_id,)).fetchone()
        return Invite(*row) if row else None

    def group_name(self, group_id: int) -> str | None:
        """A group's name, for the page an invitation link opens (the link is the permission to see it)."""
        row = self._r.execute("SELECT name FROM groups WHERE id = ?", (group_id,)).fetchone()
        return row[0] if row else None

    def use_invite(self, invite_id: int, now: str) -> bool:
        """Mark an invitation used; False if it was used already (single use, even under concurrency)."""
        with self.store.transaction():
            return self.db.execute("UPDATE group_invites SET used = ? WHERE id = ? AND used IS NULL",
                                   (now, invite_id)).rowcount == 1

    def pending_invites(self, group_id: int, now: str) -> list[tuple[int, str | None, str]]:
        """(id, address, expires) of the group's unused, unexpired invitations."""
        return self._r.execute("SELECT id, email, expires FROM group_invites WHERE group_id = ? AND "
                               "used IS NULL "
                               "AND expires > ? ORDER BY created", (group_id, now)).fetchall()

    def revoke_invite(self, group_id: int, invite_id: int) -> bool:
        with self.store.transaction():
            return self.db.execute("DELETE FROM group_invites WHERE id = ? AND group_id = ?",
                                   (invite_id, group_id)).rowcount == 1

    # -- the group library ------------------------------------------------------------------------------
    def tags(self, group_id: int) -> list[tuple[int, str, int]]:
        """(id, name, papers) of the group's tags."""
        return self._r.execute(
            "SELECT t.id, t.name, count(l.paper_id) FROM group_tags t LEFT JOIN group_library l ON "
            "l.tag_id = t.id "
            "WHERE t.group_id = ? GROUP BY t.id ORDER BY t.name COLLATE NOCASE, t.id", (group_id,)).fetchall()

    def tag_id(self, group_id: int, name: str) -> int | None:
        row = self._r.execute("SELECT id FROM group_tags WHERE group_id = ? AND name = ?",
                              (group_id, name)).fetchone()
        return row[0] if row else None

    def save(self, group_id: int, user_id: int, tag: str, paper_id: int, now: str) -> bool:
        """Put a paper into a group tag (made if new); False if it was there already."""
        with self.store.transaction():
            self.db.execute("INSERT OR IGNORE INTO group_tags(group_id, name, created) VALUES (?, ?, ?)",
                            (group_id, tag, now))
            tid = self.tag_id(group_id, tag)
            cur = self.db.execute("INSERT OR IGNORE INTO group_library(tag_id, paper_id, group_id, "
                                  "user_id, added) "
                                  "VALUES (?, ?, ?, ?, ?)", (tid, paper_id, group_id, user_id, now))
            self.db.execute("UPDATE groups SET library_version = library_version + 1 WHERE id = ?",
                            (group_id,))
        return cur.rowcount == 1

    def unsave(self, group_id: int, paper_id: int, tag_id: int | None) -> int:
        with self.store.transaction():
            if tag_id is None:
                cur = self.db.execute("DELETE FROM group_library WHERE group_id = ? AND paper_id = ?",
                                      (group_id, paper_id))
            else:
                cur = self.db.execute("DELETE FROM group_library WHERE group_id = ? AND paper_id = ? "
                                      "AND tag_id = ?",
                                      (group_id, paper_id, tag_id))
            self.db.execute("UPDATE groups SET library_version = library_version + 1 WHERE id = ?",
                            (group_id,))
        return cur.rowcount

    def library(self, group_id: int, tag_id: int | None = None
                ) -> list[tuple[int, str, tuple[str, ...], tuple[str, ...]]]:
        """(paper id, first saved, its group tags, who saved it) of the group library or one tag, newest
        first."""
        where, args = "l.group_id = ?", [group_id]
        if tag_id is not None:
            where += " AND l.paper_id IN (SELECT paper_id FROM group_library WHERE tag_id = ?)"
            args.append(tag_id)
        rows = self._r.execute(
            "SELECT l.paper_id, min(l.added), json_group_array(t.name), json_group_array(u.email) "
            f"FROM group_library l JOIN group_tags t ON t.id = l.tag_id JOIN users u ON u.id = l.user_id "
            f"WHERE {where} GROUP BY l.paper_id ORDER BY min(l.added) DESC, l.paper_id DESC", args).fetchall()
        return [(pid, added, tuple(sorted(set(json.loads(tags)), key=str.lower)),
                 tuple(sorted(set(json.loads(who)), key=str.lower))) for pid, added, tags, who in rows]

    def saved_ids(self, group_id: int) -> list[int]:
        """The group library's paper ids, oldest save first."""
        return [pid for (pid,) in self._r.execute(
            "SELECT paper_id FROM group_library WHERE group_id = ? GROUP BY paper_id ORDER BY "
            "min(added), paper_id",
            (group_id,))]

    def savers(self, group_id: int, paper_ids: list[int]) -> dict[int, str]:
        """Who first saved each of these papers to the group (address)."""
        if not paper_ids:
            return {}
        ids = ",".join("?" * len(paper_ids))
        out: dict[int, str] = {}
        for pid, email in self._r.execute(
                f"SELECT l.paper_id, u.email FROM group_library l JOIN users u ON u.id = l.user_id "
                f"WHERE l.group_id = ? AND l.paper_id IN ({ids}) ORDER BY l.added DESC", (group_id,
                                                                                          *paper_ids)):
            out[pid] = email
        return out

    def added_since(self, group_id: int, since: str) -> list[tuple[int, str]]:
        """(paper id, who saved it) of papers saved to the group since ``since``, newest first."""
        return self._r.execute(
            "SELECT l.paper_id, min(u.email) FROM group_library l JOIN users u ON u.id = l.user_id "
            "WHERE l.group_id = ? AND l.added >= ? GROUP BY l.paper_id ORDER BY max(l.added) DESC",
            (group_id, since)).fetchall()

    def model(self, group_id: int) -> tuple[int, str, str] | None:
        return self._r.execute("SELECT library_version, index_stamp, model FROM group_models WHERE "
                               "group_id = ?",
                               (group_id,)).fetchone()

    def put_model(self, group_id: int, version: int, index_stamp: str, model: str, now: str) -> None:
        with self.store.transaction():
            self.db.execute(
                "INSERT INTO group_models(group_id, library_version, index_stamp, model, trained) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(group_id) DO UPDATE SET library_version = "
                "excluded.library_version, index_stamp = excluded.index_stamp, model = excluded.model, "
                "trained = excluded.trained WHERE excluded.library_version >= group_models.library_version",
                (group_id, version, index_stamp, model, now))

    # -- notes ------------------------------------------------------------------------------------------
    def add_note(self, user_id: int, paper_id: int, group_id: int | None, body: str, now: str) -> int:
        with self.store.transaction():
            return self.db.execute("INSERT INTO notes(user_id, paper_id, group_id, body, created, updated) "
                                   "VALUES (?, ?, ?, ?, ?, ?)", (user_id, paper_id, group_id, body, now,
                                                                 now)).lastrowid

    def update_note(self, user_id: int, note_id: int, group_id: int | None, body: str, now: str) -> bool:
        with self.store.transaction():
            return self.db.execute("UPDATE notes SET body = ?, group_id = ?, updated = ? WHERE id = ? "
                                   "AND user_id = ?",
                                   (body, group_id, now, note_id, user_id)).rowcount == 1

    def delete_note(self, user_id: int, note_id: int) -> bool:
        with self.store.transaction():
            return self.db.execute("DELETE FROM notes WHERE id = ? AND user_id = ?",
                                   (note_id, user_id)).rowcount == 1

    def notes_on(self, user_id: int, paper_id: int) -> list[Note]:
        """The notes on a paper this user may read: their own, and those shared with their groups."""
        return [Note(*r) for r in self._r.execute(
            _NOTE + f" WHERE n.paper_id = ? AND (n.user_id = ? OR n.group_id IN {_MINE}) ORDER BY "
                    "n.created, n.id",
            (paper_id, user_id, user_id))]

    def notes_for(self, user_id: int, paper_ids: list[int]) -> dict[int, list[Note]]:
        """Readable notes per paper (the library page)."""
        out: dict[int, list[Note]] = {}
        for i in range(0, len(paper_ids), 500):
            chunk = paper_ids[i:i + 500]
            for r in self._r.execute(
                    _NOTE + f" WHERE n.paper_id IN ({','.join('?' * len(chunk))}) AND (n.user_id = ? OR "
                    f"n.group_id IN {_MINE}) ORDER BY n.created, n.id", (*chunk, user_id, user_id)):
                note = Note(*r)
                out.setdefault(note.paper_id, []).append(note)
        return out

    # -- comments ---------------------------------------------------------------------------------------
    def add_comment(self, user_id: int, paper_id: int, group_id: int | None, body: str, now: str) -> int:
        with self.store.transaction():
            return self.db.execute("INSERT INTO comments(paper_id, user_id, group_id, body, created) "
                                   "VALUES (?, ?, ?, ?, ?)", (paper_id, user_id, group_id, body,
                                                              now)).lastrowid

    def comment(self, comment_id: int) -> Comment | None:
        row = self._r.execute(_COMMENT + " WHERE c.id = ?", (comment_id,)).fetchone()
        return Comment(*row) if row else None

    def comments_since(self, user_id: int, since: str) -> int:
        return self._r.execute("SELECT count(*) FROM comments WHERE user_id = ? AND created >= ?",
                               (user_id, since)).fetchone()[0]

    def edit_comment(self, comment_id: int, body: str, now: str) -> None:
        with self.store.transaction():
            self.db.execute("UPDATE comments SET body = ?, edited = ? WHERE id = ?", (body, now, comment_id))

    def delete_comment(self, comment_id: int) -> None:
        with self.store.transaction():
            self.db.execute("DELETE FROM comments WHERE id = ?", (comment_id,))

    def comments_on(self, user_id: int, paper_id: int, public: bool) -> list[Comment]:
        """The comments under a paper this user may read: those of their groups, and the public ones when
        the operator allows them."""
        where = f"c.group_id IN {_MINE}" + (" OR c.group_id IS NULL" if public else "")
        return [Comment(*r) for r in self._r.execute(
            _COMMENT + f" WHERE c.paper_id = ? AND ({where}) ORDER BY c.created, c.id", (paper_id, user_id))]

    def new_comments_on_saved(self, user_id: int, since: str, public: bool) -> int:
        """Comments by others since ``since``, which this user may read, on papers in their library or in
        their groups' libraries (the digest's "3 new comments on papers you saved")."""
        where = f"c.group_id IN {_MINE}" + (" OR c.group_id IS NULL" if public else "")
        return self._r.execute(
            f"SELECT count(*) FROM comments c WHERE c.created >= ? AND c.user_id != ? AND ({where}) AND "
            f"(c.paper_id IN (SELECT paper_id FROM library WHERE user_id = ?) OR c.paper_id IN "
            f"(SELECT paper_id FROM group_library WHERE group_id IN {_MINE}))",
            (since, user_id, user_id, user_id, user_id)).fetchone()[0]

    def group_comments_since(self, group_id: int, since: str) -> list[tuple[int, int]]:
        """(paper id, comments) of the comments made in a group since ``since``."""
        return self._r.execute("SELECT paper_id, count(*) FROM comments WHERE group_id = ? AND created >= ? "
                               "GROUP BY paper_id ORDER BY max(created) DESC", (group_id, since)).fetchall()
