"""The content feature matrix: blocks, weights, missing facts, crowd tags, duplicates, storage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from segue.core.errors import NotFittedError
from segue.snapshot.arrays import Snapshot
from segue.snapshot.features import (
    BLOCKS,
    SOURCE_GENRES,
    SOURCE_NONE,
    SOURCE_TAGS,
    ContentFeatures,
    build_content_features,
    duplicate_groups,
    playlist_count_percentile,
    pooled_crowd_tags,
)
from tests.conftest import SHARED_DATA


def small_snapshot(*, audio: bool = True) -> Snapshot:
    """8 tracks: 0-3 by a pop artist, 4-5 by a rock artist, 6-7 by an artist without genres.

    Track 2 has no audio features and no year; track 3 has no Spotify popularity and half of
    its audio; track 5 is another version of track 4 ("Rock Anthem" / "rock  anthem") with no
    audio and a later year; track 7 has no facts at all, not even a title.
    """
    tracks = pd.DataFrame(
        {
            "track_id": [f"{i:022d}" for i in range(8)],
            "name": [
                "Pop One",
                "Pop Two",
                "Pop Three",
                "Pop Four",
                "Rock Anthem",
                "rock  anthem",
                "Lofi A",
                None,
            ],
            "artist_key": [0, 0, 0, 0, 1, 1, 2, 2],
            "release_year": [2015, 2016, np.nan, 2019, 1975, 2011, 2020, np.nan],
            "popularity": [80, 70, 60, np.nan, 50, 40, 30, np.nan],
        }
    )
    if audio:
        tracks["danceability"] = [0.9, 0.8, np.nan, 0.85, 0.3, np.nan, 0.5, np.nan]
        tracks["energy"] = [0.7, 0.6, np.nan, np.nan, 0.95, np.nan, 0.2, np.nan]
    artists = pd.DataFrame(
        {
            "artist_key": [0, 1, 2],
            "name": ["Popstar", "Rockband", "Beatmaker"],
            "genres": [["dance pop", "pop"], ["hard rock", "rock"], []],
        }
    )
    playlists = pd.DataFrame(
        {"pid": [0, 1, 2], "name": ["Chill lofi beats", "Study beats", "Workout rock"]}
    )
    rows = (np.array([0, 0, 1, 1, 1, 2, 2]), np.array([6, 7, 6, 7, 0, 4, 0]))
    return Snapshot.from_frames(tracks, artists, playlists, rows)


@pytest.fixture(scope="module")
def snapshot() -> Snapshot:
    return small_snapshot()


@pytest.fixture(scope="module")
def features(snapshot: Snapshot) -> ContentFeatures:
    return build_content_features(snapshot)


def dense_block(f: ContentFeatures, name: str) -> np.ndarray:
    return np.asarray(f.block(name).toarray())


def test_matrix_is_float32_csr_with_named_blocks(features: ContentFeatures) -> None:
    m = features.matrix
    assert sp.isspmatrix_csr(m) and m.dtype == np.float32 and m.shape[0] == 8
    assert list(features.blocks) == list(BLOCKS)
    covered = np.concatenate([np.arange(s.start, s.stop) for s in features.blocks.values()])
    assert np.array_equal(covered, np.arange(m.shape[1])), "blocks must tile the columns"
    for name, cols in features.blocks.items():
        assert all(n.startswith(f"{name}:") for n in features.feature_names[cols])
    assert features.weights == dict.fromkeys(BLOCKS, 1.0)


def test_each_block_is_unit_length_per_row(features: ContentFeatures) -> None:
    for name in BLOCKS:
        norms = np.linalg.norm(dense_block(features, name), axis=1)
        has_terms = norms > 0
        np.testing.assert_allclose(norms[has_terms], 1.0, rtol=1e-5)
        if name != "genres":
            assert has_terms.all(), f"every track has a {name} vector"


def test_genres_are_whole_terms_and_tags_fill_gaps(features: ContentFeatures) -> None:
    names = features.block_names("genres")
    assert "dance pop" in names and "hard rock" in names, "a genre with a space stays one term"
    genres = dense_block(features, "genres")
    col = {n: i for i, n in enumerate(names)}
    assert genres[0, col["dance pop"]] > 0 and genres[4, col["dance pop"]] == 0
    # tracks 6 and 7 (artist without genres) take the words of their playlists' titles
    assert features.genre_source[6] == SOURCE_TAGS and features.genre_source[7] == SOURCE_TAGS
    assert genres[6, col["beats"]] > 0 and genres[7, col["lofi"]] > 0
    assert features.genre_source[0] == SOURCE_GENRES


@pytest.mark.parametrize("mode", ["missing", "all"])
@pytest.mark.parametrize("n_genres", [None, 3])
def test_genre_block_equals_tfidf_vectorizer(
    snapshot: Snapshot, mode: str, n_genres: int | None
) -> None:
    """The vectorised build gives what TfidfVectorizer gives on one document per track."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    f = build_content_features(snapshot, crowd_tag_mode=mode, n_genres=n_genres)  # type: ignore[arg-type]
    tags = pooled_crowd_tags(snapshot, top_k=10, groups=duplicate_groups(snapshot.tracks))
    docs = []
    for genres, words in zip(snapshot.track_genres(), tags, strict=True):
        docs.append(list(dict.fromkeys([*genres, *(words if mode == "all" or not genres else [])])))
    vectorizer = TfidfVectorizer(analyzer=lambda doc: doc, max_features=n_genres)
    expected = vectorizer.fit_transform(docs).toarray()
    assert f.block_names("genres") == list(vectorizer.get_feature_names_out())
    np.testing.assert_allclose(f.block("genres").toarray(), expected, rtol=1e-5, atol=1e-7)


