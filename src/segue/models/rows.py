"""Per-query arithmetic on the rows of a CSR matrix, without building new matrices.

One query touches a few rows (its seeds, the playlists like it, the artists it names) of large
CSR matrices. scipy does such work by building a query matrix and multiplying, or by fancy
indexing; each builds and checks new sparse matrices whose fixed cost, tens of microseconds a
call, is most of the work for the few rows of one query, and a served request makes dozens of
them. These functions gather the rows' entries straight from ``indptr``/``indices``/``data``
with numpy. Sums accumulate in float64 and are returned as float32.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

#: Above this many gathered entries per result column, a dense accumulator is cheaper than
#: sorting the gathered columns.
_DENSE_RATIO = 1 / 8


def row_positions(indptr: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Positions in a CSR matrix's ``indices``/``data`` of the entries of ``rows``, in order."""
    rows = np.asarray(rows, dtype=np.int64)
    starts = indptr[rows].astype(np.int64)
    lengths = indptr[rows + 1].astype(np.int64) - starts
    total = int(lengths.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    offsets = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    return offsets + np.arange(total, dtype=np.int64)


def _weighted(
    matrix: sp.csr_matrix, rows: np.ndarray, weights: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """The rows' (columns, float64 values), values scaled by each row's weight if given."""
    pos = row_positions(matrix.indptr, rows)
    values = matrix.data[pos].astype(np.float64)
    if weights is not None:
        lengths = matrix.indptr[rows + 1] - matrix.indptr[rows]  # not a diff of all rows
        values *= np.repeat(np.asarray(weights, dtype=np.float64), lengths)
    return matrix.indices[pos], values


def sum_rows(
    matrix: sp.csr_matrix, rows: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """Dense float32 (n_columns,): ``sum_i weights[i] * matrix[rows[i]]`` (weights 1 if None)."""
    cols, values = _weighted(matrix, np.asarray(rows, dtype=np.int64), weights)
    return np.bincount(cols, weights=values, minlength=matrix.shape[1]).astype(np.float32)


def sparse_sum_rows(
    matrix: sp.csr_matrix, rows: np.ndarray, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``sum_i weights[i] * matrix[rows[i]]`` as a sparse row: ``(columns int32 ascending,
    values float32)``, explicit zeros left out."""
    rows = np.asarray(rows, dtype=np.int64)
    cols, values = _weighted(matrix, rows, weights)
    if cols.size == 0:
        return np.empty(0, dtype=np.int32), np.empty(0, dtype=np.float32)
    if cols.size >= matrix.shape[1] * _DENSE_RATIO:
        dense = np.bincount(cols, weights=values, minlength=matrix.shape[1])
        out_cols = np.flatnonzero(dense)
        out_vals = dense[out_cols]
    else:
        out_cols, inverse = np.unique(cols, return_inverse=True)
        out_vals = np.bincount(inverse, weights=values, minlength=out_cols.size)
        keep = out_vals != 0
        out_cols, out_vals = out_cols[keep], out_vals[keep]
    return out_cols.astype(np.int32), out_vals.astype(np.float32)


def rows_dot(matrix: sp.csr_matrix, rows: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """float32 (len(rows),): ``matrix[rows] @ vector`` for a dense ``vector``."""
    rows = np.asarray(rows, dtype=np.int64)
    lengths = np.diff(matrix.indptr)[rows]
    pos = row_positions(matrix.indptr, rows)
    products = matrix.data[pos].astype(np.float64) * vector[matrix.indices[pos]]
    owner = np.repeat(np.arange(rows.size), lengths)
    return np.bincount(owner, weights=products, minlength=rows.size).astype(np.float32)


def entries(matrix: sp.csr_matrix, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Dense float32 (len(rows), len(columns)): ``matrix[rows][:, columns]``, gathered from the
    rows' entries (scipy's column fancy indexing costs more than the rest of an explanation)."""
    rows = np.asarray(rows, dtype=np.int64)
    columns = np.asarray(columns, dtype=np.int64)
    if rows.size == 0 or columns.size == 0:
        return np.zeros((rows.size, columns.size), dtype=np.float32)
    unique, inverse = np.unique(columns, return_inverse=True)
    pos = row_positions(matrix.indptr, rows)
    owner = np.repeat(np.arange(rows.size), np.diff(matrix.indptr)[rows])
    cols = matrix.indices[pos]
    at = np.minimum(np.searchsorted(unique, cols), unique.size - 1)
    hit = unique[at] == cols
    found = np.zeros((rows.size, unique.size), dtype=np.float32)
    found[owner[hit], at[hit]] = matrix.data[pos[hit]]
    return found[:, inverse]
