from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from segue.service.engine import Filters, Service
from segue.snapshot.arrays import Snapshot
from tests._ranked_service import ranked_service

B62 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def tid(i: int) -> str:
    return ("t" + B62[i % 62] + B62[(i // 62) % 62]).ljust(22, "x")


@pytest.fixture
def service(tmp_path: Path) -> Service:
    n = 40
    tracks = pd.DataFrame(
        {
            "track_id": [tid(i) for i in range(n)],
            "name": [f"Song {i}" for i in range(n)],
            "artist_key": [i % 4 for i in range(n)],
            "artist_name": [f"Band {i % 4}" for i in range(n)],
            "release_year": [1960 + i for i in range(n)],
            "popularity": [float(100 - 2 * i) for i in range(n)],
        }
    )
    artists = pd.DataFrame(
        {
            "artist_key": range(4),
            "artist_id": [("a" + str(k)).ljust(22, "y") for k in range(4)],
            "name": [f"Band {k}" for k in range(4)],
        }
    )
    playlists = pd.DataFrame({"pid": [0, 1], "name": ["Road Trip", "sleep"]})
    rows = (np.array([0, 0, 0, 1, 1]), np.array([1, 2, 3, 30, 31]))
    return ranked_service(Snapshot.from_frames(tracks, artists, playlists, rows), tmp_path)


def test_seeds_are_never_returned_and_order_is_the_models(service: Service) -> None:
    rec = service.recommend([tid(0), f"spotify:track:{tid(5)}"], n=5, model="popularity")
    assert [t.id for t in rec.tracks] == [tid(i) for i in (1, 2, 3, 4, 6)]
    assert [t.explanation for t in rec.tracks][:2] == ["rank 1", "rank 2"]
    assert rec.tracks[0].uri == f"spotify:track:{tid(1)}" and rec.tracks[0].artists == ["Band 1"]


def test_filters(service: Service) -> None:
    f = Filters(exclude_artists=["band 1"], year_min=1962, year_max=1975, max_per_artist=2)
    rec = service.recommend([tid(0)], n=10, model="popularity", filters=f)
    years = [t.year for t in rec.tracks]
    assert all(1962 <= y <= 1975 for y in years)
    assert "Band 1" not in {a for t in rec.tracks for a in t.artists}
    counts = pd.Series([t.artists[0] for t in rec.tracks]).value_counts()
    assert counts.max() <= 2
    pop = service.recommend(
        [tid(0)], n=5, model="popularity", filters=Filters(popularity_max=50)
    ).tracks
    assert all(t.popularity <= 50 for t in pop)


def test_empty_ranges_are_refused(service: Service) -> None:
    with pytest.raises(ValueError, match="year range is empty: year_min 2000 > year_max 1990"):
        service.recommend(
            [tid(0)], model="popularity", filters=Filters(year_min=2000, year_max=1990)
        )
    with pytest.raises(ValueError, match="n must be between 1 and 500, got 501"):
        service.recommend([tid(0)], n=501, model="popularity")


def test_inputs_by_playlist_name_artist_and_search(service: Service) -> None:
    seeds = service.resolve(["road trip"])
    assert sorted(seeds.indices.tolist()) == [1, 2, 3] and seeds.title == "road trip"
    seeds = service.resolve(["Band 2"])
    assert sorted(seeds.indices.tolist()) == list(range(2, 40, 4))
    seeds = service.resolve([f"spotify:artist:{'a3'.ljust(22, 'y')}"])
    assert sorted(seeds.indices.tolist()) == list(range(3, 40, 4))
    seeds = service.resolve(["song 17"])
    assert seeds.indices.tolist() == [17]


def test_unknown_inputs_are_reported_not_fatal(service: Service) -> None:
    unknown = "Z" * 22
    rec = service.recommend([tid(3), unknown, "no such thing anywhere"], n=3, model="popularity")
    assert unknown in rec.unknown and "no such thing anywhere" in rec.unknown
    assert len(rec.tracks) == 3
    with pytest.raises(ValueError, match="no seed track found in the catalog"):
        service.recommend([unknown], model="popularity")
    with pytest.raises(
        ValueError, match=re.escape("not a Spotify reference: 'https://open.spotify.com/track/123'")
    ):
        service.recommend(["https://open.spotify.com/track/123"], model="popularity")


def test_unknown_model_and_too_many_seeds(service: Service) -> None:
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        service.recommend([tid(0)], model="nope")
    with pytest.raises(ValueError, match="too many seeds: 1001, at most 1000"):
        service.resolve([f"spotify:track:{i:022d}" for i in range(1001)])
    # a seed given twice counts once
    assert service.resolve([tid(0)] * 1001).indices.tolist() == [0]


def test_search_and_get_track(service: Service) -> None:
    assert [t.name for t in service.search_tracks("song 3", limit=3)] == [
        "Song 3",
        "Song 30",
        "Song 31",
    ]
    assert service.get_track(f"https://open.spotify.com/track/{tid(7)}").name == "Song 7"
    with pytest.raises(ValueError, match="is not in the snapshot"):
        service.get_track("Q" * 22)


def test_files_are_read_only_where_allowed(service: Service, tmp_path: Path) -> None:
    listing = tmp_path / "mine.txt"
    listing.write_text(f"spotify:track:{tid(4)}\n")
    assert not service.allow_files  # the default: a text input never opens a file
    with pytest.raises(ValueError, match="names a file"):
        service.resolve([str(listing)])
    # a shell hands a file over itself (the web app's upload)
    assert service.resolve([], files=[listing]).indices.tolist() == [4]
    service.allow_files = True  # the command line
    try:
        assert service.resolve([str(listing)]).indices.tolist() == [4]
        assert service.resolve([listing.as_uri()]).indices.tolist() == [4]
        with pytest.raises(ValueError, match="no such file"):
            service.resolve([str(tmp_path / "absent.csv")])
        with pytest.raises(ValueError, match="not a regular file"):
            service.resolve([str(tmp_path)])  # a folder
    finally:
        service.allow_files = False


def test_explanations_are_asked_once_per_query(service: Service) -> None:
    model = service._models["popularity"]
    calls: list[int] = []
    original = model.explain_many

    def counting(seeds: np.ndarray, tracks: np.ndarray, *, title: str | None = None) -> list[str]:
        calls.append(len(tracks))
        return original(seeds, tracks, title=title)

    model.explain_many = counting  # type: ignore[method-assign]
    rec = service.recommend([tid(0)], n=4, model="popularity")
    assert calls == [4] and rec.tracks[0].explanation == "rank 1"
    service.recommend([tid(0)], n=4, model="popularity", explain=False)
    assert calls == [4]


def test_names_without_letters_or_digits_say_so(service: Service) -> None:
    seeds = service.resolve(["\x07'", "Band 2", "..."[:1] + "!"])
    reasons = {i.input: i.reason for i in seeds.inputs}
    assert reasons["\x07'"] == "nothing to look up: a name needs letters or digits"
    assert reasons["Band 2"] is None and seeds.indices.size == 10


def test_names_past_the_time_budget_are_reported_not_searched(service: Service) -> None:
    service.name_budget = 0.0
    try:
        seeds = service.resolve(["Band 2", "song 17 band 1", "road trip"])
    finally:
        service.name_budget = 5.0
    by_input = {i.input: i for i in seeds.inputs}
    # exact names are found in the one batched pass; word searches wait for time left
    assert by_input["Band 2"].tracks == 10 and by_input["road trip"].tracks == 3
    assert by_input["song 17 band 1"].reason is not None
    assert "time for looking names up ran out" in by_input["song 17 band 1"].reason


def test_loose_matches_are_refused_and_near_names_suggested(service: Service) -> None:
    seeds = service.resolve(["song 17 band 1", "ong 1", "not a song", "Bnad 2"])
    by_input = {i.input: i for i in seeds.inputs}
    assert by_input["song 17 band 1"].found == "the track 'Song 17' by Band 1"
    assert by_input["ong 1"].reason and by_input["not a song"].reason
    assert by_input["Bnad 2"].suggestions[0] == "Band 2"
    assert "did you mean 'Band 2'" in by_input["Bnad 2"].message()


def test_too_many_distinct_names_are_refused_before_any_lookup(service: Service) -> None:
    from segue.service.engine import MAX_NAME_LOOKUPS

    names = [f"love {i}" for i in range(MAX_NAME_LOOKUPS + 1)]
    with pytest.raises(ValueError, match=f"at most {MAX_NAME_LOOKUPS} per request"):
        service.resolve(names)
    # the same name in other cases and spacing counts once
    assert len(service.resolve(["Band 2", "band 2", " BAND  2 "]).inputs) == 3
    service.resolve(["Band 2"] * 5 + [f"love {i}" for i in range(MAX_NAME_LOOKUPS - 1)])


def test_growth_is_rate_limited(tmp_path: Path) -> None:
    from segue.service.engine import GROWTH_PER_MINUTE, RateLimit, service_for_api

    limit = RateLimit(GROWTH_PER_MINUTE)
    assert limit.take(GROWTH_PER_MINUTE * 10) == GROWTH_PER_MINUTE
    assert limit.take(5) == 0  # refilled at GROWTH_PER_MINUTE a minute, not at once
    api = service_for_api(tmp_path)
    assert not api.grow and not api.outbound and not api.allow_files and api.growth is None
    growing = service_for_api(tmp_path, allow_growth=True)
    assert growing.grow and growing.outbound and not growing.allow_files
    assert growing.growth is not None and growing.growth.per_minute == GROWTH_PER_MINUTE


def test_a_name_longer_than_any_name_is_refused_without_a_look_up(service: Service) -> None:
    from segue.service.engine import MAX_NAME_CHARS

    long = "song 17 " + "x" * MAX_NAME_CHARS
    seeds = service.resolve(["song 17", long])
    assert seeds.unknown == [long]
    (why,) = [i for i in seeds.inputs if i.input == long]
    assert why.reason == f"too long for a name (at most {MAX_NAME_CHARS} characters)"
    assert seeds.indices.size > 0  # the short name is still looked up


def test_a_seed_with_a_nul_is_refused_before_any_lookup(service: Service) -> None:
    """The command line's path to the service: refused as a character, not read as a file."""
    service.allow_files = True  # as the command line makes it
    for seed in ("Ed\x00Sheeran", "/tmp/x.csv\x00"):
        with pytest.raises(ValueError, match=r"invalid character \(NUL\)"):
            service.plan([seed])


def test_records_and_name_labels_read_the_snapshots_string_columns(service: Service) -> None:
    """Records and track labels read the snapshot's string columns row by row: no column is
    turned into a Python string per track (hundreds of MB per process at full MPD scale)."""
    from segue.service.names import NameIndex

    snap = service.snapshot
    snap.tracks["name"] = snap.tracks["name"].astype("str")
    rec = service.recommend([tid(0)], n=40, model="popularity")
    by_id = {t.id: t for t in rec.tracks}
    assert by_id[tid(8)].name == "Song 8" and by_id[tid(8)].artists == ["Band 0"]
    assert by_id[tid(8)].year == 1968 and by_id[tid(8)].uri == f"spotify:track:{tid(8)}"
    kept = service._columns()
    for column in ("track_id", "name"):
        assert column not in kept and column in kept["strings"].column_names, column
    snap.tracks.loc[7, "name"] = None  # a missing title is an empty one in labels
    index = NameIndex.of(snap)
    assert index._track_label(8) == "the track 'Song 8' by Band 0"
    assert index._track_label(7) == "the track '' by Band 3"


@pytest.mark.parametrize("dtype", ["str", "string[pyarrow]", "object"])
def test_a_track_without_a_name_or_artist_is_recorded_empty_not_nan(
    service: Service, dtype: str
) -> None:
    snap = service.snapshot
    for column in ("name", "artist_name"):
        values = snap.tracks[column].astype(object)
        values[8] = None
        snap.tracks[column] = values.astype(dtype)
    rec = service.records([8, 9])
    assert rec[0].name == "" and rec[0].artists == []
    assert rec[1].name == "Song 9" and rec[1].artists == ["Band 1"]
