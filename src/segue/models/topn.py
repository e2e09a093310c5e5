"""Top-n selection: the one place a model's scores become a ranked list.

Every function here answers the same question the same way: the first ``n`` tracks of a full
sort by (score descending, track index ascending), finite scores only. They differ only in how
the scores are given and how much work they skip:

* :func:`top_indices` / :func:`top_n`: a dense score vector over every track.
* :func:`merge_top_n`: scores given sparsely (some candidates) over a prior that every other
  track scores (a popularity prior), in O(candidates + n) rather than O(n_tracks).
* :func:`sparse_top_n`: :func:`merge_top_n` row by row of a CSR matrix of queries.

:func:`check_n` is the one check of a requested list length.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

#: Dense vectors from this size on try the sampled threshold before a full partition.
SAMPLE_MIN_SIZE = 65_536


def check_n(n: Any) -> int:
    """``n`` as an int; a negative, fractional, boolean or non-numeric ``n`` raises ValueError."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    return int(n)


def empty() -> tuple[np.ndarray, np.ndarray]:
    """The empty answer: ``(int64 (0,), float32 (0,))``."""
    return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)


def _sorted_candidates(scores: np.ndarray, candidates: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` best of ``candidates`` by (score descending, index ascending), finite only."""
    vals = scores[candidates]
    keep = np.isfinite(vals)
    candidates, vals = candidates[keep], vals[keep]
    order = np.lexsort((candidates, -vals))
    return candidates[order[:n]].astype(np.int64)


def top_indices(scores: np.ndarray, n: int) -> np.ndarray:
    """Indices (int64) of the ``n`` largest finite ``scores`` (float 1-D), best first, ties by
    index.

    On large arrays a threshold is estimated from a strided sample so that only about ``2 n``
    candidates are sorted; if the sample misleads (fewer than ``n`` candidates) a full
    ``argpartition`` is used, and every track tied with the cut is kept before sorting so the
    lowest indices win ties. Written by hand because numpy's ``argpartition`` over millions of
    scores costs more than the scoring itself.
    """
    size = scores.shape[0]
    if n <= 0 or size == 0:
        return np.empty(0, dtype=np.int64)
    if size > SAMPLE_MIN_SIZE and n * 16 < size:
        step = max(1, size // 16_384)
        sample = scores[::step]
        rank = min(sample.size, int(2 * n / step) + 16)
        threshold = np.partition(sample, sample.size - rank)[sample.size - rank]
        if np.isfinite(threshold):
            candidates = np.flatnonzero(scores >= threshold)
            if n <= candidates.size <= max(64 * n, size // 8):
                return _sorted_candidates(scores, candidates, n)
    if n < size:
        candidates = np.argpartition(-scores, n - 1)[:n]
        cut = scores[candidates].min()
        # argpartition splits ties at the boundary arbitrarily: take every tie, then sort
        candidates = np.flatnonzero(scores >= cut) if np.isfinite(cut) else candidates
    else:
        candidates = np.arange(size)
    return _sorted_candidates(scores, candidates, n)


def top_n(
    scores: np.ndarray, n: int, exclude: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(indices int64 (k,), scores float32 (k,))`` of the ``n`` best finite ``scores``,
    ``k <= n``, ties by index; ``exclude``d indices never come back.

    ``scores`` (float, one per track) is modified in place at ``exclude`` (set to -inf).
    """
    if exclude is not None and len(exclude):
        scores[np.asarray(exclude, dtype=np.int64)] = -np.inf
    picked = top_indices(scores, n)
    return picked, scores[picked].astype(np.float32)


def prior_order(prior: np.ndarray) -> np.ndarray:
    """int64 track indices sorted by prior descending, ties by index (as :func:`top_n`)."""
    return np.lexsort((np.arange(prior.shape[0]), -prior)).astype(np.int64)


def merge_top_n(
    cand_idx: np.ndarray,
    cand_val: np.ndarray,
    prior: np.ndarray,
    order: np.ndarray,
    n: int,
    exclude: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Top ``n`` of a score vector given sparsely: ``cand_val`` at ``cand_idx``, ``prior`` elsewhere.

    Gives exactly what :func:`top_n` gives on the dense vector (ties by index), in
    O(len(cand) + n) instead of O(n_tracks). ``order`` is :func:`prior_order` of ``prior``;
    ``exclude`` int64 indices never returned. Returns ``(int64 (k,), float32 (k,))``.
    """
    n = min(n, prior.shape[0])
    if n <= 0:
        return empty()
    taken = np.concatenate([cand_idx, exclude]) if exclude.size else cand_idx
    want = n + taken.size
    head = order[:want]
    tail = head[~np.isin(head, taken)][:n]
    if exclude.size and cand_idx.size:
        keep = ~np.isin(cand_idx, exclude)
        cand_idx, cand_val = cand_idx[keep], cand_val[keep]
    idx = np.concatenate([cand_idx.astype(np.int64), tail])
    val = np.concatenate([cand_val.astype(np.float32), prior[tail]])
    pick = np.lexsort((idx, -val))[:n]
    return idx[pick], val[pick]


def sparse_top_n(
    result: sp.csr_matrix,
    prior: np.ndarray,
    order: np.ndarray,
    n: int,
    excludes: Sequence[np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise :func:`merge_top_n` of ``result`` (float32 CSR, queries x tracks) + ``prior``.

    Returns ``(int64 (rows, n) padded with -1, float32 (rows, n) padded with -inf)``.
    """
    rows = result.shape[0]
    ids, vals = padded(rows, n)
    for r in range(rows):
        lo, hi = result.indptr[r], result.indptr[r + 1]
        cols = result.indices[lo:hi]
        got_i, got_v = merge_top_n(
            cols, result.data[lo:hi].astype(np.float32) + prior[cols], prior, order, n, excludes[r]
        )
        ids[r, : got_i.size] = got_i
        vals[r, : got_v.size] = got_v
    return ids, vals


def padded(rows: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The empty batch answer: ``int64 (rows, n)`` of -1 and ``float32 (rows, n)`` of -inf."""
    return (
        np.full((rows, n), -1, dtype=np.int64),
        np.full((rows, n), -np.inf, dtype=np.float32),
    )


__all__ = [
    "check_n",
    "empty",
    "merge_top_n",
    "padded",
    "prior_order",
    "sparse_top_n",
    "top_indices",
    "top_n",
]
