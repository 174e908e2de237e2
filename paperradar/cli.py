"""The `paperradar` command: a thin click layer over the core (store, ingest, sources).

Errors from the core (PaperradarError) are translated here, once, into one line with a hint and an exit
code; users never see a traceback for their own mistakes.
"""

from __future__ import annotations

import json
import math
import sys
import time
from importlib import resources

import click

from . import __version__, references
from .errors import InputUnusable, NotFound, PaperradarError
from .ingest import MAX_REJECTS_SHOWN, IngestReport, ingest
from .models import Rejected
from .sources import FILE_FORMATS, FileFormat
from .sources.base import Source
from .store import Store


class Progress:
    """A one-line progress display on stderr, drawn only when stderr is a terminal."""

    def __init__(self, label: str, enabled: bool | None = None):
        self.label = label
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.start = time.monotonic()
        self._last_draw = 0.0

    def update(self, done: int, total: int | None, report: IngestReport) -> None:
        now = time.monotonic()
        if not self.enabled or now - self._last_draw < 0.2:
            return
        self._last_draw = now
        n = report.added + report.updated + report.unchanged
        rate = n / max(now - self.start, 1e-9)
        if total:
            frac = min(done / total, 1.0)
            eta = (now - self.start) * (1 - frac) / frac if frac > 0 else 0
            bar = "#" * int(frac * 30)
            line = f"{self.label} [{bar:<30}] {frac:4.0%} {n:,} papers {rate:,.0f}/s ETA {eta:,.0f}s"
        else:
            line = f"{self.label} {n:,} papers {rate:,.0f}/s"
        click.echo("\r" + line[:120].ljust(120), nl=False, err=True)

    def close(self) -> None:
        if self.enabled:
            click.echo("\r" + " " * 120 + "\r", nl=False, err=True)


def _open_store(ctx: click.Context) -> Store:
    return Store.open(ctx.obj["data_dir"])


def _settings(ctx: click.Context):
    """The settings, read once per command (only by the commands that need them)."""
    from . import config

    if "settings" not in ctx.obj:
        ctx.obj["settings"] = config.load(data_dir=ctx.obj["data_dir"])
    return ctx.obj["settings"]


def _run_ingest(ctx: click.Context, sources: list[tuple[str, Source]], exit: bool = True) -> int:
    """Ingest each (label, source), print a summary line per input and a total; exit 0 / 1 / 2 (or, with
    ``exit=False``, return that code)."""
    store = _open_store(ctx)
    total = IngestReport()
    shown = 0
    unusable = False

    def on_reject(r: Rejected) -> None:
        nonlocal shown
        shown += 1
        if shown <= MAX_REJECTS_SHOWN:
            click.echo(f"rejected: {r}", err=True)
        elif shown == MAX_REJECTS_SHOWN + 1:
            click.echo("rejected: ... (more rejects are counted but not shown)", err=True)

    for label, source in sources:
        progress = Progress(label)
        try:
            report = ingest(store, source, on_reject=on_reject, on_progress=progress.update,
                            batch_size=_settings(ctx).batch_size)
        except InputUnusable as e:
            progress.close()
            click.echo(f"error: {e}" + (f"\nhint: {e.hint}" if e.hint else ""), err=True)
            unusable = True
            continue
        except KeyboardInterrupt:
            progress.close()
            click.echo("interrupted: committed batches are kept; run the same command again to finish",
                       err=True)
            sys.exit(130)
        finally:
            close = getattr(source, "close", None)
            if close:
                close()
        progress.close()
        for name in ("added", "updated", "unchanged", "rejected"):
            setattr(total, name, getattr(total, name) + getattr(report, name))
        if len(sources) > 1:
            click.echo(f"{label}: {report.summary()}")
    click.echo(("total: " if len(sources) > 1 else "") + total.summary()
               + (f" ({store.count():,} papers in store)"))
    if total.rejected:
        click.echo(f"{total.rejected} record(s) rejected; see the messages above", err=True)
    store.close()
    code = 2 if unusable else total.exit_code
    if exit:
        sys.exit(code)
    return code


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="paperradar")
@click.option("--data-dir", envvar="PAPERRADAR_DATA_DIR", type=click.Path(file_okay=False),
              help="Data directory (env PAPERRADAR_DATA_DIR; default ~/.local/share/paperradar).")
@click.pass_context
def cli(ctx: click.Context, data_dir: str | None) -> None:
    """paperradar: self-hosted research paper discovery."""
    ctx.ensure_object(dict)
    ctx.obj["data_dir"] = data_dir


@cli.group()
def ingest_group() -> None:
    """Add papers from a source to the store (re-running is safe: unchanged papers stay unchanged)."""


cli.add_command(ingest_group, "ingest")

_paths = click.argument("paths", nargs=-1, required=True, type=click.Path(allow_dash=True))


