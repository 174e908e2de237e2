"""Ingest: drain a source into the store in batches, each batch one transaction.

A ``kill -9`` at any moment leaves the database at a batch boundary; because upserts are idempotent,
re-running the same ingest finishes the job with exactly the right counts. Checkpoints from resumable
sources are saved in the same transaction as the records before them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .config import Settings
from .models import Paper, Rejected
from .sources.base import Checkpoint, Source
from .store import Store, UpsertCounts

DEFAULT_BATCH = Settings.batch_size  # the settings table's default; callers pass settings.batch_size
MAX_REJECTS_SHOWN = 20  # reject messages a person is shown (the CLI and the write API); all are counted


@dataclass
class IngestReport:
    """What one ingest did; ``exit_code`` is 0 when everything went in, 1 when records were rejected."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0

    @property
    def exit_code(self) -> int:
        return 1 if self.rejected else 0

    def summary(self) -> str:
        return (f"added {self.added}, updated {self.updated}, unchanged {self.unchanged}, "
                f"rejected {self.rejected}")


def ingest(
    store: Store,
    source: Source,
    *,
    batch_size: int | None = None,
    on_reject: Callable[[Rejected], None] | None = None,
    on_progress: Callable[[int, int | None, IngestReport], None] | None = None,
) -> IngestReport:
    """Read every item of ``source`` into ``store``; return the counts.

    ``on_reject`` is told about each malformed record (with its position); ``on_progress`` gets
    (done, total, report) after each batch, in the source's units (bytes of a file, records of an API).
    A source raising InputUnusable stops the ingest; the batches already committed stay.
    """
    batch_size = batch_size or DEFAULT_BATCH
    report = IngestReport()
    batch: list[Paper] = []

    def flush(checkpoint: Checkpoint | None = None) -> None:
        with store.transaction():
            counts: UpsertCounts = store.upsert_papers(batch)
            if checkpoint is not None:
                store.set_state(checkpoint.key, checkpoint.state)
        report.added += counts.added
        report.updated += counts.updated
        report.unchanged += counts.unchanged
        batch.clear()
        if on_progress:
            done, total = source.progress()
            on_progress(done, total, report)

    for item in source:
        if isinstance(item, Paper):  # sources yield only validated papers (Paper.validate)
            batch.append(item)
            if len(batch) >= batch_size:
                flush()
        elif isinstance(item, Rejected):
            report.rejected += 1
            if on_reject:
                on_reject(item)
        elif isinstance(item, Checkpoint):
            flush(item)
    if batch:
        flush()
    return report
