"""Catalog facts writes and reads (catalog/facts.py) and the catalog-derived facts provider."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from segue.catalog import Catalog
from segue.catalog.ingest import ingest_paths
from segue.core.records import ArtistFacts, ArtistRef, AudioFeatures, TrackFacts
from segue.snapshot import derived as cf
from segue.snapshot.arrays import Snapshot
from tests.conftest import fake_id, make_playlists, write_slice

RNG = random.Random(7)
T = [fake_id(RNG) for _ in range(12)]  # track ids
A = [fake_id(RNG) for _ in range(6)]  # artist ids
AL = [fake_id(RNG) for _ in range(3)]  # album ids


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    cat = Catalog.open(tmp_path / "c.duckdb")
    yield cat
    cat.close()


def state(catalog: Catalog) -> tuple[Any, ...]:
    """Everything a failed write must leave untouched."""
    q = catalog.con.execute
    return (
        q("SELECT * EXCLUDE (added_at) FROM tracks ORDER BY track_id").fetchall(),
        q("SELECT * EXCLUDE (updated_at) FROM artists ORDER BY artist_key").fetchall(),
        q("SELECT * FROM albums ORDER BY album_id").fetchall(),
        q("SELECT * EXCLUDE (fetched_at) FROM audio_features ORDER BY track_id").fetchall(),
        q("SELECT * FROM track_artists ORDER BY track_id, position").fetchall(),
    )


def two_tracks() -> list[TrackFacts]:
    return [
        TrackFacts(
            T[0],
            "Song A",
            [ArtistRef("Band One", A[0]), ArtistRef("Guest", A[1])],
            album_id=AL[0],
            album_name="First",
            release_date="2019-06-14",
            popularity=70,
            duration_ms=200_000,
            source="test",
        ),
        TrackFacts(T[1], "Song B", [ArtistRef("Solo Name")], source="test"),
    ]


# ---------------------------------------------------------------------------------------
# upsert_tracks


def test_upsert_tracks_adds_unknown_tracks_with_artists_and_album(catalog: Catalog) -> None:
    assert catalog.upsert_tracks(two_tracks()) == 2
    rows = catalog.con.execute(
        "SELECT t.track_id, t.name, a.name, a.artist_id, t.album_id, t.release_date, t.release_year, "
        "t.popularity, t.duration_ms, t.source FROM tracks t JOIN artists a USING (artist_key) ORDER BY t.name"
    ).fetchall()
    assert rows == [
        (T[0], "Song A", "Band One", A[0], AL[0], "2019-06-14", 2019, 70, 200_000, "test"),
        (T[1], "Song B", "Solo Name", None, None, None, None, None, None, "test"),
    ]
    # The multi-artist record wrote track_artists; the single-artist one did not need to.
    assert catalog.con.execute(
        "SELECT x.position, a.name FROM track_artists x JOIN artists a USING (artist_key) "
        "WHERE x.track_id = ? ORDER BY x.position",
        [T[0]],
    ).fetchall() == [(0, "Band One"), (1, "Guest")]
    assert catalog.scalar("SELECT count(*) FROM track_artists WHERE track_id = ?", [T[1]]) == 0
    assert catalog.con.execute(
        "SELECT album_id, name, release_date, release_year FROM albums"
    ).fetchall() == [(AL[0], "First", "2019-06-14", 2019)]
    assert catalog.scalar("SELECT count(*) FROM artists") == 3


def test_upsert_tracks_is_idempotent(catalog: Catalog) -> None:
    catalog.upsert_tracks(two_tracks())
    before = state(catalog)
    assert catalog.upsert_tracks(two_tracks()) == 0
    assert state(catalog) == before


def test_known_tracks_get_only_missing_fields_filled(catalog: Catalog) -> None:
    catalog.upsert_tracks([TrackFacts(T[2], "Bare", [ArtistRef("X")], popularity=10)])
    result = catalog.upsert_facts(
        tracks=[
            TrackFacts(
                T[2],
                "Other name",
                [ArtistRef("Y")],
                album_id=AL[1],
                release_date="2001",
                popularity=99,
                duration_ms=5,
            ),
        ]
    )
    assert (result.tracks_new, result.tracks_updated) == (0, 1)
    row = catalog.con.execute(
        "SELECT t.name, a.name, album_id, release_date, release_year, t.popularity, duration_ms "
        "FROM tracks t JOIN artists a USING (artist_key) WHERE track_id = ?",
        [T[2]],
    ).fetchall()
    # name, artist and popularity were known: kept; the rest was missing: filled.
    assert row == [("Bare", "X", AL[1], "2001", 2001, 10, 5)]
    assert catalog.counts()["unique_artists"] == 1  # 'Y' was not needed for anything
    # Nothing left to fill: not counted as updated again.
    again = catalog.upsert_facts(
        tracks=[TrackFacts(T[2], "Other name", [ArtistRef("Y")], release_date="2001")]
    )
    assert again.tracks_updated == 0


def test_a_real_release_date_replaces_a_year_only_guess(catalog: Catalog) -> None:
    catalog.upsert_tracks([TrackFacts(T[3], "Hit", [ArtistRef("X")], year=2005)])
    assert catalog.con.execute("SELECT release_date, release_year FROM tracks").fetchall() == [
        (None, 2005)
    ]
    assert T[3] not in catalog.tracks_missing("track_facts")  # a year is a release year
    catalog.upsert_tracks([TrackFacts(T[3], "Hit", [ArtistRef("X")], release_date="2004-11-02")])
    assert catalog.con.execute("SELECT release_date, release_year FROM tracks").fetchall() == [
        ("2004-11-02", 2004)
    ]


def test_unknown_tracks_without_name_or_artist_are_not_created(catalog: Catalog) -> None:
    result = catalog.upsert_facts(
        tracks=[TrackFacts(T[4], None, [ArtistRef("", A[2])]), TrackFacts(T[5], "Named", [])]
    )
    assert (result.tracks_new, result.tracks_skipped) == (0, 2)
    assert catalog.counts()["unique_tracks"] == 0
    assert catalog.counts()["unique_artists"] == 0  # no artist made for a track that was not added


def test_name_only_artists_learn_their_id(tmp_path: Path, catalog: Catalog) -> None:
    reduced = write_slice(tmp_path / "reduced.json", make_playlists(4, seed=3, full=False))
    ingest_paths(catalog, [reduced], progress=False)
    name_only = catalog.scalar("SELECT count(*) FROM artists WHERE artist_id IS NULL")
    n_artists = catalog.counts()["unique_artists"]
    track_id, artist_name = catalog.con.execute(
        "SELECT t.track_id, a.name FROM tracks t JOIN artists a USING (artist_key) ORDER BY t.track_id LIMIT 1"
    ).fetchall()[0]
    new_id = fake_id(random.Random(99))
    catalog.upsert_tracks(
        [
            TrackFacts(
                track_id, "ignored", [ArtistRef(artist_name.upper(), new_id)], release_date="2010"
            )
        ]
    )
    assert catalog.counts()["unique_artists"] == n_artists
    assert catalog.scalar("SELECT count(*) FROM artists WHERE artist_id IS NULL") == name_only - 1
    assert catalog.scalar("SELECT name FROM artists WHERE artist_id = ?", [new_id]) == artist_name
    assert new_id in catalog.artists_missing_genres()


def test_id_only_artist_learns_name_and_duplicates_merge(tmp_path: Path, catalog: Catalog) -> None:
    """A feature table stores an artist by id only; a reduced MPD file names it without id;
    a later record with both joins them into one artist."""
    playlists = make_playlists(3, seed=5, full=True)
    first = playlists[0]["tracks"][0]
    artist_id = first["artist_uri"].rsplit(":", 1)[1]
    catalog.upsert_artists([ArtistFacts(artist_id, "", ["shoegaze"], 40)])
    assert catalog.con.execute("SELECT name, genres FROM artists").fetchall() == [
        ("", ["shoegaze"])
    ]
    reduced = [
        {
            **pl,
            "tracks": [
                {k: t[k] for k in ("artist_name", "track_uri", "track_name")} for t in pl["tracks"]
            ],
        }
        for pl in playlists
    ]
    ingest_paths(catalog, [write_slice(tmp_path / "r.json", reduced)], progress=False)
    norm = first["artist_name"].lower()
    assert (
        catalog.scalar("SELECT count(*) FROM artists WHERE norm_name = ?", [norm]) == 1
    )  # the name-only one
    track_id = first["track_uri"].rsplit(":", 1)[1]
    catalog.upsert_tracks(
        [TrackFacts(track_id, first["track_name"], [ArtistRef(first["artist_name"], artist_id)])]
    )
    rows = catalog.con.execute(
        "SELECT artist_key, artist_id, name, genres, popularity FROM artists WHERE norm_name = ?",
        [norm],
    ).fetchall()
    assert len(rows) == 1
    assert rows[0][1:] == (artist_id, first["artist_name"], ["shoegaze"], 40)
    assert (
        catalog.scalar("SELECT count(*) FROM tracks WHERE artist_key <> ?", [rows[0][0]]) > 0
    )  # others kept
    assert catalog.scalar(
        "SELECT count(*) FROM tracks t JOIN artists a USING (artist_key) WHERE a.norm_name = ?",
        [norm],
    ) == sum(
        1
        for t in {tr["track_uri"]: tr for pl in playlists for tr in pl["tracks"]}.values()
        if t["artist_name"] == first["artist_name"]
    )


def test_mpd_ingest_names_an_artist_stored_by_id_only(tmp_path: Path, catalog: Catalog) -> None:
    playlists = make_playlists(2, seed=8, full=True)
    tr = playlists[0]["tracks"][0]
    artist_id = tr["artist_uri"].rsplit(":", 1)[1]
    catalog.upsert_artists([ArtistFacts(artist_id, "", ["jazz"])])
    ingest_paths(catalog, [write_slice(tmp_path / "f.json", playlists)], progress=False)
    assert catalog.con.execute(
        "SELECT name, genres FROM artists WHERE artist_id = ?", [artist_id]
    ).fetchall() == [(tr["artist_name"], ["jazz"])]


def test_a_failed_write_leaves_the_catalog_unchanged(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog.upsert_tracks(two_tracks()[:1])
    before = state(catalog)

    def boom(self: Catalog) -> int:
        raise RuntimeError("disk full")

    monkeypatch.setattr(Catalog, "_write_audio_features", boom)
    more = [
        TrackFacts(T[6], "New", [ArtistRef("Brand New", A[3])]),
        TrackFacts(T[0], None, [], popularity=1),
    ]
    with pytest.raises(RuntimeError, match="disk full"):
        catalog.upsert_facts(
            tracks=more,
            artists=[ArtistFacts(A[0], "Band One", ["rock"])],
            audio_features=[AudioFeatures(T[6], {"energy": 0.5})],
        )
    assert state(catalog) == before
    # And a malformed record is refused before anything is written.
    monkeypatch.undo()
    with pytest.raises(ValueError, match="22-character"):
        catalog.upsert_tracks([more[0], TrackFacts("not-an-id", "x", [ArtistRef("y")])])
    with pytest.raises(ValueError, match="popularity"):
        catalog.upsert_tracks([TrackFacts(T[7], "x", [ArtistRef("y")], popularity=101)])
    with pytest.raises(ValueError, match="neither an id nor a name"):
        catalog.upsert_tracks([TrackFacts(T[7], "x", [ArtistRef("")])])
    with pytest.raises(TypeError, match="TrackFacts"):
        catalog.upsert_tracks([{"track_id": T[7]}])  # type: ignore[list-item]
    assert state(catalog) == before


def test_large_batches_go_in(catalog: Catalog) -> None:
    rng = random.Random(1)
    artists = [(fake_id(rng), f"Artist {i}") for i in range(200)]
    records = [
        TrackFacts(
            fake_id(rng),
            f"Song {i}",
            [ArtistRef(artists[i % 200][1], artists[i % 200][0])],
            popularity=i % 101,
        )
        for i in range(5_000)
    ]
    assert catalog.upsert_tracks(records) == 5_000
    assert catalog.counts()["unique_artists"] == 200


# ---------------------------------------------------------------------------------------
# upsert_artists and audio features


def test_upsert_artists_by_id_and_by_name(catalog: Catalog) -> None:
    catalog.upsert_tracks(two_tracks())
    created = catalog.upsert_artists(
        [
            ArtistFacts(A[0], "Band One", ["indie rock"], 55),
            ArtistFacts(None, "solo   NAME", ["folk"]),  # matched by normalised name
            ArtistFacts(A[4], "Newcomer", [], 3),  # unknown: created, known to have no genres
            ArtistFacts(None, "Nameonly New", None, 12),
        ]
    )
    assert created == 2
    got = dict(
        (name, (genres, pop))
        for name, genres, pop in catalog.con.execute(
            "SELECT name, genres, popularity FROM artists"
        ).fetchall()
    )
    assert got["Band One"] == (["indie rock"], 55)
    assert got["Solo Name"] == (["folk"], None)
    assert got["Newcomer"] == ([], 3)
    assert got["Nameonly New"] == (None, 12)
    assert got["Guest"] == (None, None)
    assert catalog.fact_counts()["artists_with_genres"] == 2  # [] is known-none, not a genre
    # A provided value overwrites; None leaves the stored value.
    catalog.upsert_artists([ArtistFacts(A[0], "Band One", ["shoegaze"], None)])
    assert catalog.con.execute(
        "SELECT genres, popularity FROM artists WHERE artist_id = ?", [A[0]]
    ).fetchall() == [(["shoegaze"], 55)]
    # overwrite=False only fills what is unknown.
    catalog.upsert_artists(
        [
            ArtistFacts(A[0], "Band One", ["label"], 1, overwrite=False),
            ArtistFacts(A[1], "Guest", ["label"], overwrite=False),
        ]
    )
    assert catalog.con.execute(
        "SELECT artist_id, genres, popularity FROM artists WHERE artist_id IN (?, ?) ORDER BY name",
        [A[0], A[1]],
    ).fetchall() == [(A[0], ["shoegaze"], 55), (A[1], ["label"], None)]
    with pytest.raises(ValueError, match="neither an artist_id nor a name"):
        catalog.upsert_artists([ArtistFacts(None, "  ")])


def test_audio_features_insert_or_replace(catalog: Catalog) -> None:
    assert (
        catalog.upsert_audio_features(
            [AudioFeatures(T[0], {"energy": 0.9, "tempo": 120.0, "time_signature": 4.0}, "a")]
        )
        == 1
    )
    catalog.upsert_audio_features([AudioFeatures(T[0], {"energy": 0.1, "tempo": 90.0}, "b")])
    assert catalog.con.execute(
        "SELECT energy, tempo, time_signature, source FROM audio_features"
    ).fetchall() == [(pytest.approx(0.1), 90.0, 4.0, "b")]
    assert catalog.fact_counts()["tracks_with_audio_features"] == 1
    with pytest.raises(ValueError, match="unknown audio feature"):
        AudioFeatures(T[0], {"loudnes": 1.0})


# ---------------------------------------------------------------------------------------
# what is missing, attempts and the fetch log


def test_missing_lists_and_attempts(tmp_path: Path, catalog: Catalog) -> None:
    ingest_paths(
        catalog, [write_slice(tmp_path / "s.json", make_playlists(6, seed=2))], progress=False
    )
    all_tracks = catalog.tracks_missing("track_facts")
    assert len(all_tracks) == catalog.counts()["unique_tracks"]
    # Most-played first.
    counts = dict(
        catalog.con.execute(
            "SELECT track_id, count(*) FROM playlist_tracks GROUP BY track_id"
        ).fetchall()
    )
    assert [counts[t] for t in all_tracks] == sorted((counts[t] for t in all_tracks), reverse=True)
    assert catalog.tracks_missing("track_facts", limit=3) == all_tracks[:3]
    first, second, third = all_tracks[:3]
    catalog.upsert_tracks([TrackFacts(first, None, [], release_date="1999")])
    catalog.upsert_audio_features([AudioFeatures(second, {"energy": 0.3})])
    assert first not in catalog.tracks_missing("track_facts")
    assert second not in catalog.tracks_missing("audio_features")
    assert first in catalog.tracks_missing("audio_features")

    catalog.record_attempts("spotify", "tracks", [second], "not_found")
    catalog.record_attempts("spotify", "audio_features", [first], "unavailable")
    catalog.record_attempts("spotify", "audio_features", [third], "ok")
    assert second not in catalog.tracks_missing("track_facts", provider="spotify")
    assert second in catalog.tracks_missing("track_facts", provider="other")
    assert second in catalog.tracks_missing("track_facts")
    missing_af = catalog.tracks_missing("audio_features", provider="spotify")
    assert first not in missing_af and third in missing_af
    # A later attempt replaces the earlier one.
    catalog.record_attempts("spotify", "audio_features", [first], "ok")
    assert first in catalog.tracks_missing("audio_features", provider="spotify")

    artists = catalog.artists_missing_genres()
    assert len(artists) == catalog.scalar(
        "SELECT count(*) FROM artists WHERE artist_id IS NOT NULL"
    )
    catalog.upsert_artists([ArtistFacts(artists[0], "x", ["pop"])])
    catalog.record_attempts("spotify", "artist_facts", [artists[1]], "not_found")
    left = catalog.artists_missing_genres(provider="spotify")
    assert artists[0] not in left and artists[1] not in left and artists[2] in left
    assert catalog.artists_missing_genres(limit=1) == [artists[1]]

    with pytest.raises(ValueError, match="unknown kind"):
        catalog.tracks_missing("lyrics")
    with pytest.raises(ValueError, match="status"):
        catalog.record_attempts("spotify", "tracks", [first], "maybe")
    with pytest.raises(ValueError, match="limit"):
        catalog.tracks_missing("track_facts", limit=-1)


def test_fetch_log(catalog: Catalog) -> None:
    catalog.log_fetch("run-1", "spotify", "tracks", [T[0], T[1]], "ok")
    catalog.log_fetch("run-1", "spotify", "audio_features", [T[0]], "error", "403 Forbidden")
    rows = catalog.fetch_log_rows(10)
    assert [(r["kind"], r["status"], r["ids"], r["reason"]) for r in rows] == [
        ("audio_features", "error", [T[0]], "403 Forbidden"),
        ("tracks", "ok", [T[0], T[1]], None),
    ]
    assert len(catalog.fetch_log_rows(1)) == 1


# ---------------------------------------------------------------------------------------
# reads for display and search


def test_track_rows_and_search(tmp_path: Path, catalog: Catalog) -> None:
    playlists = make_playlists(10, seed=4)
    ingest_paths(catalog, [write_slice(tmp_path / "s.json", playlists)], progress=False)
    rows = catalog.con.execute("SELECT track_id FROM tracks ORDER BY track_id LIMIT 2").fetchall()
    ids = [r[0] for r in rows]
    got = catalog.track_rows([ids[1], T[11], ids[0]])
    assert [r["track_id"] for r in got] == [ids[1], ids[0]]  # input order, unknown left out
    assert set(got[0]) >= {"name", "artist", "artists", "album", "year", "popularity", "playlists"}
    held = sum(1 for pl in playlists if any(t["track_uri"].endswith(ids[1]) for t in pl["tracks"]))
    assert got[0]["playlists"] == held

    hits = catalog.search_tracks("song 1", limit=50)
    # Every word, anywhere in "track name + artist name".
    assert hits and all(
        all(w in f"{r['name']} {r['artist']}".lower() for w in ("song", "1")) for r in hits
    )
    assert any(r["name"] == "Song 1" for r in hits)
    assert [h["playlists"] for h in hits] == sorted((h["playlists"] for h in hits), reverse=True)
    # Words may come from the track name and the artist name.
    artist = hits[0]["artist"]
    both = catalog.search_tracks(f"{artist.split()[-1]} {hits[0]['name'].split()[-1]}", limit=50)
    assert hits[0]["track_id"] in [h["track_id"] for h in both]
    assert catalog.search_tracks("   ") == []

    found = catalog.search_artists("ARTIST 1", limit=10)
    assert {r["name"] for r in found} == {"Artist 1", "Artist 10", "Artist 11"}
    assert [r["playlists"] for r in found] == sorted((r["playlists"] for r in found), reverse=True)
    a = found[0]
    by_uri = catalog.artist_by_ref(f"spotify:artist:{a['artist_id']}")
    by_url = catalog.artist_by_ref(f"https://open.spotify.com/artist/{a['artist_id']}?si=x")
    by_name = catalog.artist_by_ref(a["name"].upper())
    assert by_uri is not None and by_uri["artist_key"] == a["artist_key"]
    assert by_url is not None and by_url["name"] == a["name"]
    assert by_name is not None and by_name["artist_key"] == a["artist_key"]
    assert catalog.artist_by_ref("Nobody At All") is None


# ---------------------------------------------------------------------------------------
# catalog-derived facts


def tiny_snapshot() -> Snapshot:
    """3 playlists x 4 tracks with a known answer."""
    tracks = pd.DataFrame({"track_id": [f"t{i}" for i in range(4)], "artist_key": [1, 1, 2, 3]})
    artists = pd.DataFrame({"artist_key": [1, 2, 3], "name": ["a", "b", "c"]})
    playlists = pd.DataFrame(
        {"pid": [0, 1, 2], "name": ["Summer Rock!", "rock the summer", "My Jazz playlist"]}
    )
    rows = (np.array([0, 0, 1, 1, 2, 2]), np.array([0, 1, 0, 2, 2, 1]))
    return Snapshot.from_frames(tracks, artists, playlists, rows)


def test_catalog_facts_from_a_snapshot() -> None:
    snap = tiny_snapshot()
    assert cf.track_popularity(snap).tolist() == [2, 2, 2, 0]
    assert cf.track_popularity(snap).dtype == np.int32
    assert cf.artist_popularity(snap).to_dict() == {1: 3, 2: 2, 3: 0}
    tags = cf.crowd_tags(snap, top_k=10)
    # 'the', 'my' are stop words, 'playlist' a title stop word; ties alphabetical.
    assert tags == [["rock", "summer"], ["jazz", "rock", "summer"], ["jazz", "rock", "summer"], []]
    assert cf.crowd_tags(snap, top_k=1) == [["rock"], ["jazz"], ["jazz"], []]
    assert cf.crowd_tags(snap, 10, min_playlists=2) == [["rock", "summer"], [], [], []]
    frame = cf.track_facts_frame(snap, top_k=2)
    assert frame["artist_playlists"].tolist() == [3, 3, 2, 0]
    assert frame["crowd_tags"].tolist()[0] == ["rock", "summer"]
    assert cf.normalise_title_words("Rock the Summer!!") == ["rock", "summer"]
    with pytest.raises(ValueError, match="top_k"):
        cf.crowd_tags(snap, top_k=-1)


def test_catalog_popularity_matches_the_snapshot(tmp_path: Path, catalog: Catalog) -> None:
    from segue.snapshot.from_catalog import build_snapshot

    ingest_paths(
        catalog, [write_slice(tmp_path / "s.json", make_playlists(8, seed=6))], progress=False
    )
    snap = build_snapshot(catalog)
    tracks, artists = cf.catalog_popularity(catalog)
    assert tracks["track_id"].tolist() == snap.tracks["track_id"].tolist()
    assert tracks["playlists"].tolist() == cf.track_popularity(snap).tolist()
    by_key = artists.set_index("artist_key")["playlists"]
    assert by_key.reindex(snap.artists.index).tolist() == cf.artist_popularity(snap).tolist()
    tags = cf.crowd_tags(snap)
    assert len(tags) == snap.n_tracks
    titles = set(snap.playlists["name"].str.lower())
    assert all(any(tag in t for t in titles) for row in tags for tag in row)


def test_added_tracks_lists_what_came_from_outside_the_slices(tmp_path: Path) -> None:
    with Catalog.open(tmp_path / "c.duckdb") as cat:
        ingest_paths(cat, [write_slice(tmp_path / "s.json", make_playlists(2))], progress=False)
        assert cat.added_tracks() == []
        cat.upsert_tracks(
            [TrackFacts("N" * 22, name="New", artists=[ArtistRef("Someone")], source="spotify")]
        )
        rows = cat.added_tracks()
    assert [(r["track_id"], r["name"], r["artist"], r["source"]) for r in rows] == [
        ("N" * 22, "New", "Someone", "spotify")
    ]
