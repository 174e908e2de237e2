"""Fusion and trending are pure functions: deterministic, ties broken by id."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from paperradar import rank


def test_rrf_rewards_agreement_and_breaks_ties_by_id():
    lexical = [(1, 9.0), (2, 8.0), (3, 7.0)]
    dense = [(3, 0.9), (1, 0.8), (4, 0.7)]
    fused = rank.rrf([lexical, dense])
    assert [pid for pid, _ in fused][:2] == [1, 3]
    assert rank.rrf([[(5, 1.0)], [(4, 1.0)]]) == [(4, 1 / 61), (5, 1 / 61)]


def test_convex_combination_weights_normalised_scores():
    lexical = [(1, 30.0), (2, 10.0)]
    dense = [(2, 0.9), (3, 0.5)]
    assert rank.convex(lexical, dense, alpha=0.0)[0][0] == 1
    assert rank.convex(lexical, dense, alpha=1.0)[0][0] == 2
    mid = dict(rank.convex(lexical, dense, alpha=0.5))
    assert mid == {1: 0.5, 2: 0.5, 3: 0.0}
    assert rank.convex([], [], alpha=0.5) == []


@given(st.lists(st.tuples(st.integers(0, 50), st.floats(-1e6, 1e6)), unique_by=lambda t: t[0]),
       st.lists(st.tuples(st.integers(0, 50), st.floats(-1e6, 1e6)), unique_by=lambda t: t[0]),
       st.floats(0, 1))
def test_convex_is_bounded_and_sorted(lexical, dense, alpha):
    fused = rank.convex(lexical, dense, alpha=alpha)
    assert {pid for pid, _ in fused} == {pid for pid, _ in lexical} | {pid for pid, _ in dense}
    assert all(-1e-9 <= s <= 1 + 1e-9 for _, s in fused)
    assert fused == sorted(fused, key=lambda t: (-t[1], t[0]))


def test_trending_decays_with_age_and_grows_with_votes():
    assert rank.trending_score(10, 1) > rank.trending_score(10, 48)
    assert rank.trending_score(50, 24) > rank.trending_score(5, 24)
    assert rank.trending_score(0, 0) > 0
    assert rank.trending_score(-3, -1) == rank.trending_score(0, 0)


def test_complete_adds_the_other_runs_papers_with_their_scores():
    run = [(1, 5.0), (2, 3.0)]
    # Paper 3 has a score, 4 has none: left out without a default, given it with one; 1 keeps its own.
    assert rank.complete(run, [1, 3, 4], {1: 99.0, 3: 4.0}) == [(1, 5.0), (3, 4.0), (2, 3.0)]
    assert rank.complete(run, [4, 3], {3: 4.0}, default=0.0) == [(1, 5.0), (3, 4.0), (2, 3.0), (4, 0.0)]
    assert rank.complete([], [7, 6], {}, default=0.0) == [(6, 0.0), (7, 0.0)]  # ties by id
    assert rank.complete(run, [], {}) == run


def test_completed_runs_change_the_fusion_of_a_paper_found_by_one_engine():
    # Paper 3 is third lexically but missing from the dense run, where it is in fact the best match:
    # as missing it scores 0 there, completed it wins.
    lexical, dense = [(1, 10.0), (2, 9.5), (3, 9.0), (4, 5.0)], [(1, 0.5), (2, 0.4)]
    assert rank.convex(lexical, dense, alpha=0.5)[0][0] == 1
    completed = rank.complete(dense, [3], {3: 0.9})
    assert rank.convex(lexical, completed, alpha=0.5)[0][0] == 3
