"""The user query language, parsed into a :class:`Query` (pure Python; no search engine here).

::

    graph neural network              free words: ranked, any of them may match (OR)
    "exact phrase"                    required phrase, in title, abstract or authors
    ti:word  abs:word  au:"Yann LeCun"  required word or phrase in one field
    cat:cs.CL  cat:cs                 category, or a whole archive; several cat: mean any of them
    id:2503.11731                     arXiv id (any version, or abs/pdf URL), DOI or store key
    has:code  has:model  has:dataset  has:venue    papers with a code repository, a Hugging Face model, ...
    venue:neurips  venue:"ICLR 2026"  org:caltech  venue (and year), Hugging Face organisation
    topic:12                          papers of a topic (paperradar/topics.py); several mean any of them
    -word  -"a phrase"  -ti:x  -cat:cs.CV   exclusions
    since:2024  until:2025-06  since:2024-03-01   date range (inclusive; a year or month is all of it)
    year:2024  2023..2025  2023..  ..2025      year ranges
    sort:relevance | sort:newest | sort:trending

Every string is either a valid :class:`Query` or raises :class:`QueryError` with a message a user can act
on. An unknown ``name:value`` is plain text; an unbalanced quote makes the rest of the query a phrase.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from dataclasses import dataclass
from datetime import date

from .errors import PaperradarError
from .models import parse_arxiv_id

MAX_QUERY = 1000  # characters

SORTS = ("relevance", "newest", "trending")

# name typed by the user -> canonical field of FieldTerm
_FIELDS = {
    "ti": "title", "title": "title",
    "abs": "abstract", "abstract": "abstract",
    "au": "authors", "author": "authors",
    "cat": "category", "category": "category",
    "id": "id", "arxiv": "id",
}
_FILTERS = ("since", "until", "year", "sort", "topic")
# facets of what surrounds the abstract (paperradar.extract, Hugging Face): several values of one facet mean
# any of them, different facets all of them
_FACETS = ("has", "venue", "org")
HAS = ("code", "model", "dataset", "space", "project", "venue")
_NAME = re.compile(r"([A-Za-z]+):")
_DATE = re.compile(r"(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?")
_YEARS = re.compile(r"(\d{4})?\.\.(\d{4})?")


class QueryError(PaperradarError):
    """A query the user typed cannot be understood; the message says what to change."""


@dataclass(frozen=True)
class FieldTerm:
    """A word or phrase restricted to one field.

    ``field`` is one of ``any`` (title, abstract or authors; only in exclusions), ``title``, ``abstract``,
    ``authors``, ``category`` (lower case) or ``id`` (arXiv id without version, or lower-cased key/DOI).
    A value of several words is matched as a phrase.
    """

    field: str
    value: str


@dataclass(frozen=True)
class Query:
    """A parsed query. Dates are ISO ``YYYY-MM-DD`` strings, both ends inclusive."""

    raw: str
    terms: tuple[str, ...] = ()  # free words, as typed: ranked, any may match
    phrases: tuple[str, ...] = ()  # quoted phrases: required
    fields: tuple[FieldTerm, ...] = ()  # ti:/abs:/au: terms: required
    categories: tuple[str, ...] = ()  # cat: values, lower case: any of them
    ids: tuple[str, ...] = ()  # id: values: any of them
    exclude: tuple[FieldTerm, ...] = ()  # -word, -"phrase", -ti:x, -cat:x, -id:x, -has:code (field "facet")
    facets: tuple[str, ...] = ()  # "has:code", "venue:iclr 2026", "org:caltech" (lower case)
    topics: tuple[int, ...] = ()  # topic: numbers: any of them (the search engine knows their papers)
    since: str | None = None
    until: str | None = None
    sort: str = "relevance"
    text: str = ""  # free words and phrases, without operators: the input of semantic search

    @property
    def has_text(self) -> bool:
        """True when the query has words to rank by (not only filters)."""
        return bool(self.terms or self.phrases or self.fields)

    @property
    def free_words(self) -> int:
        """How many free words the query has, its phrases' included (not field terms or filters)."""
        return len(self.terms) + sum(len(p.split()) for p in self.phrases)

    @property
    def has_filters(self) -> bool:
        return bool(self.categories or self.ids or self.facets or self.exclude or self.since or self.until
                    or self.topics)

    def facet_groups(self) -> list[tuple[str, ...]]:
        """The facets by kind: a paper must have one term of each group."""
        groups: dict[str, list[str]] = {}
        for f in self.facets:
            groups.setdefault(f.split(":", 1)[0], []).append(f)
        return [tuple(v) for v in groups.values()]


def parse_query(raw: str) -> Query:
    """Parse what a user typed into a :class:`Query`; raise :class:`QueryError` if it makes no sense."""
    if not isinstance(raw, str):
        raise QueryError("a query must be text")
    if len(raw) > MAX_QUERY:
        raise QueryError(f"query is {len(raw)} characters long; the limit is {MAX_QUERY}")
    return _Parser(_clean(raw)).parse(raw)


