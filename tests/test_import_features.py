"""Feature tables into the catalog: ``segue import-features`` and providers/tables.py."""

from __future__ import annotations

import csv
import gzip
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from segue.catalog import Catalog
from segue.catalog.tables import (
    genre_style,
    import_feature_table,
    parse_genres,
    read_feature_table,
)
from segue.cli import app
from segue.cli._registry import register_all
from segue.core.errors import InputFileError
from tests.conftest import fake_id, shared

register_all(app)
runner = CliRunner()
RNG = random.Random(11)
TRACKS = [fake_id(RNG) for _ in range(6)]
ARTISTS = [fake_id(RNG) for _ in range(3)]


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    cat = Catalog.open(tmp_path / "c.duckdb")
    yield cat
    cat.close()


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def everything(catalog: Catalog) -> tuple[Any, ...]:
    q = catalog.con.execute
    return (
        q("SELECT * EXCLUDE (added_at) FROM tracks ORDER BY track_id").fetchall(),
        q("SELECT * EXCLUDE (updated_at) FROM artists ORDER BY artist_key").fetchall(),
        q("SELECT * EXCLUDE (fetched_at) FROM audio_features ORDER BY track_id").fetchall(),
    )


HEADER = [
    "track_uri",
    "track_name",
    "artist_id",
    "artist_name",
    "artist_genres",
    "track_popularity",
    "release_date",
    "danceability",
    "energy",
]


def good_rows() -> list[list[Any]]:
    return [
        [
            f"spotify:track:{TRACKS[0]}",
            "One",
            ARTISTS[0],
            "Alpha",
            "['permanent wave', 'pop']",
            80,
            "2001-02-03",
            0.5,
            0.7,
        ],
        [
            f"https://open.spotify.com/intl-de/track/{TRACKS[1]}?si=abc",
            "Two",
            f"spotify:artist:{ARTISTS[1]}",
            "Beta",
            "[]",
            20,
            "1999",
            0.1,
            "",
        ],
        [TRACKS[2], "Three", ARTISTS[0], "Alpha", "['permanent wave', 'pop']", "", "", "", ""],
    ]


# ---------------------------------------------------------------------------------------
# genre cells


@pytest.mark.parametrize(
    ("cell", "style", "expected"),
    [
        ("['permanent wave', 'pop']", "auto", ["permanent wave", "pop"]),
        ('["k-pop", "j-pop"]', "auto", ["k-pop", "j-pop"]),
        ("[children's music]", "auto", ["children's music"]),  # not a literal: split the inside
        ("['a', 'a', ' b ']", "auto", ["a", "b"]),
        ("[]", "auto", []),
        ("unknown", "underscore", []),
        ("album_rock glam_rock", "auto", ["album rock", "glam rock"]),
        ("rock metal", "underscore", ["rock", "metal"]),
        ("punk_'n'_roll skate_punk", "underscore", ["punk 'n' roll", "skate punk"]),
        ("dance pop", "auto", ["dance pop"]),
        ("pop, dance pop", "auto", ["pop", "dance pop"]),
        ("", "auto", None),
        (None, "auto", None),
        (float("nan"), "auto", None),
        (["a", "b"], "auto", ["a", "b"]),
    ],
)
def test_parse_genres(cell: Any, style: str, expected: list[str] | None) -> None:
    assert parse_genres(cell, style) == expected


@pytest.mark.parametrize("depth", [3_000, 20_000])
def test_deeply_nested_genre_cells_do_not_crash(depth: int) -> None:
    got = parse_genres("[" * depth + "]" * depth)
    assert isinstance(got, list) and all(isinstance(g, str) for g in got)


