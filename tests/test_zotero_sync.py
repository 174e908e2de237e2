"""Two-way sync of a tag with a Zotero collection (paperradar.zotero), against recorded Zotero API responses
(tests/fixtures/zotero_api, from pyzotero's tests) served by a stand-in of the API: through httpx's
MockTransport for the core, and through a real local HTTP server for the web app end to end."""

from __future__ import annotations

import copy
import json
import logging
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from paperradar import config
from paperradar.accounts import Accounts
from paperradar.clock import stamp
from paperradar.http import PoliteClient
from paperradar.library import Library
from paperradar.models import Paper
from paperradar.store import Store
from paperradar.zotero import ZoteroError, ZoteroSync, identifiers_of, plan, state_key

FIXTURES = Path(__file__).parent / "fixtures" / "zotero_api"
KEY = "P9NiFoyLeZu2bZNvvuQPDWsd"  # made up, in the form of Zotero's keys
LIBRARY = "users/475425"  # the recorded library
COLLECTION = "9KH9TNSJ"  # its "Sherlock Holmes" collection, holding every recorded item
LATER = "X42A7DEE"  # the recorded item the tests add "in Zotero" after the first sync
BASE = "https://api.zotero.org"


def recorded(name: str):
    return json.loads((FIXTURES / f"pyzotero_{name}.json").read_text())


class FakeZotero:
    """Zotero's web API for one library, as much as the sync uses, answering with the recorded objects and the
    headers the API documents (see PROVENANCE.md). ``faults`` are answers (or actions) given first to the
    requests they match; ``log`` keeps every request as (method, path, query, headers, body bytes)."""

    def __init__(self):
        self.version = 1  # the recorded objects are all at version 1
        self.key = KEY
        self.items = {o["key"]: o for o in recorded("items_doc") if o["key"] != LATER}
        self.collections = recorded("collections_doc")
        self.faults: list[tuple[str, str, object]] = []  # (method, path regex, response or callable)
        self.backoff_next: str | None = None
        self.log: list[tuple[str, str, dict, dict, bytes]] = []
        self.made = 0
        self.lock = threading.Lock()

    # what people do in Zotero meanwhile
    def add_in_zotero(self, obj: dict) -> None:
        self.version += 1
        obj = copy.deepcopy(obj)
        obj["version"] = obj["data"]["version"] = self.version
        obj["data"].setdefault("collections", [])
        if COLLECTION not in obj["data"]["collections"]:
            obj["data"]["collections"].append(COLLECTION)
        self.items[obj["key"]] = obj

    def uncollect_in_zotero(self, key: str) -> None:
        self.version += 1
        data = self.items[key]["data"]
        data["collections"] = [c for c in data["collections"] if c != COLLECTION]
        self.items[key]["version"] = data["version"] = self.version

    def in_collection(self) -> dict[str, dict]:
        return {k: o for k, o in self.items.items() if COLLECTION in o["data"].get("collections", [])}

    # the API
    def answer(self, method: str, path: str, query: dict, headers: dict, body: bytes):
        headers = {k.lower(): v for k, v in headers.items()}
        with self.lock:
            self.log.append((method, path, query, headers, body))
            return self._answer(method, path, query, headers, body)

    def _json(self, value, status=200, **headers):
        h = {"Content-Type": "application/json", "Last-Modified-Version": str(self.version), **headers}
        if self.backoff_next:
            h["Backoff"], self.backoff_next = self.backoff_next, None
        return status, h, json.dumps(value).encode()

    def _answer(self, method, path, query, headers, body):
        if headers.get("zotero-api-key") != self.key:
            return 403, {"Content-Type": "text/plain"}, b"Forbidden"
        for i, (m, pattern, fault) in enumerate(self.faults):
            if m == method and re.fullmatch(pattern, path):
                del self.faults[i]
                if callable(fault):
                    fault(self)
                    break
                return fault
        if not path.startswith(f"/{LIBRARY}/"):
            return 404, {}, b"Not found"
        path = path[len(LIBRARY) + 1:]
        if method == "GET" and path == "/collections":
            return self._json(self.collections, **{"Total-Results": str(len(self.collections))})
        if method == "GET" and path == f"/collections/{COLLECTION}/items/top":
            assert query.get("format") == "versions"
            since = headers.get("if-modified-since-version")
            if since and int(since) >= self.version:
                return 304, {"Last-Modified-Version": str(self.version)}, b""
            return self._json({k: o["version"] for k, o in self.in_collection().items()})
        if method == "GET" and path == "/items":
            keys = query["itemKey"].split(",")
            return self._json([self.items[k] for k in keys if k in self.items])
        if method == "POST" and path == "/items":
            if int(headers["if-unmodified-since-version"]) != self.version:
                return 412, {"Last-Modified-Version": str(self.version)}, b"Library has been modified"
            self.version += 1
            answer = recorded("creation_doc")
            answer["success"] = {}
            for i, data in enumerate(json.loads(body)):
                self.made += 1
                key = f"NEW{self.made:05d}"
                self.items[key] = {"key": key, "version": self.version,
                                   "data": {"key": key, "version": self.version, **data}}
                answer["success"][str(i)] = key
            return self._json(answer)
        if method == "PATCH" and path.startswith("/items/"):
            obj = self.items[path.split("/")[-1]]
            if int(headers["if-unmodified-since-version"]) != obj["version"]:
                return 412, {"Last-Modified-Version": str(self.version)}, b"Item has been modified"
            self.version += 1
            obj["data"].update(json.loads(body))
            obj["version"] = obj["data"]["version"] = self.version
            return 204, {"Last-Modified-Version": str(self.version)}, b""
        return 404, {}, b"Not found"

    def __call__(self, request: httpx.Request) -> httpx.Response:  # an httpx.MockTransport handler
        status, headers, body = self.answer(request.method, request.url.path, dict(request.url.params),
                                            dict(request.headers), request.content)
        return httpx.Response(status, headers=headers, content=body)

    def requests(self, method: str) -> list:
        return [r for r in self.log if r[0] == method]


