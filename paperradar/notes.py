"""Notes and comments on papers, written in a safe subset of Markdown.

Markdown is parsed by markdown-it-py (CommonMark, raw HTML off, images off: a note cannot load anything)
and what it renders goes through nh3 (the Rust sanitiser ammonia) with a short list of tags: emphasis,
code, lists, quotes, headings, paragraphs and links — only http(s) links, with rel="nofollow noopener
noreferrer". Both are well-kept libraries; nothing here parses HTML by hand. The source is stored, and
rendered when shown, so a fix to the rules applies to every old note.

Who may read what: a note is its author's alone, or shared with one of their groups; a comment belongs to
a group, or (``comments_public``) to every signed-in user. Every lookup goes through the reader's groups
(paperradar.store.groups), and what a reader may not see is NotFound, as if it did not exist.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from functools import lru_cache

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

from .clock import stamp, utc
from .errors import NotFound, PaperradarError, RateLimited
from .store import Store, User
from .store.groups import Comment, GroupStore, Note

MAX_NOTE = 20_000  # characters of one note
MAX_COMMENT = 5_000
COMMENT_LIMIT = 30  # comments per user per hour
COMMENT_WINDOW = dt.timedelta(hours=1)
TAGS = {"p", "br", "em", "strong", "code", "pre", "blockquote", "ul", "ol", "li", "a", "h1", "h2", "h3",
        "h4", "h5", "h6", "hr"}
MAX_NESTING = 20  # blocks inside blocks: deeper input renders as text, never recursion without end


class NoteError(PaperradarError):
    """A note or comment that cannot be taken as given (empty, too long)."""


def clean_text(text: str | None, limit: int, what: str) -> str:
    """User text as stored: control characters other than newline and tab dropped (and lone surrogates,
    which cannot be stored), line ends as \\n, trailing space trimmed; NoteError if empty or too long."""
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(c for c in text if c in "\n\t" or unicodedata.category(c) not in ("Cc", "Cs", "Co", "Cn"))
    text = text.strip()
    if not text:
        raise NoteError(f"the {what} is empty")
    if len(text) > limit:
        raise NoteError(f"a {what} is at most {limit:,} characters (this one has {len(text):,})")
    return text


def _http_only(url: str) -> bool:
    return url.strip().lower().startswith(("http://", "https://"))


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "maxNesting": MAX_NESTING})
    md.disable("image")
    md.validateLink = _http_only  # other links (javascript:, mailto:, relative) stay text
    return md


def _attribute(tag: str, attr: str, value: str) -> str | None:
    if tag == "a" and attr == "href":
        return value if _http_only(value) else None
    return value


def render_markdown(text: str) -> Markup:
    """The safe HTML of a note or comment (see the module docstring)."""
    try:
        html = _parser().render(text or "")
    except RecursionError:  # a parser bug on some nesting: the text as it was typed, escaped
        return Markup("<p>{}</p>").format(text)
    return Markup(nh3.clean(html, tags=TAGS, attributes={"a": {"href", "title"}}, url_schemes={"http",
                                                                                               "https"},
                            link_rel="nofollow noopener noreferrer", attribute_filter=_attribute,
                            strip_comments=True))


class Notes:
    """Notes and comments over a store; ``comments_public`` is the operator's setting."""

    def __init__(self, store: Store, comments_public: bool = False):
        self.store = store
        self.db = GroupStore(store)
        self.public = comments_public

    def _group_for(self, user: User, group_id: int | None) -> int | None:
        """A group the user is in (NotFound otherwise), or None."""
        if not group_id:
            return None
        if self.db.role(group_id, user.id) is None:
            raise NotFound("no such group")
        return group_id

    # -- notes ------------------------------------------------------------------------------------------
    def add_note(self, user: User, ref: str, body: str, group_id: int | None = None,
                 now: dt.datetime | None = None) -> int:
        body = clean_text(body, MAX_NOTE, "note")
        paper = self.store.get(ref)
        with self.store.transaction():
            return self.db.add_note(user.id, paper.id, self._group_for(user, group_id), body, stamp(utc(now)))

    def edit_note(self, user: User, note_id: int, body: str, group_id: int | None = None,
                  now: dt.datetime | None = None) -> None:
        body = clean_text(body, MAX_NOTE, "note")
        with self.store.transaction():
            if not self.db.update_note(user.id, note_id, self._group_for(user, group_id), body,
                                       stamp(utc(now))):
                raise NotFound("no such note")

    def delete_note(self, user: User, note_id: int) -> None:
        if not self.db.delete_note(user.id, note_id):
            raise NotFound("no such note")

    def groups(self, user: User) -> list:
        """The groups the user is in (what a note can be shared with, a comment posted in)."""
        return self.db.groups_of(user.id)

    def notes_on(self, user: User, paper_id: int) -> list[Note]:
        return self.db.notes_on(user.id, paper_id)

    def notes_for(self, user: User, paper_ids: list[int]) -> dict[int, list[Note]]:
        return self.db.notes_for(user.id, paper_ids)

    # -- comments ---------------------------------------------------------------------------------------
    def add_comment(self, user: User, ref: str, body: str, group_id: int | None = None,
                    now: dt.datetime | None = None) -> int:
        """Comment under a paper, in a group of the user's (or publicly, when the operator allows it);
        at most COMMENT_LIMIT an hour per user."""
        body = clean_text(body, MAX_COMMENT, "comment")
        paper = self.store.get(ref)
        now = utc(now)
        with self.store.transaction():
            gid = self._group_for(user, group_id)
            if gid is None and not self.public:
                raise NoteError("choose a group to comment in (this server has no public comments)")
            if self.db.comments_since(user.id, stamp(now - COMMENT_WINDOW)) >= COMMENT_LIMIT:
                raise RateLimited(f"at most {COMMENT_LIMIT} comments an hour; try again later")
            return self.db.add_comment(user.id, paper.id, gid, body, stamp(now))

    def _readable(self, user: User, comment_id: int) -> Comment:
        c = self.db.comment(comment_id)
        if c is None or (c.group_id is None and not self.public) or \
                (c.group_id is not None and self.db.role(c.group_id, user.id) is None):
            raise NotFound("no such comment")
        return c

    def edit_comment(self, user: User, comment_id: int, body: str, now: dt.datetime | None = None) -> Comment:
        """Only its author edits a comment."""
        body = clean_text(body, MAX_COMMENT, "comment")
        with self.store.transaction():
            c = self._readable(user, comment_id)
            if c.user_id != user.id:
                raise NotFound("no such comment of yours")
            self.db.edit_comment(comment_id, body, stamp(utc(now)))
        return c

    def delete_comment(self, user: User, comment_id: int) -> Comment:
        """Its author deletes a comment; an owner of its group removes it."""
        with self.store.transaction():
            c = self._readable(user, comment_id)
            owner = c.group_id is not None and self.db.role(c.group_id, user.id) == "owner"
            if c.user_id != user.id and not owner:
                raise NotFound("no such comment of yours")
            self.db.delete_comment(comment_id)
        return c

    def comments_on(self, user: User, paper_id: int) -> list[Comment]:
        return self.db.comments_on(user.id, paper_id, self.public)

    def can_remove(self, user: User, c: Comment) -> bool:
        return c.user_id == user.id or (c.group_id is not None and self.db.role(c.group_id,
                                                                                user.id) == "owner")

    def new_comments(self, user: User, since: str) -> int:
        """Comments by others since ``since`` on papers this user saved (theirs or their groups')."""
        return self.db.new_comments_on_saved(user.id, since, self.public)
