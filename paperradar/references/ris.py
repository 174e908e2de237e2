"""RIS (Zotero's, EndNote's, most databases' export) read and written with rispy.

Reading: the file is cut into records here (``TY  -`` to ``ER  -``, with their lines), and rispy parses
each record alone, so that one broken record is reported with its line and skipped while the others are
read. Text between records (numbering, headers) is ignored, as rispy ignores it; a ``TY`` met before the
previous record's ``ER``, or a file that ends inside a record, makes that record a problem.

Writing: one record per paper, each value on one line (whitespace collapsed, control characters out),
through rispy's writer without its "1." record headers.
"""

from __future__ import annotations

import re

import rispy

from ..bibtex import Entry, Problem, entry_from_text

_TAG = re.compile(r"([A-Z][A-Z0-9])  -(?: |$)")  # the tag rule rispy applies: two characters, "  -"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_YEAR = re.compile(r"[0-9]{4}")
# where arXiv ids, DOIs and URLs hide in the RIS that Zotero, EndNote and the databases write
_URLS = ("urls", "file_attachments1", "file_attachments2", "figure")
_NOTES = ("notes", "note", "accession_number", "type_of_work", "call_number", "number", "custom1",
          "custom2", "label", "research_notes")
_JOURNALS = ("journal_name", "alternate_title3", "secondary_title", "alternate_title1", "alternate_title2")
_TYPES = {"JOUR": "article", "JFULL": "article", "EJOUR": "article", "CONF": "inproceedings",
          "CPAPER": "inproceedings", "BOOK": "book", "CHAP": "incollection", "THES": "phdthesis",
          "RPRT": "techreport", "UNPB": "unpublished"}


def _parser() -> rispy.RisParser:
    # no ";"-splitting of URLs (a URL may hold one); lists for repeated tags that are not list tags
    return rispy.RisParser(delimiter_tags_mapping={}, enforce_list_tags=False)


def read(text: str) -> tuple[list[Entry], list[Problem]]:
    """The records of a RIS text as BibTeX entries, and a problem (with its line) per broken record."""
    entries: list[Entry] = []
    problems: list[Problem] = []
    record: list[str] | None = None
    start = 0
    for n, line in enumerate(text.splitlines(), 1):
        tag = m.group(1) if (m := _TAG.match(line)) else None
        if tag == "TY":
            if record is not None:
                problems.append(Problem(start, "the record has no ER line before the next TY; skipped"))
            record, start = [line], n
        elif record is not None:
            record.append(line)
            if tag == "ER":
                _record(record, start, len(entries) + len(problems) + 1, entries, problems)
                record = None
    if record is not None:
        problems.append(Problem(start, "the file ends inside this record (no ER line); skipped"))
    return entries, problems


def _record(lines: list[str], line: int, number: int, entries: list[Entry], problems: list[Problem]) -> None:
    try:
        (ref,) = _parser().parse_lines(iter(lines))
    except (ValueError, TypeError, KeyError, AttributeError) as e:  # rispy on a record it cannot take
        problems.append(Problem(line, f"unreadable RIS record ({type(e).__name__}); skipped"))
        return
    entries.append(entry_from_text(*_fields(ref, number), line))


def _text(value) -> str:
    """A rispy value (a string, a list of them, or a dict of unknown tags) as one string."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return " ; ".join(v for v in value if isinstance(v, str))
    return ""


def _fields(ref: dict, number: int) -> tuple[str, str, dict[str, str]]:
    def first(*names: str) -> str:
        return next((t for name in names if (t := _text(ref.get(name)).strip())), "")

    def joined(names: tuple[str, ...]) -> str:
        return " ; ".join(t for name in names if (t := _text(ref.get(name)).strip()))

    authors = ref.get("authors") or ref.get("first_authors") or []
    year = _YEAR.search(first("year", "publication_year", "date"))
    fields = {
        "title": first("title", "primary_title", "translated_title", "short_title"),
        "author": " and ".join(a for a in (authors if isinstance(authors, list) else [authors])
                               if isinstance(a, str)),
        "year": year.group() if year else "",
        "doi": first("doi"),
        "url": joined(_URLS),
        "note": joined(_NOTES),
        "journal": first(*_JOURNALS),
    }
    kind = _TYPES.get(first("type_of_reference").upper(), "misc")
    return kind, first("id") or f"record {number}", fields


# -- writing -------------------------------------------------------------------------------------------

class _Writer(rispy.RisWriter):
    def set_header(self, count: int) -> str:
        return ""  # rispy numbers records ("1."); RIS readers skip it, but it is not RIS


def one_line(value: str) -> str:
    """A value as a RIS line holds it: no control characters, whitespace collapsed."""
    return " ".join(_CONTROL.sub(" ", value).split())


def dumps(records: list[dict]) -> str:
    """A RIS file of rispy records (``{"type_of_reference": "JOUR", "title": ..., "authors": [...]}``),
    every value made one line; one blank line between records."""
    clean = []
    for ref in records:
        out = {}
        for name, value in ref.items():
            value = [one_line(v) for v in value] if isinstance(value, list) else one_line(str(value))
            if value:
                out[name] = [v for v in value if v] if isinstance(value, list) else value
        clean.append(out)
    return _Writer(delimiter_tags_mapping={}).formats(clean)