def test_pooled_crowd_tags_drop_stop_words_and_rank_by_count(snapshot: Snapshot) -> None:
    tags = pooled_crowd_tags(snapshot, top_k=2)
    assert tags[6] == ["beats", "chill"], "'beats' is in two titles, then ties by word order"
    assert tags[1] == []
    assert all("the" not in t for t in tags)


def test_crowd_tag_modes(snapshot: Snapshot) -> None:
    none = build_content_features(snapshot, crowd_tag_mode="none")
    assert none.genre_source[6] == SOURCE_NONE
    assert np.linalg.norm(dense_block(none, "genres")[6]) == 0
    everyone = build_content_features(snapshot, crowd_tag_mode="all")
    names = everyone.block_names("genres")
    assert everyone.block("genres")[0, names.index("study")] > 0, "track 0 is in 'Study beats'"
    assert everyone.genre_source[0] == 3  # genres and tags


def test_n_genres_limits_the_vocabulary(snapshot: Snapshot) -> None:
    f = build_content_features(snapshot, n_genres=3)
    assert len(f.block_names("genres")) == 3
    assert f.params["n_genres"] == 3


def test_missing_audio_is_flagged_and_imputed(features: ContentFeatures) -> None:
    names = features.block_names("audio")
    assert names == ["danceability", "energy", "missing"]
    audio = dense_block(features, "audio")
    flag = audio[:, names.index("missing")]
    assert flag[0] == 0 and flag[1] == 0
    # 2 and 7 know nothing, 3 half; 5 takes its audio from its other version (track 4)
    assert np.flatnonzero(flag > 0).tolist() == [2, 3, 7]
    assert flag[3] < flag[2] == pytest.approx(flag[7])
    np.testing.assert_allclose(audio[5], audio[4], rtol=1e-6)
    assert np.all(np.isfinite(audio)), "imputed, never NaN"


def test_no_audio_features_at_all() -> None:
    f = build_content_features(small_snapshot(audio=False))
    assert f.block_names("audio") == ["missing"]
    np.testing.assert_allclose(dense_block(f, "audio").ravel(), 1.0)


def test_popularity_falls_back_to_catalog_percentile(
    features: ContentFeatures, snapshot: Snapshot
) -> None:
    pop = dense_block(features, "popularity")
    labels = features.block_names("popularity")
    assert len(labels) == 21 and labels[0] == "0-4" and labels[-1] == "100"
    assert labels[int(pop[0].argmax())] == "80-84"
    # track 3 has no Spotify popularity and is in no playlist: lowest catalog percentile
    expected = playlist_count_percentile(snapshot.tracks["playlist_count"].to_numpy())[3]
    assert labels[int(pop[3].argmax())] == f"{int(expected // 5) * 5}-{int(expected // 5) * 5 + 4}"
    # track 7 (no facts at all) is in two playlists: it still gets a popularity bucket
    assert pop[7].sum() == 1.0


