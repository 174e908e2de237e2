"""Keeping the radar current: every followed feed brought up to date, each run recorded.

A *feed* is a live source followed over time: arXiv (OAI-PMH, one incremental harvest per category set,
resumed from the saved checkpoint) and Hugging Face daily papers (every day's listing since the last run, and
the votes of the last days again). :func:`sync` runs the feeds that are due (or all of them), records each
run in ``sync_runs`` (start, end, counts, error) and never lets one feed's failure stop another.
:func:`cycle` is the order of a day: sync, then index what changed, then the digests that are due, then the
operator's alerts; `paperradar sync` and the schedule of `paperradar serve` are thin triggers over it.

When is a feed due? arXiv announces new listings Sunday to Thursday at 20:00 US Eastern; its feed is due
after each announcement and until a run at least :data:`SETTLE` after it succeeded, and not in between (no
requests on Friday night or Saturday). Hugging Face is due every ``sync_interval_min``. A failing feed waits
longer after each failure (:func:`retry_after`) instead of hammering a server that is down; the next run
resumes where the last success ended, so no day is skipped and no paper is counted twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from .clock import stamp, utc
from .config import Settings
from .errors import InputUnusable, PaperradarError
from .http import PoliteClient
from .ingest import IngestReport, ingest
from .models import Rejected
from .sources.base import Source
from .store import Store

log = logging.getLogger("paperradar.sync")

EASTERN = ZoneInfo("America/New_York")
ANNOUNCE_AT = dt.time(20, 0)  # arXiv's announcement, US Eastern
ANNOUNCE_WEEKDAYS = {6, 0, 1, 2, 3}  # Sunday to Thursday (Monday is 0)
SETTLE = dt.timedelta(hours=3)  # after an announcement, when the OAI interface surely has the new listing
DEFAULT_CATEGORIES = ("cs.AI", "cs.CL", "cs.CV", "cs.LG", "stat.ML")
RETRY_FIRST = dt.timedelta(minutes=10)
RETRY_MAX = dt.timedelta(hours=6)
MAX_FOLLOWED = 12  # categories taken from the store when none are configured
MIN_SHARE = 0.02  # ... each the primary category of at least this share of its papers


# -- arXiv's announcement schedule ---------------------------------------------------------------------------
def last_announcement(now: dt.datetime | None = None) -> dt.datetime:
    """The latest arXiv announcement at or before ``now`` (UTC)."""
    local = utc(now).astimezone(EASTERN)
    for back in range(8):
        day = local.date() - dt.timedelta(days=back)
        moment = dt.datetime.combine(day, ANNOUNCE_AT, tzinfo=EASTERN)
        if day.weekday() in ANNOUNCE_WEEKDAYS and moment <= local:
            return moment.astimezone(dt.UTC)
    raise AssertionError("a week always has an announcement")


def next_announcement(now: dt.datetime | None = None) -> dt.datetime:
    """The first arXiv announcement after ``now`` (UTC)."""
    local = utc(now).astimezone(EASTERN)
    for ahead in range(8):
        day = local.date() + dt.timedelta(days=ahead)
        moment = dt.datetime.combine(day, ANNOUNCE_AT, tzinfo=EASTERN)
        if day.weekday() in ANNOUNCE_WEEKDAYS and moment > local:
            return moment.astimezone(dt.UTC)
    raise AssertionError("a week always has an announcement")


def retry_after(failures: int) -> dt.timedelta:
    """How long a feed that failed ``failures`` runs in a row waits before the next try."""
    return min(RETRY_FIRST * 2 ** max(failures - 1, 0), RETRY_MAX)


def oai_set(category: str) -> str:
    """The OAI-PMH set of an arXiv category: cs.CL -> cs:cs:CL, hep-th -> physics:hep-th; a set (cs,
    physics:hep-th, cs:cs:CL) is itself."""
    category = category.strip()
    if ":" in category or "." not in category and category in ("cs", "math", "stat", "q-bio", "q-fin",
                                                               "eess", "econ", "physics", "nlin"):
        return category
    archive, _, sub = category.partition(".")
    if not sub:
        return f"physics:{archive}"  # the physics archives (hep-th, quant-ph, astro-ph...) without a dot
    if archive in ("astro-ph", "cond-mat", "physics", "nlin"):
        return f"physics:{archive}:{sub}" if archive != "physics" else f"physics:physics:{sub}"
    return f"{archive}:{archive}:{sub}"


# -- one run's record --------------------------------------------------------------------------------------
@dataclass
class FeedRun:
    """What one run of one feed did (the row it leaves in sync_runs)."""

    feed: str
    status: str = "skipped"  # ok | failed | skipped (not due: no row is written)
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    error: str | None = None
    note: str = ""  # why it was skipped, or what it covered
    detail: dict = field(default_factory=dict)
    rejects: list[str] = field(default_factory=list)  # the first few rejected records, with their position

    def counts(self) -> dict:
        return {"added": self.added, "updated": self.updated, "unchanged": self.unchanged,
                "rejected": self.rejected, "detail": self.detail}

    def add(self, report: IngestReport) -> None:
        self.added += report.added
        self.updated += report.updated
        self.unchanged += report.unchanged
        self.rejected += report.rejected

    def summary(self) -> str:
        if self.status == "skipped":
            return f"{self.feed}: not due ({self.note})"
        counts = (f"added {self.added}, updated {self.updated}, unchanged {self.unchanged}, "
                  f"rejected {self.rejected}")
        if self.status == "failed":
            return f"{self.feed}: FAILED after {counts}: {self.error}"
        return f"{self.feed}: {counts}" + (f" ({self.note})" if self.note else "")

    def to_dict(self) -> dict:
        return {"feed": self.feed, "status": self.status, **self.counts(), "error": self.error,
                "note": self.note}


@dataclass
class SyncReport:
    runs: list[FeedRun] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return sum(r.added + r.updated for r in self.runs)

    @property
    def failed(self) -> list[FeedRun]:
        return [r for r in self.runs if r.status == "failed"]

    def to_dict(self) -> dict:
        return {"runs": [r.to_dict() for r in self.runs], "changed": self.changed}


# -- feeds ------------------------------------------------------------------------------------------------
class Feed(ABC):
    """A live source followed over time. ``pending`` says why it is not due (None: due); ``run`` brings it up
    to date, adding to ``run``'s counts as it goes, and raises a PaperradarError when the source fails."""

    name: str = ""

    def __init__(self, settings: Settings, client_factory: Callable[[float], PoliteClient] | None = None):
        self.settings = settings
        self.client_factory = client_factory or (lambda interval: PoliteClient(min_interval=interval))
        self.on_progress: Callable[[str, int, int | None, FeedRun], None] | None = None

    @abstractmethod
    def pending(self, store: Store, now: dt.datetime) -> str | None:
        """None when a run is due now, else why not (and when it will be)."""

    @abstractmethod
    def run(self, store: Store, now: dt.datetime, run: FeedRun, since: str | None,
            checkpoint: Callable[[], None]) -> None:
        """Bring the feed up to date (from ``since``, a day, for a backfill)."""

    def _ingest(self, store: Store, source: Source, run: FeedRun, checkpoint: Callable[[], None],
                label: str = "") -> None:
        """Drain ``source`` into the store, adding to ``run`` after every committed batch."""
        before = IngestReport()

        def on_reject(r: Rejected) -> None:
            if len(run.rejects) < 20:
                run.rejects.append(str(r))
            log.info("%s: rejected %s", self.name, r)

        def on_progress(done, total, report: IngestReport) -> None:
            delta = IngestReport(report.added - before.added, report.updated - before.updated,
                                 report.unchanged - before.unchanged, report.rejected - before.rejected)
            run.add(delta)
            before.added, before.updated = report.added, report.updated
            before.unchanged, before.rejected = report.unchanged, report.rejected
            checkpoint()
            if self.on_progress:
                self.on_progress(label or self.name, done, total, run)

        report = ingest(store, source, batch_size=self.settings.batch_size, on_reject=on_reject,
                        on_progress=on_progress)
        run.add(IngestReport(report.added - before.added, report.updated - before.updated,
                             report.unchanged - before.unchanged, report.rejected - before.rejected))

    def _interval_pending(self, store: Store, now: dt.datetime) -> str | None:
        last = store.sync.last(self.name, "ok")
        if last is None:
            return None
        every = dt.timedelta(minutes=max(self.settings.sync_interval_min, 1))
        due = dt.datetime.fromisoformat(last.started.replace("Z", "+00:00")) + every
        return None if now >= due else f"synced at {last.started}; next at {stamp(due)}"


