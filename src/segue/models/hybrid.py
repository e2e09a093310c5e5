"""The default model: candidates from several generators, re-ranked by a learned ranker.

Two stages, as the RecSys Challenge 2018 winners built theirs:

1. **Candidates.** For each query the union of the top ``candidates`` tracks of item-kNN
   (:mod:`segue.models.itemknn`), ALS (:mod:`segue.models.als`), the title model
   (:mod:`segue.models.title`), a playlist-kNN (the tracks of the training playlists whose
   track sets are most like the seeds) and a same-artist generator (content: it also reaches
   tracks that share no playlist with anything), plus the most popular tracks. A query without
   seeds but with a title borrows the title model's best tracks as *pseudo-seeds*.
2. **Ranking.** A LightGBM ranker (``LGBMRanker``; objective ``rank_xendcg`` by default,
   ``lambdarank`` on request) scores each candidate from features: every generator's score,
   its rank among the candidates and its ratio to the best, track popularity, number of seeds,
   title given or not, share of seeds by the same artist/album. Queries without seeds get a
   ranker of their own (their features mean other things).

The rankers are trained inside :meth:`HybridRecommender.fit` without outside labels: up to
``ranker_playlists`` training playlists are cut like challenge playlists (0-100 random seeds,
title given or not), their other tracks are hidden from the generators, and a candidate is a
hit when it is one of the hidden tracks. On small catalogs this runs in ``folds`` (3) rounds,
each hiding a third of the cut playlists, and the generators are then refitted on all data; on
large ones (more than ``refit_max_rows`` rows) one round hides the tails of a few thousand
playlists for good, which saves a second fit at no visible cost. With too few playlists to
learn from (fewer than ``min_ranker_playlists``) a fixed blend of the normalised generator
scores replaces the ranker.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from segue.models.als import ALSRecommender
from segue.models.base import Recommender, as_seed_array
from segue.models.itemknn import (
    ItemKNNRecommender,
    check_interactions,
    check_n,
    check_state_tracks,
    csr_arrays,
    csr_from_arrays,
    merge_top_n,
    popularity_prior,
    prior_order,
    seed_matrix,
)
from segue.models.title import TitleRecommender

FEATURES = (
    "knn",
    "knn_rank",
    "knn_ratio",
    "knn_mean",
    "uknn",
    "uknn_rank",
    "uknn_ratio",
    "als",
    "als_rank",
    "als_gap",
    "title",
    "title_rank",
    "title_ratio",
    "artist_share",
    "album_share",
    "artist_rank",
    "popularity",
    "n_seeds",
    "has_title",
    "pseudo_seeds",
    "title_keys",
)
#: Fixed blend used when there are too few playlists to train the ranker.
BLEND = {
    "knn_ratio": 1.0,
    "uknn_ratio": 0.5,
    "als_rank": -0.002,
    "title_ratio": 0.5,
    "artist_share": 0.3,
}
#: Generator settings of the hybrid unless ``knn``/``als`` say otherwise: lighter than the
#: standalone defaults (half the neighbours, no search for one-playlist tracks, 10 sweeps),
#: which cost the ranked result nothing measurable on validation and keep the full MPD
#: within 20 minutes and 16 GB (docs/results.md).
KNN_DEFAULTS: dict[str, Any] = {"neighbors": 100, "min_count": 2}
ALS_DEFAULTS: dict[str, Any] = {"iterations": 10}
#: Seed counts of the challenge categories; training queries are cut the same ways.
SEED_COUNTS = (0, 1, 5, 10, 25, 100)


@dataclass
class _Batch:
    """Candidates and features of a batch of queries."""

    candidates: list[np.ndarray]  # int64 track indices per query
    features: list[np.ndarray]  # float32 (len(candidates[r]), len(FEATURES)) per query
    rows: list[int] = field(default_factory=list)  # training: the playlist row of each query


def _rank_desc(values: np.ndarray) -> np.ndarray:
    """1-based rank of each value, highest first (ties by position)."""
    order = np.argsort(-values, kind="stable")
    ranks = np.empty(values.size, dtype=np.float32)
    ranks[order] = np.arange(1, values.size + 1, dtype=np.float32)
    return ranks


def _lookup(cols: np.ndarray, vals: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """``vals`` at ``wanted`` where ``cols`` (sorted) holds them, else 0."""
    out = np.zeros(wanted.size, dtype=np.float32)
    if cols.size:
        pos = np.minimum(np.searchsorted(cols, wanted), cols.size - 1)
        hit = cols[pos] == wanted
        out[hit] = vals[pos[hit]]
    return out


def _top_of_row(cols: np.ndarray, vals: np.ndarray, k: int) -> np.ndarray:
    if cols.size <= k:
        return cols[vals > 0]
    part = np.argpartition(-vals, k - 1)[:k]
    return cols[part][vals[part] > 0]


class HybridRecommender(Recommender):
    """Candidate generation + LightGBM lambdarank re-ranking (see the module docstring).

    Parameters: ``candidates`` taken from each generator; ``popular`` most popular tracks
    always added; ``pseudo_seeds`` title tracks used as seeds when a query has none;
    ``playlist_neighbors`` playlists that vote in the playlist-kNN; ``ranker_playlists``
    training playlists cut for the ranker (a sample at scale); ``folds`` rounds of cutting (0:
    3 on small catalogs, 1 on large); ``title_share`` of the cut playlists that keep only their
    title; ``negatives`` misses kept per training query; ``objective`` of LightGBM;
    ``min_ranker_playlists`` below which the fixed blend is used; ``refit_max_rows``: refit the
    generators on all data when the matrix has at most this many rows; ``n_estimators``,
    ``learning_rate``, ``num_leaves`` of the ranker; ``knn``, ``als``, ``title``: parameters of
    the generators (over :data:`KNN_DEFAULTS`, :data:`ALS_DEFAULTS`); ``random_state`` seeds
    everything; ``num_threads`` (0 = all cores).

    Learned: ``knn_``, ``als_``, ``title_`` fitted generators; ``ranker_`` a LightGBM booster
    or None (blend); ``title_ranker_`` the booster for queries without seeds (or None: then
    ``ranker_``); ``prior_`` float32 (n_tracks,); ``artist_codes_``/``album_codes_`` int64
    (n_tracks,) dense codes (-1 unknown); ``artist_tracks_`` float32 CSR (n_artists, n_tracks).
    """

    name = "hybrid"

    def __init__(
        self,
        *,
        candidates: int = 400,
        popular: int = 50,
        pseudo_seeds: int = 10,
        playlist_neighbors: int = 200,
        ranker_playlists: int = 2000,
        folds: int = 0,
        title_share: float = 1 / 6,
        negatives: int = 300,
        objective: str = "rank_xendcg",
        min_ranker_playlists: int = 100,
        refit_max_rows: int = 5_000_000,
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        knn: dict[str, Any] | None = None,
        als: dict[str, Any] | None = None,
        title: dict[str, Any] | None = None,
        random_state: int = 0,
        num_threads: int = 0,
    ) -> None:
        self.candidates = candidates
        self.popular = popular
        self.pseudo_seeds = pseudo_seeds
        self.playlist_neighbors = playlist_neighbors
        self.ranker_playlists = ranker_playlists
        self.negatives = negatives
        self.folds = folds
        self.title_share = title_share
        self.objective = objective
        self.min_ranker_playlists = min_ranker_playlists
        self.refit_max_rows = refit_max_rows
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.knn = knn
        self.als = als
        self.title = title
        self.random_state = random_state
        self.num_threads = num_threads

    # fitting -------------------------------------------------------------------------------
    def _validate(self) -> None:
        for name in (
            "candidates",
            "ranker_playlists",
            "n_estimators",
            "num_leaves",
            "playlist_neighbors",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in (
            "popular",
            "pseudo_seeds",
            "min_ranker_playlists",
            "refit_max_rows",
            "folds",
            "negatives",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        if not 0.0 <= self.title_share <= 1.0:
            raise ValueError(f"title_share must be in [0, 1], got {self.title_share!r}")
        if self.objective not in ("lambdarank", "rank_xendcg", "binary"):
            raise ValueError(
                f"objective must be 'lambdarank', 'rank_xendcg' or 'binary', got {self.objective!r}"
            )
        for name in ("knn", "als", "title"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, dict):
                raise TypeError(
                    f"{name} must be a dict of parameters or None, got {type(value).__name__}"
                )

    def _generators(self) -> tuple[ItemKNNRecommender, ALSRecommender, TitleRecommender]:
        threads = {"num_threads": self.num_threads}
        return (
            ItemKNNRecommender(**{**threads, **KNN_DEFAULTS, **(self.knn or {})}),
            ALSRecommender(
                **{"random_state": self.random_state, **threads, **ALS_DEFAULTS, **(self.als or {})}
            ),
            TitleRecommender(**(self.title or {})),
        )

    def _fit_generators(self, snapshot: Any) -> None:
        self._set_playlists(check_interactions(snapshot, self.name))
        self.knn_, self.als_, self.title_ = self._generators()
        self.knn_.fit(snapshot)
        self.als_.fit(snapshot)
        self.title_.fit(snapshot)

    def fit(self, snapshot: Any) -> Self:
        self._validate()
        matrix = check_interactions(snapshot, self.name)
        self._fit_content(snapshot, matrix)
        self.fitted_ = True  # the candidate machinery below checks this
        rng = np.random.default_rng(self.random_state)
        queries = self._training_queries(snapshot, matrix, rng)
        self.ranker_ = None
        self.title_ranker_ = None
        if queries is None:
            self._fit_generators(snapshot)
            return self
        seeds, titles, hidden = queries
        small = matrix.nnz <= self.refit_max_rows
        folds = self.folds or (3 if small else 1)
        fold_of = np.arange(len(seeds)) % folds
        batch = _Batch([], [])
        for fold in range(folds):
            members = np.flatnonzero(fold_of == fold)
            # Hide only this fold's held-out tracks: the generators keep the rest of the
            # data, as they will at serving time, and every query is scored by generators
            # that never saw its hidden tracks.
            keep_rows = np.zeros(matrix.shape[0], dtype=np.float32)
            keep_rows[self.train_rows_[members]] = 1.0
            hidden_fold = sp.csr_matrix(sp.diags(keep_rows) @ hidden)
            masked = copy.copy(snapshot)
            masked.interactions = matrix - hidden_fold
            masked.interactions.eliminate_zeros()
            self._fit_generators(masked)
            part = self._batch([seeds[i] for i in members], [titles[i] for i in members])
            batch.candidates.extend(part.candidates)
            batch.features.extend(part.features)
            batch.rows.extend(self.train_rows_[members].tolist())
        self.ranker_ = self._train_ranker(
            batch, hidden, rng, seeded=True, min_groups=self.min_ranker_playlists // 2
        )
        # Queries without seeds (a title only) differ in kind: their own, smaller ranker.
        self.title_ranker_ = self._train_ranker(
            batch, hidden, rng, seeded=False, min_groups=max(self.min_ranker_playlists // 4, 10)
        )
        if small or folds > 1:
            self._fit_generators(snapshot)
        else:
            self._set_playlists(matrix)  # what `load` will see
        return self

    def _fit_content(self, snapshot: Any, matrix: sp.csr_matrix) -> None:
        n_tracks = matrix.shape[1]
        self.prior_ = popularity_prior(matrix)
        self.order_ = prior_order(self.prior_)
        counts = np.bincount(matrix.indices, minlength=n_tracks)
        self.log_counts_ = np.log1p(counts).astype(np.float32)
        tracks = snapshot.tracks
        self.artist_codes_ = self._codes(tracks.get("artist_key"), n_tracks)
        self.album_codes_ = self._codes(tracks.get("album_id"), n_tracks)
        self._index_artists()

    @staticmethod
    def _codes(column: Any, n_tracks: int) -> np.ndarray:
        if column is None:
            return np.full(n_tracks, -1, dtype=np.int64)
        import pandas as pd

        codes, _ = pd.factorize(pd.Series(column).reset_index(drop=True), use_na_sentinel=True)
        return np.asarray(codes, dtype=np.int64)

    def _index_artists(self) -> None:
        """``artist_tracks_``: per artist its tracks weighted by log popularity (content block)."""
        n_tracks = self.prior_.shape[0]
        known = np.flatnonzero(self.artist_codes_ >= 0)
        n_artists = int(self.artist_codes_.max(initial=-1)) + 1
        self.artist_tracks_ = sp.csr_matrix(
            (1.0 + self.log_counts_[known], (self.artist_codes_[known], known)),
            shape=(n_artists, n_tracks),
            dtype=np.float32,
        )

    def _training_queries(
        self, snapshot: Any, matrix: sp.csr_matrix, rng: np.random.Generator
    ) -> tuple[list[np.ndarray], list[str | None], sp.csr_matrix] | None:
        """Cut training playlists like challenge playlists: seeds, titles and hidden tracks."""
        lengths = np.diff(matrix.indptr)
        names = snapshot.playlists["name"].tolist() if len(snapshot.playlists) else []
        eligible = np.flatnonzero(lengths >= 11)
        if eligible.size < max(self.min_ranker_playlists, 1):
            return None
        chosen = np.sort(
            rng.choice(eligible, size=min(self.ranker_playlists, eligible.size), replace=False)
        )
        seeds: list[np.ndarray] = []
        titles: list[str | None] = []
        hide_rows: list[np.ndarray] = []
        hide_cols: list[np.ndarray] = []
        query_rows: list[int] = []
        for row in chosen:
            tracks = matrix.indices[matrix.indptr[row] : matrix.indptr[row + 1]]
            name = (
                names[row]
                if row < len(names) and isinstance(names[row], str) and names[row].strip()
                else None
            )
            feasible = [k for k in SEED_COUNTS[1:] if tracks.size - k >= max(10, k / 2)]
            if name and (not feasible or rng.random() < self.title_share):
                k = 0
            elif feasible:
                k = int(rng.choice(feasible))
            else:
                continue
            perm = rng.permutation(tracks)
            seeds.append(np.sort(perm[:k]).astype(np.int64))
            titles.append(name if (k == 0 or rng.random() < 0.8) else None)
            hide_rows.append(np.full(tracks.size - k, row))
            hide_cols.append(perm[k:])
            query_rows.append(int(row))
        if len(seeds) < max(self.min_ranker_playlists, 1):
            return None
        rows = np.concatenate(hide_rows)
        cols = np.concatenate(hide_cols)
        hidden = sp.csr_matrix(
            (np.ones(rows.size, dtype=np.float32), (rows, cols)), shape=matrix.shape
        )
        self.train_rows_ = np.asarray(query_rows, dtype=np.int64)
        return seeds, titles, hidden

    def _train_ranker(
        self,
        batch: _Batch,
        hidden: sp.csr_matrix,
        rng: np.random.Generator,
        *,
        seeded: bool,
        min_groups: int,
    ) -> Any:
        """A booster for the queries with seeds (``seeded``) or for those without."""
        import lightgbm as lgb

        feats: list[np.ndarray] = []
        labels: list[np.ndarray] = []
        groups: list[int] = []
        n_seeds = FEATURES.index("n_seeds")
        for r, (cands, x) in enumerate(zip(batch.candidates, batch.features, strict=True)):
            if cands.size == 0 or (x[0, n_seeds] > 0) != seeded:
                continue
            row = batch.rows[r]
            held = hidden.indices[hidden.indptr[row] : hidden.indptr[row + 1]]
            y = np.isin(cands, held).astype(np.float32)
            if cands.size == 0 or not y.any():
                continue
            if self.negatives and cands.size - int(y.sum()) > self.negatives:
                # All hits, and a random sample of the misses: lambdarank's cost grows with
                # the square of a query's size, and the misses are mostly alike.
                neg = np.flatnonzero(y == 0)
                keep = np.sort(
                    np.concatenate(
                        [np.flatnonzero(y), rng.choice(neg, self.negatives, replace=False)]
                    )
                )
                x, y = x[keep], y[keep]
            feats.append(x)
            labels.append(y)
            groups.append(y.size)
        if len(groups) < max(min_groups, 1):
            return None
        ranker = lgb.LGBMRanker(
            objective=self.objective,
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=20,
            subsample=0.8,
            subsample_freq=1,
            colsample_bytree=0.9,
            random_state=self.random_state,
            # One thread: the ranker's data is bounded (ranker_playlists queries) whatever the
            # catalog's size, and OpenMP's spin-waiting makes multi-threaded boosting many times
            # slower on a busy 2-core machine (64 s against 10 s for the demo catalog).
            n_jobs=1,
            deterministic=True,
            force_row_wise=True,
            verbose=-1,
        )
        ranker.fit(np.vstack(feats), np.concatenate(labels), group=groups)
        return ranker.booster_

    # candidates and features ---------------------------------------------------------------
    def _batch(self, seed_lists: Sequence[np.ndarray], titles: Sequence[str | None]) -> _Batch:
        n_tracks = self.n_tracks
        k = self.candidates
        real = [np.unique(s) for s in seed_lists]
        title_raw = self.title_.raw_scores(list(titles))
        key_counts = np.diff(self.title_.key_weights(list(titles)).indptr)
        effective: list[np.ndarray] = []
        pseudo = np.zeros(len(real), dtype=bool)
        for r, s in enumerate(real):
            lo, hi = title_raw.indptr[r], title_raw.indptr[r + 1]
            if s.size == 0 and hi > lo and self.pseudo_seeds > 0:
                effective.append(
                    np.sort(
                        _top_of_row(
                            title_raw.indices[lo:hi], title_raw.data[lo:hi], self.pseudo_seeds
                        )
                    )
                )
                pseudo[r] = True
            else:
                effective.append(s)
        knn_raw = self.knn_.raw_scores(effective)
        knn_raw.sort_indices()
        uknn_raw = self._playlist_knn(effective)
        uknn_raw.sort_indices()
        users = self.als_.user_factors(effective)
        seeds_csr = seed_matrix(real, n_tracks)
        artist_share = self._share(seeds_csr, self.artist_codes_)
        album_share = self._share(seeds_csr, self.album_codes_)
        artist_raw = (
            sp.csr_matrix(artist_share @ self.artist_tracks_) if artist_share.shape[1] else None
        )
        popular = self.order_[: self.popular + 100]
        out = _Batch([], [])
        for r, s in enumerate(real):
            klo, khi = knn_raw.indptr[r], knn_raw.indptr[r + 1]
            kc, kv = knn_raw.indices[klo:khi], knn_raw.data[klo:khi]
            tlo, thi = title_raw.indptr[r], title_raw.indptr[r + 1]
            tc, tv = title_raw.indices[tlo:thi], title_raw.data[tlo:thi]
            dense_als = users[r] @ self.als_.item_factors_.T
            has_user = bool(np.any(users[r]))
            ulo, uhi = uknn_raw.indptr[r], uknn_raw.indptr[r + 1]
            uc, uv = uknn_raw.indices[ulo:uhi], uknn_raw.data[ulo:uhi]
            parts = [_top_of_row(kc, kv, k), _top_of_row(tc, tv, k), _top_of_row(uc, uv, k)]
            if has_user:
                parts.append(np.argpartition(-dense_als, min(k, n_tracks - 1))[: min(k, n_tracks)])
            if artist_raw is not None:
                alo, ahi = artist_raw.indptr[r], artist_raw.indptr[r + 1]
                parts.append(_top_of_row(artist_raw.indices[alo:ahi], artist_raw.data[alo:ahi], k))
            parts.append(popular[~np.isin(popular, s)][: self.popular])
            cands = np.unique(np.concatenate(parts).astype(np.int64))
            cands = cands[~np.isin(cands, s)]
            x = np.zeros((cands.size, len(FEATURES)), dtype=np.float32)
            if cands.size:
                f = {name: x[:, i] for i, name in enumerate(FEATURES)}
                knn_val = np.zeros(cands.size, dtype=np.float32)
                pos = np.searchsorted(kc, cands)
                hit = (
                    (pos < kc.size) & (kc[np.minimum(pos, max(kc.size - 1, 0))] == cands)
                    if kc.size
                    else np.zeros(cands.size, bool)
                )
                knn_val[hit] = kv[pos[hit]]
                f["knn"][:] = knn_val
                f["knn_rank"][:] = _rank_desc(knn_val)
                f["knn_ratio"][:] = knn_val / kv.max() if kv.size else 0.0
                f["knn_mean"][:] = knn_val / max(effective[r].size, 1)
                uknn_val = _lookup(uc, uv, cands)
                f["uknn"][:] = uknn_val
                f["uknn_rank"][:] = _rank_desc(uknn_val)
                f["uknn_ratio"][:] = uknn_val / uv.max() if uv.size else 0.0
                als_val = dense_als[cands] if has_user else np.zeros(cands.size, dtype=np.float32)
                f["als"][:] = als_val
                f["als_rank"][:] = _rank_desc(als_val)
                f["als_gap"][:] = als_val - als_val.max()
                title_val = np.zeros(cands.size, dtype=np.float32)
                if tc.size:
                    order = np.argsort(tc)
                    pos = np.searchsorted(tc[order], cands)
                    pos_c = np.minimum(pos, tc.size - 1)
                    hit = tc[order][pos_c] == cands
                    title_val[hit] = tv[order][pos_c[hit]]
                f["title"][:] = title_val
                f["title_rank"][:] = _rank_desc(title_val)
                f["title_ratio"][:] = title_val / tv.max() if tv.size else 0.0
                f["artist_share"][:] = self._share_of(artist_share, r, self.artist_codes_[cands])
                f["album_share"][:] = self._share_of(album_share, r, self.album_codes_[cands])
                f["artist_rank"][:] = _rank_desc(f["artist_share"] + 1e-3 * self.log_counts_[cands])
                f["popularity"][:] = self.log_counts_[cands]
                f["n_seeds"][:] = s.size
                f["has_title"][:] = float(titles[r] is not None and bool(str(titles[r]).strip()))
                f["pseudo_seeds"][:] = float(pseudo[r])
                f["title_keys"][:] = key_counts[r]
            out.candidates.append(cands)
            out.features.append(x)
        return out

    def _set_playlists(self, matrix: sp.csr_matrix) -> None:
        """The playlist x track matrix the playlist-kNN generator searches (and its transpose)."""
        self.playlists_ = matrix
        self.playlists_t_ = sp.csr_matrix(matrix.T)
        self.playlist_norms_ = np.sqrt(np.maximum(np.diff(matrix.indptr), 1)).astype(np.float32)

    def _playlist_knn(self, seed_lists: Sequence[np.ndarray]) -> sp.csr_matrix:
        """float32 CSR (queries, n_tracks): tracks of the playlists most like each query.

        Playlist similarity is the cosine of track sets; the ``playlist_neighbors`` most
        similar playlists vote for their tracks with weight ``similarity ** 2``.
        """
        queries = seed_matrix(seed_lists, self.n_tracks)
        overlap = sp.csr_matrix(queries @ self.playlists_t_, dtype=np.float32)
        sizes = np.sqrt(np.maximum(np.diff(queries.indptr), 1)).astype(np.float32)
        indptr = [0]
        cols_out: list[np.ndarray] = []
        vals_out: list[np.ndarray] = []
        for r in range(overlap.shape[0]):
            lo, hi = overlap.indptr[r], overlap.indptr[r + 1]
            cols = overlap.indices[lo:hi]
            sims = overlap.data[lo:hi] / (sizes[r] * self.playlist_norms_[cols])
            if cols.size > self.playlist_neighbors:
                pick = np.lexsort((cols, -sims))[: self.playlist_neighbors]
                cols, sims = cols[pick], sims[pick]
            cols_out.append(cols)
            vals_out.append(sims**2)
            indptr.append(indptr[-1] + cols.size)
        weights = sp.csr_matrix(
            (
                np.concatenate(vals_out) if vals_out else np.empty(0, np.float32),
                np.concatenate(cols_out) if cols_out else np.empty(0, np.int32),
                np.asarray(indptr),
            ),
            shape=overlap.shape,
        )
        return sp.csr_matrix(weights @ self.playlists_, dtype=np.float32)

    @staticmethod
    def _share(seeds_csr: sp.csr_matrix, codes: np.ndarray) -> sp.csr_matrix:
        """float32 CSR (queries, n_codes): fraction of each query's seeds with each code."""
        n_codes = int(codes.max(initial=-1)) + 1
        known = codes >= 0
        onehot = sp.csr_matrix(
            (np.ones(int(known.sum()), dtype=np.float32), (np.flatnonzero(known), codes[known])),
            shape=(codes.size, n_codes),
        )
        counts = sp.csr_matrix(seeds_csr @ onehot)
        sizes = np.maximum(np.diff(seeds_csr.indptr), 1).astype(np.float32)
        return sp.csr_matrix(sp.diags(1.0 / sizes) @ counts, dtype=np.float32)

    @staticmethod
    def _share_of(share: sp.csr_matrix, row: int, codes: np.ndarray) -> np.ndarray:
        lo, hi = share.indptr[row], share.indptr[row + 1]
        cols, vals = share.indices[lo:hi], share.data[lo:hi]
        out = np.zeros(codes.size, dtype=np.float32)
        if cols.size:
            order = np.argsort(cols)
            pos = np.minimum(np.searchsorted(cols[order], codes), cols.size - 1)
            hit = (codes >= 0) & (cols[order][pos] == codes)
            out[hit] = vals[order][pos[hit]]
        return out

    def _score_batch(self, batch: _Batch) -> list[np.ndarray]:
        """Final candidate scores, all above the popularity prior (>= 1)."""
        out: list[np.ndarray] = []
        for x in batch.features:
            if x.shape[0] == 0:
                out.append(np.empty(0, dtype=np.float32))
                continue
            ranker = self.ranker_
            if x[0, FEATURES.index("n_seeds")] == 0 and self.title_ranker_ is not None:
                ranker = self.title_ranker_
            if ranker is not None:
                raw = np.asarray(ranker.predict(x, num_threads=1), dtype=np.float64)
            else:
                cols = {name: x[:, FEATURES.index(name)] for name in BLEND}
                raw = sum(
                    (w * cols[name].astype(np.float64) for name, w in BLEND.items()),
                    np.zeros(x.shape[0]),
                )
            out.append((1.0 + raw - raw.min()).astype(np.float32))
        return out

    # the interface -------------------------------------------------------------------------
    @property
    def n_tracks(self) -> int:
        self._check_fitted()
        return int(self.prior_.shape[0])

    def _ranked(
        self,
        seed_lists: Sequence[Any],
        titles: Sequence[str | None] | None,
    ) -> tuple[list[np.ndarray], _Batch, list[np.ndarray]]:
        self._check_fitted()
        seeds = [as_seed_array(s, self.n_tracks) for s in seed_lists]
        if titles is None:
            titles = [None] * len(seeds)
        elif len(titles) != len(seeds):
            raise ValueError(
                f"titles must have one entry per seed list: {len(titles)} != {len(seeds)}"
            )
        batch = self._batch(seeds, titles)
        return seeds, batch, self._score_batch(batch)

    def scores(self, seeds: np.ndarray, *, title: str | None = None) -> np.ndarray:
        _, batch, values = self._ranked([seeds], [title])
        out = self.prior_.copy()
        out[batch.candidates[0]] = values[0]
        return out

    def recommend(
        self,
        seeds: Any,
        n: int = 10,
        *,
        title: str | None = None,
        exclude: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted()
        n = check_n(n)
        seed_list, batch, values = self._ranked([seeds], [title])
        drop = (
            seed_list[0]
            if exclude is None
            else np.concatenate([seed_list[0], np.asarray(exclude, dtype=np.int64)])
        )
        return merge_top_n(
            batch.candidates[0], values[0], self.prior_, self.order_, n, np.unique(drop)
        )

    def recommend_batch(
        self,
        seed_lists: list[Any],
        n: int = 10,
        *,
        titles: list[str | None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted()
        n = check_n(n)
        ids = np.full((len(seed_lists), n), -1, dtype=np.int64)
        vals = np.full((len(seed_lists), n), -np.inf, dtype=np.float32)
        step = 256  # bounds the candidate feature matrices held at once
        for lo in range(0, len(seed_lists), step):
            chunk = seed_lists[lo : lo + step]
            seeds, batch, values = self._ranked(
                chunk, None if titles is None else titles[lo : lo + step]
            )
            for r in range(len(chunk)):
                got_i, got_v = merge_top_n(
                    batch.candidates[r], values[r], self.prior_, self.order_, n, np.unique(seeds[r])
                )
                ids[lo + r, : got_i.size] = got_i
                vals[lo + r, : got_v.size] = got_v
        return ids, vals

    def explain(self, seeds: np.ndarray, track: int, *, title: str | None = None) -> str:
        return self.explain_many(seeds, np.asarray([track]), title=title)[0]

    def explain_many(
        self, seeds: np.ndarray, tracks: np.ndarray, *, title: str | None = None
    ) -> list[str]:
        """Why each of ``tracks`` scored, from one run of the candidate pipeline."""
        self._check_fitted()
        wanted = np.asarray(tracks)
        bad = wanted[(wanted < 0) | (wanted >= self.n_tracks)]
        if bad.size:
            raise IndexError(f"track index {int(bad[0])} out of range [0, {self.n_tracks})")
        _, batch, _ = self._ranked([seeds], [title])
        cands = batch.candidates[0]
        no_seeds = (
            batch.features[0].shape[0] > 0 and batch.features[0][0, FEATURES.index("n_seeds")] == 0
        )
        ranker = self.title_ranker_ if no_seeds and self.title_ranker_ is not None else self.ranker_
        how = "ranked by the learned ranker" if ranker is not None else "blended"
        out: list[str] = []
        for track in wanted.tolist():
            where = np.flatnonzero(cands == track)
            if where.size == 0:
                out.append("not among the candidates of any generator: ranked by popularity")
                continue
            f = dict(zip(FEATURES, batch.features[0][where[0]].tolist(), strict=True))
            reasons = []
            if f["knn"] > 0:
                reasons.append(f"shares playlists with the seeds (kNN rank {int(f['knn_rank'])})")
            if f["uknn"] > 0:
                reasons.append(f"in playlists like this one (rank {int(f['uknn_rank'])})")
            if f["als"] != 0:
                reasons.append(f"fits the seeds' taste profile (ALS rank {int(f['als_rank'])})")
            if f["title"] > 0:
                reasons.append(f"in playlists named like {title!r}")
            if f["artist_share"] > 0:
                reasons.append(f"{f['artist_share']:.0%} of the seeds are by the same artist")
            if not reasons:
                reasons.append("popular in many playlists")
            out.append(f"{'; '.join(reasons)} ({how})")
        return out

    # persistence ---------------------------------------------------------------------------
    def _state_arrays(self) -> dict[str, np.ndarray]:
        self._check_fitted()
        arrays: dict[str, np.ndarray] = {
            "prior": self.prior_,
            "log_counts": self.log_counts_,
            "artist_codes": self.artist_codes_,
            "album_codes": self.album_codes_,
        }
        for prefix, model in (("knn", self.knn_), ("als", self.als_), ("title", self.title_)):
            arrays.update({f"{prefix}__{k}": v for k, v in model._state_arrays().items()})
            params = json.dumps(model.get_params()).encode()
            arrays[f"{prefix}__params"] = np.frombuffer(params, dtype=np.uint8)
        for key, booster in (("ranker", self.ranker_), ("title_ranker", self.title_ranker_)):
            if booster is not None:
                arrays[key] = np.frombuffer(booster.model_to_string().encode(), dtype=np.uint8)
        return arrays

    def _load_state(self, arrays: dict[str, np.ndarray], snapshot: Any) -> None:
        if "prior" not in arrays:
            raise ValueError(
                "saved hybrid model has no state: refit it with `segue fit --model hybrid`"
            )
        self.prior_ = np.asarray(arrays["prior"], dtype=np.float32)
        check_state_tracks(self.name, self.prior_.shape[0], snapshot)
        self.order_ = prior_order(self.prior_)
        self.log_counts_ = np.asarray(arrays["log_counts"], dtype=np.float32)
        self.artist_codes_ = np.asarray(arrays["artist_codes"], dtype=np.int64)
        self.album_codes_ = np.asarray(arrays["album_codes"], dtype=np.int64)
        self._index_artists()
        generators: list[Recommender] = []
        for prefix, cls in (
            ("knn", ItemKNNRecommender),
            ("als", ALSRecommender),
            ("title", TitleRecommender),
        ):
            params = json.loads(arrays[f"{prefix}__params"].tobytes().decode())
            model = cls(**params)
            model._load_state(
                {k.split("__", 1)[1]: v for k, v in arrays.items() if k.startswith(f"{prefix}__")},
                snapshot,
            )
            generators.append(model)
        self.knn_, self.als_, self.title_ = generators  # type: ignore[assignment]
        self._set_playlists(check_interactions(snapshot, self.name))
        import lightgbm as lgb

        self.ranker_ = self.title_ranker_ = None
        if "ranker" in arrays:
            self.ranker_ = lgb.Booster(model_str=arrays["ranker"].tobytes().decode())
        if "title_ranker" in arrays:
            self.title_ranker_ = lgb.Booster(model_str=arrays["title_ranker"].tobytes().decode())
        self.fitted_ = True


__all__ = ["FEATURES", "HybridRecommender", "csr_arrays", "csr_from_arrays"]
