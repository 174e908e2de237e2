"""arXiv's OAI-PMH interface: bulk, resumable harvests of the ``arXiv`` and ``arXivRaw`` formats.

A harvest is a ListRecords request (set, from, until) followed by resumptionToken pages. After each
page the source yields a :class:`~paperradar.sources.base.Checkpoint`; the ingest driver saves it with
the page's papers, and hands the last one back as ``state`` so that the next run resumes mid-harvest
(or, once a harvest is complete, harvests incrementally from the newest datestamp it saw).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date
from email.utils import parsedate_to_datetime
from xml.etree.ElementTree import Element

from ..errors import InputUnusable
from ..http import PoliteClient
from ..models import InvalidRecord, Paper, Rejected, clean_text, parse_arxiv_id
from .arxiv_api import MIN_INTERVAL, first_doi, parse_xml
from .base import Checkpoint, Item, Source

FORMATS = ("arXiv", "arXivRaw")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}")
ANNOUNCED_WITHIN = 7  # days from submission to announcement, at most (weekends, holidays, moderation)
_AUTHOR_SEP = re.compile(r"\s*(?:,|;|\band\b)\s*")


class OAIError(InputUnusable):
    """An OAI-PMH ``<error>`` answer other than noRecordsMatch; ``code`` is the OAI error code."""

    def __init__(self, code: str, message: str):
        super().__init__(f"OAI-PMH error {code}: {message}" if message else f"OAI-PMH error {code}")
        self.code = code


@dataclass
class Page:
    """One parsed ListRecords (or GetRecord) response."""

    items: list[Paper | Rejected] = field(default_factory=list)
    token: str | None = None  # None: this was the last page
    complete_list_size: int | None = None
    cursor: int | None = None
    records: int = 0  # <record> elements, deleted ones included (they count in completeListSize)
    max_datestamp: str | None = None


def parse_list_records(xml_bytes: bytes, where: str) -> tuple[list[Paper | Rejected], str | None, int | None]:
    """Parse one OAI-PMH response into (items, next resumptionToken or None, completeListSize or None).

    noRecordsMatch is an empty page; any other OAI error raises :class:`OAIError` (an InputUnusable);
    bytes that are not an OAI-PMH response raise :class:`InputUnusable`. Deleted records are skipped.
    """
    page = parse_page(xml_bytes, where)
    return page.items, page.token, page.complete_list_size


def parse_page(xml_bytes: bytes, where: str) -> Page:
    """Like :func:`parse_list_records`, with the cursor, record count and newest header datestamp too."""
    root = parse_xml(xml_bytes, where)
    if _local(root.tag) != "OAI-PMH":
        raise InputUnusable(f"{where}: expected an OAI-PMH response, got <{_local(root.tag)[:40]}>")
    errors = _kids(root, "error")
    if errors:
        codes = [e.get("code", "") for e in errors]
        if "noRecordsMatch" in codes:
            return Page()
        raise OAIError(codes[0] or "unknown", clean_text("".join(errors[0].itertext()))[:300])
    page = Page()
    for verb in ("ListRecords", "GetRecord"):
        container = _kid(root, verb)
        if container is not None:
            break
    else:
        raise InputUnusable(f"{where}: neither ListRecords nor GetRecord in the response")
    for n, record in enumerate(_kids(container, "record"), 1):
        page.records += 1
        header = _kid(record, "header")
        stamp = _ktext(header, "datestamp").strip() if header is not None else ""
        if _DAY.match(stamp) and (page.max_datestamp is None or stamp > page.max_datestamp):
            page.max_datestamp = stamp
        if header is not None and header.get("status") == "deleted":
            continue  # withdrawn from the repository: nothing to store, nothing wrong
        try:
            page.items.append(record_to_paper(record))
        except InvalidRecord as e:
            page.items.append(Rejected(f"{where} record {n}", str(e)))
    token_el = _kid(container, "resumptionToken")
    if token_el is not None:
        page.token = (token_el.text or "").strip() or None  # an empty token marks the last page
        page.complete_list_size = _int_attr(token_el, "completeListSize")
        page.cursor = _int_attr(token_el, "cursor")
    return page


def record_to_paper(record: Element) -> Paper:
    """Build a validated Paper from one OAI ``<record>`` in the arXiv or arXivRaw format."""
    metadata = _kid(record, "metadata")
    meta = next(iter(metadata), None) if metadata is not None else None
    if meta is None:
        raise InvalidRecord("record has no metadata")
    fmt = _local(meta.tag)
    if fmt not in FORMATS:
        raise InvalidRecord(f"unsupported metadata format <{fmt[:40]}>")
    header = _kid(record, "header")
    raw_id = _ktext(meta, "id") or (_ktext(header, "identifier") if header is not None else "")
    parsed = parse_arxiv_id(raw_id)
    if parsed is None:
        raise InvalidRecord(f"not an arXiv identifier: {raw_id[:80]!r}")
    arxiv_id = parsed[0]
    if fmt == "arXiv":
        version = None  # the arXiv format does not say which version it describes
        authors = [_author_name(a) for a in _kids(_kid(meta, "authors"), "author")]
        submitted = _iso_day(_ktext(meta, "created"), "created")
        updates = [u.text or "" for u in _kids(meta, "updated")]
        updated = _iso_day(updates[-1], "updated") if updates else None
    else:
        versions = _raw_versions(meta)
        version = versions[-1][0] if versions else None
        submitted = versions[0][1] if versions else None
        updated = versions[-1][1] if versions else None
        authors = split_authors(_ktext(meta, "authors"))
    announced = None
    if not updated or (updated[:10] == (submitted or "")[:10]):
        # A first version: its header datestamp is the day arXiv's OAI interface got it, which is the day it
        # was announced (a later version or a metadata fix moves the datestamp, so only v1 records say this).
        # Without it a paper would be dated by its submission, a day or more before its listing: a digest
        # covering "listings since yesterday" would never see it.
        stamp = _ktext(header, "datestamp").strip() if header is not None else ""
        if _DAY.match(stamp) and submitted and 0 <= _days_between(submitted, stamp) <= ANNOUNCED_WITHIN:
            announced = stamp[:10]  # (a datestamp long after the submission is a later metadata fix)
    categories: list[str] = []
    for cat in _ktext(meta, "categories").split():  # space-separated, primary first
        if cat not in categories:
            categories.append(cat)
    paper = Paper(
        title=clean_text(_ktext(meta, "title")),
        source="oai",
        arxiv_id=arxiv_id,
        version=version,
        abstract=clean_text(_ktext(meta, "abstract")),
        authors=[a for a in authors if a],
        categories=categories,
        submitted=submitted,
        updated=updated,
        announced=announced,
        comment=clean_text(_ktext(meta, "comments")) or None,
        journal_ref=clean_text(_ktext(meta, "journal-ref")) or None,
        doi=first_doi(_ktext(meta, "doi")),
    )
    return paper.validate()


def _days_between(first: str, then: str) -> int:
    try:
        return (date.fromisoformat(then[:10]) - date.fromisoformat(first[:10])).days
    except ValueError:
        return -1


def split_authors(text: str) -> list[str]:
    """Split arXivRaw's author string ("A, B (MIT) and C") into names, dropping affiliations."""
    depth, kept = 0, []
    for ch in text:  # parenthesised affiliations may hold commas, so drop them before splitting
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        elif not depth:
            kept.append(ch)
    return [name for part in _AUTHOR_SEP.split("".join(kept)) if (name := clean_text(part))]


