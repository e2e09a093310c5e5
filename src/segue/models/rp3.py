"""RP3beta: item-item similarity from a three-step random walk, popularity discounted.

The graph is bipartite, playlists on one side and tracks on the other (Paudel et al., "Updatable,
accurate, diverse, and scalable recommendations for interactive applications", 2016/2017; among
the strongest baselines in Dacrema et al., "Are we really making much progress?", 2019). A walk
from track ``i`` steps to one of its playlists, then to one of that playlist's tracks ``j``. With
``P_ip`` the track-to-playlist step (rows of the binary playlist x track matrix's transpose,
L1-normalised: ``1 / n_i``) and ``P_pj`` the playlist-to-track step (``1 / len_p``), each step
raised elementwise to ``alpha`` and the arrival divided by the popularity of the track reached:

    W_ij = sum_p (P_ip ** alpha) * (P_pj ** alpha) / n_j ** beta
         = n_i ** -alpha * (sum_{p holds i and j} len_p ** -alpha) * n_j ** -beta

with ``n_i`` the playlists holding track ``i`` and ``len_p`` the tracks of playlist ``p``. Only
the ``neighbors`` largest ``W_ij`` of each row are kept (``j != i``). ``alpha`` = 1 is the plain
walk probability (P3alpha's alpha); ``beta`` = 0 is P3alpha, and ``beta`` > 0 lifts tracks
in fewer playlists. A playlist's score of ``j`` is ``sum_{s in seeds} W_sj`` plus the tiny
popularity prior of :mod:`segue.models.itemknn`, scaled under the smallest kept ``W``.

Neither implicit nor any library segue uses offers RP3beta, but implicit's multi-threaded
``all_pairs_knn`` (the neighbour search of the itemknn model, which never holds the full
product) finds its neighbours exactly: with ``X = diag(len_p ** -alpha/2) A diag(n_j ** -beta)``
(``A`` the binary playlist x track matrix), ``(X^T X)_ij = n_i ** -beta * C_ij * n_j ** -beta``
where ``C_ij = sum_p len_p ** -alpha``, and ``W_ij = (X^T X)_ij * n_i ** (beta - alpha)``: in
each row the two differ by one factor, so the same ``j`` are the largest. The row factor is
applied afterwards, in blocks of rows, so memory stays bounded at full MPD scale.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from segue.models.itemknn import (
    PRIOR_WEIGHT,
    NeighbourRecommender,
    check_interactions,
    popularity_prior,
)
from segue.models.params import Constraints, Interval
from segue.models.topn import prior_order

#: Entries of the neighbour lists re-weighted per block of rows (bounds the float64 temporaries).
BLOCK_ENTRIES = 4_000_000


def rp3beta_similarity(
    matrix: sp.csr_matrix,
    *,
    alpha: float,
    beta: float,
    neighbors: int,
    num_threads: int = 0,
    progress: bool = False,
) -> sp.csr_matrix:
    """float32 CSR (n_tracks, n_tracks): the ``neighbors`` largest ``W_ij`` (``j != i``) of
    each row ``i`` of the RP3beta similarity (module docstring) of the binary playlist x track
    CSR ``matrix``, scaled so the largest entry is 1; rows of tracks in no playlist are empty.
    Within a row, columns are sorted by decreasing weight (ties by column index)."""
    from implicit.nearest_neighbours import ItemItemRecommender

    n_tracks = int(matrix.shape[1])
    if not matrix.nnz:
        return sp.csr_matrix((n_tracks, n_tracks), dtype=np.float32)
    track_count = np.bincount(matrix.indices, minlength=n_tracks).astype(np.float64)
    playlist_len = np.diff(matrix.indptr).astype(np.float64)
    held = track_count > 0
    row_scale = np.ones_like(playlist_len)
    np.power(playlist_len, -alpha / 2.0, out=row_scale, where=playlist_len > 0)
    col_scale = np.zeros(n_tracks)
    np.power(track_count, -beta, out=col_scale, where=held)
    weighted = sp.csr_matrix(
        sp.diags(row_scale, format="csr") @ matrix @ sp.diags(col_scale, format="csr"),
        dtype=np.float64,
    )
    # K + 1: implicit may keep a track as its own neighbour, dropped below.
    knn = ItemItemRecommender(K=neighbors + 1, num_threads=num_threads)
    knn.fit(weighted, show_progress=progress)
    product = knn.similarity  # CSR float64 (X^T X), rows in any column order
    del knn, weighted
    # n_i ** (beta - alpha) turns row i of X^T X into row i of W.
    to_walk = np.zeros(n_tracks)
    np.power(track_count, beta - alpha, out=to_walk, where=held)
    # float32 at once: at full scale the neighbour lists hold hundreds of millions of entries
    out_data = np.empty(product.nnz, dtype=np.float32)
    out_cols = np.empty(product.nnz, dtype=np.int32)
    lengths = np.zeros(n_tracks, dtype=np.int64)
    filled = 0
    block = max(1, n_tracks * BLOCK_ENTRIES // max(product.nnz, 1))
    for lo in range(0, n_tracks, block):
        hi = min(n_tracks, lo + block)
        start, stop = product.indptr[lo], product.indptr[hi]
        rows = np.repeat(np.arange(lo, hi), np.diff(product.indptr[lo : hi + 1]))
        cols = product.indices[start:stop]
        weight = product.data[start:stop] * to_walk[rows]
        keep = (rows != cols) & (weight > 0)
        rows, cols, weight = rows[keep], cols[keep], weight[keep]
        # each row by decreasing weight, ties by column; then at most `neighbors` per row
        order = np.lexsort((cols, -weight, rows))
        rows, cols, weight = rows[order], cols[order], weight[order]
        first = np.searchsorted(rows, np.arange(lo, hi))
        rank = np.arange(rows.size) - first[rows - lo]
        keep = rank < neighbors
        rows, cols, weight = rows[keep], cols[keep], weight[keep]
        out_data[filled : filled + rows.size] = weight
        out_cols[filled : filled + rows.size] = cols
        filled += rows.size
        lengths[lo:hi] = np.bincount(rows - lo, minlength=hi - lo)
    indptr = np.zeros(n_tracks + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    del product
    data = out_data[:filled]
    top = float(data.max(initial=0.0))
    if top > 0:
        data /= np.float32(top)  # rank-neutral: the largest weight is 1
    return sp.csr_matrix((data, out_cols[:filled], indptr), shape=(n_tracks, n_tracks))


class RP3betaRecommender(NeighbourRecommender):
    """RP3beta random-walk item model (see the module docstring for the formula).

    Parameters: ``alpha`` exponent of each step's transition probability (1 = the plain walk);
    ``beta`` exponent of the popularity that divides the arrival (0 = P3alpha); ``neighbors``
    tracks kept per track; ``num_threads`` for implicit's neighbour search (0 = all cores);
    ``progress`` shows implicit's bar.

    Learned: ``similarity_`` float32 CSR (n_tracks, n_tracks), row = seed track, column =
    recommended track, largest entry 1; ``prior_`` float32 (n_tracks,) popularity tie-break,
    below the smallest entry of ``similarity_``; ``names_`` the snapshot's track names
    (:class:`~segue.models.itemknn.TrackNames`) that explanations quote.
    """

    name = "rp3beta"
    _unreached = "no seed track leads to it through shared playlists: ranked by popularity"
    _parameter_constraints: ClassVar[Constraints] = {
        "alpha": [Interval(float, 0, None, closed="neither")],
        "beta": [Interval(float, 0, None)],
        "neighbors": [Interval(int, 1, None)],
    }

    def __init__(
        self,
        *,
        alpha: float = 0.55,
        beta: float = 0.1,
        neighbors: int = 200,
        num_threads: int = 0,
        progress: bool = False,
    ) -> None:
        self.alpha = alpha
        self.beta = beta
        self.neighbors = neighbors
        self.num_threads = num_threads
        self.progress = progress

    def fit(self, snapshot: Any) -> Self:
        matrix = check_interactions(snapshot, self.name)
        similarity = rp3beta_similarity(
            matrix,
            alpha=float(self.alpha),
            beta=float(self.beta),
            neighbors=int(self.neighbors),
            num_threads=self.num_threads,
            progress=self.progress,
        )
        # The prior only orders tracks no seed reaches (and exact ties): every track a seed
        # reaches scores at least the smallest kept weight, which the prior stays under.
        smallest = float(similarity.data.min(initial=1.0))
        prior = popularity_prior(matrix, weight=min(PRIOR_WEIGHT, smallest / 2))
        self._learned(snapshot, similarity, prior, prior_order(prior))
        return self

    def _reached(self, named: str, sharing: int, n_seeds: int) -> str:
        lifted = " (less common tracks lifted)" if self.beta > 0 else ""
        return (
            f"reached through playlists with {named} from your seeds "
            f"({sharing} of the {n_seeds} seed tracks lead to it){lifted}"
        )
