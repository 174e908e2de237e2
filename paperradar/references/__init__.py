"""Reference files a library import reads — BibTeX, RIS, CSL JSON and Zotero RDF — as BibTeX entries.

Every reader returns ``(entries, problems)`` like :func:`paperradar.bibtex.parse`: the records it could
read as :class:`~paperradar.bibtex.Entry` (built by :func:`~paperradar.bibtex.entry_from_text`, so the
library matches them with the one BibTeX matcher), and a :class:`~paperradar.bibtex.Problem` with the
line of each record it skipped. A reader never raises for a bad record; :class:`Unreadable` is for a file
that as a whole is not of the format (or is hostile: a DTD in XML, nesting hundreds deep).

The format is taken as given, else detected from the content (a RIS ``TY  -`` line, a BibTeX ``@type{``,
JSON's ``[``, XML's ``<``), else from the file name's extension.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from .. import bibtex
from ..bibtex import Entry, Problem
from . import csl_json, ris, zotero_rdf
from .errors import Unreadable


@dataclass(frozen=True)
class Format:
    name: str  # as chosen on the form and the command line
    label: str  # as said to people
    record: str  # what one record is called: "entry", "record", "item"
    records: str  # and several
    extensions: tuple[str, ...]
    read: Callable[[str], tuple[list[Entry], list[Problem]]]


def _bibtex(text: str) -> tuple[list[Entry], list[Problem]]:
    return bibtex.parse(text)  # looked up at each call: tests watch bibtex.parse


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("bibtex", "BibTeX", "entry", "entries", (".bib", ".bibtex", ".biblatex"), _bibtex),
    Format("ris", "RIS", "record", "records", (".ris",), ris.read),
    Format("csl-json", "CSL JSON", "item", "items", (".json", ".csljson"), csl_json.read),
    Format("zotero-rdf", "Zotero RDF", "item", "items", (".rdf", ".xml"), zotero_rdf.read),
)}
AUTO = "auto"
CHOICES = (AUTO, *FORMATS)

_RIS_LINE = re.compile(r"^[ \t]*TY  -", re.M)
_BIB_ENTRY = re.compile(r"^[ \t]*@[ \t]*[A-Za-z][\w-]*\s*[{(]", re.M)
_SNIFF = 1 << 16  # the first 64 KiB tell


def detect(text: str, filename: str | None = None) -> Format:
    """The format of a reference file, from its content, else its extension; BibTeX when neither tells."""
    head = text[:_SNIFF].lstrip("\ufeff \t\r\n")
    if head[:1] in ("[", "{"):
        return FORMATS["csl-json"]
    if head[:1] == "<":
        return FORMATS["zotero-rdf"]
    ris, bib = _RIS_LINE.search(head), _BIB_ENTRY.search(head)
    if ris and (not bib or ris.start() < bib.start()):
        return FORMATS["ris"]
    if bib:
        return FORMATS["bibtex"]
    name = (filename or "").lower()
    for fmt in FORMATS.values():
        if name.endswith(fmt.extensions):
            return fmt
    return FORMATS["bibtex"]


def format_named(name: str | None, text: str = "", filename: str | None = None) -> Format:
    """The format called ``name`` (one of :data:`CHOICES`); ``auto`` or nothing: :func:`detect`."""
    if not name or name == AUTO:
        return detect(text, filename)
    try:
        return FORMATS[name]
    except KeyError:
        raise Unreadable(f"unknown format {name!r}", hint="one of " + ", ".join(CHOICES)) from None


def decode(data: bytes) -> str:
    """A reference file's bytes as text: UTF-16 when a byte-order mark says so (EndNote writes it), else
    UTF-8, with bytes that are not UTF-8 replaced (a report names the records they spoil; nothing fails)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    return data.decode("utf-8", errors="replace").removeprefix("\ufeff")


def read(text: str, fmt: Format) -> tuple[list[Entry], list[Problem]]:
    """The records of ``text`` in format ``fmt``; :class:`Unreadable` if the file as a whole is not."""
    return fmt.read(text.removeprefix("\ufeff"))