@ingest_group.command("arxiv")
@click.option("--category", "-c", "categories", multiple=True, help="arXiv category, e.g. cs.CL (repeat).")
@click.option("--query", "-q", help="arXiv API search query, e.g. 'ti:diffusion AND au:ho'.")
@click.option("--id", "ids", multiple=True, help="arXiv id to fetch (repeat).")
@click.option("--since", help="Submitted on or after this date (YYYY-MM-DD).")
@click.option("--until", help="Submitted on or before this date (YYYY-MM-DD).")
@click.option("--max", "max_results", type=int, default=1000, show_default=True, help="At most this many.")
@click.pass_context
def ingest_arxiv(ctx, categories, query, ids, since, until, max_results) -> None:
    """From the arXiv API (live; one request every 3 seconds, as arXiv asks)."""
    from .sources.arxiv_api import ArxivAPISource

    if not (categories or query or ids):
        raise click.UsageError("give --category, --query or --id")
    source = ArxivAPISource(query=query, categories=categories, id_list=ids, since=since, until=until,
                            max_results=max_results)
    _run_ingest(ctx, [("arxiv", source)])


@ingest_group.command("oai")
@click.option("--set", "set_spec", help="OAI set, e.g. cs or physics:hep-th (default: all of arXiv).")
@click.option("--from", "from_date", help="Records changed on or after this date (default: where the "
                                          "last harvest of this set stopped).")
@click.option("--until", help="Records changed on or before this date.")
@click.option("--raw", is_flag=True, help="Use metadataPrefix=arXivRaw (carries every version).")
@click.option("--restart", is_flag=True, help="Ignore the saved harvest state and start over.")
@click.pass_context
def ingest_oai(ctx, set_spec, from_date, until, raw, restart) -> None:
    """From arXiv's OAI-PMH interface (live; incremental and resumable per set)."""
    from .sources.arxiv_oai import OAISource

    prefix = "arXivRaw" if raw else "arXiv"
    store = _open_store(ctx)
    state = None if restart else store.get_state(f"oai:{prefix}:{set_spec or '*'}")
    store.close()
    source = OAISource(set_spec=set_spec, from_date=from_date, until=until, metadata_prefix=prefix,
                       state=state)
    _run_ingest(ctx, [("oai", source)])


@ingest_group.command("snapshot")
@click.argument("path", type=click.Path(allow_dash=True))
@click.option("--category", "-c", "categories", multiple=True, help="Keep only this category or archive "
                                                                    "(e.g. cs.CL or cs; repeat).")
@click.option("--since", help="Keep papers submitted on or after this date (YYYY-MM-DD).")
@click.option("--until", help="Keep papers submitted on or before this date (YYYY-MM-DD).")
@click.pass_context
def ingest_snapshot(ctx, path, categories, since, until) -> None:
    """From the arXiv bulk metadata snapshot (arxiv-metadata-oai-snapshot.json, streamed)."""
    from .sources.arxiv_snapshot import SnapshotSource

    _run_ingest(ctx, [(path, SnapshotSource(path, categories=categories, since=since, until=until))])


@ingest_group.command("hf-daily")
@click.argument("path", required=False, type=click.Path(allow_dash=True))
@click.option("--date", help="The day to fetch from the live endpoint (YYYY-MM-DD; default: latest).")
@click.pass_context
def ingest_hf_daily(ctx, path, date) -> None:
    """From Hugging Face daily papers (with upvotes): a saved JSON file, or live without PATH."""
    from .sources.hf_daily import HFDailySource

    _run_ingest(ctx, [(path or "hf-daily", HFDailySource(path=path, date=date))])


def _file_command(name: str, fmt: FileFormat) -> None:
    """Register `paperradar ingest NAME PATH...` for a file format of the core's registry."""

    @ingest_group.command(name, help=fmt.help)
    @_paths
    @click.pass_context
    def command(ctx, paths) -> None:
        _run_ingest(ctx, [(p, _lazy(fmt.open, p)) for p in paths])


for _name, _fmt in FILE_FORMATS.items():
    if _name != "hf-daily":  # `ingest hf-daily` also fetches live: its own command above
        _file_command("page" if _name == "hf-page" else _name, _fmt)


@ingest_group.command("demo")
@click.pass_context
def ingest_demo(ctx) -> None:
    """The demo corpus bundled with paperradar (4,000 recent cs.CL/CV/AI/LG papers; no network)."""
    _ingest_demo(ctx)


def _ingest_demo(ctx: click.Context, exit: bool = True) -> int:
    from .sources.jsonl import JSONLSource

    with resources.as_file(resources.files("paperradar") / "data" / "demo.jsonl.gz") as path:
        return _run_ingest(ctx, [("demo", JSONLSource(str(path)))], exit=exit)


