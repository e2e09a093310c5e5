"""The candidate generators: item-kNN, ALS, the title model, the playlist-kNN, same artist,
content, popular tracks and the names a title spells; each query's candidates and their
features."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from segue.core.text import title_key
from segue.core.threads import single_thread_blas
from segue.models.als import ALSRecommender
from segue.models.base import fit_phase
from segue.models.content import Model1, Model2
from segue.models.hybrid.features import FEATURES, Batch, HybridFeatures, lookup
from segue.models.itemknn import (
    ItemKNNRecommender,
    TrackNames,
    check_interactions,
    popularity_prior,
)
from segue.models.rows import rows_dot, sparse_sum_rows
from segue.models.title import NameIndex, NameMatches, TitleRecommender
from segue.models.topn import prior_order
from segue.snapshot.arrays import transpose

#: Generator settings of the hybrid unless ``knn``/``als`` say otherwise: lighter than the
#: standalone defaults (half the neighbours, no search for one-playlist tracks, 10 sweeps),
#: which cost the ranked result nothing measurable on validation and keep the full MPD
#: within 20 minutes and 16 GB (docs/results.md).
KNN_DEFAULTS: dict[str, Any] = {"neighbors": 100, "min_count": 2}
ALS_DEFAULTS: dict[str, Any] = {"iterations": 10}
#: Content model settings unless ``content`` says otherwise (:class:`Model1`'s own defaults;
#: the hybrid ranks, so the artist cap of a standalone result list is off).
CONTENT_DEFAULTS: dict[str, Any] = {"max_per_artist": None}
#: The settings a content model chooses at fit (``chosen_``) that are its parameters.
TUNED_SETTINGS = ("weights", "aggregate", "era_width", "popularity_width", "crowd_tags")


def _tuned(params: dict[str, Any], chosen: dict[str, Any] | None) -> dict[str, Any]:
    """``params`` with the settings ``chosen`` at fit (when any), not searched again."""
    out = dict(params)
    if chosen is not None:
        out.update({k: chosen[k] for k in TUNED_SETTINGS})
    out["tune"] = False
    return out


def top_of_row(
    cols: np.ndarray, vals: np.ndarray, k: int, prefer: np.ndarray | None = None
) -> np.ndarray:
    """The (at most) ``k`` columns of a sparse row with the largest positive values.

    Ties at the cut go to the columns with the largest ``prefer`` (e.g. popularity, float
    (n_columns,)), then to the lowest columns: the answer never depends on the order in which
    a sparse product happened to store the row (small catalogs have many equal scores).
    """
    if cols.size <= k:
        return cols[vals > 0]
    part = np.argpartition(-vals, k - 1)[:k]
    cut = vals[part].min()
    above = np.flatnonzero(vals > cut)
    tied = np.flatnonzero(vals == cut)
    if tied.size > k - above.size:
        tied_cols = cols[tied]
        keys = (tied_cols,) if prefer is None else (tied_cols, -prefer[tied_cols])
        tied = tied[np.lexsort(keys)[: k - above.size]]
    picked = np.concatenate([above, tied])
    return cols[picked][vals[picked] > 0]


class CandidateGenerators(HybridFeatures):
    """Fits the generators and gathers each query's candidates with their features."""

    def _generators(self) -> tuple[ItemKNNRecommender, ALSRecommender, TitleRecommender, Model1]:
        threads = {"num_threads": self.num_threads}
        return (
            ItemKNNRecommender(**{**threads, **KNN_DEFAULTS, **(self.knn or {})}),
            ALSRecommender(
                **{"random_state": self.random_state, **threads, **ALS_DEFAULTS, **(self.als or {})}
            ),
            TitleRecommender(**(self.title or {})),
            Model1(**self._content_params()),
        )

    def _content_params(self) -> dict[str, Any]:
        """The content generator's parameters (the ranker's content features and candidates):
        the preset's settings, as given, so the ranker's features mean the same on every
        catalog."""
        return {**CONTENT_DEFAULTS, "tune": False, **(self.content or {})}

    def _content_alone(self) -> Model1:
        """The content model that may answer queries alone: the settings tuned at ``fit``."""
        params: dict[str, Any] = {**CONTENT_DEFAULTS, **(self.content or {})}
        return Model1(**_tuned(params, getattr(self, "content_chosen_", None)))

    def _model2_alone(self) -> Model2:
        """Model 2 (equal weights) with the settings tuned for it at ``fit``: a candidate to
        answer queries alone when no ranker can be trained."""
        params: dict[str, Any] = {**CONTENT_DEFAULTS, **(self.content or {})}
        params.pop("weights", None)  # Model 2's meaning: equal weights
        return Model2(**_tuned(params, getattr(self, "model2_chosen_", None)))

    def _fit_generators(
        self, snapshot: Any, *, alone: bool = False, stage: str = "generators"
    ) -> None:
        """Fit the generators on ``snapshot``; with ``alone`` also the tuned content model
        that may answer queries alone (``content_alone_``)."""
        self._set_playlists(check_interactions(snapshot, self.name))
        self.knn_, self.als_, self.title_, self.content_ = self._generators()
        fit_phase(f"{stage}: item-item")
        self.knn_.fit(snapshot)
        fit_phase(f"{stage}: ALS")
        self.als_.fit(snapshot)
        fit_phase(f"{stage}: title")
        self.title_.fit(snapshot)
        fit_phase(f"{stage}: content")
        self.content_.fit(snapshot)
        self.content_.chosen_["how"] = "the preset's settings: the ranker's content features"
        if alone:
            self.content_alone_ = self._content_alone().fit(snapshot)
            tuned = getattr(self, "content_chosen_", None)
            if tuned is not None:
                self.content_alone_.chosen_["how"] = tuned["how"]
            tuned2 = getattr(self, "model2_chosen_", None)
            if tuned2 is not None:
                fit_phase(f"{stage}: model 2")
                self.model2_alone_ = self._model2_alone().fit(snapshot)
                self.model2_alone_.chosen_["how"] = tuned2["how"]
        self._content_matrix()
        self._kept = None

    def _fit_content(self, snapshot: Any, matrix: sp.csr_matrix) -> None:
        n_tracks = matrix.shape[1]
        tracks = snapshot.tracks
        self.artist_codes_ = self._codes(tracks.get("artist_key"), n_tracks)
        self.album_codes_ = self._codes(tracks.get("album_id"), n_tracks)
        self._count(matrix)
        self.names_ = TrackNames(snapshot, n_tracks)
        self.name_index_ = NameIndex(snapshot.tracks, self.log_counts_)

    def _count(self, matrix: sp.csr_matrix) -> None:
        """The playlist counts of ``matrix`` the candidates and features read: the popularity
        prior and its order, log counts, and each artist's tracks weighted by them."""
        self.prior_ = popularity_prior(matrix)
        self.order_ = prior_order(self.prior_)
        counts = np.bincount(matrix.indices, minlength=matrix.shape[1])
        self.log_counts_ = np.log1p(counts).astype(np.float32)
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

    def _set_playlists(
        self, matrix: sp.csr_matrix, transposed: sp.csr_matrix | None = None
    ) -> None:
        """The playlist x track matrix the playlist-kNN generator searches and its transpose
        (``transposed`` when given, else computed)."""
        self.playlists_ = matrix
        self.playlists_t_ = transposed if transposed is not None else transpose(matrix)
        self.playlist_norms_ = np.sqrt(np.maximum(np.diff(matrix.indptr), 1)).astype(np.float32)

    def _playlist_knn(self, seeds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Tracks of the playlists most like one query, as a sparse row ``(columns, values)``.

        ``seeds`` int64 unique track indices. Playlist similarity is the cosine of track sets;
        the ``playlist_neighbors`` most similar playlists vote for their tracks with weight
        ``similarity ** 2``.
        """
        cols, overlap = sparse_sum_rows(self.playlists_t_, seeds)
        if cols.size == 0:
            return cols, overlap
        size = np.float32(np.sqrt(max(seeds.size, 1)))
        sims = overlap / (size * self.playlist_norms_[cols])
        if cols.size > self.playlist_neighbors:
            pick = np.lexsort((cols, -sims))[: self.playlist_neighbors]
            cols, sims = cols[pick], sims[pick]
        return sparse_sum_rows(self.playlists_, cols, sims**2)

    def _title_weights(self, titles: Sequence[str | None]) -> sp.csr_matrix:
        """The title model's key weights, without its vectorizer when no title has a key."""
        emoji = self.title_.emoji
        if not any(title_key(t, emoji=emoji) for t in titles if t is not None):
            return sp.csr_matrix((len(titles), int(self.title_.keys_.size)), dtype=np.float32)
        return self.title_.key_weights(list(titles))

    def _name_matches(self, title: str | None) -> NameMatches:
        """Tracks whose artist, album or track name the title spells (none without a title)."""
        return self.name_index_.match(title if title and title.strip() else None)

    def _title_counts(
        self, weights: sp.csr_matrix, seed_lists: Sequence[np.ndarray]
    ) -> sp.csr_matrix:
        """float32 CSR (queries, n_tracks): for queries without seeds, the similarity-weighted
        number of training playlists with a matching title that hold each track (the title
        model keeps ``counts / (size + shrink)``); empty rows for the others, which have their
        seeds to go by (and skip the product's cost)."""
        scaled = weights.copy()
        if scaled.nnz:
            sizes = (self.title_.key_sizes_ + self.title_.shrink).astype(np.float32)
            seedless = np.asarray([s.size == 0 for s in seed_lists], dtype=np.float32)
            scaled.data = (
                scaled.data * sizes[scaled.indices] * np.repeat(seedless, np.diff(scaled.indptr))
            )
            scaled.eliminate_zeros()
        if not scaled.nnz:
            return sp.csr_matrix((weights.shape[0], self.n_tracks), dtype=np.float32)
        out = sp.csr_matrix(scaled @ self.title_.key_tracks_, dtype=np.float32)
        out.sort_indices()
        return out

    @staticmethod
    def _whole_name_tracks(matches: NameMatches, k: int, fields: Sequence[str]) -> np.ndarray:
        """The ``k`` best tracks of each of ``fields`` whose name is the whole title."""
        out: list[np.ndarray] = []
        for field_name in fields:
            best = matches.best[field_name]
            if best.size:
                cov = lookup(matches.tracks[field_name], matches.coverage[field_name], best)
                out.append(best[cov >= 0.999][:k])
        return np.concatenate(out) if out else np.empty(0, dtype=np.int64)

    def _code_share(self, seeds: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Codes among ``seeds`` (sorted int64) and the fraction of the seeds with each."""
        got = codes[seeds]
        cols, counts = np.unique(got[got >= 0], return_counts=True)
        scale = np.float32(1.0) / np.float32(max(seeds.size, 1))
        return cols, counts.astype(np.float32) * scale

    def _batch(self, seed_lists: Sequence[np.ndarray], titles: Sequence[str | None]) -> Batch:
        with single_thread_blas():
            return self._batch_inner(seed_lists, titles)

    def _batch_inner(self, seed_lists: Sequence[np.ndarray], titles: Sequence[str | None]) -> Batch:
        n_tracks = self.n_tracks
        k = self.candidates
        real = [np.unique(s) for s in seed_lists]
        title_weights = self._title_weights(titles)
        if title_weights.nnz:
            title_raw = sp.csr_matrix(title_weights @ self.title_.key_tracks_, dtype=np.float32)
            title_raw.sort_indices()
        else:  # no title with a key (most queries): skip the product
            title_raw = sp.csr_matrix((len(real), n_tracks), dtype=np.float32)
        title_counts = self._title_counts(title_weights, real) if title_weights.nnz else title_raw
        key_counts = np.diff(title_weights.indptr)
        title_best = np.zeros(len(real), dtype=np.float32)
        for r in range(len(real)):
            lo, hi = title_weights.indptr[r], title_weights.indptr[r + 1]
            if hi > lo:
                title_best[r] = title_weights.data[lo:hi].max()
        matches = [self._name_matches(t) for t in titles]
        effective: list[np.ndarray] = []
        pseudo = np.zeros(len(real), dtype=bool)
        for r, s in enumerate(real):
            lo, hi = title_raw.indptr[r], title_raw.indptr[r + 1]
            named = (
                # the artist or album the title names; a song only when no training playlist
                # has a similar name (song names are often plain words: "Summer", "Good")
                self._whole_name_tracks(
                    matches[r],
                    self.name_seeds,
                    ("artist", "album") if hi > lo else ("artist", "album", "track"),
                )
                if s.size == 0 and self.name_seeds
                else np.empty(0, dtype=np.int64)
            )
            if s.size == 0 and (hi > lo or named.size) and self.pseudo_seeds > 0:
                picked = top_of_row(
                    title_raw.indices[lo:hi],
                    title_raw.data[lo:hi],
                    self.pseudo_seeds,
                    self.log_counts_,
                )
                effective.append(np.unique(np.concatenate([picked, named])).astype(np.int64))
                pseudo[r] = True
            else:
                effective.append(s)
        users = self.als_.user_factors(effective)
        popular = self.order_[: self.popular + 100]
        out = Batch([], [])
        for r, s in enumerate(real):
            eff = effective[r]
            kc, kv = sparse_sum_rows(self.knn_.similarity_, eff)
            tlo, thi = title_raw.indptr[r], title_raw.indptr[r + 1]
            tc, tv = title_raw.indices[tlo:thi], title_raw.data[tlo:thi]
            uc, uv = self._playlist_knn(eff)
            has_user = bool(np.any(users[r]))
            als_top = self.als_.top_items(users[r], k) if has_user else None
            artist_cols, artist_vals = self._code_share(s, self.artist_codes_)
            album_cols, album_vals = self._code_share(s, self.album_codes_)
            prefer = self.log_counts_
            parts = [
                top_of_row(kc, kv, k, prefer),
                top_of_row(tc, tv, k, prefer),
                top_of_row(uc, uv, k, prefer),
            ]
            if als_top is not None:
                parts.append(als_top)
            if artist_cols.size:
                ac, av = sparse_sum_rows(self.artist_tracks_, artist_cols, artist_vals)
                parts.append(top_of_row(ac, av, k, prefer))
            content_query = self._content_query(eff)
            if self.content_candidates and content_query[self._genre_cols].any():
                # only seeds with genres or tags: without them the content model's ranking
                # is popularity and era buckets alone, which finds nothing like the seeds
                parts.append(self.content_.recommend(eff, self.content_candidates)[0])
            parts.append(popular[~np.isin(popular, s)][: self.popular])
            if s.size == 0 and self.name_candidates:
                # a title only: the tracks of the artists, albums and songs it names
                parts.extend(m[: self.name_candidates] for m in matches[r].best.values())
            cands = np.unique(np.concatenate(parts).astype(np.int64))
            cands = cands[~np.isin(cands, s)]
            x = np.zeros((cands.size, len(FEATURES)), dtype=np.float32)
            if cands.size:
                self._fill_features(
                    x,
                    cands,
                    knn=(kc, kv),
                    uknn=(uc, uv),
                    title=(tc, tv),
                    als=users[r] if has_user else None,
                    artist=(artist_cols, artist_vals),
                    album=(album_cols, album_vals),
                    content=rows_dot(self._content_x, cands, content_query),
                    n_effective=eff.size,
                    n_seeds=s.size,
                    has_title=titles[r] is not None and bool(str(titles[r]).strip()),
                    pseudo=bool(pseudo[r]),
                    title_keys=float(key_counts[r]),
                    title_best=float(title_best[r]),
                    title_count=(
                        title_counts.indices[title_counts.indptr[r] : title_counts.indptr[r + 1]],
                        title_counts.data[title_counts.indptr[r] : title_counts.indptr[r + 1]],
                    ),
                    names=matches[r],
                )
            out.candidates.append(cands)
            out.features.append(x)
        return out
