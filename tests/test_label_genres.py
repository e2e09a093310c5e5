"""Genres made from playlist labels: validation on a catalog's own playlists never scores a
playlist with the genres its own labels gave; held-out tracks never keep the counts of the
playlist they were hidden from; Model 2 is measured as an answer of its own when no ranker
can be trained."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from segue.models import content
from segue.models.content import Model1
from segue.models.hybrid import HybridRecommender
from segue.snapshot.arrays import Snapshot
from segue.snapshot.derived import (
    GENRE_LABELS,
    has_playlist_labels,
    with_interactions,
    without_playlist_labels,
)

from .test_hybrid import N_CLUSTERS, clustered_snapshot, small_params


def small_catalog() -> Snapshot:
    """Three artists; playlist 0 (label rock) holds artists 1 and 2, playlist 1 (label pop)
    holds artist 1. Artist 2 also has a genre of its own (jazz), artist 3 only its own."""
    tracks = pd.DataFrame(
        {
            "track_id": ["a" * 22, "b" * 22, "c" * 22],
            "name": ["x", "y", "z"],
            "artist_key": [1, 2, 3],
            "artist_name": ["A", "B", "C"],
        }
    )
    artists = pd.DataFrame({"artist_key": [1, 2, 3], "name": ["A", "B", "C"]}).assign(
        genres=[["rock", "pop"], ["rock", "jazz"], ["folk"]]
    )
    playlists = pd.DataFrame({"pid": [0, 1], "name": ["p", "q"], GENRE_LABELS: [["rock"], ["pop"]]})
    return Snapshot.from_frames(
        tracks, artists, playlists, (np.array([0, 0, 1]), np.array([0, 1, 0]))
    )


def test_a_playlists_labels_leave_only_the_artists_it_alone_gave_them() -> None:
    snap = small_catalog()
    assert has_playlist_labels(snap)
    without_rock = without_playlist_labels(snap, [0])
    assert without_rock.artists["genres"].tolist() == [["pop"], ["jazz"], ["folk"]]
    without_pop = without_playlist_labels(snap, [1])
    assert without_pop.artists["genres"].tolist() == [["rock"], ["rock", "jazz"], ["folk"]]
    # the snapshot itself is untouched, and no labels means nothing to take away
    assert snap.artists["genres"].tolist() == [["rock", "pop"], ["rock", "jazz"], ["folk"]]
    plain = Snapshot.from_frames(
        snap.tracks,
        snap.artists.reset_index(),
        snap.playlists[["pid", "name"]],
        (
            np.array([0, 0, 1]),
            np.array([0, 1, 0]),
        ),
    )
    assert not has_playlist_labels(plain)
    assert without_playlist_labels(plain, [0]) is plain


def test_hidden_tracks_lose_the_count_of_the_playlist_they_were_hidden_from() -> None:
    snap = small_catalog()
    hidden = sp.csr_matrix(np.array([[1, 0, 0], [1, 0, 0]], dtype=np.float32))
    view = with_interactions(snap, hidden)
    assert view.tracks["playlist_count"].tolist() == [2, 0, 0]
    assert snap.tracks["playlist_count"].tolist() == [2, 1, 0]
    assert view.interactions is hidden and snap.interactions is not hidden


def labelled_noise(seed: int = 0) -> Snapshot:
    """60 playlists of 20 tracks drawn at random from 5000 tracks (one artist each): nothing
    to learn. Each playlist has a label of its own, given as a genre to its artists, so the
    genres name exactly the playlists an artist is in."""
    rng = np.random.default_rng(seed)
    n_tracks, n_playlists = 5000, 60
    rows, cols = [], []
    for p in range(n_playlists):
        picked = rng.choice(n_tracks, size=20, replace=False)
        rows += [p] * 20
        cols += picked.tolist()
    labels = [[f"label{p}"] for p in range(n_playlists)]
    genres: dict[int, list[str]] = {}
    for p, t in zip(rows, cols, strict=True):
        genres.setdefault(t, []).append(labels[p][0])
    tracks = pd.DataFrame(
        {
            "track_id": [f"{i:022d}" for i in range(n_tracks)],
            "name": [f"song {i}" for i in range(n_tracks)],
            "artist_key": np.arange(n_tracks),
            "artist_name": [f"artist {i}" for i in range(n_tracks)],
            "popularity": rng.integers(0, 100, n_tracks).astype(float),
            "release_year": rng.integers(1960, 2020, n_tracks),
            "danceability": rng.random(n_tracks),
            "energy": rng.random(n_tracks),
        }
    )
    artists = pd.DataFrame(
        {
            "artist_key": np.arange(n_tracks),
            "name": [f"artist {i}" for i in range(n_tracks)],
            "genres": [sorted(genres.get(i, [])) for i in range(n_tracks)],
        }
    )
    playlists = pd.DataFrame(
        {"pid": np.arange(n_playlists), "name": [None] * n_playlists, GENRE_LABELS: labels}
    )
    return Snapshot.from_frames(tracks, artists, playlists, (np.array(rows), np.array(cols)))


def test_settings_are_not_chosen_on_the_held_out_playlists_own_labels() -> None:
    """Genres that only name playlists predict nothing on a new playlist. Scored with their own
    labels, held-out playlists would make the genre block look near perfect; with each
    fold's labels taken away, it is as good as chance."""
    snap = labelled_noise()
    told = content.choose_settings(Model1(progress=False, tune_budget=1), snap)
    untold = content.choose_settings(
        Model1(progress=False, tune_budget=1),
        Snapshot.from_frames(
            snap.tracks,
            snap.artists.reset_index(),
            snap.playlists[["pid", "name"]],
            snap.interactions.nonzero(),
        ),
    )
    # the leak, as it would be measured without knowing where the genres came from
    assert untold["validation_ndcg"] > 0.5
    # 500 of 5000 tracks at random: about 0.05
    assert told["validation_ndcg"] < 0.1


