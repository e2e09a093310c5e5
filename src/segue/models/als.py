"""Implicit-feedback matrix factorisation: implicit's ``AlternatingLeastSquares`` (CPU, float32).

Fitting uses the ``user_items`` orientation (playlists x tracks) as the snapshot stores it.
A query playlist is never one of the fitted rows, so its vector is folded in: the exact
least-squares step ALS itself takes for one user with the item factors fixed,

    x = (YtY + reg * I + (alpha - 1) * Y_s^T Y_s)^-1 * alpha * sum_{s in seeds} y_s,

with ``Y_s`` the factors of the seed tracks and ``alpha`` the confidence of a held track (the
same solution as implicit's ``recalculate_user``, computed here from the saved item factors
alone so a loaded model needs no implicit object). Scores are ``x . y_j`` plus a tiny
popularity prior; a query without seeds gets the prior alone (popularity).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Self

import numpy as np

from segue.models.base import Recommender, as_seed_array, dropped
from segue.models.itemknn import check_interactions, check_state_tracks, popularity_prior
from segue.models.params import Constraints, Interval
from segue.models.topn import padded, top_n

#: What the early-stopping search derives from the item factors (saved with them).
_ORDERED = ("norm_order", "sorted_norms", "sorted_items")


class ALSRecommender(Recommender):
    """Alternating least squares on the binary playlist x track matrix.

    Parameters: ``factors`` latent dimensions; ``regularization`` L2 weight; ``iterations``
    ALS sweeps; ``alpha`` confidence of a held track; ``random_state`` seeds the initial
    factors; ``num_threads`` for implicit (0 = all cores); ``progress`` shows implicit's bar.

    Learned: ``item_factors_`` float32 (n_tracks, factors); ``gram_`` float64
    (factors, factors) = ``item_factors_.T @ item_factors_``; ``prior_`` float32 (n_tracks,).
    """

    name = "als"
    _parameter_constraints: ClassVar[Constraints] = {
        "factors": [Interval(int, 1, None)],
        "regularization": [Interval(float, 0, None)],
        "iterations": [Interval(int, 1, None)],
        "alpha": [Interval(float, 0, None, closed="neither")],
    }
    #: Catalogs from this many tracks on take their top items by the early-stopping scan.
    early_stop_min_items: ClassVar[int] = 100_000

    def __init__(
        self,
        *,
        factors: int = 64,
        regularization: float = 0.1,
        iterations: int = 15,
        alpha: float = 20.0,
        random_state: int = 0,
        num_threads: int = 0,
        progress: bool = False,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.iterations = iterations
        self.alpha = alpha
        self.random_state = random_state
        self.num_threads = num_threads
        self.progress = progress

    def fit(self, snapshot: Any) -> Self:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        matrix = check_interactions(snapshot, self.name)
        # implicit parallelises over users itself; a multi-threaded BLAS underneath it
        # oversubscribes the cores (implicit warns about exactly this), so BLAS gets one
        # thread while the model is built and fitted.
        with threadpool_limits(limits=1, user_api="blas"):
            model = AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=self.alpha,
                iterations=self.iterations,
                dtype=np.float32,
                random_state=self.random_state,
                num_threads=self.num_threads,
            )
            if matrix.nnz:
                model.fit(matrix, show_progress=self.progress)
                items = np.ascontiguousarray(model.item_factors, dtype=np.float32)
            else:
                items = np.zeros((matrix.shape[1], self.factors), dtype=np.float32)
        self._set_items(items)
        self.prior_ = popularity_prior(matrix)
        self.fitted_ = True
        return self

    def _set_items(self, items: np.ndarray, saved: dict[str, np.ndarray] | None = None) -> None:
        """Use ``items`` as the item factors, with what the search derives from them: the
        ``saved`` copies of those (mapped, shared between processes) when given."""
        self.item_factors_ = items
        y64 = items.astype(np.float64)
        self.gram_ = y64.T @ y64
        if saved and all(k in saved for k in _ORDERED):
            self._norm_order = saved["norm_order"]
            self._sorted_norms = saved["sorted_norms"]
            self._sorted_items = saved["sorted_items"]
        elif items.shape[0] >= self.early_stop_min_items:
            # items by decreasing norm, for top_items' early stop, and a copy of the factors in
            # that order: the scan reads contiguous blocks (a gather through the order reads
            # rows scattered over memory, measured 10x slower per row)
            norms = np.sqrt(np.einsum("ij,ij->i", y64, y64))
            self._norm_order = np.argsort(-norms, kind="stable")
            self._sorted_norms = norms[self._norm_order]
            self._sorted_items = np.ascontiguousarray(items[self._norm_order])

    def top_items(self, user: np.ndarray, k: int) -> np.ndarray:
        """Indices (int64, unordered) of the ``k`` items with the highest ``item_factors_ @
        user``, ties at the cut going to the lowest indices (many items share their factors,
        e.g. those of one playlist only, so the cut often falls in a tie).

        Items are scored in blocks by decreasing norm, and the scan stops once no further item
        can enter: ``u . v <= |u| |v|`` (Cauchy-Schwarz), so when the next norm times ``|u|``
        is below the k-th best score so far, so is every later item's score. Popular items carry
        the large norms: on an MPD-shaped catalog of 2.3M tracks about 2.5% of them can pass
        the bound for a 10-track query, and the scan reads that much instead of every factor
        (the full product cost ~22 ms a query there). It keeps a copy of the factors in that
        order (the size of ``item_factors_`` again). Written by hand: implicit's exact search
        scores every item, its approximate ones are not exact.
        """
        n = self.item_factors_.shape[0]
        k = min(int(k), n)
        if k <= 0:
            return np.empty(0, dtype=np.int64)
        user = np.asarray(user, dtype=np.float32)
        if n < self.early_stop_min_items:
            # small catalogs: one product over every item reads less than the scan's blocks
            scores = self.item_factors_ @ user
            kth = np.partition(scores, n - k)[n - k]
            above = np.flatnonzero(scores > kth)
            tied = np.flatnonzero(scores == kth)[: k - above.size]
            return np.concatenate([above, tied]).astype(np.int64)
        # float32 dot products may exceed the exact value by a few ulps of |u||v|: a margin
        bound = float(np.linalg.norm(user.astype(np.float64))) * (1.0 + 1e-4)
        best_idx = np.empty(0, dtype=np.int64)
        best_val = np.empty(0, dtype=np.float32)
        start, size = 0, max(2 * k, 2_048)  # small blocks growing by half (fastest measured)
        while start < n:
            # best_val.min() is the k-th best so far (or below it, among ties)
            if best_idx.size >= k and self._sorted_norms[start] * bound < float(best_val.min()):
                break
            best_idx = np.concatenate([best_idx, self._norm_order[start : start + size]])
            best_val = np.concatenate([best_val, self._sorted_items[start : start + size] @ user])
            if best_idx.size > k:
                # keep the k best and everything tied with the k-th (the tie is settled last)
                kth = np.partition(best_val, best_val.size - k)[best_val.size - k]
                keep = best_val >= kth
                best_idx, best_val = best_idx[keep], best_val[keep]
            start += size
            size += size // 2
        if best_idx.size > k:
            best_idx = best_idx[np.lexsort((best_idx, -best_val))[:k]]
        return best_idx

    @property
    def n_tracks(self) -> int:
        self._check_fitted()
        return int(self.prior_.shape[0])

    # fold-in and scoring -------------------------------------------------------------------
    def user_factors(self, seed_lists: Sequence[Any]) -> np.ndarray:
        """float32 (len(seed_lists), factors): the folded-in vector of each query (0 if no seeds)."""
        self._check_fitted()
        k = self.item_factors_.shape[1]
        out = np.zeros((len(seed_lists), k), dtype=np.float32)
        base = self.gram_ + self.regularization * np.eye(k)
        for row, seeds in enumerate(seed_lists):
            idx = np.unique(as_seed_array(seeds, self.n_tracks))
            if idx.size == 0:
                continue
            ys = self.item_factors_[idx].astype(np.float64)
            a = base + (self.alpha - 1.0) * (ys.T @ ys)
            b = self.alpha * ys.sum(axis=0)
            out[row] = np.linalg.solve(a, b)
        return out

    def _dense(self, users: np.ndarray) -> np.ndarray:
        """float32 (len(users), n_tracks) of ``users @ item_factors_.T + prior_``."""
        block = users @ self.item_factors_.T
        block += self.prior_
        return block

    def _score(self, seeds: np.ndarray, *, title: str | None) -> np.ndarray:
        return self._dense(self.user_factors([seeds]))[0]

    def _select(
        self, seeds: np.ndarray, n: int, *, title: str | None, exclude: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        return top_n(self._score(seeds, title=title), n, dropped(seeds, exclude))

    def _select_batch(
        self, seed_lists: list[np.ndarray], n: int, titles: list[str | None]
    ) -> tuple[np.ndarray, np.ndarray]:
        users = self.user_factors(seed_lists)
        ids, vals = padded(len(seed_lists), n)
        for r, seed_arr in enumerate(seed_lists):
            # One row at a time, exactly as `scores` does: the same BLAS call gives the
            # same floats, so batch and single queries rank identically.
            got_i, got_v = top_n(self._dense(users[r : r + 1])[0], n, seed_arr)
            ids[r, : got_i.size] = got_i
            vals[r, : got_v.size] = got_v
        return ids, vals

    def explain(self, seeds: np.ndarray, track: int, *, title: str | None = None) -> str:
        self._check_fitted()
        seed_arr = np.unique(as_seed_array(seeds, self.n_tracks))
        if not 0 <= track < self.n_tracks:
            raise IndexError(f"track index {track} out of range [0, {self.n_tracks})")
        if seed_arr.size == 0:
            return "no seed tracks: ranked by how many playlists hold it"
        target = self.item_factors_[track]
        sims = self.item_factors_[seed_arr] @ target
        best = seed_arr[np.argsort(-sims, kind="stable")[:3]]
        listed = ", ".join(f"#{int(s)}" for s in best)
        return f"close to the seeds in the learned taste space, most of all to {listed}"

    # persistence ---------------------------------------------------------------------------
    def _state_arrays(self) -> dict[str, np.ndarray]:
        self._check_fitted()
        arrays = {"item_factors": self.item_factors_, "prior": self.prior_}
        if hasattr(self, "_sorted_items"):  # saved too, so processes share them
            arrays.update(
                norm_order=self._norm_order,
                sorted_norms=self._sorted_norms,
                sorted_items=self._sorted_items,
            )
        return arrays

    def _load_state(self, arrays: dict[str, np.ndarray], snapshot: Any) -> None:
        if "item_factors" not in arrays or "prior" not in arrays:
            raise ValueError("saved als model has no state: refit it with `segue fit --model als`")
        self.prior_ = np.asarray(arrays["prior"], dtype=np.float32)
        check_state_tracks(self.name, self.prior_.shape[0], snapshot)
        self._set_items(np.ascontiguousarray(arrays["item_factors"], dtype=np.float32), arrays)
        self.fitted_ = True
