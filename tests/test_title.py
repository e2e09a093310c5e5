"""Title model: normalisation of MPD-style names, exact and fuzzy title matches, persistence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from segue.models.title import (
    NameIndex,
    TitleRecommender,
)
from segue.snapshot.arrays import Snapshot


def title_snapshot() -> Snapshot:
    """Tracks 0-9 live in 'Workout' playlists, 10-19 in 'Chill Vibes', 20-29 in 'Country'."""
    rng = np.random.default_rng(0)
    names = [
        "Workout",
        "work out!!",
        "WORKOUT 2017",
        "Chill Vibes",
        "chilll vibes",
        "Country",
        "country 🤠",
    ]
    blocks = [0, 0, 0, 10, 10, 20, 20]
    rows_p: list[int] = []
    rows_t: list[int] = []
    pl_names: list[str | None] = []
    p = 0
    for _ in range(3):
        for name, base in zip(names, blocks, strict=True):
            picked = rng.choice(10, size=6, replace=False) + base
            rows_p.extend([p] * 6)
            rows_t.extend(picked.tolist())
            pl_names.append(name)
            p += 1
    # one popular track (29) in extra unnamed playlists
    for _ in range(20):
        rows_p.append(p)
        rows_t.append(29)
        pl_names.append(None)
        p += 1
    tracks = pd.DataFrame({"track_id": [f"{i:022d}" for i in range(32)]})
    artists = pd.DataFrame({"artist_key": np.arange(32), "name": [f"a{i}" for i in range(32)]})
    playlists = pd.DataFrame({"pid": np.arange(p), "name": pl_names})
    return Snapshot.from_frames(
        tracks, artists, playlists, (np.asarray(rows_p), np.asarray(rows_t))
    )


@pytest.fixture(scope="module")
def model() -> TitleRecommender:
    return TitleRecommender().fit(title_snapshot())


@pytest.mark.parametrize(
    ("title", "block"),
    [
        ("Work-Out", 0),
        ("workout mix", 0),
        ("CHILL VIBES ☀️", 10),
        ("chill", 10),
        ("country music", 20),
    ],
)
def test_titles_find_their_tracks(model: TitleRecommender, title: str, block: int) -> None:
    ids, scores = model.recommend(np.array([], dtype=np.int64), 8, title=title)
    assert np.all((ids >= block) & (ids < block + 10)), ids
    assert np.all(np.diff(scores) <= 0)


def test_unknown_or_missing_title_is_popularity(model: TitleRecommender) -> None:
    for title in ("zzzqqq", None, "   "):
        ids, _ = model.recommend(np.array([], dtype=np.int64), 3, title=title)
        assert ids[0] == 29  # the track in most playlists
    assert "popularity" in model.explain(np.array([], dtype=np.int64), 29, title="zzzqqq")


def test_exact_key_outranks_fuzzy(model: TitleRecommender) -> None:
    weights = model.key_weights(["work out"])
    best = weights.indices[np.argmax(weights.data)]
    assert model.keys_[best] == "workout"
    assert weights.data.max() == pytest.approx(1.0)


def test_seeds_are_excluded_and_batch_equals_single(model: TitleRecommender) -> None:
    seed_lists = [np.array([0, 1]), np.array([], dtype=np.int64), np.array([12])]
    titles = ["workout", "chill vibes", None]
    ids, vals = model.recommend_batch(seed_lists, 6, titles=titles)
    for row, seeds in enumerate(seed_lists):
        one, one_vals = model.recommend(seeds, 6, title=titles[row])
        assert ids[row].tolist() == one.tolist()
        np.testing.assert_array_equal(vals[row], one_vals)
        assert not np.isin(one, seeds).any()
    with pytest.raises(ValueError, match="one entry per seed list"):
        model.recommend_batch(seed_lists, 6, titles=["a"])
    empty_ids, empty_vals = model.recommend_batch([], 6, titles=[])
    assert empty_ids.shape == empty_vals.shape == (0, 6)


def test_save_load_round_trip(model: TitleRecommender, tmp_path: Path) -> None:
    snap = title_snapshot()
    model.save(tmp_path / "title")
    loaded = TitleRecommender.load(tmp_path / "title", snap)
    assert loaded.keys_.tolist() == model.keys_.tolist()
    for title in ("workout", "chill", "zzz"):
        a = model.recommend(np.array([], dtype=np.int64), 5, title=title)
        b = loaded.recommend(np.array([], dtype=np.int64), 5, title=title)
        assert a[0].tolist() == b[0].tolist()


def test_emoji_setting_changes_keys() -> None:
    snap = title_snapshot()
    kept = TitleRecommender(emoji=True).fit(snap)
    stripped = TitleRecommender(emoji=False).fit(snap)
    assert "country🤠" in kept.keys_.tolist()
    assert "country🤠" not in stripped.keys_.tolist()


# --- names of artists, albums and songs in titles -----------------------------------------------


def name_tracks() -> tuple[pd.DataFrame, np.ndarray]:
    """Eight tracks with their artist, album and song names, and a popularity per track."""
    tracks = pd.DataFrame(
        {
            "name": [
                "2 Phones",
                "Really Really",
                "Hey Brother - Radio Edit",
                "Love Me Like You Do (From \u201cFifty Shades Of Grey\u201d)",
                "Earned It",
                "Army of Me",
                "Hey Brother",
                "Gates of Dawn",
            ],
            "artist_name": [
                "Kevin Gates",
                "Kevin Gates",
                "Avicii",
                "Ellie Goulding",
                "The Weeknd",
                "Bj\u00f6rk",
                "Cover Band",
                "The Doors",
            ],
            "album_name": [
                "Islah",
                "Islah",
                "True",
                "Fifty Shades Of Grey (Original Motion Picture Soundtrack)",
                "Fifty Shades Of Grey (Original Motion Picture Soundtrack)",
                "Post",
                None,
                None,
            ],
        }
    )
    popularity = np.array([5.0, 9.0, 8.0, 7.0, 6.0, 3.0, 1.0, 2.0])
    return tracks, popularity


@pytest.fixture(scope="module")
def names() -> NameIndex:
    tracks, popularity = name_tracks()
    return NameIndex(tracks, popularity)


def test_a_title_that_is_an_artist_gives_the_artists_tracks(names: NameIndex) -> None:
    got = names.match("KEVIN GATES!!")
    assert got.best["artist"].tolist() == [1, 0]  # most popular first
    np.testing.assert_allclose(got.coverage["artist"], 1.0)
    # an accent-free spelling still finds the artist
    assert names.match("bjork").tracks["artist"].tolist() == [5]


def test_a_phrase_of_the_title_matches_with_partial_coverage(names: NameIndex) -> None:
    got = names.match("best of kevin gates")
    assert got.tracks["artist"].tolist() == [0, 1]
    assert 0.5 < float(got.coverage["artist"].max()) < 1.0
    # "gates" alone is a word of the title, not a name: the song "Gates of Dawn" is not matched
    assert 7 not in got.tracks["track"].tolist()


def test_albums_and_songs_match_without_their_version_tags(names: NameIndex) -> None:
    album = names.match("Various Artists \u2013 Fifty Shades Of Grey (Original Motion Picture)")
    assert album.tracks["album"].tolist() == [3, 4]
    song = names.match("hey brother")
    assert song.best["track"].tolist() == [2, 6]
    np.testing.assert_allclose(song.coverage["track"], 1.0)
    # "Love Me Like You Do (From ...)" is matched by its title, not by the film in brackets
    assert names.match("love me like you do").tracks["track"].tolist() == [3]


@pytest.mark.parametrize("title", [None, "", "   ", "\U0001f525\U0001f525", "xq", "chill vibes"])
def test_titles_without_names_match_nothing(names: NameIndex, title: str | None) -> None:
    got = names.match(title)
    assert all(t.size == 0 for t in got.tracks.values())
    assert all(b.size == 0 for b in got.best.values())


def test_name_index_without_name_columns_matches_nothing() -> None:
    index = NameIndex(pd.DataFrame({"track_id": ["a", "b"]}), np.ones(2))
    assert all(t.size == 0 for t in index.match("Kevin Gates").tracks.values())
    assert NameIndex(None, np.ones(3)).match("Kevin Gates").tracks["artist"].size == 0


def test_name_index_from_its_state_matches_the_same(names: NameIndex) -> None:
    again = NameIndex.from_state(names.state_arrays())
    for title in ("KEVIN GATES!!", "best of kevin gates", "hey brother", "chill vibes", None):
        a, b = names.match(title), again.match(title)
        for field in ("artist", "album", "track"):
            assert a.tracks[field].tolist() == b.tracks[field].tolist()
            assert a.coverage[field].tolist() == b.coverage[field].tolist()
            assert a.best[field].tolist() == b.best[field].tolist()


def test_name_index_keeps_the_most_popular_tracks_per_name() -> None:
    tracks, popularity = name_tracks()
    index = NameIndex(tracks, popularity, per_name=1)
    assert index.match("kevin gates").tracks["artist"].tolist() == [1]
