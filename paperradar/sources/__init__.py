"""Sources of papers: one module per source behind the small interface in base.py, and the registry of
file formats that the CLI and the write API both use."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from .base import Source


@dataclass(frozen=True)
class FileFormat:
    """A source that reads one file: its module and class (imported only when used) and its help."""

    module: str
    cls: str
    help: str

    def open(self, path: str) -> Source:
        return getattr(importlib.import_module(self.module, __package__), self.cls)(path)


# The file formats, named once for `paperradar ingest <name>` and the write API's `format=<name>`.
FILE_FORMATS = {
    "jsonl": FileFormat(".jsonl", "JSONLSource",
                        "From JSON lines (.jsonl or .jsonl.gz) in the shape of the arXiv corpus files."),
    "csv": FileFormat(".jsonl", "CSVSource",
                      "From CSV with a header row (id, title, abstract, authors, categories, ...)."),
    "hf-page": FileFormat(".hf_page", "HFPageSource",
                          "From saved Hugging Face Papers search pages (text: title / abstract lines)."),
    "hf-daily": FileFormat(".hf_daily", "HFDailySource",
                           "From Hugging Face daily papers (with upvotes): a saved JSON file."),
}


def file_source(format: str, path: str) -> Source:
    """The source reading ``path`` as ``format`` (a key of FILE_FORMATS)."""
    return FILE_FORMATS[format].open(path)