class FakeTime:
    def __init__(self):
        self.now, self.sleeps = 1000.0, []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


PAPERS = [
    Paper(title="Attention Is All You Need", source="test", arxiv_id="1706.03762",
          authors=["Ashish Vaswani", "Noam Shazeer", "Niki Parmar"], categories=["cs.CL", "cs.LG"],
          submitted="2017-06-12", abstract="The dominant sequence transduction models are based on complex "
                                           "recurrent or convolutional neural networks."),
    # the store's forms of three recorded items: matched by DOI, by DOI, and by title
    Paper(title="Biscrolling Nanotube Sheets and Functional Guests into Yarns", source="test",
          doi="10.1126/science.1195912", authors=["Márcio D. Lima"], submitted="2011-01-07"),
    Paper(title="Sherlock Holmes in Babylon", source="test", doi="10.2307/2321200",
          authors=["R. Creighton Buck"], submitted="1980-05-01"),
    Paper(title=recorded("item_doc")["data"]["title"], source="test", submitted="1993-01-01"),
]


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "paperradar.sqlite3") as s:
        s.upsert_papers(PAPERS)
        yield s


@pytest.fixture
def user(store):
    return store.accounts.ensure_user("ada@example.org", stamp())


def syncer(store, fake, time=None) -> ZoteroSync:
    time = time or FakeTime()
    return ZoteroSync(store, BASE, client_factory=lambda: PoliteClient(
        min_interval=0.0, transport=httpx.MockTransport(fake), sleep=time.sleep, clock=time.clock))


def tag_keys(store, user, tag="zotero") -> set[str]:
    return {i.paper.key for i in Library(store).items(user, tag)}


def connected(store, user, fake, time=None) -> ZoteroSync:
    z = syncer(store, fake, time)
    Library(store).save(user, "1706.03762", "zotero")
    z.connect(user, api_key=KEY, library_type="users", library_id="475425", collection="Sherlock Holmes",
              tag="zotero")
    return z


