"""Query parameters shared by the search page, the JSON search endpoint and the search feed.

The URL holds the whole search (``q`` plus the filter fields), so a result page can be shared, bookmarked
or followed as a feed; the filters are folded into the query language by :func:`paperradar.query.compose`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlencode

from fastapi import Query

from ..query import MAX_QUERY, compose

MAX_OFFSET = 1000  # deepest result reachable by paging: bounded work per request
PAGE_SIZE = 20

Sort = Literal["relevance", "newest", "trending"]
Mode = Literal["hybrid", "lexical", "dense"]


@dataclass
class SearchArgs:
    q: str = ""
    cat: str = ""
    au: str = ""
    since: str = ""
    until: str = ""
    sort: str | None = None
    mode: str = "hybrid"

    @property
    def query(self) -> str:
        """The whole search as one query string."""
        return compose(self.q, category=self.cat, author=self.au, since=self.since, until=self.until)

    @property
    def empty(self) -> bool:
        return not self.query.strip()

    @property
    def has_filters(self) -> bool:
        return any((self.cat, self.au, self.since, self.until))

    def url_params(self, **changes) -> str:
        """The query string of this search, with ``changes`` applied (None removes a key); only
        non-default values are written, so URLs stay short."""
        values = {"q": self.q, "cat": self.cat, "au": self.au, "since": self.since, "until": self.until,
                  "sort": self.sort, "mode": None if self.mode == "hybrid" else self.mode}
        values.update(changes)
        return urlencode({k: v for k, v in values.items() if v not in (None, "")})


def search_args(
    q: str = Query("", max_length=MAX_QUERY, description="Query in paperradar's query language "
                   '(words, "phrases", ti:/abs:/au:/cat:/id: fields, -exclusions, since:/until:).'),
    cat: str = Query("", max_length=200, description="Categories, space-separated (any of them): cs.CL."),
    au: str = Query("", max_length=200, description="Author name or part of it."),
    since: str = Query("", max_length=10, description="First day: YYYY, YYYY-MM or YYYY-MM-DD."),
    until: str = Query("", max_length=10, description="Last day: YYYY, YYYY-MM or YYYY-MM-DD."),
    sort: Sort | None = Query(None, description="relevance (default), newest or trending."),
    mode: Mode = Query("hybrid", description="hybrid (default), lexical (BM25) or dense (embeddings)."),
) -> SearchArgs:
    return SearchArgs(q=q, cat=cat, au=au, since=since, until=until, sort=sort, mode=mode)