def measuring_params() -> dict[str, Any]:
    """Small hybrid parameters that measure the generators alone at fit."""
    return {
        **small_params(),
        "n_estimators": 20,
        "als": {"factors": 6, "iterations": 4},
        "select": True,
    }


class _Recording(HybridRecommender):
    """Checks, at every fit of its generators, that the counts the features read are those of
    the playlists the generators see."""

    seen: list[tuple[np.ndarray, np.ndarray]]

    def _fit_generators(self, snapshot: Any, **kwargs: Any) -> None:
        counts = np.bincount(snapshot.interactions.indices, minlength=snapshot.n_tracks)
        self.seen.append((counts, np.expm1(self.log_counts_)))
        super()._fit_generators(snapshot, **kwargs)


def test_fold_features_count_only_the_folds_playlists() -> None:
    snap = clustered_snapshot(n_playlists=240, genres=True)
    params = measuring_params()
    model = _Recording(**params)  # type: ignore[arg-type]
    model.seen = []
    model.fit(snap)
    folds = [s for s in model.seen[:-1]]  # the last fit is on the whole catalog
    assert len(folds) == 3
    for counts, features in folds:
        np.testing.assert_allclose(features, counts, rtol=1e-5, atol=1e-4)
    whole = np.bincount(snap.interactions.indices, minlength=snap.n_tracks)
    assert any((counts != whole).any() for counts, _ in folds)
    np.testing.assert_allclose(np.expm1(model.log_counts_), whole, rtol=1e-5, atol=1e-4)


def test_model2_is_measured_when_no_ranker_can_be_trained(tmp_path: Path) -> None:
    snap = clustered_snapshot(n_playlists=24, genres=True)
    params = measuring_params()
    model = HybridRecommender(**params).fit(snap)  # type: ignore[arg-type]
    seeded = model.selection_["seeded"]
    assert "model2" in seeded["ndcg"]
    assert model.model2_chosen_ is None or model.mode_["seeded"] == "model2"
    # answered by Model 2 (forced here when it was not the best), it survives a save
    model.mode_["seeded"] = "model2"
    model.model2_alone_ = model._model2_alone().fit(snap)
    seeds = np.array([40, 41, 42])
    ids, _ = model.recommend(seeds, 10)
    assert ids.tolist() == model.model2_alone_.recommend(seeds, 10)[0].tolist()
    model.save(tmp_path / "hybrid")
    assert (tmp_path / "hybrid" / "model2_alone" / "model.json").exists()
    loaded = HybridRecommender.load(tmp_path / "hybrid", snap)
    assert loaded.mode_["seeded"] == "model2"
    assert loaded.recommend(seeds, 10)[0].tolist() == ids.tolist()


