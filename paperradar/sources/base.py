"""The small interface every source implements, and helpers for reading files.

A source is an iterable of items: :class:`~paperradar.models.Paper` for each usable record,
:class:`~paperradar.models.Rejected` for each malformed one (with its position), and optionally
:class:`Checkpoint` markers. The ingest driver commits everything before a checkpoint together with the
checkpoint's state, so a resumable source (OAI-PMH) restarts exactly where the database says it was.
"""

from __future__ import annotations

import gzip
import io
import os
import sys
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from ..errors import InputUnusable
from ..models import Paper, Rejected


@dataclass(frozen=True)
class Checkpoint:
    """Resumable state of a source (JSON-serialisable), saved atomically with the records before it."""

    key: str
    state: dict = field(default_factory=dict)


Item = Paper | Rejected | Checkpoint


class Source(ABC):
    """Base class: subclasses set ``name`` (one of models.SOURCE_RANK) and implement ``__iter__``."""

    name: str = ""

    @abstractmethod
    def __iter__(self) -> Iterator[Item]:
        """Yield Paper, Rejected and Checkpoint items, in input order."""

    def progress(self) -> tuple[int, int | None]:
        """(units done, units in total or None); units are bytes for files, records for APIs."""
        return 0, None


MAX_LINE = 4 * 1024 * 1024  # one JSON/CSV record longer than this is rejected, not loaded


class InputFile:
    """A path (or ``-`` for stdin) opened for binary reading; gzip is detected by its magic bytes.

    ``position()`` reports how far into the underlying file reading has got, for progress bars.
    """

    def __init__(self, path: str):
        self.label = "stdin" if path == "-" else os.path.basename(path)
        self.total: int | None = None
        if path == "-":
            raw: BinaryIO = sys.stdin.buffer
        else:
            try:
                raw = open(path, "rb")  # noqa: SIM115 - closed by close()
                self.total = os.fstat(raw.fileno()).st_size
            except OSError as e:
                raise InputUnusable(f"cannot open {path}: {e.strerror}") from None
        self._raw = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)
        self.stream: BinaryIO = self._raw
        if self._raw.peek(2)[:2] == b"\x1f\x8b":
            self.stream = gzip.GzipFile(fileobj=self._raw, mode="rb")  # type: ignore[assignment]

    def position(self) -> int:
        try:
            return self._raw.tell()
        except (OSError, ValueError):
            return 0

    def lines(self) -> Iterator[tuple[int, bytes | None]]:
        """Yield (line number, raw bytes); bytes is None for a line over MAX_LINE (which is skipped)."""
        n = 0
        try:
            while True:
                line = self.stream.readline(MAX_LINE + 1)
                if not line:
                    return
                n += 1
                if len(line) > MAX_LINE and not line.endswith(b"\n"):
                    while line and not line.endswith(b"\n"):  # drain the rest of the oversize line
                        line = self.stream.readline(MAX_LINE)
                    yield n, None
                    continue
                yield n, line
        except (OSError, EOFError, zlib.error) as e:  # zlib.error: corrupt deflate data
            raise InputUnusable(f"{self.label}: cannot read past line {n}: {e}") from None

    def close(self) -> None:
        if self.label != "stdin":
            self.stream.close()
            self._raw.close()
