"""Where a request goes next: back to a page on this site (never elsewhere), or to sign in and back."""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from fastapi import Request
from fastapi.responses import RedirectResponse


def local(path: str | None, default: str = "/") -> str:
    """A path on this site to go back to; anything else (another site, a scheme) becomes ``default``."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path \
            or not path.isprintable():
        return default
    return path


def to_sign_in(request: Request) -> RedirectResponse:
    """Off to the sign-in page, and back here (a POST: back to the page it came from) afterwards."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":
        referer = urlsplit(request.headers.get("referer", ""))
        here = referer.path + (f"?{referer.query}" if referer.query else "") \
            if referer.netloc == request.url.netloc else "/"
    return RedirectResponse("/signin?" + urlencode({"next": here}), status_code=303)


def back(next_path: str | None) -> RedirectResponse:
    return RedirectResponse(local(next_path), status_code=303)