class _lazy(Source):
    """Open a file source only when it is ingested, so one missing file among many is reported in turn."""

    def __init__(self, open_source, path: str):
        self.open_source, self.path, self.inner = open_source, path, None

    def __iter__(self):
        self.inner = self.open_source(self.path)
        return iter(self.inner)

    def progress(self):
        return self.inner.progress() if self.inner else (0, None)

    def close(self):
        close = getattr(self.inner, "close", None)
        if close:
            close()


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_context
def stats(ctx, as_json) -> None:
    """Counts of papers by source, primary category and month."""
    with _open_store(ctx) as store:
        s = store.stats()
    if as_json:
        click.echo(json.dumps(s, indent=2))
        return
    click.echo(f"{s['papers']:,} papers ({s['with_arxiv_id']:,} with an arXiv id, "
               f"{s['with_upvotes']:,} with upvotes) in {s['database']}")
    for title, key in (("by source", "by_source"), ("by primary category", "by_primary_category"),
                       ("by month", "by_month")):
        if s[key]:
            click.echo(f"\n{title}:")
            for name, n in s[key].items():
                click.echo(f"  {name:<20} {n:>9,}")


@cli.command()
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_context
def show(ctx, ref, as_json) -> None:
    """Show one paper by arXiv id (with or without version), DOI or exact title."""
    with _open_store(ctx) as store:
        p = store.get(ref)
    if as_json:
        click.echo(json.dumps(p.to_dict(), indent=2, ensure_ascii=False))
        return
    click.echo(click.style(p.title, bold=True))
    click.echo(", ".join(p.authors) or "(authors unknown)")
    rows = [
        ("id", p.key + (f"v{p.version}" if p.version else "")),
        ("categories", " ".join(p.categories)),
        ("submitted", p.submitted), ("updated", p.updated), ("announced", p.announced),
        ("comment", p.comment), ("journal-ref", p.journal_ref), ("doi", p.doi),
        ("abs", p.abs_url), ("pdf", p.pdf_url), ("upvotes", p.upvotes),
        ("sources", ", ".join(p.sources)), ("first seen", p.first_seen),
    ]
    for name, value in rows:
        if value not in (None, ""):
            click.echo(f"{name + ':':<13}{value}")
    click.echo("")
    click.echo(click.wrap_text(p.abstract or "(no abstract)", width=100))


_mode_option = click.option("--mode", type=click.Choice(["hybrid", "lexical", "dense"]), default="hybrid",
                            show_default=True, help="Both engines fused, BM25 only, or embeddings only.")


def _engine(ctx: click.Context):
    from .search import SearchEngine

    return SearchEngine(_open_store(ctx))


def _highlight(text: str, spans: list[tuple[int, int]]) -> str:
    out, last = [], 0
    for a, b in spans:
        out += [text[last:a], click.style(text[a:b], bold=True, fg="yellow")]
        last = b
    return "".join(out) + text[last:]


def _print_hits(hits, as_json: bool, extra: dict | None = None) -> None:
    if as_json:
        click.echo(json.dumps({**(extra or {}), "results": [h.to_dict() for h in hits]},
                              indent=2, ensure_ascii=False))
        return
    if not hits:
        click.echo("no results; try fewer words, or drop a filter", err=True)
    for i, h in enumerate(hits, 1):
        p = h.paper
        title = _highlight(p.title, h.highlights.get("title", []))
        click.echo(f"{i:>2}. {title}  [{p.key}]")
        meta = ", ".join(p.authors[:3]) + (" et al." if len(p.authors) > 3 else "")
        date = (p.announced or p.submitted or "")[:10]
        click.echo(f"    {meta} · {' '.join(p.categories[:3])} · {date} · score {h.score:.3f}")
        abstract = p.abstract
        spans = h.highlights.get("abstract", [])
        if abstract:
            start = max(0, spans[0][0] - 60) if spans else 0
            cut = abstract[start:start + 240]
            shifted = [(a - start, min(b, start + 240) - start) for a, b in spans if start <= a < start + 240]
            click.echo("    " + ("…" if start else "") + _highlight(cut, shifted)
                       + ("…" if start + 240 < len(abstract) else ""))


@cli.command()
@click.option("--rebuild", type=click.Choice(["all", "lexical", "vectors", "topics"]), is_flag=False,
              flag_value="all", default=None,
              help="Build an index (default: all) again from the store, beside the one in use, which keeps "
                   "answering until the new one replaces it. `topics` clusters and lays out the map anew.")
@click.option("--lexical-only", is_flag=True, help="Skip the embeddings (lexical search only).")
@click.pass_context
def index(ctx, rebuild, lexical_only) -> None:
    """Bring the search indexes up to date with the store (embeds only papers whose text changed;
    resumable), then the topics and the map (new papers join their nearest topic)."""
    _update_indexes(_engine(ctx), None if rebuild == "topics" else rebuild, dense=not lexical_only,
                    rebuild_topics=rebuild in ("all", "topics"))