def test_first_sync_goes_both_ways_and_the_second_is_a_304(store, user):
    fake = FakeZotero()
    z = connected(store, user, fake)
    report = z.sync(user)
    assert (report.created, report.added, report.removed, report.uncollected) == (1, 2, 0, 0)
    # the two recorded articles this server has joined the tag; the local preprint became an item
    assert tag_keys(store, user) == {"1706.03762", "doi:10.1126/science.1195912", "doi:10.2307/2321200"}
    assert len(report.unmatched) == 17 and "HowStuffWorks \"How Earthquakes Work\"" in report.unmatched
    made = fake.items["NEW00001"]["data"]
    assert made["extra"] == "arXiv:1706.03762 [cs]" and made["collections"] == [COLLECTION]
    # nothing changed: one conditional request, answered 304, and no write
    fake.log.clear()
    again = z.sync(user)
    assert (again.created, again.added, again.removed, again.uncollected) == (0, 0, 0, 0)
    [(method, path, _, headers, _)] = fake.log
    assert (method, path) == ("GET", f"/{LIBRARY}/collections/{COLLECTION}/items/top")
    assert headers["if-modified-since-version"] == str(fake.version)
    assert z.connection(user)["report"]["items"] == 20


def test_an_item_added_in_zotero_arrives_in_the_tag(store, user):
    fake = FakeZotero()
    z = connected(store, user, fake)
    z.sync(user)
    fake.add_in_zotero(recorded("item_doc"))
    fake.log.clear()
    report = z.sync(user)
    assert report.added == 1 and report.created == 0
    titles = {i.paper.title for i in Library(store).items(user, "zotero")}
    assert recorded("item_doc")["data"]["title"] in titles
    # incremental: only the new item's data was asked for
    [get_items] = [r for r in fake.requests("GET") if r[1].endswith("/items")]
    assert get_items[2]["itemKey"] == LATER


def test_a_paper_saved_locally_is_created_remotely_exact_bytes(store, user):
    fake = FakeZotero()
    z = connected(store, user, fake)
    z.sync(user)
    [(_, path, _, headers, body)] = fake.requests("POST")
    assert path == f"/{LIBRARY}/items"
    assert body == (
        b'[{"itemType":"preprint","title":"Attention Is All You Need","creators":['
        b'{"creatorType":"author","firstName":"Ashish","lastName":"Vaswani"},'
        b'{"creatorType":"author","firstName":"Noam","lastName":"Shazeer"},'
        b'{"creatorType":"author","firstName":"Niki","lastName":"Parmar"}],'
        b'"abstractNote":"The dominant sequence transduction models are based on complex recurrent or '
        b'convolutional neural networks.","date":"2017-06-12","repository":"arXiv",'
        b'"archiveID":"arXiv:1706.03762","DOI":"10.48550/arXiv.1706.03762",'
        b'"url":"https://arxiv.org/abs/1706.03762","extra":"arXiv:1706.03762 [cs]",'
        b'"tags":[],"collections":["9KH9TNSJ"],"relations":{}}]')
    assert headers["zotero-api-version"] == "3" and headers["content-type"] == "application/json"
    assert headers["if-unmodified-since-version"] == "1"
    assert re.fullmatch("[0-9a-f]{32}", headers["zotero-write-token"])
    # what was written reads back as the same paper (the import's matcher)
    assert identifiers_of(json.loads(body)[0])[0] == "1706.03762"


def test_removals_go_both_ways(store, user):
    fake = FakeZotero()
    z = connected(store, user, fake)
    z.sync(user)
    Library(store).unsave(user, "doi:10.1126/science.1195912", "zotero")  # taken out here
    fake.uncollect_in_zotero("PQKBRC33")  # "Sherlock Holmes in Babylon" taken out in Zotero
    report = z.sync(user)
    assert (report.uncollected, report.removed) == (1, 1)
    assert tag_keys(store, user) == {"1706.03762"}
    # out of the collection, still in the library
    assert "33TK9NH9" in fake.items and COLLECTION not in fake.items["33TK9NH9"]["data"]["collections"]
    assert fake.items["33TK9NH9"]["data"]["collections"] == ["BX9965IJ"]
    [(_, path, _, headers, body)] = fake.requests("PATCH")
    assert path.endswith("/items/33TK9NH9") and body == b'{"collections":["BX9965IJ"]}'
    assert headers["if-unmodified-since-version"] == "1"


