"""Content recommenders: known answers, the scoring formula, filters, explanations, baselines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics.pairwise import cosine_similarity

import segue.models.content as content
from segue.models.content import (
    ContentRecommender,
    Model1,
    Model2,
    OriginalScoring,
    cap_per_key,
)
from segue.models.popularity import PopularityRecommender, RandomRecommender
from segue.snapshot.arrays import Snapshot

N = 40


def two_clusters(*, audio: str = "all", duplicates: bool = False) -> Snapshot:
    """40 tracks by 8 artists. Artists 0-3 play "dance pop"/"electropop" (tracks 0-19), artists
    4-7 "death metal"/"metalcore" (tracks 20-39); audio and eras follow the clusters.

    ``audio``: "all", "some" (every third track unknown) or "none". With ``duplicates``, track 1
    is a second version of track 0 and track 21 a second version of track 20.
    """
    rng = np.random.default_rng(3)
    t = np.arange(N)
    pop_cluster = t < 20
    names = [f"Track {i}" for i in t]
    if duplicates:
        names[1], names[21] = "track 0", "TRACK 20"
    tracks = pd.DataFrame(
        {
            "track_id": [f"{i:022d}" for i in t],
            "name": names,
            "artist_key": t // 5,
            "artist_name": [f"artist {i // 5}" for i in t],
            "release_year": np.where(pop_cluster, 2014 + t % 6, 1992 + t % 6).astype(float),
            "popularity": rng.integers(10, 90, N).astype(float),
        }
    )
    if audio != "none":
        tracks["danceability"] = np.where(pop_cluster, 0.8, 0.25) + rng.normal(0, 0.03, N)
        tracks["energy"] = np.where(pop_cluster, 0.55, 0.95) + rng.normal(0, 0.02, N)
        if audio == "some":
            tracks.loc[t % 3 == 0, ["danceability", "energy"]] = np.nan
    artists = pd.DataFrame(
        {
            "artist_key": np.arange(8),
            "name": [f"artist {a}" for a in range(8)],
            "genres": [
                ["dance pop", "electropop"] if a < 4 else ["death metal", "metalcore"]
                for a in range(8)
            ],
        }
    )
    playlists = pd.DataFrame({"pid": [0, 1], "name": ["pop party", "metal gym"]})
    rows = (np.r_[np.zeros(10, int), np.ones(10, int)], np.r_[np.arange(0, 10), np.arange(20, 30)])
    return Snapshot.from_frames(tracks, artists, playlists, rows)


def set_genres(snap: Snapshot, artist_key: int, genres: list[str]) -> None:
    column = snap.artists["genres"].tolist()
    column[snap.artists.index.get_loc(artist_key)] = genres
    snap.artists["genres"] = column


@pytest.fixture(scope="module")
def snapshot() -> Snapshot:
    return two_clusters()


# -------------------------------------------------------------------------------------------
# known answers
# -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        Model1,
        Model2,
        lambda: Model2(tune=False, aggregate="mean"),
        lambda: Model1(tune=False, crowd_tags="none", n_genres=2),
        OriginalScoring,
        lambda: OriginalScoring(mode="model2"),
    ],
)
@pytest.mark.parametrize("audio", ["all", "some", "none"])
def test_two_genre_clusters(make, audio: str) -> None:
    model = make().fit(two_clusters(audio=audio))
    for seeds, cluster in ((np.array([0, 6, 12]), 0), (np.array([25, 33]), 1)):
        ids, scores = model.recommend(seeds, 15)
        assert ids.size == 15
        assert np.all((ids >= 20) == bool(cluster)), f"{model.name} crossed clusters: {ids}"
        assert np.all(np.diff(scores) <= 1e-7)


def test_one_song_and_one_artist_are_just_seeds(snapshot: Snapshot) -> None:
    model = Model1(tune=False).fit(snapshot)
    one_song, _ = model.recommend(np.array([7]), 5)
    artist = snapshot.artist_track_indices(5)
    by_artist, _ = model.recommend(artist, 5)
    assert np.all(one_song < 20) and np.all(by_artist >= 20)
    assert not np.isin(by_artist, artist).any()


# -------------------------------------------------------------------------------------------
# the scoring formula
# -------------------------------------------------------------------------------------------


def brute_force(model: ContentRecommender, seeds: np.ndarray) -> np.ndarray:
    """sum_b w_b cos(q_b, x_b) with scikit-learn, from the feature matrix."""
    f = model.features_
    total = np.zeros(f.n_tracks)
    for block, cols in f.blocks.items():
        x = f.matrix[:, cols].toarray().astype(np.float64)
        if model.aggregate == "sum":
            sims = cosine_similarity(x, x[seeds].sum(axis=0, keepdims=True)).ravel()
        else:
            sims = cosine_similarity(x, x[seeds]).mean(axis=1)
        total += model.weights_[block] * sims
    return total


@pytest.mark.parametrize("aggregate", ["sum", "mean"])
@pytest.mark.parametrize("cls", [Model1, Model2])
def test_scores_are_weighted_block_cosines(snapshot: Snapshot, cls: type, aggregate: str) -> None:
    model = cls(tune=False, aggregate=aggregate).fit(snapshot)
    seeds = np.array([0, 3, 21, 22, 23])
    np.testing.assert_allclose(model.scores(seeds), brute_force(model, seeds), rtol=1e-5, atol=1e-6)
    assert sum(model.weights_.values()) == pytest.approx(1.0)


def test_sum_and_mean_differ_when_seeds_disagree(snapshot: Snapshot) -> None:
    seeds = np.array([0, 1, 2, 20])
    a = Model2(tune=False, aggregate="sum").fit(snapshot).scores(seeds)
    b = Model2(tune=False, aggregate="mean").fit(snapshot).scores(seeds)
    assert not np.allclose(a, b)


def test_block_contributions_sum_to_the_score(snapshot: Snapshot) -> None:
    model = Model2(tune=False).fit(snapshot)
    seeds = np.array([0, 5, 10])
    parts = model.block_contributions(seeds, 13)
    assert set(parts) == {"genres", "audio", "popularity", "era"}
    assert sum(parts.values()) == pytest.approx(float(model.scores(seeds)[13]), rel=1e-5)


def test_model1_puts_genres_first(snapshot: Snapshot) -> None:
    w = Model1(tune=False).fit(snapshot).weights_
    assert (
        w["genres"] > 4 * (w["popularity"] + w["era"])
        and min(w["popularity"], w["era"]) > 4 * w["audio"]
    )
    assert len(set(Model2(tune=False).fit(snapshot).weights_.values())) == 1


# -------------------------------------------------------------------------------------------
# filters
# -------------------------------------------------------------------------------------------


def test_max_per_artist(snapshot: Snapshot) -> None:
    capped = Model1(tune=False, max_per_artist=1).fit(snapshot)
    ids, scores = capped.recommend(np.array([0]), 8)
    artists = snapshot.track_artist_keys()[ids]
    assert ids.size == 8 and np.bincount(artists).max() == 1
    assert np.all(np.diff(scores) <= 1e-7)
    free, _ = Model1(tune=False).fit(snapshot).recommend(np.array([0]), 8)
    assert np.bincount(snapshot.track_artist_keys()[free]).max() > 1, (
        "the cap must change something"
    )


def test_duplicates_collapse_and_seed_versions_are_left_out() -> None:
    snap = two_clusters(duplicates=True)
    collapsed = Model1(tune=False).fit(snap)
    ids, _ = collapsed.recommend(np.array([0]), 39)
    assert 1 not in ids, "track 1 is another version of the seed"
    assert (20 in ids) != (21 in ids), "one version of a song"
    assert ids.size == 37
    kept = Model1(tune=False, collapse_duplicates=False).fit(snap)
    ids, _ = kept.recommend(np.array([0]), 39)
    assert ids.size == 39 and 1 in ids


def test_exclude_and_empty_seeds(snapshot: Snapshot) -> None:
    model = Model2(tune=False).fit(snapshot)
    ids, _ = model.recommend(np.array([0]), 5, exclude=np.array([1, 2, 3]))
    assert not np.isin(ids, [0, 1, 2, 3]).any()
    empty_ids, empty_scores = model.recommend(np.array([], dtype=np.int64), 5)
    assert empty_ids.size == 0 and empty_scores.size == 0
    assert not model.scores(np.array([], dtype=np.int64)).any()


def test_batch_equals_single_across_chunks(
    snapshot: Snapshot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(content, "BATCH_CELLS", 2 * N)  # two queries per chunk
    model = Model1(tune=False, max_per_artist=3).fit(snapshot)
    seed_lists = [
        np.array([0, 1]),
        np.array([22]),
        np.array([5, 25]),
        np.array([9, 8, 7]),
        np.array([39]),
    ]
    ids, scores = model.recommend_batch(seed_lists, 10)
    for row, seeds in enumerate(seed_lists):
        one_ids, one_scores = model.recommend(seeds, 10)
        assert np.array_equal(ids[row], one_ids)
        np.testing.assert_allclose(scores[row], one_scores, rtol=1e-6)


def random_catalog(n_tracks: int = 3000, seed: int = 5) -> Snapshot:
    rng = np.random.default_rng(seed)
    n_artists = n_tracks // 6
    tracks = pd.DataFrame(
        {
            "track_id": [f"{i:022d}" for i in range(n_tracks)],
            "name": [f"song {i % (n_tracks - 50)}" for i in range(n_tracks)],  # 50 duplicates
            "artist_key": np.r_[
                rng.integers(0, n_artists, n_tracks - 50), np.arange(50) % n_artists
            ],
            "release_year": rng.integers(1960, 2021, n_tracks).astype(float),
            "popularity": rng.integers(0, 101, n_tracks).astype(float),
            "danceability": rng.random(n_tracks),
            "energy": rng.random(n_tracks),
            "valence": np.where(rng.random(n_tracks) < 0.2, np.nan, rng.random(n_tracks)),
        }
    )
    tracks.loc[n_tracks - 50 :, "artist_key"] = tracks["artist_key"].iloc[:50].to_numpy()
    genres = [
        [f"g{g}" for g in rng.choice(60, size=rng.integers(0, 4), replace=False)]
        for _ in range(n_artists)
    ]
    artists = pd.DataFrame({"artist_key": np.arange(n_artists), "genres": genres})
    return Snapshot.from_frames(tracks, artists, pd.DataFrame({"name": []}))


@pytest.mark.parametrize("cls", [Model1, Model2])
@pytest.mark.parametrize("params", [{}, {"max_per_artist": 1}, {"collapse_duplicates": False}])
def test_audio_pruning_keeps_the_exact_ranking(
    monkeypatch: pytest.MonkeyPatch, cls: type, params: dict
) -> None:
    snap = random_catalog()
    model = cls(tune=False, **params).fit(snap)
    rng = np.random.default_rng(1)
    for _ in range(5):
        seeds = np.sort(rng.choice(snap.n_tracks, size=8, replace=False))
        monkeypatch.setattr(content, "PRUNE_MIN_TRACKS", 10**9)
        full_ids, full_scores = model.recommend(seeds, 20)
        monkeypatch.setattr(content, "PRUNE_MIN_TRACKS", 0)
        ids, scores = model.recommend(seeds, 20)
        assert np.array_equal(ids, full_ids)
        np.testing.assert_allclose(scores, full_scores, rtol=1e-6)
        brute = model.scores(seeds)
        np.testing.assert_allclose(scores, brute[ids], rtol=1e-5)
    if cls is Model1:  # audio weighs little: the pruned path is the one taken
        partial = model._partial_one(model._queries([seeds]))
        tau = np.sort(partial)[-(2 * 20 + 32)]
        assert (partial >= tau - model.weights_["audio"]).sum() <= snap.n_tracks // 4


# -------------------------------------------------------------------------------------------
# explanations
# -------------------------------------------------------------------------------------------


def test_explain_names_shared_genres_and_era(snapshot: Snapshot) -> None:
    model = Model1(tune=False, crowd_tags="missing").fit(snapshot)
    text = model.explain(np.array([0, 1, 2]), 7)
    assert text.startswith("genres "), text
    assert "(shared: " in text and "dance pop" in text and "electropop" in text
    assert "era " in text and "(2010s)" in text
    assert " · " in text
    assert "metal" not in model.explain(np.array([0, 1, 2]), 7)
    assert model.shared_terms(np.array([0]), 30) == []
    with_tags = Model1(tune=False).fit(snapshot).explain(np.array([0, 1, 2]), 7)
    assert with_tags.startswith("genres/tags ") and "party" in with_tags, with_tags


def test_explain_says_tags_for_crowd_tagged_tracks() -> None:
    snap = two_clusters()
    set_genres(snap, 0, [])  # tracks 0-4 now rely on their playlist title words
    model = Model2(tune=False).fit(snap)
    text = model.explain(np.array([5, 6]), 1)
    assert "tags" in text
    text = model.explain(np.array([0, 2]), 1)
    assert "(shared: " in text and ("party" in text or "pop" in text)


# -------------------------------------------------------------------------------------------
# storage and errors
# -------------------------------------------------------------------------------------------


def test_save_load_round_trip(snapshot: Snapshot, tmp_path: Path) -> None:
    model = Model1(
        tune=False, max_per_artist=3, aggregate="mean", n_genres=3, weights={"audio": 5.0}
    ).fit(snapshot)
    model.save(tmp_path)
    back = Model1.load(tmp_path, snapshot)
    assert back.get_params() == model.get_params()
    for seeds in (np.array([0, 1]), np.array([30])):
        a, b = model.recommend(seeds, 12), back.recommend(seeds, 12)
        assert np.array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    with pytest.raises(ValueError, match="40 tracks"):
        Model1.load(
            tmp_path,
            two_clusters().__class__.from_frames(
                snapshot.tracks.iloc[:5], snapshot.artists, snapshot.playlists
            ),
        )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"aggregate": "median"}, "aggregate"),
        ({"weights": {"lyrics": 1.0}}, "unknown block"),
        ({"weights": dict.fromkeys(("genres", "audio", "popularity", "era"), 0.0)}, "positive"),
        ({"max_per_artist": 0}, "max_per_artist"),
    ],
)
def test_bad_parameters(snapshot: Snapshot, params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Model2(tune=False, **params).fit(snapshot)


# -------------------------------------------------------------------------------------------
# the original scoring
# -------------------------------------------------------------------------------------------


def original_by_hand(model: OriginalScoring, seeds: np.ndarray) -> dict[str, np.ndarray]:
    """The original's three cosines with scikit-learn over dense one-hot tables."""
    size = model._lookup_size

    def onehot(codes: np.ndarray) -> np.ndarray:
        out = np.zeros((codes.size, size))
        out[np.arange(codes.size), codes] = 1.0
        return out[:, :-1]  # the last slot means "unknown": no column

    pop_era = onehot(model._code_tp) + onehot(model._code_ap) + onehot(model._code_era)
    everything = np.hstack([model.genres_, model.audio_, pop_era]).astype(np.float64)
    sims = {}
    for key, table in (
        ("genres", model.genres_.astype(np.float64)),
        ("pop_era", pop_era),
        ("all", everything),
    ):
        sims[key] = cosine_similarity(table, table[seeds].sum(axis=0, keepdims=True)).ravel()
    return sims


