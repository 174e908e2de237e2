"""Take the README's screenshots of the web app: docs/screenshots/*.png.

Serves the app over DATA_DIR (an ingested and indexed data directory) with uvicorn on a free localhost
port, in a thread, and photographs a few pages with Debian's Chromium through Playwright (no browser
download). Viewport screenshots at 1x, so each file stays small.

    python scripts/screenshots.py [DATA_DIR] [--out docs/screenshots] [--chromium /usr/bin/chromium]
                                  [--only status,home,...] [--simulate-sync DAYS]

DATA_DIR defaults to $PAPERRADAR_DATA_DIR. The demo data is what the README shows:
`paperradar ingest demo && paperradar index`, plus the Hugging Face daily-papers sample for trending.
The signed-in pages (For you, the library) are those of an account the script makes in DATA_DIR,
demo@paperradar.localhost, whose library holds the first papers found for a few searches.

The status page (/status) is only worth a picture over a radar that has been syncing for a while.
``--simulate-sync DAYS`` gives it that history without touching DATA_DIR: it copies DATA_DIR to a temporary
directory and there runs the real ``paperradar.sync.sync`` (only the feeds due, as `paperradar serve` does)
every hour of the last DAYS days up to now, against the recorded arXiv OAI-PMH and Hugging Face responses of
tests/feeds.py (the arXiv listings of those weekdays, and Hugging Face's), with Hugging Face answering 503
for a day and a half in the middle (its runs fail and back off, then it catches up), so its chart misses two
listing days; then it indexes what came in. 30 days fill the page's chart. /status is then photographed over
the copy (settings: the defaults, feeds pointed at the recordings); every other page over DATA_DIR itself.
Without the flag, /status shows DATA_DIR's own history.
``--only`` takes a comma-separated list of names (home, search, paper, trending, phone-search, for-you,
library, status, paper-around, search-code, math) to retake just those. paper-around is the page of a
Hugging Face daily paper with its repository (and stars), model, organisation, AI summary and keywords;
search-code a search with "With code" on, whose cards show code and venue badges; math a search whose
titles hold LaTeX math, drawn by the vendored KaTeX (by id: those demo papers).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
QUERY = "speculative decoding"
PAPER = "2606.13681"  # a Hugging Face daily paper with many votes, in the demo data
# a Hugging Face daily paper with code (251 stars), a model, an organisation, an AI summary and keywords
PAPER_AROUND = "2606.13392"
CODE_SEARCH = "/search?q=multimodal+reasoning+has%3Acode"  # the "With code" switch on: code and venue badges
# demo papers whose titles hold LaTeX math ($\pi^2$, $R^2$, Min-$k$, $x_0$, $\mathcal{S}^2$)
MATH_SEARCH = "/search?q=" + "+".join(f"id%3A{i}" for i in ("2604.05114", "2604.18995", "2604.11012",
                                                             "2604.05761", "2604.23296"))
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
MAX_BYTES = 300 * 1024
SHOTS = ("home", "search", "paper", "trending", "phone-search", "for-you", "library", "status",
         "paper-around", "search-code", "math")
OUTAGE = (dt.timedelta(hours=-2), dt.timedelta(hours=34))  # Hugging Face down, around a middle weekday


@contextmanager
def serve(data_dir: Path, settings=None):
    """The app over ``data_dir`` (with ``settings`` when given) on a free localhost port; yields its base
    URL."""
    import uvicorn

    from paperradar.web.app import create_app

    if settings is not None:
        app = create_app(data_dir, settings=settings.replace(rate_limit=0), catch_up=False)
    else:
        app = create_app(data_dir, env={**os.environ, "PAPERRADAR_RATE_LIMIT": "0"})
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 120  # the first start loads the model
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise SystemExit("the server did not start; see the log above")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


LIBRARY = {"decoding": ["speculative decoding", "KV cache compression"],
           "agents": ["web agents benchmark", "tool use language model agents"]}


def demo_session(data_dir: Path, base: str) -> dict:
    """A session cookie for the demo account, whose library holds a few papers per tag."""
    from paperradar import config
    from paperradar.accounts import Accounts
    from paperradar.library import Library
    from paperradar.search import SearchEngine
    from paperradar.store import Store

    with Store.open(data_dir) as store:
        engine = SearchEngine(store)
        user = store.accounts.ensure_user("demo@paperradar.localhost", "2026-06-01T00:00:00Z")
        for tag, queries in LIBRARY.items():
            for q in queries:
                for hit in engine.search(q, limit=2).hits:
                    Library(store).save(user, hit.paper.key, tag)
        token = Accounts(store, config.load(data_dir=data_dir)).start_session(user)
        engine.close()
    return {"name": "paperradar_session", "value": token, "url": base}


def copy_data_dir(src: Path, dst: Path) -> None:
    """``src`` copied to ``dst``: the database through SQLite's backup (consistent even while a server
    writes to it), the rest (index, secret) as files."""
    db = "paperradar.sqlite3"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(f"{db}*", "sync.lock"))
    source, target = sqlite3.connect(f"file:{src / db}?mode=ro", uri=True), sqlite3.connect(dst / db)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()


def simulate_sync(data_dir: Path, days: int, now: dt.datetime):
    """Fill ``data_dir``'s sync history (a copy!): ``paperradar.sync.sync`` of the feeds due, every hour from
    midnight UTC ``days - 1`` days before ``now`` until ``now``, against tests/feeds.py's recorded feeds
    (the weekdays of that span are the arXiv listing days), with Hugging Face down (HTTP 503) for 36 hours,
    from 22:00 UTC before the first Monday to Thursday of the span's second half, so that two days' listings
    come from arXiv alone; then index what came in. Returns the settings the runs used."""
    sys.path.insert(0, str(HERE.parent / "tests"))  # tests/feeds.py: the recorded feeds
    from feeds import HF_URL, OAI_URL, FakeTime, RecordedFeeds, client_factory

    from paperradar import config, sync
    from paperradar.search import SearchEngine
    from paperradar.store import Store

    first = now.date() - dt.timedelta(days=days - 1)
    span = [first + dt.timedelta(days=n) for n in range(days)]
    feeds = RecordedFeeds([d for d in span if d.weekday() < 5])
    settings = config.load(env={}, data_dir=data_dir).replace(arxiv_oai_url=OAI_URL, hf_api_url=HF_URL)
    make_client = client_factory(feeds, FakeTime())
    start = dt.datetime.combine(first, dt.time(), tzinfo=dt.UTC)
    # the outage: two listing days' worth, from the evening before a Monday to Thursday in the middle
    middle = next(d for d in (span[days // 2] + dt.timedelta(days=n) for n in range(7)) if d.weekday() < 4)
    down_from = dt.datetime.combine(middle, dt.time(), tzinfo=dt.UTC) + OUTAGE[0]
    down_until = dt.datetime.combine(middle, dt.time(), tzinfo=dt.UTC) + OUTAGE[1]
    quiet = logging.getLogger("paperradar.sync")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # a failed run is logged as a warning: expected here
    runs: dict[str, int] = {}
    try:
        with Store.open(data_dir) as store:
            moment = start
            while moment <= now:
                feeds.today = moment.date()  # a listing is served from midnight UTC of its day
                feeds.down = {"hf": "503"} if down_from <= moment < down_until else {}
                for run in sync.sync(store, settings, moment, only_due=True, client_factory=make_client).runs:
                    if run.status != "skipped":
                        runs[f"{run.feed} {run.status}"] = runs.get(f"{run.feed} {run.status}", 0) + 1
                moment += dt.timedelta(hours=1)
            categories = sync.followed_categories(store, settings)
            engine = SearchEngine(store)
            try:
                indexed = engine.update()
            finally:
                engine.close()
    finally:
        quiet.setLevel(level)
    print(f"simulated {days} days of sync in {data_dir} (following {', '.join(categories)}): "
          + ", ".join(f"{n} {k}" for k, n in sorted(runs.items())) + f"; indexed {indexed}")
    return settings


def shoot(browser, url: str, path: Path, viewport: dict, is_mobile: bool = False,
          cookie: dict | None = None) -> None:
    context = browser.new_context(viewport=viewport, device_scale_factor=1, is_mobile=is_mobile,
                                  has_touch=is_mobile)
    if cookie:
        context.add_cookies([cookie])
    try:
        page = context.new_page()
        response = page.goto(url, wait_until="load")
        if response is None or not response.ok:
            raise SystemExit(f"{url}: HTTP {response and response.status}")
        page.evaluate("() => document.activeElement && document.activeElement.blur()")  # no focus ring
        page.screenshot(path=str(path), type="png", animations="disabled", caret="hide")
    finally:
        context.close()
    size = path.stat().st_size
    print(f"{path}  {size // 1024} KiB  <- {url}")
    if size > MAX_BYTES:
        print(f"warning: {path.name} is over {MAX_BYTES // 1024} KiB", file=sys.stderr)


def paper_url(browser, base: str, search: str) -> str:
    """The demo paper's page when the data has it, else the first hit of the search. Runs the search
    once on the way, so the screenshot shows a warm query's time, not the first one's."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(base + search)
        response = page.goto(f"{base}/paper/{PAPER}")
        if response is not None and response.ok:
            return page.url
        page.goto(base + search)
        first = page.locator("main .paper .paper-title a").first
        if not first.count():
            raise SystemExit(f"no paper page to show: {PAPER} is not stored and {QUERY!r} finds nothing")
        return base + first.get_attribute("href")
    finally:
        context.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data_dir", nargs="?", default=os.environ.get("PAPERRADAR_DATA_DIR"),
                    help="data directory (default: $PAPERRADAR_DATA_DIR)")
    ap.add_argument("--out", type=Path, default=OUT, help=f"where the PNGs go (default: {OUT})")
    ap.add_argument("--chromium", default=CHROMIUM, help=f"the browser to drive (default: {CHROMIUM})")
    ap.add_argument("--only", default=",".join(SHOTS),
                    help="comma-separated screenshots to take (default: all: %(default)s)")
    ap.add_argument("--simulate-sync", type=int, metavar="DAYS",
                    help="photograph /status over a copy of DATA_DIR given DAYS days (4 to 30) of simulated "
                         "sync history against tests/feeds.py's recorded feeds")
    args = ap.parse_args()
    if not args.data_dir:
        ap.error("give a data directory, or set PAPERRADAR_DATA_DIR")
    data_dir = Path(args.data_dir).expanduser()
    if not (data_dir / "paperradar.sqlite3").exists():
        ap.error(f"{data_dir} holds no paperradar store (run `paperradar ingest demo && paperradar index`)")
    if not Path(args.chromium).exists():
        ap.error(f"no browser at {args.chromium} (Debian: apt-get install chromium)")
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(only) - set(SHOTS))
    if unknown:
        ap.error(f"--only: unknown {', '.join(unknown)} (known: {', '.join(SHOTS)})")
    if args.simulate_sync is not None and not 4 <= args.simulate_sync <= 30:
        ap.error("--simulate-sync takes 4 to 30 days (the status page shows 30)")

    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    search = f"/search?q={QUERY.replace(' ', '+')}"
    with ExitStack() as stack:
        status_dir, status_settings = data_dir, None
        if "status" in only and args.simulate_sync:
            scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix="paperradar-shots-"))
            status_dir = Path(scratch) / "data"
            copy_data_dir(data_dir, status_dir)
            status_settings = simulate_sync(status_dir, args.simulate_sync, dt.datetime.now(dt.UTC))
        p = stack.enter_context(sync_playwright())
        browser = p.chromium.launch(executable_path=args.chromium)
        stack.callback(browser.close)
        if set(only) - {"status"}:
            base = stack.enter_context(serve(data_dir))
            paper = paper_url(browser, base, search)
            pages = {"home": (base + "/", DESKTOP),
                     "search": (base + search, DESKTOP),
                     "paper": (paper, DESKTOP),
                     "trending": (base + "/trending?period=week", DESKTOP),
                     "paper-around": (f"{base}/paper/{PAPER_AROUND}", DESKTOP),
                     "search-code": (base + CODE_SEARCH, DESKTOP),
                     "math": (base + MATH_SEARCH, DESKTOP)}
            for name, (url, viewport) in pages.items():
                if name in only:
                    shoot(browser, url, args.out / f"{name}.png", viewport)
            if "phone-search" in only:
                shoot(browser, base + search, args.out / "phone-search.png", PHONE, is_mobile=True)
            if {"for-you", "library"} & set(only):
                cookie = demo_session(data_dir, base)
                if "for-you" in only:
                    shoot(browser, base + "/for-you?window=all", args.out / "for-you.png", DESKTOP,
                          cookie=cookie)
                if "library" in only:
                    shoot(browser, base + "/library", args.out / "library.png", DESKTOP, cookie=cookie)
        if "status" in only:
            with serve(status_dir, status_settings) as base:
                shoot(browser, base + "/status", args.out / "status.png", DESKTOP)


if __name__ == "__main__":
    main()
