"""Two-way sync of one library tag with one Zotero collection, through Zotero's web API (v3).

A user gives an API key (zotero.org/settings/keys), their user or group library and a collection, and
picks a tag. Each sync compares both sides with what they were at the last sync (a three-way merge):

- a paper saved in the tag since then becomes an item in the collection (title, creators, DOI, URL, date,
  abstract, and the arXiv id in ``extra`` as Zotero's arXiv translator writes it);
- an item added to the collection is matched to a stored paper as a library import matches a record
  (:func:`bibtex.identifiers`, then :meth:`Store.find`: arXiv id, DOI, title) and saved into the tag;
- a paper taken out of the tag is taken out of the collection (the item stays in the Zotero library), and
  an item taken out of the collection (or deleted) leaves the tag. A removal on either side wins over a
  concurrent addition of the same paper on the other.

Incremental: the collection's item versions are asked for with ``If-Modified-Since-Version`` (a 304 means
nothing changed there), and only items newer than the last sync are fetched. Writes carry
``If-Unmodified-Since-Version``: a 412 means someone changed the library meanwhile, and the sync reads
again (up to :data:`CONFLICT_TRIES` rounds). Creations carry a ``Zotero-Write-Token``, so the HTTP client
may retry them safely; 429/503 with ``Retry-After`` and the ``Backoff`` header are honoured there
(paperradar.http). Every network call happens outside store transactions; the local changes and the new
sync state are then written in one transaction.

The settings and sync state of a user are one JSON value in the store's state table, key
``zotero:<user id>``; the API key is kept there (the database file is private to the server's user) and
never shown again: pages get :meth:`ZoteroSync.connection`, which redacts it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import uuid
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field

import httpx

from . import bibtex
from .clock import stamp, utc
from .errors import InputUnusable, PaperradarError
from .http import PoliteClient
from .library import tag_name
from .store import Store, StoredPaper, User

log = logging.getLogger("paperradar.zotero")
API_VERSION = "3"
BATCH = 50  # the API's most objects per write and keys per itemKey= read
MAX_ITEMS = 5000  # a collection larger than this is not synced (as a library import's limit)
CONFLICT_TRIES = 3
RUNNING_STALE = dt.timedelta(minutes=15)  # a sync marked running longer than this died with its process
_KEY = re.compile(r"[A-Za-z0-9]{1,64}")
_OBJECT_KEY = re.compile(r"[A-Z0-9]{8}")
_DOI_IN_EXTRA = re.compile(r"(?im)^\s*DOI:\s*(\S+)")


class ZoteroError(PaperradarError):
    """The Zotero side cannot be used as asked (not set up, a refused key, a collection not found)."""

    http_status = 502


class ZoteroSetupError(ZoteroError):
    """The form's values cannot be used (a malformed key, library id or collection)."""

    http_status = 400


class ZoteroBusy(ZoteroError):
    http_status = 409


class _Conflict(Exception):
    """A 412: the library (or the item) changed since it was read; read again."""


def state_key(user_id: int) -> str:
    return f"zotero:{user_id}"


def forget(store: Store, user_id: int) -> None:
    """Remove a user's Zotero settings and sync state (account deletion: a later account may get the id)."""
    store.delete_state(state_key(user_id))


def redact(api_key: str) -> str:
    return "…" + api_key[-4:] if len(api_key) > 8 else "…"


# -- papers and items ----------------------------------------------------------------------------------------
def _creator(name: str) -> dict:
    first, _, last = name.strip().rpartition(" ")
    if not first:
        return {"creatorType": "author", "name": last}
    return {"creatorType": "author", "firstName": first, "lastName": last}