def test_original_scoring_matches_a_brute_force_sort() -> None:
    snap = two_clusters(audio="some")
    snap.artists["popularity"] = [50.0, 60.0, np.nan, 70.0, 20.0, 30.0, 40.0, 50.0]
    model = OriginalScoring().fit(snap)
    assert model.genres_.shape[1] == 3, "max_features=3"
    seeds = np.array([0, 7, 21])
    sims = original_by_hand(model, seeds)
    for key, value in model._similarities(seeds).items():
        np.testing.assert_allclose(value, sims[key], rtol=1e-5, atol=1e-6)
    order = np.lexsort(
        (
            np.arange(N),
            -np.round(sims["all"], 5),
            -np.round(sims["pop_era"], 5),
            -np.round(sims["genres"], 5),
        )
    )
    expected = [i for i in order if i not in seeds][:20]
    ids, scores = model.recommend(seeds, 20)
    assert ids.tolist() == expected
    np.testing.assert_allclose(scores, sims["genres"][ids], rtol=1e-5)
    mean_model = OriginalScoring(mode="model2").fit(snap)
    np.testing.assert_allclose(
        mean_model.scores(seeds),
        (sims["genres"] + sims["pop_era"] + sims["all"]) / 3,
        rtol=1e-5,
        atol=1e-6,
    )