class ArxivFeed(Feed):
    """arXiv's new and updated papers of the followed categories, by incremental OAI-PMH harvests (one per
    category set, each resumed from its own checkpoint: `paperradar ingest oai --set` shares it)."""

    name = "arxiv"

    def sets(self, store: Store, remember: bool = False) -> list[str]:
        return [oai_set(c) for c in followed_categories(store, self.settings, remember)]

    def pending(self, store: Store, now: dt.datetime) -> str | None:
        if any(store.get_state(self._key(s)) is None for s in self.sets(store)):
            return None  # a set never harvested
        last = store.sync.last(self.name, "ok")
        if last is None:
            return None
        announced = last_announcement(now)
        started = dt.datetime.fromisoformat(last.started.replace("Z", "+00:00"))
        if started >= announced + SETTLE:
            return f"up to date; next listings at {stamp(next_announcement(now))}"
        if started < announced:
            return None  # a new listing since the last run
        every = dt.timedelta(minutes=max(self.settings.sync_interval_min, 1))
        if now >= started + every:
            return None  # the listing may have reached the OAI interface since
        return f"listing of {stamp(announced)} expected by {stamp(announced + SETTLE)}; next try at " \
               f"{stamp(started + every)}"

    @staticmethod
    def _key(set_spec: str) -> str:
        return f"oai:arXiv:{set_spec}"

    def run(self, store: Store, now: dt.datetime, run: FeedRun, since: str | None,
            checkpoint: Callable[[], None]) -> None:
        from .sources.arxiv_api import MIN_INTERVAL
        from .sources.arxiv_oai import OAISource

        first = (now - dt.timedelta(days=self.settings.sync_first_days)).date().isoformat()
        client = self.client_factory(MIN_INTERVAL)
        try:
            for set_spec in self.sets(store, remember=True):
                state = store.get_state(self._key(set_spec))
                start = since if since else (None if state else first)
                source = OAISource(set_spec=set_spec, from_date=start, state=state, client=client,
                                   base_url=self.settings.arxiv_oai_url)
                before = run.added + run.updated
                self._ingest(store, source, run, checkpoint, label=f"arxiv {set_spec}")
                saved = store.get_state(self._key(set_spec)) or {}
                run.detail[set_spec] = {"changed": run.added + run.updated - before,
                                        "through": saved.get("last_datestamp")}
        finally:
            client.close()