def test_genre_cells_are_never_evaluated(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    cell = f"[__import__('pathlib').Path({str(marker)!r}).touch()]"
    got = parse_genres(cell)
    assert not marker.exists()
    assert isinstance(got, list) and all(isinstance(g, str) for g in got)


def test_genre_style_by_column() -> None:
    assert genre_style(["album_rock glam_rock", "rock", None, "unknown"]) == "underscore"
    assert genre_style(["['pop']", "album_rock"]) == "auto"
    assert genre_style(["dance pop", "rock"]) == "auto"


# ---------------------------------------------------------------------------------------
# tables made here


def test_track_table_with_a_bad_id_row(tmp_path: Path, catalog: Catalog) -> None:
    rows = good_rows()
    rows.insert(
        1, ["spotify:album:" + TRACKS[3], "Wrong kind", ARTISTS[2], "Gamma", "", 1, "", 0.2, 0.2]
    )
    rows.append(["not-an-id", "Bad", ARTISTS[2], "Gamma", "", 1, "", 0.2, 0.2])
    path = write_csv(tmp_path / "t.csv", HEADER, rows)
    report = import_feature_table(catalog, path)
    assert report.table.bad_id_lines == [3, 6]  # header is line 1
    assert (report.result.tracks_new, report.result.audio_features) == (3, 2)
    summary = report.summary()
    assert "2 rows with a malformed id (lines 3, 6)" in summary
    assert "tracks 3 new" in summary
    got = catalog.con.execute(
        "SELECT t.track_id, t.name, a.name, a.artist_id, a.genres, a.popularity, t.popularity, t.release_date "
        "FROM tracks t JOIN artists a USING (artist_key) ORDER BY t.name"
    ).fetchall()
    assert got == [
        (TRACKS[0], "One", "Alpha", ARTISTS[0], ["permanent wave", "pop"], None, 80, "2001-02-03"),
        (TRACKS[2], "Three", "Alpha", ARTISTS[0], ["permanent wave", "pop"], None, None, None),
        (TRACKS[1], "Two", "Beta", ARTISTS[1], [], None, 20, "1999"),
    ]
    feats = catalog.con.execute(
        "SELECT track_id, danceability, energy FROM audio_features ORDER BY danceability"
    ).fetchall()
    assert feats == [(TRACKS[1], pytest.approx(0.1), None), (TRACKS[0], 0.5, pytest.approx(0.7))]
    assert catalog.fact_counts() == {
        "tracks_with_audio_features": 2,
        "tracks_with_release_date": 2,
        "artists_with_genres": 1,
    }
    # Importing the same file again changes nothing.
    before = everything(catalog)
    again = import_feature_table(catalog, path)
    assert (again.result.tracks_new, again.result.tracks_updated) == (0, 0)
    assert everything(catalog) == before


def test_every_row_bad_is_an_error_and_stores_nothing(tmp_path: Path, catalog: Catalog) -> None:
    path = write_csv(
        tmp_path / "bad.csv", ["track_id", "energy"], [["nope", 0.1], ["spotify:track:short", 0.2]]
    )
    with pytest.raises(
        InputFileError,
        match=r"bad\.csv at lines 2, 3: no row has a valid Spotify id in column 'track_id'",
    ):
        import_feature_table(catalog, path)
    assert catalog.fact_counts()["tracks_with_audio_features"] == 0


def test_no_id_column_or_empty_file(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "x.csv", ["title", "energy"], [["a", 1]])
    with pytest.raises(InputFileError, match="no Spotify id column"):
        read_feature_table(path)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InputFileError, match="empty"):
        read_feature_table(tmp_path / "empty.csv")
    header_only = write_csv(tmp_path / "h.csv", ["track_id"], [])
    with pytest.raises(InputFileError, match="no data rows"):
        read_feature_table(header_only)


def test_artist_table_with_repeated_headers(tmp_path: Path, catalog: Catalog) -> None:
    """The seed artist table's shape: a bare-id column named '0', a header line every second line."""
    lines = ["0,artist_pop,genres"]
    data = [
        (ARTISTS[0], 35, "british_singer-songwriter"),
        (ARTISTS[1], 0, "unknown"),
        ("bad id", 5, "x"),
        (ARTISTS[2], 90, "album_rock glam_rock"),
    ]
    for i, (aid, pop, genres) in enumerate(data):
        lines.append(f"{aid},{pop},{genres}")
        if i < len(data) - 1:
            lines.append("0,artist_pop,genres")
    path = tmp_path / "artists.csv"
    path.write_text("\n".join(lines) + "\n")
    report = import_feature_table(catalog, path)
    t = report.table
    assert (t.kind, t.rows, t.repeated_headers, t.bad_id_lines) == ("artists", 4, 3, [6])
    assert (
        "skipped 3 repeated header lines and 1 rows with a malformed id (lines 6)"
        in report.summary()
    )
    got = catalog.con.execute(
        "SELECT artist_id, name, genres, popularity FROM artists ORDER BY popularity"
    ).fetchall()
    assert got == [
        (ARTISTS[1], "", [], 0),
        (ARTISTS[0], "", ["british singer-songwriter"], 35),
        (ARTISTS[2], "", ["album rock", "glam rock"], 90),
    ]
    assert catalog.fact_counts()["artists_with_genres"] == 2
    assert catalog.search_artists("") == []  # unnamed artists are not listed by name


