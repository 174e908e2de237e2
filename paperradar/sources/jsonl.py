"""Generic paper files: JSON lines (``JSONLSource``) and CSV (``CSVSource``), plus the helpers every file
source shares (opening and sniffing a file, byte progress, dates, author lists, LaTeX accents).

One record per line (JSON) or row (CSV) with the field names of ``shared/data/corpus/arxiv-119k.jsonl.gz``
-- ``id``, ``title``, ``abstract``, ``authors``, ``categories``, ``comment``, ``listing_date`` / ``date`` --
or of :class:`~paperradar.models.Paper` itself, so paperradar's own exports read back. A bad record becomes a
:class:`~paperradar.models.Rejected` with its line number and reading goes on; only a file that is unusable
as a whole raises :class:`~paperradar.errors.InputUnusable`.
"""

from __future__ import annotations

import csv
import json
import re
import unicodedata
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime

from ..errors import InputUnusable
from ..models import InvalidRecord, Paper, Rejected, parse_arxiv_id
from .base import MAX_LINE, InputFile, Item, Source

# ---------------------------------------------------------------------------------------------------------
# Shared by every file source


class FileSource(Source):
    """A source that reads one file (or ``-`` for stdin); ``progress()`` is in bytes of the file as stored."""

    def __init__(self, path: str):
        self.path = path
        self._file: InputFile | None = None
        self._progress: tuple[int, int | None] = (0, None)

    def progress(self) -> tuple[int, int | None]:
        if self._file is not None:
            self._progress = (self._file.position(), self._file.total)
        return self._progress

    @contextmanager
    def _opened(self) -> Iterator[InputFile]:
        """Open the input for one pass; keep the final position so progress reads 100% afterwards."""
        f = InputFile(self.path)
        self._file = f
        try:
            yield f
        finally:
            self._progress = (f.position(), f.total)
            self._file = None
            f.close()


def sniff(f: InputFile, what: str, *, whole_head: bool = False) -> bytes:
    """Return the first buffered bytes of ``f``; raise InputUnusable if they look binary.

    Binary means invalid UTF-8 or a NUL byte in the first line (NUL anywhere in the first 64 KiB with
    ``whole_head``): images, PDFs, databases and archives show one or the other right at the start, text
    never has NUL. Damage further on is left to the per-record checks, which reject just that record.
    """
    try:
        head = f.stream.peek(65536)[:65536]  # type: ignore[attr-defined]
    except (OSError, EOFError, zlib.error) as e:  # a damaged gzip shows here first
        raise InputUnusable(f"{f.label}: cannot read: {e}") from None
    first_line = head[:1024].split(b"\n", 1)[0]
    if b"\x00" in (head if whole_head else first_line) or not _utf8_start(first_line):
        raise InputUnusable(f"{f.label}: binary data, not {what}", hint=f"give a {what} file")
    return head.removeprefix(b"\xef\xbb\xbf")