def _update_indexes(engine, rebuild: str | None = None, dense: bool = True,
                    rebuild_topics: bool = False) -> None:
    """Run engine.update with a progress bar and ETA on a terminal, then print what was indexed."""
    bars: dict[str, float] = {}
    start = time.monotonic()
    tty = sys.stderr.isatty()

    def progress(name: str, done: int, total: int) -> None:
        if not tty:
            return
        bars.setdefault(name, time.monotonic())
        elapsed = time.monotonic() - bars[name]
        frac = done / total if total else 1.0
        eta = elapsed * (1 - frac) / frac if frac > 0 else 0
        click.echo(f"\r{name:<8} [{'#' * int(frac * 30):<30}] {done:,}/{total:,} ETA {eta:,.0f}s".ljust(100),
                   nl=False, err=True)

    try:
        counts = engine.update(progress=progress, rebuild=rebuild, dense=dense)
    except KeyboardInterrupt:
        if rebuild:  # a rebuild builds beside the live index: interrupted, the old one is still there
            click.echo("\ninterrupted: the indexes in use are unchanged; `paperradar index --rebuild` starts "
                       "the rebuild again", err=True)
        else:
            click.echo("\ninterrupted: what was indexed is kept; run `paperradar index` again to resume",
                       err=True)
        sys.exit(130)
    if tty:
        click.echo("\r" + " " * 100 + "\r", nl=False, err=True)
    click.echo(f"indexed {counts['lexical']:,} papers (lexical), {counts['vectors']:,} (vectors) "
               f"in {time.monotonic() - start:.1f}s; {engine.lexical.count():,} papers searchable")
    if dense:
        _update_topics(engine, rebuild_topics)


def _update_topics(engine, rebuild: bool) -> None:
    start = time.monotonic()
    try:
        done = engine.update_topics(rebuild=rebuild, progress=lambda msg: click.echo(msg, err=True))
    except PaperradarError as e:  # busy (another process builds them) or unreadable: said, not fatal
        click.echo(f"topics: {e}" + (f" (hint: {e.hint})" if e.hint else ""), err=True)
        return
    if not done.get("built"):
        click.echo(f"topics: none yet ({done.get('reason', 'no topics index')})")
    elif done.get("rebuilt"):
        click.echo(f"topics: {done['fine']:,} fine and {done['broad']:,} broad topics over "
                   f"{done['papers']:,} papers, map laid out, in {time.monotonic() - start:.1f}s")
    elif done["added"] or done["moved"] or done["removed"]:
        click.echo(f"topics: {done['added']:,} papers placed, {done['moved']:,} moved, "
                   f"{done['removed']:,} removed in {time.monotonic() - start:.1f}s")
    if done.get("advice"):
        click.echo(f"topics: {done['advice']}", err=True)


@cli.command("sync")
@click.option("--backfill", "since", metavar="SINCE", help="Also bring history from this day (YYYY-MM-DD): "
              "resumable (run it again after an interruption), with progress and an ETA.")
@click.option("--if-due", is_flag=True, help="Only the feeds due now (arXiv after its announcements, "
                                             "Hugging Face every sync_interval_min; a failing feed after its "
                                             "backoff): for a cron line that runs often.")