def compose(text: str = "", *, category: str = "", author: str = "", since: str = "", until: str = "") -> str:
    """One query string from a search box and separate filter fields (the web form's date range, category
    and author boxes): the filters become ``cat:``, ``au:"..."``, ``since:`` and ``until:`` terms, so a
    shared URL and the query language mean the same thing."""
    parts = [(text or "").strip()]
    for cat in re.split(r"[\s,]+", category or ""):
        cat = cat.replace('"', "")
        if cat:
            parts.append(f"cat:{cat}")
    author = " ".join((author or "").replace('"', " ").split())
    if author:
        parts.append(f'au:"{author}"')
    for name, value in (("since", since), ("until", until)):
        value = "".join((value or "").split()).replace('"', "")
        if value:
            parts.append(f"{name}:{value}")
    return " ".join(p for p in parts if p)


def _clean(raw: str) -> str:
    # Control characters and lone surrogates become spaces: nothing downstream has to encode them.
    s = "".join(" " if unicodedata.category(c) in ("Cc", "Cs") else c for c in raw)
    s = unicodedata.normalize("NFKC", s)
    # Typographic quotes and dashes from copy-paste count as their ASCII forms.
    return s.translate({0x201C: '"', 0x201D: '"', 0x201E: '"', 0x2212: "-"})


def _has_word(s: str) -> bool:
    """Does ``s`` contain something the search engine's tokenizer keeps (a letter or digit)?"""
    return any(c.isalnum() for c in s)


class _Parser:
    def __init__(self, s: str):
        self.s = s
        self.i = 0
        self.terms: list[str] = []
        self.phrases: list[str] = []
        self.fields: list[FieldTerm] = []
        self.categories: list[str] = []
        self.ids: list[str] = []
        self.facets: list[str] = []
        self.topics: list[int] = []
        self.exclude: list[FieldTerm] = []
        self.text: list[str] = []
        self.since: date | None = None
        self.until: date | None = None
        self.sort = "relevance"

    def parse(self, raw: str) -> Query:
        s, n = self.s, len(self.s)
        while self.i < n:
            if s[self.i].isspace():
                self.i += 1
                continue
            negated = s[self.i] == "-" and self.i + 1 < n and not s[self.i + 1].isspace()
            if negated:
                self.i += 1
            if s[self.i] == '"':
                self._phrase(self._quoted(), negated)
                continue
            word = self._word()
            if negated and word[:1].isdigit() and not _YEARS.fullmatch(word):
                # "-2" is a number (a list as in "E2f-1, -2, -3", a temperature), not an exclusion
                self._word_term("-" + word, False)
                continue
            m = _NAME.match(word)
            name = m.group(1).lower() if m else ""
            if name in _FIELDS or name in _FILTERS or name in _FACETS:
                value = word[m.end():]
                if not value and self.i < n and s[self.i] == '"':
                    value = self._quoted()
                self._named(name, value.strip(), negated, word)
            elif _YEARS.fullmatch(word) and word != "..":
                if negated:
                    raise QueryError(f"cannot exclude a year range ({word})")
                lo, hi = _YEARS.fullmatch(word).groups()
                self._dates(_day(lo, word, end=False) if lo else None,
                            _day(hi, word, end=True) if hi else None)
            else:
                self._word_term(word, negated)
        return self._build(raw)

    # -- lexing ----------------------------------------------------------------------------------------
    def _quoted(self) -> str:
        """The text between the quote at self.i and the next one; an unbalanced quote takes the rest."""
        start = self.i + 1
        end = self.s.find('"', start)
        if end < 0:
            end = len(self.s)
        self.i = end + 1
        return " ".join(self.s[start:end].split())

    def _word(self) -> str:
        """A run of characters up to a space or a quote (a quote starts a new phrase)."""
        start = self.i
        while self.i < len(self.s) and not self.s[self.i].isspace() and self.s[self.i] != '"':
            self.i += 1
        return self.s[start:self.i]

    # -- meaning -----------------------------------------------------------------------------------------
    def _word_term(self, word: str, negated: bool) -> None:
        if not _has_word(word):
            return  # punctuation alone: nothing to search for
        if negated:
            self.exclude.append(FieldTerm("any", word))
        else:
            if word.casefold() not in (t.casefold() for t in self.terms):
                self.terms.append(word)
            self.text.append(word)

    def _phrase(self, phrase: str, negated: bool) -> None:
        if not _has_word(phrase):
            return
        if negated:
            self.exclude.append(FieldTerm("any", phrase))
        else:
            self.phrases.append(phrase)
            self.text.append(phrase)

    def _named(self, name: str, value: str, negated: bool, word: str) -> None:
        if not value:
            raise QueryError(f"{name}: needs a value, e.g. {_EXAMPLES[name]}")
        if name in _FACETS:
            term = facet_term(name, value)
            if negated:
                self.exclude.append(FieldTerm("facet", term))
            else:
                self.facets.append(term)
            return
        if name in _FILTERS:
            if negated:
                raise QueryError(f"cannot exclude {name}: (remove the '-' before {word})")
            if name == "sort":
                sort = value.lower()
                if sort not in SORTS:
                    raise QueryError(f"unknown sort:{value}; use one of "
                                     + ", ".join(f"sort:{s}" for s in SORTS))
                self.sort = sort
            elif name == "topic":
                if not re.fullmatch(r"\d{1,9}", value):
                    raise QueryError(f"topic:{value} is not a topic number; write e.g. topic:12 "
                                     "(the topics page lists them)")
                self.topics.append(int(value))
            elif name == "since":
                self._dates(_day(value, f"since:{value}", end=False), None)
            elif name == "until":
                self._dates(None, _day(value, f"until:{value}", end=True))
            else:  # year:2024 or year:2023..2025
                m = _YEARS.fullmatch(value)
                if re.fullmatch(r"\d{4}", value):
                    lo = hi = value
                elif m and value != "..":
                    lo, hi = m.groups()
                else:
                    raise QueryError(f"year:{value} is not a year; write year:2024 or year:2023..2025")
                self._dates(_day(lo, f"year:{value}", end=False) if lo else None,
                            _day(hi, f"year:{value}", end=True) if hi else None)
            return
        field = _FIELDS[name]
        if not _has_word(value):
            raise QueryError(f"{name}:{value} has no letters or digits to search for")
        if field == "category":
            value = value.lower()
        elif field == "id":
            parsed = parse_arxiv_id(value)
            value = parsed[0] if parsed else value.lower()
        term = FieldTerm(field, value)
        if negated:
            self.exclude.append(term)
        elif field == "category":
            self.categories.append(value)
        elif field == "id":
            self.ids.append(value)
        else:
            self.fields.append(term)

    def _dates(self, since: date | None, until: date | None) -> None:
        # Several date filters narrow the range together.
        if since and (self.since is None or since > self.since):
            self.since = since
        if until and (self.until is None or until < self.until):
            self.until = until

    def _build(self, raw: str) -> Query:
        if self.since and self.until and self.since > self.until:
            raise QueryError(f"the date range is empty: since {self.since.isoformat()} is after "
                             f"until {self.until.isoformat()}")
        q = Query(
            raw=raw, terms=tuple(self.terms), phrases=tuple(self.phrases), fields=tuple(self.fields),
            categories=tuple(dict.fromkeys(self.categories)), ids=tuple(dict.fromkeys(self.ids)),
            facets=tuple(dict.fromkeys(self.facets)), topics=tuple(dict.fromkeys(self.topics)),
            exclude=tuple(dict.fromkeys(self.exclude)),
            since=self.since.isoformat() if self.since else None,
            until=self.until.isoformat() if self.until else None,
            sort=self.sort, text=" ".join(self.text),
        )
        if not q.has_text and not q.has_filters:
            raise QueryError("empty query: type some words, or a filter such as cat:cs.CL or since:2024")
        return q


