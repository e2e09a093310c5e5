"""One MPD playlist validator: ingest, user files and challenge sets refuse a malformed playlist
with the same message, and differ only where their rules say so."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from segue.catalog import Catalog
from segue.catalog.ingest import ingest_paths
from segue.core.errors import InputFileError
from segue.evaluation.formats import load_challenge_set
from segue.formats.mpd import (
    CHALLENGE_RULES,
    MAX_TEXT_BYTES,
    SLICE_RULES,
    USER_RULES,
    PlaylistChecker,
    read_slice_data,
)
from segue.service.inputs import read_playlists

TRACK = "spotify:track:" + "4" * 22
OTHER = "spotify:track:" + "5" * 22


def _track(**changes: Any) -> dict[str, Any]:
    track = {"track_uri": TRACK, "track_name": "Song", "artist_name": "Band"}
    track.update(changes)
    return track


def _playlist(pid: Any = 7, **changes: Any) -> dict[str, Any]:
    playlist: dict[str, Any] = {"name": "road trip", "pid": pid, "tracks": [_track()]}
    playlist.update(changes)
    return playlist


# (playlists of the file, where the problem is, what it is)
MALFORMED: dict[str, tuple[list[Any], str, str]] = {
    "track uri": (
        [_playlist(tracks=[_track(track_uri="spotify:track:short")])],
        "playlists[0].tracks[0] (pid 7)",
        "'track_uri' must be like 'spotify:track:<22 base62 chars>', got 'spotify:track:short'",
    ),
    "track uri of an album": (
        [_playlist(tracks=[_track(), _track(track_uri="spotify:album:" + "4" * 22)])],
        "playlists[0].tracks[1] (pid 7)",
        "'track_uri' must be like 'spotify:track:<22 base62 chars>', "
        "got 'spotify:album:4444444444444444444444'",
    ),
    "track not an object": (
        [_playlist(tracks=[5])],
        "playlists[0].tracks[0] (pid 7)",
        "expected a track object, got int",
    ),
    "artist name not a string": (
        [_playlist(tracks=[_track(artist_name=["Band"])])],
        "playlists[0].tracks[0] (pid 7)",
        "'artist_name' must be a string, got a list of 1 item(s)",
    ),
    "pid not an integer": (
        [_playlist(pid="7")],
        "playlists[0]",
        f"'pid' must be an integer from 0 to {2**63 - 1}, got '7'",
    ),
    "negative pid": (
        [_playlist(pid=-1)],
        "playlists[0]",
        f"'pid' must be an integer from 0 to {2**63 - 1}, got -1",
    ),
    "pid twice": (
        [_playlist(), _playlist(tracks=[_track(track_uri=OTHER)])],
        "playlists[1]",
        "pid 7 appears twice in this file",
    ),
    "playlist not an object": (
        [_playlist(pid=1), "road trip"],
        "playlists[1]",
        "expected a playlist object, got str",
    ),
    "name not a string": (
        [_playlist(name=12)],
        "playlists[0] (pid 7)",
        "'name' must be a string, got 12",
    ),
    "tracks not a list": (
        [_playlist(tracks={"0": _track()})],
        "playlists[0] (pid 7)",
        "'tracks' must be a list, got dict",
    ),
    "name with a NUL": (
        [_playlist(name="road\x00trip")],
        "playlists[0] (pid 7)",
        "'name' contains a NUL character",
    ),
    "name too long": (
        [_playlist(name="é" * MAX_TEXT_BYTES)],
        "playlists[0] (pid 7)",
        f"'name' is {2 * MAX_TEXT_BYTES:,} bytes long; at most {MAX_TEXT_BYTES:,} allowed",
    ),
    "track name too long": (
        [_playlist(tracks=[_track(track_name="x" * (MAX_TEXT_BYTES + 1))])],
        "playlists[0].tracks[0] (pid 7)",
        f"'track_name' is {MAX_TEXT_BYTES + 1:,} bytes long; at most {MAX_TEXT_BYTES:,} allowed",
    ),
}


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Catalog]:
    with Catalog.open(tmp_path_factory.mktemp("validator") / "catalog.duckdb") as cat:
        yield cat


def _ingest(catalog: Catalog) -> Callable[[Path], object]:
    return lambda path: ingest_paths(catalog, [path], progress=False)


def _refusal(read: Callable[[Path], object], path: Path) -> str:
    with pytest.raises(InputFileError) as caught:
        read(path)
    return str(caught.value)


@pytest.mark.parametrize("case", list(MALFORMED))
def test_ingest_user_files_and_challenge_sets_refuse_alike(
    case: str, tmp_path: Path, catalog: Catalog
) -> None:
    playlists, where, problem = MALFORMED[case]
    path = tmp_path / "mpd.slice.0-999.json"
    path.write_text(json.dumps({"info": {"slice": "0-999"}, "playlists": playlists}))
    expected = f"{path} at {where}: {problem}"
    assert _refusal(_ingest(catalog), path) == expected  # ingest (fast reader first)
    assert _refusal(lambda p: read_slice_data(str(p), p.read_bytes(), fast=False), path) == (
        expected
    )
    assert _refusal(read_playlists, path) == expected  # a seed file or an upload
    assert _refusal(load_challenge_set, path) == expected  # a challenge set
    assert catalog.con.execute("SELECT count(*) FROM playlists").fetchone() == (0,)


def test_rules_differ_only_where_the_readers_do(tmp_path: Path) -> None:
    # a challenge playlist of category 1: no name, no tracks; seeds need a URI only
    bare = {"pid": 3}
    seeds_only = {"pid": 4, "tracks": [{"track_uri": TRACK}]}
    for rules, ok in ((SLICE_RULES, False), (CHALLENGE_RULES, True), (USER_RULES, True)):
        checker = PlaylistChecker("f.json", rules)
        for playlist in (bare, seeds_only):
            if ok:
                checker.playlist(playlist, 0)
            else:
                with pytest.raises(InputFileError, match="missing 'name'"):
                    checker.playlist(playlist, 0)
    # a user's playlist: no pid, URIs alone, local files and links let through
    user = {
        "tracks": [TRACK, "spotify:local:a:b:c:1", "https://open.spotify.com/track/" + "6" * 22]
    }
    assert PlaylistChecker("f.json", USER_RULES, "playlist").playlist(user, None).pid is None
    with pytest.raises(InputFileError, match=r"f\.json at playlist: 'pid' must be an integer"):
        PlaylistChecker("f.json", CHALLENGE_RULES, "playlist").playlist(user, None)
    with pytest.raises(
        InputFileError, match=r"playlists\[0\]\.tracks\[0\] \(pid 4\): expected a track object"
    ):
        PlaylistChecker("f.json", CHALLENGE_RULES).playlist({"pid": 4, "tracks": [TRACK]}, 0)
    # a given pid is checked even where none is required
    with pytest.raises(InputFileError, match="'pid' must be an integer"):
        PlaylistChecker("f.json", USER_RULES).playlist({"pid": True, "tracks": []}, 0)
