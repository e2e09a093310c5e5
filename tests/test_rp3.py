"""RP3beta: the walk weights by hand and against a dense reference, the popularity discount,
the prior under every walk score, explanations, parameters and persistence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from segue.models.params import ParameterError
from segue.models.registry import MODELS, load_model, save_model
from segue.models.rp3 import RP3betaRecommender, rp3beta_similarity
from segue.snapshot.arrays import Snapshot


def snapshot_of(playlists: list[list[int]], n_tracks: int) -> Snapshot:
    rows_p = [p for p, tracks in enumerate(playlists) for _ in tracks]
    rows_t = [t for tracks in playlists for t in tracks]
    tracks = pd.DataFrame(
        {
            "track_id": [f"{i:022d}" for i in range(n_tracks)],
            "name": [f"song {i}" for i in range(n_tracks)],
            "artist_key": np.arange(n_tracks),
            "artist_name": [f"artist {i}" for i in range(n_tracks)],
        }
    )
    artists = pd.DataFrame(
        {"artist_key": np.arange(n_tracks), "name": [f"artist {i}" for i in range(n_tracks)]}
    )
    frame = pd.DataFrame(
        {"pid": np.arange(len(playlists)), "name": [f"mix {i}" for i in range(len(playlists))]}
    )
    return Snapshot.from_frames(
        tracks, artists, frame, (np.asarray(rows_p, dtype=np.int64), np.asarray(rows_t))
    )


#: 3 playlists over 5 tracks: track counts n = [3, 2, 2, 1, 0], playlist lengths [2, 3, 3].
TINY = [[0, 1], [0, 1, 2], [0, 2, 3]]


def tiny_matrix() -> sp.csr_matrix:
    dense = np.zeros((len(TINY), 5), dtype=np.float32)
    for p, tracks in enumerate(TINY):
        dense[p, tracks] = 1.0
    return sp.csr_matrix(dense)


def reference(matrix: sp.csr_matrix, alpha: float, beta: float) -> np.ndarray:
    """W of the module docstring, dense, diagonal zeroed: P_ip ** alpha @ P_pj ** alpha / n_j ** beta."""
    a = matrix.toarray().astype(np.float64)
    n = a.sum(axis=0)
    length = a.sum(axis=1)
    p_ip = np.divide(a.T, n[:, None], out=np.zeros_like(a.T), where=n[:, None] > 0)
    p_pj = np.divide(a, length[:, None], out=np.zeros_like(a), where=length[:, None] > 0)
    w = (p_ip**alpha) @ (p_pj**alpha)
    w = w * np.divide(1.0, n**beta, out=np.zeros_like(n), where=n > 0)
    np.fill_diagonal(w, 0.0)
    return w


def test_walk_weights_by_hand() -> None:
    # alpha = 1, beta = 0: W_ij = (1 / n_i) * sum over playlists holding i and j of 1 / len_p
    w = rp3beta_similarity(tiny_matrix(), alpha=1.0, beta=0.0, neighbors=10).toarray()
    by_hand = np.zeros((5, 5))
    by_hand[0, 1] = (1 / 2 + 1 / 3) / 3
    by_hand[0, 2] = (1 / 3 + 1 / 3) / 3
    by_hand[0, 3] = (1 / 3) / 3
    by_hand[1, 0] = (1 / 2 + 1 / 3) / 2
    by_hand[1, 2] = (1 / 3) / 2
    by_hand[2, 0] = (1 / 3 + 1 / 3) / 2
    by_hand[2, 1] = (1 / 3) / 2
    by_hand[2, 3] = (1 / 3) / 2
    by_hand[3, 0] = by_hand[3, 2] = 1 / 3
    # stored scaled so the largest weight (W_10 = 5/12) is 1
    np.testing.assert_allclose(w, by_hand / by_hand.max(), rtol=1e-6)
    assert np.all(np.diag(w) == 0)
    assert not w[4].any() and not w[:, 4].any()  # a track in no playlist takes no part

    # beta = 1 divides column j by n_j: from track 2, track 3 (n_3 = 1) now passes track 0 (3)
    w1 = rp3beta_similarity(tiny_matrix(), alpha=1.0, beta=1.0, neighbors=10).toarray()
    n = np.array([3, 2, 2, 1, 1])
    expected = by_hand / n[None, :]
    np.testing.assert_allclose(w1, expected / expected.max(), rtol=1e-6)
    assert w1[2, 3] > w1[2, 0] and by_hand[2, 3] < by_hand[2, 0]


@pytest.mark.parametrize(("alpha", "beta"), [(1.0, 0.0), (0.6, 0.3), (1.5, 0.8)])
def test_kept_neighbours_match_a_dense_reference(alpha: float, beta: float) -> None:
    rng = np.random.default_rng(7)
    dense = (rng.random((40, 25)) < 0.25).astype(np.float32)
    dense[:, 24] = 0.0  # one track in no playlist
    matrix = sp.csr_matrix(dense)
    want = reference(matrix, alpha, beta)
    neighbors = 4
    got = rp3beta_similarity(matrix, alpha=alpha, beta=beta, neighbors=neighbors)
    assert np.diff(got.indptr).max() == neighbors
    scale = want.max()
    for row in range(25):
        start, stop = got.indptr[row], got.indptr[row + 1]
        values = got.data[start:stop].astype(np.float64) * scale
        # the values kept are the row's largest (ties may pick either column)
        top = np.sort(want[row][want[row] > 0])[::-1][:neighbors]
        np.testing.assert_allclose(values, top, rtol=1e-5)
        # and each kept entry is the reference's value at its column
        np.testing.assert_allclose(values, want[row, got.indices[start:stop]], rtol=1e-5)
        assert row not in got.indices[start:stop]


def test_beta_lifts_less_common_tracks() -> None:
    # Seed 0 shares 3 playlists with track 1 (in 23 playlists in all) and 2 with track 2 (in 2).
    playlists = [[0, 1, 3], [0, 1, 3], [0, 1, 3], [0, 2, 3], [0, 2, 3]]
    playlists += [[1, 4 + k % 6, 3] for k in range(20)]
    snapshot = snapshot_of(playlists, 12)
    p3alpha = RP3betaRecommender(alpha=1.0, beta=0.0).fit(snapshot)
    rp3beta = RP3betaRecommender(alpha=1.0, beta=0.5).fit(snapshot)
    ids0, _ = p3alpha.recommend(np.array([0, 3]), 12)
    ids5, _ = rp3beta.recommend(np.array([0, 3]), 12)
    assert list(ids0).index(1) < list(ids0).index(2)
    assert list(ids5).index(2) < list(ids5).index(1)


def test_prior_stays_under_every_walk_score() -> None:
    # track 5 is in the most playlists but never with seed 0; tracks 1 and 2 are reached
    playlists = [[0, 1], [0, 2]] + [[5, 6, 7]] * 30
    model = RP3betaRecommender(alpha=1.0, beta=0.9).fit(snapshot_of(playlists, 8))
    ids, scores = model.recommend(np.array([0]), 8)
    assert set(ids[:2].tolist()) == {1, 2}
    assert ids[2] == 5  # then the unreached tracks, most playlists first
    assert np.all(np.diff(scores) <= 0)
    assert model.prior_.max() < model.similarity_.data.min()


def test_registered_and_parameters_checked() -> None:
    assert MODELS["rp3beta"] == "segue.models.rp3:RP3betaRecommender"
    snapshot = snapshot_of(TINY, 5)
    for bad in ({"alpha": 0.0}, {"beta": -0.1}, {"neighbors": 0}):
        with pytest.raises(ParameterError):
            RP3betaRecommender(**bad).fit(snapshot)


def test_explanations_name_the_seeds() -> None:
    model = RP3betaRecommender(beta=0.3).fit(snapshot_of(TINY, 5))
    first, unreached = model.explain_many(np.array([1, 2]), np.array([0, 4]))
    assert "\u201csong 1\u201d by artist 1" in first and "\u201csong 2\u201d by artist 2" in first
    assert "2 of the 2 seed tracks" in first and "less common tracks lifted" in first
    assert "ranked by popularity" in unreached
    assert "no seed tracks" in model.explain(np.array([], dtype=np.int64), 0)
    with pytest.raises(IndexError):
        model.explain(np.array([0]), 5)


def test_save_load_answers_the_same(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    playlists = [sorted(rng.choice(30, size=6, replace=False).tolist()) for _ in range(25)]
    snapshot = snapshot_of(playlists, 30)
    model = RP3betaRecommender(alpha=0.8, beta=0.4, neighbors=7).fit(snapshot)
    save_model(model, "rp3beta", root=tmp_path)
    loaded = load_model("rp3beta", snapshot, root=tmp_path)
    assert isinstance(loaded, RP3betaRecommender)
    assert loaded.get_params() == model.get_params()
    seeds = [np.array([0, 3]), np.array([5]), np.array([], dtype=np.int64), np.arange(10)]
    want_ids, want_scores = model.recommend_batch(seeds, 15)
    got_ids, got_scores = loaded.recommend_batch(seeds, 15)
    np.testing.assert_array_equal(got_ids, want_ids)
    np.testing.assert_array_equal(got_scores, want_scores)
    assert loaded.explain(seeds[0], int(want_ids[0, 0])) == model.explain(
        seeds[0], int(want_ids[0, 0])
    )
    other = snapshot_of(playlists, 31)
    with pytest.raises(ValueError, match="refit"):
        RP3betaRecommender.load(tmp_path / "rp3beta", other)


def test_a_row_keeps_neighbors_entries_when_its_own_track_is_not_among_them() -> None:
    # Track 0 is in all 10 playlists, every other track in one: with beta = 1.5 track 0's own
    # weight falls below those of the rare tracks, so the search finds neighbors + 1 others.
    playlists = [[0, 1 + 2 * p, 2 + 2 * p] for p in range(10)]
    dense = np.zeros((10, 21), dtype=np.float32)
    for p, tracks in enumerate(playlists):
        dense[p, tracks] = 1.0
    got = rp3beta_similarity(sp.csr_matrix(dense), alpha=1.0, beta=1.5, neighbors=5)
    assert np.diff(got.indptr)[0] == 5
    assert 0 not in got.indices[: got.indptr[1]]
    assert np.diff(got.indptr)[1:].tolist() == [2] * 20  # the rare tracks: 0 and their partner
