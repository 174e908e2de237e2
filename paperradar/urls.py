"""Every URL of a paper, built in one place and percent-encoded: pages, the API, feeds and mails use these.

A paper's key is untrusted text (a DOI from a feed may hold ``?``, ``#``, spaces or control characters),
so it is always quoted before it becomes part of a path; stored links are kept only when they are
http(s) and carry no characters a URL may not.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

# Characters left as they are in a paper reference: those of arXiv ids ("hep-th/9901001", "2503.11731")
# and of keys ("doi:10.1000/xyz"). Everything else, "?", "#", "%", spaces and controls included, is quoted.
_REF_SAFE = "/:.-_~()"


def ref_of(paper) -> str:
    """What identifies the paper in this site's URLs: its arXiv id, else its store key."""
    return paper.arxiv_id or paper.key


def quote_ref(ref: str) -> str:
    # A "." or ".." segment would be resolved away by the browser (even written %2E%2E): then the slashes
    # are quoted too, and the reference travels as one segment (the server decodes %2F back to "/").
    if any(part in (".", "..") for part in ref.split("/")):
        return quote(ref, safe=_REF_SAFE.replace("/", ""))
    return quote(ref, safe=_REF_SAFE)


def paper_path(paper, action: str | None = None) -> str:
    """``/paper/<ref>`` (the page), or ``/papers/<ref>/<action>`` (the card's forms: vote, save ...)."""
    if action:
        return f"/papers/{quote_ref(paper.key)}/{action}"
    return f"/paper/{quote_ref(ref_of(paper))}"


def paper_url(base_url: str, paper) -> str:
    """The paper's page as an absolute URL under ``base_url`` (the configured public address)."""
    return base_url.rstrip("/") + paper_path(paper)


def safe_url(url: str | None) -> str:
    """An http(s) URL with nothing a URL may not hold, or '' — a stored link is untrusted input (think
    ``javascript:`` or a control character in an href)."""
    url = (url or "").strip()
    if not url or not url.isprintable() or any(c.isspace() for c in url) or not url.isascii():
        return ""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    return url if parts.scheme.lower() in ("http", "https") and parts.netloc else ""


def doi_url(doi: str | None) -> str:
    return "https://doi.org/" + quote(doi, safe="/:;()._-") if doi else ""


def paper_links(paper) -> dict[str, str]:
    """The paper's links elsewhere: abs, pdf (arXiv, or the stored links), doi."""
    links = {"abs": safe_url(paper.abs_url), "pdf": safe_url(paper.pdf_url)}
    if paper.arxiv_id:
        arxiv = quote(paper.arxiv_id, safe="/.-")
        links["abs"] = links["abs"] or f"https://arxiv.org/abs/{arxiv}"
        links["pdf"] = links["pdf"] or f"https://arxiv.org/pdf/{arxiv}"
    if paper.doi:
        links["doi"] = doi_url(paper.doi)
    return {k: v for k, v in links.items() if v}
