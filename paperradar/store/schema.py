"""The schema of the paper store: numbered migrations, applied in order by Store.migrate()."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Callable
from email.utils import parseaddr
from pathlib import Path


def canonical_addresses(db: sqlite3.Connection, path: Path) -> None:
    """Migration 5: every stored address in its canonical form (paperradar.mail.canonical_address), and
    the rate-limit tables keyed by mailbox too (paperradar.mail.mailbox).

    Before, an address such as "(1)ada@x" or "x0:ada@x;" was stored as typed while smtplib sent its mail to
    "ada@x": one mailbox could hold several accounts (and votes) and subscriptions. A stored address
    becomes the canonical form of the mailbox its mail went to. Accounts of one mailbox merge into the
    oldest: tags (same-named ones joined), saved papers, "not interested" marks, sessions, and one vote
    per paper. Subscriptions of one mailbox keep one: active before pending, bouncing, unsubscribed, then
    the oldest; the others go with their queued mail. An address that has no canonical form (it could never
    have been mailed) is left as it is: nobody can sign in with it again, and `paperradar users delete`
    still finds it."""
    from ..mail import canonical_address, mailbox

    def canonical(raw: str) -> str | None:
        # parseaddr: the mailbox smtplib put in RCPT TO for it (smtplib.quoteaddr)
        return canonical_address(raw) or canonical_address(parseaddr(raw)[1])

    for table, at in (("signin_links", "created"), ("subscribe_requests", "at")):
        db.execute(f"ALTER TABLE {table} ADD COLUMN mailbox TEXT NOT NULL DEFAULT ''")
        rows = db.execute(f"SELECT rowid, email FROM {table}").fetchall()
        for rowid, raw in rows:
            address = canonical(raw)
            db.execute(f"UPDATE {table} SET email = ?, mailbox = ? WHERE rowid = ?",
                       (address or raw, mailbox(address) if address else raw.lower(), rowid))
        db.execute(f"CREATE INDEX {table}_mailbox ON {table}(mailbox, {at})")

    users: dict[str, list[int]] = {}
    for uid, raw in db.execute("SELECT id, email FROM users ORDER BY id").fetchall():
        if (address := canonical(raw)) is not None:
            users.setdefault(address, []).append(uid)
    for ids in users.values():
        for other in ids[1:]:
            _merge_user(db, ids[0], other)
    for address, ids in users.items():
        db.execute("UPDATE users SET email = ? WHERE id = ?", (address, ids[0]))

    rank = {"active": 0, "pending": 1, "bouncing": 2, "unsubscribed": 3}
    subscribers: dict[str, list[tuple[int, int]]] = {}
    for sid, raw, status in db.execute("SELECT id, email, status FROM subscribers").fetchall():
        if (address := canonical(raw)) is not None:
            subscribers.setdefault(address, []).append((rank.get(status, 9), sid))
    for address, ranked in subscribers.items():
        (_, keep), *others = sorted(ranked)
        db.executemany("DELETE FROM subscribers WHERE id = ?", [(sid,) for _, sid in others])
        db.execute("UPDATE subscribers SET email = ? WHERE id = ?", (address, keep))
        db.execute("UPDATE outbox SET recipient = ? WHERE subscriber_id = ?", (address, keep))


def _merge_user(db: sqlite3.Connection, keep: int, other: int) -> None:
    """Move everything of account ``other`` into account ``keep``, then delete ``other``."""
    for tag_id, name in db.execute("SELECT id, name FROM tags WHERE user_id = ?", (other,)).fetchall():
        same = db.execute("SELECT id FROM tags WHERE user_id = ? AND name = ?", (keep, name)).fetchone()
        if same:
            db.execute("INSERT OR IGNORE INTO library(tag_id, paper_id, user_id, added) "
                       "SELECT ?, paper_id, ?, added FROM library WHERE tag_id = ?", (same[0], keep, tag_id))
            db.execute("DELETE FROM tags WHERE id = ?", (tag_id,))
        else:
            db.execute("UPDATE tags SET user_id = ? WHERE id = ?", (keep, tag_id))
            db.execute("UPDATE library SET user_id = ? WHERE tag_id = ?", (keep, tag_id))
    db.execute("INSERT OR IGNORE INTO dismissed(user_id, paper_id, created) "
               "SELECT ?, paper_id, created FROM dismissed WHERE user_id = ?", (keep, other))
    db.execute("INSERT OR IGNORE INTO votes(paper_id, voter, created) "
               "SELECT paper_id, ?, created FROM votes WHERE voter = ?", (f"user:{keep}", f"user:{other}"))
    db.execute("DELETE FROM votes WHERE voter = ?", (f"user:{other}",))
    db.execute("UPDATE sessions SET user_id = ? WHERE user_id = ?", (keep, other))
    (created, seen), = db.execute("SELECT created, last_seen FROM users WHERE id = ?", (other,)).fetchall()
    db.execute("UPDATE users SET created = min(created, ?), last_seen = max(coalesce(last_seen, ''), ?), "
               "library_version = library_version + 1 WHERE id = ?", (created, seen or "", keep))
    db.execute("UPDATE users SET last_seen = NULL WHERE id = ? AND last_seen = ''", (keep,))
    db.execute("DELETE FROM user_models WHERE user_id = ?", (keep,))  # trained on the smaller library
    db.execute("DELETE FROM users WHERE id = ?", (other,))


def derive_existing(db: sqlite3.Connection, path: Path) -> None:
    """Fill the derived columns (links, venue) of the papers stored before they existed. The papers
    that got a link or a venue take a new change number, so the word index learns their facets (has:code,
    venue:); their embedded text is unchanged, so nothing is embedded again."""
    from ..merge import derive

    seq = int(db.execute("SELECT value FROM state WHERE key = 'seq'").fetchone()[0])
    last_id = 0
    while True:
        rows = db.execute("SELECT id, abstract, comment, journal_ref, code_url, project_url FROM papers "
                          "WHERE id > ? ORDER BY id LIMIT 5000", (last_id,)).fetchall()
        if not rows:
            break
        updates = []
        for pid, abstract, comment, journal_ref, code_url, project_url in rows:
            d = derive({"abstract": abstract, "comment": comment, "journal_ref": journal_ref,
                        "code_url": code_url, "project_url": project_url})
            faceted = d["links"] != "[]" or d["venue"] is not None
            if faceted:
                seq += 1
            updates.append((d["links"], d["venue"], seq if faceted else None, pid))
        db.executemany("UPDATE papers SET links = ?, venue = ?, seq = coalesce(?, seq) WHERE id = ?", updates)
        last_id = rows[-1][0]
    db.execute("UPDATE state SET value = ? WHERE key = 'seq'", (str(seq),))


def private_files(db: sqlite3.Connection, path: Path) -> None:
    """Migration 6: the database files of an existing installation readable by their owner only, as new
    ones are made (Store creates them 0600); older versions left them to the umask, usually 0644. Once:
    permissions the owner sets afterwards are theirs."""
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            st = file.stat()
            if st.st_uid == os.geteuid() and st.st_mode & 0o077:
                file.chmod(stat.S_IMODE(st.st_mode) & 0o700)
        except OSError:  # not there (no -shm yet), or not ours to change: nothing to do
            pass


# Numbered migrations; each runs once, in order, recorded in schema_migrations. Never edit a released one:
# append a new one. A step is SQL, or a function (connection, database path) for data migrations; either
# runs inside the migration's transaction.
MIGRATIONS: list[tuple[str, str | Callable[[sqlite3.Connection, Path], None]]] = [
    (
        "papers",
        """
        CREATE TABLE papers (
            id INTEGER PRIMARY KEY,          -- stable integer id, used by derived indexes
            key TEXT NOT NULL UNIQUE,        -- arXiv id without version, or doi:..., or title:...
            arxiv_id TEXT,
            version INTEGER,
            title TEXT NOT NULL,
            title_norm TEXT NOT NULL,
            abstract TEXT NOT NULL DEFAULT '',
            authors TEXT NOT NULL DEFAULT '[]',     -- JSON array, in order
            categories TEXT NOT NULL DEFAULT '[]',  -- JSON array, primary first
            primary_category TEXT,
            submitted TEXT,
            updated TEXT,
            announced TEXT,
            comment TEXT,
            journal_ref TEXT,
            doi TEXT,
            abs_url TEXT,
            pdf_url TEXT,
            sources TEXT NOT NULL DEFAULT '[]',     -- JSON array of contributing source names
            meta_rank INTEGER NOT NULL DEFAULT 0,   -- authority of the source that set the metadata
            upvotes INTEGER,
            first_seen TEXT NOT NULL,
            seq INTEGER NOT NULL                    -- change sequence: bumped on every real change
        );
        CREATE INDEX papers_seq ON papers(seq);
        CREATE INDEX papers_title_norm ON papers(title_norm);
        CREATE INDEX papers_doi ON papers(lower(doi));
        CREATE INDEX papers_announced ON papers(announced);
        -- every normalized title a paper has been seen with, so a saved page still finds its paper
        -- after arXiv renamed it in a new version
        CREATE TABLE titles (
            title_norm TEXT NOT NULL,
            paper_id INTEGER NOT NULL REFERENCES papers(id) ON DELETE CASCADE,
            PRIMARY KEY (title_norm, paper_id)
        ) WITHOUT ROWID;
        -- where a record without an arXiv id (key title:... or doi:...) from a source was merged, so
        -- re-ingesting it lands on the same paper even when several papers share its title
        CREATE TABLE record_links (
            source TEXT NOT NULL,
            record_key TEXT NOT NULL,
            paper_id INTEGER NOT NULL REFERENCES papers(id) ON DELETE CASCADE,
            PRIMARY KEY (source, record_key)
        ) WITHOUT ROWID;
        CREATE TABLE state (
            key TEXT PRIMARY KEY,   -- 'seq' (last change sequence), harvest checkpoints, index cursors
            value TEXT NOT NULL
        );
        INSERT INTO state(key, value) VALUES ('seq', '0');
        """,
    ),
    (
        "votes",
        """
        -- Local votes, one row per (paper, voter). Imported votes (Hugging Face upvotes) stay in
        -- papers.upvotes, the count the source reported. A paper's vote total is papers.upvotes plus its
        -- rows here. `voter` is 'user:<id>' for a local account (the accounts feature). Other prefixes are
        -- free for future voters (e.g. another instance).
        CREATE TABLE votes (
            paper_id INTEGER NOT NULL REFERENCES papers(id) ON DELETE CASCADE,
            voter TEXT NOT NULL,
            created TEXT NOT NULL,
            PRIMARY KEY (paper_id, voter)
        ) WITHOUT ROWID;
        CREATE INDEX votes_voter ON votes(voter);
        CREATE INDEX papers_submitted ON papers(submitted);
        """,
    ),
    (
        "subscriptions",
        """
        -- Digest subscribers. status: pending (until the address owner confirms), active, unsubscribed,
        -- bouncing (permanent delivery failures). Every mailed link is signed over the id and `nonce`.
        CREATE TABLE subscribers (
            id INTEGER PRIMARY KEY,
            email TEXT NOT NULL UNIQUE COLLATE NOCASE,
            status TEXT NOT NULL DEFAULT 'pending',
            trending INTEGER NOT NULL DEFAULT 1,
            max_papers INTEGER NOT NULL DEFAULT 10,
            hour INTEGER NOT NULL DEFAULT 8,
            tz TEXT NOT NULL DEFAULT 'UTC',
            nonce TEXT NOT NULL,
            created TEXT NOT NULL,
            confirmed TEXT,
            last_digest_day TEXT,       -- the subscriber's local day of the last digest composed
            last_listing_day TEXT,      -- the newest listing day that digest covered
            bounces INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE saved_searches (
            id INTEGER PRIMARY KEY,
            subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
            query TEXT NOT NULL
        );
        CREATE INDEX saved_searches_subscriber ON saved_searches(subscriber_id);
        -- Every mail, composed once and sent at most once. (subscriber, kind, day) is unique: a digest
        -- day cannot be composed twice, whatever runs at the same time.
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,                 -- confirm | digest
            day TEXT NOT NULL,
            recipient TEXT NOT NULL,
            message_id TEXT NOT NULL UNIQUE,
            message BLOB NOT NULL,              -- the whole RFC 5322 message
            status TEXT NOT NULL DEFAULT 'queued',  -- queued | sending | sent | failed
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt TEXT NOT NULL,
            claimed_by TEXT,
            claimed_at TEXT,
            last_error TEXT,
            created TEXT NOT NULL,
            sent_at TEXT,
            UNIQUE (subscriber_id, kind, day)
        );
        CREATE INDEX outbox_due ON outbox(status, next_attempt);
        -- subscribe requests, for the per-address and per-client rate limits
        CREATE TABLE subscribe_requests (
            email TEXT NOT NULL COLLATE NOCASE,
            client TEXT NOT NULL,
            at TEXT NOT NULL
        );
        CREATE INDEX subscribe_requests_email ON subscribe_requests(email, at);
        CREATE INDEX subscribe_requests_client ON subscribe_requests(client, at);
        """,
    ),
    (
        "accounts",
        """
        -- Accounts: passwordless (magic links by mail). A user's votes are votes rows with voter
        -- 'user:<id>', and their digest subscription is the subscribers row with the same address.
        CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            email TEXT NOT NULL UNIQUE COLLATE NOCASE,
            created TEXT NOT NULL,
            last_seen TEXT,
            library_version INTEGER NOT NULL DEFAULT 0  -- bumped by every save, unsave and feedback
        );
        -- Magic links. The mailed token is signed over (id, nonce, expiry), and `used` makes it single-use.
        -- The rows also count sign-in mails per address and per client, for the rate limits.
        CREATE TABLE signin_links (
            id INTEGER PRIMARY KEY,
            email TEXT NOT NULL COLLATE NOCASE,
            client TEXT NOT NULL,
            nonce TEXT NOT NULL,
            created TEXT NOT NULL,
            expires TEXT NOT NULL,
            used TEXT
        );
        CREATE INDEX signin_links_email ON signin_links(email, created);
        CREATE INDEX signin_links_client ON signin_links(client, created);
        -- Sessions: the cookie holds a random token, the table only its SHA-256.
        CREATE TABLE sessions (
            token_hash TEXT PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            created TEXT NOT NULL,
            expires TEXT NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX sessions_user ON sessions(user_id);
        -- The library: named tags holding papers, and a paper may be in several tags.
        CREATE TABLE tags (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            name TEXT NOT NULL COLLATE NOCASE,
            created TEXT NOT NULL,
            UNIQUE (user_id, name)
        );
        CREATE TABLE library (
            tag_id INTEGER NOT NULL REFERENCES tags(id) ON DELETE CASCADE,
            paper_id INTEGER NOT NULL REFERENCES papers(id) ON DELETE CASCADE,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            added TEXT NOT NULL,
            PRIMARY KEY (tag_id, paper_id)
        ) WITHOUT ROWID;
        CREATE INDEX library_user ON library(user_id, paper_id);
        -- "Not interested": negative examples for the user's model, and hidden from their feed.
        CREATE TABLE dismissed (
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            paper_id INTEGER NOT NULL REFERENCES papers(id) ON DELETE CASCADE,
            created TEXT NOT NULL,
            PRIMARY KEY (user_id, paper_id)
        ) WITHOUT ROWID;
        -- Trained recommendation models (derived data: dropped and retrained whenever the user's library
        -- changes or the vector index is rebuilt). tag_id 0 is the model of the whole library.
        CREATE TABLE user_models (
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            tag_id INTEGER NOT NULL,
            library_version INTEGER NOT NULL,
            index_stamp TEXT NOT NULL,
            model TEXT NOT NULL,    -- JSON: weights, bias, terms, counts
            trained TEXT NOT NULL,
            PRIMARY KEY (user_id, tag_id)
        ) WITHOUT ROWID;
        """,
    ),
    ("canonical addresses", canonical_addresses),
    ("private database file", private_files),
    (
        "sync runs",
        """
        -- One row per source per sync run (paperradar.sync): what the status page and the operator's
        -- alerts read. status: running | ok | failed | interrupted (a process killed mid-run).
        CREATE TABLE sync_runs (
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL,
            started TEXT NOT NULL,
            ended TEXT,
            status TEXT NOT NULL,
            added INTEGER NOT NULL DEFAULT 0,
            updated INTEGER NOT NULL DEFAULT 0,
            unchanged INTEGER NOT NULL DEFAULT 0,
            rejected INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            detail TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX sync_runs_source ON sync_runs(source, status, started);
        CREATE INDEX sync_runs_started ON sync_runs(started);
        -- Hugging Face's comment count of a paper (like upvotes, the highest count reported)
        ALTER TABLE papers ADD COLUMN hf_comments INTEGER;
        """,
    ),
    (
        "around the abstract",
        """
        -- What Hugging Face Papers gives beside the abstract (shown labelled as theirs)
        ALTER TABLE papers ADD COLUMN hf_summary TEXT;
        ALTER TABLE papers ADD COLUMN hf_keywords TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE papers ADD COLUMN organization TEXT;   -- JSON {"name", "fullname"}
        ALTER TABLE papers ADD COLUMN code_url TEXT;       -- the repository a source names
        ALTER TABLE papers ADD COLUMN project_url TEXT;
        ALTER TABLE papers ADD COLUMN github_stars INTEGER;
        -- Derived by paperradar.extract from the columns above and the abstract, comment and journal-ref
        -- (merge.derive), again whenever one of them changes
        -- links: JSON [{"url", "kind", "host", "source"}]
        ALTER TABLE papers ADD COLUMN links TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE papers ADD COLUMN venue TEXT;          -- JSON {"name", "year", "note", "text"}
        """,
    ),
    ("derive around the abstract", derive_existing),
    (
        "chat destinations",
        """
        -- Where a subscriber's digest also goes besides e-mail: a chat service or webhook, as an apprise URL
        -- (paperradar.notify). The URL holds the service's token: it is shown back only as `label`, its
        -- redacted form. status: ok | failing (failures in a row over a day: the owner is told).
        CREATE TABLE destinations (
            id INTEGER PRIMARY KEY,
            subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
            service TEXT NOT NULL,              -- slack | discord | matrix | teams | json
            url TEXT NOT NULL,
            label TEXT NOT NULL,
            created TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'ok',
            failures INTEGER NOT NULL DEFAULT 0,    -- failed attempts in a row
            failing_since TEXT,                     -- the first of them
            last_error TEXT,
            last_success TEXT,
            UNIQUE (subscriber_id, url)
        );
        -- Every chat message, composed once and posted at most once per (destination, day), like `outbox`.
        CREATE TABLE chat_outbox (
            id INTEGER PRIMARY KEY,
            destination_id INTEGER NOT NULL REFERENCES destinations(id) ON DELETE CASCADE,
            day TEXT NOT NULL,
            delivery_id TEXT NOT NULL UNIQUE,   -- sent along where the service allows (generic webhooks)
            message TEXT NOT NULL,              -- JSON {"title", "body", "format", "digest"}
            status TEXT NOT NULL DEFAULT 'queued',  -- queued | sending | sent | failed
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt TEXT NOT NULL,
            claimed_by TEXT,
            claimed_at TEXT,
            last_error TEXT,
            created TEXT NOT NULL,
            sent_at TEXT,
            UNIQUE (destination_id, day)
        );
        CREATE INDEX chat_outbox_due ON chat_outbox(status, next_attempt);
        """,
    ),
    (
        "groups, notes and comments",
        """
        -- Groups (paperradar.groups): a shared library, feed and digest. role: owner | member.
        CREATE TABLE groups (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            created TEXT NOT NULL,
            hour INTEGER NOT NULL DEFAULT 8,        -- the group's chat digest: its hour and zone
            tz TEXT NOT NULL DEFAULT 'UTC',
            library_version INTEGER NOT NULL DEFAULT 0  -- bumped by every change to the group library
        );
        CREATE TABLE group_members (
            group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            role TEXT NOT NULL DEFAULT 'member',
            joined TEXT NOT NULL,
            PRIMARY KEY (group_id, user_id)
        ) WITHOUT ROWID;
        CREATE INDEX group_members_user ON group_members(user_id);
        -- Invitations: the link is signed over (id, nonce, expiry), and `used` makes it single-use.
        CREATE TABLE group_invites (
            id INTEGER PRIMARY KEY,
            group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
            email TEXT,                         -- the address it was mailed to, NULL for a link to copy
            invited_by INTEGER REFERENCES users(id) ON DELETE SET NULL,
            nonce TEXT NOT NULL,
            created TEXT NOT NULL,
            expires TEXT NOT NULL,
            used TEXT
        );
        CREATE INDEX group_invites_group ON group_invites(group_id, created);
        CREATE TABLE group_tags (
            id INTEGER PRIMARY KEY,
            group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
            name TEXT NOT NULL COLLATE NOCASE,
            created TEXT NOT NULL,
            UNIQUE (group_id, name)
        );
        CREATE TABLE group_library (
            tag_id INTEGER NOT NULL REFERENCES group_tags(id) ON DELETE CASCADE,
            paper_id INTEGER NOT NULL REFERENCES papers(id) ON DELETE CASCADE,
            group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,  -- who saved it
            added TEXT NOT NULL,
            PRIMARY KEY (tag_id, paper_id)
        ) WITHOUT ROWID;
        CREATE INDEX group_library_group ON group_library(group_id, paper_id);
        CREATE INDEX group_library_user ON group_library(user_id);
        -- the group feed's trained model (derived: retrained when library_version or the index changes)
        CREATE TABLE group_models (
            group_id INTEGER PRIMARY KEY REFERENCES groups(id) ON DELETE CASCADE,
            library_version INTEGER NOT NULL,
            index_stamp TEXT NOT NULL,
            model TEXT NOT NULL,
            trained TEXT NOT NULL
        );
        -- Notes on papers, Markdown source (rendered and sanitised when shown), private (group_id NULL)
        -- or shared with a group.
        CREATE TABLE notes (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            paper_id INTEGER NOT NULL REFERENCES papers(id) ON DELETE CASCADE,
            group_id INTEGER REFERENCES groups(id) ON DELETE CASCADE,
            body TEXT NOT NULL,
            created TEXT NOT NULL,
            updated TEXT NOT NULL
        );
        CREATE INDEX notes_user ON notes(user_id, paper_id);
        CREATE INDEX notes_group ON notes(group_id, paper_id);
        -- Comments under a paper: in a group, or (group_id NULL) seen by every signed-in user when the
        -- operator allows public comments.
        CREATE TABLE comments (
            id INTEGER PRIMARY KEY,
            paper_id INTEGER NOT NULL REFERENCES papers(id) ON DELETE CASCADE,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            group_id INTEGER REFERENCES groups(id) ON DELETE CASCADE,
            body TEXT NOT NULL,
            created TEXT NOT NULL,
            edited TEXT
        );
        CREATE INDEX comments_paper ON comments(paper_id, created);
        CREATE INDEX comments_group ON comments(group_id, created);
        CREATE INDEX comments_user ON comments(user_id, created);
        -- a group's chat destination: the row's subscriber is the owner who added it (personal digests
        -- leave these out, the group digest posts to them)
        ALTER TABLE destinations ADD COLUMN group_id INTEGER REFERENCES groups(id) ON DELETE CASCADE;
        CREATE INDEX destinations_group ON destinations(group_id);
        """,
    ),
    (
        "group digests",
        """
        -- The group digest (paperradar.digest): mailed to each member who has not opted out, and posted to
        -- the group's chat destinations, composed once per (group, day) like a subscriber's.
        ALTER TABLE group_members ADD COLUMN digest INTEGER NOT NULL DEFAULT 1;  -- 0: the member opted out
        ALTER TABLE groups ADD COLUMN last_digest_day TEXT;    -- the group's local day of its last digest
        ALTER TABLE groups ADD COLUMN last_listing_day TEXT;   -- the newest listing day that digest covered
        CREATE TABLE group_searches (
            id INTEGER PRIMARY KEY,
            group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
            query TEXT NOT NULL
        );
        CREATE INDEX group_searches_group ON group_searches(group_id);
        -- The outbox again, with a group digest's mail: no subscriber, a group and the member it goes to.
        -- A member's mail is due only while they are in the group and have not opted out (see claim).
        CREATE TABLE outbox_new (
            id INTEGER PRIMARY KEY,
            subscriber_id INTEGER REFERENCES subscribers(id) ON DELETE CASCADE,
            group_id INTEGER REFERENCES groups(id) ON DELETE CASCADE,
            user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,                 -- confirm | digest | group
            day TEXT NOT NULL,
            recipient TEXT NOT NULL,
            message_id TEXT NOT NULL UNIQUE,
            message BLOB NOT NULL,
            status TEXT NOT NULL DEFAULT 'queued',
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt TEXT NOT NULL,
            claimed_by TEXT,
            claimed_at TEXT,
            last_error TEXT,
            created TEXT NOT NULL,
            sent_at TEXT,
            UNIQUE (subscriber_id, kind, day),
            CHECK ((subscriber_id IS NULL) != (group_id IS NULL))
        );
        INSERT INTO outbox_new(id, subscriber_id, kind, day, recipient, message_id, message, status, attempts,
                               next_attempt, claimed_by, claimed_at, last_error, created, sent_at)
            SELECT id, subscriber_id, kind, day, recipient, message_id, message, status, attempts,
                   next_attempt, claimed_by, claimed_at, last_error, created, sent_at FROM outbox;
        DROP TABLE outbox;
        ALTER TABLE outbox_new RENAME TO outbox;
        CREATE INDEX outbox_due ON outbox(status, next_attempt);
        CREATE UNIQUE INDEX outbox_group ON outbox(group_id, user_id, day) WHERE group_id IS NOT NULL;
        -- Destinations again: a group's has no subscriber but the group (and who added it). chat_outbox
        -- refers to destinations, so it is set aside and rebuilt around them (a DROP would cascade).
        CREATE TABLE chat_outbox_old AS SELECT * FROM chat_outbox;
        DROP TABLE chat_outbox;
        CREATE TABLE destinations_new (
            id INTEGER PRIMARY KEY,
            subscriber_id INTEGER REFERENCES subscribers(id) ON DELETE CASCADE,
            group_id INTEGER REFERENCES groups(id) ON DELETE CASCADE,
            added_by INTEGER REFERENCES users(id) ON DELETE SET NULL,
            service TEXT NOT NULL,
            url TEXT NOT NULL,
            label TEXT NOT NULL,
            created TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'ok',
            failures INTEGER NOT NULL DEFAULT 0,
            failing_since TEXT,
            last_error TEXT,
            last_success TEXT,
            UNIQUE (subscriber_id, url),
            CHECK ((subscriber_id IS NULL) != (group_id IS NULL))
        );
        INSERT INTO destinations_new(id, subscriber_id, group_id, service, url, label, created, status,
                                     failures, failing_since, last_error, last_success)
            SELECT id, CASE WHEN group_id IS NULL THEN subscriber_id END, group_id, service, url, label,
                   created, status, failures, failing_since, last_error, last_success FROM destinations;
        DROP TABLE destinations;
        ALTER TABLE destinations_new RENAME TO destinations;
        CREATE INDEX destinations_group ON destinations(group_id);
        CREATE UNIQUE INDEX destinations_group_url ON destinations(group_id, url) WHERE group_id IS NOT NULL;
        CREATE TABLE chat_outbox (
            id INTEGER PRIMARY KEY,
            destination_id INTEGER NOT NULL REFERENCES destinations(id) ON DELETE CASCADE,
            day TEXT NOT NULL,
            delivery_id TEXT NOT NULL UNIQUE,
            message TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'queued',
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt TEXT NOT NULL,
            claimed_by TEXT,
            claimed_at TEXT,
            last_error TEXT,
            created TEXT NOT NULL,
            sent_at TEXT,
            UNIQUE (destination_id, day)
        );
        INSERT INTO chat_outbox SELECT * FROM chat_outbox_old;
        DROP TABLE chat_outbox_old;
        CREATE INDEX chat_outbox_due ON chat_outbox(status, next_attempt)
        """,
    ),
]
