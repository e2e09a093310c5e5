"""The contract every recommender keeps, run over every model in the registry.

:class:`RecommenderContract` is a mixin: a test class that provides a ``case`` fixture (a
:class:`ModelCase`) gets every invariant: batch equals single, scores non-increasing, seeds
never returned, exclusions honoured, save/load round trip, the checkerboard known answer
(even playlists hold even tracks, whose artists have "even" genres and audio features), and
clear errors for bad input. :class:`TestRegistryModels` runs it over ``MODELS``; a name whose
module does not import yet is skipped, so new models join the contract as soon as they land.

Models that ask a web service at query time (``NETWORK_MODELS``) run it against a real HTTP
server on 127.0.0.1 answering like the service (tests/fake_spotify.py), through a provider
attached to the model as the service attaches one. Its recommendations follow the checkerboard's
parity and include tracks the snapshot does not know.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from segue.core.errors import NotFittedError
from segue.models.base import Recommender
from segue.models.registry import MODELS, fit_model, load_model, model_class
from segue.snapshot.arrays import Snapshot
from tests.fake_spotify import FakeSpotify, parity_world, provider_for

#: Models that ask Spotify at query time: run against the fake server (:func:`spotify_fake`).
NETWORK_MODELS = {"spotify"}
#: Tracks the fake Spotify knows beyond the snapshot's (answered, then dropped by the model).
N_UNKNOWN = 20
#: Models with no notion of similarity: the checkerboard answer does not apply to them.
NO_PARITY = {"popularity", "random"}

N_TRACKS = 60
N_ARTISTS = 12
N_PLAYLISTS = 30
EVEN_TITLE, ODD_TITLE = "party dance", "metal workout"


def checkerboard_snapshot(seed: int = 0) -> Snapshot:
    """60 tracks, 12 artists, 30 playlists. Even playlists hold only even tracks (and odd only
    odd); even tracks' artists have dance genres, danceable audio and 2010s releases, odd ones
    metal genres, energetic audio and 1990s releases. Playlist titles follow the parity too."""
    rng = np.random.default_rng(seed)
    t = np.arange(N_TRACKS)
    even = t % 2 == 0
    tracks = pd.DataFrame(
        {
            "track_id": [f"{i:022d}" for i in t],
            "name": [f"song {i}" for i in t],
            "artist_key": t % N_ARTISTS,
            "artist_name": [f"artist {i % N_ARTISTS}" for i in t],
            "release_year": np.where(even, 2012 + t % 7, 1991 + t % 7).astype(float),
            "popularity": rng.integers(20, 80, N_TRACKS).astype(float),
            "danceability": np.where(even, 0.8, 0.2) + rng.normal(0, 0.03, N_TRACKS),
            "energy": np.where(even, 0.5, 0.95) + rng.normal(0, 0.02, N_TRACKS),
            "acousticness": np.where(even, 0.3, 0.05) + rng.normal(0, 0.02, N_TRACKS),
        }
    )
    artists = pd.DataFrame(
        {
            "artist_key": np.arange(N_ARTISTS),
            "name": [f"artist {a}" for a in range(N_ARTISTS)],
            "genres": [
                ["dance pop", "electropop"] if a % 2 == 0 else ["death metal", "metalcore"]
                for a in range(N_ARTISTS)
            ],
        }
    )
    rows_p, rows_t = [], []
    for p in range(N_PLAYLISTS):
        for i in t[t % 2 == p % 2]:
            if (i // 2 + p) % 3 != 0:
                rows_p.append(p)
                rows_t.append(int(i))
    playlists = pd.DataFrame(
        {
            "pid": np.arange(N_PLAYLISTS),
            "name": [EVEN_TITLE if p % 2 == 0 else ODD_TITLE for p in range(N_PLAYLISTS)],
        }
    )
    return Snapshot.from_frames(
        tracks, artists, playlists, (np.asarray(rows_p), np.asarray(rows_t))
    )


def _as_built(model: Recommender) -> Recommender:
    return model


@dataclass
class ModelCase:
    name: str
    make: Callable[[], Recommender]
    #: What whoever runs the model does to a fitted or loaded one (attach its provider).
    ready: Callable[[Recommender], Recommender] = _as_built

    @property
    def parity(self) -> bool:
        return self.name not in NO_PARITY

    def title_for(self, seeds: np.ndarray) -> str | None:
        if not getattr(model_class(self.name), "needs_title", False):
            return None
        return EVEN_TITLE if seeds.size == 0 or seeds[0] % 2 == 0 else ODD_TITLE


def assert_same_ranking(
    ids_a: np.ndarray, s_a: np.ndarray, ids_b: np.ndarray, s_b: np.ndarray
) -> None:
    """Two rankings agree up to float noise: same scores, and any track in only one of them
    scores like the boundary (a tie broken differently)."""
    keep_a, keep_b = ids_a >= 0, ids_b >= 0
    ids_a, s_a, ids_b, s_b = ids_a[keep_a], s_a[keep_a], ids_b[keep_b], s_b[keep_b]
    assert ids_a.size == ids_b.size
    np.testing.assert_allclose(s_a, s_b, rtol=1e-5, atol=1e-6)
    score_b = dict(zip(ids_b.tolist(), s_b.tolist(), strict=True))
    for track, score in zip(ids_a.tolist(), s_a.tolist(), strict=True):
        if track in score_b:
            assert score_b[track] == pytest.approx(score, rel=1e-5, abs=1e-6)
        else:
            assert score == pytest.approx(float(s_a[-1]), rel=1e-5, abs=1e-6)


_SNAPSHOT: dict[str, Snapshot] = {}
_FITTED: dict[tuple[str, str], Recommender] = {}


class RecommenderContract:
    """Invariants of :class:`segue.models.base.Recommender`. Needs a ``case`` fixture."""

    # Function-scoped fixtures over a memo: a class-scoped fixture chain over a parametrized
    # fixture trips an internal assertion of pytest 9.2, and each model is still fitted once.
    @pytest.fixture
    def snapshot(self) -> Snapshot:
        return _SNAPSHOT.setdefault("checkerboard", checkerboard_snapshot())

    @pytest.fixture
    def fitted(self, case: ModelCase, snapshot: Snapshot) -> Recommender:
        key = (type(self).__name__, case.name)
        if key not in _FITTED:
            model = case.make()
            assert model.fit(snapshot) is model
            assert model.attached, "a model is ready to answer once fitted (and given a provider)"
            assert (model.needs_provider is not None) == (case.name in NETWORK_MODELS)
            _FITTED[key] = model
        return _FITTED[key]

    def test_recommend_shapes_order_and_no_seeds(
        self, case: ModelCase, fitted: Recommender
    ) -> None:
        assert fitted.n_tracks == N_TRACKS
        for seeds in (np.array([0, 2, 4, 6]), np.array([7]), np.array([1, 3, 5, 7, 9, 11, 13])):
            ids, scores = fitted.recommend(seeds, 15, title=case.title_for(seeds))
            assert ids.dtype == np.int64 and scores.dtype == np.float32
            assert ids.shape == scores.shape and 0 < ids.size <= 15
            assert np.all(np.diff(scores) <= 1e-7), "scores must be non-increasing"
            assert not np.isin(ids, seeds).any(), "a seed was returned"
            assert np.unique(ids).size == ids.size, "a track was returned twice"
            assert ids.min() >= 0 and ids.max() < N_TRACKS

    def test_exclude_is_honoured(self, case: ModelCase, fitted: Recommender) -> None:
        seeds = np.array([0, 2])
        ids, _ = fitted.recommend(seeds, 10, title=case.title_for(seeds))
        banned = ids[:3]
        again, _ = fitted.recommend(seeds, 10, title=case.title_for(seeds), exclude=banned)
        assert not np.isin(again, banned).any()

    def test_batch_equals_single(self, case: ModelCase, fitted: Recommender) -> None:
        seed_lists = [
            np.array([0, 2, 4]),
            np.array([1]),
            np.array([10, 12, 14, 16, 18]),
            np.array([3, 5]),
        ]
        titles = [case.title_for(s) for s in seed_lists]
        ids, scores = fitted.recommend_batch(seed_lists, 12, titles=titles)
        assert ids.shape == scores.shape == (len(seed_lists), 12)
        for row, seeds in enumerate(seed_lists):
            one_ids, one_scores = fitted.recommend(seeds, 12, title=titles[row])
            padded = np.full(12, -1, dtype=np.int64)
            padded[: one_ids.size] = one_ids
            padded_scores = np.full(12, -np.inf, dtype=np.float32)
            padded_scores[: one_scores.size] = one_scores
            finite = np.isfinite(scores[row])
            assert np.array_equal(finite, np.isfinite(padded_scores))
            assert_same_ranking(ids[row], scores[row], padded, padded_scores)

    def test_batch_pads_when_catalog_is_short(self, case: ModelCase, fitted: Recommender) -> None:
        seeds = np.array([0, 2, 4])
        ids, scores = fitted.recommend_batch([seeds], N_TRACKS + 5, titles=[case.title_for(seeds)])
        assert ids.shape == (1, N_TRACKS + 5)
        assert np.all(ids[0, N_TRACKS - 3 :] == -1)
        assert np.all(np.isneginf(scores[0, N_TRACKS - 3 :]))

    def test_known_answer(self, case: ModelCase, fitted: Recommender, snapshot: Snapshot) -> None:
        if case.parity:
            for seeds in (np.array([0, 2, 4, 6, 8]), np.array([1, 3, 5, 7, 9])):
                ids, _ = fitted.recommend(seeds, 10, title=case.title_for(seeds))
                assert ids.size == 10
                assert np.all(ids % 2 == seeds[0] % 2), f"{case.name} mixed the checkerboard: {ids}"
        elif case.name == "popularity":
            counts = snapshot.tracks["playlist_count"].to_numpy()
            ids, scores = fitted.recommend(np.array([0]), 5)
            expected = [i for i in np.lexsort((np.arange(N_TRACKS), -counts)) if i != 0][:5]
            assert ids.tolist() == expected
            assert scores.tolist() == counts[expected].astype(np.float32).tolist()
        else:
            first, _ = fitted.recommend(np.array([0, 2]), 10)
            again, _ = fitted.recommend(np.array([0, 2]), 10)
            assert np.array_equal(first, again), "the same query must give the same answer"

    def test_save_load_round_trip(
        self, case: ModelCase, snapshot: Snapshot, tmp_path: Path
    ) -> None:
        model = case.ready(fit_model(case.name, snapshot, save=True, root=tmp_path))
        loaded = case.ready(load_model(case.name, snapshot, root=tmp_path))
        assert type(loaded) is type(model)
        for seeds in (np.array([0, 2, 4]), np.array([5])):
            a = model.recommend(seeds, 10, title=case.title_for(seeds))
            b = loaded.recommend(seeds, 10, title=case.title_for(seeds))
            assert np.array_equal(a[0], b[0])
            np.testing.assert_allclose(a[1], b[1], rtol=1e-6)
        for path in tmp_path.rglob("*"):
            if path.suffix == ".npz":
                with np.load(path, allow_pickle=False) as z:  # no pickled objects inside
                    for key in z.files:
                        assert z[key].dtype != object

    def test_bad_seeds_are_refused(self, case: ModelCase, fitted: Recommender) -> None:
        with pytest.raises(IndexError):
            fitted.recommend(np.array([N_TRACKS]), 5, title=EVEN_TITLE)
        with pytest.raises(IndexError):
            fitted.recommend(np.array([-1]), 5, title=EVEN_TITLE)
        with pytest.raises(TypeError):
            fitted.recommend(np.array([0.5, 1.0]), 5, title=EVEN_TITLE)
        with pytest.raises(ValueError):
            fitted.recommend(np.array([[0, 2]]), 5, title=EVEN_TITLE)

    def test_bad_n_is_refused(self, case: ModelCase, fitted: Recommender) -> None:
        seeds = np.array([0, 2])
        for bad in (-1, 2.5, True):
            with pytest.raises(ValueError, match="n must be a non-negative integer"):
                fitted.recommend(seeds, bad, title=EVEN_TITLE)  # type: ignore[arg-type]
            with pytest.raises(ValueError, match="n must be a non-negative integer"):
                fitted.recommend_batch([seeds], bad, titles=[EVEN_TITLE])  # type: ignore[arg-type]
        ids, vals = fitted.recommend(seeds, 0, title=EVEN_TITLE)
        assert ids.shape == vals.shape == (0,)

    def test_unfitted_model_says_so(self, case: ModelCase) -> None:
        with pytest.raises(NotFittedError):
            case.make().recommend(np.array([0]), 5, title=EVEN_TITLE)

    def test_explain_is_text(self, case: ModelCase, fitted: Recommender) -> None:
        seeds = np.array([0, 2, 4])
        ids, _ = fitted.recommend(seeds, 3, title=case.title_for(seeds))
        text = fitted.explain(seeds, int(ids[0]), title=case.title_for(seeds))
        assert isinstance(text, str) and text.strip()


@pytest.fixture(scope="module")
def spotify_fake() -> Iterator[FakeSpotify]:
    """Spotify on 127.0.0.1: its recommendations follow the checkerboard's parity, in a fixed
    order, and include ``N_UNKNOWN`` tracks the snapshot does not know."""
    with FakeSpotify(parity_world(N_TRACKS + N_UNKNOWN, seed=5)) as server:
        yield server


class TestRegistryModels(RecommenderContract):
    @pytest.fixture(params=list(MODELS))
    def case(self, request: pytest.FixtureRequest) -> ModelCase:
        name = request.param
        if name in NETWORK_MODELS:
            fake = request.getfixturevalue("spotify_fake")

            def ready(model: Recommender) -> Recommender:
                return model.attach(provider_for(fake))

            return ModelCase(name, lambda: ready(model_class(name)()), ready)
        return ModelCase(name, lambda: model_class(name)())
