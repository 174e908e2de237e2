"""Read and write BibTeX, without dependencies: importing a reading list, exporting citations.

A hand-kept ``.bib`` file is rarely clean, so reading is forgiving: every well-formed entry comes back, and
each malformed one becomes a :class:`Problem` with its line instead of stopping the import. The reader is
one forward scan that jumps between the few characters that matter with small regexes; it looks at each
character a bounded number of times however broken the file, so it runs in linear time on any input.

Reading rules, where BibTeX leaves room:

- an entry starts at ``@type{`` or ``@type(``; any other ``@`` is ignored text, and so is a line whose
  first non-blank character is ``%`` (a commented-out entry, or field line inside an entry);
- a line starting with ``@type{`` met *inside* an entry means that entry was never closed: it is reported
  and the next entry is read from that line. After a malformed entry, reading resumes at the next line
  that starts with ``@``;
- values keep inner braces and LaTeX as written (:func:`plain` turns them into text); an undefined
  macro keeps its name as its value (BibTeX would use nothing); ``\\"`` inside a quoted value is the
  umlaut command, not the closing quote; macros may expand to at most ten times the file's size.

Writing treats values as plain text and escapes them, so that for every string ``v``::

    plain(parse(format_entry(key, type, {name: v}))[0][0].fields[name]) == " ".join(v.split())

Whitespace, newlines included, is collapsed on writing; :func:`plain` collapses it anyway.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import unquote

from .mathtext import segments
from .models import parse_arxiv_id


@dataclass(frozen=True, slots=True)
class Entry:
    """One well-formed entry: lower-case type, key as written, lower-case field names, raw values."""

    type: str
    key: str
    fields: dict[str, str]
    line: int  # 1-based line of the entry's "@"


@dataclass(frozen=True, slots=True)
class Problem:
    """A malformed entry that :func:`parse` skipped, and why."""

    line: int  # 1-based line of the entry's "@"
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


# -- reading -------------------------------------------------------------------------------------------

_ENTRY_START = re.compile(r"@[ \t]*([A-Za-z][\w-]*)\s*([{(])")
_OUTSIDE = re.compile(r"@|^[ \t]*%[^\n]*", re.M)  # the next "@", or a commented-out line to skip whole
_LINE_AT = re.compile(r"^[ \t]*@", re.M)
_NEXT_ENTRY = r"\n[ \t]*@[ \t]*[A-Za-z][\w-]*\s*[{(]"
_IN_BRACES = re.compile(r"[{}]|" + _NEXT_ENTRY)
_IN_QUOTES = re.compile(r'["{}]|' + _NEXT_ENTRY)
_IN_PARENS = re.compile(r"[{})]|" + _NEXT_ENTRY)
_SPACE = re.compile(r"\s*")
_WORD = re.compile(r'[^\s,={}()"#@]+')  # citation keys, numbers, macro names
_NAME = re.compile(r"[\w.:+/-]+")  # field names
_MONTH_NAMES = "January February March April May June July August September October November December".split()
_MONTHS = {name[:3].lower(): name for name in _MONTH_NAMES}


class _Malformed(Exception):
    def __init__(self, message: str, pos: int):
        super().__init__(message)
        self.message, self.pos = message, pos  # pos: how far the scan got, for resuming without rescans


class _Reader:
    def __init__(self, text: str):
        self.text, self.n = text, len(text)
        self.macros: dict[str, str] = dict(_MONTHS)
        self.entries: list[Entry] = []
        self.problems: list[Problem] = []
        self._lines, self._line_pos = 1, 0
        self._at, self._at_line, self._label = 0, 1, ""
        self._expansion_left = 10 * len(text) + 1_000_000

    def run(self) -> None:
        text, n = self.text, self.n
        pos = 0
        # A malformed entry's text was scanned once; an "@" inside it starts an entry again only at the
        # start of a line, which keeps the reader linear however many entries are broken.
        floor = 0
        while pos < n:
            found = _OUTSIDE.search(text, pos)
            if not found:
                break
            at = found.start()
            if found.group() != "@":
                pos = found.end()
                continue
            start = _ENTRY_START.match(text, at)
            if not start or (at < floor and not self._line_start(at)):
                pos = at + 1
                continue
            kind, closer = start.group(1).lower(), "}" if start.group(2) == "{" else ")"
            self._at, self._at_line, self._label = at, self._line(at), f"@{kind} entry"
            try:
                if kind == "comment":
                    pos = self._skip_block(start.end(), closer)
                elif kind == "preamble":
                    self._label = "@preamble"
                    pos = self._preamble(start.end(), closer)
                elif kind == "string":
                    self._label = "@string"
                    _, pos = self._fields(start.end(), closer, self.macros, first_wins=False)
                else:
                    pos = self._entry(kind, start.end(), closer)
            except _Malformed as err:
                if kind != "comment":  # a broken comment is still only a comment
                    self.problems.append(Problem(self._at_line, f"{self._label}: {err.message}"))
                floor = max(floor, err.pos)
                resume = _LINE_AT.search(text, at + 1)
                pos = resume.end() - 1 if resume else n

    def _line(self, pos: int) -> int:
        """Line of ``pos``; entry starts only move forward, so counting is incremental."""
        self._lines += self.text.count("\n", self._line_pos, pos)
        self._line_pos = pos
        return self._lines

    def _line_start(self, pos: int) -> bool:
        while pos > 0 and self.text[pos - 1] in " \t":
            pos -= 1
        return pos == 0 or self.text[pos - 1] == "\n"

    def _ws(self, pos: int) -> int:
        return _SPACE.match(self.text, pos).end()

    def _line_of_next(self, pos: int) -> int:
        return self._at_line + self.text.count("\n", self._at, pos)

    def _runs_into(self, newline: int) -> _Malformed:
        return _Malformed(f"not closed before the entry on line {self._line_of_next(newline + 1)}",
                          newline + 1)

    def _unexpected(self, pos: int, message: str, closer: str) -> _Malformed:
        if pos >= self.n:
            return _Malformed(f"missing '{closer}' at the end of the file", self.n)
        if self._line_start(pos) and _ENTRY_START.match(self.text, pos):
            return _Malformed(f"not closed before the entry on line {self._line_of_next(pos)}", pos)
        return _Malformed(f"{message}, found {self.text[pos]!r}", pos)

    def _entry(self, kind: str, pos: int, closer: str) -> int:
        text = self.text
        pos = self._ws(pos)
        word = _WORD.match(text, pos)
        if word:
            pos = self._ws(word.end())
        if not word or (pos < self.n and text[pos] == "="):
            raise _Malformed("missing citation key", pos)
        key = word.group()
        self._label = f"entry {key!r}"
        if pos < self.n and text[pos] == closer:
            fields, end = {}, pos + 1
        elif pos < self.n and text[pos] == ",":
            fields, end = self._fields(pos + 1, closer, {}, first_wins=True)
        else:
            raise self._unexpected(pos, "expected ',' after the citation key", closer)
        self.entries.append(Entry(kind, key, fields, self._at_line))
        return end

    def _fields(self, pos: int, closer: str, into: dict[str, str], first_wins: bool) -> tuple[dict, int]:
        text, n = self.text, self.n
        while True:
            pos = self._ws(pos)
            if pos < n and text[pos] == closer:
                return into, pos + 1
            if pos < n and text[pos] == "%" and self._line_start(pos):  # a commented-out field line
                end = text.find("\n", pos)
                pos = n if end < 0 else end
                continue
            name = _NAME.match(text, pos)
            if not name:
                raise self._unexpected(pos, "expected a field name", closer)
            field = name.group().lower()
            pos = self._ws(name.end())
            if pos >= n or text[pos] != "=":
                raise self._unexpected(pos, f"missing '=' after {field!r}", closer)
            value, pos = self._value(pos + 1, field, closer)
            if not first_wins or field not in into:  # a duplicate field: the first one counts
                into[field] = value
            pos = self._ws(pos)
            if pos < n and text[pos] == ",":
                pos += 1
            elif pos < n and text[pos] == closer:
                return into, pos + 1
            else:
                raise self._unexpected(pos, f"expected ',' or '{closer}' after {field!r}", closer)

    def _value(self, pos: int, field: str, closer: str) -> tuple[str, int]:
        """A value: braced, quoted, number or macro pieces joined by "#"."""
        text, n = self.text, self.n
        parts = []
        while True:
            pos = self._ws(pos)
            c = text[pos] if pos < n else ""
            if c == "{":
                part, pos = self._braced(pos + 1, field)
            elif c == '"':
                part, pos = self._quoted(pos + 1, field)
            else:
                word = _WORD.match(text, pos)
                if not word:
                    raise self._unexpected(pos, f"missing value for {field!r}", closer)
                part, pos = word.group(), word.end()
                if not part[0].isdigit():
                    part = self.macros.get(part.lower(), part)
                    # Macros built from macros grow exponentially ("@string{a = a # a}" repeated); a
                    # budget in proportion to the file stops that, far above what real files use.
                    self._expansion_left -= len(part)
                    if self._expansion_left < 0:
                        raise _Malformed(f"macros expand to too much text in {field!r}", pos)
            parts.append(part)
            after = self._ws(pos)
            if after < n and text[after] == "#":
                pos = after + 1
            else:
                return "".join(parts), pos

    def _braced(self, pos: int, field: str) -> tuple[str, int]:
        text, start, depth = self.text, pos, 1
        while True:
            m = _IN_BRACES.search(text, pos)
            if not m:
                raise _Malformed(f"unbalanced braces in {field!r} (the file ends inside it)", self.n)
            c = m.group()
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if not depth:
                    return text[start:m.start()], m.end()
            else:
                err = self._runs_into(m.start())
                raise _Malformed(f"unbalanced braces in {field!r} ({err.message})", err.pos)
            pos = m.end()

    def _quoted(self, pos: int, field: str) -> tuple[str, int]:
        text, start, depth = self.text, pos, 0
        while True:
            m = _IN_QUOTES.search(text, pos)
            what = f"unbalanced braces in {field!r}" if depth else f"unterminated quote in {field!r}"
            if not m:
                raise _Malformed(f"{what} (the file ends inside it)", self.n)
            c, pos = m.group(), m.end()
            if c == '"':
                if not depth and not self._escaped(m.start()):
                    return text[start:m.start()], pos
            elif c == "{":
                depth += 1
            elif c == "}":
                if not depth:  # the entry's own "}", most likely, read as part of a runaway value
                    raise _Malformed(f"unterminated quote or stray '}}' in {field!r}", m.start())
                depth -= 1
            else:
                err = self._runs_into(m.start())
                raise _Malformed(f"{what} ({err.message})", err.pos)

    def _escaped(self, pos: int) -> bool:
        """Whether an odd run of backslashes precedes ``pos`` (\\" is an umlaut, \\\\" a line end + quote)."""
        k = pos
        while k > 0 and self.text[k - 1] == "\\":
            k -= 1
        return (pos - k) % 2 == 1

    def _skip_block(self, pos: int, closer: str) -> int:
        text, depth = self.text, 0
        finder = _IN_BRACES if closer == "}" else _IN_PARENS
        while True:
            m = finder.search(text, pos)
            if not m:
                raise _Malformed("unbalanced braces (the file ends inside it)", self.n)
            c = m.group()
            if c == closer and not depth:
                return m.end()
            if c == "{":
                depth += 1
            elif c == "}":
                if not depth:
                    raise _Malformed("unbalanced braces", m.start())
                depth -= 1
            elif c != ")":
                raise self._runs_into(m.start())
            pos = m.end()

    def _preamble(self, pos: int, closer: str) -> int:
        pos = self._ws(pos)
        if pos < self.n and self.text[pos] == closer:
            return pos + 1
        _, pos = self._value(pos, "preamble", closer)
        pos = self._ws(pos)
        if pos < self.n and self.text[pos] == closer:
            return pos + 1
        raise self._unexpected(pos, f"expected '{closer}'", closer)


def parse(text: str) -> tuple[list[Entry], list[Problem]]:
    """Every well-formed entry of a BibTeX text, and a :class:`Problem` for each malformed one.

    A malformed entry is skipped and reading goes on with the next one; this never raises.
    ``@string`` macros (and the month macros jan..dec) are expanded, ``@comment`` and ``@preamble``
    are skipped.
    """
    reader = _Reader(text)
    reader.run()
    return reader.entries, reader.problems


# -- LaTeX to plain text -------------------------------------------------------------------------------

_PLAIN_TOKEN = re.compile(r"\\([A-Za-z]+)\s*|\\(.)|(-{2,3})|([{}$~])|([^\\{}$~-]+|-|\\)", re.S)
_ACCENT_ARG = re.compile(r"\s*(?:\{\s*(\\[ij](?![A-Za-z])|[^\\{}\s])\s*\}|(\\[ij](?![A-Za-z])|[^\\{}\s])"
                         r"|(\{\s*\}))")
_SYMBOL_ACCENTS = {"'": "\u0301", "`": "\u0300", "^": "\u0302", '"': "\u0308", "~": "\u0303",
                   "=": "\u0304", ".": "\u0307"}
_WORD_ACCENTS = {"c": "\u0327", "v": "\u030c", "u": "\u0306", "H": "\u030b", "k": "\u0328", "r": "\u030a",
                 "d": "\u0323", "b": "\u0331"}
_CONTROL_SYMBOLS = {"\\": " ", ",": " ", ";": " ", ":": " ", "!": "", "-": "", "/": "", "@": ""}
_SYMBOLS = {
    "ss": "ß", "o": "ø", "O": "Ø", "ae": "æ", "AE": "Æ", "oe": "œ", "OE": "Œ", "aa": "å", "AA": "Å",
    "l": "ł", "L": "Ł", "i": "ı", "j": "ȷ", "dh": "ð", "DH": "Ð", "th": "þ", "TH": "Þ", "ng": "ŋ",
    "NG": "Ŋ", "dj": "đ", "DJ": "Đ", "textbackslash": "\\", "textbraceleft": "{", "textbraceright": "}",
    "textasciitilde": "~", "textasciicircum": "^", "textunderscore": "_", "textdollar": "$",
    "textbar": "|", "textless": "<", "textgreater": ">", "textendash": "–", "textemdash": "—",
    "ldots": "…", "dots": "…", "textellipsis": "…", "S": "§", "P": "¶", "copyright": "©", "pounds": "£",
    "textregistered": "®", "texttrademark": "™", "textdegree": "°", "TeX": "TeX", "LaTeX": "LaTeX",
    "BibTeX": "BibTeX", "LaTeXe": "LaTeX2e", "times": "×", "pm": "±", "cdot": "·", "infty": "∞",
    "to": "→", "rightarrow": "→", "leq": "≤", "le": "≤", "geq": "≥", "ge": "≥", "neq": "≠", "approx": "≈",
}
_GREEK = (
    "alpha α beta β gamma γ delta δ epsilon ϵ varepsilon ε zeta ζ eta η theta θ vartheta ϑ iota ι kappa κ "
    "lambda λ mu μ nu ν xi ξ pi π varpi ϖ rho ρ varrho ϱ sigma σ varsigma ς tau τ upsilon υ phi ϕ varphi φ "
    "chi χ psi ψ omega ω Gamma Γ Delta Δ Theta Θ Lambda Λ Xi Ξ Pi Π Sigma Σ Upsilon Υ Phi Φ Psi Ψ Omega Ω"
).split()
_SYMBOLS.update(zip(_GREEK[::2], _GREEK[1::2], strict=True))


def plain(value: str) -> str:
    """A field value as plain text for matching and display.

    Braces and math shifts are dropped, accent and symbol commands become Unicode (``\\"o`` → ö,
    ``{\\o}`` → ø, ``\\&`` → &, ``$\\alpha$`` → α), ``~`` is a space, ``--``/``---`` are en/em dashes,
    other commands vanish but keep their argument (``\\emph{x}`` → x), whitespace is collapsed.
    """
    out: list[str] = []
    pos, n = 0, len(value)
    while pos < n:
        m = _PLAIN_TOKEN.match(value, pos)
        pos = m.end()
        word, symbol, dash, special, text = m.groups()
        if text is not None:
            out.append(text)
        elif word is not None:
            if word in _WORD_ACCENTS:
                pos = _accent(value, pos, _WORD_ACCENTS[word], "", out)
            else:
                out.append(_SYMBOLS.get(word, ""))
        elif symbol is not None:
            if symbol in _SYMBOL_ACCENTS:
                pos = _accent(value, pos, _SYMBOL_ACCENTS[symbol], symbol, out)
            else:
                out.append(" " if symbol.isspace() else _CONTROL_SYMBOLS.get(symbol, symbol))
        elif dash:
            out.append("—" if len(dash) == 3 else "–")
        elif special == "~":
            out.append(" ")
    return " ".join("".join(out).split())


def _accent(value: str, pos: int, mark: str, spacing: str, out: list[str]) -> int:
    """Put ``mark`` on the accent's argument (a letter, ``{x}``, ``\\i``); ``\\~{}`` is a bare tilde."""
    m = _ACCENT_ARG.match(value, pos)
    if not m:  # an argument we do not read (a longer group): drop the accent, keep the text
        return pos
    if m.group(3) is not None:
        out.append(spacing)
    else:
        base = m.group(1) or m.group(2)
        base = {"\\i": "i", "\\j": "j"}.get(base, base)
        out.append(unicodedata.normalize("NFC", base + mark))
    return m.end()


