"""A user's library: papers saved into named tags, "not interested" marks, votes, search inside the
library, and export (BibTeX, RIS, JSON) and import (BibTeX, RIS, CSL JSON, Zotero RDF) of it.

What a user saves and dismisses is what the recommender learns from (paperradar.recommend); votes count
in trending beside imported upvotes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from . import bibtex, references
from .clock import stamp, utc
from .errors import NotFound, PaperradarError
from .search import filter_papers
from .store import Marks, Store, StoredPaper, Tag, User
from .store.groups import GroupStore

MAX_TAG = 60
MAX_TAGS = 200
DEFAULT_TAG = "reading list"
IMPORT_TAG = "imported"
MAX_IMPORT_ENTRIES = 5000
MAX_IMPORT_CHARS = 50 * 2**20  # the web form stops at 5 MB; this bounds the command line's files


class LibraryError(PaperradarError):
    """A library request that cannot be taken as given (a bad tag name, an unreadable import)."""


@dataclass(frozen=True)
class Item:
    paper: StoredPaper
    added: str
    tags: tuple[str, ...]
    notes: tuple = ()  # the notes on it the user may read (paperradar.notes)


def _in_notes(query: str, notes) -> bool:
    """Whether every plain word of a library search is in these notes (the search finds notes too)."""
    words = [w for w in query.lower().split() if not w.startswith("-") and ":" not in w]
    text = " ".join(n.body for n in notes).lower()
    return bool(words) and all(w.strip('"') in text for w in words)


@dataclass
class ImportReport:
    tag: str
    format: str = "bibtex"  # a key of references.FORMATS
    entries: int = 0
    added: int = 0  # new in the tag
    matched: list[tuple[str, StoredPaper]] = field(default_factory=list)  # (citation key, paper)
    unmatched: list[tuple[int, str, str]] = field(default_factory=list)  # (line, citation key, title)
    problems: list[bibtex.Problem] = field(default_factory=list)  # malformed entries, skipped

    def to_dict(self) -> dict:
        return {"tag": self.tag, "format": self.format, "entries": self.entries,
                "matched": len(self.matched), "added": self.added,
                "unmatched": [{"line": ln, "key": k, "title": t} for ln, k, t in self.unmatched],
                "problems": [{"line": p.line, "message": p.message} for p in self.problems]}


def tag_name(name: str | None) -> str:
    """A tag name as stored: whitespace collapsed, 1 to MAX_TAG printable characters."""
    name = " ".join((name or "").split())
    if not name:
        raise LibraryError("give the tag a name")
    if len(name) > MAX_TAG or not name.isprintable():
        raise LibraryError(f"a tag name is at most {MAX_TAG} printable characters")
    return name


def bibtex_entry(p: StoredPaper, taken: set[str], tags: tuple[str, ...] | None = None,
                 abstract: bool = True) -> tuple[str, str, dict[str, str]]:
    """A paper as a BibTeX ``(key, type, fields)`` entry (for :func:`bibtex.dumps`), its key unique
    against ``taken``; ``tags`` become its keywords (a library export writes the field even when empty)."""
    year = (p.submitted or p.announced or "")[:4] or None
    fields = {"title": p.title, "author": " and ".join(p.authors)}
    if year:
        fields["year"] = year
    if p.arxiv_id:
        fields.update(eprint=p.arxiv_id, archivePrefix="arXiv")
        if p.primary_category:
            fields["primaryClass"] = p.primary_category
        fields["url"] = f"https://arxiv.org/abs/{p.arxiv_id}"
    elif p.abs_url:
        fields["url"] = p.abs_url
    if p.doi:
        fields["doi"] = p.doi
    if p.journal_ref:
        fields["journal"] = p.journal_ref
    if tags is not None:
        fields["keywords"] = ", ".join(tags)
    if abstract and p.abstract:
        fields["abstract"] = p.abstract
    return bibtex.cite_key(p.authors, year, p.title, taken), "misc", fields


def ris_record(p: StoredPaper, taken: set[str], tags: tuple[str, ...] = ()) -> dict:
    """A paper as a RIS record (rispy's field names, for :func:`references.ris.dumps`): the fields of
    :func:`bibtex_entry`, the arXiv id also as Zotero writes it in a note ("arXiv:<id> [<class>]")."""
    key, _, fields = bibtex_entry(p, taken, tags)
    date = (p.submitted or p.announced or "")[:10]
    record = {"type_of_reference": "JOUR" if p.journal_ref else "GEN", "id": key, "title": p.title,
              "authors": list(p.authors)}
    if date:
        record.update(year=date[:4], date=date.replace("-", "/"))
    if p.abstract:
        record["abstract"] = p.abstract
    if p.doi:
        record["doi"] = p.doi
    if fields.get("url"):
        record["urls"] = [fields["url"]]
    if p.journal_ref:
        record["journal_name"] = p.journal_ref
    if tags:
        record["keywords"] = list(tags)
    if p.arxiv_id:
        record["notes"] = [f"arXiv:{p.arxiv_id}" + (f" [{p.primary_category}]" if p.primary_category else "")]
    return record


def paper_bibtex(p: StoredPaper) -> str:
    """One paper's BibTeX entry, to cite it: the library export's entry, without keywords or abstract
    (a reference list wants neither)."""
    return bibtex.dumps([bibtex_entry(p, set(), abstract=False)])


class Library:
    """The library operations of one store; every method takes the signed-in user."""

    def __init__(self, store: Store):
        self.store = store
        self.db = store.accounts

    # -- saving, dismissing, voting -------------------------------------------------------------------
    # Each change is one store transaction, checks included: with no lock around the web handlers, two
    # requests at once must not both pass a limit or act on a tag the other just renamed.
    def save(self, user: User, ref: str, tag: str | None = None, now: dt.datetime | None = None) -> bool:
        """Save a paper (any reference Store.get takes) into a tag; False if it was there already."""
        name = tag_name(tag or DEFAULT_TAG)
        paper = self.store.get(ref)
        with self.store.transaction():
            self._room_for(user, name)
            return self.db.save(user.id, name, paper.id, stamp(utc(now)))

    def _room_for(self, user: User, name: str) -> None:
        """LibraryError if saving into tag ``name`` would make more than MAX_TAGS tags (in a transaction)."""
        tags = self.db.tags(user.id)
        if len(tags) >= MAX_TAGS:
            try:
                self.db.tag(user.id, name)  # the database's own case rule for "the same tag"
            except NotFound:
                raise LibraryError(f"at most {MAX_TAGS} tags") from None

    def unsave(self, user: User, ref: str, tag: str | None = None) -> int:
        """Take a paper out of one tag, or out of the library (``tag`` None)."""
        paper = self.store.get(ref)
        with self.store.transaction():
            tag_id = self.db.tag(user.id, tag).id if tag else None
            return self.db.unsave(user.id, paper.id, tag_id)

    def dismiss(self, user: User, ref: str, on: bool = True, now: dt.datetime | None = None) -> None:
        """Mark a paper "not interested" (the feed hides it and learns from it), or take that back."""
        self.db.dismiss(user.id, self.store.get(ref).id, stamp(utc(now)), on)

    def vote(self, user: User, ref: str, on: bool = True) -> bool:
        """Upvote a paper (one vote per user and paper), or take the vote back; True if anything changed."""
        paper = self.store.get(ref)
        if on:
            return self.store.add_vote(paper.id, user.voter)
        return self.store.remove_vote(paper.id, user.voter)

    def marks(self, user: User | None, papers: list[StoredPaper]) -> dict[int, Marks]:
        return self.db.marks(user, [p.id for p in papers]) if user else {}

    # -- tags -----------------------------------------------------------------------------------------
    def tags(self, user: User) -> list[Tag]:
        return self.db.tags(user.id)

    def rename_tag(self, user: User, old: str, new: str) -> None:
        new = tag_name(new)
        with self.store.transaction():
            self.db.rename_tag(user.id, self.db.tag(user.id, old).id, new)

    def delete_tag(self, user: User, name: str) -> None:
        """Delete a tag; its papers stay in the user's other tags (if any)."""
        with self.store.transaction():
            self.db.delete_tag(user.id, self.db.tag(user.id, name).id)

    # -- reading --------------------------------------------------------------------------------------
    def items(self, user: User, tag: str | None = None, query: str | None = None) -> list[Item]:
        """The library (or one tag), most recently saved first; ``query`` keeps the papers that contain
        every word and match its filters (the search syntax: au:, cat:, since:, -word, "phrase")."""
        tag_id = self.db.tag(user.id, tag).id if tag else None
        rows = self.db.library(user.id, tag_id)
        papers = {p.id: p for p in self.store.get_many(pid for pid, _, _ in rows)}
        notes = GroupStore(self.store).notes_for(user.id, list(papers))  # the user's and their groups'
        if query and query.strip():
            keep = {p.id for p in filter_papers(list(papers.values()), query)}
            keep |= {pid for pid, found in notes.items() if _in_notes(query, found)}
            papers = {pid: p for pid, p in papers.items() if pid in keep}
        return [Item(papers[pid], added, tags, tuple(notes.get(pid, ()))) for pid, added, tags in rows
                if pid in papers]

    # -- export ---------------------------------------------------------------------------------------
    def export_json(self, user: User, tag: str | None = None, now: dt.datetime | None = None) -> dict:
        items = self.items(user, tag)
        return {
            "format": "paperradar-library", "version": 1, "exported": stamp(utc(now)), "tag": tag,
            "papers": [{
                "arxiv_id": i.paper.arxiv_id, "doi": i.paper.doi, "title": i.paper.title,
                "authors": i.paper.authors, "categories": i.paper.categories,
                "submitted": i.paper.submitted, "abstract": i.paper.abstract,
                "url": f"https://arxiv.org/abs/{i.paper.arxiv_id}" if i.paper.arxiv_id else i.paper.abs_url,
                "tags": list(i.tags), "added": i.added} for i in items],
        }

    def export_bibtex(self, user: User, tag: str | None = None) -> str:
        taken: set[str] = set()
        return bibtex.dumps([bibtex_entry(i.paper, taken, tags=i.tags) for i in self.items(user, tag)])

    def export_ris(self, user: User, tag: str | None = None) -> str:
        """The library (or one tag) as RIS, for Zotero, EndNote and the rest; the RIS import reads it back."""
        taken: set[str] = set()
        return references.ris.dumps([ris_record(i.paper, taken, i.tags) for i in self.items(user, tag)])

    # -- import ---------------------------------------------------------------------------------------
    def import_bibtex(self, user: User, text: str, tag: str | None = None,
                      now: dt.datetime | None = None) -> ImportReport:
        """Save the papers a BibTeX file cites into a tag (:meth:`import_file` with the format given)."""
        return self.import_file(user, text, tag, format="bibtex", now=now)

    def import_file(self, user: User, text: str, tag: str | None = None, format: str | None = None,
                    filename: str | None = None, now: dt.datetime | None = None) -> ImportReport:
        """Save the papers a reference file cites into a tag: BibTeX, RIS, CSL JSON or Zotero RDF
        (``format`` one of references.CHOICES; None or "auto": detected from the content, then from
        ``filename``'s extension). Every format's records are matched the same way — by arXiv id, then
        DOI, then title (:func:`bibtex.identifiers`, :meth:`Store.find`). Records that match no paper in
        the store are reported with their line, as are malformed ones, which are skipped.
        The file is parsed first, outside any transaction (the slow part); matching and saving are then
        one transaction, so the papers matched are the papers saved."""
        name = tag_name(tag or IMPORT_TAG)
        if len(text) > MAX_IMPORT_CHARS:
            raise LibraryError(f"the file is larger than {MAX_IMPORT_CHARS // 2**20} MB; split it")
        fmt = references.format_named(format, text, filename)
        try:
            entries, problems = references.read(text, fmt)
        except references.Unreadable as e:
            raise LibraryError(f"cannot read that file as {fmt.label}: {e}", hint=e.hint) from None
        if len(entries) > MAX_IMPORT_ENTRIES:
            raise LibraryError(f"at most {MAX_IMPORT_ENTRIES:,} entries per import; split the file")
        if not entries and not problems:
            raise LibraryError(f"that file holds no {fmt.label} {fmt.records}")
        wanted = [(e, bibtex.identifiers(e)) for e in entries]
        report = ImportReport(tag=name, format=fmt.name, entries=len(entries), problems=problems)
        with self.store.transaction():
            ids: list[int] = []
            for e, (arxiv_id, doi, title) in wanted:
                paper = self.store.find(arxiv_id, doi, title)
                if paper is None:
                    report.unmatched.append((e.line, e.key, title or ""))
                    continue
                report.matched.append((e.key, paper))
                ids.append(paper.id)
            if ids:
                self._room_for(user, name)
                report.added = self.db.save_many(user.id, name, list(dict.fromkeys(ids)), stamp(utc(now)))
        return report