@pytest.mark.parametrize("n_genres", [3, None])
def test_original_genres_equal_tfidf_vectorizer(n_genres: int | None) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    snap = two_clusters()
    set_genres(snap, 1, [])
    set_genres(snap, 2, ["singer-songwriter", "dance pop", "k-pop"])
    docs = [
        " ".join(g.replace(" ", "_") for g in gs) if gs else "unknown" for gs in snap.track_genres()
    ]
    vectorizer = TfidfVectorizer(max_features=n_genres)
    expected = vectorizer.fit_transform(docs).toarray()
    model = OriginalScoring(n_genres=n_genres).fit(snap)
    assert model.genre_names_.tolist() == vectorizer.get_feature_names_out().tolist()
    np.testing.assert_allclose(model.genres_, expected, rtol=1e-6, atol=1e-7)


def test_original_scoring_uses_unknown_as_a_genre() -> None:
    snap = two_clusters()
    set_genres(snap, 0, [])
    model = OriginalScoring(n_genres=None).fit(snap)
    assert "unknown" in model.genre_names_.tolist()
    assert "dance_pop" in model.genre_names_.tolist(), "spaces inside a genre become underscores"


# -------------------------------------------------------------------------------------------
# selection helpers
# -------------------------------------------------------------------------------------------


def test_cap_per_key() -> None:
    ranked = np.array([10, 11, 12, 13, 14, 15])
    keys = np.array([1, 1, 2, 1, 2, 3])
    assert cap_per_key(ranked, keys, 1).tolist() == [True, False, True, False, False, True]
    assert cap_per_key(ranked, keys, 2).tolist() == [True, True, True, False, True, True]
    assert cap_per_key(ranked[:0], keys[:0], 1).size == 0