def item_of(p: StoredPaper, collection: str) -> dict:
    """A paper as a new Zotero item in ``collection``: a preprint as Zotero's arXiv translator saves one
    (repository arXiv, archiveID and ``extra`` "arXiv:<id> [<archive>]", the arXiv DOI unless the paper has
    its own), else a journal article."""
    item = {"itemType": "preprint" if p.arxiv_id else "journalArticle", "title": p.title,
            "creators": [_creator(a) for a in p.authors if a.strip()], "abstractNote": p.abstract or "",
            "date": (p.submitted or p.announced or "")[:10]}
    if p.arxiv_id:
        archive = (p.primary_category or "").split(".")[0]
        item.update(repository="arXiv", archiveID=f"arXiv:{p.arxiv_id}",
                    DOI=p.doi or f"10.48550/arXiv.{p.arxiv_id}", url=f"https://arxiv.org/abs/{p.arxiv_id}",
                    extra=f"arXiv:{p.arxiv_id}" + (f" [{archive}]" if archive else ""))
    else:
        item.update(publicationTitle=p.journal_ref or "", DOI=p.doi or "", url=p.abs_url or "")
    item.update(tags=[], collections=[collection], relations={})
    return item


def identifiers_of(data: dict) -> list:
    """``[arxiv_id, doi, title]`` of a Zotero item's data, read by the library import's matcher: the item's
    fields as a BibTeX entry (``extra`` as its note, ``archiveID`` as its number, as Zotero exports them)."""
    def text(name: str) -> str:
        value = data.get(name)
        return value if isinstance(value, str) else ""

    fields = {"title": text("title"), "doi": text("DOI"), "url": text("url"), "note": text("extra"),
              "number": text("archiveID") or text("number"), "journal": text("publicationTitle")}
    if not fields["doi"] and (m := _DOI_IN_EXTRA.search(fields["note"])):  # where Zotero keeps a DOI that
        fields["doi"] = m.group(1)  # its item type has no field for
    arxiv_id, doi, title = bibtex.identifiers(bibtex.entry_from_text("misc", "", fields, 0))
    return [arxiv_id, doi, title[:500] if title else None]


@dataclass(frozen=True)
class Plan:
    """What one sync changes: remote creations and removals from the collection, local saves and removals."""

    create: list[int]  # papers to create as items
    uncollect: list[str]  # item keys to take out of the collection
    add: list[int]  # papers to save into the tag
    remove: list[int]  # papers to take out of the tag


def plan(prev_papers: set[int], now_papers: set[int], prev_items: dict[str, int | None],
         now_items: dict[str, int | None]) -> Plan:
    """The three-way merge, as a pure function of the tag's papers and the collection's items (key →
    matched paper or None) at the last sync and now."""
    local_removed = prev_papers - now_papers
    mapped_now = {p for p in now_items.values() if p is not None}
    remote_removed = {p for k, p in prev_items.items() if p is not None and k not in now_items} - mapped_now
    return Plan(create=sorted(now_papers - prev_papers - mapped_now),
                uncollect=sorted(k for k, p in now_items.items() if p in local_removed),
                add=sorted(p for p in mapped_now if p not in now_papers and p not in local_removed),
                remove=sorted(remote_removed & now_papers & prev_papers))


@dataclass
class SyncReport:
    created: int = 0  # items made in Zotero
    uncollected: int = 0  # items taken out of the collection
    added: int = 0  # papers saved into the tag
    removed: int = 0  # papers taken out of the tag
    items: int = 0  # items in the collection
    unmatched: list[str] = field(default_factory=list)  # titles of items that match no stored paper
    failed: list[str] = field(default_factory=list)  # papers Zotero refused to create, with its reason
    rounds: int = 1  # 412s resolved by reading again, plus one

    def to_dict(self) -> dict:
        return {"created": self.created, "uncollected": self.uncollected, "added": self.added,
                "removed": self.removed, "items": self.items, "unmatched": len(self.unmatched),
                "unmatched_titles": self.unmatched[:10], "failed": self.failed[:10], "rounds": self.rounds}


# -- the API -------------------------------------------------------------------------------------------------
def _body(value) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