# -- identifiers ---------------------------------------------------------------------------------------

_ARXIV_IN_TEXT = re.compile(r"(?i:arxiv\.org/(?:abs|pdf)/|arxiv:\s*)"
                            r"([0-9]{4}\.[0-9]{4,5}(?![0-9])|[a-z][a-z-]*(?:\.[A-Z]{2})?/[0-9]{7}(?![0-9]))")
_ARXIV_DOI = re.compile(r"10\.48550/arxiv\.(.+)", re.I)
_DOI_PREFIX = re.compile(r"\A(?i:https?://(?:dx\.)?doi\.org/|doi:\s*)")
_DOI = re.compile(r"10\.[0-9]+(?:\.[0-9]+)*/\S+")
_DOI_URL = re.compile(r"(?i:doi\.org/)(10\.[0-9]+(?:\.[0-9]+)*/[^\s\"<>]+)")
_UNESCAPE = re.compile(r"\\([_%&#$])|\\[A-Za-z]+\s*|[{}]")


def _bare(value: str | None) -> str:
    """A value that holds an identifier, without braces, commands and escapes (``\\_`` → ``_``)."""
    return _UNESCAPE.sub(lambda m: m.group(1) or "", value or "").strip()


def _id(text: str) -> str | None:
    parsed = parse_arxiv_id(text)
    return parsed[0] if parsed else None


