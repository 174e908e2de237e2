"""The record of sync runs: one row per source per run (the SQL behind paperradar.sync and the status).

A run row is written when the run starts (status ``running``) and finished when it ends (``ok`` or
``failed``, with its counts and error). A process killed mid-run leaves ``running``; the next run of that
source marks it ``interrupted``. The counts are per run; the papers themselves went in with the ingest's
own transactions, and the harvest's resume point with them (the ``state`` table).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from . import Store

COUNTS = ("added", "updated", "unchanged", "rejected")


@dataclass(frozen=True)
class SyncRun:
    id: int
    source: str
    started: str
    ended: str | None
    status: str  # running | ok | failed | interrupted
    added: int
    updated: int
    unchanged: int
    rejected: int
    error: str | None
    detail: dict

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


_COLUMNS = "id, source, started, ended, status, added, updated, unchanged, rejected, error, detail"


def _run(row: tuple) -> SyncRun:
    return SyncRun(*row[:10], detail=json.loads(row[10] or "{}"))


class SyncStore:
    """Sync runs, in the paper store's database (see Store.sync)."""

    def __init__(self, store: Store):
        self.store = store

    @property
    def db(self) -> sqlite3.Connection:
        return self.store.db

    def start(self, source: str, started: str) -> int:
        """Record a run of ``source`` starting now; a run of it left ``running`` (a killed process) is
        marked ``interrupted``. Returns the new run's id."""
        with self.store.transaction():
            self.db.execute("UPDATE sync_runs SET status = 'interrupted', ended = coalesce(ended, ?) "
                            "WHERE source = ? AND status = 'running'", (started, source))
            return self.db.execute("INSERT INTO sync_runs(source, started, status) VALUES (?, ?, 'running')",
                                   (source, started)).lastrowid

    def progress(self, run_id: int, counts: dict) -> None:
        """The counts so far of a run under way (what a killed run is left showing)."""
        with self.store.transaction():
            self.db.execute("UPDATE sync_runs SET added = ?, updated = ?, unchanged = ?, rejected = ?, "
                            "detail = ? WHERE id = ?",
                            (*(counts.get(c, 0) for c in COUNTS), json.dumps(counts.get("detail", {})),
                             run_id))

    def finish(self, run_id: int, ended: str, status: str, counts: dict, error: str | None = None) -> None:
        with self.store.transaction():
            self.db.execute("UPDATE sync_runs SET ended = ?, status = ?, added = ?, updated = ?, "
                            "unchanged = ?, rejected = ?, error = ?, detail = ? WHERE id = ?",
                            (ended, status, *(counts.get(c, 0) for c in COUNTS), error,
                             json.dumps(counts.get("detail", {})), run_id))

    def runs(self, source: str | None = None, limit: int = 20) -> list[SyncRun]:
        """The latest runs (of one source), newest first."""
        where, args = ("WHERE source = ?", (source,)) if source else ("", ())
        rows = self.store._r.execute(f"SELECT {_COLUMNS} FROM sync_runs {where} "
                                     "ORDER BY started DESC, id DESC LIMIT ?", (*args, limit)).fetchall()
        return [_run(r) for r in rows]

    def last(self, source: str, status: str) -> SyncRun | None:
        row = self.store._r.execute(f"SELECT {_COLUMNS} FROM sync_runs WHERE source = ? AND status = ? "
                                    "ORDER BY started DESC, id DESC LIMIT 1", (source, status)).fetchone()
        return _run(row) if row else None

    def failures_since_success(self, source: str) -> list[SyncRun]:
        """The failed runs of ``source`` after its last successful one, oldest first."""
        rows = self.store._r.execute(
            f"SELECT {_COLUMNS} FROM sync_runs WHERE source = ? AND status = 'failed' AND id > "
            "coalesce((SELECT max(id) FROM sync_runs WHERE source = ? AND status = 'ok'), 0) ORDER BY id",
            (source, source)).fetchall()
        return [_run(r) for r in rows]

    def added_since(self, source: str, since: str) -> int:
        """Papers added by the runs of ``source`` that started at or after ``since``."""
        return self.store._r.execute("SELECT coalesce(sum(added), 0) FROM sync_runs WHERE source = ? AND "
                                     "started >= ?", (source, since)).fetchone()[0]

    def per_day(self, since: str) -> dict[str, dict[str, int]]:
        """{source: {day: papers added}} over the runs started on or after ``since`` (a day)."""
        out: dict[str, dict[str, int]] = {}
        for source, day, added in self.store._r.execute(
                "SELECT source, substr(started, 1, 10), sum(added) FROM sync_runs WHERE started >= ? "
                "GROUP BY source, substr(started, 1, 10)", (since,)):
            out.setdefault(source, {})[day] = added
        return out

    def sources(self) -> list[str]:
        return [r[0] for r in self.store._r.execute("SELECT DISTINCT source FROM sync_runs ORDER BY source")]