class ZoteroAPI:
    """The few calls of Zotero's web API the sync needs, for one library (``users/<id>`` or ``groups/<id>``).
    The key travels in the ``Zotero-API-Key`` header, never in a URL, and no message repeats it."""

    def __init__(self, base_url: str, api_key: str, library: str, client: PoliteClient):
        self.base = f"{base_url.rstrip('/')}/{library}"
        self.library = library
        self.api_key = api_key
        self.client = client

    def _send(self, method: str, path: str, *, params: dict | None = None, headers: dict | None = None,
              body: bytes | None = None, ok: tuple[int, ...] = (200,)) -> httpx.Response:
        h = {"Zotero-API-Version": API_VERSION, "Zotero-API-Key": self.api_key, **(headers or {})}
        try:
            r = self.client.request(method, self.base + path, params=params, headers=h, content=body)
        except InputUnusable as e:
            raise ZoteroError(f"Zotero did not answer: {e}", hint=e.hint) from None
        if r.status_code in ok:
            return r
        if r.status_code == 412:
            raise _Conflict()
        if r.status_code in (401, 403):
            raise ZoteroError(f"Zotero refused the API key for {self.library} (HTTP {r.status_code})",
                              hint="check the key at zotero.org/settings/keys: it needs read and write "
                                   "access to this library; then save it again here")
        if r.status_code == 404:
            raise ZoteroError(f"Zotero has no {path.strip('/').split('/')[0] or 'library'} there "
                              f"({self.library}{path}, HTTP 404)", hint="check the library id and collection")
        said = " ".join(r.text.replace(self.api_key, "…").split())[:200]
        raise ZoteroError(f"Zotero answered HTTP {r.status_code} to {method} {self.library}{path}: {said}")

    def close(self) -> None:
        self.client.close()

    @staticmethod
    def version(r: httpx.Response) -> int:
        value = r.headers.get("Last-Modified-Version", "")
        return int(value) if value.isdigit() else 0

    def collections(self) -> list[tuple[str, str]]:
        """(key, name) of every collection of the library."""
        out, start = [], 0
        while True:
            r = self._send("GET", "/collections", params={"format": "json", "limit": 100, "start": start})
            page = r.json()
            out += [(c["key"], c["data"]["name"]) for c in page]
            total = r.headers.get("Total-Results", "")
            start += len(page)
            if not page or not total.isdigit() or start >= int(total) or start > MAX_ITEMS:
                return out

    def collection_versions(self, collection: str, since: int | None) -> tuple[dict[str, int] | None, int]:
        """({item key: version} of the collection's top-level items, or None if the library has not changed
        since version ``since``), and the library's version."""
        headers = {"If-Modified-Since-Version": str(since)} if since else {}
        r = self._send("GET", f"/collections/{collection}/items/top", params={"format": "versions"},
                       headers=headers, ok=(200, 304))
        if r.status_code == 304:
            return None, since or 0
        return {str(k): int(v) for k, v in r.json().items()}, self.version(r)

    def items(self, keys: list[str]) -> dict[str, dict]:
        """{key: data} of these items (those that still exist)."""
        out = {}
        for i in range(0, len(keys), BATCH):
            batch = keys[i:i + BATCH]
            r = self._send("GET", "/items", params={"itemKey": ",".join(batch), "format": "json",
                                                     "limit": BATCH})
            out.update({o["key"]: o["data"] for o in r.json()})
        return out

    def create(self, items: list[dict], version: int) -> tuple[dict[int, str], dict[int, str], int]:
        """Create up to BATCH items, unless the library changed since ``version`` (then _Conflict): returns
        ({index: new key}, {index: why it failed}, the library's new version)."""
        r = self._send("POST", "/items", body=_body(items), headers={
            "Content-Type": "application/json", "Zotero-Write-Token": uuid.uuid4().hex,
            "If-Unmodified-Since-Version": str(version)})
        answer = r.json()
        made = {int(i): str(k) for i, k in (answer.get("success") or {}).items()}
        failed = {int(i): str((f or {}).get("message", "refused"))[:200]
                  for i, f in (answer.get("failed") or {}).items()}
        return made, failed, self.version(r)

    def uncollect(self, key: str, collection: str) -> int | None:
        """Take an item out of a collection (it stays in the library): its collections written back without
        this one, conditional on the item's version; on a 412 the item is read again. Returns the library's
        new version, or None when there was nothing to do."""
        for _ in range(CONFLICT_TRIES):
            data = self.items([key]).get(key)
            if data is None or collection not in data.get("collections", []):
                return None  # deleted, or taken out already
            body = _body({"collections": [c for c in data["collections"] if c != collection]})
            try:
                return self.version(self._send("PATCH", f"/items/{key}", body=body, ok=(200, 204), headers={
                    "Content-Type": "application/json", "If-Unmodified-Since-Version": str(data["version"])}))
            except _Conflict:
                continue
        raise _Conflict()


