"""The hybrid recommender: its parameters, ``fit``, the query interface and persistence."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from segue.core.errors import NotFittedError
from segue.models.als import ALSRecommender
from segue.models.base import Recommender, dropped, fit_phase
from segue.models.content import Model1, Model2
from segue.models.hybrid.candidates import CONTENT_DEFAULTS
from segue.models.hybrid.explain import Explanations
from segue.models.hybrid.features import FEATURES, Batch
from segue.models.hybrid.ranker import MIN_SELECT_PLAYLISTS
from segue.models.itemknn import (
    ItemKNNRecommender,
    TrackNames,
    check_interactions,
    check_state_tracks,
    csr_arrays,
    csr_from_arrays,
)
from segue.models.params import Constraints, InstanceOf, Interval, Options
from segue.models.title import NameIndex, TitleRecommender
from segue.models.topn import merge_top_n, padded, saved_order, top_indices
from segue.snapshot.derived import with_interactions, without_playlist_labels


class HybridRecommender(Explanations):
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

    def fit(self, snapshot: Any) -> Self:
        matrix = check_interactions(snapshot, self.name)
        fit_phase("popularity and names")
        self._fit_content(snapshot, matrix)
        self.fitted_ = True  # the candidate machinery below checks this
        self._kept = None
        self.mode_ = {"seeded": "ranker", "title": "ranker"}
        self.selection_ = {"how": "not measured"}
        # the content generator's settings, chosen once on the whole catalog's playlists
        self.content_chosen_ = None
        self.content_alone_ = None
        self.model2_chosen_ = None
        self.model2_alone_ = None
        self.ranker_ = None
        self.title_ranker_ = None
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
        if not can_rank and self.select and tuner.tune:
            # No ranker to learn which blocks matter here: Model 2 (equal weights, tuned)
            # is measured beside the genre-led content model as an answer of its own.
            model2 = Model2(**{**CONTENT_DEFAULTS, **(self.content or {})})
            model2.weights = None
            model2.progress = self.progress
            model2.random_state = self.random_state
            from segue.models.content import tune_content

            self.model2_chosen_ = tune_content(model2, snapshot)
        # Queries measured against the generators alone: every fourth one when a ranker is
        # trained (it learns on the others first), all of them when only the blend can be.
        if not self.select:
            measured = np.zeros(len(seeds), dtype=bool)
        elif can_rank:
            measured = np.arange(len(seeds)) % 4 == 3
        else:
            measured = np.ones(len(seeds), dtype=bool)
        alone: dict[str, dict[int, np.ndarray]] = {}
        batch = Batch([], [])
        positions: list[int] = []
        # Without a ranker the choice is between content models whose settings were searched
        # on these same playlists (Model 1 over more settings than Model 2), so each fold's
        # content models are tuned again without the fold's playlists: the measure is then
        # out of sample, not the search's own best score.
        nested = not can_rank and self.select and folds > 1 and self.content_chosen_ is not None
        whole = (self.content_chosen_, self.model2_chosen_)
        for fold in range(folds):
            members = np.flatnonzero(fold_of == fold)
            if nested:
                self.content_chosen_, self.model2_chosen_ = self._tune_without(
                    snapshot, self.train_rows_[members], fold, folds
                )
            # Hide only this fold's held-out tracks: the generators keep the rest of the
            # data, as they will at serving time, and every query is scored by generators
            # that never saw its hidden tracks.
            keep_rows = np.zeros(matrix.shape[0], dtype=np.float32)
            keep_rows[self.train_rows_[members]] = 1.0
            hidden_fold = sp.csr_matrix(sp.diags(keep_rows) @ hidden)
            # genres this fold's playlists gave as labels are not theirs to see either
            kept = sp.csr_matrix(matrix - hidden_fold)
            kept.eliminate_zeros()
            masked = with_interactions(
                without_playlist_labels(snapshot, self.train_rows_[members]), kept
            )
            # the counts the features read, without the hidden tracks: a hidden track must
            # not look more played because of the playlist it was hidden from
            self._count(masked.interactions)
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
        self._count(matrix)  # the whole catalog's counts, to serve
        self.content_chosen_, self.model2_chosen_ = whole
        # from here on queries are numbered in batch order (fold by fold)
        pos = np.asarray(positions, dtype=np.int64)
        measured = measured[pos]
        seeds = [seeds[i] for i in pos]
        final_rng = copy.deepcopy(rng)
        if measured.any():
            if can_rank and not measured.all():
                train = Batch(
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
        serve_alone = self.mode_["seeded"] in ("content", "model2")
        if self.mode_["seeded"] != "model2":
            self.model2_chosen_ = None  # only the model that serves is fitted again
        if small or folds > 1:
            self._fit_generators(snapshot, alone=serve_alone, stage="final generators")
        else:
            self._set_playlists(matrix)  # what `load` will see
        # only the model that answers alone is kept and saved
        if self.mode_["seeded"] != "content":
            self.content_alone_ = None
        if self.mode_["seeded"] != "model2":
            self.model2_alone_ = None
        return self

    def _tune_without(
        self, snapshot: Any, rows: np.ndarray, fold: int, folds: int
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """The content models' settings searched on the catalog without ``rows``' playlists."""
        from segue.models.content import tune_content

        fit_phase(f"fold {fold + 1}/{folds}: content settings without the fold's playlists")
        keep = np.ones(snapshot.interactions.shape[0], dtype=np.float32)
        keep[rows] = 0.0
        matrix = sp.csr_matrix(sp.diags(keep) @ snapshot.interactions)
        matrix.eliminate_zeros()
        view = with_interactions(snapshot, matrix)
        chosen: list[dict[str, Any] | None] = []
        for kind, done in ((Model1, self.content_chosen_), (Model2, self.model2_chosen_)):
            if done is None:
                chosen.append(None)
                continue
            model = kind(**{**CONTENT_DEFAULTS, **(self.content or {})})
            if kind is Model2:
                model.weights = None
            model.progress = False
            model.random_state = self.random_state
            chosen.append(tune_content(model, view))
        return chosen[0], chosen[1]

    @property
    def n_tracks(self) -> int:
        self._check_fitted()
        return int(self.prior_.shape[0])

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
                else self.model2_alone_.chosen_
                if self.model2_alone_ is not None
                else self.content_chosen_ or self.content_.chosen_
            ),
            "summary": self.describe_settings(),
        }
        meta_path.write_text(json.dumps(meta, indent=2))
        self.content_.save(Path(directory) / "content")
        if self.content_alone_ is not None:
            self.content_alone_.save(Path(directory) / "content_alone")
        if self.model2_alone_ is not None:
            self.model2_alone_.save(Path(directory) / "model2_alone")

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
        alone2 = Path(directory) / "model2_alone"
        model.model2_alone_ = (
            Model2.load(alone2, snapshot) if (alone2 / "model.json").exists() else None
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
            # derived, saved so that loading maps them (shared between processes)
            "order": self.order_,
            **csr_arrays("artist_tracks", self.artist_tracks_),
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
        self.order_ = saved_order(arrays, "order", self.prior_)
        self.log_counts_ = np.asarray(arrays["log_counts"], dtype=np.float32)
        self.artist_codes_ = np.asarray(arrays["artist_codes"], dtype=np.int64)
        self.album_codes_ = np.asarray(arrays["album_codes"], dtype=np.int64)
        n_artists = int(self.artist_codes_.max(initial=-1)) + 1
        shape = arrays.get("artist_tracks_shape")
        if shape is not None and shape.tolist() == [n_artists, self.prior_.shape[0]]:
            self.artist_tracks_ = csr_from_arrays("artist_tracks", arrays)
        else:  # a model saved before the matrix was
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


__all__ = ["HybridRecommender"]