def test_bucketed_columns_are_not_stored(tmp_path: Path, catalog: Catalog) -> None:
    header = [
        "track_uri",
        "artist_uri",
        "danceability",
        "Track_release_date",
        "Track_pop",
        "Artist_pop",
        "Artist_genres",
    ]
    rows = [
        [TRACKS[0], ARTISTS[0], 0.4, 39, 12, 14, "album_rock rock"],
        [TRACKS[1], ARTISTS[1], 0.6, 40, 3, 2, "pop"],
    ]
    path = write_csv(tmp_path / "processed.csv", header, rows)
    catalog.upsert_tracks([])  # nothing
    report = import_feature_table(catalog, path)
    notes = " ".join(report.table.notes)
    assert "'Track_release_date' holds year // 50 buckets" in notes
    assert "'Track_pop' holds popularity // 5 buckets" in notes
    assert "'Artist_pop'" in notes
    assert report.result.audio_features == 2
    assert report.result.tracks_new == 0  # no names: nothing to show, only features stored
    assert catalog.con.execute(
        "SELECT artist_id, genres, popularity FROM artists ORDER BY artist_id"
    ).fetchall() == sorted(
        [(ARTISTS[0], ["album rock", "rock"], None), (ARTISTS[1], ["pop"], None)]
    )
    assert catalog.fact_counts()["tracks_with_release_date"] == 0


def test_playlist_labels_fill_genres_without_overwriting(tmp_path: Path, catalog: Catalog) -> None:
    catalog.upsert_tracks([])
    header = [
        "track_id",
        "track_name",
        "track_artist",
        "playlist_genre",
        "playlist_subgenre",
        "year",
    ]
    first = write_csv(
        tmp_path / "a.csv",
        header,
        [
            [TRACKS[0], "A", "Alpha", "pop", "dance pop", 2010],
            [TRACKS[1], "B", "Alpha", "rock", "hard rock", 2011],
            [TRACKS[2], "C", "Beta", "rap", "trap", 2012],
        ],
    )
    report = import_feature_table(catalog, first)
    assert "labels stored as artist genres" in " ".join(report.table.notes)
    genres = dict(catalog.con.execute("SELECT name, genres FROM artists").fetchall())
    assert genres == {"Alpha": ["pop", "dance pop", "rock", "hard rock"], "Beta": ["rap", "trap"]}
    # A 'year' column gives a year, not a release date.
    assert catalog.con.execute(
        "SELECT release_date, release_year FROM tracks WHERE name = 'A'"
    ).fetchall() == [(None, 2010)]
    # Real genres overwrite labels; labels never overwrite real genres.
    catalog.upsert_artists([])
    second = write_csv(
        tmp_path / "b.csv",
        ["track_id", "track_name", "artist_name", "artist_genres"],
        [[TRACKS[2], "C", "Beta", "['southern hip hop']"]],
    )
    import_feature_table(catalog, second)
    import_feature_table(catalog, first)
    assert catalog.scalar("SELECT genres FROM artists WHERE name = 'Beta'") == ["southern hip hop"]


def test_parquet_and_gzip_tables(tmp_path: Path, catalog: Catalog) -> None:
    table = pa.table(
        {
            "id": [TRACKS[0], TRACKS[1]],
            "name": ["P1", "P2"],
            "artists": ["['Solo']", "['Duo A', 'Duo B']"],
            "id_artists": [f"['{ARTISTS[0]}']", f"['{ARTISTS[1]}', '{ARTISTS[2]}']"],
            "popularity": [10, 20],
            "release_date": ["1990-05-01", "1991"],
            "tempo": [100.0, 120.0],
            "Time Signature": [4, 3],
        }
    )
    pq.write_table(table, tmp_path / "k.parquet")
    report = import_feature_table(catalog, tmp_path / "k.parquet", source="kaggle")
    assert report.result.tracks_new == 2
    assert catalog.con.execute(
        "SELECT x.position, a.name, a.artist_id FROM track_artists x JOIN artists a USING (artist_key) ORDER BY x.position"
    ).fetchall() == [(0, "Duo A", ARTISTS[1]), (1, "Duo B", ARTISTS[2])]
    assert catalog.con.execute("SELECT DISTINCT source FROM tracks").fetchall() == [("kaggle",)]
    assert catalog.con.execute(
        "SELECT time_signature FROM audio_features ORDER BY tempo"
    ).fetchall() == [(4.0,), (3.0,)]
    gz = tmp_path / "t.csv.gz"
    gz.write_bytes(gzip.compress(write_csv(tmp_path / "t.csv", HEADER, good_rows()).read_bytes()))
    assert import_feature_table(catalog, gz).table.rows == 3


