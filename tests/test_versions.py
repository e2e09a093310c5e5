"""One version of a song per result unless asked (segue.snapshot.versions and the service)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from segue.service.engine import Filters
from segue.snapshot.arrays import Snapshot
from segue.snapshot.versions import drop_versions, song_keys, song_title
from tests._ranked_service import ranked_service


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Here Comes The Sun - Remastered 2009", "here comes the sun"),
        ("Shape of You (feat. Stormzy) [Remix]", "shape of you"),
        ("Wonderwall  (Radio Edit)", "wonderwall"),
        ("Hey Jude - Live", "hey jude"),
        ("Blue (Da Ba Dee)", "blue (da ba dee)"),  # a bracket that is part of the name
        ("Love - Part Two", "love - part two"),
        ("(Remix)", "(remix)"),  # nothing but a note: kept as it was
        (None, ""),
    ],
)
def test_song_title_drops_version_notes_only(name: object, expected: str) -> None:
    assert song_title(name) == expected


def test_song_keys_join_versions_of_one_artist_only() -> None:
    tracks = pd.DataFrame(
        {
            "name": ["Song", "song - Remastered", "Song", "Other", None, None],
            "artist_key": [1, 1, 2, 1, 1, 1],
        }
    )
    keys = song_keys(tracks)
    assert keys[0] == keys[1]
    assert len({keys[0], keys[2], keys[3], keys[4], keys[5]}) == 5  # untitled stand alone


def test_drop_versions_keeps_the_best_ranked_and_no_seed_song() -> None:
    keys = np.array([0, 0, 1, 1, 2, 3])
    ranked = np.array([1, 3, 0, 2, 5, 4])
    scores = np.array([6.0, 5, 4, 3, 2, 1])
    got, vals = drop_versions(ranked, scores, keys)
    assert got.tolist() == [1, 3, 5, 4] and vals.tolist() == [6, 5, 2, 1]
    got, _ = drop_versions(ranked, scores, keys, seeds=np.array([2]))
    assert got.tolist() == [1, 5, 4]  # track 3 is another version of seed 2's song


def test_service_returns_one_version_unless_asked(tmp_path: Path) -> None:
    names = ["Seed", "Seed - Remastered", "Hit", "Hit (Radio Edit)", "Hit", "Other", "Last"]
    n = len(names)
    tracks = pd.DataFrame(
        {
            "track_id": [f"t{i}".ljust(22, "x") for i in range(n)],
            "name": names,
            "artist_key": [0, 0, 1, 1, 2, 1, 1],
            "artist_name": ["A", "A", "B", "B", "C", "B", "B"],
            "release_year": [2000] * n,
            "popularity": [50.0] * n,
        }
    )
    artists = pd.DataFrame(
        {
            "artist_key": range(3),
            "artist_id": [f"a{k}".ljust(22, "y") for k in range(3)],
            "name": ["A", "B", "C"],
        }
    )
    playlists = pd.DataFrame({"pid": [0], "name": ["mix"]})
    snap = Snapshot.from_frames(tracks, artists, playlists, (np.array([0, 0]), np.array([2, 5])))
    svc = ranked_service(snap, tmp_path)
    seed = ["t0".ljust(22, "x")]
    got = svc.recommend(seed, n=4, model="popularity", explain=False)
    # "Seed - Remastered" is the seed's song; the radio edit repeats B's "Hit"; C's "Hit" is
    # another artist's song
    assert [t.name for t in got.tracks] == ["Hit", "Hit", "Other", "Last"]
    assert [t.artists for t in got.tracks][:2] == [["B"], ["C"]]
    every = svc.recommend(
        seed, n=4, model="popularity", explain=False, filters=Filters(allow_versions=True)
    )
    assert [t.name for t in every.tracks] == ["Seed - Remastered", "Hit", "Hit (Radio Edit)", "Hit"]
