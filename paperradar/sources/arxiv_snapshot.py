"""The Kaggle arXiv metadata snapshot (``arxiv-metadata-oai-snapshot.json``): JSON lines, one paper a line.

The full dump is ~2.6M records / 4.5 GB, so it is streamed line by line and the category and date filters
run before a Paper is built: a line that cannot contain a wanted category is skipped without even being
decoded. Records filtered out are neither papers nor rejects.

Record fields used: ``id``, ``title``, ``abstract``, ``authors`` / ``authors_parsed``, ``categories``
(space-separated, primary first), ``comments``, ``journal-ref``, ``doi``, ``versions`` (``[{"version": "v1",
"created": "Mon, 2 Apr 2007 19:18:42 GMT"}, ...]``). ``update_date`` is when the *metadata* last changed,
not an announcement, so ``announced`` stays empty.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import date

from ..errors import InputUnusable, PaperradarError
from ..models import InvalidRecord, Paper, Rejected, parse_arxiv_id
from .base import Item
from .jsonl import (
    TOO_LONG,
    FileSource,
    clean_categories,
    collapse,
    iso_date,
    json_object,
    latex_to_unicode,
    no_lone_surrogates,
    sniff_json_lines,
    split_authors,
)

# Fields only the snapshot has: the first record must show some, or this is another kind of JSON lines.
_SNAPSHOT_FIELDS = frozenset(
    {"versions", "authors_parsed", "update_date", "journal-ref", "report-no", "submitter"})
_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
_RFC2822_GMT = re.compile(r"(?:[A-Z][a-z]{2}, )?(\d{1,2}) ([A-Z][a-z]{2}) (\d{4}) (\d\d:\d\d:\d\d) GMT")
_AFFILIATION = re.compile(r"\([^()]*\)")


def version_time(created: object) -> str | None:
    """``"Mon, 2 Apr 2007 19:18:42 GMT"`` -> ``"2007-04-02T19:18:42Z"`` (fast for the dump's form)."""
    if isinstance(created, str):
        m = _RFC2822_GMT.fullmatch(created)
        if m and m.group(2) in _MONTHS:
            return f"{m.group(3)}-{_MONTHS[m.group(2)]:02d}-{int(m.group(1)):02d}T{m.group(4)}Z"
    return iso_date(created, "version date")


def parse_versions(versions: object) -> tuple[int | None, str | None, str | None]:
    """(highest version number, time of the first version, time of the highest) from ``versions``."""
    if not versions:
        return None, None, None
    if not isinstance(versions, list):
        raise InvalidRecord("versions is not a list")
    numbered = []
    for v in versions:
        label = v.get("version") if isinstance(v, dict) else None
        if not isinstance(label, str) or not label[1:].isdigit() or label[:1] not in "vV":
            raise InvalidRecord(f"bad version entry {str(v)[:60]!r}")
        numbered.append((int(label[1:]), v.get("created")))
    numbered.sort(key=lambda x: x[0])  # the dump lists them in order, but nothing guarantees it
    return numbered[-1][0], version_time(numbered[0][1]), version_time(numbered[-1][1])


def snapshot_authors(rec: dict) -> list[str]:
    """Author names in order: from ``authors_parsed`` ([last, first, suffix, affiliation...]) as
    "First Last Suffix", else from the LaTeX-ish ``authors`` string, parenthesised affiliations removed."""
    parsed = rec.get("authors_parsed")
    if isinstance(parsed, list) and parsed:
        names = []
        for p in parsed:
            if not isinstance(p, list) or not all(isinstance(x, str) for x in p[:3]):
                raise InvalidRecord("authors_parsed is not a list of [last, first, suffix]")
            last, first, suffix = (p + ["", ""])[:3]
            name = " ".join(f"{first} {last} {suffix}".split())
            if "\\" in name or "{" in name:  # the dump converts most accents, but not all
                name = latex_to_unicode(name)
            # The dump's name splitter writes hyphenated initials as "C. -P."; arXiv has "C.-P.".
            name = name.replace(". -", ".-")
            if name:
                names.append(name)
        return names
    authors = rec.get("authors")
    if isinstance(authors, str):
        s = authors
        while "(" in s:  # "(1) Univ..." and nested "((1) Univ A, (2) Univ B)"
            stripped = _AFFILIATION.sub(" ", s)
            if stripped == s:
                break
            s = stripped
        return split_authors(s)
    return split_authors(authors)


def _iso_day(value: str | None, name: str) -> str | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise PaperradarError(f"{name} must be a date YYYY-MM-DD, not {value!r}") from None


class SnapshotSource(FileSource):
    """Papers from the Kaggle arXiv snapshot, optionally only some categories and submission dates.

    ``categories``: a paper matches if any of its categories equals one given ("cs.CL") or belongs to a given
    archive ("cs" matches "cs.CL"). ``since`` / ``until``: inclusive bounds on the first version's UTC date.
    """

    name = "snapshot"

    def __init__(self, path: str, categories: Sequence[str] = (), since: str | None = None,
                 until: str | None = None):
        super().__init__(path)
        if isinstance(categories, str):  # one category given bare, not in a list
            categories = [categories]
        # "cs.CL,cs.AI" or "cs.CL cs.AI" in one argument is a list too.
        self.categories = frozenset(
            c.rstrip(".") for arg in categories for c in arg.replace(",", " ").split() if c.rstrip("."))
        self.since = _iso_day(since, "since")
        self.until = _iso_day(until, "until")
        # Category names are plain ASCII and JSON never escapes those, so a line without any of them as
        # bytes cannot match and is skipped before decoding: most of a 4.5 GB dump, for a narrow filter.
        self._needles = tuple(c.encode() for c in self.categories)

    def _wanted(self, categories: list[str]) -> bool:
        wanted = self.categories
        return any(c in wanted or c.split(".", 1)[0] in wanted for c in categories)

    def __iter__(self) -> Iterator[Item]:
        with self._opened() as f:
            sniff_json_lines(f)
            label, needles, checked = f.label, self._needles, False
            for n, line in f.lines():
                if line is None:
                    yield Rejected(f"{label} line {n}", TOO_LONG)
                    continue
                if needles and checked and not any(x in line for x in needles):
                    continue
                if line.isspace():
                    continue
                try:
                    rec = json_object(line)
                    if not checked:
                        if "id" not in rec or not _SNAPSHOT_FIELDS.intersection(rec):
                            fields = ", ".join(list(rec)[:8])
                            raise InputUnusable(f"{label}: not the arXiv snapshot (fields: {fields})",
                                                hint="for other JSON lines files use the jsonl source")
                        checked = True
                    paper = self._record(rec)
                    if paper is not None:
                        paper = no_lone_surrogates(paper.validate())
                except InvalidRecord as e:
                    yield Rejected(f"{label} line {n}", str(e))
                    continue
                if paper is not None:
                    yield paper

    def _record(self, rec: dict) -> Paper | None:
        """The record's Paper (not validated), or None when the filters leave it out.

        The filters run first, on the few fields they need, so skipped records cost little.
        """
        categories = rec.get("categories") or ""
        if not isinstance(categories, str):
            raise InvalidRecord("categories is not a string")
        categories = categories.split()
        if self.categories and not self._wanted(categories):
            return None
        version, submitted, updated = parse_versions(rec.get("versions"))
        if self.since or self.until:
            day = submitted[:10] if submitted else None
            if day is None or (self.since and day < self.since) or (self.until and day > self.until):
                return None
        return self._paper(rec, categories, version, submitted, updated)

    def _paper(self, rec: dict, categories: list[str], version: int | None, submitted: str | None,
               updated: str | None) -> Paper:
        ident = rec.get("id")
        parsed = parse_arxiv_id(ident) if isinstance(ident, str) else None
        if parsed is None:
            raise InvalidRecord(f"id {str(ident)[:60]!r} is not an arXiv identifier")
        texts = {}
        for field in ("title", "abstract", "comments", "journal-ref", "doi"):
            value = rec.get(field)
            if value is not None and not isinstance(value, str):
                raise InvalidRecord(f"{field} is not a string")
            texts[field] = collapse(value)
        doi = texts["doi"].split()[0] if texts["doi"] else None  # a few records list several DOIs
        return Paper(
            title=texts["title"],
            source=self.name,
            arxiv_id=parsed[0],
            version=version or parsed[1],
            abstract=texts["abstract"],
            authors=snapshot_authors(rec),
            categories=clean_categories(categories),
            submitted=submitted,
            updated=updated,
            comment=texts["comments"] or None,
            journal_ref=texts["journal-ref"] or None,
            doi=doi,
        )
