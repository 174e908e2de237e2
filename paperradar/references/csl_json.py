"""CSL JSON (Zotero's "CSL JSON" export, Better BibTeX's, pandoc's): an array of items.

The array is read one item at a time (``json.JSONDecoder.raw_decode``), so each item keeps its line and a
syntax error costs only the item it is in: reading resumes at the next line that opens an item at the
indentation the file's items have (every pretty-printed export), searching from where the error was found,
so the scan stays linear. An item that is not an object, or whose title is not text, is skipped and
reported. Titles lose the HTML markup CSL allows in them (``<i>``, ``<span class="nocase">``).
"""

from __future__ import annotations

import html
import json
import re

from ..bibtex import Entry, Problem, entry_from_text
from .errors import Unreadable

_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"\s*")
_MARKUP = re.compile(r"<[^<>]{0,200}>")
_TYPES = {"article-journal": "article", "paper-conference": "inproceedings", "book": "book",
          "chapter": "incollection", "thesis": "phdthesis", "report": "techreport"}
# text fields where an arXiv id, a DOI or a URL may be (Zotero puts "arXiv:<id>" in number and note)
_NOTES = ("number", "note", "archive_location", "call-number", "references", "annote")


def read(text: str) -> tuple[list[Entry], list[Problem]]:
    """The items of a CSL JSON text (an array of items, or one item) as BibTeX entries."""
    pos = _SPACE.match(text).end()
    if text.startswith("{", pos):  # a single item
        item, problems = _one(text, pos)
        return ([item] if item else []), problems
    if not text.startswith("[", pos):
        raise Unreadable("not CSL JSON: the file does not start with [ or {")
    return _array(text, pos + 1)


def _one(text: str, pos: int) -> tuple[Entry | None, list[Problem]]:
    try:
        value, _ = _DECODER.raw_decode(text, pos)
    except (ValueError, RecursionError) as e:
        raise Unreadable(f"not CSL JSON: {_why(e)}") from None
    entry, problem = _item(value, 1, 1)
    return entry, [problem] if problem else []


class _Lines:
    """1-based line numbers of offsets, asked for in increasing order (one pass over the text)."""

    def __init__(self, text: str):
        self.text, self.at, self.line = text, 0, 1

    def __call__(self, pos: int) -> int:
        self.line += self.text.count("\n", self.at, pos)
        self.at = pos
        return self.line


def _array(text: str, pos: int) -> tuple[list[Entry], list[Problem]]:
    entries: list[Entry] = []
    problems: list[Problem] = []
    line_of = _Lines(text)
    item_start: re.Pattern | None = None  # how this file's items begin a line, learnt from the first
    n = 0
    while True:
        pos = _SPACE.match(text, pos).end()
        if text.startswith("]", pos):
            return entries, problems
        if pos >= len(text):
            problems.append(Problem(line_of(pos), "the file ends before the array is closed"))
            return entries, problems
        n += 1
        line = line_of(pos)
        if item_start is None:
            indent = text[text.rfind("\n", 0, pos) + 1:pos]
            if not indent.strip():
                item_start = re.compile("^" + re.escape(indent) + r"\{", re.M)
        # a pretty-printed file's next item starts a line at the items' indentation: each item is decoded
        # from its own slice, so that an error's line count (and the retry) never rescans the file
        nxt = item_start.search(text, pos + 1) if item_start else None
        chunk = text[pos:nxt.start()] if nxt else text[pos:] if item_start else text
        try:
            value, end = _DECODER.raw_decode(chunk, 0 if item_start else pos)
        except (ValueError, RecursionError) as e:
            why = _why(e, line - 1 if item_start else 0, pos if item_start and getattr(e, "lineno", 0) == 1
                       else 0, text)
            if nxt is None:
                problems.append(Problem(line, f"{why}; the rest of the file was not read"))
                return entries, problems
            pos = nxt.end() - 1
            problems.append(Problem(line, f"{why}; skipped up to the next item, line {line_of(pos)}"))
            continue
        if item_start:
            end += pos
        entry, problem = _item(value, n, line)
        if entry:
            entries.append(entry)
        else:
            problems.append(problem)
        pos = _SPACE.match(text, end).end()
        if text.startswith(",", pos):
            pos += 1
        elif not text.startswith("]", pos):
            problems.append(Problem(line_of(pos), "expected ',' or ']' after an item; the rest of the file "
                                                  "was not read"))
            return entries, problems


def _why(e: Exception, lines_before: int = 0, start: int = 0, text: str = "") -> str:
    """What is wrong, with the line and column in the whole file (``e`` may come from a slice that starts
    at offset ``start``, after ``lines_before`` lines; ``start`` is given when the error is on its first
    line, whose column then counts from the start of the file's line)."""
    if isinstance(e, RecursionError):
        return "nested too deeply"
    if isinstance(e, json.JSONDecodeError):
        col = e.colno + (start - text.rfind("\n", 0, start) - 1 if start else 0)
        return f"invalid JSON at line {e.lineno + lines_before}, column {col} ({e.msg})"
    return "invalid JSON"


def _scalar(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return ""


def _name(person) -> str:
    if not isinstance(person, dict):
        return ""
    if literal := _scalar(person.get("literal")):
        return "{" + literal + "}"
    family = " ".join(p for p in (_scalar(person.get("non-dropping-particle")),
                                   _scalar(person.get("family"))) if p)
    given = _scalar(person.get("given"))
    return f"{family}, {given}" if family and given else family or given


def _year(issued) -> str:
    if isinstance(issued, dict):
        parts = issued.get("date-parts")
        if isinstance(parts, list) and parts and isinstance(parts[0], list) and parts[0]:
            year = _scalar(parts[0][0])
            if year.isdigit():
                return year
        m = re.search("[0-9]{4}", _scalar(issued.get("raw")) or _scalar(issued.get("literal")))
        return m.group() if m else ""
    return ""


def _item(value, n: int, line: int) -> tuple[Entry | None, Problem | None]:
    if not isinstance(value, dict):
        return None, Problem(line, "not an object; skipped")
    title = value.get("title", "")
    if not isinstance(title, str):
        return None, Problem(line, "its title is not text; skipped")
    authors = value.get("author")
    fields = {
        "title": html.unescape(_MARKUP.sub("", title)),
        "author": " and ".join(a for a in map(_name, authors) if a) if isinstance(authors, list) else "",
        "year": _year(value.get("issued")),
        "doi": _scalar(value.get("DOI") or value.get("doi")),
        "url": _scalar(value.get("URL") or value.get("url")),
        "note": " ; ".join(t for name in _NOTES if (t := _scalar(value.get(name)))),
        "journal": _scalar(value.get("container-title")),
    }
    key = _scalar(value.get("id")) or _scalar(value.get("citation-key")) or f"item {n}"
    return entry_from_text(_TYPES.get(_scalar(value.get("type")), "misc"), key, fields, line), None
