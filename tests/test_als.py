"""ALS: fold-in of unseen playlists (equal to implicit's own), known answers, persistence."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from segue.models.als import ALSRecommender
from segue.snapshot.arrays import Snapshot
from tests.test_itemknn import cluster_snapshot


@pytest.fixture(scope="module")
def snapshot() -> Snapshot:
    return cluster_snapshot()


@pytest.fixture(scope="module")
def model(snapshot: Snapshot) -> ALSRecommender:
    return ALSRecommender(
        factors=4, iterations=15, regularization=0.1, alpha=20.0, num_threads=1
    ).fit(snapshot)


def test_fit_raises_no_blas_warning(snapshot: Snapshot) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ALSRecommender(factors=4, iterations=2, num_threads=1).fit(snapshot)


def test_fold_in_matches_implicit_recalculate_user(
    snapshot: Snapshot, model: ALSRecommender
) -> None:
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        ref = AlternatingLeastSquares(
            factors=4, iterations=15, regularization=0.1, alpha=20.0, random_state=0, num_threads=1
        )
        ref.fit(snapshot.interactions, show_progress=False)
    np.testing.assert_allclose(ref.item_factors, model.item_factors_, rtol=1e-4, atol=1e-5)
    seeds = [np.array([0, 3, 7]), np.array([41, 42])]
    from segue.models.itemknn import seed_matrix

    want = ref.recalculate_user(np.arange(2), seed_matrix(seeds, snapshot.n_tracks))
    got = model.user_factors(seeds)
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)


def test_unseen_playlist_gets_its_cluster(model: ALSRecommender) -> None:
    for cluster in range(3):
        seeds = np.array([cluster * 20 + 1, cluster * 20 + 4, cluster * 20 + 9])
        ids, scores = model.recommend(seeds, 10)
        assert np.all(ids // 20 == cluster), ids
        assert np.all(np.diff(scores) <= 0)


def test_no_seeds_is_popularity(model: ALSRecommender, snapshot: Snapshot) -> None:
    counts = snapshot.tracks["playlist_count"].to_numpy()
    ids, _ = model.recommend(np.array([], dtype=np.int64), 6)
    assert ids.tolist() == np.lexsort((np.arange(counts.size), -counts))[:6].tolist()
    assert np.all(model.user_factors([np.array([], dtype=np.int64)]) == 0)


def test_batch_equals_single(model: ALSRecommender) -> None:
    seed_lists = [np.array([0, 1]), np.array([], dtype=np.int64), np.array([25, 61])]
    ids, vals = model.recommend_batch(seed_lists, 9)
    for row, seeds in enumerate(seed_lists):
        one_ids, one_vals = model.recommend(seeds, 9)
        assert ids[row].tolist() == one_ids.tolist()
        np.testing.assert_array_equal(vals[row], one_vals)


def test_deterministic_and_round_trip(
    snapshot: Snapshot, model: ALSRecommender, tmp_path: Path
) -> None:
    again = ALSRecommender(
        factors=4, iterations=15, regularization=0.1, alpha=20.0, num_threads=1
    ).fit(snapshot)
    np.testing.assert_allclose(again.item_factors_, model.item_factors_, rtol=1e-5, atol=1e-6)
    model.save(tmp_path / "als")
    loaded = ALSRecommender.load(tmp_path / "als", snapshot)
    assert loaded.factors == 4
    a = model.recommend(np.array([5, 6]), 10)
    b = loaded.recommend(np.array([5, 6]), 10)
    assert a[0].tolist() == b[0].tolist()
    np.testing.assert_allclose(a[1], b[1], rtol=1e-6)


def test_bad_parameters(snapshot: Snapshot) -> None:
    with pytest.raises(ValueError, match="factors"):
        ALSRecommender(factors=0).fit(snapshot)
    with pytest.raises(ValueError, match="alpha"):
        ALSRecommender(alpha=0).fit(snapshot)


@pytest.mark.parametrize("scan", [True, False])
def test_top_items_equals_a_full_sort_with_ties_to_the_lowest_index(
    scan: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The norm-ordered scan with its early stop (large catalogs) and the product over every
    item (small ones) pick exactly what sorting every score by (score descending, index
    ascending) picks, also when many items share their factors."""
    monkeypatch.setattr(ALSRecommender, "early_stop_min_items", 0 if scan else 10**9)
    rng = np.random.default_rng(3)
    n, f = 50_000, 16
    scale = rng.pareto(1.5, n)[:, None] + 0.01  # a few large norms, a long tail of small ones
    items = (rng.normal(size=(n, f)) * scale).astype(np.float32)
    items[rng.choice(n, 5_000)] = items[7]  # many items with the same factors
    model = ALSRecommender()
    model._set_items(items)
    for trial in range(20):
        user = rng.normal(size=f).astype(np.float32)
        if trial % 2:
            user = items[7] * np.float32(0.5)  # the tied items are the best
        scores = items @ user
        for k in (1, 10, 400, 20_000, n + 5):
            want = np.lexsort((np.arange(n), -scores))[: min(k, n)]
            got = model.top_items(user, k)
            assert got.dtype == np.int64 and got.size == min(k, n)
            assert set(got.tolist()) == set(want.tolist())
    assert model.top_items(user, 0).size == 0