# -------------------------------------------------------------------------------------------
# baselines
# -------------------------------------------------------------------------------------------


def test_popularity_ranks_by_playlist_count_then_index(snapshot: Snapshot) -> None:
    model = PopularityRecommender().fit(snapshot)
    ids, scores = model.recommend(np.array([0]), 25, title="anything")
    assert ids.tolist()[:19] == [*range(1, 10), *range(20, 30)]
    assert scores[:19].tolist() == [1.0] * 19 and scores[19] == 0.0
    assert ids[19] == 10, "ties by index"


def test_random_is_seeded(snapshot: Snapshot) -> None:
    a = RandomRecommender(random_state=1).fit(snapshot)
    b = RandomRecommender(random_state=1).fit(snapshot)
    c = RandomRecommender(random_state=2).fit(snapshot)
    seeds = np.array([3, 4])
    assert np.array_equal(a.recommend(seeds, 10)[0], b.recommend(seeds, 10)[0])
    assert not np.array_equal(a.recommend(seeds, 10)[0], c.recommend(seeds, 10)[0])
    assert not np.array_equal(a.recommend(seeds, 10)[0], a.recommend(np.array([5]), 10)[0])
    with pytest.raises(ValueError, match="random_state"):
        RandomRecommender(random_state=-1).fit(snapshot)