@click.option("--only", type=click.Choice(["arxiv", "hf"]), multiple=True, help="Only this feed (repeat).")
@click.option("--no-index", is_flag=True, help="Do not index what came in (the next sync or serve will).")
@click.option("--no-digests", is_flag=True, help="Do not compose and send the digests that are due.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_context
def sync_command(ctx, since, if_due, only, no_index, no_digests, as_json) -> None:
    """Bring every followed feed up to date once, then index, send due digests and alert the operator.

    Feeds: arXiv (OAI-PMH, the categories of the setting sync_categories) and Hugging Face daily papers (with
    the last days' votes). Exit code 0: all went well; 1: records were rejected; 2: a feed failed (the next
    run resumes where it stopped)."""
    from . import sync

    since = sync.check_since(since)
    settings = _settings(ctx)
    store = _open_store(ctx)
    tty = sys.stderr.isatty() and not as_json
    starts: dict[str, float] = {}

    def on_progress(label: str, done: int, total: int | None, run) -> None:
        if not tty:
            return
        elapsed = time.monotonic() - starts.setdefault(label, time.monotonic())
        line = f"{label}: {run.added:,} added, {run.updated:,} updated"
        if total:
            frac = min(done / total, 1.0)
            eta = elapsed * (1 - frac) / frac if frac > 0 else 0
            line += f" [{'#' * int(frac * 30):<30}] {done:,}/{total:,} ETA {eta:,.0f}s"
        click.echo("\r" + line[:120].ljust(120), nl=False, err=True)

    def on_run(run) -> None:
        if tty:
            click.echo("\r" + " " * 120 + "\r", nl=False, err=True)
        if not as_json:
            click.echo(run.summary())
            for r in run.rejects[:MAX_REJECTS_SHOWN]:
                click.echo(f"rejected: {r}", err=True)

    engine = None if no_index else _engine_over(store)
    try:
        done = sync.cycle(store, settings, engine, only_due=if_due, digests=not no_digests, since=since,
                          on_run=on_run, on_progress=on_progress, only=list(only) or None)
    except KeyboardInterrupt:
        click.echo("\ninterrupted: what came in is kept; run the same command again to resume", err=True)
        sys.exit(130)
    finally:
        store.close()
    runs = done["sync"]["runs"]
    if as_json:
        click.echo(json.dumps(done))
    else:
        for r in runs:
            if r["status"] == "skipped":
                click.echo(f"{r['feed']}: not due ({r['note']})")
        if "indexed" in done:
            click.echo(f"indexed {done['indexed']['lexical']:,} papers (lexical), "
                       f"{done['indexed']['vectors']:,} embedded")
        if "index_error" in done:
            click.echo(f"index: {done['index_error']}", err=True)
        if done.get("digests"):
            click.echo("digests: " + ", ".join(f"{k} {v}" for k, v in done["digests"].items()))
        opened = done["alerts"]
        if opened["opened"] or opened["closed"]:
            click.echo(f"alerts: {opened['opened']} opened, {opened['closed']} closed, "
                       f"{opened['mailed']} mailed to the operator")
    sys.exit(2 if any(r["status"] == "failed" for r in runs) else
             1 if any(r["rejected"] for r in runs) else 0)


@cli.command("topics")
@click.option("--level", type=click.Choice(["broad", "fine"]), default="broad", show_default=True,
              help="Broad topics (about 30) or fine ones (a few hundred).")
@click.option("--rising", type=click.IntRange(1, 24), metavar="MONTHS",
              help="Only the topics whose share of new papers grew most over the last MONTHS months.")
@click.option("--limit", default=50, type=click.IntRange(1, 10_000), show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_context
def topics_command(ctx, level, rising, limit, as_json) -> None:
    """The corpus's topics (built by `paperradar index`): id, papers, label; `topic:ID` searches one."""
    engine = _engine(ctx)
    index = engine.topics
    if rising:
        found = index.rising(rising, level=level)[:limit]
        rows = [{**t.to_dict(), "growth": round(g, 4), "papers": a, "papers_before": b}
                for t, g, a, b in found]
    else:
        rows = [t.to_dict() for t in index.levels(level)[:limit]]
    if as_json:
        click.echo(json.dumps({"level": level, "rising_months": rising, "drift": index.drift(),
                               "topics": rows}))
        return
    for r in rows:
        extra = (f"  x{math.exp(r['growth']):.1f} ({r['papers']:,} vs {r['papers_before']:,})"
                 if rising else "")
        click.echo(f"topic:{r['id']:<6} {r['size']:>7,}  {r['label']}{extra}")
    if not rows:
        click.echo("no topic rose over that period" if rising else "no topics")
    advice = index.drift().get("advice")
    if advice:
        click.echo(f"note: {advice}", err=True)


@cli.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_context
def status_command(ctx, as_json) -> None:
    """Is the radar current? Each feed's last success, error and lag, papers per day, index lag, the digest
    outbox, open alerts and disk use (what /status shows the operator)."""
    from . import status

    with _open_store(ctx) as store:
        report = status.report(store, _settings(ctx), _engine_over(store), detail=True)
    click.echo(json.dumps(report) if as_json else status.format_text(report))


@cli.command()
@click.argument("query")
@click.option("--limit", "-n", type=click.IntRange(1, 200), default=10, show_default=True)
@click.option("--offset", type=click.IntRange(0, 10_000), default=0)
@_mode_option
@click.option("--sort", type=click.Choice(["relevance", "newest", "trending"]), default=None,
              help="Order of results (default: relevance, or the query's sort:).")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_context
def search(ctx, query, limit, offset, mode, sort, as_json) -> None:
    """Search papers: free text, ti: au: abs: cat: id:, "phrases", -exclude, since:/until:, 2023..2025."""
    engine = _engine(ctx)
    engine.warm(dense=mode != "lexical")  # load once per process, so the time shown is the search's
    results = engine.search(query, limit=limit, offset=offset, mode=mode, sort=sort)
    behind = engine.store.count_changed_since(engine.lexical.last_seq)
    if mode != "lexical":
        behind = max(behind, engine.store.count_changed_since(engine.vectors.last_seq))
    if behind:
        click.echo(f"note: {behind:,} papers are not in the search index yet; run `paperradar index`",
                   err=True)
    extra = {"query": query, "mode": mode, "sort": results.sort, "took_ms": results.took_ms}
    if results.did_you_mean:
        extra["did_you_mean"] = results.did_you_mean
    if results.loosened:
        extra["loosened_phrases"] = list(results.loosened)
    _print_hits(results.hits, as_json, extra)
    if results.loosened and not as_json:
        phrases = ", ".join(f'"{p}"' for p in results.loosened)
        click.echo(f"note: no paper holds {phrases}: showing papers with the words instead", err=True)
    if results.did_you_mean and not as_json:
        click.echo(f"did you mean: {results.did_you_mean}", err=True)
    if not as_json:
        click.echo(f"({len(results.hits)} results in {results.took_ms:.1f} ms)", err=True)


@cli.command()
@click.argument("ref")
@click.option("--limit", "-n", type=click.IntRange(1, 100), default=10, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_context
def related(ctx, ref, limit, as_json) -> None:
    """Papers related to a paper (by arXiv id, DOI or title)."""
    _print_hits(_engine(ctx).related(ref, limit=limit), as_json, {"paper": ref})


@cli.command()
@click.argument("text")
@click.option("--limit", "-n", type=click.IntRange(1, 100), default=10, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_context
def like(ctx, text, limit, as_json) -> None:
    """Papers like a pasted text, e.g. an abstract (`-` reads it from stdin)."""
    if text == "-":
        text = sys.stdin.read()
    _print_hits(_engine(ctx).like_text(text, limit=limit), as_json)


@cli.command("eval")
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--split", default="test", show_default=True, help="qrels/<split>.tsv to score.")
@_mode_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def eval_command(folder, split, mode, as_json) -> None:
    """Score retrieval on a BEIR folder (corpus.jsonl, queries.jsonl, qrels/) in a temporary index."""
    from .evaluate import evaluate

    r = evaluate(folder, split=split, mode=mode)
    if as_json:
        click.echo(json.dumps(r))
        return
    click.echo(f"{mode} on {r['documents']:,} documents, {r['queries']} {split} queries: "
               f"nDCG@10 {r['ndcg@10']:.4f}  Recall@100 {r['recall@100']:.4f}  MRR@10 {r['mrr@10']:.4f}")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: all).")
@click.option("--port", default=8000, type=click.IntRange(0, 65535), show_default=True)
@click.option("--workers", default=1, type=click.IntRange(1, 64), show_default=True,
              help="Worker processes; each loads the model and maps the indexes (about 300 MB each).")
@click.option("--demo/--no-demo", default=None,
              help="With an empty store, load the bundled demo corpus (default: ask, on a terminal).")
@click.option("--no-index", is_flag=True, help="Serve without first indexing what the store has new.")
@click.option("--access-log/--no-access-log", default=True, show_default=True, help="Log every request.")
@click.option("--digest-schedule", type=click.IntRange(0, 86400), default=0, metavar="SECONDS",
              help="Also run `digest send` in this process every SECONDS (0: off; use cron instead).")
@click.pass_context
def serve(ctx, host, port, workers, demo, no_index, access_log, digest_schedule) -> None:
    """Serve the web app and the JSON API (search, papers, trending, feeds)."""
    import os

    from . import config

    with _open_store(ctx) as store:
        empty = store.count() == 0
    if empty:
        if demo is None and sys.stdin.isatty():
            demo = click.confirm("The store is empty. Load the bundled demo corpus (4,000 recent papers)?",
                                 default=True)
        if demo:
            _ingest_demo(ctx, exit=False)
        else:
            click.echo("note: the store is empty; load papers with `paperradar ingest demo` (or any "
                       "`paperradar ingest` source)", err=True)
    if not no_index:
        _update_indexes(_engine(ctx))
    os.environ["PAPERRADAR_DATA_DIR"] = str(config.data_dir(ctx.obj["data_dir"]))  # for the workers
    shown = "localhost" if host in ("0.0.0.0", "::") else host
    data = config.data_dir(ctx.obj["data_dir"])
    path = config.settings_file(None, data)
    if "PAPERRADAR_BASE_URL" not in os.environ and "base_url" not in (config.load_file(path) if path else {}):
        # links in mails (and sign-in links written to the log) should open this server
        os.environ["PAPERRADAR_BASE_URL"] = f"http://{shown}:{port}"
    settings = config.load(data_dir=data)
    if digest_schedule:
        from .digest import Digests
        from .jobs import Periodic
        from .mail import MailSettings

        MailSettings.from_settings(settings).require()
        job: list = []

        def run_digests() -> dict:
            if not job:  # opened on the job's own thread, which then owns its connection
                store = Store.open(data)
                job.append(Digests(store, _engine_over(store), settings))
            return job[0].run()

        Periodic("digest run", run_digests, digest_schedule).start()
        click.echo(f"paperradar: sending due digests every {digest_schedule} s")
    if settings.sync_interval_min > 0:
        click.echo("paperradar: keeping current by itself: arXiv after each announcement, Hugging Face "
                   f"every {settings.sync_interval_min} min, then index and due digests "
                   "(PAPERRADAR_SYNC_INTERVAL_MIN=0 turns this off); see /status")
    click.echo(f"paperradar: serving at http://{shown}:{port}/ (Ctrl-C to stop)")
    from .web import server

    server.run(settings, host=host, port=port, workers=workers, access_log=access_log)


@cli.group("digest")
def digest_group() -> None:
    """Daily digests: send what is due (cron-friendly), preview one."""


def _digests(ctx: click.Context, with_engine: bool = True):
    from .digest import Digests

    store = _open_store(ctx)
    return Digests(store, _engine_over(store) if with_engine else None, _settings(ctx))


def _engine_over(store):
    from .search import SearchEngine

    return SearchEngine(store)


def _parse_at(at: str | None):
    import datetime as dt

    if not at:
        return None
    try:
        t = dt.datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{at!r} is not an ISO time such as 2026-06-17T08:00:00Z",
                                 param_hint="--at") from None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


@digest_group.command("send")
@click.option("--at", help="Act as if it were this time (ISO 8601, UTC unless it says otherwise).")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@click.pass_context
def digest_send(ctx, at, as_json) -> None:
    """Compose the digests due now (or --at) into the outbox, then send the outbox (retries included).

    Safe to run from cron or a systemd timer as often as you like (every 15 minutes is good): each
    subscriber gets one digest per local day, and each mail is sent at most once, even with several
    runs at the same time.
    """
    counts = _digests(ctx).run(_parse_at(at))
    if as_json:
        click.echo(json.dumps(counts))
    else:
        click.echo(", ".join(f"{k} {v}" for k, v in counts.items()))


@digest_group.command("preview")
@click.argument("email")
@click.option("--at", help="Compose as if it were this time (ISO 8601).")
@click.option("--html", "as_html", is_flag=True, help="Print the HTML part instead of the text part.")
@click.pass_context
def digest_preview(ctx, email, at, as_html) -> None:
    """Print the digest EMAIL would get now (nothing is queued or sent)."""
    d = _digests(ctx)
    sub = d.subs.by_email(email)
    if sub is None:
        raise NotFound(f"no subscriber {email!r}")
    text, html = d.preview_for(sub, _parse_at(at))
    click.echo(html if as_html else text)


@digest_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_context
def digest_status(ctx, as_json) -> None:
    """Subscribers by status, the mail and chat outboxes by status (queued, sending, sent, failed), and the
    chat destinations by status (ok, failing)."""
    with _open_store(ctx) as store:
        subs = store.subscriptions
        report = {"subscribers": subs.count_by_status(), "outbox": subs.outbox_counts()}
        destinations = subs.destination_counts()
        if destinations:  # only where someone has one
            report.update({"chat destinations": destinations, "chat outbox": subs.chat_counts()})
    if as_json:
        click.echo(json.dumps(report))
        return
    for title, counts in report.items():
        click.echo(f"{title}: " + (", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())) or "none"))


@cli.group("users")
def users_group() -> None:
    """Accounts (made by signing in on the web app): list them, see one's feed, import into or export
    one's library, delete one."""


@users_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_context
def users_list(ctx, as_json) -> None:
    """Every account with its library's size."""
    with _open_store(ctx) as store:
        rows = store.accounts.summary()
    keys = ("email", "created", "last_seen", "saved", "tags", "not_interested")
    if as_json:
        click.echo(json.dumps([dict(zip(keys, r, strict=True)) for r in rows], indent=2))
        return
    if not rows:
        click.echo("no accounts yet (people make one by signing in on the web app)", err=True)
    for email, created, seen, saved, tags, dismissed in rows:
        click.echo(f"{email}  since {created[:10]}, last seen {(seen or 'never')[:10]}: {saved} saved papers "
                   f"in {tags} tag{'' if tags == 1 else 's'}, {dismissed} not interested")


def _user(store: Store, email: str):
    user = store.accounts.user_by_email(email.strip())
    if user is None:
        raise NotFound(f"no account for {email!r}", hint="`paperradar users list` shows them")
    return user


@users_group.command("feed")
@click.argument("email")
@click.option("--tag", help="Recommend from this tag only.")
@click.option("--window", type=click.Choice(["week", "month", "quarter", "year", "all"]), default="month",
              show_default=True, help="Papers listed in this window (up to the latest listing day).")
@click.option("--limit", "-n", type=click.IntRange(1, 100), default=10, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_context
def users_feed(ctx, email, tag, window, limit, as_json) -> None:
    """An account's "For you" feed, with the reasons, as the web app shows it."""
    from .recommend import FeedFilters, Recommender

    engine = _engine(ctx)
    store = engine.store
    user = _user(store, email)
    feed = Recommender(store, engine).feed(user, tag=tag or None, filters=FeedFilters(window=window),
                                           limit=limit)
    if as_json:
        click.echo(json.dumps({"mode": feed.mode, "saved": feed.saved, "terms": feed.terms,
                               "items": [r.to_dict() for r in feed.items]}, indent=2, ensure_ascii=False))
        return
    modes = {"model": f"a model of {feed.saved} saved papers",
             "cold": f"{feed.saved} saved papers: related to them, then trending",
             "empty": "nothing saved yet: trending"}
    click.echo(modes[feed.mode], err=True)
    for i, r in enumerate(feed.items, 1):
        click.echo(f"{i:>2}. {r.paper.title}  [{r.paper.key}]")
        why = f"{100 * r.score:.0f}% match" if r.why == "model" else r.why
        if r.because:
            why += "; close to " + "; ".join(f"{p.title[:60]} ({s:.2f})" for p, s in r.because)
        if r.terms:
            why += "; terms: " + ", ".join(r.terms)
        click.echo(f"    {why}")


@users_group.command("import")
@click.argument("email")
@click.argument("path", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--tag", help="Save into this tag (default: imported).")
@click.option("--format", "fmt", type=click.Choice(references.CHOICES),
              default="auto", show_default=True, help="The file's format (auto: from its content, then its "
              "extension).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def users_import(ctx, email, path, tag, fmt, as_json) -> None:
    """Import a reference file (a Zotero export: BibTeX, RIS, CSL JSON or Zotero RDF) into a tag of
    EMAIL's library: its papers found in the store are saved; the others and any malformed records are
    listed with their line. PATH - reads standard input."""
    from .library import Library

    data = sys.stdin.buffer.read() if path == "-" else _read_file(path)
    with _open_store(ctx) as store:
        report = Library(store).import_file(_user(store, email), references.decode(data), tag, format=fmt,
                                            filename=None if path == "-" else path)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
        return
    click.echo(f"{report.entries} read ({report.format}): {len(report.matched)} matched, {report.added} new "
               f"in {report.tag!r}, {len(report.unmatched)} not found, {len(report.problems)} malformed")
    for line, key, title in report.unmatched:
        click.echo(f"  not found, line {line}: {key}  {title[:80]}")
    for p in report.problems:
        click.echo(f"  skipped, line {p.line}: {p.message}")


def _read_file(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise InputUnusable(f"cannot read {path}: {e.strerror}") from None


@users_group.command("export")
@click.argument("email")
@click.option("--tag", help="Only this tag (default: the whole library).")
@click.option("--format", "fmt", type=click.Choice(["bibtex", "ris", "json"]), default="bibtex",
              show_default=True)
@click.pass_context
def users_export(ctx, email, tag, fmt) -> None:
    """Print EMAIL's library (or one tag) as BibTeX, RIS or JSON, as the library page's export gives it."""
    from .library import Library

    with _open_store(ctx) as store:
        lib, user = Library(store), _user(store, email)
        if fmt == "json":
            click.echo(json.dumps(lib.export_json(user, tag), indent=2, ensure_ascii=False))
        elif fmt == "ris":
            click.echo(lib.export_ris(user, tag), nl=False)
        else:
            click.echo(lib.export_bibtex(user, tag), nl=False)


@users_group.command("zotero-sync")
@click.argument("email")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def users_zotero_sync(ctx, email, as_json) -> None:
    """Sync EMAIL's tag with their Zotero collection both ways, as the settings page's button does (the key,
    library, collection and tag are set there). For cron: exits non-zero when Zotero refuses."""
    from .zotero import ZoteroSync

    with _open_store(ctx) as store:
        report = ZoteroSync(store, _settings(ctx).zotero_api_url).sync(_user(store, email))
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
        return
    click.echo(f"{report.created} created in Zotero, {report.uncollected} taken out of the collection, "
               f"{report.added} saved into the tag, {report.removed} taken out of it; {report.items} items "
               f"in the collection, {len(report.unmatched)} not papers of this server")


@users_group.command("delete")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def users_delete(ctx, email, yes) -> None:
    """Delete an account and all its data (library, tags, votes, sessions, digest subscription)."""
    from .accounts import Accounts

    with _open_store(ctx) as store:
        user = _user(store, email)
        if not yes:
            click.confirm(f"Delete the account of {user.email} and all its data?", abort=True)
        Accounts(store, _settings(ctx)).delete(user)
    click.echo(f"deleted the account of {user.email}", err=True)


def main() -> None:
    """Entry point: run the CLI and turn core errors into one line plus an exit code."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except PaperradarError as e:
        click.echo(f"error: {e}", err=True)
        if e.hint:
            click.echo(f"hint: {e.hint}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
