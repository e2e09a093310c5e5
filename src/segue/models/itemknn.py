"""Item-item nearest neighbours over playlist co-occurrence.

The neighbour sets come from implicit's :class:`~implicit.nearest_neighbours.CosineRecommender`
(its multi-threaded ``all_pairs_knn`` keeps the ``neighbors`` most cosine-similar tracks of each
track without ever holding the full co-occurrence matrix). Each kept pair is then re-weighted:
with ``n_i`` the number of playlists holding track ``i`` the co-occurrence count is recovered
exactly as ``co_ij = cos_ij * sqrt(n_i * n_j)`` and scored as

    sim_ij = (co_ij / (n_i ** alpha * n_j ** (1 - alpha) + shrink)) ** power

``alpha`` = 0.5 with ``shrink`` = 0 is plain cosine; ``shrink`` damps pairs seen in few
playlists; ``alpha`` > 0.5 favours popular continuations; ``power`` > 1 sharpens towards the
closest neighbours. implicit offers no shrinkage or asymmetry, hence the re-weighting here.

A playlist's score of track ``j`` is ``sum_{s in seeds} sim_sj`` plus a tiny popularity prior
that orders tracks with equal (often zero) scores by how many playlists hold them.

This module also holds what the other collaborative models share: a seed matrix builder, the
popularity prior, and :class:`PriorRankedRecommender`, which ranks with
:func:`segue.models.topn.merge_top_n` (the prior as the score of every track without a
collaborative score), so the sparse batch path and the dense single path agree.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, Self

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from segue.models.base import Recommender, as_seed_array, dropped
from segue.models.params import Constraints, Interval
from segue.models.topn import merge_top_n, prior_order, saved_order, sparse_top_n

#: Weight of the popularity prior: small enough to only break ties between equal scores.
PRIOR_WEIGHT = 1e-6

# ---------------------------------------------------------------------------------------------
# shared helpers
# ---------------------------------------------------------------------------------------------


def binary_csr(matrix: Any) -> sp.csr_matrix:
    """``matrix`` as a float32 CSR with every stored entry 1.0 (duplicates summed first).

    A read-only matrix that is one already (a loaded snapshot's, mapped from its files) is
    returned as it is: processes that load the same snapshot then share its pages, and
    nothing can change it in place. Any other is copied.
    """
    if (
        isinstance(matrix, sp.csr_matrix)
        and matrix.dtype == np.float32
        and not matrix.data.flags.writeable
        and matrix.has_canonical_format
        and bool((matrix.data == 1.0).all())
    ):
        return matrix
    out = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    out.sum_duplicates()
    out.eliminate_zeros()
    out.data[:] = 1.0
    return out


def seed_matrix(seed_lists: Sequence[Any], n_tracks: int) -> sp.csr_matrix:
    """Binary float32 CSR (len(seed_lists), n_tracks): row ``r`` holds the seeds of query ``r``.

    Each list is validated with :func:`segue.models.base.as_seed_array`.
    """
    arrays = [as_seed_array(s, n_tracks) for s in seed_lists]
    lengths = np.fromiter((a.size for a in arrays), dtype=np.int64, count=len(arrays))
    indptr = np.zeros(len(arrays) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    indices = np.concatenate(arrays) if arrays else np.empty(0, dtype=np.int64)
    data = np.ones(indices.size, dtype=np.float32)
    out = sp.csr_matrix((data, indices, indptr), shape=(len(arrays), n_tracks))
    return binary_csr(out)


def popularity_prior(interactions: sp.spmatrix, weight: float = PRIOR_WEIGHT) -> np.ndarray:
    """float32 (n_tracks,): ``weight * playlist_count / max(playlist_count)``."""
    counts = np.bincount(sp.csr_matrix(interactions).indices, minlength=interactions.shape[1])
    top = max(int(counts.max(initial=0)), 1)
    return (weight * counts / top).astype(np.float32)


def check_interactions(snapshot: Any, model: str) -> sp.csr_matrix:
    """The snapshot's playlist x track matrix as a binary float32 CSR (slow path: convert)."""
    matrix = getattr(snapshot, "interactions", None)
    if matrix is None or not sp.issparse(matrix):
        raise TypeError(
            f"{model}.fit expected a Snapshot with a sparse `interactions` matrix, "
            f"got {type(snapshot).__name__}"
        )
    if matrix.shape[1] == 0:
        raise ValueError(f"{model}.fit needs a snapshot with at least one track, got 0")
    return binary_csr(matrix)


def csr_arrays(prefix: str, matrix: sp.csr_matrix) -> dict[str, np.ndarray]:
    return {
        f"{prefix}_data": matrix.data,
        f"{prefix}_indices": matrix.indices,
        f"{prefix}_indptr": matrix.indptr,
        f"{prefix}_shape": np.asarray(matrix.shape, dtype=np.int64),
    }


def csr_from_arrays(prefix: str, arrays: dict[str, np.ndarray]) -> sp.csr_matrix:
    try:
        shape = tuple(int(x) for x in arrays[f"{prefix}_shape"])
        return sp.csr_matrix(
            (arrays[f"{prefix}_data"], arrays[f"{prefix}_indices"], arrays[f"{prefix}_indptr"]),
            shape=shape,
        )
    except KeyError as exc:
        raise ValueError(
            f"saved model state lacks the array {exc.args[0]!r}: refit the model"
        ) from None


class TrackNames:
    """Track and artist names of a snapshot, for explanations that name tracks.

    Keeps references to the snapshot's ``name`` and ``artist_name`` columns (no copy: at full
    scale a copy as Python strings would cost hundreds of MB) and reads only the rows asked
    for. Models never save names: ``load`` takes them from the snapshot it is given. Without
    those columns (or with a snapshot of another size) tracks are named by index.
    """

    def __init__(self, snapshot: Any, n_tracks: int) -> None:
        tracks = getattr(snapshot, "tracks", None)
        self._columns: dict[str, Any] = {}
        if tracks is not None and len(tracks) == n_tracks:
            for column in ("name", "artist_name"):
                if column in tracks.columns:
                    # the column's Arrow array when it has one: one ``take`` of the handful of
                    # rows asked for costs less than indexing element by element (~2 us each)
                    array = tracks[column].array
                    if hasattr(array, "__arrow_array__"):  # no copy for Arrow-backed columns
                        array = array.__arrow_array__()
                    self._columns[column] = array

    def _take(self, column: str, tracks: np.ndarray) -> list[str]:
        values = self._columns.get(column)
        if values is None:
            return [""] * tracks.size
        if isinstance(values, pa.ChunkedArray | pa.Array):
            got = values.take(pa.array(tracks, type=pa.int64())).to_pylist()
        else:
            got = [values[i] for i in tracks.tolist()]
        return [v if isinstance(v, str) else "" for v in got]

    def describe(self, tracks: Sequence[int] | np.ndarray) -> list[str]:
        """``"Song A" by Artist A`` per track (``track #12`` when the name is unknown)."""
        idx = np.asarray(tracks, dtype=np.int64).ravel()
        out: list[str] = []
        for track, name, artist in zip(
            idx.tolist(), self._take("name", idx), self._take("artist_name", idx), strict=True
        ):
            label = f"\u201c{name}\u201d" if name else f"track #{track}"
            out.append(f"{label} by {artist}" if artist else label)
        return out

    def artists(self, tracks: Sequence[int] | np.ndarray) -> list[str]:
        """The artist name of each track ("" when unknown)."""
        return self._take("artist_name", np.asarray(tracks, dtype=np.int64).ravel())


def join_words(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def check_state_tracks(model: str, n_saved: int, snapshot: Any) -> None:
    n_now = getattr(snapshot, "n_tracks", n_saved)
    if n_now != n_saved:
        raise ValueError(
            f"saved {model} model covers {n_saved} tracks but the snapshot has {n_now}: "
            f"refit it with `segue fit --model {model}`"
        )


# ---------------------------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------------------------


class PriorRankedRecommender(Recommender):
    """Models whose query scores are one sparse row over the tracks plus a popularity prior.

    Subclasses set ``prior_`` (float32 (n_tracks,)) and ``order_`` (tracks by prior, best
    first) and implement :meth:`_raw`; ranking then touches only the scored tracks and the
    prior's order, never a dense sort over every track.
    """

    prior_: np.ndarray
    order_: np.ndarray

    def _raw(self, seed_lists: Sequence[np.ndarray], titles: Sequence[str | None]) -> sp.csr_matrix:
        """float32 CSR (len(seed_lists), n_tracks) of scores without the prior."""
        raise NotImplementedError

    def _score(self, seeds: np.ndarray, *, title: str | None) -> np.ndarray:
        raw = self._raw([seeds], [title])
        out = self.prior_.copy()
        out[raw.indices] = raw.data + self.prior_[raw.indices]
        return out

    def _select(
        self, seeds: np.ndarray, n: int, *, title: str | None, exclude: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        raw = self._raw([seeds], [title])
        cols = raw.indices
        drop = np.unique(dropped(seeds, exclude))
        return merge_top_n(cols, raw.data + self.prior_[cols], self.prior_, self.order_, n, drop)

    def _select_batch(
        self, seed_lists: list[np.ndarray], n: int, titles: list[str | None]
    ) -> tuple[np.ndarray, np.ndarray]:
        seeds = [np.unique(s) for s in seed_lists]
        raw = self._raw(seeds, titles)
        return sparse_top_n(raw, self.prior_, self.order_, n, seeds)


class NeighbourRecommender(PriorRankedRecommender):
    """Item models that score a query as the sum of its seeds' rows of one sparse track x track
    matrix (``similarity_``), plus the popularity prior: item-item kNN and RP3beta. Scoring,
    explanations and persistence are written here; a subclass learns the matrix in ``fit``
    (then calls :meth:`_learned`) and words its explanations (:attr:`_unreached`,
    :meth:`_reached`)."""

    similarity_: sp.csr_matrix
    names_: TrackNames
    #: The explanation of a track no seed reaches through the matrix.
    _unreached: ClassVar[str] = "no seed track shares playlists with it: ranked by popularity"

    def _learned(
        self, snapshot: Any, similarity: sp.csr_matrix, prior: np.ndarray, order: np.ndarray
    ) -> None:
        self.similarity_ = similarity
        self.prior_ = prior
        self.order_ = order
        self.names_ = TrackNames(snapshot, int(prior.shape[0]))
        self.fitted_ = True

    @abstractmethod
    def _reached(self, named: str, sharing: int, n_seeds: int) -> str:
        """The explanation of a track ``sharing`` of the ``n_seeds`` seeds reach, the
        strongest of them ``named``."""

    @property
    def n_tracks(self) -> int:
        self._check_fitted()
        return int(self.prior_.shape[0])

    # scoring -------------------------------------------------------------------------------
    def raw_scores(self, seed_lists: Sequence[Any]) -> sp.csr_matrix:
        """float32 CSR (len(seed_lists), n_tracks) of the seeds' summed rows, no prior."""
        self._check_fitted()
        seeds = seed_matrix(seed_lists, self.n_tracks)
        return sp.csr_matrix(seeds @ self.similarity_, dtype=np.float32)

    def _raw(self, seed_lists: Sequence[np.ndarray], titles: Sequence[str | None]) -> sp.csr_matrix:
        return self.raw_scores(seed_lists)

    def explain(self, seeds: np.ndarray, track: int, *, title: str | None = None) -> str:
        return self.explain_many(seeds, np.asarray([track]), title=title)[0]

    def explain_many(
        self, seeds: np.ndarray, tracks: np.ndarray, *, title: str | None = None
    ) -> list[str]:
        """Which seed tracks reach each of ``tracks``, by name, strongest first."""
        self._check_fitted()
        seed_arr = np.unique(as_seed_array(seeds, self.n_tracks))
        wanted = np.asarray(tracks, dtype=np.int64).ravel()
        bad = wanted[(wanted < 0) | (wanted >= self.n_tracks)]
        if bad.size:
            raise IndexError(f"track index {int(bad[0])} out of range [0, {self.n_tracks})")
        if seed_arr.size == 0:
            return ["no seed tracks: ranked by how many playlists hold it"] * wanted.size
        # rows of the seeds, then the wanted columns: O(seed neighbours), never a column scan
        contrib = np.asarray(self.similarity_[seed_arr][:, wanted].toarray(), dtype=np.float32)
        out: list[str] = []
        for j in range(wanted.size):
            col = contrib[:, j]
            sharing = int((col > 0).sum())
            if sharing == 0:
                out.append(self._unreached)
                continue
            best = np.lexsort((seed_arr, -col))[: min(sharing, 2)]
            named = join_words(self.names_.describe(seed_arr[best]))
            out.append(self._reached(named, sharing, int(seed_arr.size)))
        return out

    # persistence ---------------------------------------------------------------------------
    def _state_arrays(self) -> dict[str, np.ndarray]:
        self._check_fitted()
        return {
            **csr_arrays("similarity", self.similarity_),
            "prior": self.prior_,
            "order": self.order_,
        }

    def _load_state(self, arrays: dict[str, np.ndarray], snapshot: Any) -> None:
        if "prior" not in arrays:
            raise ValueError(
                f"saved {self.name} model has no state: refit it with "
                f"`segue fit --model {self.name}`"
            )
        prior = np.asarray(arrays["prior"], dtype=np.float32)
        check_state_tracks(self.name, prior.shape[0], snapshot)
        self._learned(
            snapshot,
            csr_from_arrays("similarity", arrays),
            prior,
            saved_order(arrays, "order", prior),
        )


class ItemKNNRecommender(NeighbourRecommender):
    """Item-item kNN on playlist co-occurrence (see the module docstring for the formula).

    Parameters: ``neighbors`` tracks kept per track; ``shrink`` added to the normaliser;
    ``alpha`` asymmetry of the normaliser (0.5 = cosine); ``power`` exponent of each
    similarity; ``min_count`` playlists a track needs to take part in the neighbour search; ``num_threads`` for implicit (0 = all cores); ``progress`` shows implicit's bar.

    Learned: ``similarity_`` float32 CSR (n_tracks, n_tracks), row = seed track, column =
    recommended track; ``prior_`` float32 (n_tracks,) popularity tie-break; ``names_`` the
    snapshot's track names (:class:`TrackNames`) that explanations quote.
    """

    name = "itemknn"
    _parameter_constraints: ClassVar[Constraints] = {
        "neighbors": [Interval(int, 1, None)],
        "shrink": [Interval(float, 0, None)],
        "alpha": [Interval(float, 0, 1)],
        "power": [Interval(float, 0, None, closed="neither")],
        "min_count": [Interval(int, 1, None)],
    }

    def __init__(
        self,
        *,
        neighbors: int = 200,
        shrink: float = 10.0,
        alpha: float = 0.5,
        power: float = 1.0,
        min_count: int = 1,
        num_threads: int = 0,
        progress: bool = False,
    ) -> None:
        self.neighbors = neighbors
        self.min_count = min_count
        self.shrink = shrink
        self.alpha = alpha
        self.power = power
        self.num_threads = num_threads
        self.progress = progress

    def fit(self, snapshot: Any) -> Self:
        matrix = check_interactions(snapshot, self.name)
        prior = popularity_prior(matrix)
        self._learned(snapshot, self._similarity(matrix), prior, prior_order(prior))
        return self

    def _similarity(self, matrix: sp.csr_matrix) -> sp.csr_matrix:
        from implicit.nearest_neighbours import ItemItemRecommender

        n_tracks = matrix.shape[1]
        counts = np.bincount(matrix.indices, minlength=n_tracks).astype(np.float64)
        # CosineRecommender.fit would hand implicit a COO matrix (and warn while converting
        # it); normalising the columns here keeps the input CSR, the format implicit wants.
        # Tracks in fewer than `min_count` playlists are left out of the neighbour search
        # (their column is zeroed): a track seen once carries little co-occurrence evidence.
        scale = np.where(counts >= self.min_count, 1.0 / np.sqrt(np.maximum(counts, 1.0)), 0.0)
        weighted = sp.csr_matrix(matrix @ sp.diags(scale, format="csr"), dtype=np.float64)
        weighted.eliminate_zeros()
        # K + 1: implicit keeps each track as its own nearest neighbour, dropped below.
        knn = ItemItemRecommender(K=self.neighbors + 1, num_threads=self.num_threads)
        if not matrix.nnz:
            return sp.csr_matrix((n_tracks, n_tracks), dtype=np.float32)
        knn.fit(weighted, show_progress=self.progress)
        cos = knn.similarity  # CSR float64, rows in any column order
        del knn, weighted
        # Re-weight in blocks of rows so the float64 temporaries stay small at full scale.
        out_data = np.empty(cos.nnz, dtype=np.float32)
        keep = np.empty(cos.nnz, dtype=bool)
        lengths = np.zeros(n_tracks, dtype=np.int64)
        block = max(1, n_tracks * 4_000_000 // max(cos.nnz, 1))
        for lo in range(0, n_tracks, block):
            hi = min(n_tracks, lo + block)
            start, stop = cos.indptr[lo], cos.indptr[hi]
            rows = np.repeat(np.arange(lo, hi), np.diff(cos.indptr[lo : hi + 1]))
            cols = cos.indices[start:stop]
            n_i, n_j = counts[rows], counts[cols]
            co = np.rint(cos.data[start:stop] * np.sqrt(n_i * n_j))
            sim = co / (n_i**self.alpha * n_j ** (1.0 - self.alpha) + self.shrink)
            if self.power != 1.0:
                sim **= self.power
            out_data[start:stop] = sim
            kept = (rows != cols) & (sim > 0)
            keep[start:stop] = kept
            lengths[lo:hi] = np.bincount(rows[kept] - lo, minlength=hi - lo)
        indptr = np.zeros(n_tracks + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        # Column order inside a row does not matter to the products that use this matrix.
        return sp.csr_matrix(
            (out_data[keep], cos.indices[keep], indptr), shape=(n_tracks, n_tracks)
        )

    def _reached(self, named: str, sharing: int, n_seeds: int) -> str:
        return (
            f"often in playlists with {named} from your seeds "
            f"({sharing} of the {n_seeds} seed tracks share playlists with it)"
        )