def test_too_few_playlists_fall_back_to_the_plain_weighting_and_say_so(
    snapshot: Snapshot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from segue.models.content import MIN_TUNE_PLAYLISTS
    from segue.models.registry import save_model
    from segue.service.engine import Service

    model = Model1(progress=False).fit(snapshot)
    assert f"fewer than {MIN_TUNE_PLAYLISTS}" in model.chosen_["how"]
    assert model.chosen_["era_width"] == 50 and model.chosen_["aggregate"] == "sum"
    assert model.weights_["audio"] > 0
    save_model(model, "model1", root=tmp_path / "artifacts" / "models")
    printed = Service(tmp_path).chosen_settings("model1")
    assert printed is not None and "eras of 50 years" in printed and "plain method" in printed
    loaded = Model1.load(tmp_path / "artifacts" / "models" / "model1", snapshot)
    assert loaded.chosen_["how"] == model.chosen_["how"]
    seeds = np.array([0, 1])
    assert loaded.recommend(seeds, 5)[0].tolist() == model.recommend(seeds, 5)[0].tolist()


def test_plain_method_is_the_cosine_of_summed_plain_vectors(snapshot: Snapshot) -> None:
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import MinMaxScaler

    from segue.core.records import AUDIO_FEATURES
    from segue.models.content import PlainMethod

    t = snapshot.tracks
    cols = [c for c in AUDIO_FEATURES if t[c].notna().any()]
    audio = SimpleImputer(strategy="median").fit_transform(
        MinMaxScaler().fit_transform(t[cols].to_numpy(dtype=float))
    )
    pop = pd.get_dummies(np.clip(t["popularity"].fillna(0), 0, 100) // 5).to_numpy(float)
    era = pd.get_dummies(t["release_year"] // 50).to_numpy(float)
    x = np.hstack([audio, pop, era])
    seeds = np.array([0, 3])
    q = x[seeds].sum(axis=0)
    cos = x @ q / (np.linalg.norm(x, axis=1) * np.linalg.norm(q))
    cos[seeds] = -np.inf
    expected = np.lexsort((np.arange(cos.size), -cos))[:5]
    got, _ = PlainMethod().fit(snapshot).recommend(seeds, 5)
    assert got.tolist() == expected.tolist()


def test_settings_are_chosen_once_per_snapshot_and_again_for_other_data(
    snapshot: Snapshot, monkeypatch: pytest.MonkeyPatch
) -> None:
    import copy

    calls: list[int] = []
    choose = content.choose_settings

    def counting(model: content.ContentRecommender, snap: Snapshot) -> dict:
        calls.append(id(snap))
        return choose(model, snap)

    monkeypatch.setattr(content, "choose_settings", counting)
    monkeypatch.setattr(content, "_TUNED", {})
    first = Model1(progress=False, tune_budget=10**9).fit(snapshot)
    again = Model1(progress=False, tune_budget=10**9, max_per_artist=2).fit(snapshot)
    assert len(calls) == 1 and again.chosen_ == first.chosen_  # same data, same parameters
    Model1(progress=False, tune_budget=10**9 + 1).fit(snapshot)  # another parameter tuning reads
    assert len(calls) == 2
    other = copy.copy(snapshot)  # same manifest (and snapshot id), other rows
    other.interactions = snapshot.interactions.copy()
    Model1(progress=False, tune_budget=10**9).fit(other)
    assert len(calls) == 3


def many_playlists() -> Snapshot:
    """The tracks of :func:`two_clusters` in 30 playlists of 18 tracks, each of one cluster:
    enough for the settings search to validate on."""
    base = two_clusters()
    rng = np.random.default_rng(5)
    rows, cols = [], []
    for p in range(30):
        first = 0 if p % 2 == 0 else 20
        picked = rng.choice(np.arange(first, first + 20), size=18, replace=False)
        rows += [p] * 18
        cols += picked.tolist()
    playlists = pd.DataFrame(
        {
            "pid": np.arange(30),
            "name": ["pop party" if p % 2 == 0 else "metal gym" for p in range(30)],
        }
    )
    artists = base.artists.reset_index()
    return Snapshot.from_frames(base.tracks, artists, playlists, (np.array(rows), np.array(cols)))


def test_the_settings_search_stops_at_its_budget_of_track_scores() -> None:
    snap = many_playlists()
    whole = content.choose_settings(Model1(progress=False), snap)
    assert whole["settings_tried"] > 3 and "stopped at the budget" not in whole["how"]
    per_setting = 30 * snap.n_tracks  # every playlist held out, scored against every track
    three = content.choose_settings(Model1(progress=False, tune_budget=3 * per_setting), snap)
    assert three["settings_tried"] == 3
    assert f"stopped at the budget of {3 * per_setting:,} track scores" in three["how"]
    one = content.choose_settings(Model1(progress=False, tune_budget=1), snap)
    assert one["settings_tried"] == 1 and one["validation_ndcg"] == one["preset_ndcg"]


def test_the_settings_search_chooses_the_same_settings_every_time() -> None:
    snap = many_playlists()

    def without_time(chosen: dict) -> dict:
        return {**chosen, "how": chosen["how"].rsplit(" settings in ", 1)[0]}

    first = content.choose_settings(Model1(progress=False), snap)
    again = content.choose_settings(Model1(progress=False), snap)
    assert without_time(first) == without_time(again)
    assert content.choose_settings(Model2(progress=False), snap)["settings_tried"] >= 1