def _eprint_id(fields: dict[str, str]) -> str | None:
    eprint = _bare(fields.get("eprint"))
    archive = _bare(fields.get("archiveprefix") or fields.get("eprinttype")).lower()
    if not eprint or (archive and archive != "arxiv"):  # an eprint of HAL, PubMed...
        return None
    if re.fullmatch("[0-9]{7}", eprint):  # an old-style id split in two: eprint + class
        return _id(f"{_bare(fields.get('primaryclass') or fields.get('eprintclass'))}/{eprint}")
    return _id(eprint)


def _doi(fields: dict[str, str]) -> str | None:
    """The DOI as written (case kept: an arXiv DOI's old-style id is case-sensitive)."""
    raw = _bare(fields.get("doi"))
    if raw:
        from_url = bool(re.match("(?i)https?:", raw))
        token = (_DOI_PREFIX.sub("", raw, count=1).split() or [""])[0]
        token = unquote(token) if from_url else token
        if _DOI.fullmatch(token):
            return token
    for name in ("url", "howpublished", "note"):
        m = _DOI_URL.search(_bare(fields.get(name)))
        if m:
            return unquote(m.group(1)).rstrip(".,;")
    return None


def identifiers(entry: Entry) -> tuple[str | None, str | None, str | None]:
    """``(arxiv_id, doi, title)`` an entry can be matched by, each None when the entry does not say.

    The arXiv id (without version) comes from ``eprint`` (or Mendeley's ``arxivid``), an arXiv DOI
    (10.48550/arXiv.<id>), or an arxiv.org/abs|pdf URL or "arXiv:<id>" in url, howpublished, note,
    journal or number. The DOI is lower-cased without any doi.org prefix; the title is :func:`plain` text.
    """
    f = entry.fields
    doi = _doi(f)
    arxiv_id = _eprint_id(f) or _id(_bare(f.get("arxivid")))
    if not arxiv_id and doi and (m := _ARXIV_DOI.fullmatch(doi)):
        arxiv_id = _id(m.group(1))
    for name in ("url", "howpublished", "note", "journal", "number"):  # number: Zotero's "arXiv:<id>"
        if arxiv_id:
            break
        m = _ARXIV_IN_TEXT.search(_bare(f.get(name)))
        arxiv_id = _id(m.group(1)) if m else None
    title = plain(f.get("title", ""))
    return arxiv_id, doi.lower() if doi else None, title or None


