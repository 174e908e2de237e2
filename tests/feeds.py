"""Recorded feeds: arXiv's OAI-PMH interface and Hugging Face's daily papers, simulated over days from real
recorded responses, for the sync tests (a test helper module, like tests/mailsink.py).

:class:`RecordedFeeds` is an ``httpx.MockTransport`` handler (``feeds.handler``) and, through :func:`serve`,
a real local HTTP server for a subprocess. A test moves the simulated day on (``feeds.today``); each source
only shows what was listed by then.

Provenance (no network; nothing invented but the calendar):

- **Metadata**: the real arXiv records of ``fixtures/corpus_jsonl/arxiv-119k.head.jsonl.gz`` (its 190
  ``listing_date`` lines: ids, titles, abstracts, authors, categories, comments; CC0, see that folder's
  PROVENANCE.md). All were listed on 2025-03-18; here they are spread round-robin over the simulated
  listing days, and each gets the header datestamp of its simulated day and ``<created>`` the day before.
- **OAI-PMH shape**: copied from the recorded hepcrawl ListRecords responses in
  ``fixtures/oai/hepcrawl/`` (``functional__arxiv__fixtures__http_server__records__arxiv-physics-hep-th.xml``:
  the ``OAI-PMH`` envelope with ``responseDate`` and ``request``, ``<record>`` with a ``header`` of
  ``identifier`` ``oai:arXiv.org:<id>``, ``datestamp``, ``setSpec``, and ``metadata`` holding
  ``<arXiv xmlns="http://arxiv.org/OAI/arXiv/">`` with ``id``, ``created``, ``authors/author/keyname,
  forenames``, ``title``, ``categories``, ``comments``, ``license``, ``abstract``). Those files carry no
  resumptionToken; paging follows OAI-PMH 2.0 §3.5 (``completeListSize``, ``cursor``, an empty token on the
  last page) and errors §3.6 (``noRecordsMatch``, ``badResumptionToken``, ``badArgument``).
- **Hugging Face**: the items of ``fixtures/hf_daily_papers/sotawhat_hf_daily_papers.json`` (a recorded
  ``/api/daily_papers`` response, 30 items), six per listing day, kept whole but re-dated to that day
  (``paper.publishedAt`` midnight UTC of the day, the item's ``publishedAt`` 4 hours earlier, as recorded;
  ``paper.submittedOnDailyAt`` that day). Five of the six take the id, title, summary and authors of one of
  that day's arXiv papers (as HF copies them from arXiv), so the sources merge; the sixth keeps its own
  paper (one arXiv does not list in the followed categories). Votes grow with the days since listing by
  a fixed amount per slot (slot 0 never grows, slot 1 grows fastest), comments by one a day.
"""

from __future__ import annotations

import copy
import datetime as dt
import gzip
import html
import json
import threading
import time
from collections import Counter
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

FIXTURES = Path(__file__).parent / "fixtures"
CORPUS = FIXTURES / "corpus_jsonl" / "arxiv-119k.head.jsonl.gz"
HF_DAILY = FIXTURES / "hf_daily_papers" / "sotawhat_hf_daily_papers.json"
OAI_URL = "http://oai.test/oai"
HF_URL = "http://hf.test/api/daily_papers"
HF_PER_DAY = 6
HF_MERGED = 5  # of HF_PER_DAY: those that are one of the day's arXiv papers
GROWTH = (0, 9, 3, 1, 5, 2)  # votes a day, per slot of a day's HF listing

ENVELOPE = """<?xml version="1.0" encoding="UTF-8"?>
<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" \
xsi:schemaLocation="http://www.openarchives.org/OAI/2.0/ http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd">
<responseDate>{now}</responseDate>
<request{attrs}>http://export.arxiv.org/oai2</request>
{body}
</OAI-PMH>
"""

RECORD = """<record>
<header>
 <identifier>oai:arXiv.org:{id}</identifier>
 <datestamp>{datestamp}</datestamp>
{setspecs}
</header>
<metadata>
 <arXiv xmlns="http://arxiv.org/OAI/arXiv/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" \
xsi:schemaLocation="http://arxiv.org/OAI/arXiv/ http://arxiv.org/OAI/arXiv.xsd">
 <id>{id}</id><created>{created}</created><authors>{authors}</authors><title>{title}</title>\
<categories>{categories}</categories>{comments}\
<license>http://arxiv.org/licenses/nonexclusive-distrib/1.0/</license><abstract>{abstract}</abstract></arXiv>
</metadata>
</record>"""