def test_playlist_count_percentile_is_a_percentile() -> None:
    got = playlist_count_percentile(np.array([0, 10, 10, 100]))
    assert got[3] == 100.0 and got[1] == got[2] and got[0] < got[1]


def test_era_buckets_and_unknown_flag(snapshot: Snapshot) -> None:
    decades = build_content_features(snapshot, era_width=10)
    labels = decades.block_names("era")
    assert labels[0] == "1970s" and labels[-1] == "unknown" and "2010s" in labels
    era = dense_block(decades, "era")
    assert labels[int(era[0].argmax())] == "2010s"
    assert labels[int(era[2].argmax())] == "unknown"
    assert labels[int(era[5].argmax())] == "1970s", "a later version takes the song's earliest year"
    original = build_content_features(snapshot)  # year // 50, the original's buckets
    assert original.block_names("era") == ["1950-1999", "2000-2049", "unknown"]


def test_duplicates_share_a_group(snapshot: Snapshot) -> None:
    groups = duplicate_groups(snapshot.tracks)
    assert groups[4] == groups[5], "same title (case/space-insensitive) and artist"
    assert len(set(groups[[0, 1, 2, 3, 6, 7]].tolist())) == 6
    assert groups[7] != groups[6], "an untitled track is its own song"


def test_weights_are_validated_and_applied(snapshot: Snapshot) -> None:
    f = build_content_features(snapshot, weights={"genres": 3.0, "audio": 0.5})
    assert f.weights == {"genres": 3.0, "audio": 0.5, "popularity": 1.0, "era": 1.0}
    weighted = f.weighted_matrix()
    np.testing.assert_allclose(
        weighted[:, f.blocks["genres"]].toarray(), 3.0 * f.block("genres").toarray(), rtol=1e-6
    )
    with pytest.raises(ValueError, match="unknown block"):
        build_content_features(snapshot, weights={"lyrics": 1.0})
    with pytest.raises(ValueError, match="finite"):
        build_content_features(snapshot, weights={"genres": -1.0})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_genres": 0}, "n_genres"),
        ({"era_width": 0}, "era_width"),
        ({"crowd_tag_mode": "sometimes"}, "crowd_tag_mode"),
        ({"tag_top_k": -1}, "tag_top_k"),
    ],
)
def test_bad_parameters_are_refused(snapshot: Snapshot, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_content_features(snapshot, **kwargs)


def test_save_load_round_trip(features: ContentFeatures, tmp_path: Path) -> None:
    features.save(tmp_path)
    back = ContentFeatures.load(tmp_path)
    assert (back.matrix != features.matrix).nnz == 0 and back.matrix.dtype == np.float32
    assert back.blocks == features.blocks and back.feature_names == features.feature_names
    assert back.weights == features.weights and back.params == features.params
    assert np.array_equal(back.duplicate_group, features.duplicate_group)
    assert np.array_equal(back.genre_source, features.genre_source)
    files = sorted((tmp_path / "content_features").glob("*.npy"))
    assert len(files) == 7
    assert all(np.load(f, allow_pickle=False).dtype != object for f in files)


def test_load_from_an_empty_folder_says_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(NotFittedError, match=r"content_features\.json"):
        ContentFeatures.load(tmp_path)


@pytest.mark.realdata
def test_real_tidytuesday_rows_build() -> None:
    path = SHARED_DATA / "features" / "tidytuesday_spotify_songs.csv.gz"
    if not path.exists():
        pytest.skip(f"{path} is not available")
    raw = pd.read_csv(path, nrows=400).drop_duplicates("track_id").reset_index(drop=True)
    tracks = pd.DataFrame(
        {
            "track_id": raw["track_id"],
            "name": raw["track_name"],
            "artist_key": pd.factorize(raw["track_artist"])[0],
            "release_year": pd.to_numeric(raw["track_album_release_date"].str[:4], errors="coerce"),
            "popularity": raw["track_popularity"],
            "danceability": raw["danceability"],
            "tempo": raw["tempo"],
        }
    )
    artists = pd.DataFrame({"artist_key": np.arange(tracks["artist_key"].max() + 1)})
    f = build_content_features(Snapshot.from_frames(tracks, artists, pd.DataFrame({"name": []})))
    assert f.matrix.shape[0] == len(tracks)
    assert f.block_names("audio") == ["danceability", "tempo", "missing"]
    assert np.all(np.isfinite(f.matrix.data))
