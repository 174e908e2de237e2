"""Math in titles and abstracts: where it is, and how it reads as plain text.

arXiv titles and abstracts carry LaTeX math between ``$…$``, ``$$…$$`` or ``\\(…\\)``. The web app marks
those segments for the browser's renderer (static/math.js, KaTeX); feeds, mails and the API, which cannot
render math, get :func:`to_text`: ``$\\pi^2$`` becomes ``π²``. Text outside math is never changed, and a
segment that does not parse as LaTeX is kept as written.

Finding the segments is one scan with pandoc's rules for ``$``, so that prices are not math: an opening
``$`` has no space after it, a closing one no space before it and no digit after it; ``\\$`` is a dollar
sign. As in LaTeX, the next ``$`` ends the formula: when it cannot close ("$5 and $6"), there is none.
A segment is at most :data:`MAX_MATH` characters: a stray ``$`` does not swallow an abstract.
"""

from __future__ import annotations

import re
from functools import lru_cache

MAX_MATH = 400  # characters of one segment, delimiters included

_TOKEN = re.compile(r"\\[()$]|\$\$?")
_SPACE = re.compile(r"\s+")
# Named operators: LaTeX sets them apart with thin spaces; as text they need real ones ("n log n").
_OPERATORS = ("arccos arcsin arctan arg cos cosh cot coth csc deg det dim exp gcd hom inf ker lg lim liminf "
              "limsup ln log max min Pr sec sin sinh sup tan tanh").split()

_SUP = dict(zip("0123456789+-−=()niabcdefghjklmoprstuvwxyzABDEGHIJKLMNOPRTUVW*'′″†⊤βγδθφχ",
                "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁻⁼⁽⁾ⁿⁱᵃᵇᶜᵈᵉᶠᵍʰʲᵏˡᵐᵒᵖʳˢᵗᵘᵛʷˣʸᶻᴬᴮᴰᴱᴳᴴᴵᴶᴷᴸᴹᴺᴼᴾᴿᵀᵁⱽᵂ*′′″†ᵀᵝᵞᵟᶿᵠᵡ",
                strict=True))
_SUB = dict(zip("0123456789+-−=()aehijklmnoprstuvxβγρφχ",
                "₀₁₂₃₄₅₆₇₈₉₊₋₋₌₍₎ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓᵦᵧᵨᵩᵪ", strict=True))


def segments(text: str | None) -> list[tuple[int, int]]:
    """The (start, end) offsets of the math segments in ``text``, delimiters included, in order."""
    if not text or ("$" not in text and "\\(" not in text):
        return []
    tokens = [(m.start(), m.group()) for m in _TOKEN.finditer(text)]
    n = len(tokens)
    # For each token, the index of the next token of each closing kind: one backward pass keeps the scan
    # linear however many unmatched "$" a text has.
    next_close = {"\\)": [n] * (n + 1), "$$": [n] * (n + 1), "$": [n] * (n + 1)}
    for i in range(n - 1, -1, -1):
        for nxt in next_close.values():
            nxt[i] = nxt[i + 1]
        if tokens[i][1] in next_close:
            next_close[tokens[i][1]][i] = i
    out: list[tuple[int, int]] = []
    i = 0
    while i < n:
        pos, tok = tokens[i]
        if tok in ("\\)", "\\$") or (tok == "$" and text[pos + 1:pos + 2].isspace()):
            i += 1
            continue
        closer = "\\)" if tok == "\\(" else tok
        j = next_close[closer][i + 1]
        if j < n and (tok != "$" or _closes(text, tokens[j][0])):
            end = tokens[j][0] + len(closer)
            if end - pos <= MAX_MATH and text[pos + len(tok):tokens[j][0]].strip():
                out.append((pos, end))
                i = j + 1
                continue
        i += 1
    return out


def _closes(text: str, pos: int) -> bool:
    """Whether the "$" at ``pos`` can close a formula: no space before it, no digit after it."""
    return not text[pos - 1].isspace() and not text[pos + 1:pos + 2].isdigit()


def _script(mark: str, text: str) -> str:
    """``text`` as a superscript (``mark`` "^") or subscript ("_"): Unicode's small forms when every
    character has one, else ``^x`` or ``^(text)``."""
    text = text.strip()
    table = _SUP if mark == "^" else _SUB
    if text and all(c in table for c in text):
        return "".join(table[c] for c in text)
    if len(text) <= 1 or (text.startswith("(") and text.endswith(")")):
        return mark + text
    return f"{mark}({text})"


@lru_cache(maxsize=1)
def _converter():
    # Imported on first use: pages that never meet math do not pay for pylatexenc's tables.
    from pylatexenc import latexwalker
    from pylatexenc.latex2text import LatexNodes2Text, MacroTextSpec, get_default_latex_context_db

    class Math2Text(LatexNodes2Text):
        """LatexNodes2Text that writes scripts as Unicode super- and subscripts and keeps unknown macros
        (``\\foo`` reads better than nothing)."""

        def nodelist_to_text(self, nodelist):
            out: list[str] = []
            mark = None  # "^" or "_" waiting for its argument
            for node in nodelist:
                if node is None:
                    continue
                if node.isNodeType(latexwalker.LatexCharsNode):
                    for c in node.chars:
                        if mark and not c.isspace():
                            out.append(_script(mark, c))
                            mark = None
                        elif c in "^_":
                            mark = c
                        elif not mark:
                            out.append(c)
                    continue
                text = self.node_to_text(node)
                if self._is_bare_macro_node(node) and node.macro_post_space:
                    text += " "  # LaTeX eats the space after "\\le"; as text "a ≤ b" needs it
                if mark:
                    out.append(_script(mark, text) + text[len(text.rstrip()):])
                    mark = None
                else:
                    out.append(text)
            if mark:
                out.append(mark)
            return "".join(out)

        def macro_node_to_text(self, node):
            if self.latex_context.get_macro_spec(node.macroname) is None:
                return "\\" + node.macroname
            return super().macro_node_to_text(node)

    db = get_default_latex_context_db()
    db.add_context_category("paperradar-operators", prepend=True,
                            macros=[MacroTextSpec(name, f" {name} ") for name in _OPERATORS])
    return latexwalker, Math2Text(latex_context=db, math_mode="text")


def _math_to_text(segment: str) -> str | None:
    """One math segment (with its delimiters) as text, or None when it is not LaTeX that parses."""
    latexwalker, converter = _converter()
    try:
        nodes, _, _ = latexwalker.LatexWalker(segment, tolerant_parsing=False).get_latex_nodes()
        text = converter.nodelist_to_text(nodes)
    # A parse error is the expected failure; anything else pylatexenc raises on odd input (it was not
    # written for untrusted text) must not take a feed or a mail down either: the segment stays as written.
    except Exception:
        return None
    text = _SPACE.sub(" ", text).strip()
    return text or None


def to_text(text: str | None) -> str:
    """``text`` with each math segment turned into readable Unicode (``$\\pi^2$`` → ``π²``); a segment
    that does not parse is kept as written, and the text around math is returned unchanged."""
    text = text or ""
    spans = segments(text)
    if not spans:
        return text
    out, pos = [], 0
    for start, end in spans:
        out += (text[pos:start], _math_to_text(text[start:end]) or text[start:end])
        pos = end
    out.append(text[pos:])
    return "".join(out)