GROUPED = ("cs", "stat", "math", "eess", "econ", "q-bio", "q-fin")  # sets group:archive:sub


def listing_days(first: dt.date, n: int) -> list[dt.date]:
    """``n`` arXiv listing days from ``first`` on: Monday to Friday (UTC) — the announcements of Sunday to
    Thursday at 20:00 US Eastern, which is midnight UTC while daylight saving time is on."""
    out, day = [], first
    while len(out) < n:
        if day.weekday() < 5:
            out.append(day)
        day += dt.timedelta(days=1)
    return out


def load_corpus() -> list[dict]:
    """The real records of the corpus head that have a listing date (190, mostly cs.CV)."""
    with gzip.open(CORPUS, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    return [r for r in rows if r.get("listing_date")]


def set_matches(set_spec: str, categories: list[str]) -> bool:
    """Whether a paper with ``categories`` is in OAI set ``set_spec`` (cs, cs:cs:CL, physics:hep-th)."""
    parts = set_spec.split(":")
    if len(parts) == 3:
        _, archive, sub = parts
        wanted = f"{archive}.{sub}"
        return wanted in categories
    if len(parts) == 2:
        return any(c == parts[1] or c.startswith(parts[1] + ".") for c in categories)
    return any(c.split(".")[0] == parts[0] for c in categories)


def setspecs_of(categories: list[str]) -> list[str]:
    out = []
    for c in categories:
        archive, _, sub = c.partition(".")
        if archive in GROUPED and sub:
            spec = f"{archive}:{archive}:{sub}"
            if spec not in out:
                out.append(spec)
    return out


class RecordedFeeds:
    """Both sources over a few simulated listing days. Attributes a test sets:

    - ``today``: the simulated day; papers (and HF listings) of later days are not served yet;
    - ``down``: {"arxiv" | "hf": "503" | "connect"} makes that source answer HTTP 503 / refuse connections;
    - ``page_size``: OAI records per ListRecords page;
    - ``block_at``: the n-th request (all endpoints, 1-based) waits until ``unblock`` is set (a real server
      only), after setting ``blocked``.

    What it saw: ``counts`` (requests per endpoint, failed ones included), ``log`` ([(endpoint, params)]).
    """

    def __init__(self, days: list[dt.date], page_size: int = 25, papers: list[dict] | None = None):
        self.days = list(days)
        self.today = self.days[0]
        self.page_size = page_size
        self.down: dict[str, str] = {}
        self.counts: Counter = Counter()
        self.log: list[tuple[str, dict]] = []
        self.block_at: int | None = None
        self.blocked = threading.Event()
        self.unblock = threading.Event()
        self._lock = threading.Lock()
        rows = papers if papers is not None else load_corpus()
        # paper id -> (record, listing day); round-robin keeps each day a mix of the corpus
        self.papers: dict[str, dict] = {}
        self.day_of: dict[str, dt.date] = {}
        for i, row in enumerate(rows):
            self.papers[row["id"]] = row
            self.day_of[row["id"]] = self.days[i % len(self.days)]
        with open(HF_DAILY, encoding="utf-8") as f:
            self.hf_items: list[dict] = json.load(f)
        self.hf_of_day: dict[dt.date, list[tuple[dict, str | None]]] = {}
        for k, day in enumerate(self.days):
            templates = self.hf_items[(k * HF_PER_DAY) % len(self.hf_items):][:HF_PER_DAY]
            # slot 0 (never grows) gets the template with the most votes, slot 1 (grows fastest) the least,
            # so that slot 1 overtakes slot 0 after a few days of refreshed votes
            templates = sorted(templates, key=lambda t: (-t["paper"]["upvotes"], t["paper"]["id"]))
            templates = [templates[0], templates[-1], *templates[1:-1]]
            ids = sorted(pid for pid, d in self.day_of.items() if d == day)[:HF_MERGED]
            self.hf_of_day[day] = [(t, ids[j] if j < len(ids) else None) for j, t in enumerate(templates)]

    # -- what the simulation holds ------------------------------------------------------------------------
    def listed(self, until: dt.date | None = None) -> list[str]:
        """arXiv ids listed on or before ``until`` (default: today), in id order."""
        until = until or self.today
        return sorted(pid for pid, d in self.day_of.items() if d <= until)

    def on_day(self, day: dt.date) -> list[str]:
        return sorted(pid for pid, d in self.day_of.items() if d == day)

    def in_set(self, set_spec: str, until: dt.date | None = None) -> list[str]:
        return [pid for pid in self.listed(until) if set_matches(set_spec, self.papers[pid]["categories"])]

    def hf_ids(self, day: dt.date) -> list[str]:
        """The arXiv ids of ``day``'s HF listing, slot by slot (HF-only papers keep their own id)."""
        return [pid or t["paper"]["id"] for t, pid in self.hf_of_day.get(day, [])]

    def upvotes(self, day: dt.date, slot: int, as_of: dt.date | None = None) -> int:
        """The votes of slot ``slot`` of ``day``'s HF listing as served on ``as_of`` (default: today)."""
        template, _ = self.hf_of_day[day][slot]
        age = max(((as_of or self.today) - day).days, 0)
        return template["paper"]["upvotes"] + GROWTH[slot % len(GROWTH)] * age

    # -- serving ------------------------------------------------------------------------------------------
    def handler(self, request: httpx.Request) -> httpx.Response:
        """The httpx.MockTransport handler: routes by path (…/oai, …/daily_papers)."""
        path = request.url.path
        endpoint = "arxiv" if path.endswith("/oai") else "hf" if path.endswith("/daily_papers") else "other"
        params = dict(request.url.params)
        with self._lock:
            self.counts[endpoint] += 1
            self.log.append((endpoint, params))
            n = sum(self.counts.values())
        if self.block_at is not None and n == self.block_at:
            self.blocked.set()
            self.unblock.wait(60)
        down = self.down.get(endpoint)
        if down == "connect":
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        if down == "503":
            return httpx.Response(503, headers={"Retry-After": "1"}, text="Service Unavailable")
        if endpoint == "arxiv":
            return self._oai(params)
        if endpoint == "hf":
            return self._hf(params)
        return httpx.Response(404, text="not found")

    def _oai(self, params: dict) -> httpx.Response:
        verb = params.get("verb")
        attrs = "".join(f' {k}="{html.escape(v)}"' for k, v in params.items())
        if verb != "ListRecords":
            return self._oai_error(attrs, "badVerb", f"Illegal verb {verb}")
        token = params.get("resumptionToken")
        if token is not None:
            if set(params) != {"verb", "resumptionToken"}:
                return self._oai_error(attrs, "badArgument", "resumptionToken is an exclusive argument")
            try:
                query = json.loads(bytes.fromhex(token))
                set_spec, frm, until, cursor = query["set"], query["from"], query["until"], query["cursor"]
            except (ValueError, KeyError, TypeError):
                return self._oai_error(attrs, "badResumptionToken", f"bad token {token[:40]}")
        else:
            if params.get("metadataPrefix") != "arXiv":
                return self._oai_error(attrs, "cannotDisseminateFormat", "only arXiv here")
            set_spec, frm, until, cursor = params.get("set"), params.get("from"), params.get("until"), 0
        ids = [pid for pid in self.listed()
               if (set_spec is None or set_matches(set_spec, self.papers[pid]["categories"]))
               and (frm is None or self.day_of[pid].isoformat() >= frm)
               and (until is None or self.day_of[pid].isoformat() <= until)]
        if not ids:
            return self._oai_error(attrs, "noRecordsMatch", "The combination of the values of the from, "
                                   "until, set and metadataPrefix arguments results in an empty list.")
        page = ids[cursor:cursor + self.page_size]
        records = "\n".join(self._record(pid) for pid in page)
        if cursor + self.page_size < len(ids):
            nxt = json.dumps({"set": set_spec, "from": frm, "until": until,
                              "cursor": cursor + self.page_size})
            token_el = (f'<resumptionToken cursor="{cursor}" completeListSize="{len(ids)}">'
                        f"{nxt.encode().hex()}</resumptionToken>")
        elif cursor:
            token_el = f'<resumptionToken cursor="{cursor}" completeListSize="{len(ids)}"></resumptionToken>'
        else:
            token_el = ""  # a complete list in one response carries no token
        body = f"<ListRecords>\n{records}\n{token_el}\n</ListRecords>"
        return self._xml(ENVELOPE.format(now=self._now(), attrs=attrs, body=body))

    def _record(self, pid: str) -> str:
        row = self.papers[pid]
        day = self.day_of[pid]
        authors = "".join(
            f"<author><keyname>{html.escape(last)}</keyname><forenames>{html.escape(first)}</forenames></author>"
            if first else f"<author><keyname>{html.escape(last)}</keyname></author>"
            for first, _, last in (name.rpartition(" ") for name in row.get("authors") or []))
        comment = row.get("comment")
        return RECORD.format(
            id=pid, datestamp=day.isoformat(), created=(day - dt.timedelta(days=1)).isoformat(),
            setspecs="\n".join(f" <setSpec>{s}</setSpec>" for s in setspecs_of(row["categories"])),
            authors=authors, title=html.escape(row["title"]), categories=" ".join(row["categories"]),
            comments=f"<comments>{html.escape(comment)}</comments>" if comment else "",
            abstract=html.escape(row["abstract"]))

    def _oai_error(self, attrs: str, code: str, message: str) -> httpx.Response:
        body = f'<error code="{code}">{html.escape(message)}</error>'
        attrs = attrs if code != "badVerb" else ""  # OAI-PMH 3.6: no request attributes for a bad verb
        return self._xml(ENVELOPE.format(now=self._now(), attrs=attrs, body=body))

    def _now(self) -> str:
        return f"{self.today.isoformat()}T12:00:00Z"

    @staticmethod
    def _xml(text: str) -> httpx.Response:
        return httpx.Response(200, content=text.encode(), headers={"Content-Type": "text/xml;charset=UTF-8"})

    def _hf(self, params: dict) -> httpx.Response:
        try:
            day = dt.date.fromisoformat(params["date"])
        except (KeyError, ValueError):
            return httpx.Response(400, json={"error": "date must be YYYY-MM-DD"})
        if day > self.today:
            return httpx.Response(200, json=[])  # HF answers a future day with an empty list
        out = []
        for slot, (template, pid) in enumerate(self.hf_of_day.get(day, [])):
            item = copy.deepcopy(template)
            paper = item["paper"]
            if pid is not None:
                row = self.papers[pid]
                paper["id"], paper["title"], paper["summary"] = pid, row["title"], row["abstract"]
                paper["authors"] = [{"name": a, "hidden": False} for a in row.get("authors") or []]
                item["title"], item["summary"] = row["title"], row["abstract"]
                item["thumbnail"] = f"https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/{pid}.png"
            midnight = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
            paper["publishedAt"] = _js(midnight)
            paper["submittedOnDailyAt"] = _js(midnight + dt.timedelta(hours=9))
            item["publishedAt"] = _js(midnight - dt.timedelta(hours=4))
            paper["upvotes"] = self.upvotes(day, slot)
            item["numComments"] = template["numComments"] + max((self.today - day).days, 0)
            out.append(item)
        return httpx.Response(200, json=out[: int(params.get("limit", 100))])

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)