def test_a_412_is_resolved_by_reading_again(store, user):
    fake = FakeZotero()
    z = connected(store, user, fake)

    def someone_adds_an_item(f: FakeZotero):  # between the sync's read and its write
        f.add_in_zotero(recorded("item_doc"))

    fake.faults.append(("POST", r".*/items", someone_adds_an_item))
    report = z.sync(user)
    assert report.rounds == 2
    posts = fake.requests("POST")
    assert [p[3]["if-unmodified-since-version"] for p in posts] == ["1", "2"]  # refused, then after reading
    assert report.created == 1 and report.added == 3  # the item added meanwhile came in too
    assert sum(1 for o in fake.items.values() if o["data"].get("archiveID") == "arXiv:1706.03762") == 1

    # an item changed between its read and the PATCH: read again, then patched on the new version
    Library(store).unsave(user, "doi:10.2307/2321200", "zotero")

    def someone_edits(f: FakeZotero):
        f.version += 1
        f.items["PQKBRC33"]["data"]["tags"] = [{"tag": "edited meanwhile"}]
        f.items["PQKBRC33"]["version"] = f.items["PQKBRC33"]["data"]["version"] = f.version

    fake.faults.append(("PATCH", r".*/items/PQKBRC33", someone_edits))
    fake.log.clear()
    report = z.sync(user)
    assert report.uncollected == 1
    assert fake.items["PQKBRC33"]["data"]["collections"] == []
    assert fake.items["PQKBRC33"]["data"]["tags"] == [{"tag": "edited meanwhile"}]  # their edit is kept
    assert len(fake.requests("PATCH")) == 2


def test_429_retry_after_and_backoff_are_honoured(store, user):
    fake, time = FakeZotero(), FakeTime()
    z = connected(store, user, fake, time)
    fake.faults.append(("GET", r".*/items/top", (429, {"Retry-After": "7"}, b"Too Many Requests")))
    fake.faults.append(("GET", r".*/items/top", (503, {"Retry-After": "11"}, b"Service Unavailable")))
    fake.backoff_next = "5"  # on the answer that gets through: the next request waits 5 s
    fake.log.clear()
    report = z.sync(user)
    assert report.created == 1
    # Retry-After is the least wait (the client's own backoff may ask for more); Backoff holds the next
    # request back
    assert time.sleeps[0] == 7.0 and time.sleeps[1] >= 11.0 and time.sleeps[2] == 5.0
    assert len(time.sleeps) == 3
    paths = [r[1] for r in fake.log]
    assert paths[:3] == [f"/{LIBRARY}/collections/{COLLECTION}/items/top"] * 3 and len(paths) == 5


def test_a_refused_key_is_reported_and_nothing_is_lost(store, user, caplog):
    caplog.set_level(logging.DEBUG)
    fake = FakeZotero()
    z = connected(store, user, fake)
    z.sync(user)
    before_tag, before_state = tag_keys(store, user), store.get_state(state_key(user.id))
    fake.key = "revoked"
    with pytest.raises(ZoteroError, match="refused the API key") as e:
        z.sync(user)
    assert KEY not in str(e.value) and KEY not in (e.value.hint or "")
    assert tag_keys(store, user) == before_tag and len(fake.items) == 20
    after = store.get_state(state_key(user.id))
    assert {k: after[k] for k in ("items", "papers", "version")} == \
        {k: before_state[k] for k in ("items", "papers", "version")}
    shown = z.connection(user)
    assert "refused the API key" in shown["last_error"] and KEY not in json.dumps(shown)
    # a bad key on the form saves nothing: the old settings stay
    with pytest.raises(ZoteroError, match="refused"):
        z.connect(user, api_key="Wrong0000000000000000000", library_type="users", library_id="475425",
                  collection="LoC", tag="zotero")
    assert store.get_state(state_key(user.id))["collection"] == COLLECTION
    assert KEY not in caplog.text


def test_plan_is_a_three_way_merge():
    # first sync: the union
    p = plan(set(), {1, 2}, {}, {"A": 2, "B": 3, "C": None})
    assert (p.create, p.add, p.remove, p.uncollect) == ([1], [3], [], [])
    # a removal on either side is made on the other; a removal wins over a re-add
    p = plan({1, 2, 3}, {1, 2}, {"A": 1, "B": 2, "C": 3}, {"A": 1, "C": 3, "D": 3})
    assert (p.create, p.add, p.remove, p.uncollect) == ([], [], [2], ["C", "D"])


def test_account_deletion_forgets_the_key(store, user, tmp_path):
    connected(store, user, FakeZotero())
    assert store.get_state(state_key(user.id))
    Accounts(store, config.load(env={}, data_dir=tmp_path)).delete(user)
    assert store.get_state(state_key(user.id)) is None