# -- writing -------------------------------------------------------------------------------------------

_ESCAPES = {"\\": r"\textbackslash{}", "%": r"\%", "&": r"\&", "#": r"\#", "$": r"\$", "_": r"\_",
            "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "-": "-{}"}
_SPECIAL = re.compile(r"[\\%&#$_~^{}]|-(?=-)")  # "-{}-" so that plain() does not read "--" as a dash
_TYPE = re.compile(r"[A-Za-z][\w-]*")


MATH_FIELDS = ("title", "abstract")  # where a paper's text may hold LaTeX math


def _escape(value: str, math: bool = False) -> str:
    """A field value written for BibTeX: special characters escaped — except, with ``math`` (a title or an
    abstract), inside formulas ($\\pi^2$, \\(x\\)), which BibTeX and LaTeX read as math: a formula whose
    braces pair up is written as it is."""
    text = " ".join(value.split())
    if not math:
        return _escape_text(text)
    out, at = [], 0
    for start, end in segments(text):
        formula = text[start:end]
        if _balanced(formula):
            out.append(_escape_text(text[at:start]))
            out.append(formula)
            at = end
    out.append(_escape_text(text[at:]))
    return "".join(out)


def _balanced(formula: str) -> bool:
    depth = 0
    for m in re.finditer(r"\\.|[{}]", formula):
        c = m.group()
        depth += {"{": 1, "}": -1}.get(c, 0)
        if depth < 0:
            return False
    return depth == 0


def _escape_text(text: str) -> str:
    # Braces that pair up are written \{ \} (readable, and balanced as BibTeX counts braces: backslashes
    # or not); a stray one becomes a command in its own group, so the value stays balanced.
    stray, opened = set(), []
    for m in re.finditer("[{}]", text):
        if m.group() == "{":
            opened.append(m.start())
        elif opened:
            opened.pop()
        else:
            stray.add(m.start())
    stray.update(opened)

    def escape(m: re.Match) -> str:
        c = m.group()
        if c in "{}":
            if m.start() in stray:
                return r"{\textbraceleft}" if c == "{" else r"{\textbraceright}"
            return "\\" + c
        return _ESCAPES[c]

    return _SPECIAL.sub(escape, text)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def entry_from_text(type: str, key: str, fields: dict[str, str], line: int) -> Entry:
    """An :class:`Entry` of plain-text values (read from RIS, CSL JSON, Zotero RDF), written as BibTeX
    would hold them, so that :func:`identifiers` reads it exactly as it reads the same record in a .bib
    file: one matcher for every format. Control characters become spaces first (a DOI or title from a
    hostile file cannot carry terminal escapes into a report)."""
    raw = {}
    for name, value in fields.items():
        text = " ".join(_CONTROL.sub(" ", value).split())
        if text:
            raw[name.lower()] = _escape(text, math=name.lower() in MATH_FIELDS)
    return Entry(type.lower(), " ".join(_CONTROL.sub(" ", key).split()), raw, line)


def format_entry(key: str, type: str, fields: dict[str, str]) -> str:
    """One BibTeX entry (no trailing newline), fields in the given order, each value plain text escaped.

    Raises ValueError for a key, type or field name that BibTeX cannot hold (spaces, braces, commas...).
    """
    if not _WORD.fullmatch(key):
        raise ValueError(f"not a usable BibTeX key: {key!r}")
    if not _TYPE.fullmatch(type) or type.lower() in ("string", "comment", "preamble"):
        raise ValueError(f"not a usable BibTeX entry type: {type!r}")
    lines = [f"@{type.lower()}{{{key},"]
    for name, value in fields.items():
        if not _NAME.fullmatch(name):
            raise ValueError(f"not a usable BibTeX field name: {name!r}")
        lines.append(f"  {name} = {{{_escape(str(value), math=name.lower() in MATH_FIELDS)}}},")
    if len(lines) > 1:
        lines[-1] = lines[-1][:-1]
    return "\n".join(lines) + "\n}"


def dumps(entries: list[tuple[str, str, dict[str, str]]]) -> str:
    """A BibTeX file of ``(key, type, fields)`` entries, one blank line between them."""
    return "".join(format_entry(key, kind, fields) + "\n\n" for key, kind, fields in entries)[:-1]


# -- citation keys -------------------------------------------------------------------------------------

_STOPWORDS = frozenset(
    "a an the i on of in for and to with from by at via is are as its into onto towards toward using "
    "how what why when where which do does can we our your it this that not".split())
_FOLD = str.maketrans({"ß": "ss", "ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ł": "l",
                       "Ł": "L", "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th", "Þ": "TH", "ı": "i"})


def _ascii_words(text: str) -> list[str]:
    """Lower-case ASCII words of a text, accents dropped (Erdős → erdos), for readable keys."""
    s = unicodedata.normalize("NFKD", plain(text).translate(_FOLD))
    s = "".join(c for c in s if not unicodedata.combining(c)).lower()
    return re.findall("[a-z0-9]+", s)


def cite_key(authors: list[str], year: str | None, title: str, taken: set[str]) -> str:
    """A readable ASCII key like ``vaswani2017attention``, unique against ``taken`` (which it joins).

    First author's surname ("Surname, Given", the last word of "Given Surname" bar Jr./III, or all of a
    braced "{Google DeepMind}"), the year's four digits, the title's first word that is not a stop word;
    a clash appends b, c, ... z, aa, ab, ... Keys in ``taken`` are compared exactly (case-sensitively).
    """
    surname = ""
    if authors:
        surname = "".join(_ascii_words(_surname(authors[0])))
    found = re.search("[0-9]{4}", year or "")
    for start, end in reversed(segments(title)):  # "$\\pi^2$: ..." is not a word of the key
        title = title[:start] + " " + title[end:]
    words = _ascii_words(title)
    word = next((w for w in words if w not in _STOPWORDS), words[0] if words else "")
    base = f"{surname}{found.group() if found else ''}{word}" or "anon"
    key, n = base, 1
    while key in taken:
        n += 1
        key = base + _letters(n)
    taken.add(key)
    return key


def _surname(name: str) -> str:
    name = name.strip()
    if name.startswith("{") and name.endswith("}"):  # {Google DeepMind}: a name BibTeX must not split
        return name
    if "," in name:
        return name.split(",")[0]
    words = name.split()
    while len(words) > 1 and words[-1].lower().rstrip(".") in ("jr", "sr", "ii", "iii", "iv"):
        words.pop()
    return words[-1] if words else ""


def _letters(n: int) -> str:
    """2 → b, 26 → z, 27 → aa: spreadsheet-column letters."""
    s = ""
    while n:
        n, r = divmod(n - 1, 26)
        s = chr(97 + r) + s
    return s
