"""The paper record every source produces and the store keeps, plus identifier rules.

A source builds :class:`Paper` objects and yields them, or yields :class:`Rejected` for a record it
could not use. The store merges papers by :func:`paper_key`.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

from . import clock

# Field limits: anything beyond them is not a paper but garbage (or an attack on memory).
MAX_TITLE = 1_000
MAX_ABSTRACT = 20_000
MAX_AUTHORS = 5_000
MAX_AUTHOR = 1_000  # real records carry whole author lists glued into one name (2506.02197)
MAX_CATEGORIES = 50
MAX_SHORT = 2_000  # comment, journal-ref, DOI
MAX_DAYS_AHEAD = 366  # a date later than this from today is a broken record (it would top "newest" forever)

# Metadata authority of each source: when two sources describe the same version of a paper, the
# higher rank wins field by field; a lower rank only fills fields that are still empty.
SOURCE_RANK = {
    "arxiv": 3,
    "oai": 3,
    "snapshot": 3,
    "jsonl": 2,
    "csv": 2,
    "hf-daily": 1,
    "page": 0,
}

_NEW_ID = re.compile(r"^(\d{4}\.\d{4,5})(?:v(\d+))?$")
_OLD_ID = re.compile(r"^([a-z][a-z\-]*(?:\.[A-Z]{2})?/\d{7})(?:v(\d+))?$")
_NON_WORD = re.compile(r"[^\w]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffd]")
_ID_PREFIXES = ("arxiv:", "https://arxiv.org/abs/", "http://arxiv.org/abs/", "https://arxiv.org/pdf/",
                "http://arxiv.org/pdf/", "oai:arxiv.org:")


class InvalidRecord(ValueError):
    """A record that cannot become a paper; the message says why."""


def parse_arxiv_id(text: str) -> tuple[str, int | None] | None:
    """Split an arXiv identifier (or abs/pdf URL) into (id without version, version).

    Returns None when the text is not an arXiv identifier.

    >>> parse_arxiv_id("2503.11731v2")
    ('2503.11731', 2)
    >>> parse_arxiv_id("hep-th/9901001")
    ('hep-th/9901001', None)
    """
    s = text.strip()
    low = s.lower()
    for prefix in _ID_PREFIXES:
        if low.startswith(prefix):
            s = s[len(prefix):]
            break
    if s.endswith(".pdf"):
        s = s[:-4]
    m = _NEW_ID.match(s) or _OLD_ID.match(s)
    if not m:
        return None
    return m.group(1), int(m.group(2)) if m.group(2) else None


@lru_cache(maxsize=16384)  # an upsert batch normalizes each title several times
def normalize_title(title: str) -> str:
    """Case-, accent-, punctuation- and space-insensitive form of a title, used to merge by title."""
    if not title.isascii():
        s = unicodedata.normalize("NFKD", title)
        title = "".join(c for c in s if not unicodedata.combining(c))
    return " ".join(_NON_WORD.sub(" ", title.casefold()).split())


def clean_text(text: str | None) -> str:
    """Collapse the hard line wraps and runs of whitespace that arXiv metadata carries."""
    if not text:
        return ""
    return " ".join(text.split())


@dataclass(slots=True)
class Paper:
    """One paper as a source saw it. Empty strings / None mean "this source does not say"."""

    title: str
    source: str
    arxiv_id: str | None = None
    version: int | None = None
    abstract: str = ""
    authors: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)  # primary first
    submitted: str | None = None  # ISO 8601 (date or UTC datetime): first version
    updated: str | None = None  # latest version
    announced: str | None = None  # date of the arXiv listing / publication on HF
    comment: str | None = None
    journal_ref: str | None = None
    doi: str | None = None
    upvotes: int | None = None
    hf_comments: int | None = None  # comments on the paper's Hugging Face page
    # What Hugging Face Papers says around the abstract (labelled as theirs wherever shown)
    hf_summary: str | None = None  # its AI summary, one sentence
    hf_keywords: list[str] = field(default_factory=list)
    organization: dict | None = None  # {"name": "caltech", "fullname": "California institute of technology"}
    code_url: str | None = None  # the repository a source names (Hugging Face's githubRepo)
    project_url: str | None = None  # a project page a source names
    github_stars: int | None = None

    @property
    def key(self) -> str:
        return paper_key(self.arxiv_id, self.doi, self.title)

    @property
    def abs_url(self) -> str | None:
        return f"https://arxiv.org/abs/{self.arxiv_id}" if self.arxiv_id else None

    @property
    def pdf_url(self) -> str | None:
        return f"https://arxiv.org/pdf/{self.arxiv_id}" if self.arxiv_id else None

    def validate(self) -> Paper:
        """Check limits and required fields; raise :class:`InvalidRecord` with a reason."""
        if not self.title or not self.title.strip():
            raise InvalidRecord("missing title")
        if len(self.title) > MAX_TITLE:
            raise InvalidRecord(f"title is {len(self.title)} characters (limit {MAX_TITLE})")
        if not normalize_title(self.title):  # "???": nothing to show, search or merge by
            raise InvalidRecord("the title has no letter or digit")
        if len(self.abstract) > MAX_ABSTRACT:
            raise InvalidRecord(f"abstract is {len(self.abstract)} characters (limit {MAX_ABSTRACT})")
        if len(self.authors) > MAX_AUTHORS:
            raise InvalidRecord(f"{len(self.authors)} authors (limit {MAX_AUTHORS})")
        if any(len(a) > MAX_AUTHOR for a in self.authors):
            raise InvalidRecord(f"an author name is longer than {MAX_AUTHOR} characters")
        if len(self.categories) > MAX_CATEGORIES:
            raise InvalidRecord(f"{len(self.categories)} categories (limit {MAX_CATEGORIES})")
        for name in ("comment", "journal_ref", "doi"):
            value = getattr(self, name)
            if value is not None and len(value) > MAX_SHORT:
                raise InvalidRecord(f"{name} is longer than {MAX_SHORT} characters")
        if self.version is not None and not (0 < self.version < 10_000):
            raise InvalidRecord(f"absurd version number {self.version}")
        if self.upvotes is not None and not (0 <= self.upvotes < 10_000_000):
            raise InvalidRecord(f"absurd upvote count {self.upvotes}")
        if self.hf_comments is not None and not (0 <= self.hf_comments < 10_000_000):
            raise InvalidRecord(f"absurd comment count {self.hf_comments}")
        if self.github_stars is not None and not (0 <= self.github_stars < 100_000_000):
            raise InvalidRecord(f"absurd star count {self.github_stars}")
        if self.hf_summary is not None and len(self.hf_summary) > MAX_SHORT:
            raise InvalidRecord(f"hf_summary is longer than {MAX_SHORT} characters")
        if len(self.hf_keywords) > MAX_CATEGORIES or any(len(k) > 200 for k in self.hf_keywords):
            raise InvalidRecord("too many or too long keywords")
        for name in ("code_url", "project_url"):
            value = getattr(self, name)
            if value is not None and len(value) > 500:
                raise InvalidRecord(f"{name} is longer than 500 characters")
        latest = (clock.utc() + dt.timedelta(days=MAX_DAYS_AHEAD)).strftime("%Y-%m-%d")
        for name in ("submitted", "updated", "announced"):
            value = getattr(self, name)
            if value and value[:10] > latest:
                raise InvalidRecord(f"{name} {value[:10]} is in the future")
        # NUL and other C0 controls (bar tab/newline) mean a binary or mis-decoded input.
        if _CONTROL.search(self.title) or _CONTROL.search(self.abstract):
            raise InvalidRecord("control characters in title or abstract (bad encoding?)")
        return self


def paper_key(arxiv_id: str | None, doi: str | None, title: str) -> str:
    """The stable key of a paper: arXiv id without version, else ``doi:<doi>``, else ``title:<norm>``."""
    if arxiv_id:
        return arxiv_id
    if doi:
        return "doi:" + doi.strip().lower()
    return "title:" + normalize_title(title)


@dataclass(slots=True, frozen=True)
class Rejected:
    """A record a source could not use: where it was and why."""

    where: str  # e.g. "papers.jsonl line 12", "arXiv API page 2 entry 5"
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"