class HFFeed(Feed):
    """Hugging Face daily papers: the listing of every day since the last run, and again the listings of the
    last ``sync_hf_refresh_days`` days, whose votes and comment counts keep growing."""

    name = "hf"
    STATE = "sync:hf"

    def pending(self, store: Store, now: dt.datetime) -> str | None:
        return self._interval_pending(store, now)

    def days(self, store: Store, now: dt.datetime, since: str | None) -> list[str]:
        today = now.date()
        state = store.get_state(self.STATE) or {}
        refresh = today - dt.timedelta(days=max(self.settings.sync_hf_refresh_days - 1, 0))
        if since:
            start = dt.date.fromisoformat(since)
        elif state.get("last_day"):
            start = dt.date.fromisoformat(state["last_day"])
        else:
            start = today - dt.timedelta(days=self.settings.sync_first_days - 1)
        start = min(start, refresh)
        return [(start + dt.timedelta(days=n)).isoformat() for n in range((today - start).days + 1)]

    def run(self, store: Store, now: dt.datetime, run: FeedRun, since: str | None,
            checkpoint: Callable[[], None]) -> None:
        from .sources.hf_daily import HFDailySource

        client = self.client_factory(1.0)
        days = self.days(store, now, since)
        try:
            for day in days:
                self._ingest(store, HFDailySource(date=day, client=client, base_url=self.settings.hf_api_url),
                             run, checkpoint, label=f"hf {day}")
                state = store.get_state(self.STATE) or {}
                if day > state.get("last_day", ""):
                    store.set_state(self.STATE, {**state, "last_day": day})
        finally:
            client.close()
        run.note = f"days {days[0]} to {days[-1]}" if days else ""


