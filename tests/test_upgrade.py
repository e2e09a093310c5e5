"""Upgrading a catalog of schema 1 (written by an earlier segue) to this one's schema."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from segue.catalog import SCHEMA_VERSION, Catalog
from segue.catalog.core import schema_version_of
from segue.catalog.ingest import ingest_paths
from segue.catalog.upgrade import upgrade_catalog
from segue.cli import app
from segue.cli._registry import register_all
from segue.core.errors import CatalogError
from tests.conftest import make_playlists, write_slice

register_all(app)
runner = CliRunner()

#: The schema of version 1, as an earlier segue created it (the old format under test).
SCHEMA_1 = """
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE SEQUENCE IF NOT EXISTS artist_key_seq START 1;
CREATE TABLE IF NOT EXISTS artists (
    artist_key BIGINT PRIMARY KEY,
    artist_id VARCHAR,              -- Spotify id; NULL while the artist is known by name only
    name VARCHAR NOT NULL,
    norm_name VARCHAR NOT NULL,
    popularity SMALLINT,            -- Spotify 0-100 where known
    genres VARCHAR[],               -- NULL = not known yet, [] = known to have none
    source VARCHAR,
    updated_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS albums (
    album_id VARCHAR PRIMARY KEY,
    name VARCHAR,
    release_date VARCHAR,
    release_year SMALLINT
);
CREATE TABLE IF NOT EXISTS tracks (
    track_id VARCHAR PRIMARY KEY,
    name VARCHAR,
    artist_key BIGINT NOT NULL,     -- primary artist
    album_id VARCHAR,
    album_name VARCHAR,
    duration_ms INTEGER,
    release_date VARCHAR,
    release_year SMALLINT,
    popularity SMALLINT,            -- Spotify 0-100 where known
    source VARCHAR,                 -- 'mpd', 'table', 'spotify', ...
    added_at TIMESTAMP DEFAULT current_timestamp
);
CREATE TABLE IF NOT EXISTS track_artists (
    track_id VARCHAR NOT NULL,
    position SMALLINT NOT NULL,
    artist_key BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS audio_features (
    track_id VARCHAR PRIMARY KEY,
    danceability REAL, energy REAL, "key" REAL, loudness REAL, "mode" REAL,
    speechiness REAL, acousticness REAL, instrumentalness REAL, liveness REAL,
    valence REAL, tempo REAL, time_signature REAL,
    source VARCHAR,
    fetched_at TIMESTAMP DEFAULT current_timestamp
);
CREATE TABLE IF NOT EXISTS ingested_files (
    file_id INTEGER PRIMARY KEY,
    path VARCHAR NOT NULL,
    content_hash VARCHAR NOT NULL,
    playlists INTEGER NOT NULL,
    rows BIGINT NOT NULL,
    salvaged BOOLEAN NOT NULL DEFAULT false,
    ingested_at TIMESTAMP DEFAULT current_timestamp
);
CREATE TABLE IF NOT EXISTS playlists (
    pid BIGINT PRIMARY KEY,
    name VARCHAR,
    description VARCHAR,
    collaborative BOOLEAN,
    modified_at BIGINT,
    num_tracks INTEGER,
    num_albums INTEGER,
    num_followers INTEGER,
    num_edits INTEGER,
    duration_ms BIGINT,
    num_artists INTEGER,
    file_id INTEGER
);
CREATE TABLE IF NOT EXISTS staged_tracks (
    track_id VARCHAR NOT NULL,
    track_name VARCHAR,
    artist_name VARCHAR,
    artist_id VARCHAR,
    album_id VARCHAR,
    album_name VARCHAR,
    duration_ms INTEGER
);
CREATE TABLE IF NOT EXISTS playlist_tracks (
    pid BIGINT NOT NULL,
    pos INTEGER NOT NULL,
    track_id VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS fetch_log (
    logged_at TIMESTAMP DEFAULT current_timestamp,
    run_id VARCHAR,
    provider VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,          -- 'tracks', 'artists', 'audio_features', ...
    ids VARCHAR[],
    status VARCHAR NOT NULL,        -- 'ok', 'error', 'not_found', 'skipped'
    reason VARCHAR
);
CREATE TABLE IF NOT EXISTS fetch_attempts (
    provider VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    id VARCHAR NOT NULL,
    status VARCHAR NOT NULL,        -- 'ok', 'not_found', 'unavailable'
    logged_at TIMESTAMP DEFAULT current_timestamp,
    PRIMARY KEY (provider, kind, id)
);"""
TABLES = (
    "meta",
    "artists",
    "albums",
    "tracks",
    "track_artists",
    "audio_features",
    "ingested_files",
    "playlists",
    "playlist_tracks",
    "fetch_log",
    "fetch_attempts",
)


def version_1_copy(current: Path, target: Path) -> Path:
    """A schema-1 catalog holding what the current catalog at ``current`` holds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(target))
    con.execute(SCHEMA_1)
    con.execute(f"ATTACH '{current}' AS cur (READ_ONLY)")
    for table in TABLES:
        if table == "meta":
            con.execute("INSERT INTO meta SELECT * FROM cur.meta WHERE key <> 'schema_version'")
            con.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        else:
            con.execute(f"INSERT INTO {table} SELECT * FROM cur.{table}")
    top = con.execute("SELECT max(artist_key) FROM artists").fetchall()[0][0]
    con.execute(f"CREATE OR REPLACE SEQUENCE artist_key_seq START {top + 1}")
    con.execute("DETACH cur")
    con.close()
    return target


def everything(path: Path) -> dict[str, list[tuple[object, ...]]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {
            t: sorted(con.execute(f"SELECT * FROM {t}").fetchall(), key=repr)
            for t in TABLES
            if t != "meta"
        }
    finally:
        con.close()


@pytest.fixture
def catalogs(tmp_path: Path) -> tuple[Path, Path]:
    """(a current catalog with two ingested files, its schema-1 twin)."""
    current = tmp_path / "current.duckdb"
    with Catalog.open(current) as catalog:
        files = [
            write_slice(tmp_path / "a.json", make_playlists(6, seed=1, full=False)),
            write_slice(tmp_path / "b.json", make_playlists(6, seed=1, start_pid=100)),
        ]
        ingest_paths(catalog, files, progress=False)
    old = version_1_copy(current, tmp_path / "home" / "catalog.duckdb")
    return current, old


def test_upgrade_keeps_every_row_and_the_old_file(catalogs: tuple[Path, Path]) -> None:
    current, old = catalogs
    assert schema_version_of(old) == 1
    with pytest.raises(CatalogError, match="`segue upgrade` upgrades it"):
        Catalog.open(old, read_only=True)
    before = old.read_bytes()
    report = upgrade_catalog(old)
    assert report is not None and report.from_version == 1
    assert report.kept.read_bytes() == before  # the old file, untouched, beside the new one
    assert schema_version_of(old) == SCHEMA_VERSION
    assert everything(old) == everything(current)
    assert report.rows["playlist_tracks"] == len(everything(current)["playlist_tracks"])
    assert upgrade_catalog(old) is None  # already current


def test_an_upgraded_catalog_takes_more_files(catalogs: tuple[Path, Path], tmp_path: Path) -> None:
    _, old = catalogs
    upgrade_catalog(old)
    more = write_slice(tmp_path / "c.json", make_playlists(4, seed=9, start_pid=500))
    with Catalog.open(old) as catalog:
        keys_before = catalog.scalar("SELECT max(artist_key) FROM artists")
        again = ingest_paths(catalog, [tmp_path / "b.json"], progress=False)
        assert again.unchanged == 1  # content hashes came along
        ingest_paths(catalog, [more], progress=False)
        assert catalog.scalar("SELECT count(*) FROM artists") == catalog.scalar(
            "SELECT count(DISTINCT artist_key) FROM artists"
        )
        assert catalog.scalar(
            "SELECT min(artist_key) FROM artists WHERE artist_key > ?", [keys_before]
        ) in (None, keys_before + 1)
        assert catalog.counts()["playlists"] == 16


def test_an_interrupted_old_ingest_is_refused_and_nothing_changes(
    catalogs: tuple[Path, Path],
) -> None:
    _, old = catalogs
    con = duckdb.connect(str(old))
    con.execute("INSERT INTO staged_tracks (track_id) VALUES ('0000000000000000000000')")
    con.close()
    before = old.read_bytes()
    with pytest.raises(CatalogError, match="1 track rows of an interrupted ingest"):
        upgrade_catalog(old)
    assert old.read_bytes() == before
    assert sorted(p.name for p in old.parent.iterdir()) == ["catalog.duckdb"]


def test_upgrade_command(catalogs: tuple[Path, Path]) -> None:
    _, old = catalogs
    home = ["--home", str(old.parent)]
    stats = runner.invoke(app, [*home, "stats"])
    assert stats.exit_code != 0 and "segue upgrade" in stats.output
    done = runner.invoke(app, [*home, "upgrade"])
    assert done.exit_code == 0, done.output
    assert "upgraded" in done.output and "catalog.duckdb.schema-1.old" in done.output
    again = runner.invoke(app, [*home, "upgrade"])
    assert again.exit_code == 0 and "nothing to do" in again.output
    assert runner.invoke(app, [*home, "stats", "--json"]).exit_code == 0
    shutil.rmtree(old.parent)
    missing = runner.invoke(app, [*home, "upgrade"])
    assert missing.exit_code == 1 and "no catalog at" in missing.output


def test_a_file_in_the_way_of_the_kept_copy_stops_the_upgrade(
    catalogs: tuple[Path, Path],
) -> None:
    _, old = catalogs
    in_the_way = old.with_name("catalog.duckdb.schema-1.old")
    in_the_way.write_bytes(b"someone's file")
    before = old.read_bytes()
    with pytest.raises(CatalogError, match="is in the way; move it first"):
        upgrade_catalog(old)
    assert old.read_bytes() == before and in_the_way.read_bytes() == b"someone's file"
    assert sorted(p.name for p in old.parent.iterdir()) == [
        "catalog.duckdb",
        "catalog.duckdb.schema-1.old",
    ]