def _js(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


class FakeTime:
    """A clock and a sleep for PoliteClient: sleeping moves the clock, nothing waits; ``slept`` adds up."""

    def __init__(self):
        self.now = 0.0
        self.slept = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


def client_factory(feeds: RecordedFeeds, fake: FakeTime | None = None):
    """A ``client_factory`` for paperradar.sync: PoliteClients over ``feeds`` that never really wait."""
    from paperradar.http import PoliteClient

    fake = fake or FakeTime()

    def make(min_interval: float) -> PoliteClient:
        return PoliteClient(min_interval=min_interval, transport=feeds.transport(), sleep=fake.sleep,
                            clock=fake.clock)

    return make


@contextmanager
def serve(feeds: RecordedFeeds):
    """``feeds`` behind a real HTTP server on localhost (a thread); yields its base URL (``/oai`` and
    ``/api/daily_papers`` under it)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            url = f"http://127.0.0.1:{self.server.server_address[1]}{self.path}"
            try:
                response = feeds.handler(httpx.Request("GET", url))
            except httpx.ConnectError:
                self.close_connection = True
                return  # closing without an answer is the nearest a live server gets
            try:
                self.send_response(response.status_code)
                for name in ("Content-Type", "Retry-After"):
                    if name in response.headers:
                        self.send_header(name, response.headers[name])
                self.send_header("Content-Length", str(len(response.content)))
                self.end_headers()
                self.wfile.write(response.content)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client was killed while this request waited

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="recorded-feeds", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        feeds.unblock.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def wait_until(condition, timeout: float = 30.0, every: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return condition()
