"""The default model: candidates from several generators, re-ranked by a learned ranker.

Two stages, as the RecSys Challenge 2018 winners built theirs:

1. **Candidates.** For each query the union of the top ``candidates`` tracks of item-kNN
   (:mod:`segue.models.itemknn`), ALS (:mod:`segue.models.als`), the title model
   (:mod:`segue.models.title`), a playlist-kNN (the tracks of the training playlists whose
   track sets are most like the seeds) and a same-artist generator, the top
   ``content_candidates`` tracks of the content model (:class:`segue.models.content.Model1`:
   genres and crowd tags, era, popularity, audio), plus the most popular tracks. Content and
   same-artist candidates reach tracks that share no playlist with anything (a track added to
   the catalog by a feature table or from Spotify). A query without seeds but with a title
   borrows the title model's best tracks as *pseudo-seeds*, and takes as candidates the
   tracks of the artists, albums and songs its title names
   (:class:`segue.models.title.NameIndex`: "Kevin Gates", "best of kevin gates", "Hey
   Brother"); the best tracks of an artist or album that is the whole title join the
   pseudo-seeds (of a song too when no training playlist has a similar name).
2. **Ranking.** A LightGBM ranker (``LGBMRanker``; objective ``rank_xendcg`` by default,
   ``lambdarank`` on request) scores each candidate from features: every generator's score,
   its rank among the candidates and its ratio to the best, the content similarity of the
   candidate to the seeds and its rank, track popularity, number of seeds, title given or
   not, share of seeds by the same artist/album, how well the title matched (the similarity
   of the nearest training title and, for title-only queries, the similarity-weighted number
   of such playlists holding the candidate) and the share of the title spelled by the
   candidate's artist, album or song name. Queries without seeds get a ranker of their own
   (their features mean other things).

The rankers are trained inside :meth:`HybridRecommender.fit` without outside labels: up to
``ranker_playlists`` training playlists are cut like challenge playlists (0-100 random seeds,
title given or not), their other tracks are hidden from the generators, and a candidate is a
hit when it is one of the hidden tracks. On small catalogs this runs in ``folds`` (3) rounds,
each hiding a third of the cut playlists, and the generators are then refitted on all data; on
large ones (more than ``refit_max_rows`` rows) one round hides the tails of a few thousand
playlists for good, which saves a second fit at no visible cost. The content model is fitted
with the other generators on the masked data (its crowd tags come from playlist titles, so a
hidden track must not carry the title of the playlist it was hidden from). With too few
playlists to learn from (fewer than ``min_ranker_playlists``) a fixed blend of the normalised
generator scores replaces the ranker.

**Measured against its parts.** The content generator's settings are chosen first, on the
whole catalog (:func:`segue.models.content.tune_content`). Then every fourth cut playlist is
kept out of the ranker's first training; on those, the ranker, the fixed blend and each
generator alone (content, item-kNN and ALS for queries with seeds; the title model for
title-only ones), all fitted without the hidden tracks, recommend 500 tracks and are scored by
NDCG. Each kind of query is answered by the best (``mode_``): the ranker unless another beats
it by more than :data:`SELECT_MARGIN`; the ranker is then trained again on all cut playlists.
Too few playlists for a ranker (under ``min_ranker_playlists``) and every cut playlist is
measured, the blend against the generators. What was chosen, with the figures, is printed at
fit (stderr), saved in ``model.json`` and returned by :meth:`HybridRecommender.describe_settings`.
``select=False`` skips the measuring (the ranker, or the blend, as before).

Serving: one query runs the candidate pipeline once; each thread keeps its last query's
candidates, features and scores (keyed by its seeds and title), so ``explain_many`` right
after ``recommend`` - what :class:`segue.service.engine.Service` does - reuses them. Explanations
name the seed tracks, artists and genres behind a recommendation. BLAS runs on one
thread inside the pipeline: its products are per query and small, and on a busy 2-core
machine a second BLAS thread only spin-waits.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from segue.core.errors import NotFittedError
from segue.core.text import title_key
from segue.core.threads import single_thread_blas
from segue.models.als import ALSRecommender
from segue.models.base import Recommender, as_seed_array, dropped, fit_phase
from segue.models.content import Model1, mean_ndcg
from segue.models.itemknn import (
    ItemKNNRecommender,
    TrackNames,
    check_interactions,
    check_state_tracks,
    csr_arrays,
    csr_from_arrays,
    join_words,
    popularity_prior,
)
from segue.models.params import Constraints, InstanceOf, Interval, Options
from segue.models.rows import entries, row_positions, rows_dot, sparse_sum_rows, sum_rows
from segue.models.title import NameIndex, NameMatches, TitleRecommender
from segue.models.topn import merge_top_n, padded, prior_order, top_indices
from segue.snapshot.arrays import transpose

log = logging.getLogger(__name__)

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
    "content",
    "content_rank",
    "content_gap",
    "title_best",
    "title_count",
    "name_artist",
    "name_album",
    "name_track",
)
#: Column of each feature in a candidate feature matrix.
COLUMN = {name: i for i, name in enumerate(FEATURES)}
#: Fixed blend used when there are too few playlists to train the ranker.
BLEND = {
    "knn_ratio": 1.0,
    "uknn_ratio": 0.5,
    "als_rank": -0.002,
    "title_ratio": 0.5,
    "artist_share": 0.3,
    "content": 0.3,
}
#: Generator settings of the hybrid unless ``knn``/``als`` say otherwise: lighter than the
#: standalone defaults (half the neighbours, no search for one-playlist tracks, 10 sweeps),
#: which cost the ranked result nothing measurable on validation and keep the full MPD
#: within 20 minutes and 16 GB (docs/results.md).
KNN_DEFAULTS: dict[str, Any] = {"neighbors": 100, "min_count": 2}
ALS_DEFAULTS: dict[str, Any] = {"iterations": 10}
#: Content model settings unless ``content`` says otherwise (:class:`Model1`'s own defaults;
#: the hybrid ranks, so the artist cap of a standalone result list is off).
CONTENT_DEFAULTS: dict[str, Any] = {"max_per_artist": None}
#: Seed counts of the challenge categories; training queries are cut the same ways.
SEED_COUNTS = (0, 1, 5, 10, 25, 100)
#: Fewer cut playlists than this: no validation at fit (the blend, generators on all data).
MIN_SELECT_PLAYLISTS = 20
#: Recommendations per held-out query when the hybrid measures itself against its parts.
SELECT_N = 500
#: What a kind of query (with seeds / a title only) may be answered by: the learned ranker,
#: the fixed blend, or one generator alone.
SEEDED_CHOICES = ("ranker", "blend", "content", "knn", "als")
TITLE_CHOICES = ("ranker", "blend", "title")
#: A generator alone or the blend replaces the ranker only when better by more than this
#: (validation NDCG; the ranker's wins elsewhere are worth a tie).
SELECT_MARGIN = 0.002


@dataclass
class _Batch:
    """Candidates and features of a batch of queries."""

    candidates: list[np.ndarray]  # int64 track indices per query
    features: list[np.ndarray]  # float32 (len(candidates[r]), len(FEATURES)) per query
    rows: list[int] = field(default_factory=list)  # training: the playlist row of each query


def _lookup(cols: np.ndarray, vals: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """``vals`` at ``wanted`` where ``cols`` (sorted) holds them, else 0."""
    out = np.zeros(wanted.size, dtype=np.float32)
    if cols.size:
        pos = np.minimum(np.searchsorted(cols, wanted), cols.size - 1)
        hit = cols[pos] == wanted
        out[hit] = vals[pos[hit]]
    return out


def _top_of_row(
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


def _ranks_desc(columns: np.ndarray) -> np.ndarray:
    """1-based rank of each value within its column, highest first, ties by position
    (float32, the shape of ``columns``): every column of a 2-D array in one sort."""
    order = np.argsort(-columns, axis=0, kind="stable")
    ranks = np.empty(columns.shape, dtype=np.float32)
    steps = np.arange(1, columns.shape[0] + 1, dtype=np.float32)[:, None]
    np.put_along_axis(ranks, order, np.broadcast_to(steps, columns.shape), axis=0)
    return ranks


class HybridRecommender(Recommender):
    """Candidate generation + LightGBM lambdarank re-ranking (see the module docstring).

    Parameters: ``candidates`` taken from each generator; ``content_candidates`` taken from
    the content model (0: content is a ranker feature only); ``popular`` most popular tracks
    always added; ``pseudo_seeds`` title tracks used as seeds when a query has none;
    ``name_candidates`` tracks taken per field (artist, album, song) that a title-only query
    names; ``name_seeds`` tracks of a named artist/album/song added to the pseudo-seeds;
    ``playlist_neighbors`` playlists that vote in the playlist-kNN; ``ranker_playlists``
    training playlists cut for the ranker (a sample at scale); ``folds`` rounds of cutting (0:
    3 on small catalogs, 1 on large); ``title_share`` of the cut playlists that keep only their
    title; ``negatives`` misses kept per training query; ``objective`` of LightGBM;
    ``min_ranker_playlists`` below which the fixed blend is used; ``refit_max_rows``: refit the
    generators on all data when the matrix has at most this many rows; ``n_estimators``,
    ``learning_rate``, ``num_leaves`` of the ranker; ``knn``, ``als``, ``title``, ``content``:
    parameters of the generators (over :data:`KNN_DEFAULTS`, :data:`ALS_DEFAULTS`,
    :data:`CONTENT_DEFAULTS`; ``content`` goes to :class:`segue.models.content.Model1`, so
    ``{"weights": {...}}`` sets its block weights); ``random_state`` seeds everything;
    ``num_threads`` (0 = all cores).

    Learned: ``knn_``, ``als_``, ``title_``, ``content_`` fitted generators; ``ranker_`` a
    LightGBM booster or None (blend); ``title_ranker_`` the booster for queries without seeds
    (or None: then ``ranker_``); ``prior_`` float32 (n_tracks,); ``artist_codes_``/
    ``album_codes_`` int64 (n_tracks,) dense codes (-1 unknown); ``artist_tracks_`` float32 CSR
    (n_artists, n_tracks); ``names_`` the snapshot's track names, quoted by explanations;
    ``name_index_`` the :class:`~segue.models.title.NameIndex` of the snapshot's names.

    Saved as ``model.json`` + ``state.npz`` (generators, name index and boosters) + ``content/`` (the
    content model's own files); the names quoted by explanations come from the snapshot given
    to ``load``.
    """

    name = "hybrid"
    _parameter_constraints: ClassVar[Constraints] = {
        **dict.fromkeys(
            ("candidates", "ranker_playlists", "n_estimators", "num_leaves", "playlist_neighbors"),
            (Interval(int, 1, None),),
        ),
        **dict.fromkeys(
            (
                "content_candidates",
                "popular",
                "pseudo_seeds",
                "name_candidates",
                "name_seeds",
                "min_ranker_playlists",
                "refit_max_rows",
                "folds",
                "negatives",
            ),
            (Interval(int, 0, None),),
        ),
        "title_share": [Interval(float, 0, 1)],
        "objective": [Options("lambdarank", "rank_xendcg", "binary")],
        **dict.fromkeys(("knn", "als", "title", "content"), (InstanceOf(dict), None)),
    }
    #: Per thread, the last single query's answer (see :meth:`_ranked_one`).
    _kept: threading.local | None = None
    #: The tuned content model answering queries with seeds alone, when chosen at fit.
    content_alone_: Model1 | None = None

    def __init__(
        self,
        *,
        candidates: int = 400,
        content_candidates: int = 50,
        popular: int = 50,
        pseudo_seeds: int = 10,
        name_candidates: int = 50,
        name_seeds: int = 5,
        playlist_neighbors: int = 200,
        ranker_playlists: int = 2000,
        folds: int = 0,
        title_share: float = 1 / 6,
        negatives: int = 300,
        objective: str = "rank_xendcg",
        min_ranker_playlists: int = 100,
        refit_max_rows: int = 5_000_000,
        n_estimators: int = 150,
        learning_rate: float = 0.1,
        num_leaves: int = 15,
        knn: dict[str, Any] | None = None,
        als: dict[str, Any] | None = None,
        title: dict[str, Any] | None = None,
        content: dict[str, Any] | None = None,
        random_state: int = 0,
        num_threads: int = 0,
        select: bool = True,
        progress: bool = True,
    ) -> None:
        self.candidates = candidates
        self.content_candidates = content_candidates
        self.popular = popular
        self.pseudo_seeds = pseudo_seeds
        self.name_candidates = name_candidates
        self.name_seeds = name_seeds
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
        self.content = content
        self.random_state = random_state
        self.num_threads = num_threads
        self.select = select
        self.progress = progress

    # fitting -------------------------------------------------------------------------------
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
        chosen = getattr(self, "content_chosen_", None)
        if chosen is not None:
            params.update(
                {
                    k: chosen[k]
                    for k in ("weights", "aggregate", "era_width", "popularity_width", "crowd_tags")
                }
            )
        params["tune"] = False
        return Model1(**params)

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
        self._content_matrix()
        self._kept = None

    def _say(self, message: str) -> None:
        if self.progress:
            log.info("hybrid: %s", message)

    def fit(self, snapshot: Any) -> Self:
        matrix = check_interactions(snapshot, self.name)
        fit_phase("popularity and names")
        self._fit_content(snapshot, matrix)
        self.fitted_ = True  # the candidate machinery below checks this
        self._kept = None
        self.mode_ = {"seeded": "ranker", "title": "ranker"}
        self.selection_ = {"how": "not measured"}
        # the content generator's settings, chosen once on the whole catalog's playlists
        self.content_chosen_: dict[str, Any] | None = None
        self.content_alone_ = None
        self.ranker_: Any = None
        self.title_ranker_: Any = None
        tuner = Model1(**{**CONTENT_DEFAULTS, **(self.content or {})})
        if tuner.tune:
            tuner.progress = self.progress
            tuner.random_state = self.random_state
            from segue.models.content import tune_content

            self.content_chosen_ = tune_content(tuner, snapshot)
        rng = np.random.default_rng(self.random_state)
        queries = self._training_queries(snapshot, matrix, rng)
        self.ranker_ = None
        self.title_ranker_ = None
        if queries is None:
            self._fit_generators(snapshot)
            self.mode_ = {"seeded": "blend", "title": "blend"}
            self.selection_ = {
                "how": f"fewer than {MIN_SELECT_PLAYLISTS} playlists of 11+ tracks to "
                "validate on: the fixed blend"
            }
            self._say(self.selection_["how"])
            return self
        seeds, titles, hidden = queries
        small = matrix.nnz <= self.refit_max_rows
        folds = self.folds or (3 if small else 1)
        fold_of = np.arange(len(seeds)) % folds
        can_rank = len(seeds) >= max(self.min_ranker_playlists, 1)
        # Queries measured against the generators alone: every fourth one when a ranker is
        # trained (it learns on the others first), all of them when only the blend can be.
        if not self.select:
            measured = np.zeros(len(seeds), dtype=bool)
        elif can_rank:
            measured = np.arange(len(seeds)) % 4 == 3
        else:
            measured = np.ones(len(seeds), dtype=bool)
        alone: dict[str, dict[int, np.ndarray]] = {}
        batch = _Batch([], [])
        positions: list[int] = []
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
            self._fit_generators(
                masked,
                alone=bool(measured[members].any()),
                stage=f"fold {fold + 1}/{folds} generators",
            )
            fit_phase(f"fold {fold + 1}/{folds}: candidates and features")
            part = self._batch([seeds[i] for i in members], [titles[i] for i in members])
            offset = len(batch.candidates)
            batch.candidates.extend(part.candidates)
            batch.features.extend(part.features)
            batch.rows.extend(self.train_rows_[members].tolist())
            positions.extend(members.tolist())
            self._alone(offset, members, measured, seeds, titles, alone)
        # from here on queries are numbered in batch order (fold by fold)
        pos = np.asarray(positions, dtype=np.int64)
        measured = measured[pos]
        seeds = [seeds[i] for i in pos]
        final_rng = copy.deepcopy(rng)
        if measured.any():
            if can_rank and not measured.all():
                train = _Batch(
                    [c for c, m in zip(batch.candidates, measured, strict=True) if not m],
                    [x for x, m in zip(batch.features, measured, strict=True) if not m],
                    [r for r, m in zip(batch.rows, measured, strict=True) if not m],
                )
                self._fit_rankers(train, hidden, copy.deepcopy(rng))
            self._choose(batch, measured, seeds, hidden, alone)
        if can_rank and "ranker" in self.mode_.values():
            self._fit_rankers(batch, hidden, final_rng)
        else:
            self.ranker_ = None
            self.title_ranker_ = None
        serve_alone = self.mode_["seeded"] == "content"
        if small or folds > 1:
            self._fit_generators(snapshot, alone=serve_alone, stage="final generators")
        else:
            self._set_playlists(matrix)  # what `load` will see
        if not serve_alone:
            self.content_alone_ = None  # not needed to serve: not kept, not saved
        return self

    def _fit_rankers(self, batch: _Batch, hidden: sp.csr_matrix, rng: np.random.Generator) -> None:
        fit_phase("ranker")
        self.ranker_ = self._train_ranker(
            batch, hidden, rng, seeded=True, min_groups=self.min_ranker_playlists // 2
        )
        # Queries without seeds (a title only) differ in kind: their own, smaller ranker.
        self.title_ranker_ = self._train_ranker(
            batch, hidden, rng, seeded=False, min_groups=max(self.min_ranker_playlists // 4, 10)
        )

    def _alone(
        self,
        offset: int,
        members: np.ndarray,
        measured: np.ndarray,
        seeds: list[np.ndarray],
        titles: list[str | None],
        out: dict[str, dict[int, np.ndarray]],
    ) -> None:
        """Each generator's own top :data:`SELECT_N` for the measured queries among ``members``
        (query numbers), keyed by batch position (``offset`` + position in ``members``)."""
        picked = [(offset + j, int(i)) for j, i in enumerate(members.tolist()) if measured[i]]
        seeded = [(b, i) for b, i in picked if seeds[i].size]
        seedless = [(b, i) for b, i in picked if not seeds[i].size]
        gens: dict[str, Recommender] = {
            "content": self.content_alone_ or self.content_,
            "knn": self.knn_,
            "als": self.als_,
        }
        for name, gen in gens.items():
            if seeded:
                ids, _ = gen.recommend_batch([seeds[i] for _, i in seeded], SELECT_N)
                out.setdefault(name, {}).update(zip([b for b, _ in seeded], ids, strict=True))
        if seedless:
            ids, _ = self.title_.recommend_batch(
                [seeds[i] for _, i in seedless],
                SELECT_N,
                titles=[titles[i] for _, i in seedless],
            )
            out.setdefault("title", {}).update(zip([b for b, _ in seedless], ids, strict=True))

    def _choose(
        self,
        batch: _Batch,
        measured: np.ndarray,
        seeds: list[np.ndarray],
        hidden: sp.csr_matrix,
        alone: dict[str, dict[int, np.ndarray]],
    ) -> None:
        """Measure the ranker, the blend and each generator alone on the measured queries; set
        ``mode_`` per kind of query to the best (the ranker unless beaten by SELECT_MARGIN)."""
        report: dict[str, Any] = {}
        for kind, choices in (("seeded", SEEDED_CHOICES), ("title", TITLE_CHOICES)):
            members = [
                i
                for i in np.flatnonzero(measured).tolist()
                if (seeds[i].size > 0) == (kind == "seeded")
            ]
            if not members:
                continue
            held = [
                hidden.indices[hidden.indptr[batch.rows[i]] : hidden.indptr[batch.rows[i] + 1]]
                for i in members
            ]
            ndcg: dict[str, float] = {}
            for choice in choices:
                if choice in ("ranker", "blend"):
                    no_ranker = self.ranker_ is None and (
                        kind == "seeded" or self.title_ranker_ is None
                    )
                    if choice == "ranker" and no_ranker:
                        continue
                    self.mode_[kind] = choice
                    sub = _Batch(
                        [batch.candidates[i] for i in members], [batch.features[i] for i in members]
                    )
                    values = self._score_batch(sub)
                    ids = np.full((len(members), SELECT_N), -1, dtype=np.int64)
                    for r, i in enumerate(members):
                        got, _ = merge_top_n(
                            sub.candidates[r],
                            values[r],
                            self.prior_,
                            self.order_,
                            SELECT_N,
                            np.unique(seeds[i]),
                        )
                        ids[r, : got.size] = got
                else:
                    rows = alone.get(choice, {})
                    if not all(i in rows for i in members):
                        continue
                    ids = np.vstack([rows[i] for i in members])
                ndcg[choice] = mean_ndcg(ids, held)
            ranker_score = ndcg.get("ranker", -1.0)
            best = max(ndcg, key=lambda c: ndcg[c])
            if "ranker" in ndcg and ndcg[best] <= ranker_score + SELECT_MARGIN:
                best = "ranker"
            self.mode_[kind] = best
            report[kind] = {
                "queries": len(members),
                "ndcg": {k: round(v, 4) for k, v in ndcg.items()},
                "chosen": best,
            }
        parts = []
        for kind, r in report.items():
            figures = ", ".join(f"{k} {v:.4f}" for k, v in r["ndcg"].items())
            parts.append(f"{kind} queries ({r['queries']}): {r['chosen']} [{figures}]")
        self.selection_ = {
            "how": "measured on held-out training playlists: " + "; ".join(parts),
            **report,
        }
        self._say(self.selection_["how"])

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
        self.names_ = TrackNames(snapshot, n_tracks)
        self.name_index_ = NameIndex(snapshot.tracks, self.log_counts_)

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
        if eligible.size < min(max(self.min_ranker_playlists, 1), MIN_SELECT_PLAYLISTS):
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
        if len(seeds) < min(max(self.min_ranker_playlists, 1), MIN_SELECT_PLAYLISTS):
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
    def _content_matrix(self) -> None:
        """What scoring candidates by content needs: the content model's feature matrix (float32
        CSR (n_tracks, n_features)), its blocks and their normalised weights."""
        features = self.content_.features_
        self._content_x = features.matrix
        self._genre_cols = features.blocks["genres"]
        self._content_blocks = [
            (cols, float(self.content_.weights_[block]))
            for block, cols in features.blocks.items()
            if cols.stop > cols.start and self.content_.weights_[block] > 0
        ]

    def _content_query(self, seeds: np.ndarray) -> np.ndarray:
        """float32 (n_features,): the seeds' playlist vector, per block scaled so that a
        track's dot product with it is the content model's score (weighted cosines)."""
        query = np.zeros(self._content_x.shape[1], dtype=np.float32)
        if seeds.size == 0:
            return query
        summed = sum_rows(self._content_x, seeds)
        for cols, weight in self._content_blocks:
            part = summed[cols]
            scale = (
                float(np.linalg.norm(part))
                if self.content_.aggregate_ == "sum"
                else float(seeds.size)
            )
            if scale > 0:
                query[cols] = part * np.float32(weight / scale)
        return query

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
                cov = _lookup(matches.tracks[field_name], matches.coverage[field_name], best)
                out.append(best[cov >= 0.999][:k])
        return np.concatenate(out) if out else np.empty(0, dtype=np.int64)

    def _code_share(self, seeds: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Codes among ``seeds`` (sorted int64) and the fraction of the seeds with each."""
        got = codes[seeds]
        cols, counts = np.unique(got[got >= 0], return_counts=True)
        scale = np.float32(1.0) / np.float32(max(seeds.size, 1))
        return cols, counts.astype(np.float32) * scale

    def _batch(self, seed_lists: Sequence[np.ndarray], titles: Sequence[str | None]) -> _Batch:
        with single_thread_blas():
            return self._batch_inner(seed_lists, titles)

    def _batch_inner(
        self, seed_lists: Sequence[np.ndarray], titles: Sequence[str | None]
    ) -> _Batch:
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
                picked = _top_of_row(
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
        out = _Batch([], [])
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
                _top_of_row(kc, kv, k, prefer),
                _top_of_row(tc, tv, k, prefer),
                _top_of_row(uc, uv, k, prefer),
            ]
            if als_top is not None:
                parts.append(als_top)
            if artist_cols.size:
                ac, av = sparse_sum_rows(self.artist_tracks_, artist_cols, artist_vals)
                parts.append(_top_of_row(ac, av, k, prefer))
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

    def _fill_features(
        self,
        x: np.ndarray,
        cands: np.ndarray,
        *,
        knn: tuple[np.ndarray, np.ndarray],
        uknn: tuple[np.ndarray, np.ndarray],
        title: tuple[np.ndarray, np.ndarray],
        als: np.ndarray | None,
        artist: tuple[np.ndarray, np.ndarray],
        album: tuple[np.ndarray, np.ndarray],
        content: np.ndarray,
        n_effective: int,
        n_seeds: int,
        has_title: bool,
        pseudo: bool,
        title_keys: float,
        title_best: float,
        title_count: tuple[np.ndarray, np.ndarray],
        names: NameMatches,
    ) -> None:
        """Write the :data:`FEATURES` of ``cands`` (int64 (m,)) into ``x`` (float32 (m, F)).

        The generators' scores come as sorted sparse rows ``(columns, values)``; ``als`` is the
        query's ALS user vector (float32 (factors,), None without one); ranks of all scored
        columns are taken in one sort.
        """
        c = COLUMN
        kc, kv = knn
        uc, uv = uknn
        tc, tv = title
        knn_val = _lookup(kc, kv, cands)
        uknn_val = _lookup(uc, uv, cands)
        title_val = _lookup(tc, tv, cands)
        als_val = (
            self.als_.item_factors_[cands] @ als
            if als is not None
            else np.zeros(cands.size, dtype=np.float32)
        )
        artist_share = _lookup(artist[0], artist[1], self.artist_codes_[cands])
        artist_share[self.artist_codes_[cands] < 0] = 0.0
        album_share = _lookup(album[0], album[1], self.album_codes_[cands])
        album_share[self.album_codes_[cands] < 0] = 0.0
        popularity = self.log_counts_[cands]
        content = np.asarray(content, dtype=np.float32)
        x[:, c["knn"]] = knn_val
        x[:, c["knn_ratio"]] = knn_val / kv.max() if kv.size else 0.0
        x[:, c["knn_mean"]] = knn_val / max(n_effective, 1)
        x[:, c["uknn"]] = uknn_val
        x[:, c["uknn_ratio"]] = uknn_val / uv.max() if uv.size else 0.0
        x[:, c["als"]] = als_val
        x[:, c["als_gap"]] = als_val - als_val.max()
        x[:, c["title"]] = title_val
        x[:, c["title_ratio"]] = title_val / tv.max() if tv.size else 0.0
        x[:, c["artist_share"]] = artist_share
        x[:, c["album_share"]] = album_share
        x[:, c["popularity"]] = popularity
        x[:, c["n_seeds"]] = n_seeds
        x[:, c["has_title"]] = float(has_title)
        x[:, c["pseudo_seeds"]] = float(pseudo)
        x[:, c["title_keys"]] = title_keys
        x[:, c["content"]] = content
        x[:, c["content_gap"]] = content - content.max()
        x[:, c["title_best"]] = title_best
        x[:, c["title_count"]] = _lookup(title_count[0], title_count[1], cands)
        for field_name in ("artist", "album", "track"):
            x[:, c[f"name_{field_name}"]] = _lookup(
                names.tracks[field_name], names.coverage[field_name], cands
            )
        ranked = np.column_stack(
            [knn_val, uknn_val, als_val, title_val, artist_share + 1e-3 * popularity, content]
        )
        ranks = _ranks_desc(ranked)
        for i, name in enumerate(
            ("knn_rank", "uknn_rank", "als_rank", "title_rank", "artist_rank", "content_rank")
        ):
            x[:, c[name]] = ranks[:, i]

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

    def _score_batch(self, batch: _Batch) -> list[np.ndarray]:
        """Final candidate scores, all above the popularity prior (>= 1)."""
        out: list[np.ndarray] = []
        for x in batch.features:
            if x.shape[0] == 0:
                out.append(np.empty(0, dtype=np.float32))
                continue
            ranker = self._ranker_for(x)
            if ranker is not None:
                raw = np.asarray(ranker.predict(x, num_threads=1), dtype=np.float64)
            else:
                cols = {name: x[:, COLUMN[name]] for name in BLEND}
                raw = sum(
                    (w * cols[name].astype(np.float64) for name, w in BLEND.items()),
                    np.zeros(x.shape[0]),
                )
            out.append((1.0 + raw - raw.min()).astype(np.float32))
        return out

    def _ranker_for(self, x: np.ndarray) -> Any:
        """The booster for a query's feature matrix (None: the blend)."""
        seedless = bool(x.shape[0]) and x[0, COLUMN["n_seeds"]] == 0
        mode = getattr(self, "mode_", None) or {}
        if mode.get("title" if seedless else "seeded", "ranker") == "blend":
            return None
        if seedless and self.title_ranker_ is not None:
            return self.title_ranker_
        return self.ranker_

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

    def _ranked_one(self, seeds: Any, title: str | None) -> tuple[np.ndarray, ...]:
        """One query: ``(seeds int64, candidates int64 (m,), features float32 (m, F), scores
        float32 (m,))``.

        Each thread keeps its last query's answer, keyed by the seeds and the title, so
        explaining the tracks just recommended does not run the pipeline again. Per thread, so
        that concurrent requests of a threaded server (one ``recommend`` then one
        ``explain_many`` per request) do not evict each other's answer.
        """
        self._check_fitted()
        seed_arr = as_seed_array(seeds, self.n_tracks)
        key = (seed_arr.tobytes(), title)
        kept = self._kept
        if kept is None:
            kept = self._kept = threading.local()
        last = getattr(kept, "last", None)
        if last is not None and last[0] == key:
            return last[1]  # type: ignore[no-any-return]
        seed_list, batch, values = self._ranked([seed_arr], [title])
        answer = (seed_list[0], batch.candidates[0], batch.features[0], values[0])
        kept.last = (key, answer)
        return answer

    def _generator_for(self, seeds: np.ndarray) -> Recommender | None:
        """The generator that answers this kind of query alone (``mode_``), or None."""
        mode = getattr(self, "mode_", None) or {}
        name = mode.get("seeded" if seeds.size else "title", "ranker")
        gens: dict[str, Recommender | None] = {
            "content": getattr(self, "content_alone_", None) or self.content_,
            "knn": self.knn_,
            "als": self.als_,
            "title": self.title_,
        }
        return gens.get(name)

    def describe_settings(self) -> str:
        """One line: how each kind of query is answered and why (chosen at fit)."""
        self._check_fitted()
        mode = getattr(self, "mode_", None) or {"seeded": "ranker", "title": "ranker"}
        how = (getattr(self, "selection_", None) or {}).get("how", "")
        return f"queries with seeds: {mode['seeded']}, title only: {mode['title']} ({how})"

    def _score(self, seeds: np.ndarray, *, title: str | None) -> np.ndarray:
        alone = self._generator_for(seeds)
        if alone is not None:
            return alone.scores(seeds, title=title)
        _, cands, _, values = self._ranked_one(seeds, title)
        out = self.prior_.copy()
        out[cands] = values
        return out

    def _select(
        self, seeds: np.ndarray, n: int, *, title: str | None, exclude: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        alone = self._generator_for(seeds)
        if alone is not None:
            return alone.recommend(seeds, n, title=title, exclude=exclude)
        seed_arr, cands, _, values = self._ranked_one(seeds, title)
        if exclude.size and cands.size:
            keep = ~np.isin(cands, exclude)
            cands, values = cands[keep], values[keep]
        if cands.size >= n and float(values.min()) > float(self.prior_[self.order_[0]]):
            # every candidate outscores every other track's prior: the top n are candidates
            # (ties by index, as merge_top_n breaks them: candidates are sorted)
            top = top_indices(values, n)
            return cands[top], values[top]
        drop = dropped(seed_arr, exclude)
        return merge_top_n(cands, values, self.prior_, self.order_, n, np.unique(drop))

    def _select_batch(
        self, seed_lists: list[np.ndarray], n: int, titles: list[str | None]
    ) -> tuple[np.ndarray, np.ndarray]:
        ids, vals = padded(len(seed_lists), n)
        routed: dict[int, list[int]] = {}
        for row, arr in enumerate(seed_lists):
            gen = self._generator_for(arr)
            if gen is not None:
                routed.setdefault(id(gen), []).append(row)
        # the kinds of query a generator answers alone go to it as one batch
        for rows in routed.values():
            gen = self._generator_for(seed_lists[rows[0]])
            assert gen is not None
            got_i, got_v = gen.recommend_batch(
                [seed_lists[r] for r in rows], n, titles=[titles[r] for r in rows]
            )
            ids[rows], vals[rows] = got_i, got_v
        taken = {r for rows in routed.values() for r in rows}
        rest = [r for r in range(len(seed_lists)) if r not in taken]
        if rest:
            got_i, got_v = self._ranker_batch(
                [seed_lists[r] for r in rest], n, [titles[r] for r in rest]
            )
            ids[rest], vals[rest] = got_i, got_v
        return ids, vals

    def _ranker_batch(
        self, seed_lists: list[np.ndarray], n: int, titles: list[str | None]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ranker's answer to each query, whatever ``mode_`` routes."""
        ids, vals = padded(len(seed_lists), n)
        step = 256  # bounds the candidate feature matrices held at once
        for lo in range(0, len(seed_lists), step):
            chunk = seed_lists[lo : lo + step]
            seeds, batch, values = self._ranked(chunk, titles[lo : lo + step])
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
        """Why each of ``tracks`` scored, in words that name tracks, artists and genres.

        Uses the candidates and features of the query's pipeline run (the one ``recommend``
        just made for the same seeds and title, else a new one).
        """
        self._check_fitted()
        wanted = np.asarray(tracks, dtype=np.int64).ravel()
        bad = wanted[(wanted < 0) | (wanted >= self.n_tracks)]
        if bad.size:
            raise IndexError(f"track index {int(bad[0])} out of range [0, {self.n_tracks})")
        alone = self._generator_for(as_seed_array(seeds, self.n_tracks))
        if alone is not None:
            why = f"{alone.name} alone (it beat the ranker on held-out playlists at fit)"
            return [f"{text} ({why})" for text in alone.explain_many(seeds, wanted, title=title)]
        seed_arr, cands, x, _ = self._ranked_one(seeds, title)
        real = np.unique(seed_arr)
        how = "ranked by the learned ranker" if self._ranker_for(x) is not None else "blended"
        pos = np.minimum(np.searchsorted(cands, wanted), max(cands.size - 1, 0))
        found = (cands[pos] == wanted) if cands.size else np.zeros(wanted.size, dtype=bool)
        rows = x[pos[found]] if cands.size else x[:0]
        feats = np.zeros((wanted.size, len(FEATURES)), dtype=np.float32)
        feats[found] = rows
        with_seeds = real.size > 0
        # seeds that share playlists with each track, strongest first (rows of the seeds only)
        contrib = entries(self.knn_.similarity_, real, wanted)
        shared = self._shared_terms(real, wanted) if with_seeds else [[] for _ in wanted]
        # the (at most two) seeds sharing most playlists with each track, named in one lookup
        best: list[np.ndarray] = []
        for j in range(wanted.size):
            col = contrib[:, j] if with_seeds else np.zeros(0, dtype=np.float32)
            order = np.lexsort((real, -col))[: min(int((col > 0).sum()), 2)]
            best.append(real[order])
        labels = iter(self.names_.describe(np.concatenate([*best, np.empty(0, np.int64)])))
        named = [join_words([next(labels) for _ in b]) for b in best]
        artists = self.names_.artists(wanted)
        out: list[str] = []
        for j in range(wanted.size):
            if not found[j]:
                out.append("not among the candidates of any generator: ranked by popularity")
                continue
            f = dict(zip(FEATURES, feats[j].tolist(), strict=True))
            reasons = []
            if f["knn"] > 0:
                reasons.append(
                    f"often in playlists with {named[j]} from your seeds"
                    if named[j]
                    else f"often in playlists with the best tracks named like {title!r}"
                )
            if f["uknn"] > 0:
                reasons.append(f"in playlists like this one (rank {int(f['uknn_rank'])})")
            if f["als"] != 0:
                reasons.append(f"fits the seeds' taste profile (ALS rank {int(f['als_rank'])})")
            if f["title"] > 0:
                reasons.append(f"in playlists named like {title!r}")
            if f["name_artist"] > 0:
                reasons.append(
                    f"by {artists[j]}, named in the title"
                    if artists[j]
                    else "its artist is named in the title"
                )
            if f["name_album"] > 0:
                reasons.append("from an album the title names")
            if f["name_track"] > 0:
                reasons.append("a song the title names")
            if f["artist_share"] > 0:
                reasons.append(
                    f"by {artists[j]}, like {f['artist_share']:.0%} of your seeds"
                    if artists[j]
                    else f"{f['artist_share']:.0%} of the seeds are by the same artist"
                )
            if shared[j]:
                reasons.append(
                    f"shares genres/tags with your seeds: {join_words(shared[j])} "
                    f"(content rank {int(f['content_rank'])})"
                )
            if not reasons:
                reasons.append("popular in many playlists")
            out.append(f"{'; '.join(reasons)} ({how})")
        return out

    def _shared_terms(
        self, seeds: np.ndarray, tracks: np.ndarray, limit: int = 3
    ) -> list[list[str]]:
        """Genres or tags each of ``tracks`` shares with ``seeds``, strongest first."""
        features = self.content_.features_
        cols = features.blocks["genres"]
        if cols.stop == cols.start:
            return [[] for _ in tracks.tolist()]
        x = self._content_x
        summed = sum_rows(x, seeds)[cols]
        # every entry of the tracks' rows at once: (owner row, term, strength), then the
        # strongest three per row (ties by term)
        pos = row_positions(x.indptr, tracks)
        owner = np.repeat(np.arange(tracks.size), x.indptr[tracks + 1] - x.indptr[tracks])
        terms = x.indices[pos].astype(np.int64) - cols.start
        inside = (terms >= 0) & (terms < cols.stop - cols.start)
        owner, terms = owner[inside], terms[inside]
        strength = x.data[pos][inside] * summed[terms]
        keep = strength > 0
        owner, terms, strength = owner[keep], terms[keep], strength[keep]
        order = np.lexsort((terms, -strength, owner))
        owner, terms = owner[order], terms[order]
        first = np.searchsorted(owner, np.arange(tracks.size))
        rank = np.arange(owner.size) - first[owner]
        out: list[list[str]] = [[] for _ in range(tracks.size)]
        names = features.feature_names
        for row, term in zip(
            owner[rank < limit].tolist(), terms[rank < limit].tolist(), strict=True
        ):
            out[row].append(names[cols.start + term].split(":", 1)[1])
        return out

    # persistence ---------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        """``model.json`` + ``state.npz`` (generators, boosters) + ``content/`` (content model)."""
        self._check_fitted()
        super().save(directory)
        meta_path = Path(directory) / "model.json"
        meta = json.loads(meta_path.read_text())
        meta["chosen"] = {
            "mode": getattr(self, "mode_", {"seeded": "ranker", "title": "ranker"}),
            "selection": getattr(self, "selection_", {}),
            "content": (
                self.content_alone_.chosen_
                if self.content_alone_ is not None
                else self.content_chosen_ or self.content_.chosen_
            ),
            "summary": self.describe_settings(),
        }
        meta_path.write_text(json.dumps(meta, indent=2))
        self.content_.save(Path(directory) / "content")
        if self.content_alone_ is not None:
            self.content_alone_.save(Path(directory) / "content_alone")

    @classmethod
    def load(cls, directory: Path, snapshot: Any) -> Self:
        model = super().load(directory, snapshot)
        content = Path(directory) / "content"
        if not (content / "model.json").exists():
            # a model saved before the content generator joined: its ranker expects other
            # features, so it must be rebuilt (NotFittedError: shells say "build it")
            raise NotFittedError(
                f"saved hybrid model in {directory} has no content model (an older format): "
                "refit it with `segue fit --model hybrid`"
            )
        for booster in (model.ranker_, model.title_ranker_):
            if booster is not None and booster.num_feature() != len(FEATURES):
                # saved before the ranker's features last changed (e.g. the title-name ones)
                raise NotFittedError(
                    f"saved hybrid model in {directory} ranks with {booster.num_feature()} "
                    f"features, this version with {len(FEATURES)} (an older format): "
                    "refit it with `segue fit --model hybrid`"
                )
        model.content_ = Model1.load(content, snapshot)
        alone = Path(directory) / "content_alone"
        model.content_alone_ = (
            Model1.load(alone, snapshot) if (alone / "model.json").exists() else None
        )
        chosen = json.loads((Path(directory) / "model.json").read_text()).get("chosen") or {}
        model.mode_ = chosen.get("mode") or {"seeded": "ranker", "title": "ranker"}
        model.selection_ = chosen.get("selection") or {"how": "saved before measuring"}
        model._content_matrix()
        model._kept = None
        return model

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
        arrays.update({f"names__{k}": v for k, v in self.name_index_.state_arrays().items()})
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
        matrix = check_interactions(snapshot, self.name)
        # the loaded snapshot's own transpose (mapped: shared between processes) when the
        # matrix is the snapshot's (no copy was needed to make it binary)
        self._set_playlists(
            matrix,
            snapshot.interactions_t()
            if matrix is getattr(snapshot, "interactions", None)
            else None,
        )
        self.names_ = TrackNames(snapshot, int(self.prior_.shape[0]))
        saved = {k.split("__", 1)[1]: v for k, v in arrays.items() if k.startswith("names__")}
        # a model saved before the index was: built again from the snapshot
        self.name_index_ = (
            NameIndex.from_state(saved) if saved else NameIndex(snapshot.tracks, self.log_counts_)
        )
        import lightgbm as lgb

        self.ranker_ = self.title_ranker_ = None
        if "ranker" in arrays:
            self.ranker_ = lgb.Booster(model_str=arrays["ranker"].tobytes().decode())
        if "title_ranker" in arrays:
            self.title_ranker_ = lgb.Booster(model_str=arrays["title_ranker"].tobytes().decode())
        self.fitted_ = True


__all__ = ["FEATURES", "HybridRecommender", "csr_arrays", "csr_from_arrays"]
