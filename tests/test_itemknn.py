"""Item-item kNN: known answers on cluster data, the re-weighting formula, ties, persistence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from segue.models.itemknn import ItemKNNRecommender, seed_matrix
from segue.models.topn import top_n
from segue.snapshot.arrays import Snapshot


def cluster_snapshot(
    n_clusters: int = 3, tracks_per: int = 20, playlists_per: int = 15, seed: int = 0
) -> Snapshot:
    """Playlists drawn from one cluster of tracks each; cluster c holds tracks c*tracks_per..."""
    rng = np.random.default_rng(seed)
    n_tracks = n_clusters * tracks_per + 5  # the last 5 tracks are in no playlist
    rows_p, rows_t = [], []
    p = 0
    for c in range(n_clusters):
        for _ in range(playlists_per):
            picked = rng.choice(tracks_per, size=8, replace=False) + c * tracks_per
            rows_p.extend([p] * picked.size)
            rows_t.extend(picked.tolist())
            p += 1
    tracks = pd.DataFrame({"track_id": [f"{i:022d}" for i in range(n_tracks)]})
    artists = pd.DataFrame(
        {"artist_key": np.arange(n_tracks), "name": [f"a{i}" for i in range(n_tracks)]}
    )
    playlists = pd.DataFrame({"pid": np.arange(p), "name": [f"mix {i}" for i in range(p)]})
    return Snapshot.from_frames(
        tracks, artists, playlists, (np.asarray(rows_p), np.asarray(rows_t))
    )


@pytest.fixture(scope="module")
def snapshot() -> Snapshot:
    return cluster_snapshot()


def test_cluster_seeds_get_their_cluster(snapshot: Snapshot) -> None:
    model = ItemKNNRecommender(neighbors=50).fit(snapshot)
    for cluster in range(3):
        seeds = np.arange(cluster * 20, cluster * 20 + 3)
        ids, scores = model.recommend(seeds, 10)
        assert ids.size == 10
        assert np.all(ids // 20 == cluster), ids
        assert not np.isin(ids, seeds).any()
        assert np.all(np.diff(scores) <= 0)


def test_similarity_follows_the_formula() -> None:
    # 4 playlists over 4 tracks: counts n = [3, 2, 2, 1], co-occurrences known by hand.
    x = sp.csr_matrix(
        np.array([[1, 1, 0, 0], [1, 1, 1, 0], [1, 0, 1, 1], [0, 0, 0, 0]], dtype=np.float32)
    )
    snap = Snapshot.from_frames(
        pd.DataFrame({"track_id": [f"{i:022d}" for i in range(4)]}),
        pd.DataFrame({"artist_key": np.arange(4), "name": list("abcd")}),
        pd.DataFrame({"pid": np.arange(4)}),
        x,
    )
    shrink, alpha, power = 2.0, 0.7, 1.5
    model = ItemKNNRecommender(neighbors=10, shrink=shrink, alpha=alpha, power=power).fit(snap)
    dense = x.toarray()
    co = dense.T @ dense
    n = dense.sum(axis=0)
    expected = (co / (n[:, None] ** alpha * n[None, :] ** (1 - alpha) + shrink)) ** power
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(model.similarity_.toarray(), expected, rtol=1e-5)
    # the score of a playlist is the sum over its seeds
    np.testing.assert_allclose(
        model.raw_scores([np.array([0, 3])]).toarray()[0], expected[0] + expected[3], rtol=1e-5
    )


def test_neighbors_caps_each_row(snapshot: Snapshot) -> None:
    model = ItemKNNRecommender(neighbors=3).fit(snapshot)
    assert np.diff(model.similarity_.indptr).max() <= 3
    assert model.similarity_.diagonal().sum() == 0


def test_no_seeds_and_unplayed_tracks_rank_by_popularity(snapshot: Snapshot) -> None:
    model = ItemKNNRecommender().fit(snapshot)
    counts = snapshot.tracks["playlist_count"].to_numpy()
    ids, _ = model.recommend(np.array([], dtype=np.int64), 8)
    assert ids.tolist() == np.lexsort((np.arange(counts.size), -counts))[:8].tolist()
    # a seed that shares no playlist with anything still gets a full popular answer
    lonely = np.array([snapshot.n_tracks - 1])
    ids, _ = model.recommend(lonely, 8)
    assert ids.size == 8 and lonely[0] not in ids


def test_batch_equals_single_and_dense_scores(snapshot: Snapshot) -> None:
    model = ItemKNNRecommender().fit(snapshot)
    seed_lists = [
        np.array([0, 1]),
        np.array([], dtype=np.int64),
        np.array([25, 61]),
        np.array([44]),
    ]
    ids, _ = model.recommend_batch(seed_lists, 12)
    for row, seeds in enumerate(seed_lists):
        one_ids, _ = model.recommend(seeds, 12)
        assert ids[row].tolist() == one_ids.tolist()
        want_ids, _ = top_n(model.scores(seeds), 12, seeds)
        assert want_ids.tolist() == one_ids.tolist()


def test_seed_matrix_is_binary_and_deduplicated() -> None:
    m = seed_matrix([np.array([3, 3, 1]), np.array([], dtype=np.int64)], 5)
    assert m.shape == (2, 5)
    assert m.toarray().tolist() == [[0, 1, 0, 1, 0], [0, 0, 0, 0, 0]]


def test_save_load_round_trip(snapshot: Snapshot, tmp_path: Path) -> None:
    model = ItemKNNRecommender(neighbors=7, shrink=1.0).fit(snapshot)
    model.save(tmp_path / "m")
    loaded = ItemKNNRecommender.load(tmp_path / "m", snapshot)
    assert loaded.neighbors == 7
    assert (loaded.similarity_ != model.similarity_).nnz == 0
    a = model.recommend(np.array([2, 5]), 10)
    b = loaded.recommend(np.array([2, 5]), 10)
    assert a[0].tolist() == b[0].tolist()


def test_bad_parameters_and_input(snapshot: Snapshot) -> None:
    with pytest.raises(ValueError, match="neighbors"):
        ItemKNNRecommender(neighbors=0).fit(snapshot)
    with pytest.raises(ValueError, match="alpha"):
        ItemKNNRecommender(alpha=1.5).fit(snapshot)
    with pytest.raises(TypeError, match="Snapshot"):
        ItemKNNRecommender().fit(np.zeros((3, 3)))
    model = ItemKNNRecommender().fit(snapshot)
    with pytest.raises(ValueError, match="n must be"):
        model.recommend(np.array([0]), -1)
    with pytest.raises(IndexError):
        model.explain(np.array([0]), snapshot.n_tracks)
    assert "seed" in model.explain(np.array([0, 1]), 2) or "popular" in model.explain(
        np.array([0, 1]), 2
    )


def test_min_count_leaves_rare_tracks_out(snapshot: Snapshot) -> None:
    counts = snapshot.tracks["playlist_count"].to_numpy()
    cutoff = int(np.median(counts[counts > 0]))
    model = ItemKNNRecommender(min_count=cutoff).fit(snapshot)
    rare = np.flatnonzero(counts < cutoff)
    sim = model.similarity_.tocsc()
    assert sim[:, rare].nnz == 0 and model.similarity_[rare].nnz == 0
    assert model.similarity_.nnz > 0
    with pytest.raises(ValueError, match="min_count"):
        ItemKNNRecommender(min_count=0).fit(snapshot)
