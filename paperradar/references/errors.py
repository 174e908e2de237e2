"""The one error of the reference readers (a module of its own: every reader raises it)."""

from __future__ import annotations

from ..errors import InputUnusable


class Unreadable(InputUnusable):
    """The file as a whole cannot be read in the format asked for or detected (or is hostile)."""