def _utf8_start(data: bytes) -> bool:
    """True if ``data`` is UTF-8, allowing for a character cut in two at its end."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        return e.reason == "unexpected end of data"
    return True


def sniff_json_lines(f: InputFile) -> None:
    """Raise InputUnusable unless the start of ``f`` looks like JSON lines (objects, one per line)."""
    head = sniff(f, "JSON lines")
    stripped = head.lstrip()
    if stripped.startswith(b"["):
        raise InputUnusable(f"{f.label}: a JSON array, not JSON lines (one object per line)",
                            hint="convert it with: jq -c '.[]' FILE > FILE.jsonl")
    lines = [line.strip() for line in head.splitlines()]
    if stripped and not any(line.startswith(b"{") for line in lines):
        raise InputUnusable(f"{f.label}: not JSON lines (no line starts with a JSON object)")


_PRINTABLE_ASCII = bytes(range(0x20, 0x7F))


def collapse(text: str | None) -> str:
    """Same result as :func:`~paperradar.models.clean_text`, about twice as fast on typical abstracts,
    whose only irregular whitespace is hard line wraps; big imports spend much of their time here."""
    if not text:
        return ""
    s = text.replace("\n", " ")
    # Only single spaces left (no other whitespace, no doubles) means split/join would change nothing but
    # the ends. For ASCII text, deleting the printable bytes is the quickest test; isprintable() otherwise
    # (it is False for every whitespace character but " ").
    if s.isascii():
        b = s.encode("ascii")
        if not b.translate(None, _PRINTABLE_ASCII) and b"  " not in b:
            return s.strip()
    elif s.isprintable() and "  " not in s:
        return s.strip()
    return " ".join(s.split())


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_date_cache: dict[str, str] = {}  # dates repeat across a corpus; parsing each once keeps big files fast


def iso_date(value: object, field: str, *, date_only: bool = False) -> str | None:
    """Normalise a date or time to ``YYYY-MM-DD`` or ``YYYY-MM-DDTHH:MM:SSZ`` (UTC); None if empty.

    Accepts ISO 8601 (with ``Z``, an offset, fractions or naive = UTC) and RFC 2822 (``Mon, 2 Apr 2007
    19:18:42 GMT``, arXiv's version dates). Raises InvalidRecord naming ``field`` for anything else.
    """
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidRecord(f"{field} is not a date string")
    key = value + ("/d" if date_only else "")
    cached = _date_cache.get(key)
    if cached is not None:
        return cached
    s = value.strip()
    try:
        if _DATE.fullmatch(s):
            result = date.fromisoformat(s).isoformat()
        else:
            try:
                dt = datetime.fromisoformat(s)
            except ValueError:
                dt = parsedate_to_datetime(s)  # raises ValueError/TypeError on garbage
            if dt.tzinfo is not None:
                dt = dt.astimezone(UTC)
            result = dt.date().isoformat() if date_only else dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    except (ValueError, TypeError, OverflowError, IndexError):
        raise InvalidRecord(f"{field} {value[:40]!r} is not a date") from None
    if len(_date_cache) > 100_000:
        _date_cache.clear()
    _date_cache[key] = result
    return result


# arXiv category names: archive ("hep-th", "cs") with an optional subject class ("cs.CL", "astro-ph.CO",
# "cond-mat.mtrl-sci"). Some feeds append ACM ("I.2.7") and MSC ("68T50") classes to the list; those are
# not arXiv categories and would pollute category filters, so they are dropped.
_CATEGORY = re.compile(r"[a-z]+(?:-[a-z]+)*(?:\.[A-Za-z]+(?:-[A-Za-z]+)*)?")
_category_cache: dict[str, str] = {}  # entry as given -> category, or "" if it is not one


def clean_categories(values: list) -> list[str]:
    """Keep the arXiv categories of ``values`` in order (primary first), stripped, without duplicates."""
    out: list[str] = []
    for raw in values:
        if raw.__class__ is not str:
            raise InvalidRecord("categories is not a list of strings")
        c = _category_cache.get(raw)
        if c is None:
            c = raw.strip()
            c = c if _CATEGORY.fullmatch(c) else ""
            if len(_category_cache) < 10_000:  # bounded: a hostile file cannot grow it without limit
                _category_cache[raw] = c
        if c and c not in out:
            out.append(c)
    return out


_ACCENTS = {"'": "\u0301", "`": "\u0300", "^": "\u0302", '"': "\u0308", "~": "\u0303", "=": "\u0304",
            ".": "\u0307", "u": "\u0306", "v": "\u030c", "H": "\u030b", "c": "\u0327", "k": "\u0328",
            "d": "\u0323", "b": "\u0331", "r": "\u030a"}
_LETTERS = {"ss": "ß", "ae": "æ", "AE": "Æ", "oe": "œ", "OE": "Œ", "aa": "å", "AA": "Å", "o": "ø", "O": "Ø",
            "l": "ł", "L": "Ł", "i": "ı", "j": "ȷ"}
_BASE = r"(\\[ij](?![A-Za-z])|[^\W\d_])"  # the accented letter; \i and \j are the dotless i and j
# \'a  \'{a}  {\'a} -- symbol accents take the next letter; letter accents (\v, \c...) need braces or a space.
_SYMBOL_ACCENT = re.compile(r"""\\(['`^"~=.])\s*(?:\{\s*""" + _BASE + r"""\s*\}|""" + _BASE + ")")
_WORD_ACCENT = re.compile(r"\\([uvHckdbr])(?:\s*\{\s*" + _BASE + r"\s*\}|\s+" + _BASE + ")")
_LETTER = re.compile(r"\\(ss|ae|AE|oe|OE|aa|AA|o|O|l|L|i|j)(?![A-Za-z])(?:\{\}| )?")


def _accent(m: re.Match) -> str:
    base = m.group(2) or m.group(3)
    return base[-1] + _ACCENTS[m.group(1)]  # "\i" -> "i": an accented i has no dot anyway


def latex_to_unicode(text: str) -> str:
    """Turn the LaTeX accents of arXiv author names into Unicode: ``Bal\\'azs`` -> ``Balázs``.

    Handles the simple, common forms (``\\'a``, ``{\\"o}``, ``\\v{S}``, ``{\\O}``, ``\\ss``); braces and
    stray backslashes left over are removed. Meant for names, not for titles, whose LaTeX is math.
    """
    if "\\" not in text and "{" not in text:
        return text
    s = _SYMBOL_ACCENT.sub(_accent, text)
    s = _WORD_ACCENT.sub(_accent, s)
    s = _LETTER.sub(lambda m: _LETTERS[m.group(1)], s)
    s = s.replace("\\\\", " ")  # a LaTeX line break
    s = re.sub(r"\\(?=[^\x00-\x7f])", "", s)  # "St\ütz": a backslash before an already-Unicode letter
    s = s.replace("{", "").replace("}", "")
    return " ".join(unicodedata.normalize("NFC", s).split())


_AND_SPLIT = re.compile(r",\s*and\s+|\s+and\s+|,\s*")
_ET_AL = re.compile(r"(?i)et\.? al\.?")


def _json_array(text: str, field: str) -> object:
    """A cell or field that starts with "[" is a JSON array, or the record is malformed."""
    try:
        return json.loads(text)
    except ValueError:
        raise InvalidRecord(f"{field} looks like a JSON array but is not one") from None


def split_authors(value: object, field: str = "authors") -> list[str]:
    """Author names from a list (of names or ``{"name": ...}``), a JSON-array string, or a string
    separated by ``", "`` / ``" and "`` (``";"`` when present, since "Last, First; ..." lists use it)."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        s = value.strip()
        if s.startswith("["):
            value = _json_array(s, field)
        else:
            parts = s.split(";") if ";" in s else _AND_SPLIT.split(s)
            value = [p for p in parts if p.strip()]
    if not isinstance(value, list):
        raise InvalidRecord(f"{field} is neither a list nor a string")
    names = []
    for a in value:
        if isinstance(a, dict):
            a = a.get("name")
        if not isinstance(a, str):
            raise InvalidRecord(f"{field} holds a {type(a).__name__}, not a name")
        # Most names are clean already; these few checks on a short string cost less than collapse().
        if a.isprintable() and "  " not in a and a[:1] != " " and a[-1:] != " ":
            name = a
        else:
            name = " ".join(a.split())
        if "\\" in name or "{" in name:
            name = latex_to_unicode(name)
        if name and not (len(name) <= 7 and _ET_AL.fullmatch(name)):  # "A. Smith, et al": not a person
            names.append(name)
    return names


def split_categories(value: object) -> list[str]:
    """Categories from a list, a JSON-array string, or a space- (or comma-) separated string."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        s = value.strip()
        if s.startswith("["):
            value = _json_array(s, "categories")
        else:
            value = s.replace(",", " ").split()
    if not isinstance(value, list):
        raise InvalidRecord("categories is not a list of strings")
    return clean_categories(value)


# ---------------------------------------------------------------------------------------------------------
# Records with our field names (JSON lines, CSV rows)

_PLAIN_NEW_ID = re.compile(r"(\d{4}\.\d{4,5})(?:v(\d+))?")
# Text that was meant as an arXiv id: a typo in one must not silently turn the paper into a title-keyed one.
_ARXIVISH = re.compile(r"(?i)^(?:arxiv|https?://(?:www\.|export\.)?arxiv\.org|\d{4}\.\d|[a-z-]+(?:\.[a-z]{2})?/\d)")
_ARXIV_DOI = re.compile(r"(?i)10\.48550/arxiv\.(.+)")  # DataCite DOIs arXiv mints for every paper


def _str(value: object, field: str) -> str | None:
    """``value`` if it is a non-empty string, None if empty/absent; anything else is a bad record."""
    if value.__class__ is str:
        return value or None
    if not value:
        return None
    if isinstance(value, str):
        return value
    raise InvalidRecord(f"{field} is a {type(value).__name__}, not a string")


def whole_number(value: object, field: str) -> int | None:
    """A whole number from an int or a numeric string (``"v3"`` for a version); None if empty."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        digits = value.strip().removeprefix("v")
        if not digits.isdigit() or len(digits) > 9:
            raise InvalidRecord(f"{field} {value[:20]!r} is not a whole number")
        return int(digits)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise InvalidRecord(f"{field} is not a whole number")


def _short(value: object, field: str) -> str | None:
    return collapse(_str(value, field)) or None


def _identify(rec: dict) -> tuple[str | None, int | None, str | None]:
    """(arXiv id, version from the id, DOI) of a record. An ``id`` that is clearly not arXiv's (a DOI, a
    database number) leaves the arXiv id empty; one that looks like a mangled arXiv id is an error."""
    doi = _str(rec.get("doi"), "doi")
    if doi:
        doi = doi.strip().removeprefix("https://doi.org/").removeprefix("http://dx.doi.org/")
        doi = doi.removeprefix("doi:") or None
    explicit = _str(rec.get("arxiv_id"), "arxiv_id")
    raw_id = rec.get("id")
    # A numeric id is some database's row number, never an arXiv id (those are strings).
    ident = explicit or (None if isinstance(raw_id, int | float) else _str(raw_id, "id"))
    if ident:
        m = _PLAIN_NEW_ID.fullmatch(ident)  # the usual case, without parse_arxiv_id's prefix handling
        parsed = (m.group(1), int(m.group(2)) if m.group(2) else None) if m else parse_arxiv_id(ident)
        if parsed:
            return parsed[0], parsed[1], doi
        if explicit or _ARXIVISH.match(ident.strip()):
            raise InvalidRecord(f"malformed arXiv id {ident[:60]!r}")
        if not doi and ident.startswith("10.") and "/" in ident:
            doi = ident.strip()  # an id that is a DOI is the best key there is
    if doi and (m := _ARXIV_DOI.fullmatch(doi)) and (parsed := parse_arxiv_id(m.group(1))):
        return parsed[0], parsed[1], doi
    return None, None, doi


def paper_from_record(rec: dict, source: str) -> Paper:
    """Map one record with the corpus/Paper field names (and common synonyms) to an unvalidated Paper.

    Synonyms: ``arxiv_id`` for ``id``, ``summary`` for ``abstract``, ``comments``, ``journal-ref``;
    ``listing_date`` (or ``announced``) is the announcement, ``date`` (or ``submitted``) the first version.
    """
    get = rec.get
    arxiv_id, id_version, doi = _identify(rec)
    title = _str(get("title"), "title")
    if title is None:
        raise InvalidRecord("missing title")
    version = whole_number(get("version"), "version")
    return Paper(
        title=collapse(title),
        source=source,
        arxiv_id=arxiv_id,
        version=version if version is not None else id_version,
        abstract=collapse(_str(get("abstract") or get("summary"), "abstract")),
        authors=split_authors(get("authors")),
        categories=split_categories(get("categories")),
        submitted=iso_date(_str(get("submitted") or get("date"), "submitted"), "submitted"),
        updated=iso_date(_str(get("updated"), "updated"), "updated"),
        announced=iso_date(_str(get("announced") or get("listing_date"), "announced"), "announced"),
        comment=_short(get("comment") or get("comments"), "comment"),
        journal_ref=_short(get("journal_ref") or get("journal-ref"), "journal_ref"),
        doi=doi,
        upvotes=whole_number(get("upvotes"), "upvotes"),
    )


_KNOWN_FIELDS = frozenset({"id", "arxiv_id", "title", "abstract", "summary", "authors", "categories", "doi"})
TOO_LONG = f"line longer than {MAX_LINE // 2**20} MiB"


def json_object(line: bytes) -> dict:
    """Decode one JSON lines record; raise InvalidRecord saying why it is not a JSON object."""
    try:
        rec = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        raise InvalidRecord("not valid UTF-8") from None
    except json.JSONDecodeError as e:
        raise InvalidRecord(f"not valid JSON ({e.msg} at character {e.pos + 1})") from None
    except ValueError as e:  # an integer of more than 4300 digits
        raise InvalidRecord(f"not usable JSON ({e})") from None
    except RecursionError:  # "[[[[..." nested past the interpreter's recursion limit
        raise InvalidRecord("JSON nested too deeply") from None
    if not isinstance(rec, dict):
        raise InvalidRecord(f"a JSON {type(rec).__name__}, not an object")
    return rec


def no_lone_surrogates(paper: Paper) -> Paper:
    """Reject a paper with a lone surrogate in its text: JSON's "\\ud800" escape decodes to one, and such
    a str cannot be encoded, so SQLite could not store it. ASCII strings (most) are skipped at no cost."""
    for text in (paper.title, paper.abstract, paper.comment, paper.journal_ref, paper.doi, *paper.authors):
        if text and not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidRecord("invalid Unicode escape (lone surrogate)") from None
    return paper


class JSONLSource(FileSource):
    """Papers from a JSON lines file (gzip or not, ``-`` for stdin), one object per line."""

    name = "jsonl"

    def __iter__(self) -> Iterator[Item]:
        with self._opened() as f:
            sniff_json_lines(f)
            label, name, checked = f.label, self.name, False
            for n, line in f.lines():
                if line is None:
                    yield Rejected(f"{label} line {n}", TOO_LONG)
                    continue
                if line.isspace():
                    continue
                try:
                    rec = json_object(line)
                    if not checked:
                        # The first object decides whether this is a paper file at all (a log, a config...).
                        if not _KNOWN_FIELDS.intersection(rec):
                            fields = ", ".join(list(rec)[:8])
                            raise InputUnusable(f"{label}: records have none of the paper fields ({fields})",
                                                hint="expected fields like id, title, abstract, authors")
                        checked = True
                    paper = no_lone_surrogates(paper_from_record(rec, name).validate())
                except InvalidRecord as e:
                    yield Rejected(f"{label} line {n}", str(e))
                    continue
                yield paper


_OVERSIZE = "\x00paperradar: oversize line\x00"


class CSVSource(FileSource):
    """Papers from a CSV file with a header row naming the same fields as :class:`JSONLSource`.

    Lists in cells are JSON arrays or separated strings (see :func:`split_authors`).
    """

    name = "csv"

    def __iter__(self) -> Iterator[Item]:
        with self._opened() as f:
            sniff(f, "CSV")
            label, consumed = f.label, 0

            def text_lines() -> Iterator[str]:
                # csv needs str lines; surrogateescape keeps bad bytes visible so the row can be rejected,
                # and an oversize line becomes a marker instead of megabytes in memory.
                nonlocal consumed
                for n, line in f.lines():
                    consumed = n
                    yield _OVERSIZE if line is None else line.decode("utf-8", "surrogateescape")

            # Rows are bounded by MAX_LINE per physical line; a field spanning lines gets the same bound.
            if csv.field_size_limit() < MAX_LINE:
                csv.field_size_limit(MAX_LINE)
            reader = csv.reader(text_lines())
            header: list[str] | None = None
            while True:
                start = consumed + 1
                try:
                    row = next(reader)
                except StopIteration:
                    break
                except csv.Error as e:
                    yield Rejected(f"{label} line {start}", f"not valid CSV ({e})")
                    continue
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if header is None:
                    header = [h.strip().lstrip("\ufeff") for h in row]
                    if "title" not in header:
                        raise InputUnusable(f"{label}: the CSV header has no 'title' column",
                                            hint="the first row must name the columns: id,title,abstract,...")
                    continue
                where = f"{label} line {start}"
                if any(_OVERSIZE in cell for cell in row):
                    yield Rejected(where, TOO_LONG)
                    continue
                try:
                    "".join(row).encode("utf-8")
                except UnicodeEncodeError:
                    yield Rejected(where, "not valid UTF-8")
                    continue
                if len(row) > len(header):
                    yield Rejected(where, f"{len(row)} fields but the header names {len(header)}")
                    continue
                rec = dict(zip(header, row, strict=False))
                try:
                    yield paper_from_record(rec, self.name).validate()
                except InvalidRecord as e:
                    yield Rejected(where, str(e))
