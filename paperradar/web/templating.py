"""Templating: the Jinja environment of the pages and feeds (filters and globals registered here, once,
when it is built) and :func:`render`, which gives every page its CSRF token, the signed-in user and the
marks on its paper cards.

Templates get plain values (papers, hits, spans) and do the escaping: autoescape is on, and highlighting
builds its markup from escaped pieces, so a title or abstract is always inert text.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from fastapi import Request
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from .. import library, mathtext, urls
from ..extract import CODE_HOSTS
from ..store import StoredPaper
from .deps import csrf_token, current_user, services
from .security import CSRF_COOKIE, CSRF_FIELD

HERE = Path(__file__).parent
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def highlight(text: str | None, spans, math: bool = False) -> Markup:
    """``text`` with the given (start, end) spans wrapped in <mark>, every piece escaped.

    With ``math``, each math segment (``$…$``, ``\\(…\\)``: mathtext.segments) is wrapped in
    ``<span class="tex">`` for static/math.js to render, and highlights are kept out of it: a <mark>
    inside LaTeX would cut the formula in two, so a span is clipped to the text around math.
    """
    text = text or ""
    tex = mathtext.segments(text) if math else []
    if tex:
        spans = _outside(sorted(spans or ()), tex)
        spans += [(start, end, "tex") for start, end in tex]
    out, pos = [], 0
    for start, end, *kind in sorted(spans or ()):
        if start < pos or end > len(text) or start >= end:
            continue
        # plain str pieces, joined once: building Markup objects piece by piece costs a tenth of a page
        tag = '<span class="tex">' if kind else "<mark>"
        out += (escape(text[pos:start]), tag, escape(text[start:end]), "</span>" if kind else "</mark>")
        pos = end
    out.append(escape(text[pos:]))
    return Markup("".join(out))


def _outside(spans: list, tex: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of highlight ``spans`` that lie outside the math segments ``tex`` (both sorted)."""
    out = []
    for start, end in spans:
        for t0, t1 in tex:
            if t1 <= start or t0 >= end:
                continue
            if t0 > start:
                out.append((start, t0))
            start = max(start, t1)
        if start < end:
            out.append((start, end))
    return out


def xml_text(value: str | None) -> str:
    """Text with the characters XML 1.0 forbids (control characters, lone surrogates) removed; the
    template's autoescape does the rest."""
    return _NOT_XML.sub("", value or "")


def listing_day(p) -> str:
    return (p.announced or p.submitted or "")[:10]


def authors_short(authors: list[str], n: int = 6) -> str:
    if len(authors) <= n:
        return ", ".join(authors)
    return ", ".join(authors[:n]) + f" and {len(authors) - n:,} more"


# -- what surrounds the abstract ----------------------------------------------------------------------------
HF_LABELS = {"model": "HF model", "dataset": "HF dataset", "space": "HF Space"}
MAX_HF_BADGES = 3
_PLAIN_VALUE = re.compile(r"[\w.-]+")


@dataclass
class Around:
    """What a card or the paper page shows around a paper's abstract, every URL already checked: the first
    code repository (with its GitHub stars when Hugging Face gave them for that repository), Hugging Face
    models, datasets and Spaces, the project page, the venue and the organisation, with the searches their
    badges link to."""

    code: str = ""
    code_host: str = ""
    stars: int | None = None
    hf: list[tuple[str, str, str]] = field(default_factory=list)  # (label, url, repository name)
    project: str = ""
    venue: str = ""
    venue_search: str = ""  # "/search?q=venue:..." or "" for a venue that cannot be searched for exactly
    org: str = ""
    org_name: str = ""
    org_search: str = ""

    def __bool__(self) -> bool:
        return bool(self.code or self.hf or self.project or self.venue or self.org)


def _facet_search(name: str, value: str) -> str:
    """``/search?q=name:value`` (quoted when the value has spaces), or '' when a quote in the value would
    make the search mean something else."""
    value = " ".join(value.split())
    if not value or '"' in value:
        return ""
    term = f"{name}:{value}" if _PLAIN_VALUE.fullmatch(value) else f'{name}:"{value}"'
    return "/search?" + urlencode({"q": term})


def around(p) -> Around:
    """The :class:`Around` of a stored paper. Only http(s) links survive (urls.safe_url), a code badge only
    for a known code host, and a page given twice (with and without its final slash) counts once."""
    out, seen = Around(), set()
    for link in getattr(p, "links", None) or ():
        url, kind = urls.safe_url(link.get("url")), link.get("kind")
        if not url or url.rstrip("/").lower() in seen:
            continue
        seen.add(url.rstrip("/").lower())
        host = (urlsplit(url).hostname or "").lower()
        if kind == "code" and not out.code and host in CODE_HOSTS:
            out.code, out.code_host = url, host
            same = urls.safe_url(p.code_url).rstrip("/").lower() == url.rstrip("/").lower()
            out.stars = p.github_stars if same and host == "github.com" else None
        elif kind in HF_LABELS and host == "huggingface.co" and len(out.hf) < MAX_HF_BADGES:
            name = urlsplit(url).path.strip("/").removeprefix("datasets/").removeprefix("spaces/")
            out.hf.append((HF_LABELS[kind], url, name))
        elif kind == "project" and not out.project:
            out.project = url
    out.venue = p.venue_label or ""
    venue = p.venue or {}
    if venue.get("name"):
        label = f"{venue['name']} {venue['year']}" if venue.get("year") else venue["name"]
        out.venue_search = _facet_search("venue", str(label))
    elif out.venue:
        out.venue_search = _facet_search("venue", out.venue)
    org = p.organization or {}
    out.org_name = str(org.get("name") or "")
    out.org = str(org.get("fullname") or out.org_name)
    out.org_search = _facet_search("org", out.org_name) if out.org_name else ""
    return out


