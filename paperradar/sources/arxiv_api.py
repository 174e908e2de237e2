"""The arXiv search API (``export.arxiv.org/api/query``): Atom feeds, paged by start/max_results.

Two ways to ask: a search (free query, categories, a submission-date window), paged through
``opensearch:totalResults`` newest first; or a list of ids, sent in batches so the URL stays short.
The API reports a bad request as an Atom entry titled "Error" (sometimes with HTTP 400); that entry
becomes a :class:`~paperradar.models.Rejected`, never a paper.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET

from ..errors import InputUnusable
from ..http import PoliteClient
from ..models import InvalidRecord, Paper, Rejected, clean_text, parse_arxiv_id
from .base import Item, Source

ATOM = "{http://www.w3.org/2005/Atom}"
ARXIV = "{http://arxiv.org/schemas/atom}"
OPENSEARCH = "{http://a9.com/-/spec/opensearch/1.1/}"

MIN_INTERVAL = 3.0  # arXiv's terms of use: at most one request every 3 seconds
EMPTY_PAGE_RETRIES = 2  # the API sometimes answers a short-lived empty page in the middle of a result
_ERROR_ID = re.compile(r"^https?://arxiv\.org/api/errors", re.IGNORECASE)
_DOI_SPLIT = re.compile(r"[\s,;]+")
API_ERROR = "arXiv API error: "  # reason prefix of a Rejected made from the API's own error entry


def parse_feed(xml_bytes: bytes, where: str) -> tuple[list[Paper | Rejected], int | None]:
    """Parse one API response into (papers and rejected entries, opensearch:totalResults).

    ``where`` names the page in rejection messages ("arXiv API page 2" → "... entry 5").
    Raises :class:`InputUnusable` when the bytes are not an Atom feed at all; a bad entry only
    becomes a :class:`Rejected`.
    """
    root = parse_xml(xml_bytes, where)
    if root.tag != ATOM + "feed":
        raise InputUnusable(f"{where}: expected an Atom <feed>, got <{_local(root.tag)}>")
    items: list[Paper | Rejected] = []
    for n, entry in enumerate(root.findall(ATOM + "entry"), 1):
        entry_where = f"{where} entry {n}"
        entry_id = _text(entry, ATOM + "id")
        if _ERROR_ID.match(entry_id):
            message = _text(entry, ATOM + "summary") or entry_id.partition("#")[2] or "unknown error"
            items.append(Rejected(entry_where, API_ERROR + message))
            continue
        try:
            items.append(_entry_to_paper(entry, entry_id))
        except InvalidRecord as e:
            items.append(Rejected(entry_where, str(e)))
    return items, _total_results(root)


def parse_xml(xml_bytes: bytes, where: str) -> Element:
    """Parse untrusted XML with entity expansion and external references forbidden."""
    try:
        return SafeET.fromstring(xml_bytes)
    # ValueError/LookupError: expat rejects some encoding declarations that way, not as ParseError.
    except (ParseError, DefusedXmlException, ValueError, LookupError) as e:
        raise InputUnusable(f"{where}: not well-formed XML ({e})",
                            hint="the server answered something that is not a feed") from None


def iso_timestamp(text: str) -> str:
    """Normalise an ISO 8601 timestamp to UTC ``YYYY-MM-DDTHH:MM:SSZ``; InvalidRecord if it is not one."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidRecord(f"not an ISO timestamp: {text[:40]!r}") from None
    if moment.tzinfo is None:  # the API always means UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def first_doi(text: str | None) -> str | None:
    """The first DOI of a field that may list several (separated by spaces, commas or semicolons).

    A paper keeps one DOI; the first is the one arXiv shows first and links.
    """
    if not text:
        return None
    parts = [p for p in _DOI_SPLIT.split(text.strip()) if p]
    return parts[0] if parts else None


