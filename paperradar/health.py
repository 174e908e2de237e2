"""Health: whether the store and the indexes answer, for load balancers and systemd (``GET /healthz``).

Cheap enough to poll every few seconds: a count, one lexical lookup, the vector index as loaded. The
answer names the failing part and a short reason; the details (paths, exceptions) go to the log, not
to whoever polls.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from .errors import PaperradarError
from .query import parse_query
from .search import SearchEngine
from .store import Store

log = logging.getLogger("paperradar.health")


@dataclass
class Health:
    checks: dict[str, str] = field(default_factory=dict)  # part -> "ok ..." or the reason it fails
    failing: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failing

    def to_dict(self) -> dict:
        return {"status": "ok" if self.ok else "failing", "failing": self.failing, "checks": self.checks}


def check(store: Store, engine: SearchEngine, *, time_limit_ms: int = 2000, dense: bool = True) -> Health:
    """Ask each part one small question; a part that cannot answer is failing, with its reason."""
    health = Health()

    def part(name: str, probe, reason: str) -> None:
        try:
            health.checks[name] = probe()
        except PaperradarError as e:
            log.warning("health: %s: %s", name, e)
            health.checks[name] = f"{reason}" + (f" ({e.hint})" if e.hint else "")
            health.failing.append(name)
        except Exception:
            log.exception("health: %s", name)
            health.checks[name] = reason
            health.failing.append(name)

    def store_probe() -> str:
        with store.time_limit(time_limit_ms):
            return f"ok, {store.count():,} papers"

    def lexical_probe() -> str:
        engine.lexical.open_or_create()
        engine.lexical.search(parse_query("health"), limit=1)
        behind = store.count_changed_since(engine.lexical.last_seq)
        return f"ok, {behind:,} changes not indexed yet"

    def vectors_probe() -> str:
        vectors = engine.vectors  # loads (and checks) the index the first time
        behind = store.count_changed_since(vectors.last_seq)
        return f"ok, {len(vectors):,} vectors, {behind:,} changes not indexed yet"

    part("store", store_probe, "the database does not answer")
    part("lexical", lexical_probe, "the word index cannot be read")
    if dense:
        part("vectors", vectors_probe, "the vector index cannot be used")
    return health