def keyword_search(keyword: str) -> str:
    """The search for one of Hugging Face's keywords, as a phrase."""
    return "/search?" + urlencode({"q": '"' + " ".join(keyword.replace('"', " ").split()) + '"'})


# the bar charts of papers per month (SVG user units; the CSS scales them)
BAR, GAP, CHART_HEIGHT = 10, 2, 60


def month_chart(series: list[dict]) -> dict:
    """The geometry of a bar chart of papers per month ([{"month", "papers"}]) for templates/_chart.html,
    scaled to the busiest month; a month without papers is a thin line."""
    top = max((m["papers"] for m in series), default=0)
    bars = []
    for i, m in enumerate(series):
        h = max(round(m["papers"] / top * CHART_HEIGHT, 1) if top else 0, 1)
        bars.append({"x": i * (BAR + GAP), "y": CHART_HEIGHT - h, "width": BAR, "height": h,
                     "month": m["month"], "papers": m["papers"], "zero": m["papers"] == 0})
    return {"bars": bars, "width": max(len(series) * (BAR + GAP) - GAP, 1), "height": CHART_HEIGHT,
            "top": top, "first": series[0]["month"] if series else None,
            "last": series[-1]["month"] if series else None}


def _build() -> Jinja2Templates:
    t = Jinja2Templates(directory=HERE / "templates")
    t.env.auto_reload = False  # templates ship in the package: no stat() of every file per render
    t.env.filters.update(highlight=highlight, safe_url=urls.safe_url, authors_short=authors_short,
                         xml=xml_text, math_text=mathtext.to_text,
                         bibtex=library.paper_bibtex, exp=math.exp)
    t.env.globals.update(paper_links=urls.paper_links, paper_url=urls.paper_path, listing_day=listing_day,
                         urlencode=urlencode, around=around, keyword_search=keyword_search)
    return t


templates = _build()


def _papers_in(value, out: list, depth: int = 0) -> None:
    """The papers a page shows, wherever its context holds them (hits, trending items, feed items)."""
    if depth > 3 or value is None or isinstance(value, (str, bytes, int, float, dict)):
        return
    if isinstance(value, StoredPaper):
        out.append(value)
    elif isinstance(getattr(value, "paper", None), StoredPaper):
        out.append(value.paper)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _papers_in(v, out, depth + 1)
    else:
        for name in ("hits", "items"):
            if isinstance(getattr(value, name, None), (list, tuple)):
                _papers_in(getattr(value, name), out, depth + 1)


def _marks_for(request: Request, user, context: dict):
    """For paper cards: what the signed-in user did with each paper, fetched for all cards in one query
    (under the SQL time limit) instead of one query per card."""
    if user is None:
        return lambda p: None
    svc = services(request)
    papers: list = []
    for value in context.values():
        _papers_in(value, papers)
    ids = sorted({p.id for p in papers})
    with svc.store.time_limit(svc.settings.sql_time_limit_ms):
        marks = svc.store.accounts.marks(user, ids) if ids else {}

    def marks_of(p):
        if p.id not in marks:  # a card the walk above did not see: fetched on its own
            marks.update(svc.store.accounts.marks(user, [p.id]))
        return marks[p.id]

    return marks_of


def render(request: Request, name: str, context: dict, status: int = 200):
    """Render a page with the CSRF token for its forms; sets the CSRF cookie on a first visit."""
    svc = services(request)
    cookie = request.cookies.get(CSRF_COOKIE)
    new_cookie = None if cookie and cookie.isascii() and len(cookie) <= 100 else svc.csrf.new_cookie()
    me = current_user(request)
    context = {"csrf_field": CSRF_FIELD, "csrf_token": csrf_token(request, new_cookie or cookie), "me": me,
               "marks_of": _marks_for(request, me, context),
               "my_tags": svc.store.accounts.tags(me.id) if me else [],
               "here": request.url.path + (f"?{request.url.query}" if request.url.query else ""), **context}
    response = templates.TemplateResponse(request, name, context, status_code=status)
    if new_cookie:
        response.set_cookie(CSRF_COOKIE, new_cookie, httponly=True, samesite="lax",
                            secure=request.url.scheme == "https", path="/")
    return response


def render_error(request: Request, status: int, message: str, hint: str | None = None):
    return render(request, "error.html", {"status": status, "message": message, "hint": hint}, status=status)


def no_mail(request: Request, e):
    """The page for a request that needs mail on a server without a mail setup (MailNotConfigured)."""
    return render(request, "error.html", {
        "status": 503, "message": "This server has no mail set up, so it cannot send digests yet.",
        "hint": f"For its administrator: {e}" + (f" ({e.hint})." if e.hint else ".")}, status=503)