def followed_categories(store: Store, settings: Settings, remember: bool = False) -> list[str]:
    """The categories (or OAI sets) followed: the setting, else the main primary categories of the store's
    papers (remembered by the first harvest, ``remember``), else the defaults on an empty store."""
    configured = [c.strip() for c in settings.sync_categories.replace(";", ",").split(",") if c.strip()]
    if configured:
        return configured
    saved = store.get_state("sync:categories")
    if saved and saved.get("categories"):
        return saved["categories"]
    counts = store.primary_categories()
    total = sum(counts.values())
    chosen = [c for c, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
              if n >= MIN_SHARE * total][:MAX_FOLLOWED]
    if not chosen:
        return list(DEFAULT_CATEGORIES)
    if remember:  # a harvest fixes the choice; reading it (the status page, a due check) writes nothing
        store.set_state("sync:categories", {"categories": chosen})
    return chosen


def feeds(settings: Settings, client_factory: Callable[[float], PoliteClient] | None = None) -> list[Feed]:
    """The feeds the settings follow."""
    out: list[Feed] = [ArxivFeed(settings, client_factory)]
    if settings.sync_hf:
        out.append(HFFeed(settings, client_factory))
    return out


# -- running ----------------------------------------------------------------------------------------------
def sync(store: Store, settings: Settings, now: dt.datetime | None = None, *, only_due: bool = False,
         since: str | None = None, only: list[str] | None = None,
         client_factory: Callable[[float], PoliteClient] | None = None,
         on_run: Callable[[FeedRun], None] | None = None,
         on_progress: Callable[[str, int, int | None, FeedRun], None] | None = None) -> SyncReport:
    """Bring every feed up to date once (``only_due``: only those due now, as the schedule does); one
    feed failing does not stop the others. ``since``: a backfill from that day. Each feed run is recorded.
    ``on_progress(label, done, total, run)`` follows a long run (a backfill) batch by batch."""
    real_clock = now is None
    now = utc(now)
    report = SyncReport()
    for feed in feeds(settings, client_factory):
        if only and feed.name not in only:
            continue
        run = FeedRun(feed.name)
        failures = store.sync.failures_since_success(feed.name)
        if only_due:
            why = feed.pending(store, now)
            if failures:
                ended = dt.datetime.fromisoformat((failures[-1].ended or failures[-1].started)
                                                  .replace("Z", "+00:00"))
                retry = ended + retry_after(len(failures))
                runs = f"{len(failures)} run{'s' if len(failures) > 1 else ''}"
                why = f"failing ({runs} in a row); next try at {stamp(retry)}" if now < retry else None
            if why:
                run.note = why
                report.runs.append(run)
                continue
        run_id = store.sync.start(feed.name, stamp(now))
        feed.on_progress = on_progress
        try:
            feed.run(store, now, run, since,
                     lambda run_id=run_id, run=run: store.sync.progress(run_id, run.counts()))
        except PaperradarError as e:
            run.status, run.error = "failed", str(e)
            log.warning("sync %s failed: %s", feed.name, e)
        else:
            run.status = "ok"
        store.sync.finish(run_id, stamp(utc() if real_clock else now), run.status, run.counts(), run.error)
        report.runs.append(run)
        if on_run:
            on_run(run)
    return report


