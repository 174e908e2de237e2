"""A Hugging Face Papers search page saved as plain text: page chrome, then title / abstract line pairs.

The chrome is recognised by its wording ("Get trending papers in your email inbox...", "Subscribe"), not by
position. On saved pages the "Subscribe" button's text is glued to the first title ("SubscribeImproving
latent..."); it is cut off. Blank lines are ignored. Titles and abstracts are kept exactly as on the page,
outer whitespace aside. There is no arXiv id, so the paper is keyed by its title until a richer source for
the same title merges with it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..errors import InputUnusable
from ..models import InvalidRecord, Paper, Rejected
from .base import InputFile, Item
from .jsonl import TOO_LONG, FileSource, sniff

_CHROME = re.compile(r"(?i)get trending papers\b.*|subscribe|trending papers|daily papers")
# Without chrome lines before it, "Subscribe" counts as glued only when a new word follows
# ("SubscribeImproving", "Subscribe3D"), not in a real title such as "Subscriber churn ...".
_GLUED = re.compile(r"Subscribe(?=[^a-z])")

Line = tuple[int, str | None, str]  # (line number, text or None when unusable, why unusable)


def content_lines(f: InputFile) -> Iterator[Line]:
    """The page's non-blank lines after its chrome, with the "Subscribe" glued to the first one cut off."""
    in_chrome, chrome_seen, button_seen = True, False, False
    for n, raw in f.lines():
        if raw is None:
            yield n, None, f"line {n} is {TOO_LONG.removeprefix('line ')}"
            continue
        try:
            text = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            yield n, None, f"line {n} is not valid UTF-8"
            continue
        if not text:
            continue
        if in_chrome:
            if _CHROME.fullmatch(text):
                chrome_seen = True
                button_seen = button_seen or text.lower() == "subscribe"
                continue
            in_chrome = False
            if text[:1] in "{[<":
                raise InputUnusable(f"{f.label}: looks like JSON or HTML, not a saved page's text",
                                    hint="save the page as plain text, or use the matching source")
            # The button's text lands on the first title unless it had a line of its own.
            glued = chrome_seen or _GLUED.match(text)
            if glued and not button_seen and text.startswith("Subscribe"):
                text = text[len("Subscribe"):].lstrip()
        yield n, text, ""


class HFPageSource(FileSource):
    """Papers from a saved HF Papers page (``-`` for stdin); a line is a title, the next its abstract."""

    name = "page"

    def __iter__(self) -> Iterator[Item]:
        with self._opened() as f:
            sniff(f, "saved page text", whole_head=True)  # a page's text never has a NUL
            pending: Line | None = None
            for line in content_lines(f):
                if pending is None:
                    pending = line
                    continue
                (n, title, title_problem), (_, abstract, problem), pending = pending, line, None
                where = f"{f.label} line {n}"
                if title is None or abstract is None:
                    yield Rejected(where, title_problem or problem)
                    continue
                try:
                    yield Paper(title=title, source=self.name, abstract=abstract).validate()
                except InvalidRecord as e:
                    yield Rejected(where, str(e))
            if pending is not None:
                yield Rejected(f"{f.label} line {pending[0]}", "a title without an abstract at the end")
