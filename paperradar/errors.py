"""Named exceptions of the core. The CLI and web edges translate them once into messages and codes."""

from __future__ import annotations


class PaperradarError(Exception):
    """Base of every error a user can cause or fix; carries an optional hint."""

    exit_code = 2
    http_status = 400  # what the web app answers: most errors are the request's fault

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


class InputUnusable(PaperradarError):
    """The input as a whole cannot be read (missing file, wrong format, network gone after retries)."""


class NotFound(PaperradarError):
    """A paper or other object the user named does not exist."""

    exit_code = 1
    http_status = 404


class StoreError(PaperradarError):
    """The database cannot be opened or is from a newer paperradar."""

    http_status = 503


class RateLimited(PaperradarError):
    """Too many requests of one kind (sign-in mails, subscriptions) for an address or a client."""

    http_status = 429