# -- end to end: the web app, and the API stand-in on a real local HTTP server -------------------------------
@pytest.fixture
def zotero_server():
    fake = FakeZotero()

    class Handler(BaseHTTPRequestHandler):
        def _any(self):
            url = urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, headers, content = fake.answer(self.command, url.path, dict(parse_qsl(url.query)),
                                                   dict(self.headers), body)
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_POST = do_PATCH = _any

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_end_to_end_settings_sync_and_a_refused_key(data, shared_engine, zotero_server, caplog):
    from webclient import close, csrf, make_client

    from paperradar.web.deps import SESSION_COOKIE

    caplog.set_level(logging.DEBUG)
    fake, base = zotero_server
    pages = []
    with make_client(data, shared_engine, {"PAPERRADAR_ZOTERO_API_URL": base}) as client:
        store = client.app.state.services.store
        store.upsert_papers(PAPERS)
        a = Accounts(store, client.app.state.services.settings)
        me = store.accounts.ensure_user("ada@example.org", stamp())
        client.cookies.set(SESSION_COOKIE, a.start_session(me))
        token = csrf(client, "/settings/zotero")
        r = client.post("/papers/1706.03762/save", data={"tag": "zotero", "csrf_token": token})
        assert r.status_code in (200, 303)
        form = {"api_key": KEY, "library_type": "users", "library_id": "475425",
                "collection": "Sherlock Holmes", "tag": "zotero", "csrf_token": token}
        r = client.post("/settings/zotero", data=form)
        pages.append(r.text)
        assert r.status_code == 200 and "Saved." in r.text and "…DWsd" in r.text
        assert 'name="api_key"' in r.text and f'value="{KEY}"' not in r.text
        r = client.post("/settings/zotero/sync", data={"csrf_token": token})
        pages.append(r.text)
        assert r.status_code == 200 and "1 created in Zotero" in r.text and "2 saved into the tag" in r.text
        [(_, _, _, headers, body)] = fake.requests("POST")  # over a real socket
        assert json.loads(body)[0]["archiveID"] == "arXiv:1706.03762" and headers["zotero-api-key"] == KEY
        fake.key = "revoked"
        r = client.post("/settings/zotero/sync", data={"csrf_token": token})
        pages.append(r.text)
        assert r.status_code == 502 and "refused the API key" in r.text
        settings = client.get("/settings")
        pages.append(settings.text)
        assert "The last Zotero sync failed: Zotero refused the API key" in settings.text
        library = client.get("/library?tag=zotero")
        pages.append(library.text)
        assert "Sherlock Holmes in Babylon" in library.text and "Attention Is All You Need" in library.text
        # a wrong key on the form: explained, nothing saved, the key not written back
        r = client.post("/settings/zotero", data={**form, "api_key": "Wrong0000000000000000000",
                                                  "collection": "LoC"})
        pages.append(r.text)
        assert r.status_code == 502 and "refused the API key" in r.text and "Wrong0000" not in r.text
        assert store.get_state(state_key(me.id))["collection"] == COLLECTION
    close(client)
    for page in pages:
        assert KEY not in page
    assert KEY not in caplog.text


def test_the_schedule_syncs_each_connected_library_when_due(store, user):
    """The radar's cycle keeps a tag in step by itself: a library is synced when its last attempt is
    `zotero_sync_min` old, not before; a refused one is counted and the others go on."""
    import datetime as dt

    fake = FakeZotero()
    z = connected(store, user, fake)
    every = dt.timedelta(minutes=60)
    start = dt.datetime(2026, 11, 29, 8, 0, tzinfo=dt.UTC)
    assert z.sync_due(every, start) == {"synced": 1, "failed": 0, "skipped": 0}
    assert "1706.03762" in tag_keys(store, user) and "NEW00001" in fake.items
    fake.add_in_zotero(recorded("item_doc"))
    before = tag_keys(store, user)
    assert z.sync_due(every, start + dt.timedelta(minutes=30)) == {"synced": 0, "failed": 0, "skipped": 1}
    assert tag_keys(store, user) == before  # not due yet: nothing read
    assert z.sync_due(every, start + dt.timedelta(minutes=61)) == {"synced": 1, "failed": 0, "skipped": 0}
    assert len(tag_keys(store, user)) == len(before) + 1  # the item added in Zotero arrived