def test_without_a_ranker_each_fold_is_measured_by_settings_searched_without_it(
    monkeypatch: Any,
) -> None:
    """The content models answering alone are compared on the playlists their settings were
    searched on unless each fold's settings are searched again without the fold: Model 1
    searches more settings than Model 2, so its own best score flatters it."""
    snap = clustered_snapshot(n_playlists=60, genres=True)
    calls: list[tuple[str, sp.csr_matrix]] = []
    whole_choice: dict[str, dict[str, Any]] = {}
    real = content.tune_content

    def recording(model: Any, snapshot: Snapshot) -> dict[str, Any]:
        calls.append((type(model).__name__, sp.csr_matrix(snapshot.interactions)))
        chosen = real(model, snapshot)
        if snapshot.interactions is snap.interactions:
            whole_choice[type(model).__name__] = chosen
        return chosen

    monkeypatch.setattr(content, "tune_content", recording)
    params = {**measuring_params(), "content": {"tune_budget": 10**7}}
    model = HybridRecommender(**params).fit(snap)  # type: ignore[arg-type]
    whole = [m for m, x in calls if (x != snap.interactions).nnz == 0]
    assert sorted(whole) == ["Model1", "Model2"]
    folds = [(m, x) for m, x in calls if (x != snap.interactions).nnz > 0]
    assert sorted(m for m, _ in folds) == ["Model1"] * 3 + ["Model2"] * 3
    rows = model.train_rows_
    fold_of = np.arange(rows.size) % 3
    for fold in range(3):
        left_out = rows[fold_of == fold]
        own = [x for _m, x in folds if np.diff(x.indptr)[left_out].sum() == 0]
        # both models' searches of this fold saw none of its playlists and all the others
        assert len(own) == 2
        others = np.setdiff1d(np.arange(snap.interactions.shape[0]), left_out)
        for x in own:
            assert (x[others] != snap.interactions[others]).nnz == 0
    # what serves is the whole catalog's choice
    assert model.content_chosen_ == whole_choice["Model1"]
    assert model.model2_chosen_ in (None, whole_choice["Model2"])


def test_blocks_kept_between_builds_change_nothing() -> None:
    from segue.snapshot.features import BlockMemo, build_content_features

    snap = labelled_noise()
    views = [snap, without_playlist_labels(snap, list(range(10)))]
    assert views[1].artists["genres"].tolist() != snap.artists["genres"].tolist()
    shared: dict[tuple[Any, ...], Any] = {}
    memos = [BlockMemo(tracks=shared) for _ in views]
    for era, width, tags in [(10, 5, "all"), (50, 10, "missing"), (10, 10, "none"), (10, 5, "all")]:
        for view, memo in zip(views, memos, strict=True):
            settings = {"era_width": era, "popularity_width": width, "crowd_tag_mode": tags}
            fresh = build_content_features(view, **settings)  # type: ignore[arg-type]
            kept = build_content_features(view, **settings, memo=memo)  # type: ignore[arg-type]
            assert (fresh.matrix != kept.matrix).nnz == 0
            assert fresh.feature_names == kept.feature_names
            assert fresh.blocks == kept.blocks
            np.testing.assert_array_equal(fresh.genre_source, kept.genre_source)
    assert memos[0].genres and memos[1].genres and memos[0].genres is not memos[1].genres


def test_held_out_playlists_tag_no_track_with_their_own_title() -> None:
    from segue.snapshot.derived import crowd_tags, without_titles

    snap = clustered_snapshot(n_playlists=40)
    words = {w for tags in crowd_tags(snap) for w in tags}
    # cluster 0's playlists (titled by their cluster): untitled, their title words tag no
    # track, as a query playlist's would not
    cluster0 = list(range(0, 40, N_CLUSTERS))
    view = without_titles(snap, cluster0)
    assert view.playlists["name"].iloc[cluster0].isna().all()
    assert snap.playlists["name"].iloc[cluster0].notna().all()
    left = {w for tags in crowd_tags(view) for w in tags}
    lost = words - left
    assert lost and all(
        any(w in str(snap.playlists["name"].iloc[r]).lower() for r in cluster0) for w in lost
    )
    assert without_titles(snap, []) is snap
