"""Take the README's screenshots of the web app: docs/screenshots/*.png.

Serves the app over DATA_DIR (an ingested and indexed data directory) with uvicorn on a free localhost
port, in a thread, and photographs a few pages with Debian's Chromium through Playwright (no browser
download). Viewport screenshots at 1x, so each file stays small.

    python scripts/screenshots.py [DATA_DIR] [--out docs/screenshots] [--chromium /usr/bin/chromium]

DATA_DIR defaults to $PAPERRADAR_DATA_DIR. The demo data is what the README shows:
`paperradar ingest demo && paperradar index`, plus the Hugging Face daily-papers sample for trending.
The signed-in pages (For you, the library) are those of an account the script makes in DATA_DIR,
demo@paperradar.localhost, whose library holds the first papers found for a few searches.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
QUERY = "speculative decoding"
PAPER = "2606.13681"  # a Hugging Face daily paper with many votes, in the demo data
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
MAX_BYTES = 300 * 1024


@contextmanager
def serve(data_dir: Path):
    """The app over ``data_dir`` on a free localhost port; yields its base URL."""
    import uvicorn

    from paperradar.web.app import create_app

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
    args = ap.parse_args()
    if not args.data_dir:
        ap.error("give a data directory, or set PAPERRADAR_DATA_DIR")
    data_dir = Path(args.data_dir).expanduser()
    if not (data_dir / "paperradar.sqlite3").exists():
        ap.error(f"{data_dir} holds no paperradar store (run `paperradar ingest demo && paperradar index`)")
    if not Path(args.chromium).exists():
        ap.error(f"no browser at {args.chromium} (Debian: apt-get install chromium)")

    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    search = f"/search?q={QUERY.replace(' ', '+')}"
    with serve(data_dir) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium)
        try:
            paper = paper_url(browser, base, search)
            shoot(browser, base + "/", args.out / "home.png", DESKTOP)
            shoot(browser, base + search, args.out / "search.png", DESKTOP)
            shoot(browser, paper, args.out / "paper.png", DESKTOP)
            shoot(browser, base + "/trending?period=week", args.out / "trending.png", DESKTOP)
            shoot(browser, base + search, args.out / "phone-search.png", PHONE, is_mobile=True)
            cookie = demo_session(data_dir, base)
            shoot(browser, base + "/for-you?window=all", args.out / "for-you.png", DESKTOP, cookie=cookie)
            shoot(browser, base + "/library", args.out / "library.png", DESKTOP, cookie=cookie)
        finally:
            browser.close()


if __name__ == "__main__":
    main()
