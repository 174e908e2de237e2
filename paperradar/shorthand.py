"""Researchers' shorthand and typing: acronyms mined from the corpus, and typo correction.

Two tables, derived from the store's titles and abstracts and kept beside the lexical index as one JSON file
(:data:`FILE`), rebuildable at any time:

- **acronyms**: every "long form (ACRONYM)" a paper defines — "retrieval-augmented generation (RAG)" — with
  how many papers define it so, found by the Schwartz & Hearst (2003) algorithm: the acronym's letters,
  right to left, must appear in order in the words before the parenthesis, the first one at a word's start.
  No hand list: an acronym means what this corpus uses it for.
- **vocabulary**: each word of titles and abstracts (lower case) with its document frequency, the candidates
  of a typo's correction.

The query side is pure functions over these tables: :meth:`Shorthand.long_forms` (acronym -> long forms,
most used first), :meth:`Shorthand.acronyms_in` (long forms written out in a query -> their acronym) and
:meth:`Shorthand.correction` (a rare or absent word -> the most frequent word one edit away).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path

FILE = "shorthand.json"
FORMAT = 1
MIN_PAIR = 2  # papers that must define "long form (ACRONYM)" before a query uses the pair
MAX_LONG_WORDS = 8
LOWER_CASE_SHARE = 0.05  # see Shorthand.long_forms
MIN_SHARE = 0.02  # a long form with a smaller share of its acronym's uses is not one of its meanings
# Typo correction: a word is corrected only when the index knows it from at most RARE papers, by a word
# one edit away that at least CLEARLY times as many papers (and MIN_CORRECT at least) use.
RARE = 2
CLEARLY = 20
MIN_CORRECT = 5
MIN_TYPO_LEN = 5  # shorter words have too many neighbours one edit away
MAX_WORD = 30

_PAREN = re.compile(r"\(\s*([A-Za-z][A-Za-z0-9\-]{1,11})\s*\)")
_WORD = re.compile(r"[^\W\d_]+")  # letters only: the vocabulary of typo corrections
_SPLIT = re.compile(r"[\s\-/]+")
_ALNUM = re.compile(r"[^\W_]+")
_BOUNDARY = re.compile(r"[.;:!?\(\)\[\]]\s")
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def acronym_key(token: str) -> str | None:
    """The normalised acronym of a parenthesised token ("LLMs" -> "llm"), or None if it is not one: 2-10
    characters, a letter first, at least two capitals (so "(see)" or "(a)" never count)."""
    if token.endswith("s") and sum(c.isupper() for c in token[:-1]) >= 2:
        token = token[:-1]
    token = token.strip("-")
    if not 2 <= len(token) <= 10 or not token[0].isalpha() or sum(c.isupper() for c in token) < 2:
        return None
    return token.lower()


def normalise(text: str) -> str:
    """A long form as stored and compared: its runs of letters and digits (as the index's tokenizer splits
    them), lower case, the last word singular ("large language models" -> "large language model")."""
    words = _ALNUM.findall(text.lower())
    last = words[-1] if words else ""
    if len(last) > 3 and last.endswith("s") and not last.endswith(("ss", "us", "is")):
        words[-1] = last[:-1]
    return " ".join(words)


def _best_long_form(short: str, before: str) -> str | None:
    """The long form of ``short`` at the end of ``before``: the last words when their initials spell it
    ("proximal policy optimization (PPO)"), else Schwartz & Hearst's match, or None."""
    letters = [c for c in short.lower() if c.isalnum()]
    # (word number, part) for each part of each word: "multi-modal" is two parts of one word
    parts = [(i, p) for i, w in enumerate(before.split()) for p in _SPLIT.split(w) if p]
    tail = parts[-len(letters):] if len(parts) >= len(letters) else []
    if all(c.isalpha() for c in letters) and tail and [p[0].lower() for _, p in tail] == letters:
        # a long form starts at a word's start: "multi-modal large language models (MLLMs)"
        first = tail[0][0]
        return " ".join(p for i, p in parts if i >= first)
    s, i = len(short) - 1, len(before) - 1
    while s >= 0:
        c = short[s].lower()
        if not c.isalnum():
            s -= 1
            continue
        while i >= 0 and (before[i].lower() != c or (s == 0 and i > 0 and before[i - 1].isalnum())):
            i -= 1
        if i < 0:
            return None
        i -= 1
        s -= 1
    start = max(before.rfind(" ", 0, i + 1), before.rfind("-", 0, i + 1)) + 1
    # A hyphenated first word ("retrieval-augmented") starts at its first part.
    while start > 0 and before[start - 1] == "-":
        start = before.rfind(" ", 0, start - 1) + 1
    return before[start:]


