"""Content-based recommenders: a playlist is the sum of what its tracks are.

:class:`ContentRecommender` scores every track against a query built from the seed tracks'
rows of the content feature matrix (:mod:`segue.snapshot.features`). For each block ``b`` (genres,
audio, popularity, era) it computes the cosine between the track's block and the playlist's
block and adds them up with the block weights ``w_b`` (normalised to sum to 1)::

    score(t) = sum_b w_b * cos(q_b, x_tb)

``aggregate="sum"`` builds ``q_b`` as the sum of the seeds' rows (the original project's
playlist vector); ``aggregate="mean"`` instead averages the per-seed cosines
(``q_b = sum / n_seeds`` without renormalising), so a block in which the seeds disagree counts
for less. Blocks are L2-normalised per row, so each block's cosine is one dot product: one
float32 sparse product for genres, one BLAS product for the dense audio block and one lookup
for the one-hot popularity and era blocks (looked up together through a combined code).

Presets (see docs/content-model.md for how they map to the original project):

* :class:`Model1` - genres dominate: the original ranked by genre similarity, then by
  popularity/era similarity, then by all features (a lexicographic sort). Heavy block weights
  (genres >> popularity, era >> audio) keep that order of importance while letting a large
  difference in a lesser block break near-ties.
* :class:`Model2` - equal block weights: the original's average of its similarities.
* :class:`OriginalScoring` - a faithful re-implementation of the original scoring (TF-IDF
  with ``max_features=3``, summed playlist vector, three cosine similarities, exact
  lexicographic sort), used as the reference in evaluation and benchmarks.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import time
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp

from segue.core import mapped
from segue.core.errors import NotFittedError
from segue.core.threads import single_thread_blas
from segue.models.base import ARRAYS_DIR, Recommender, as_seed_array, check_format, dropped
from segue.models.params import Constraints, Interval, Options
from segue.models.rows import sum_rows
from segue.models.topn import empty, padded, top_indices
from segue.snapshot.derived import (
    has_playlist_labels,
    with_interactions,
    without_playlist_labels,
    without_titles,
)
from segue.snapshot.features import (
    BLOCKS,
    SOURCE_BOTH,
    SOURCE_TAGS,
    BlockMemo,
    ContentFeatures,
    CrowdTagMode,
    build_content_features,
    playlist_count_percentile,
)

if TYPE_CHECKING:
    from segue.snapshot.arrays import Snapshot

log = logging.getLogger(__name__)

Aggregate = Literal["sum", "mean"]

#: Scores (n_tracks * queries) computed at once by ``recommend_batch``; bounds its memory.
BATCH_CELLS = 32_000_000
#: Catalogs from this size on score audio only where it can change the top of the ranking.
PRUNE_MIN_TRACKS = 50_000
#: Upper bound of a track's audio cosine (1) with room for float32 rounding.
AUDIO_BOUND = 1.0 + 1e-4


#: The scoring structures a content model saves besides its artist keys (``arrays/``):
#: the genres block as CSR and its transpose, the audio block dense and transposed, the
#: combined popularity/era code and the duplicate groups' order and starts.
COMPILED = (
    "genres_data",
    "genres_indices",
    "genres_indptr",
    "genres_t_data",
    "genres_t_indices",
    "genres_t_indptr",
    "audio_t",
    "combined",
    "group_order",
    "group_start",
)


def _compiled_fits(saved: Mapping[str, np.ndarray], n_tracks: int) -> bool:
    """True when ``saved`` holds every array of :data:`COMPILED`, sized for ``n_tracks``."""
    if not all(k in saved for k in COMPILED):
        return False
    per_track = ("combined", "group_order", "genres_indptr")
    return (
        all(saved[k].ndim == 1 for k in per_track)
        and saved["combined"].shape[0] == saved["group_order"].shape[0] == n_tracks
        and saved["genres_indptr"].shape[0] == n_tracks + 1
        and saved["audio_t"].ndim == 2
        and saved["audio_t"].shape[1] == n_tracks
    )


def _csr_of(arrays: Mapping[str, np.ndarray], prefix: str, shape: tuple[int, int]) -> sp.csr_matrix:
    """The CSR matrix saved as ``<prefix>_data``, ``_indices`` and ``_indptr`` (on those
    arrays: mapped ones stay mapped)."""
    parts = (arrays[f"{prefix}_data"], arrays[f"{prefix}_indices"], arrays[f"{prefix}_indptr"])
    return sp.csr_matrix(parts, shape=shape)


# ---------------------------------------------------------------------------------------------
# top-n selection
# ---------------------------------------------------------------------------------------------


def cap_per_key(ranked: np.ndarray, keys: np.ndarray, cap: int) -> np.ndarray:
    """Boolean mask over ``ranked`` keeping at most ``cap`` entries per key, earliest first.

    ``keys`` aligned with ``ranked`` (int array). Vectorised occurrence count: a stable sort by
    key, then the position within each run of equal keys.
    """
    if ranked.size == 0:
        return np.zeros(0, dtype=bool)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    run_start = np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]
    positions = np.arange(ranked.size)
    first = np.maximum.accumulate(np.where(run_start, positions, 0))
    occurrence = np.empty(ranked.size, dtype=np.int64)
    occurrence[order] = positions - first
    return occurrence < cap


# ---------------------------------------------------------------------------------------------
# the content recommender
# ---------------------------------------------------------------------------------------------

#: The work the settings search may do, in track scores (one held-out playlist scored against
#: one track). On the demo catalog (150 held-out playlists x 28,352 tracks) a setting costs
#: 4.25 million and Model 1's search runs its rounds to the end (64 settings, 272 million); at
#: the full MPD shape (2.26 million tracks) a setting costs 339 million, so only the preset's
#: settings are scored. A count, not a time: the same data and parameters choose the same
#: settings whatever the machine's load.
TUNE_BUDGET = 300_000_000


class ContentRecommender(Recommender):
    """Cosine similarity per feature block, weighted, against every track.

    Parameters (keyword-only):

    * ``weights``: block -> weight (missing blocks take the class defaults); normalised to sum 1.
    * ``aggregate``: ``"sum"`` (cosine to the summed playlist vector, the original's) or
      ``"mean"`` (mean of the per-seed cosines).
    * ``n_genres``: TF-IDF vocabulary size (None = all; the original used 3).
    * ``era_width`` / ``popularity_width``: bucket widths in years / popularity points.
    * ``crowd_tags``: ``"all"`` (playlist-title words for every track, beside its genres; the
      default, chosen on a validation split), ``"missing"`` (only for tracks whose artist has
      no genres) or ``"none"``; ``tag_top_k`` tags per track.
    * ``max_per_artist``: at most this many tracks of one artist in a result (None = no cap;
      the original used 5).
    * ``collapse_duplicates``: return one version of a song (same title and artist) and never
      a version of a seed song.
    * ``tune``: choose the settings on the catalog's own playlists at ``fit``
      (:func:`choose_settings`), searching ``tune_playlists`` held-out playlists within
      ``tune_budget`` track scores; ``random_state`` seeds the held-out cut.
    """

    name: ClassVar[str] = "content"
    _parameter_constraints: ClassVar[Constraints] = {
        "aggregate": [Options("sum", "mean")],
        "max_per_artist": [Interval(int, 1, None), None],
    }
    default_weights: ClassVar[dict[str, float]] = dict.fromkeys(BLOCKS, 1.0)
    #: Whether tuning searches the block weights (Model 2 keeps its equal weights).
    tunes_weights: ClassVar[bool] = True

    def __init__(
        self,
        *,
        weights: Mapping[str, float] | None = None,
        aggregate: Aggregate = "sum",
        n_genres: int | None = None,
        era_width: int = 10,
        popularity_width: int = 5,
        crowd_tags: CrowdTagMode = "all",
        tag_top_k: int = 10,
        max_per_artist: int | None = None,
        collapse_duplicates: bool = True,
        tune: bool = True,
        tune_budget: int = TUNE_BUDGET,
        tune_playlists: int = 150,
        random_state: int = 0,
        progress: bool = True,
    ) -> None:
        self.weights = dict(weights) if weights is not None else None
        self.aggregate = aggregate
        self.n_genres = n_genres
        self.era_width = era_width
        self.popularity_width = popularity_width
        self.crowd_tags = crowd_tags
        self.tag_top_k = tag_top_k
        self.max_per_artist = max_per_artist
        self.collapse_duplicates = collapse_duplicates
        self.tune = tune
        self.tune_budget = tune_budget
        self.tune_playlists = tune_playlists
        self.random_state = random_state
        self.progress = progress

    # fitting -------------------------------------------------------------------------------
    def _check_weights(self) -> None:
        """The block weights: known block names, finite, >= 0, one positive."""
        unknown = set(self.weights or {}) - set(BLOCKS)
        if unknown:
            raise ValueError(
                f"weights name unknown block(s) {sorted(unknown)}; expected among {list(BLOCKS)}"
            )
        self.block_weights()  # raises for negative or all-zero weights

    def block_weights(self) -> dict[str, float]:
        """The weights in use, normalised to sum 1 (so a score is a weighted mean of cosines)."""
        raw = {**self.default_weights, **(self.weights or {})}
        for block, value in raw.items():
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"weight of block {block!r} must be finite and >= 0, got {value}")
        total = sum(raw.values())
        if total <= 0:
            raise ValueError(f"at least one block weight must be positive, got {raw}")
        return {b: raw.get(b, 0.0) / total for b in BLOCKS}

    def fit(self, snapshot: Snapshot) -> Self:
        """Build the content features of ``snapshot`` and the structures that score them.

        With ``tune`` the settings are first chosen on the catalog's own playlists
        (:func:`tune_content`); ``chosen_`` records them and how they were chosen.
        """
        self._check_weights()
        if self.tune:
            self.chosen_ = tune_content(self, snapshot)
        else:
            self.chosen_ = {**self._given_settings(), "how": "as given (no tuning)"}
        features = self._build(snapshot, self.chosen_)
        return self.fit_features(features, snapshot.track_artist_keys())

    def _given_settings(self) -> dict[str, Any]:
        """The settings of the constructor's parameters, in the form of ``chosen_``."""
        return {
            "weights": {**self.default_weights, **(self.weights or {})},
            "aggregate": self.aggregate,
            "era_width": self.era_width,
            "popularity_width": self.popularity_width,
            "crowd_tags": self.crowd_tags,
        }

    def _build(
        self, snapshot: Snapshot, settings: Mapping[str, Any], memo: BlockMemo | None = None
    ) -> ContentFeatures:
        return build_content_features(
            snapshot,
            n_genres=self.n_genres,
            era_width=int(settings["era_width"]),
            popularity_width=int(settings["popularity_width"]),
            crowd_tag_mode=settings["crowd_tags"],
            tag_top_k=self.tag_top_k,
            weights={b: float(settings["weights"].get(b, 0.0)) for b in BLOCKS},
            memo=memo,
        )

    def fit_features(
        self,
        features: ContentFeatures,
        artist_keys: np.ndarray,
        *,
        compiled: Mapping[str, np.ndarray] | None = None,
    ) -> Self:
        """Use an already built feature matrix; ``artist_keys`` int64 (n_tracks,).

        ``compiled``: the scoring structures saved with a model of these features
        (:data:`COMPILED`, mapped read-only: processes that load one model share them), used
        as they are instead of being derived again in every process.
        """
        self._validate_params()
        self._check_weights()
        artist_keys = np.asarray(artist_keys, dtype=np.int64)
        if artist_keys.shape != (features.n_tracks,):
            raise ValueError(
                f"artist_keys must have one key per track: expected ({features.n_tracks},), got {artist_keys.shape}"
            )
        self.features_ = features
        self.artist_keys_ = artist_keys
        chosen = getattr(self, "chosen_", None)
        if chosen is None:
            self.chosen_ = chosen = {**self._given_settings(), "how": "as given (no tuning)"}
        self.aggregate_ = chosen["aggregate"]
        self.weights_ = present_weights(chosen["weights"], features)
        self.chosen_ = {
            **chosen,
            "weights_used": {b: round(v, 4) for b, v in self.weights_.items()},
        }
        self._compile(compiled)
        self.fitted_ = True
        return self

    def variant_params(self) -> dict[str, Any]:
        """Its parameters, with the settings it chose at fit in place of a new search
        (``tune=False``) when it tuned."""
        params = self.get_params()
        chosen = self.chosen_
        if isinstance(chosen, dict) and params.get("tune"):
            keys = ("weights", "aggregate", "era_width", "popularity_width", "crowd_tags")
            params.update({k: chosen[k] for k in keys if k in chosen}, tune=False)
        return params

    def genre_terms(self) -> int | None:
        cols = self.features_.blocks.get("genres")
        return int(cols.stop - cols.start) if isinstance(cols, slice) else None

    def describe_settings(self) -> str:
        """One line: the settings in use and how they were chosen."""
        self._check_fitted()
        return settings_line(self.chosen_)

    def _compile(self, saved: Mapping[str, np.ndarray] | None = None) -> None:
        """Split the matrix into the fastest form of each block.

        genres: CSR (n_tracks, n_terms) for batches and its transpose (an inverted index, one
        row of postings per term) for single queries; audio: dense, transposed
        (n_audio, n_tracks) so one query is one BLAS product; popularity and era: one-hot codes
        combined into one int code per track, so both are one lookup.

        With ``saved`` holding every array of :data:`COMPILED` (as :meth:`save` writes them)
        those are used instead (a model saved without them derives them here).
        """
        f = self.features_
        self._genre_cols = f.blocks["genres"]
        self._onehot_blocks: list[str] = []
        if saved is not None and _compiled_fits(saved, f.n_tracks):
            width = self._genre_cols.stop - self._genre_cols.start
            self._genres = _csr_of(saved, "genres", (f.n_tracks, width))
            self._genres_t = _csr_of(saved, "genres_t", (width, f.n_tracks))
            self._audio_t = saved["audio_t"]
            self._combined = saved["combined"]
            self._onehot_blocks = ["popularity", "era"]
            self._group_order = saved["group_order"]
            self._group_start = saved["group_start"]
            return
        self._genres = f.block("genres")
        self._genres_t = self._genres.T.tocsr()
        self._audio_t = np.ascontiguousarray(f.block("audio").toarray().T, dtype=np.float32)
        codes: list[np.ndarray] = []
        sizes: list[int] = []
        for block in ("popularity", "era"):
            sub = f.block(block)
            per_row = np.diff(sub.indptr)
            if not (np.all(per_row == 1) and np.all(sub.data == 1.0)):
                raise ValueError(f"block {block!r} must be one-hot (exactly one 1.0 per track)")
            codes.append(sub.indices.astype(np.int64))
            sizes.append(sub.shape[1])
            self._onehot_blocks.append(block)
        combined = np.zeros(f.n_tracks, dtype=np.int64)
        for c, s in zip(codes, sizes, strict=True):
            combined = combined * s + c
        # int32 when it fits: the lookup reads fewer bytes
        self._combined = combined.astype(np.int32) if math.prod(sizes) < 2**31 else combined
        groups = f.duplicate_group
        order = np.argsort(groups, kind="stable")
        self._group_order = order
        self._group_start = np.searchsorted(
            groups[order], np.arange(int(groups.max(initial=-1)) + 2)
        )

    @property
    def n_tracks(self) -> int:
        return int(self.features_.n_tracks)

    @property
    def nbytes(self) -> int:
        """Bytes of the feature matrix and of the scoring structures derived from it."""
        arrays = [self._audio_t, self._combined, self._group_order, self._group_start]
        for m in (self._genres, self._genres_t):
            arrays += [m.data, m.indices, m.indptr]
        return self.features_.nbytes + sum(int(a.nbytes) for a in arrays)

    # scoring -------------------------------------------------------------------------------
    def _queries(self, seed_lists: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """Per-block query vectors (dense float32 (n_queries, block width)), weighted and scaled."""
        n_q = len(seed_lists)
        lengths = np.asarray([len(s) for s in seed_lists], dtype=np.int64)
        matrix = self.features_.matrix
        summed = np.zeros((n_q, matrix.shape[1]), dtype=np.float32)
        for r, seeds in enumerate(seed_lists):
            summed[r] = sum_rows(matrix, np.asarray(seeds, dtype=np.int64))
        out: dict[str, np.ndarray] = {}
        for block, cols_slice in self.features_.blocks.items():
            q = summed[:, cols_slice]
            if self.aggregate_ == "sum":
                scale = np.linalg.norm(q, axis=1)
            else:
                scale = lengths.astype(np.float32)
            with np.errstate(divide="ignore", invalid="ignore"):
                factor = np.where(scale > 0, self.weights_[block] / scale, 0.0).astype(np.float32)
            out[block] = q * factor[:, None]
        return out

    def _lookup_table(self, queries: dict[str, np.ndarray]) -> np.ndarray:
        """float32 (n_queries, n_codes): the one-hot blocks' scores of every combined code."""
        n_q = queries["genres"].shape[0]
        table = np.zeros((n_q, 1), dtype=np.float32)
        for block in self._onehot_blocks:
            # outer sum over the combined code: table[q, c1 * size2 + c2] = q1[c1] + q2[c2]
            table = (table[:, :, None] + queries[block][:, None, :]).reshape(n_q, -1)
        return table

    def _score_queries(self, queries: dict[str, np.ndarray]) -> np.ndarray:
        """Dense float32 scores (n_queries, n_tracks), as matrix products."""
        total = queries["audio"] @ self._audio_t  # (n_q, n_tracks)
        if self._genres.shape[1]:
            total += np.asarray(self._genres @ queries["genres"].T, dtype=np.float32).T
        total += self._lookup_table(queries)[:, self._combined]
        return total

    def _partial_one(self, queries: dict[str, np.ndarray]) -> np.ndarray:
        """float32 (n_tracks,): genres + popularity + era of one query (no audio)."""
        q = queries["genres"][0]
        terms = np.flatnonzero(q)
        out = np.take(self._lookup_table(queries)[0], self._combined)
        if terms.size == 0:
            return out
        postings = int((self._genres_t.indptr[terms + 1] - self._genres_t.indptr[terms]).sum())
        if postings < self._genres.nnz // 2:
            # few terms: walk only their postings (the inverted index)
            out += self._genres_t[terms].T @ q[terms]
        else:
            out += self._genres @ q
        return out

    def _score(self, seeds: np.ndarray, *, title: str | None) -> np.ndarray:
        """Dense float32 scores (n_tracks,) in [0, 1]; all zero when ``seeds`` is empty."""
        seed_arr = np.unique(seeds)
        if seed_arr.size == 0:
            return np.zeros(self.n_tracks, dtype=np.float32)
        queries = self._queries([seed_arr])
        out = self._partial_one(queries)
        with single_thread_blas():
            out += queries["audio"][0] @ self._audio_t
        return out

    # selection -----------------------------------------------------------------------------
    def _versions_of(self, tracks: np.ndarray) -> np.ndarray:
        groups = np.unique(self.features_.duplicate_group[tracks])
        starts, stops = self._group_start[groups], self._group_start[groups + 1]
        return np.concatenate([self._group_order[a:b] for a, b in zip(starts, stops, strict=True)])

    def _drop(self, scores: np.ndarray, seeds: np.ndarray, exclude: np.ndarray | None) -> None:
        """Set -inf on the seeds (and their other versions) and on ``exclude``, in place."""
        scores[self._versions_of(seeds) if self.collapse_duplicates else seeds] = -np.inf
        if exclude is not None and len(exclude):
            scores[np.asarray(exclude, dtype=np.int64)] = -np.inf

    def _rank(
        self,
        scores: np.ndarray,
        n: int,
        *,
        index: np.ndarray | None = None,
        limit: int | None = None,
    ) -> np.ndarray | None:
        """Ranked track indices (int64, at most ``n``) under the duplicate and artist filters.

        ``scores`` covers all tracks, or the tracks ``index`` names (ascending). With ``limit``
        only the best ``limit`` entries of ``scores`` are trustworthy: None is returned when
        the filters would need to look further.
        """
        ids = (lambda pos: pos) if index is None else (lambda pos: index[pos])
        if not self.collapse_duplicates and self.max_per_artist is None:
            return ids(top_indices(scores, n))
        want = n * 2 + 32
        while True:
            if limit is not None and want > limit:
                return None
            ranked = ids(top_indices(scores, want))
            keep = np.ones(ranked.size, dtype=bool)
            if self.collapse_duplicates:
                keep &= cap_per_key(ranked, self.features_.duplicate_group[ranked], 1)
            if self.max_per_artist is not None:
                kept = ranked[keep]
                artist_ok = cap_per_key(kept, self.artist_keys_[kept], self.max_per_artist)
                keep[np.flatnonzero(keep)[~artist_ok]] = False
            if keep.sum() >= n:
                return ranked[keep][:n]
            if ranked.size < want:
                return None if limit is not None else ranked[keep]
            want *= 4

    def _select(
        self, seeds: np.ndarray, n: int, *, title: str | None, exclude: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``n`` tracks for one query: ``(indices int64 (k,), scores float32 (k,))``, k <= n.

        Seeds (and, with ``collapse_duplicates``, other versions of seed songs) are never
        returned; empty seeds give empty results (content needs something to compare with).

        Exact, but audio is scored only where it can matter: a track's audio term lies in
        [0, w_audio], so with ``tau`` the K-th best score without audio, only tracks whose
        score without audio reaches ``tau - w_audio`` can enter the top K.
        """
        seed_arr = np.unique(seeds)
        if seed_arr.size == 0 or n == 0:
            return empty()
        queries = self._queries([seed_arr])
        scores = self._partial_one(queries)
        self._drop(scores, seed_arr, exclude)
        q_audio = queries["audio"][0]
        w_audio = self.weights_["audio"]
        budget = n * 2 + 32
        if w_audio > 0 and self.n_tracks >= PRUNE_MIN_TRACKS and budget < self.n_tracks:
            top = top_indices(scores, budget)
            if top.size == budget:
                candidates = np.flatnonzero(scores >= scores[top[-1]] - w_audio * AUDIO_BOUND)
                if candidates.size <= self.n_tracks // 4:
                    with single_thread_blas():
                        audio = q_audio @ self._audio_t[:, candidates]
                    exact = scores[candidates] + audio
                    picked = self._rank(exact, n, index=candidates, limit=budget)
                    if picked is not None:
                        return picked, exact[np.searchsorted(candidates, picked)].astype(np.float32)
        with single_thread_blas():
            scores += q_audio @ self._audio_t
        picked = self._rank(scores, n)
        if picked is None:  # only a ranking with a limit gives up
            raise RuntimeError("ranking without a limit gave up")
        return picked, scores[picked].astype(np.float32)

    def _select_batch(
        self, seed_lists: list[np.ndarray], n: int, titles: list[str | None]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Many queries as matrix products: ``(indices int64, scores float32)`` of shape
        ``(len(seed_lists), n)``, padded with -1 and -inf."""
        seeds = [np.unique(s) for s in seed_lists]
        ids, vals = padded(len(seeds), n)
        chunk = max(1, BATCH_CELLS // max(1, self.n_tracks))
        for lo in range(0, len(seeds), chunk):
            part = seeds[lo : lo + chunk]
            scores = self._score_queries(self._queries(part))
            for row, seed_arr in enumerate(part):
                if seed_arr.size == 0 or n <= 0:
                    continue
                self._drop(scores[row], seed_arr, None)
                picked = self._rank(scores[row], n)
                if picked is None:  # only a ranking with a limit gives up
                    raise RuntimeError("ranking without a limit gave up")
                ids[lo + row, : picked.size] = picked
                vals[lo + row, : picked.size] = scores[row][picked]
        return ids, vals

    # explanation ---------------------------------------------------------------------------
    def block_contributions(self, seeds: Any, track: int) -> dict[str, float]:
        """``w_b * cos(q_b, x_tb)`` of each block for one track; they sum to its score."""
        self._check_fitted()
        seed_arr = np.unique(as_seed_array(seeds, self.n_tracks))
        if not 0 <= int(track) < self.n_tracks:
            raise IndexError(f"track index {track} out of range [0, {self.n_tracks})")
        if seed_arr.size == 0:
            return dict.fromkeys(BLOCKS, 0.0)
        queries = self._queries([seed_arr])
        row = self.features_.matrix[int(track)]
        out = {}
        for block, cols in self.features_.blocks.items():
            x = np.asarray(row[:, cols].toarray(), dtype=np.float32).ravel()
            out[block] = float(x @ queries[block][0])
        return out

    def explain(self, seeds: np.ndarray, track: int, *, title: str | None = None) -> str:
        """Which blocks made ``track`` score, with the shared genres or tags and its era, e.g.
        ``"genres 0.62 (shared: dance pop, edm) · era 0.20 (2010s) · audio 0.10"``."""
        contributions = self.block_contributions(seeds, track)
        seed_arr = np.unique(as_seed_array(seeds, self.n_tracks))
        if seed_arr.size == 0:
            return "no seed tracks to compare with"
        f = self.features_
        parts: list[tuple[float, str]] = []
        for block, value in contributions.items():
            if self.weights_[block] == 0:
                continue
            label = block
            detail = ""
            if block == "genres":
                shared = self.shared_terms(seed_arr, track)
                source = int(f.genre_source[track])
                label = {SOURCE_TAGS: "tags", SOURCE_BOTH: "genres/tags"}.get(source, "genres")
                if shared:
                    detail = f" (shared: {', '.join(shared)})"
            elif block in ("era", "popularity"):
                cols = f.blocks[block]
                row = f.matrix[int(track), cols]
                if row.nnz:
                    term = f.feature_names[cols.start + int(row.indices[0])].split(":", 1)[1]
                    detail = f" ({term})"
            parts.append((value, f"{label} {value:.2f}{detail}"))
        parts.sort(key=lambda p: -p[0])
        return " · ".join(text for _, text in parts)

    def shared_terms(self, seeds: Any, track: int, limit: int = 3) -> list[str]:
        """Genres or tags the track shares with the seeds, strongest first (at most ``limit``)."""
        self._check_fitted()
        seed_arr = np.unique(as_seed_array(seeds, self.n_tracks))
        if not 0 <= int(track) < self.n_tracks:
            raise IndexError(f"track index {track} out of range [0, {self.n_tracks})")
        g = self._genres
        row = g[int(track)]
        if row.nnz == 0 or seed_arr.size == 0:
            return []
        summed = np.asarray(g[seed_arr].sum(axis=0)).ravel()
        strength = row.data * summed[row.indices]
        order = np.lexsort((row.indices, -strength))
        names = self.features_.feature_names
        start = self._genre_cols.start
        return [
            names[start + int(row.indices[i])].split(":", 1)[1] for i in order if strength[i] > 0
        ][:limit]

    # persistence ---------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        """``model.json`` (name, parameters) + ``arrays/`` (artist keys) + the feature matrix."""
        self._check_fitted()
        super().save(directory)
        meta_path = Path(directory) / "model.json"
        meta = json.loads(meta_path.read_text())
        meta["chosen"] = self.chosen_
        meta_path.write_text(json.dumps(meta, indent=2))
        self.features_.save(Path(directory))

    def _state_arrays(self) -> dict[str, np.ndarray]:
        """The artist keys and the scoring structures derived from the features (saved so
        that loading maps them rather than deriving a copy in every process)."""
        return {
            "artist_keys": self.artist_keys_,
            "genres_data": self._genres.data,
            "genres_indices": self._genres.indices,
            "genres_indptr": self._genres.indptr,
            "genres_t_data": self._genres_t.data,
            "genres_t_indices": self._genres_t.indices,
            "genres_t_indptr": self._genres_t.indptr,
            "audio_t": self._audio_t,
            "combined": self._combined,
            "group_order": self._group_order,
            "group_start": self._group_start,
        }

    @classmethod
    def load(cls, directory: Path, snapshot: Any) -> Self:
        directory = Path(directory)
        meta_path = directory / "model.json"
        if not meta_path.exists():
            raise NotFittedError(f"no model in {directory}: expected model.json")
        meta = json.loads(meta_path.read_text())
        check_format(directory, meta, cls.name)
        model = cls(**meta["params"])
        features = ContentFeatures.load(directory)
        if snapshot is not None and snapshot.n_tracks != features.n_tracks:
            raise ValueError(
                f"model in {directory} was built for {features.n_tracks} tracks, the snapshot has "
                f"{snapshot.n_tracks}: rebuild it with `segue fit --model {model.name}`"
            )
        arrays = mapped.read_arrays(directory / ARRAYS_DIR)
        if "chosen" in meta:
            model.chosen_ = meta["chosen"]
        return model.fit_features(features, arrays["artist_keys"], compiled=arrays)


# ---------------------------------------------------------------------------------------------
# settings chosen on the catalog's own playlists
# ---------------------------------------------------------------------------------------------

#: Fewer playlists of at least :data:`TUNE_MIN_TRACKS` tracks than this: no tuning, the plain
#: method's weighting (:data:`PLAIN_WEIGHTS`).
MIN_TUNE_PLAYLISTS = 20
TUNE_MIN_TRACKS = 15
#: Seeds kept per held-out playlist (one drawn per playlist among those that leave >= 10).
TUNE_SEEDS = (1, 5, 10, 25)
#: Recommendations scored per held-out playlist (the challenge's 500).
TUNE_N = 500
#: Folds of the held-out playlists when genres were made from playlist labels: each fold is
#: scored with genres that its own playlists' labels did not give.
LABEL_FOLDS = 5
#: Values tried for a lesser block's weight, relative to the genres block's (Model 1).
WEIGHT_STEPS = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0)
ERA_WIDTHS = (10, 20, 50, 5)
POPULARITY_WIDTHS = (5, 10, 20)
CROWD_TAG_MODES: tuple[CrowdTagMode, ...] = ("all", "missing", "none")
#: The plain method's weighting (:class:`PlainMethod`: audio features, popularity and
#: 50-year eras in one vector, where the audio columns carry most of the mass).
PLAIN_WEIGHTS = {"genres": 0.0, "audio": 2.0, "popularity": 1.0, "era": 1.0}


def present_blocks(features: ContentFeatures) -> list[str]:
    """Blocks that tell tracks apart: some track has a term other than ``missing``/``unknown``."""
    out = []
    used = np.bincount(features.matrix.indices, minlength=features.matrix.shape[1]) > 0
    for block, cols in features.blocks.items():
        names = features.feature_names[cols.start : cols.stop]
        known = [i for i, n in enumerate(names) if n.split(":", 1)[1] not in ("missing", "unknown")]
        if not known:
            continue
        if block == "audio" or used[cols.start + np.asarray(known)].any():
            out.append(block)
    return out


def present_weights(weights: Mapping[str, float], features: ContentFeatures) -> dict[str, float]:
    """``weights`` over the blocks the catalog has (absent ones 0), normalised to sum 1; equal
    weights over the present blocks when none of them has a positive weight."""
    return weights_over(weights, present_blocks(features))


def weights_over(weights: Mapping[str, float], present: list[str]) -> dict[str, float]:
    """:func:`present_weights` given the present blocks."""
    raw = {b: float(weights.get(b, 0.0)) if b in present else 0.0 for b in BLOCKS}
    for block, value in raw.items():
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"weight of block {block!r} must be finite and >= 0, got {value}")
    total = sum(raw.values())
    if total <= 0:
        raw = {b: 1.0 if (b in present or not present) else 0.0 for b in BLOCKS}
        total = sum(raw.values())
    return {b: raw[b] / total for b in BLOCKS}


def settings_line(chosen: Mapping[str, Any]) -> str:
    """``chosen_`` in one line, e.g. ``weights genres 0.83 audio 0.08 ... · mean · eras of 10
    years · popularity buckets of 5 · crowd tags all (tuned on ...)``."""
    w = chosen.get("weights_used") or chosen["weights"]
    total = sum(float(v) for v in w.values()) or 1.0
    weights = " ".join(f"{b} {float(w.get(b, 0.0)) / total:.2f}" for b in BLOCKS)
    return (
        f"weights {weights} · {chosen['aggregate']} of the seeds · eras of "
        f"{chosen['era_width']} years · popularity buckets of {chosen['popularity_width']} · "
        f"crowd tags {chosen['crowd_tags']} ({chosen.get('how', '')})"
    )


def holdout_playlists(
    matrix: sp.csr_matrix, rng: np.random.Generator, max_playlists: int
) -> tuple[list[np.ndarray], list[np.ndarray], sp.csr_matrix, np.ndarray] | int:
    """Cut up to ``max_playlists`` playlists of at least :data:`TUNE_MIN_TRACKS` tracks into
    seeds and hidden tracks: ``(seeds, hidden, matrix without the hidden entries, their
    rows)``, or the number of such playlists when there are fewer than
    :data:`MIN_TUNE_PLAYLISTS`."""
    lengths = np.diff(matrix.indptr)
    eligible = np.flatnonzero(lengths >= TUNE_MIN_TRACKS)
    if eligible.size < MIN_TUNE_PLAYLISTS:
        return int(eligible.size)
    chosen = np.sort(rng.choice(eligible, min(max_playlists, eligible.size), replace=False))
    seeds: list[np.ndarray] = []
    hidden: list[np.ndarray] = []
    rows: list[np.ndarray] = []
    for row in chosen.tolist():
        tracks = np.unique(matrix.indices[matrix.indptr[row] : matrix.indptr[row + 1]])
        feasible = [k for k in TUNE_SEEDS if tracks.size - k >= max(10, k / 2)]
        k = int(rng.choice(feasible))
        perm = rng.permutation(tracks)
        seeds.append(np.sort(perm[:k]).astype(np.int64))
        hidden.append(np.sort(perm[k:]).astype(np.int64))
        rows.append(np.full(tracks.size - k, row))
    cols = np.concatenate(hidden)
    hide = sp.csr_matrix(
        (np.ones(cols.size, dtype=np.float32), (np.concatenate(rows), cols)), shape=matrix.shape
    )
    masked = sp.csr_matrix(matrix - matrix.multiply(hide))
    masked.eliminate_zeros()
    return seeds, hidden, masked, chosen.astype(np.int64)


def query_ndcg(ids: np.ndarray, hidden: Sequence[np.ndarray]) -> np.ndarray:
    """NDCG of each query's ranked ``ids`` (int (queries, n), -1 padding) against ``hidden``
    (float64, one value per query)."""
    n = ids.shape[1]
    discount = 1.0 / np.log2(np.arange(2, n + 2))
    values = np.zeros(len(hidden), dtype=np.float64)
    for row, held in enumerate(hidden):
        got = ids[row]
        hit = np.isin(got, held) & (got >= 0)
        ideal = discount[: min(held.size, n)].sum()
        values[row] = float(discount[hit].sum() / ideal) if ideal > 0 else 0.0
    return values


def mean_ndcg(ids: np.ndarray, hidden: Sequence[np.ndarray]) -> float:
    """Mean NDCG of ranked ``ids`` (int (queries, n), -1 padding) against ``hidden``."""
    values = query_ndcg(ids, hidden)
    return float(values.mean()) if values.size else 0.0


def _say(model: ContentRecommender, message: str) -> None:
    if model.progress:
        log.info("%s: %s", model.name, message)


#: Settings chosen in this process, by model class and the parameters tuning reads, with
#: the snapshot's arrays they were chosen on (weak references: a copy of a snapshot given other
#: arrays is another snapshot). A build that fits the hybrid (whose content model is Model 1)
#: and Model 1 on one snapshot tunes once.
_TUNED: dict[tuple[Any, ...], tuple[tuple[weakref.ref[Any], ...], dict[str, Any]]] = {}
#: Parameters that do not change what tuning chooses.
_NOT_TUNING = frozenset({"progress", "max_per_artist"})


def tune_content(model: ContentRecommender, snapshot: Snapshot) -> dict[str, Any]:
    """:func:`choose_settings`, once per model class, tuning parameters and snapshot object
    in this process (the same data and parameters give the same choice)."""
    params = {k: v for k, v in model.get_params().items() if k not in _NOT_TUNING}
    key = (type(model).__name__, repr(sorted(params.items())), snapshot.snapshot_id)
    parts = (snapshot.interactions, snapshot.tracks, snapshot.artists)
    if key in _TUNED:
        refs, chosen = _TUNED[key]
        if all(ref() is part for ref, part in zip(refs, parts, strict=True)):
            _say(model, "settings chosen for this snapshot earlier in this run, used again")
            return copy.deepcopy(chosen)
    chosen = choose_settings(model, snapshot)
    if len(_TUNED) >= 8:
        _TUNED.clear()
    _TUNED[key] = (tuple(weakref.ref(part) for part in parts), copy.deepcopy(chosen))
    return chosen


def choose_settings(model: ContentRecommender, snapshot: Snapshot) -> dict[str, Any]:
    """Choose ``model``'s settings by self-supervised validation on the catalog's playlists.

    Up to ``tune_playlists`` playlists keep 1-25 of their tracks as seeds and hide the rest
    (from the crowd tags too); each setting is scored by the NDCG of its top 500 against the
    hidden tracks. A coordinate search from the preset's settings: the aggregate, each lesser
    block's weight relative to genres (Model 1; Model 2 keeps equal weights), era width,
    popularity width, crowd tags; again while something improves, until the settings scored
    have cost ``tune_budget`` track scores (held-out playlists x catalog tracks per setting).
    BLAS runs on one thread, so the float sums, and the choice, do not depend on the machine's
    cores or load: the same data and parameters choose the same settings.
    Returns the settings with ``how`` (one line) and the validation figures.
    """
    with single_thread_blas():
        return _search_settings(model, snapshot)


def _search_settings(model: ContentRecommender, snapshot: Snapshot) -> dict[str, Any]:
    started = time.perf_counter()
    given = model._given_settings()
    rng = np.random.default_rng(model.random_state)
    matrix = sp.csr_matrix(snapshot.interactions)
    cut = holdout_playlists(matrix, rng, model.tune_playlists)
    if isinstance(cut, int):
        weights = dict(PLAIN_WEIGHTS)
        if model.tunes_weights:
            weights["genres"] = max(PLAIN_WEIGHTS.values())
        else:
            weights = dict(model.default_weights)
        how = (
            f"{cut} playlists of >= {TUNE_MIN_TRACKS} tracks, fewer than {MIN_TUNE_PLAYLISTS} "
            "to validate on: the plain method's weighting"
        )
        _say(model, how)
        return {**given, "weights": weights, "aggregate": "sum", "era_width": 50, "how": how}
    seeds, hidden, masked_matrix, held_rows = cut
    # the held-out playlists are queries, not the catalog's: their titles tag no track
    snapshot = without_titles(snapshot, held_rows)
    # Where genres were made from playlist labels, each fold of the held-out playlists is
    # scored with the genres the other playlists' labels gave (see without_playlist_labels).
    n_folds = min(LABEL_FOLDS, len(seeds)) if has_playlist_labels(snapshot) else 1
    fold_of = np.arange(len(seeds)) % n_folds
    views: list[tuple[Snapshot, np.ndarray]] = []
    for fold in range(n_folds):
        members = np.flatnonzero(fold_of == fold)
        view = with_interactions(
            without_playlist_labels(snapshot, held_rows[members]), masked_matrix
        )
        views.append((view, members))
    keys = snapshot.track_artist_keys()
    budget = int(model.tune_budget)
    per_setting = len(seeds) * snapshot.n_tracks
    _say(
        model,
        f"tuning on {len(seeds)} held-out playlists (at most {budget:,} track scores, "
        f"{per_setting:,} a setting)",
    )
    scorers: dict[tuple[Any, ...], list[tuple[ContentRecommender, list[str]]]] = {}
    # the views share the tracks table (one masked matrix): blocks built for one setting are
    # used again by the others that differ elsewhere
    shared: dict[tuple[Any, ...], Any] = {}
    memos = [BlockMemo(tracks=shared) for _ in views]
    tried: dict[tuple[Any, ...], float] = {}
    spent = 0  # track scores so far

    def feature_key(settings: Mapping[str, Any]) -> tuple[Any, ...]:
        return (settings["era_width"], settings["popularity_width"], settings["crowd_tags"])

    def score(settings: dict[str, Any], keep: tuple[Any, ...] | None) -> float:
        nonlocal spent
        fkey = feature_key(settings)
        if fkey not in scorers:
            for other in [k for k in scorers if k != keep]:
                del scorers[other]  # bounds memory: at most two feature sets at once
            scorers[fkey] = []
            for (view, _members), memo in zip(views, memos, strict=True):
                scorer = ContentRecommender(
                    tune=False, collapse_duplicates=model.collapse_duplicates, progress=False
                )
                scorer.chosen_ = {**settings, "how": "tuning"}
                scorer.fit_features(model._build(view, settings, memo), keys)
                scorers[fkey].append((scorer, present_blocks(scorer.features_)))
        fitted = scorers[fkey]
        used = weights_over(settings["weights"], fitted[0][1])
        key = (*fkey, settings["aggregate"], *(round(used[b], 6) for b in BLOCKS))
        if key not in tried:
            spent += per_setting
            total = 0.0
            for (scorer, present), (_view, members) in zip(fitted, views, strict=True):
                scorer.weights_ = weights_over(settings["weights"], present)
                scorer.aggregate_ = settings["aggregate"]
                ids, _ = scorer.recommend_batch([seeds[i] for i in members], TUNE_N)
                total += mean_ndcg(ids, [hidden[i] for i in members]) * members.size
            tried[key] = total / len(seeds)
        return tried[key]

    best = dict(given)
    best_score = base_score = score(best, None)
    out_of_budget = False

    def candidates() -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        out.append({**best, "aggregate": "mean" if best["aggregate"] == "sum" else "sum"})
        if model.tunes_weights:
            ref = float(best["weights"].get("genres", 0.0)) or 1.0
            for block in ("audio", "popularity", "era"):
                for step in WEIGHT_STEPS:
                    out.append({**best, "weights": {**best["weights"], block: step * ref}})
        out += [{**best, "era_width": w} for w in ERA_WIDTHS]
        out += [{**best, "popularity_width": w} for w in POPULARITY_WIDTHS]
        out += [{**best, "crowd_tags": m} for m in CROWD_TAG_MODES]
        return out

    for _round in range(3):
        improved = False
        for settings in candidates():
            if spent >= budget:
                out_of_budget = True
                break
            value = score(settings, feature_key(best))
            if value > best_score + 1e-4:
                best, best_score, improved = settings, value, True
                _say(
                    model, f"validation NDCG {best_score:.4f}: {settings_line({**best, 'how': ''})}"
                )
        if out_of_budget or not improved:
            break
    seconds = time.perf_counter() - started
    how = (
        f"tuned on {len(seeds)} held-out playlists: NDCG {best_score:.4f} against "
        f"{base_score:.4f} for the preset's settings, {len(tried)} settings in {seconds:.1f} s"
        + (f" (stopped at the budget of {budget:,} track scores)" if out_of_budget else "")
    )
    _say(model, how)
    return {
        **best,
        "how": how,
        "validation_ndcg": round(best_score, 6),
        "preset_ndcg": round(base_score, 6),
        "settings_tried": len(tried),
    }


# ---------------------------------------------------------------------------------------------
# the plain original method (the reference of the content targets)
# ---------------------------------------------------------------------------------------------


class PlainMethod(Recommender):
    """The original method as a reader of its description would write it: min-max scaled audio
    features, one-hot ``popularity // 5`` and one-hot ``release year // 50`` in one vector per
    track, the playlist vector the sum of its tracks', cosine against every track, best first.

    Gaps the description does not cover: unknown audio values take the column median, unknown
    popularity the catalog popularity (playlist-count percentile), an unknown year no era
    bucket. Ties by track index.
    """

    name: ClassVar[str] = "plain"

    def __init__(self, *, popularity_width: int = 5, era_width: int = 50) -> None:
        self.popularity_width = popularity_width
        self.era_width = era_width

    @property
    def n_tracks(self) -> int:
        return int(self.x_.shape[0])

    def fit(self, snapshot: Snapshot) -> Self:
        from sklearn.impute import SimpleImputer
        from sklearn.preprocessing import MinMaxScaler

        from segue.core.records import AUDIO_FEATURES

        tracks = snapshot.tracks
        n = len(tracks)
        present = [c for c in AUDIO_FEATURES if c in tracks and tracks[c].notna().any()]
        parts: list[np.ndarray] = []
        if present:
            scaled = MinMaxScaler().fit_transform(tracks[present].to_numpy(dtype=np.float64))
            parts.append(SimpleImputer(strategy="median").fit_transform(scaled))
        pop = tracks["popularity"].to_numpy(dtype=np.float64)
        pop = np.where(
            np.isnan(pop), playlist_count_percentile(tracks["playlist_count"].to_numpy()), pop
        )
        pop_code = (np.clip(pop, 0, 100) // self.popularity_width).astype(np.int64)
        parts.append(np.eye(int(100 // self.popularity_width) + 1)[pop_code])
        year = tracks["release_year"].to_numpy(dtype=np.float64)
        known = ~np.isnan(year)
        if known.any():
            era = np.where(known, year // self.era_width, 0).astype(np.int64)
            lo = int(era[known].min())
            onehot = np.zeros((n, int(era[known].max()) - lo + 1))
            onehot[np.flatnonzero(known), era[known] - lo] = 1.0
            parts.append(onehot)
        x = np.hstack(parts).astype(np.float32)
        norms = np.linalg.norm(x, axis=1)
        self.x_ = np.ascontiguousarray(x / np.where(norms > 0, norms, 1.0)[:, None])
        self.raw_ = np.ascontiguousarray(x)
        self.fitted_ = True
        return self

    def _score(self, seeds: np.ndarray, *, title: str | None) -> np.ndarray:
        if seeds.size == 0:
            return np.zeros(self.n_tracks, dtype=np.float32)
        q = self.raw_[seeds].sum(axis=0)
        norm = float(np.linalg.norm(q))
        if norm == 0:
            return np.zeros(self.n_tracks, dtype=np.float32)
        with single_thread_blas():
            return np.asarray(self.x_ @ (q / norm), dtype=np.float32)

    def _select(
        self, seeds: np.ndarray, n: int, *, title: str | None, exclude: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        if seeds.size == 0 or n == 0:
            return empty()
        scores = self._score(seeds, title=title)
        scores[dropped(seeds, exclude)] = -np.inf
        picked = top_indices(scores, n)
        return picked, scores[picked]

    def explain(self, seeds: np.ndarray, track: int, *, title: str | None = None) -> str:
        return f"cosine {float(self.scores(seeds)[int(track)]):.2f} (audio, popularity, era)"


class Model1(ContentRecommender):
    """The original "Model 1": genres first, then popularity and era, then audio.

    The original sorted by genre similarity, then popularity/era similarity, then all
    features. Here that order of importance is kept as block weights of 100 : 10 : 10 : 1
    (genres : popularity : era : audio), so the lesser blocks decide among tracks whose genre
    match is (nearly) equal, without the brittleness of an exact sort on float similarities.
    """

    name: ClassVar[str] = "model1"
    default_weights: ClassVar[dict[str, float]] = {
        "genres": 100.0,
        "popularity": 10.0,
        "era": 10.0,
        "audio": 1.0,
    }


class Model2(ContentRecommender):
    """The original "Model 2": every block counts the same (the original averaged its
    similarities with equal weights)."""

    name: ClassVar[str] = "model2"
    default_weights: ClassVar[dict[str, float]] = dict.fromkeys(BLOCKS, 1.0)
    tunes_weights: ClassVar[bool] = False


# ---------------------------------------------------------------------------------------------
# the original project's scoring, re-implemented faithfully (the reference)
# ---------------------------------------------------------------------------------------------


def _original_genre_tfidf(
    snapshot: Snapshot, n_genres: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """The original's genre TF-IDF: dense float32 (n_tracks, <= n_genres) and the term names.

    Equal to ``TfidfVectorizer(max_features=n_genres).fit_transform(docs)`` with one document
    per track (its artist's genres, ``_`` inside a genre, ``unknown`` where none; tested), but
    tokenised once per artist and gathered per track, so millions of tracks stay fast.
    """
    from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

    artist_docs = [
        " ".join(str(g).replace(" ", "_") for g in gs) if gs is not None and len(gs) else "unknown"
        for gs in snapshot.artists["genres"].tolist()
    ]
    counter = CountVectorizer()
    by_artist = counter.fit_transform([*artist_docs, "unknown"]).tocsr()  # last row: no artist
    names = counter.get_feature_names_out()
    pos = snapshot.artists.index.get_indexer(pd.Index(snapshot.tracks["artist_key"]))
    pos[pos < 0] = len(artist_docs)
    counts = by_artist[pos]
    frequency = np.asarray(counts.sum(axis=0)).ravel()
    keep = np.flatnonzero(frequency > 0)  # terms of artists without tracks do not count
    if n_genres is not None and keep.size > n_genres:
        # scikit-learn's own rule: the max_features terms most frequent over the corpus
        keep = np.sort(keep[(-frequency[keep]).argsort()[:n_genres]])
    tfidf = TfidfTransformer().fit_transform(counts[:, keep].astype(np.float64))
    return np.asarray(tfidf.toarray(), dtype=np.float32), np.asarray(names[keep], dtype=str)


class OriginalScoring(Recommender):
    """The original project's scoring, for comparison.

    Features as the original built them: TF-IDF (``TfidfVectorizer(max_features=n_genres)``,
    default tokenisation) over the artist's genres written as space-separated words with the
    spaces inside a genre turned into ``_`` and ``unknown`` where the artist has none; audio
    features min-max scaled; one-hot ``track popularity // 5``, ``artist popularity // 5`` and
    ``release year // 50``. A playlist is the *sum* of its tracks' raw vectors and three cosine
    similarities are computed against every track: genres, popularity+era, all features.

    ``mode="model1"`` (the default, the original's Model 1) sorts by the three similarities
    lexicographically (ties by track index); ``mode="model2"`` averages them.

    Where segue's data has gaps the original never saw: unknown audio values take the column
    median; unknown track popularity takes the catalog popularity (playlist-count percentile);
    unknown artist popularity or year leaves that one-hot group empty.

    ``scores()`` returns ``genre + 1e-3 * pop_era + 1e-6 * all`` (float32, an approximation of
    the sort); ``recommend`` applies the exact lexicographic order.
    """

    name: ClassVar[str] = "original"
    _parameter_constraints: ClassVar[Constraints] = {"mode": [Options("model1", "model2")]}

    def __init__(
        self,
        *,
        mode: Literal["model1", "model2"] = "model1",
        n_genres: int | None = 3,
        era_width: int = 50,
        popularity_width: int = 5,
    ) -> None:
        self.mode = mode
        self.n_genres = n_genres
        self.era_width = era_width
        self.popularity_width = popularity_width

    @property
    def n_tracks(self) -> int:
        return int(self.genres_.shape[0])

    def fit(self, snapshot: Snapshot) -> Self:
        from sklearn.impute import SimpleImputer
        from sklearn.preprocessing import MinMaxScaler

        from segue.core.records import AUDIO_FEATURES

        tracks = snapshot.tracks
        n = len(tracks)
        self.genres_, self.genre_names_ = _original_genre_tfidf(snapshot, self.n_genres)
        present = [c for c in AUDIO_FEATURES if tracks[c].notna().any()]
        if present:
            scaled = MinMaxScaler().fit_transform(tracks[present].to_numpy(dtype=np.float64))
            audio = SimpleImputer(strategy="median").fit_transform(scaled)
        else:
            audio = np.zeros((n, 0))
        self.audio_ = np.ascontiguousarray(audio, dtype=np.float32)
        pop = tracks["popularity"].to_numpy(dtype=np.float64)
        pop = np.where(
            np.isnan(pop), playlist_count_percentile(tracks["playlist_count"].to_numpy()), pop
        )
        width = self.popularity_width
        self.track_pop_ = (np.clip(pop, 0, 100) // width).astype(np.int64)
        artist_pop = (
            snapshot.artists["popularity"].reindex(tracks["artist_key"]).to_numpy(dtype=np.float64)
        )
        self.artist_pop_ = np.where(
            np.isnan(artist_pop), -1, np.clip(artist_pop, 0, 100) // width
        ).astype(np.int64)
        year = tracks["release_year"].to_numpy(dtype=np.float64)
        self.era_ = np.where(np.isnan(year), -1, year // self.era_width).astype(np.int64)
        self._compile()
        self.fitted_ = True
        return self

    def _compile(self) -> None:
        # one-hot groups as codes into one lookup vector: [track pop | artist pop | era]
        self._pop_size = int(100 // self.popularity_width + 1)
        known_era = self.era_[self.era_ >= 0]
        self._era_lo = int(known_era.min()) if known_era.size else 0
        era_size = int(known_era.max()) - self._era_lo + 1 if known_era.size else 0
        self._lookup_size = 2 * self._pop_size + era_size + 1  # last slot: "unknown", always 0
        none = self._lookup_size - 1
        self._code_tp = self.track_pop_
        self._code_ap = np.where(self.artist_pop_ >= 0, self._pop_size + self.artist_pop_, none)
        self._code_era = np.where(
            self.era_ >= 0, 2 * self._pop_size + self.era_ - self._era_lo, none
        )
        counts = 1.0 + (self.artist_pop_ >= 0) + (self.era_ >= 0)
        self._norm_pe = np.sqrt(counts).astype(np.float32)
        self._norm_g = np.linalg.norm(self.genres_, axis=1).astype(np.float32)
        self._norm_all = np.sqrt(
            (self.genres_**2).sum(axis=1) + (self.audio_**2).sum(axis=1) + counts
        ).astype(np.float32)

    def _query(self, seeds: np.ndarray) -> dict[str, Any]:
        """The summed playlist vector, by part, and its norms."""
        q_g = self.genres_[seeds].sum(axis=0)
        q_a = self.audio_[seeds].sum(axis=0)
        hist = np.zeros(self._lookup_size, dtype=np.float32)
        for codes in (self._code_tp, self._code_ap, self._code_era):
            np.add.at(hist, codes[seeds], 1.0)
        hist[-1] = 0.0
        norm_g = float(np.linalg.norm(q_g))
        norm_pe = float(np.linalg.norm(hist))
        norm_all = math.sqrt(norm_g**2 + float(q_a @ q_a) + norm_pe**2)
        return {
            "g": q_g,
            "a": q_a,
            "hist": hist,
            "norm_g": norm_g,
            "norm_pe": norm_pe,
            "norm_all": norm_all,
        }

    def _similarities(
        self,
        seeds: np.ndarray,
        subset: np.ndarray | None = None,
        keys: Sequence[str] = ("genres", "pop_era", "all"),
        query: dict[str, Any] | None = None,
    ) -> dict[str, np.ndarray]:
        """The original's cosines (float32) of every track, or of ``subset`` only; ``keys``
        among ``genres``, ``pop_era``, ``all``."""
        q = query if query is not None else self._query(seeds)
        idx = slice(None) if subset is None else subset
        out: dict[str, np.ndarray] = {}
        with single_thread_blas(), np.errstate(divide="ignore", invalid="ignore"):
            dot_g = self.genres_[idx] @ q["g"]
            if "genres" in keys:
                norm = self._norm_g[idx] * q["norm_g"]
                out["genres"] = np.where(norm > 0, dot_g / norm, 0.0).astype(np.float32)
            if "pop_era" in keys or "all" in keys:
                hist = q["hist"]
                dot_pe = (
                    hist[self._code_tp[idx]] + hist[self._code_ap[idx]] + hist[self._code_era[idx]]
                )
                if "pop_era" in keys:
                    norm = self._norm_pe[idx] * q["norm_pe"]
                    out["pop_era"] = np.where(norm > 0, dot_pe / norm, 0.0).astype(np.float32)
                if "all" in keys:
                    dot_all = dot_g + self.audio_[idx] @ q["a"] + dot_pe
                    norm = self._norm_all[idx] * q["norm_all"]
                    out["all"] = np.where(norm > 0, dot_all / norm, 0.0).astype(np.float32)
        return out

    def _score(self, seeds: np.ndarray, *, title: str | None) -> np.ndarray:
        seed_arr = seeds
        if seed_arr.size == 0:
            return np.zeros(self.n_tracks, dtype=np.float32)
        s = self._similarities(seed_arr)
        if self.mode == "model2":
            return ((s["genres"] + s["pop_era"] + s["all"]) / 3.0).astype(np.float32)
        return (s["genres"] + 1e-3 * s["pop_era"] + 1e-6 * s["all"]).astype(np.float32)

    def _select(
        self, seeds: np.ndarray, n: int, *, title: str | None, exclude: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``n`` by the original's order; returned scores are the genre similarity in
        ``model1`` mode (the primary sort key) and the mean similarity in ``model2`` mode."""
        seed_arr = seeds
        if seed_arr.size == 0 or n == 0:
            return empty()
        drop = dropped(seed_arr, exclude)
        if self.mode == "model2":
            scores = self._score(seed_arr, title=title)
            scores[drop] = -np.inf
            picked = top_indices(scores, n)
            return picked, scores[picked]
        query = self._query(seed_arr)
        primary = self._similarities(seed_arr, keys=("genres",), query=query)["genres"]
        primary[drop] = -np.inf
        top = top_indices(primary, n)
        if top.size == 0:
            return top, np.empty(0, dtype=np.float32)
        # the lexicographic top n: everything above the n-th genre similarity, plus the best
        # of the tracks tied with it on the lesser keys (ties can be most of the catalog when
        # only three genre terms exist)
        boundary = primary[top[-1]]
        above = np.flatnonzero(primary > boundary)
        tied = np.flatnonzero(primary == boundary)
        need = n - above.size
        if tied.size > need:
            second = self._similarities(seed_arr, tied, keys=("pop_era",), query=query)["pop_era"]
            cut = second[top_indices(second, need)[-1]]
            tied = tied[second >= cut]
        candidates = np.concatenate([above, tied])
        sub = self._similarities(seed_arr, candidates, keys=("pop_era", "all"), query=query)
        order = np.lexsort((candidates, -sub["all"], -sub["pop_era"], -primary[candidates]))
        picked = candidates[order[:n]].astype(np.int64)
        return picked, primary[picked].astype(np.float32)

    def explain(self, seeds: np.ndarray, track: int, *, title: str | None = None) -> str:
        self._check_fitted()
        seed_arr = as_seed_array(seeds, self.n_tracks)
        if seed_arr.size == 0:
            return "no seed tracks to compare with"
        sims = self._similarities(seed_arr, np.asarray([int(track)]))
        return " · ".join(f"{k.replace('_', '/')} {float(v[0]):.2f}" for k, v in sims.items())

    def _state_arrays(self) -> dict[str, np.ndarray]:
        return {
            "genres": self.genres_,
            "genre_names": self.genre_names_,
            "audio": self.audio_,
            "track_pop": self.track_pop_,
            "artist_pop": self.artist_pop_,
            "era": self.era_,
        }

    def _load_state(self, arrays: dict[str, np.ndarray], snapshot: Any) -> None:
        if not arrays:
            self.fit(snapshot)
            return
        self.genres_ = arrays["genres"]
        self.genre_names_ = arrays["genre_names"]
        self.audio_ = arrays["audio"]
        self.track_pop_ = arrays["track_pop"]
        self.artist_pop_ = arrays["artist_pop"]
        self.era_ = arrays["era"]
        if snapshot is not None and snapshot.n_tracks != self.genres_.shape[0]:
            raise ValueError(
                f"model was built for {self.genres_.shape[0]} tracks, the snapshot has {snapshot.n_tracks}: "
                "rebuild it with `segue fit --model original`"
            )
        self._compile()
        self.fitted_ = True


__all__ = [
    "ContentRecommender",
    "Model1",
    "Model2",
    "OriginalScoring",
    "PlainMethod",
    "cap_per_key",
    "tune_content",
]
