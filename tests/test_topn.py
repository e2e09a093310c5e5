"""Top-n selection (segue.models.topn): every path gives the first n of a full sort by
(score descending, index ascending), finite scores only."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from segue.models.topn import (
    check_n,
    merge_top_n,
    prior_order,
    sparse_top_n,
    top_indices,
    top_n,
)


def reference_top_n(scores: np.ndarray, n: int) -> np.ndarray:
    """A full sort: (score descending, index ascending), finite scores only."""
    finite = np.flatnonzero(np.isfinite(scores))
    order = np.lexsort((finite, -scores[finite]))
    return finite[order[:n]]


@pytest.mark.parametrize("size", [10, 1000, 200_000])
@pytest.mark.parametrize("n", [1, 7, 500])
def test_top_indices_equals_a_full_sort(size: int, n: int) -> None:
    rng = np.random.default_rng(size + n)
    for scores in (
        rng.random(size, dtype=np.float32),
        rng.integers(0, 5, size).astype(np.float32),  # heavy ties: ties go by index
        np.where(rng.random(size) < 0.5, -np.inf, rng.random(size)).astype(np.float32),
        np.sort(rng.random(size)).astype(np.float32),  # sorted input: a strided sample is biased
    ):
        assert np.array_equal(top_indices(scores.copy(), n), reference_top_n(scores, n))


def test_ties_at_the_cut_go_to_the_lowest_indices() -> None:
    scores = np.array([0.5, 1.0, 0.5, 0.5, 2.0, 0.5], dtype=np.float32)
    ids, vals = top_n(scores.copy(), 4)
    assert ids.tolist() == [4, 1, 0, 2]
    assert vals.dtype == np.float32 and vals.tolist() == [2.0, 1.0, 0.5, 0.5]


def test_n_larger_than_the_candidates_returns_the_finite_ones() -> None:
    scores = np.array([0.1, -np.inf, 0.3, 0.2], dtype=np.float32)
    ids, vals = top_n(scores, 10)
    assert ids.tolist() == [2, 3, 0]
    assert vals.tolist() == pytest.approx([0.3, 0.2, 0.1])


def test_n_zero_is_empty_and_typed() -> None:
    ids, vals = top_n(np.ones(5, dtype=np.float32), 0)
    assert ids.shape == (0,) and ids.dtype == np.int64
    assert vals.shape == (0,) and vals.dtype == np.float32
    assert top_indices(np.empty(0, dtype=np.float32), 3).size == 0


def test_excluded_ids_never_come_back() -> None:
    scores = np.arange(10, dtype=np.float32)
    ids, _ = top_n(scores, 3, np.array([9, 7]))
    assert ids.tolist() == [8, 6, 5]
    assert np.isneginf(scores[[9, 7]]).all(), "exclusion is written into the scores"
    ids, _ = top_n(np.arange(3, dtype=np.float32), 5, np.array([0, 1, 2]))
    assert ids.size == 0


@pytest.mark.parametrize("bad", [-1, 2.0, True, "3", None])
def test_check_n_refuses_what_is_not_a_count(bad: object) -> None:
    with pytest.raises(ValueError, match="n must be a non-negative integer"):
        check_n(bad)


def test_check_n_takes_numpy_integers() -> None:
    assert check_n(np.int32(4)) == 4 and type(check_n(np.int64(0))) is int


def test_merge_top_n_equals_dense_top_n() -> None:
    rng = np.random.default_rng(3)
    prior = (rng.integers(0, 5, 200) * 1e-6).astype(np.float32)
    order = prior_order(prior)
    for _ in range(20):
        cand = rng.choice(200, size=rng.integers(0, 30), replace=False)
        vals = rng.random(cand.size).astype(np.float32)
        exclude = rng.choice(200, size=5, replace=False)
        dense = prior.copy()
        dense[cand] = vals
        dense[exclude] = -np.inf
        full = np.lexsort((np.arange(200), -dense))[:25]  # a full sort: ties by index
        got = merge_top_n(cand, vals, prior, order, 25, exclude)
        assert got[0].tolist() == full.tolist()
        np.testing.assert_array_equal(got[1], dense[full])
        assert top_n(dense.copy(), 25)[0].tolist() == full.tolist()


def test_merge_top_n_with_n_beyond_the_tracks() -> None:
    prior = np.array([3e-6, 1e-6, 2e-6], dtype=np.float32)
    ids, vals = merge_top_n(
        np.array([1]),
        np.array([0.5], dtype=np.float32),
        prior,
        prior_order(prior),
        10,
        np.array([2]),
    )
    assert ids.tolist() == [1, 0]
    assert vals.tolist() == pytest.approx([0.5, 3e-6])
    none = np.empty(0, dtype=np.int64)
    empty_ids, _ = merge_top_n(none, none.astype(np.float32), prior, prior_order(prior), 0, none)
    assert empty_ids.size == 0


def test_sparse_top_n_pads_rows_and_matches_merge_top_n() -> None:
    prior = np.array([4e-6, 3e-6, 2e-6, 1e-6, 0.0], dtype=np.float32)
    order = prior_order(prior)
    result = sp.csr_matrix(
        np.array([[0, 0, 0, 0.9, 0], [0, 0, 0, 0, 0]], dtype=np.float32), dtype=np.float32
    )
    excludes = [np.array([0]), np.array([0, 1, 2, 3])]
    ids, vals = sparse_top_n(result, prior, order, 3, excludes)
    assert ids.shape == vals.shape == (2, 3)
    assert ids[0].tolist() == [3, 1, 2]
    assert vals[0][0] == pytest.approx(0.9 + 1e-6)
    # the second query can only get track 4: the rest is padding
    assert ids[1].tolist() == [4, -1, -1]
    assert np.isneginf(vals[1][1:]).all()
