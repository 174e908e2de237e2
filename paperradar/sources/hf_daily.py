"""Hugging Face Daily Papers: the JSON array ``/api/daily_papers`` returns, from a saved file or live.

Each item carries ``paper`` with the arXiv ``id``, ``title``, ``summary``, ``authors`` (``[{"name": ...}]``),
``upvotes`` and ``publishedAt``. HF gives no arXiv categories, so those stay empty and arXiv metadata,
ranked higher when both are stored, fills them in.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator

from ..errors import InputUnusable, PaperradarError
from ..http import PoliteClient
from ..models import InvalidRecord, Paper, Rejected, parse_arxiv_id
from .base import Item
from .jsonl import FileSource, collapse, iso_date, no_lone_surrogates, sniff, split_authors, whole_number

API_URL = "https://huggingface.co/api/daily_papers"
PAGE_LIMIT = 100  # the most items the endpoint returns per request
MAX_RESPONSE = 64 * 1024 * 1024  # a day's listing is ~0.5 MB; anything near this is not a listing


def paper_from_item(item: object) -> Paper:
    """One Daily Papers item to an unvalidated Paper (raises InvalidRecord with the reason)."""
    if not isinstance(item, dict):
        raise InvalidRecord(f"a JSON {type(item).__name__}, not an object")
    paper = item.get("paper", item)  # the item repeats title/summary; the paper object is the reference
    if not isinstance(paper, dict):
        raise InvalidRecord("paper is not an object")
    ident = paper.get("id")
    parsed = parse_arxiv_id(ident) if isinstance(ident, str) else None
    if parsed is None:
        raise InvalidRecord(f"id {str(ident)[:60]!r} is not an arXiv identifier")
    title = paper.get("title") or item.get("title")
    abstract = paper.get("summary") or item.get("summary") or ""
    if not isinstance(title, str) or not isinstance(abstract, str):
        raise InvalidRecord("title or summary is not a string" if title else "missing title")
    # paper.publishedAt is midnight UTC of the arXiv announcement day; the item's own publishedAt is the
    # same instant shifted to 20:00 the evening before, so its date is one day early. Prefer the paper's.
    published = paper.get("publishedAt") or item.get("publishedAt")
    return Paper(
        title=collapse(title),
        source="hf-daily",
        arxiv_id=parsed[0],
        version=parsed[1],
        abstract=collapse(abstract),
        authors=split_authors(paper.get("authors")),
        announced=iso_date(published, "publishedAt", date_only=True),
        upvotes=whole_number(paper.get("upvotes"), "upvotes"),
        hf_comments=whole_number(item.get("numComments"), "numComments"),
        hf_summary=_text(paper.get("ai_summary"), "ai_summary") or None,
        hf_keywords=_keywords(paper.get("ai_keywords")),
        organization=_organization(paper.get("organization") or item.get("organization")),
        code_url=_text(paper.get("githubRepo"), "githubRepo") or None,
        project_url=_text(paper.get("projectPage"), "projectPage") or None,
        github_stars=whole_number(paper.get("githubStars"), "githubStars"),
    )


def _text(value: object, name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidRecord(f"{name} is not a string")
    return collapse(value)


def _keywords(value: object) -> list[str]:
    """ai_keywords: a list of short phrases (kept in order, once each; anything else is ignored)."""
    if not isinstance(value, list):
        return []
    out: dict[str, None] = {}
    for k in value:
        if isinstance(k, str) and (k := collapse(k)) and len(k) <= 200:
            out.setdefault(k, None)
    return list(out)[:50]


def _organization(value: object) -> dict | None:
    """{"name", "fullname"} of the organisation a paper is listed under (its avatar and ids are dropped)."""
    if not isinstance(value, dict):
        return None
    name = value.get("name") if isinstance(value.get("name"), str) else ""
    fullname = value.get("fullname") if isinstance(value.get("fullname"), str) else ""
    name, fullname = collapse(name)[:200], collapse(fullname)[:200]
    return {"name": name, "fullname": fullname or name} if name or fullname else None


def _items(document: object, where: str) -> list:
    if not isinstance(document, list):
        found = type(document).__name__
        raise InputUnusable(f"{where}: expected a JSON array of daily papers, found a JSON {found}",
                            hint="give the JSON saved from https://huggingface.co/api/daily_papers")
    first = document[0] if document else None
    if isinstance(first, dict) and "paper" not in first and "title" not in first:
        raise InputUnusable(f"{where}: the items are not daily papers (fields: {', '.join(list(first)[:8])})")
    return document


class HFDailySource(FileSource):
    """Daily Papers from ``path`` (a saved response; ``-`` for stdin) or, without a path, from the live
    endpoint: the listing of ``date`` (``YYYY-MM-DD``) or, without a date, the latest one."""

    name = "hf-daily"

    def __init__(self, path: str | None = None, date: str | None = None, client: PoliteClient | None = None,
                 base_url: str = API_URL):
        super().__init__(path or "")
        if path and date:
            raise PaperradarError("give either a file or a date for hf-daily, not both")
        self.date = _check_date(date)
        self.client = client
        self.base_url = base_url
        self._live = path is None
        self._done = 0

    def progress(self) -> tuple[int, int | None]:
        if self._live:
            return self._done, self._progress[1]  # (items done, items in the response)
        return super().progress()

    def __iter__(self) -> Iterator[Item]:
        if self._live:
            items, label = self._fetch()
        else:
            with self._opened() as f:
                sniff(f, "JSON")
                label = f.label
                data = f.stream.read(MAX_RESPONSE + 1)
                if len(data) > MAX_RESPONSE:
                    raise InputUnusable(f"{label}: over {MAX_RESPONSE // 2**20} MiB, not a daily listing")
            try:
                items = _items(json.loads(data), label)
            except ValueError as e:  # bad UTF-8 is a ValueError too
                raise InputUnusable(f"{label}: not valid JSON ({e})") from None
        if self._live:
            self._progress = (0, len(items))
        for i, item in enumerate(items, 1):
            self._done = i
            try:
                yield no_lone_surrogates(paper_from_item(item).validate())
            except InvalidRecord as e:
                yield Rejected(f"{label} item {i}", str(e))

    def _fetch(self) -> tuple[list, str]:
        params: dict[str, str | int] = {"limit": PAGE_LIMIT}
        if self.date:
            params["date"] = self.date
        label = f"HF daily papers {self.date or 'latest'}"
        client = self.client or PoliteClient(min_interval=1.0)
        try:
            response = client.get(self.base_url, params=params)
        finally:
            if self.client is None:
                client.close()
        if response.status_code != 200:
            raise InputUnusable(f"{label}: {self.base_url} answered HTTP {response.status_code}",
                                hint="check the date (YYYY-MM-DD, a day with a listing) and the URL")
        try:
            return _items(response.json(), label), label
        except ValueError as e:
            raise InputUnusable(f"{label}: the response is not JSON ({e})") from None


def _check_date(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return datetime.date.fromisoformat(value).isoformat()
    except ValueError:
        raise PaperradarError(f"the date must be YYYY-MM-DD, not {value!r}") from None