def _entry_to_paper(entry: Element, entry_id: str) -> Paper:
    parsed = parse_arxiv_id(entry_id)
    if parsed is None:
        raise InvalidRecord(f"entry id is not an arXiv identifier: {entry_id[:80]!r}")
    arxiv_id, version = parsed
    authors = [clean_text(a.findtext(ATOM + "name")) for a in entry.findall(ATOM + "author")]
    categories: list[str] = []
    primary = entry.find(ARXIV + "primary_category")
    terms = [primary.get("term", "")] if primary is not None else []
    terms += [c.get("term", "") for c in entry.findall(ATOM + "category")]
    for term in terms:
        term = term.strip()
        if term and term not in categories:
            categories.append(term)
    published = _text(entry, ATOM + "published")
    updated = _text(entry, ATOM + "updated")
    paper = Paper(
        title=clean_text(_text(entry, ATOM + "title")),
        source="arxiv",
        arxiv_id=arxiv_id,
        version=version,
        abstract=clean_text(_text(entry, ATOM + "summary")),
        authors=[a for a in authors if a],
        categories=categories,
        submitted=iso_timestamp(published) if published else None,
        updated=iso_timestamp(updated) if updated else None,
        comment=clean_text(_text(entry, ARXIV + "comment")) or None,
        journal_ref=clean_text(_text(entry, ARXIV + "journal_ref")) or None,
        doi=first_doi(_text(entry, ARXIV + "doi")),
    )
    return paper.validate()


def _text(element: Element, tag: str) -> str:
    return element.findtext(tag) or ""


def _local(tag: str) -> str:
    return tag.rpartition("}")[2][:40]


def _total_results(root: Element) -> int | None:
    text = root.findtext(OPENSEARCH + "totalResults")
    try:
        total = int((text or "").strip())
    except ValueError:  # absent, garbage, or absurdly many digits
        return None
    return total if total >= 0 else None


def _yyyymmdd(value: str, name: str) -> str:
    try:
        return date.fromisoformat(value.strip()).strftime("%Y%m%d")
    except ValueError:
        raise InputUnusable(f"{name} must be a date YYYY-MM-DD, not {value!r}") from None


def build_search_query(query: str | None, categories: Sequence[str], since: str | None,
                       until: str | None, today: date | None = None) -> str:
    """The API's ``search_query``: query AND (cat:a OR cat:b) AND submittedDate:[from TO to].

    An open end of the date window is filled with arXiv's first year or today, since the API
    wants both bounds.
    """
    parts: list[str] = []
    query = (query or "").strip()
    cats = [c.strip() for c in categories if c.strip()]
    if cats:
        clause = " OR ".join(f"cat:{c}" for c in cats)
        parts.append(f"({clause})" if len(cats) > 1 else clause)
    if since or until:
        start = _yyyymmdd(since, "since") if since else "19910101"
        end = _yyyymmdd(until, "until") if until else (today or datetime.now(UTC).date()).strftime("%Y%m%d")
        if start > end:
            raise InputUnusable(f"since ({since}) is after until ({until})")
        parts.append(f"submittedDate:[{start}0000 TO {end}2359]")
    if query:
        # Parenthesised so that an OR inside the user's query does not escape the other clauses.
        parts.insert(0, f"({query})" if parts else query)
    return " AND ".join(parts)