def _author_name(author: Element) -> str:
    # "Forenames Keyname Suffix". Names of pure punctuation (a lone ":" left from splitting
    # "Collaboration: A, B" upstream) are not people.
    parts = [clean_text(_ktext(author, tag)) for tag in ("forenames", "keyname", "suffix")]
    name = " ".join(p for p in parts if p)
    return name if any(c.isalnum() for c in name) else ""


def _raw_versions(meta: Element) -> list[tuple[int, str]]:
    """[(version number, ISO timestamp)] sorted by number, from arXivRaw's <version> elements."""
    versions = []
    for v in _kids(meta, "version"):
        label = (v.get("version") or "").strip().lower()
        if not re.fullmatch(r"v\d{1,4}", label):
            raise InvalidRecord(f"bad version label {label[:20]!r}")
        versions.append((int(label[1:]), _rfc2822(_ktext(v, "date"))))
    return sorted(versions)


def _rfc2822(text: str) -> str:
    try:
        moment = parsedate_to_datetime(text.strip())
    except (ValueError, TypeError, IndexError, OverflowError):
        raise InvalidRecord(f"bad version date {text[:40]!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_day(text: str, name: str) -> str:
    try:
        return date.fromisoformat(text.strip()[:10]).isoformat()
    except ValueError:
        raise InvalidRecord(f"bad {name} date {text[:40]!r}") from None


def _local(tag: object) -> str:
    # Match by local name: hepcrawl's recorded responses (and some mirrors) put <arXiv> in the OAI
    # namespace instead of http://arxiv.org/OAI/arXiv/. Comments and PIs have non-string tags.
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _kids(element: Element | None, name: str) -> list[Element]:
    return [c for c in element if _local(c.tag) == name] if element is not None else []


def _kid(element: Element | None, name: str) -> Element | None:
    kids = _kids(element, name)
    return kids[0] if kids else None


def _ktext(element: Element | None, name: str) -> str:
    kid = _kid(element, name)
    return "".join(kid.itertext()) if kid is not None else ""


def _int_attr(element: Element, name: str) -> int | None:
    try:
        value = int(element.get(name, "").strip())
    except ValueError:
        return None
    return value if value >= 0 else None


def _check_day(value: str | None, name: str) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    try:
        if not _DAY.match(text):
            raise ValueError(text)
        return date.fromisoformat(text[:10]).isoformat()
    except ValueError:
        raise InputUnusable(f"{name} must be a date YYYY-MM-DD, not {value!r}") from None


class OAISource(Source):
    """Papers from an OAI-PMH ListRecords harvest, resumable through Checkpoints."""

    name = "oai"

    def __init__(
        self,
        set_spec: str | None = None,
        from_date: str | None = None,
        until: str | None = None,
        metadata_prefix: str = "arXiv",
        state: dict | None = None,
        client: PoliteClient | None = None,
        base_url: str = "https://oaipmh.arxiv.org/oai",
    ):
        if metadata_prefix not in FORMATS:
            raise InputUnusable(f"metadata prefix {metadata_prefix!r} is not supported",
                                hint="use arXiv or arXivRaw")
        self.set_spec = set_spec or None
        self.from_date = _check_day(from_date, "from")
        self.until = _check_day(until, "until")
        if self.from_date and self.until and self.from_date > self.until:
            raise InputUnusable(f"from ({from_date}) is after until ({until})")
        self.metadata_prefix = metadata_prefix
        self.state = dict(state or {})
        self.client = client
        self.base_url = base_url
        self.key = f"oai:{metadata_prefix}:{set_spec or '*'}"
        self._seen = 0
        self._total: int | None = None

    @staticmethod
    def default_client() -> PoliteClient:
        """The client used when none is given: one request every 3 seconds, as arXiv asks."""
        return PoliteClient(min_interval=MIN_INTERVAL)

    def progress(self) -> tuple[int, int | None]:
        """(records seen, completeListSize when the server gives it)."""
        return self._seen, self._total

    def plan(self) -> tuple[str | None, str | None, str | None]:
        """(resumption token to continue from, from date, until date) for the next harvest.

        A saved token resumes the interrupted harvest with its own window; otherwise an explicit
        from_date wins; otherwise the newest datestamp seen before makes the harvest incremental.
        The whole day is harvested again because OAI datestamps have day granularity.
        """
        state = self.state
        token = state.get("resumption_token") or None
        if token:
            return token, state.get("from"), state.get("until")
        if self.from_date:
            return None, self.from_date, self.until
        last = state.get("last_datestamp") or state.get("from")
        return None, _check_day(last, "saved OAI state's date") if last else None, self.until

    def __iter__(self) -> Iterator[Item]:
        client = self.client if self.client is not None else self.default_client()
        try:
            yield from self._harvest(client)
        finally:
            if client is not self.client:
                client.close()

    def _harvest(self, client: PoliteClient) -> Iterator[Item]:
        token, from_used, until = self.plan()
        last = self.state.get("last_datestamp") or None
        self._seen, self._total = 0, None
        restarted = False
        page_no = 0
        while True:
            page_no += 1
            if token:  # OAI-PMH: a resumptionToken request carries no other argument
                params = {"verb": "ListRecords", "resumptionToken": token}
            else:
                params = {"verb": "ListRecords", "metadataPrefix": self.metadata_prefix}
                for name, value in (("set", self.set_spec), ("from", from_used), ("until", until)):
                    if value:
                        params[name] = value
            try:
                page = self._fetch(client, params, f"OAI page {page_no}")
            except OAIError as e:
                # Tokens expire (see their expirationDate). Start the same harvest over once; the
                # store merges what it already has. Only once: a server that keeps refusing its
                # own tokens must not loop forever.
                if e.code != "badResumptionToken" or not token or restarted:
                    raise
                restarted, token, self._seen = True, None, 0
                continue
            yield from page.items
            self._seen = (page.cursor if page.cursor is not None else self._seen) + page.records
            if page.complete_list_size is not None:
                self._total = page.complete_list_size
            if page.max_datestamp and (last is None or page.max_datestamp > last):
                last = page.max_datestamp
            token = page.token
            yield Checkpoint(key=self.key, state={"resumption_token": token, "from": from_used,
                                                  "until": until, "last_datestamp": last})
            if token is None:
                return

    def _fetch(self, client: PoliteClient, params: dict, where: str) -> Page:
        response = client.get(self.base_url, params=params)
        if response.status_code >= 400:
            try:  # some servers send OAI errors with a 4xx status; the OAI code says more
                parse_page(response.content, where)
            except OAIError:
                raise
            except InputUnusable:
                pass
            raise InputUnusable(f"{where}: HTTP {response.status_code} from {self.base_url}")
        return parse_page(response.content, where)