def check_since(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise InputUnusable(f"--backfill takes a day YYYY-MM-DD, not {value!r}") from None


# -- what the digests need to know -------------------------------------------------------------------------
def listings_in(store: Store, now: dt.datetime | None = None) -> bool | None:
    """Whether arXiv's latest listing (announced before ``now``) has been synced: True once papers came in
    since the announcement or a run after :data:`SETTLE` succeeded; False while neither; None when this radar
    does not sync arXiv (it never succeeded once: papers come by hand, nothing to wait for)."""
    if store.sync.last("arxiv", "ok") is None:
        return None
    announced = last_announcement(now)
    if store.sync.added_since("arxiv", stamp(announced)):
        return True
    last = store.sync.last("arxiv", "ok")
    return last is not None and last.started >= stamp(announced + SETTLE)


def problems(store: Store, now: dt.datetime | None = None) -> list[str]:
    """Sentences for a digest composed now: each feed failing since its last success, and a listing that has
    not arrived. Empty when the radar is current (or does not sync at all)."""
    names = {"arxiv": "arXiv", "hf": "Hugging Face"}
    out = []
    for source in store.sync.sources():
        failures = store.sync.failures_since_success(source)
        if failures:
            last_ok = store.sync.last(source, "ok")
            since = f"since {last_ok.started[:16].replace('T', ' ')} UTC" if last_ok else "so far"
            out.append(f"{names.get(source, source)} could not be reached {since} "
                       f"({len(failures)} failed sync run{'s' if len(failures) > 1 else ''}): papers and "
                       "votes from it after that may be missing here.")
    if listings_in(store, now) is False:
        announced = last_announcement(now)
        out.append(f"arXiv's listing announced {announced.astimezone(EASTERN):%A %d %B %H:%M} (US Eastern) "
                   "had not arrived when this digest was composed; it will be in the next one.")
    return out


# -- the order of a day ------------------------------------------------------------------------------------
class SyncBusy(PaperradarError):
    """Another process (the server's schedule, a cron job) is syncing this data directory right now."""


@contextmanager
def exclusive(store: Store) -> Iterator[None]:
    """One sync at a time per data directory, across processes (a lock file beside the database): the
    server's workers, its schedule and `paperradar sync` from cron never harvest the same feed twice."""
    import fcntl

    path = store.path.with_name("sync.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SyncBusy("another sync of this data directory is running",
                           hint="it records its runs; see `paperradar status`") from None
        yield
    finally:
        os.close(fd)  # closing releases the lock


def cycle(store: Store, settings: Settings, engine=None, now: dt.datetime | None = None, *,
          only_due: bool = True, digests: bool = True, since: str | None = None,
          only: list[str] | None = None, client_factory: Callable[[float], PoliteClient] | None = None,
          on_run: Callable[[FeedRun], None] | None = None,
          on_progress: Callable[[str, int, int | None, FeedRun], None] | None = None) -> dict:
    """Sync (the feeds due, or all), index what changed (with ``engine``), compose and send the digests that
    are due (when mail is configured and ``digests``), then open or close the operator's alerts. Raises
    SyncBusy when another process is syncing. Returns what each step did."""
    from . import alerts

    out: dict = {}
    with exclusive(store):
        report = sync(store, settings, now, only_due=only_due, since=since, only=only,
                      client_factory=client_factory, on_run=on_run, on_progress=on_progress)
        out["sync"] = report.to_dict()
        if engine is not None and (report.changed or any(engine.pending().values())):
            try:
                out["indexed"] = engine.update()
                out["topics"] = engine.update_topics()
            except PaperradarError as e:  # a busy or damaged index: the server's catch-up retries
                out["index_error"] = str(e)
                log.warning("index after sync: %s", e)
        if digests:
            from .digest import Digests
            from .mail import MailNotConfigured, MailSettings

            try:
                MailSettings.from_settings(settings).require()
            except MailNotConfigured:
                pass
            else:
                out["digests"] = Digests(store, engine, settings).run(now)
        if settings.zotero_sync_min > 0 and store.states_with_prefix("zotero:"):
            from .zotero import ZoteroSync

            out["zotero"] = ZoteroSync(store, settings.zotero_api_url).sync_due(
                dt.timedelta(minutes=settings.zotero_sync_min), now)
        out["alerts"] = alerts.check(store, settings, now)
    return out


def scheduled(data_dir, settings: Settings, engine=None) -> Callable[[], dict]:
    """The job `serve` runs every minute (jobs.Periodic): a :func:`cycle` of what is due, on its own store
    connection (opened on the job's thread), indexing with the server's ``engine``. Quiet when nothing was
    due; one log line per failed feed run (sync logs it), never a traceback for an unreachable source."""
    opened: list[Store] = []

    def job() -> dict:
        if not opened:
            opened.append(Store.open(data_dir))
        try:
            done = cycle(opened[0], settings, engine)
        except SyncBusy:
            return {}
        runs = [r for r in done["sync"]["runs"] if r["status"] != "skipped"]
        counts = {f"{r['feed']} {k}": r[k] for r in runs for k in ("added", "updated") if r[k]}
        counts.update({f"digests {k}": v for k, v in done.get("digests", {}).items() if v})
        counts.update({f"alerts {k}": v for k, v in done["alerts"].items() if v})
        return counts

    return job