_EXAMPLES = {
    "ti": 'ti:transformer or ti:"graph neural"', "title": "title:transformer",
    "abs": "abs:diffusion", "abstract": "abstract:diffusion",
    "au": 'au:lecun or au:"Yann LeCun"', "author": 'author:"Yann LeCun"',
    "cat": "cat:cs.CL or cat:cs", "category": "category:cs.CL",
    "id": "id:2503.11731", "arxiv": "arxiv:2503.11731",
    "since": "since:2024-03", "until": "until:2025-06-30", "year": "year:2024 or year:2023..2025",
    "sort": "sort:newest", "has": "has:code", "venue": 'venue:neurips or venue:"ICLR 2026"',
    "org": "org:caltech", "topic": "topic:12",
}


def facet_term(name: str, value: str) -> str:
    """The index term of ``name:value`` (has, venue, org): lower case, spaces collapsed, a year glued to a
    venue set apart (``venue:CVPR2025`` is ``venue:cvpr 2025``). QueryError for an unknown has: value."""
    value = " ".join(value.lower().split())
    if name == "has":
        if value not in HAS:
            raise QueryError(f"has:{value} is not known; use one of " + ", ".join(f"has:{h}" for h in HAS))
        return f"has:{value}"
    if not _has_word(value):
        raise QueryError(f"{name}:{value} has no letters or digits to search for")
    if name == "venue":
        value = re.sub(r"^([a-z][a-z-]*?)[\s'-]*((?:19|20)\d\d)$", r"\1 \2", value)
    return f"{name}:{value}"


def _day(value: str, where: str, *, end: bool) -> date:
    """The first (or, with ``end``, last) day of ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``."""
    m = _DATE.fullmatch(value)
    if not m:
        raise QueryError(f"bad date in {where}: write YYYY, YYYY-MM or YYYY-MM-DD")
    year, month, day = int(m.group(1)), m.group(2), m.group(3)
    try:
        if month is None:
            return date(year, 12, 31) if end else date(year, 1, 1)
        if day is None:
            first = date(year, int(month), 1)
            return first.replace(day=calendar.monthrange(year, first.month)[1]) if end else first
        return date(year, int(month), int(day))
    except ValueError:
        raise QueryError(f"bad date in {where}: no such day") from None
