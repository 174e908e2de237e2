"""Status: whether the radar is current, as anyone may see it, and what the operator needs to fix it if not.

:func:`report` gathers, per feed, the last success and the last run, failures in a row, the lag behind now
and when the next run is due, the papers each day brought over the last :data:`DAYS` days; then arXiv's
announcement schedule, how far the indexes are behind the store, the digest outbox, the open alerts and
(for the operator) the error texts and the disk use of the data directory. ``/status``, ``/api/v1/status``
and `paperradar status` are thin shells over it; :func:`format_text` is the CLI's plain text.

Public reports (``detail=False``) leave out error texts, alert messages (they quote errors) and disk use.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
from pathlib import Path

from . import sync
from .clock import stamp, utc
from .config import Settings
from .store import Store, SyncRun

log = logging.getLogger("paperradar.status")

DAYS = 30  # days of "papers added per day"
LABELS = {"arxiv": "arXiv", "hf": "Hugging Face"}
KNOWN_FEEDS = ("arxiv", "hf")
OUTBOX_STATES = ("queued", "sending", "sent", "failed")
SLACK = dt.timedelta(minutes=30)  # a scheduled run may start this late and the radar still be current
ALERT_KINDS = {"failing": "sync runs failing", "no_listings": "no new arXiv listings since the announcement"}


def _time(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def ago(seconds: float | None) -> str:
    """A lag in words: "40 s", "20 min", "2 h", "3 days"."""
    if seconds is None:
        return "never"
    seconds = max(seconds, 0)
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


def _interval(settings: Settings) -> dt.timedelta:
    # sync_interval_min 0: cron runs `paperradar sync`, at a pace we cannot know; a day is the loosest
    return dt.timedelta(minutes=settings.sync_interval_min) if settings.sync_interval_min > 0 \
        else dt.timedelta(days=1)


def _is_current(name: str, last_ok: SyncRun | None, settings: Settings, now: dt.datetime) -> bool:
    """Whether a feed's last success is recent enough: for arXiv, it ran after the latest announcement had
    settled (allowing the settling time and one interval after it); for the others, within two intervals."""
    started = _time(last_ok.started) if last_ok else None
    if started is None:
        return False
    grace = _interval(settings) + SLACK
    if name == "arxiv":
        required = sync.last_announcement(now - sync.SETTLE - grace) + sync.SETTLE
        return started >= required
    return now - started <= 2 * _interval(settings) + SLACK


def _run_brief(run: SyncRun | None) -> dict | None:
    if run is None:
        return None
    return {"status": run.status, "started": run.started, "ended": run.ended, "added": run.added,
            "updated": run.updated, "unchanged": run.unchanged, "rejected": run.rejected}


def _feed(store: Store, settings: Settings, name: str, feed: sync.Feed | None, now: dt.datetime,
          since_day: dt.date, per_day: dict[str, int], detail: bool) -> dict:
    last_ok = store.sync.last(name, "ok")
    runs = store.sync.runs(name, limit=1)
    last_run = runs[0] if runs else None
    failures = store.sync.failures_since_success(name)
    failing = len(failures) >= max(settings.sync_alert_after, 1)
    started = _time(last_ok.started) if last_ok else None
    lag = (now - started).total_seconds() if started else None
    # a feed failing as often as it takes to alert the operator is not current, however fresh its last
    # success: it will miss the next listing
    current = feed is not None and not failing and _is_current(name, last_ok, settings, now)
    if feed is None:
        state = "not followed"
    elif failing:
        state = "failing"
    elif last_ok is None:
        state = "never synced"
    else:
        state = "current" if current else "behind"

    # when the next run is due, as `sync --due` decides it (a failing feed backs off first)
    pending = None
    if feed is not None:
        try:
            pending = feed.pending(store, now)
        except Exception as e:  # a damaged checkpoint must not take the status page down
            log.warning("status: %s: pending: %s", name, e)
            pending = "unknown"
        if failures:
            ended = _time(failures[-1].ended or failures[-1].started)
            retry = ended + sync.retry_after(len(failures))
            pending = f"failing ({len(failures)} runs in a row); next try at {stamp(retry)}" \
                if now < retry else None

    days = [(since_day + dt.timedelta(days=n)).isoformat() for n in range(DAYS)]
    out = {
        "name": name, "label": LABELS.get(name, name), "followed": feed is not None,
        "categories": (sync.followed_categories(store, settings) if name == "arxiv" and feed else None),
        "state": state, "current": current,
        "last_success": _run_brief(last_ok),
        "last_run": _run_brief(last_run),
        "consecutive_failures": len(failures),
        "failing_since": failures[0].started if failures else None,
        "lag_s": round(lag) if lag is not None else None, "lag": ago(lag),
        "due": feed is not None and pending is None, "pending": pending,
        "per_day": [{"day": d, "added": per_day.get(d, 0)} for d in days],
        "added_30d": sum(per_day.get(d, 0) for d in days),
    }
    if detail:
        out["last_error"] = last_run.error if last_run and last_run.status == "failed" else \
            (failures[-1].error if failures else None)
    return out


def _meta_seq(path: Path) -> int:
    """The last change an index holds, from its metadata file (0 when it has none yet)."""
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        return 0
    seq = meta.get("last_seq", 0) if isinstance(meta, dict) else None
    if type(seq) is not int:
        raise ValueError(f"{path} has no valid last_seq")
    return seq


def index_lag(store: Store, engine=None) -> dict:
    """Store changes each index has not seen: the engine's own count when one is given (what this process
    searches), else read from the index metadata files beside the store (no model is loaded)."""
    if engine is not None:
        return dict(engine.pending())
    from .lexical import META_FILE

    index = store.path.parent / "index"
    head = store.max_seq()
    return {"lexical": store.count_changed_since(_meta_seq(index / "lexical" / META_FILE)) if head else 0,
            "vectors": store.count_changed_since(_meta_seq(index / "vectors" / "meta.json")) if head else 0}


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:  # removed while we walked (an index swap)
                pass
    return total


def disk(store: Store) -> dict:
    """Bytes used by the database (with its WAL) and the index directory, and free on their file system."""
    db = store.path
    database = sum(_size(p) for p in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm"))
                   if p.exists())
    index = store.path.parent / "index"
    return {"database": database, "index": _size(index) if index.exists() else 0,
            "free": shutil.disk_usage(store.path.parent).free}


def _alerts(store: Store, detail: bool) -> list[dict]:
    try:
        from .alerts import open_alerts
    except ImportError:  # the alerts module is optional to this report
        return []
    out = []
    for a in open_alerts(store):
        if detail:
            out.append(dict(a))
        else:  # the message quotes the error: the public sees what is wrong, not the details
            out.append({"source": a["source"], "kind": a["kind"], "since": a["since"],
                        "message": f"{LABELS.get(a['source'], a['source'])}: "
                                   f"{ALERT_KINDS.get(a['kind'], a['kind'])}"})
    return out


def summary(feeds: list[dict]) -> str:
    """One sentence: "current: arXiv synced 2 h ago, Hugging Face 20 min ago" or what is wrong."""
    parts, synced = [], False
    followed = [f for f in feeds if f["followed"]]
    for f in followed:
        label = f["label"]
        if f["state"] == "failing":
            parts.append(f"{label} failing since {f['failing_since']}")
        elif f["state"] == "never synced":
            parts.append(f"{label} never synced")
        else:
            parts.append(f"{label} {'' if synced else 'synced '}{f['lag']} ago")
            synced = True
    head = "current: " if _all_current(feeds) else "not current: "
    return head + (", ".join(parts) or "no feed is followed")


def _all_current(feeds: list[dict]) -> bool:
    followed = [f for f in feeds if f["followed"]]
    return bool(followed) and all(f["current"] for f in followed)


def report(store: Store, settings: Settings, engine=None, now: dt.datetime | None = None,
           detail: bool = False) -> dict:
    """Everything the status page, the status API and `paperradar status` show; ``detail`` adds what is
    for the operator only (error texts, alert messages, disk use)."""
    now = utc(now)
    since_day = now.date() - dt.timedelta(days=DAYS - 1)
    per_day = store.sync.per_day(since_day.isoformat())
    followed = {f.name: f for f in sync.feeds(settings)}
    names = list(KNOWN_FEEDS) + [s for s in store.sync.sources() if s not in KNOWN_FEEDS]
    feeds = [_feed(store, settings, name, followed.get(name), now, since_day, per_day.get(name, {}), detail)
             for name in names]

    try:
        index = {**index_lag(store, engine), "error": None}
    except Exception as e:  # a damaged index is a status to show, not a failure of the status page
        log.warning("status: index: %s", e)
        hint = getattr(e, "hint", None)
        index = {"lexical": None, "vectors": None,
                 "error": (f"{e}" + (f" (hint: {hint})" if hint else "")) if detail
                 else "the search index cannot be read"}

    outbox = {s: 0 for s in OUTBOX_STATES}
    outbox.update(store.subscriptions.outbox_counts())
    out = {
        "now": stamp(now),
        "current": _all_current(feeds),
        "summary": summary(feeds),
        "detail": detail,
        "feeds": feeds,
        "arxiv": {"last_announcement": stamp(sync.last_announcement(now)),
                  "next_announcement": stamp(sync.next_announcement(now))},
        "index": index,
        "outbox": outbox,
        "alerts": _alerts(store, detail),
    }
    if detail:
        try:
            out["disk"] = disk(store)
        except OSError as e:
            log.warning("status: disk: %s", e)
            out["disk"] = {"error": str(e)}
    return out


def human_bytes(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover


def format_text(r: dict) -> str:
    """The report as plain text (what `paperradar status` prints)."""
    lines = [r["summary"], ""]
    for f in r["feeds"]:
        if not f["followed"] and f["last_run"] is None:
            continue
        head = f"{f['label']}: {f['state']}"
        if f["categories"]:
            head += f" ({', '.join(f['categories'])})"
        lines.append(head)
        ok = f["last_success"]
        if ok:
            lines.append(f"  last success  {ok['started']} ({f['lag']} ago): added {ok['added']}, "
                         f"updated {ok['updated']}, unchanged {ok['unchanged']}, rejected {ok['rejected']}")
        else:
            lines.append("  last success  never")
        if f["last_run"] and f["last_run"] != ok:
            lines.append(f"  last run      {f['last_run']['started']} {f['last_run']['status']}")
        if f["consecutive_failures"]:
            n = f["consecutive_failures"]
            lines.append(f"  failing       {n} run{'s' if n > 1 else ''} in a row since {f['failing_since']}")
        if f.get("last_error"):
            lines.append(f"  last error    {f['last_error']}")
        if f["followed"]:
            lines.append("  next run      " + ("due now" if f["due"] else f["pending"]))
        lines.append(f"  added         {f['added_30d']:,} papers in {DAYS} days")
    lines.append(f"arXiv announcements: last {r['arxiv']['last_announcement']}, "
                 f"next {r['arxiv']['next_announcement']}")
    index = r["index"]
    lines.append(f"index: {index['error']}" if index["error"] else
                 f"index: {index['lexical']:,} changes not in the word index, {index['vectors']:,} not in "
                 "the vector index")
    lines.append("digest outbox: " + ", ".join(f"{n:,} {s}" for s, n in r["outbox"].items()))
    for a in r["alerts"]:
        lines.append(f"alert since {a['since']}: {a['message']}")
    if "disk" in r:
        d = r["disk"]
        lines.append(f"disk: {d['error']}" if "error" in d else
                     f"disk: database {human_bytes(d['database'])}, index {human_bytes(d['index'])}, "
                     f"{human_bytes(d['free'])} free")
    return "\n".join(lines)