def mine_pairs(text: str) -> list[tuple[str, str]]:
    """The (acronym, long form) pairs a text defines, both normalised, in order of appearance."""
    out = []
    for m in _PAREN.finditer(text or ""):
        key = acronym_key(m.group(1))
        if key is None:
            continue
        before = text[:m.start()].rstrip()
        cut = max((b.end() for b in _BOUNDARY.finditer(before)), default=0)
        words = before[cut:].split()
        n = min(len(key) + 5, 2 * len(key))
        window = " ".join(words[-n:])
        long = _best_long_form(key, window)
        if not long:
            continue
        long = normalise(long)
        parts = long.split()
        if not 2 <= len(parts) <= MAX_LONG_WORDS or key in parts or long.replace(" ", "") == key:
            continue
        out.append((key, long))
    return out


def words_of(text: str) -> set[str]:
    """The distinct words of a text the vocabulary counts (letters only, lower case, 2-30 letters)."""
    return {w for w in _WORD.findall((text or "").lower()) if 2 <= len(w) <= MAX_WORD}


def edits1(word: str) -> set[str]:
    """Every string one deletion, transposition, substitution or insertion (a-z) away from ``word``."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    out = {a + b[1:] for a, b in splits if b}
    out.update(a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1)
    out.update(a + c + b[1:] for a, b in splits if b for c in _LETTERS)
    out.update(a + c + b for a, b in splits for c in _LETTERS)
    out.discard(word)
    return out


class Shorthand:
    """The mined tables: ``pairs`` acronym -> {long form: papers}, ``vocab`` word -> papers, ``docs`` papers
    counted, ``last_seq`` the store change they were counted up to."""

    def __init__(self, pairs: dict[str, dict[str, int]] | None = None, vocab: dict[str, int] | None = None,
                 docs: int = 0, last_seq: int = 0):
        self.pairs = pairs or {}
        self.vocab = vocab or {}
        self.docs = docs
        self.last_seq = last_seq
        self._longs: dict[str, dict[str, int]] | None = None

    # -- building --------------------------------------------------------------------------------------
    def add(self, title: str, abstract: str | None) -> None:
        """Count one paper (a changed paper counted again counts twice: a rebuild recounts)."""
        text = f"{title}. {abstract}" if abstract else (title or "")
        for key, long in dict.fromkeys(mine_pairs(text)):
            forms = self.pairs.setdefault(key, {})
            forms[long] = forms.get(long, 0) + 1
        vocab = self.vocab
        for w in words_of(text):
            vocab[w] = vocab.get(w, 0) + 1
        self.docs += 1
        self._longs = None

    def to_json(self) -> dict:
        return {"format": FORMAT, "docs": self.docs, "last_seq": self.last_seq, "pairs": self.pairs,
                "vocab": self.vocab}

    def save(self, directory: str | Path) -> None:
        """Write the tables into ``directory`` atomically (a crash leaves the old file or the new one)."""
        path = Path(directory) / FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json(), separators=(",", ":")))
        os.replace(tmp, path)

    @classmethod
    def load(cls, directory: str | Path) -> Shorthand | None:
        """The tables saved in ``directory``; None when absent or unreadable (then they are rebuilt)."""
        try:
            data = json.loads((Path(directory) / FILE).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            return None
        return cls(data.get("pairs") or {}, data.get("vocab") or {}, int(data.get("docs") or 0),
                   int(data.get("last_seq") or 0))

    # -- acronyms --------------------------------------------------------------------------------------
    def long_forms(self, word: str) -> list[tuple[str, int]]:
        """The long forms ``word`` abbreviates in this corpus, (form, papers), most used first. A word typed
        in lower case counts as an acronym only when the corpus writes it mostly as one ("rag" yes,
        "are" or "age" no: ARE and AGE are defined a few times, the words are everywhere)."""
        key = word.lower()
        forms = self.pairs.get(key)
        if not forms:
            return []
        out = sorted(((f, n) for f, n in forms.items() if n >= MIN_PAIR), key=lambda fn: (-fn[1], fn[0]))
        if out and sum(c.isupper() for c in word) < 2 and not self._mostly_acronym(key, out):
            return []
        return out

    def _mostly_acronym(self, key: str, forms: list[tuple[str, int]]) -> bool:
        return sum(n for _, n in forms) >= LOWER_CASE_SHARE * self.vocab.get(key, 0)

    @property
    def longs(self) -> dict[str, dict[str, int]]:
        """long form -> {acronym: papers}, for pairs used at least MIN_PAIR times."""
        if self._longs is None:
            out: dict[str, dict[str, int]] = {}
            for key, forms in self.pairs.items():
                for form, n in forms.items():
                    if n >= MIN_PAIR:
                        out.setdefault(form, {})[key] = n
            self._longs = out
        return self._longs

    def acronyms_in(self, words: Iterable[str]) -> list[tuple[str, str]]:
        """(long form, acronym) for each long form written out, word after word, in ``words``."""
        seq = normalise(" ".join(words)).split()
        longs, out = self.longs, []
        for i in range(len(seq)):
            for j in range(min(len(seq), i + MAX_LONG_WORDS), i + 1, -1):
                form = " ".join(seq[i:j])
                if form in longs:
                    key, n = max(longs[form].items(), key=lambda kn: (kn[1], kn[0]))
                    # the acronym is searched as a word: not one that is mostly a word ("or", odds ratio)
                    if self._mostly_acronym(key, [(form, n)]):
                        out.append((form, key))
                    break
        return out

    def resolve(self, word: str, context: list[str],
                cooccurring: Callable[[str, str], float] | None = None) -> str | None:
        """The long form ``word`` most likely stands for in a query with the other words ``context``:
        the corpus's most used one, unless another one goes with the context words clearly more often
        (``cooccurring(form, word)``: the share of the form's papers that also hold the context word)."""
        forms = self.long_forms(word)
        if not forms:
            return None
        total = sum(n for _, n in forms)
        # Counting co-occurrences costs index queries: only among the meanings of some weight (SAM: segment
        # anything model 255, sharpness aware minimization 11; LLM's 12 "large scale language models"
        # next to 13,895 "large language models" are the same thing).
        meanings = [(form, n) for form, n in forms[:3] if n >= MIN_SHARE * total]
        if len(meanings) < 2 or not context or cooccurring is None:
            return forms[0][0]
        best, best_score = forms[0][0], -1.0
        for form, n in meanings:
            score = 0.2 * n / total + sum(cooccurring(form, w) for w in context)
            if score > best_score:
                best, best_score = form, score
        return best

    # -- typos -----------------------------------------------------------------------------------------
    def correction(self, word: str, known: Callable[[str], int] | None = None) -> str | None:
        """The word ``word`` was probably meant to be, or None: only for a word the corpus holds rarely or
        not at all (``known(word)``: papers whose index holds it, e.g. the lexical index's document
        frequency; else the vocabulary's count), replaced by the most frequent word one edit away that
        clearly more papers use."""
        w = word.lower()
        if len(w) < MIN_TYPO_LEN or len(w) > MAX_WORD or not w.isalpha() or not w.isascii():
            return None
        if w in self.pairs:
            return None
        df = known(w) if known is not None else self.vocab.get(w, 0)
        if df > RARE:
            return None
        need = max(MIN_CORRECT, CLEARLY * (df + 1))
        vocab = self.vocab
        best, best_n = None, 0
        for c in edits1(w):
            n = vocab.get(c, 0)
            if n >= need and (n > best_n or (n == best_n and best is not None and c < best)):
                best, best_n = c, n
        return best


def corrected_text(text: str, corrections: dict[str, str]) -> str:
    """``text`` with each corrected word replaced, wherever it stands as a whole word (any case)."""
    for wrong, right in corrections.items():
        text = re.sub(rf"(?<![\w:]){re.escape(wrong)}(?!\w)", right, text, flags=re.I)
    return text
