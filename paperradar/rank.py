"""Ranking as pure functions over ``(paper_id, score)`` lists: fusion of lexical and dense results.

Deterministic: ties are broken by paper id, so results never depend on dict or heap order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

Ranked = Sequence[tuple[int, float]]


def sort_ranked(scores: dict[int, float], limit: int | None = None) -> list[tuple[int, float]]:
    """Highest score first, ties by ascending id."""
    out = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    return out if limit is None else out[:limit]


def rrf(runs: Sequence[Ranked], k: int = 60, weights: Sequence[float] | None = None,
        limit: int | None = None) -> list[tuple[int, float]]:
    """Reciprocal rank fusion (Cormack et al. 2009): sum of weight / (k + rank) over the runs."""
    weights = weights or [1.0] * len(runs)
    fused: dict[int, float] = {}
    for run, w in zip(runs, weights, strict=True):
        for rank, (pid, _) in enumerate(run, start=1):
            fused[pid] = fused.get(pid, 0.0) + w / (k + rank)
    return sort_ranked(fused, limit)


def minmax(run: Ranked) -> dict[int, float]:
    """Scores scaled to [0, 1] within the run (all equal -> all 1)."""
    if not run:
        return {}
    lo = min(s for _, s in run)
    hi = max(s for _, s in run)
    span = hi - lo
    return {pid: (s - lo) / span if span > 0 else 1.0 for pid, s in run}


def convex(lexical: Ranked, dense: Ranked, alpha: float = 0.5,
           limit: int | None = None) -> list[tuple[int, float]]:
    """Convex combination of min-max normalised scores: alpha * dense + (1 - alpha) * lexical.

    Bruch et al. (2022, "An Analysis of Fusion Functions for Hybrid Retrieval") find this beats RRF when
    alpha is tuned. A document missing from one run scores 0 there (it fell below that run's cut-off).
    """
    lex = minmax(lexical)
    den = minmax(dense)
    fused = {pid: (1 - alpha) * lex.get(pid, 0.0) + alpha * den.get(pid, 0.0)
             for pid in lex.keys() | den.keys()}
    return sort_ranked(fused, limit)


def complete(run: Ranked, papers: Iterable[int], scores: Mapping[int, float],
             default: float | None = None) -> list[tuple[int, float]]:
    """``run`` with the ``papers`` it lacks added, each with its score in ``scores`` (``default`` when it
    has none there; left out when that is None), best first, ties by id.

    Fusion gives a paper missing from one engine's run that engine's lowest normalised score, as if it
    ranked last there; completing each run with the other's papers scores every candidate by both
    engines instead (see SearchEngine.retrieve)."""
    have = dict(run)
    for pid in papers:
        if pid not in have:
            s = scores.get(pid, default)
            if s is not None:
                have[pid] = s
    return sort_ranked(have)


def trending_score(votes: int, age_hours: float, gravity: float = 1.8) -> float:
    """Time-decayed votes, as Hacker News ranks stories: (votes + 1) / (age + 2) ** gravity.

    The +1 lets a paper with no votes yet rank by freshness; the +2 hours keeps brand-new papers from
    dividing by ~0; gravity 1.8 halves a paper's standing in well under a day at constant votes.
    """
    return (max(votes, 0) + 1) / (max(age_hours, 0.0) + 2.0) ** gravity