class ArxivAPISource(Source):
    """Papers from the arXiv API, by search (newest first) or by id list."""

    name = "arxiv"

    def __init__(
        self,
        query: str | None = None,
        categories: Sequence[str] = (),
        id_list: Sequence[str] = (),
        since: str | None = None,
        until: str | None = None,
        max_results: int | None = None,
        page_size: int = 100,
        client: PoliteClient | None = None,
        base_url: str = "https://export.arxiv.org/api/query",
    ):
        if isinstance(categories, str) or isinstance(id_list, str):
            raise TypeError("categories and id_list are sequences of strings, not one string")
        if not 1 <= page_size <= 2000:  # the API refuses larger pages
            raise InputUnusable(f"page_size must be between 1 and 2000, not {page_size}")
        if max_results is not None and max_results < 0:
            raise InputUnusable(f"max_results must not be negative, not {max_results}")
        self.search_query = build_search_query(query, categories, since, until)
        self.id_list = [i.strip() for i in id_list if i.strip()]
        if not self.search_query and not self.id_list:
            raise InputUnusable("nothing to ask the arXiv API for",
                                hint="give a query, categories, a date range or ids")
        self.max_results = max_results
        self.page_size = page_size
        self.client = client
        self.base_url = base_url
        self._fetched = 0
        self._total: int | None = None

    @staticmethod
    def default_client() -> PoliteClient:
        """The client used when none is given: arXiv's one request every 3 seconds."""
        return PoliteClient(min_interval=MIN_INTERVAL)

    def progress(self) -> tuple[int, int | None]:
        """(entries fetched, results in total as the API reports them, capped by max_results)."""
        total = self._total
        if total is not None and self.max_results is not None:
            total = min(total, self.max_results)
        return self._fetched, total

    def __iter__(self) -> Iterator[Item]:
        client = self.client if self.client is not None else self.default_client()
        self._fetched = 0
        try:
            if self.id_list:
                yield from self._by_ids(client)
            else:
                yield from self._search(client)
        finally:
            if client is not self.client:
                client.close()

    def _remaining(self) -> int | None:
        return None if self.max_results is None else self.max_results - self._fetched

    def _by_ids(self, client: PoliteClient) -> Iterator[Item]:
        self._total = len(self.id_list)
        page = 0
        for i in range(0, len(self.id_list), self.page_size):
            if self._remaining() == 0:
                return
            batch = self.id_list[i:i + self.page_size]
            page += 1
            # max_results is the page size, not the batch size: the API caps it at the ids found anyway.
            params = {"search_query": self.search_query, "id_list": ",".join(batch),
                      "start": 0, "max_results": self.page_size}
            items, _ = self._fetch(client, params, page)
            yield from self._take(items)

    def _search(self, client: PoliteClient) -> Iterator[Item]:
        start, page, empty_tries = 0, 0, 0
        while True:
            remaining = self._remaining()
            if remaining == 0 or (self._total is not None and start >= self._total):
                return
            size = self.page_size if remaining is None else min(self.page_size, remaining)
            page += 1
            params = {"search_query": self.search_query, "start": start, "max_results": size,
                      "sortBy": "submittedDate", "sortOrder": "descending"}
            items, total = self._fetch(client, params, page)
            if total is not None:
                self._total = total
            if not items:
                if self._total is None or start >= self._total:
                    return  # an empty result, or the true end
                if empty_tries >= EMPTY_PAGE_RETRIES:
                    yield Rejected(f"arXiv API page {page}",
                                   f"empty page at start={start} of {self._total} results; stopped")
                    return
                empty_tries += 1
                continue
            empty_tries = 0
            yield from self._take(items)
            if any(isinstance(it, Rejected) and it.reason.startswith(API_ERROR) for it in items):
                return  # the API rejected the query itself; further pages would repeat the error
            start += len(items)
            if self._total is None:  # no totalResults to page by: a short page is the last one
                if len(items) < size:
                    return

    def _fetch(self, client: PoliteClient, params: dict, page: int) -> tuple[list, int | None]:
        where = f"arXiv API page {page}"
        response = client.get(self.base_url, params=params)
        if response.status_code >= 400:
            # An invalid id or query comes back as HTTP 400 *with* an Atom error entry; keep its message.
            try:
                items, total = parse_feed(response.content, where)
            except InputUnusable:
                items, total = [], None
            if not items:
                raise InputUnusable(f"{where}: HTTP {response.status_code} from {self.base_url}")
            return items, total
        return parse_feed(response.content, where)

    def _take(self, items: list[Paper | Rejected]) -> Iterator[Item]:
        for item in items:
            if self._remaining() == 0:
                return
            self._fetched += 1
            yield item