# -- the sync ------------------------------------------------------------------------------------------------
def _client() -> PoliteClient:
    # Zotero sets no fixed request rate: it asks for pauses (Backoff, Retry-After) when it wants them
    return PoliteClient(min_interval=0.0, retries=4, backoff=2.0, max_backoff=120.0, timeout=30.0)


class ZoteroSync:
    """The Zotero settings and syncs of a store's users; ``client_factory`` gives tests a recorded API."""

    def __init__(self, store: Store, base_url: str = "https://api.zotero.org",
                 client_factory: Callable[[], PoliteClient] = _client):
        self.store = store
        self.db = store.accounts
        self.base_url = base_url
        self.client_factory = client_factory

    def _api(self, state: dict) -> ZoteroAPI:
        return ZoteroAPI(self.base_url, state["api_key"], state["library"], self.client_factory())

    # -- settings -----------------------------------------------------------------------------------------
    def connection(self, user: User) -> dict | None:
        """What a page may show of a user's Zotero settings and last sync: never the key, only its end."""
        s = self.store.get_state(state_key(user.id))
        if s is None:
            return None
        return {"key": redact(s["api_key"]), "library": s["library"], "collection": s["collection"],
                "collection_name": s.get("collection_name", ""), "tag": self._tag(user, s)[1] or s["tag"],
                "last_sync": s.get("last_sync"), "last_error": s.get("last_error"),
                "last_hint": s.get("last_hint"), "report": s.get("report"), "running": bool(s.get("running"))}

    def connect(self, user: User, *, api_key: str, library_type: str, library_id: str, collection: str,
                tag: str, now: dt.datetime | None = None) -> dict:
        """Save (or change) a user's key, library, collection and tag, after asking Zotero for the library's
        collections: a refused key or an unknown collection is an error and nothing is saved. A blank
        ``api_key`` keeps the saved one. Changing library or collection starts the sync state afresh."""
        old = self.store.get_state(state_key(user.id)) or {}
        api_key = api_key.strip() or old.get("api_key", "")
        if not _KEY.fullmatch(api_key):
            raise ZoteroSetupError("paste the API key Zotero made for you (letters and digits)",
                                   hint="make one at zotero.org/settings/keys")
        if library_type not in ("users", "groups") or not library_id.strip().isdigit():
            raise ZoteroSetupError("the library is your user id (a number, shown at "
                                   "zotero.org/settings/keys) or a group's id")
        library = f"{library_type}/{int(library_id)}"
        name = tag_name(tag)
        wanted = " ".join(collection.split())
        if not wanted:
            raise ZoteroSetupError("name the Zotero collection to sync with (its name or its key)")
        with closing(self._api({"api_key": api_key, "library": library})) as api:
            found = api.collections()
        match = [c for c in found if c[0] == wanted] or [c for c in found if c[1].lower() == wanted.lower()]
        if not match:
            names = ", ".join(sorted(n for _, n in found)[:8]) or "none"
            raise ZoteroSetupError(f"{library} has no collection {wanted!r} (its collections: {names})")
        key, cname = match[0]
        same = old.get("library") == library and old.get("collection") == key
        state = {**(old if same else {}), "api_key": api_key, "library": library, "collection": key,
                 "collection_name": cname, "saved": stamp(utc(now))}
        if not same or old.get("tag") != name:
            tid = next((t.id for t in self.db.tags(user.id) if t.name == name), None)
            state.update(tag=name, tag_id=tid)
            if same:  # another tag with the same collection: its papers are new to the collection
                state.update(papers=[])
        if not same:
            state.update(version=0, items={}, papers=[], last_sync=None, last_error=None, report=None)
        self.store.set_state(state_key(user.id), state)
        return self.connection(user)

    def disconnect(self, user: User) -> None:
        forget(self.store, user.id)

    def _tag(self, user: User, state: dict) -> tuple[int | None, str]:
        """(id, current name) of the synced tag: followed by id through renames; by name until it exists."""
        tags = self.db.tags(user.id)
        if state.get("tag_id") is not None:
            for t in tags:
                if t.id == state["tag_id"]:
                    return t.id, t.name
            return None, ""  # deleted
        return next(((t.id, t.name) for t in tags if t.name == state["tag"]), (None, state["tag"]))

    # -- syncing ------------------------------------------------------------------------------------------
    def sync_due(self, every: dt.timedelta, now: dt.datetime | None = None) -> dict:
        """Sync every connected library whose last attempt is ``every`` old or more (the radar's schedule:
        a tag stays in step without anyone pressing the button). A library Zotero refuses or cannot reach is
        counted and its error kept for its owner's settings page; the others go on."""
        now = utc(now)
        done = {"synced": 0, "failed": 0, "skipped": 0}
        for key, state in sorted(self.store.states_with_prefix("zotero:").items()):
            last = state.get("last_attempt")
            if last and last > stamp(now - every):
                done["skipped"] += 1
                continue
            user = self.db.user(int(key.split(":", 1)[1]))
            if user is None:
                continue
            try:
                self.sync(user, now)
                done["synced"] += 1
            except ZoteroError as e:
                log.warning("zotero sync of user %s: %s", user.id, e)
                done["failed"] += 1
        return done

    def sync(self, user: User, now: dt.datetime | None = None) -> SyncReport:
        """Sync the user's tag and collection both ways; ZoteroError (also kept for the settings page) when
        Zotero refuses or cannot be reached — then nothing changes on either side that was not already
        written, and the next sync picks up from the last good state."""
        now = utc(now)
        state = self._claim(user, now)
        try:
            report = self._sync(user, state, now)
        except ZoteroError as e:
            self._finish(user, now, error=e)
            raise
        except BaseException:
            self._finish(user, now, error=None, release_only=True)
            raise
        return report

    def _claim(self, user: User, now: dt.datetime) -> dict:
        with self.store.transaction():
            state = self.store.get_state(state_key(user.id))
            if state is None:
                raise ZoteroSetupError("Zotero sync is not set up",
                                       hint="add your API key on the settings page")
            running = state.get("running")
            if running and running > stamp(now - RUNNING_STALE):
                raise ZoteroBusy("a Zotero sync of this library is running already; try again in a minute")
            state["running"] = stamp(now)
            self.store.set_state(state_key(user.id), state)
        return state

    def _finish(self, user: User, now: dt.datetime, error: ZoteroError | None, release_only: bool = False):
        with self.store.transaction():
            state = self.store.get_state(state_key(user.id))
            if state is None:
                return
            state["running"] = None
            if not release_only:
                state.update(last_error=str(error) if error else None,
                             last_hint=error.hint if error else None, last_attempt=stamp(now))
            self.store.set_state(state_key(user.id), state)

    def _sync(self, user: User, state: dict, now: dt.datetime) -> SyncReport:
        tag_id, tag = self._tag(user, state)
        if not tag:
            raise ZoteroSetupError(f"the tag {state['tag']!r} was deleted; choose a tag to sync on the "
                                   "settings page")
        with closing(self._api(state)) as api:
            for rounds in range(1, CONFLICT_TRIES + 1):
                try:
                    return self._round(user, state, api, tag_id, tag, now, rounds)
                except _Conflict:
                    tag_id, tag = self._tag(user, state)
        raise ZoteroError("the Zotero library kept changing during the sync", hint="sync again in a minute")

    def _round(self, user: User, state: dict, api: ZoteroAPI, tag_id: int | None, tag: str,
               now: dt.datetime, rounds: int) -> SyncReport:
        collection = state["collection"]
        prev = state.get("items") or {}
        since = state.get("version") or None
        listing, version = api.collection_versions(collection, since if prev else None)
        if listing is None:  # 304: the library did not change since the last sync
            listing = {k: e["v"] for k, e in prev.items()}
        if len(listing) > MAX_ITEMS:
            raise ZoteroError(f"the collection holds {len(listing):,} items; at most {MAX_ITEMS:,} are "
                              "synced")
        data = api.items([k for k, v in listing.items() if k not in prev or v > prev[k]["v"]])
        items = {}
        for k, v in listing.items():
            ids = identifiers_of(data[k]) if k in data else prev.get(k, {}).get("ids")
            if ids is None:
                continue  # gone between the two reads: the next sync sees it
            # matched again every time (a local lookup): a paper ingested since may match an old item
            paper = self.store.find(*ids) if any(ids) else None
            items[k] = {"v": v, "paper": paper.id if paper else None, "ids": ids}
        before = set(state.get("papers") or [])
        papers = set(self.db.saved_ids(user.id, tag_id)) if tag_id is not None else set()
        todo = plan(before, papers, {k: e["paper"] for k, e in prev.items()},
                    {k: e["paper"] for k, e in items.items()})
        report = SyncReport(rounds=rounds)

        # Zotero first: a 412 here leaves the local side untouched, and the next round reads again
        write_version = version
        ours = True  # every version since the read is one of our writes: the next sync may start after them
        failed: set[int] = set()
        to_create = self.store.get_many(todo.create)
        for i in range(0, len(to_create), BATCH):
            batch = to_create[i:i + BATCH]
            bodies = [item_of(p, collection) for p in batch]
            made, refused, new = api.create(bodies, write_version)
            ours, write_version = ours and new == write_version + 1, new
            for j, p in enumerate(batch):
                if j in made:
                    items[made[j]] = {"v": write_version, "paper": p.id, "ids": identifiers_of(bodies[j])}
                    report.created += 1
                else:
                    failed.add(p.id)
                    report.failed.append(f"{p.title[:80]}: {refused.get(j, 'not created')}")
        for k in todo.uncollect:
            new = api.uncollect(k, collection)
            if new is not None:
                ours, write_version = ours and new == write_version + 1, new
            items.pop(k, None)
            report.uncollected += 1

        with self.store.transaction():
            current = self.store.get_state(state_key(user.id))
            if current is None or current.get("collection") != collection or current.get("library") != \
                    state["library"]:
                return report  # disconnected or changed while syncing: this result is for nobody
            if todo.add:
                report.added = self.db.save_many(user.id, tag, todo.add, stamp(now))
                tag_id = self.db.tag(user.id, tag).id
            for pid in todo.remove:
                report.removed += self.db.unsave(user.id, pid, tag_id)
            synced = (papers | set(todo.add)) - set(todo.remove) - failed
            report.items = len(items)
            report.unmatched = [e["ids"][2] or k for k, e in items.items() if e["paper"] is None]
            # past our own writes only when nobody else wrote between them: their change must not be skipped
            current.update(items=items, papers=sorted(synced), version=write_version if ours else version,
                           tag_id=tag_id,
                           last_sync=stamp(now), last_attempt=stamp(now), last_error=None, last_hint=None,
                           report=report.to_dict(), running=None)
            self.store.set_state(state_key(user.id), current)
        return report