def test_a_failure_while_writing_stores_nothing_from_the_file(
    tmp_path: Path, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_csv(tmp_path / "t.csv", HEADER, good_rows())

    def boom(self: Catalog) -> int:
        raise RuntimeError("interrupted")

    monkeypatch.setattr(Catalog, "_write_audio_features", boom)
    with pytest.raises(RuntimeError):
        import_feature_table(catalog, path)
    assert everything(catalog) == ([], [], [])


# ---------------------------------------------------------------------------------------
# the command


def test_cli_import_features(tmp_path: Path, home: Path) -> None:
    path = write_csv(
        tmp_path / "t.csv", HEADER, [*good_rows(), ["xx", "Bad", "", "", "", "", "", "", ""]]
    )
    result = runner.invoke(app, ["import-features", str(path), "--source", "mine"])
    assert result.exit_code == 0, result.output
    assert "t.csv: 4 track rows; tracks 3 new, 0 updated" in result.stdout
    assert "1 rows with a malformed id (lines 5)" in result.stdout
    assert (
        "catalog: 2 tracks with audio features, 2 with a release date, 1 artists with genres"
        in result.stdout
    )
    stats = json.loads(runner.invoke(app, ["stats", "--json"]).stdout)
    assert (
        stats["tracks_with_audio_features"],
        stats["tracks_with_release_date"],
        stats["artists_with_genres"],
    ) == (2, 2, 1)
    bad = write_csv(tmp_path / "bad.csv", ["track_id"], [["nope"]])
    result = runner.invoke(app, ["import-features", str(bad)])
    assert result.exit_code == 1
    assert (
        "no row has a valid Spotify id" in result.stderr
        and "nothing from this file was stored" in result.stderr
    )
    result = runner.invoke(app, ["import-features", str(bad), str(path), "--skip-bad"])
    assert result.exit_code == 0
    assert "1 file(s) could not be imported" in result.stderr


# ---------------------------------------------------------------------------------------
# the real tables in ../shared/data/features (counts measured on those files)

REAL = {
    # file: (kind, rows, repeated headers, bad ids, tracks new, audio features, artists new)
    "seed_artist_features.csv": ("artists", 55_379, 55_378, 0, 0, 0, 55_379),
    "seed_processed_tracks.csv": ("tracks", 114, 0, 0, 0, 114, 55),
    "top_hits_2000_2022.csv": ("tracks", 2_300, 0, 0, 2_202, 2_201, 891),
    "tidytuesday_spotify_songs.csv.gz": ("tracks", 32_833, 0, 0, 28_352, 28_356, 10_685),
}


@pytest.mark.realdata
@pytest.mark.parametrize("name", sorted(REAL))
def test_real_feature_tables_import(name: str, catalog: Catalog) -> None:
    path = shared("features", name)
    kind, rows, headers, bad, new, features, artists = REAL[name]
    report = import_feature_table(catalog, path)
    t, r = report.table, report.result
    assert (t.kind, t.rows, t.repeated_headers, t.bad_ids) == (kind, rows, headers, bad)
    assert (r.tracks_new, r.audio_features, r.artists_new) == (new, features, artists)
    facts = catalog.fact_counts()
    assert facts["tracks_with_audio_features"] == features
    if name == "seed_artist_features.csv":
        assert f"skipped {headers:,} repeated header lines" in report.summary()
        assert facts["artists_with_genres"] == 36_519  # 18,860 say 'unknown'
        assert catalog.scalar("SELECT count(*) FROM artists WHERE genres = []") == 18_860
    if name == "seed_processed_tracks.csv":
        assert len(t.notes) == 3 and facts["tracks_with_release_date"] == 0
    if name == "top_hits_2000_2022.csv":
        assert catalog.scalar("SELECT genres FROM artists WHERE name = 'Coldplay'") == [
            "permanent wave",
            "pop",
        ]
    if name == "tidytuesday_spotify_songs.csv.gz":
        assert r.tracks_skipped == 4  # NA track name and artist
        assert facts["tracks_with_release_date"] == new


@pytest.mark.realdata
@pytest.mark.slow
def test_real_tables_together_keep_one_artist_per_name(catalog: Catalog) -> None:
    for name in (
        "seed_artist_features.csv",
        "tidytuesday_spotify_songs.csv.gz",
        "top_hits_2000_2022.csv",
    ):
        import_feature_table(catalog, shared("features", name))
    dupes = catalog.scalar(
        "SELECT count(*) FROM (SELECT norm_name FROM artists WHERE norm_name <> '' AND artist_id IS NULL "
        "INTERSECT SELECT norm_name FROM artists WHERE artist_id IS NOT NULL)"
    )
    # Name-only artists left beside an id-known namesake only where several ids share the name.
    ambiguous = catalog.scalar(
        "SELECT count(*) FROM (SELECT norm_name FROM artists WHERE artist_id IS NOT NULL AND norm_name <> '' "
        "GROUP BY norm_name HAVING count(*) > 1)"
    )
    assert dupes <= ambiguous
    assert catalog.scalar(
        "SELECT genres FROM artists WHERE name = 'Coldplay' AND artist_id IS NOT NULL"
    ) == [
        "permanent wave",
        "pop",
    ]
