"""segue.models.rows against scipy's own products on random matrices."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from segue.models.rows import entries, row_positions, rows_dot, sparse_sum_rows, sum_rows


def random_csr(seed: int, shape: tuple[int, int] = (60, 500), density: float = 0.05):
    rng = np.random.default_rng(seed)
    m = sp.random(*shape, density=density, format="csr", dtype=np.float32, random_state=rng)
    m.data[:] = rng.integers(1, 5, m.nnz)  # small integers: sums are exact in float32
    return m


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("density", [0.002, 0.05, 0.5])
def test_sums_equal_scipy_products(seed: int, density: float) -> None:
    m = random_csr(seed, density=density)
    rng = np.random.default_rng(100 + seed)
    rows = np.unique(rng.integers(0, m.shape[0], 7))
    weights = rng.integers(1, 4, rows.size).astype(np.float32)
    indicator = sp.csr_matrix(
        (weights, (np.zeros(rows.size, dtype=np.int64), rows)), shape=(1, m.shape[0])
    )
    expected = (indicator @ m).toarray().ravel()
    np.testing.assert_array_equal(sum_rows(m, rows, weights), expected)
    cols, vals = sparse_sum_rows(m, rows, weights)
    assert np.all(np.diff(cols) > 0)
    np.testing.assert_array_equal(cols, np.flatnonzero(expected))
    np.testing.assert_array_equal(vals, expected[cols])
    np.testing.assert_array_equal(sum_rows(m, rows), m[rows].sum(axis=0).A1)


def test_rows_dot_and_positions() -> None:
    m = random_csr(7)
    rows = np.array([5, 0, 5, 59, 12])  # repeated and unsorted rows are fine
    vector = np.arange(m.shape[1], dtype=np.float32) % 7
    np.testing.assert_allclose(rows_dot(m, rows, vector), m[rows] @ vector, rtol=1e-6)
    pos = row_positions(m.indptr, rows)
    np.testing.assert_array_equal(m.indices[pos], m[rows].indices)


def test_entries_equal_fancy_indexing() -> None:
    m = random_csr(3, density=0.1)
    rows = np.array([4, 0, 4, 59])
    columns = np.array([7, 499, 7, 0, 250, 13])  # repeated and unsorted columns too
    expected = m[rows][:, columns].toarray()
    np.testing.assert_array_equal(entries(m, rows, columns), expected)
    assert entries(m, rows, np.empty(0, dtype=np.int64)).shape == (4, 0)
    assert entries(m, np.empty(0, dtype=np.int64), columns).shape == (0, 6)


def test_empty_rows_and_no_rows() -> None:
    m = sp.csr_matrix((4, 10), dtype=np.float32)
    cols, vals = sparse_sum_rows(m, np.array([1, 2]))
    assert cols.size == vals.size == 0
    assert not sum_rows(m, np.empty(0, dtype=np.int64)).any()
    assert rows_dot(m, np.empty(0, dtype=np.int64), np.ones(10)).shape == (0,)
