"""The bundled demo data and the demo catalog built from it."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from segue.catalog import Catalog
from segue.catalog.bundled import (
    demo_home,
    demo_info,
    demo_table_path,
    ensure_demo_catalog,
    is_demo_catalog,
)
from segue.core.home import Home
from tests.conftest import REPO, shared

# Measured on the bundled table (= the TidyTuesday CSV): 32,833 rows, 471 playlists,
# 28,356 unique track ids of which 4 have no name and artist (R's NA, 5 rows);
# 582 repeats of a track within a playlist.
ROWS = 32_833
PLAYLISTS = 471
UNIQUE_TRACK_IDS = 28_356
DEMO_TRACKS = 28_352
DEMO_ROWS = ROWS - 582 - 5


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_demo_catalog(tmp_path_factory.mktemp("demo-home"))


def query(path: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with Catalog.open(path, read_only=True) as catalog:
        return catalog.con.execute(sql, params or []).fetchall()


def test_bundled_table_is_small_and_complete() -> None:
    path = demo_table_path()
    assert path.stat().st_size < 4_000_000
    table = pq.read_table(path)
    assert len(table) == ROWS
    assert len(pc.unique(table["playlist_id"])) == PLAYLISTS
    assert len(pc.unique(table["track_id"])) == UNIQUE_TRACK_IDS
    named = table.filter(
        pc.and_(pc.is_valid(table["track_name"]), pc.is_valid(table["track_artist"]))
    )
    assert len(pc.unique(named["track_id"])) == DEMO_TRACKS
    manifest = json.loads((path.parent / "manifest.json").read_text())
    assert (manifest["rows"], manifest["playlists"], manifest["unique_tracks"]) == (
        ROWS,
        PLAYLISTS,
        UNIQUE_TRACK_IDS,
    )


def test_demo_catalog_counts(demo: Path) -> None:
    with Catalog.open(demo, read_only=True) as catalog:
        counts = catalog.counts()
        facts = catalog.fact_counts()
    assert counts["playlists"] == PLAYLISTS
    assert counts["unique_tracks"] == DEMO_TRACKS
    assert counts["tracks"] == DEMO_ROWS
    assert facts["tracks_with_audio_features"] == DEMO_TRACKS
    assert facts["tracks_with_release_date"] == DEMO_TRACKS
    assert facts["artists_with_genres"] == counts["unique_artists"]
    assert is_demo_catalog(demo)
    info = demo_info(demo)
    assert info is not None and info["playlists"] == PLAYLISTS and info["tracks"] == DEMO_TRACKS


def test_demo_playlists_follow_the_file(demo: Path) -> None:
    table = pq.read_table(demo_table_path()).to_pydict()
    first_seen: dict[str, str] = {}
    for pid, name in zip(table["playlist_id"], table["playlist_name"], strict=True):
        first_seen.setdefault(pid, name)
    names = [r[0] for r in query(demo, "SELECT name FROM playlists ORDER BY pid")]
    assert names == list(first_seen.values())
    assert [r[0] for r in query(demo, "SELECT pid FROM playlists ORDER BY pid")] == list(
        range(PLAYLISTS)
    )
    # Playlist 0 holds its rows in file order, each track once.
    spotify_id = next(iter(first_seen))
    expected = [
        t
        for t, p, n in zip(
            table["track_id"], table["playlist_id"], table["track_name"], strict=True
        )
        if p == spotify_id and n
    ]
    got = [
        r[0] for r in query(demo, "SELECT track_id FROM playlist_tracks WHERE pid = 0 ORDER BY pos")
    ]
    assert got == list(dict.fromkeys(expected))
    assert query(
        demo,
        "SELECT count(*) FROM (SELECT pid, track_id FROM playlist_tracks GROUP BY ALL HAVING count(*) > 1)",
    ) == [(0,)]


def test_demo_tracks_and_artists_carry_the_table_facts(demo: Path) -> None:
    rows = query(
        demo,
        "SELECT t.name, a.name, a.artist_id, t.album_name, t.release_date, t.popularity, t.duration_ms, f.tempo "
        "FROM tracks t JOIN artists a USING (artist_key) JOIN audio_features f USING (track_id) WHERE t.track_id = ?",
        ["6f807x0ima9a1j3VPbc7VN"],
    )
    assert rows == [
        (
            "I Don't Care (with Justin Bieber) - Loud Luxury Remix",
            "Ed Sheeran",
            None,
            "I Don't Care (with Justin Bieber) [Loud Luxury Remix]",
            "2019-06-14",
            66,
            194754,
            pytest.approx(122.036, abs=1e-3),
        )
    ]
    # An artist's genre tags: every playlist genre and subgenre its tracks appear under.
    table = pq.read_table(demo_table_path()).to_pydict()
    labels = {
        lab
        for a, g, s in zip(
            table["track_artist"], table["playlist_genre"], table["playlist_subgenre"], strict=True
        )
        if a == "Ed Sheeran"
        for lab in (g, s)
    }
    genres = query(demo, "SELECT genres FROM artists WHERE name = 'Ed Sheeran'")[0][0]
    assert set(genres) == labels and len(genres) == len(labels)


def test_ensure_demo_catalog_is_idempotent(demo: Path) -> None:
    stamp = demo.stat().st_mtime_ns
    assert ensure_demo_catalog(demo.parent) == demo
    assert demo.stat().st_mtime_ns == stamp
    assert sorted(p.name for p in demo.parent.iterdir()) == ["catalog.duckdb"]  # no leftovers


def test_a_failed_build_leaves_no_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import segue.catalog.bundled

    def boom(path: Path, table: Path) -> dict[str, int]:
        path.write_bytes(b"half")
        raise RuntimeError("interrupted")

    monkeypatch.setattr(segue.catalog.bundled, "build_demo_catalog", boom)
    with pytest.raises(RuntimeError):
        ensure_demo_catalog(tmp_path / "h")
    assert list((tmp_path / "h").iterdir()) == []


def test_demo_home(home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SEGUE_DEMO_HOME", raising=False)
    assert demo_home(Home.resolve(None)) == Home.resolve(None).demo.root == home / "demo"
    assert demo_home(Home(tmp_path / "other")) == tmp_path / "other" / "demo"
    monkeypatch.setenv("SEGUE_DEMO_HOME", str(tmp_path / "elsewhere"))
    assert demo_home(Home.resolve(None)) == tmp_path / "elsewhere"


def test_snapshot_and_crowd_tags_from_the_demo(demo: Path) -> None:
    from segue.snapshot.derived import crowd_tags, track_popularity
    from segue.snapshot.from_catalog import build_snapshot

    with Catalog.open(demo, read_only=True) as catalog:
        snap = build_snapshot(catalog)
    assert (snap.n_playlists, snap.n_tracks, snap.interactions.nnz) == (
        PLAYLISTS,
        DEMO_TRACKS,
        DEMO_ROWS,
    )
    i = snap.track_index("6f807x0ima9a1j3VPbc7VN")
    assert track_popularity(snap)[i] == 2
    tags = crowd_tags(snap, top_k=5)
    assert "remix" in tags[i]
    assert sum(1 for t in tags if t) > 0.9 * DEMO_TRACKS


@pytest.mark.realdata
@pytest.mark.slow
def test_build_script_is_reproducible(tmp_path: Path) -> None:
    source = shared("features", "tidytuesday_spotify_songs.csv.gz")
    spec = importlib.util.spec_from_file_location("build_demo", REPO / "scripts" / "build_demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.build(source, tmp_path / "a")
    module.build(source, tmp_path / "b")
    name = module.TABLE_NAME
    assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / "manifest.json").read_text() == (
        tmp_path / "b" / "manifest.json"
    ).read_text()
    # The bundled file holds the same data (bytes may differ with another pyarrow version).
    assert pq.read_table(tmp_path / "a" / name).equals(pq.read_table(demo_table_path()))


def test_a_default_model_that_does_not_load_is_not_ready(tmp_path: Path) -> None:
    from segue.fitting.demo import demo_ready

    model_dir = tmp_path / "artifacts" / "models" / "hybrid"
    assert not demo_ready(tmp_path)
    model_dir.mkdir(parents=True)
    (model_dir / "model.json").write_text('{"name": "hybrid", "params": {}}')
    assert not demo_ready(tmp_path)  # no snapshot, no state: rebuilt, not served broken


def test_a_demo_catalog_of_another_schema_is_kept_aside_and_rebuilt(
    demo: Path, tmp_path: Path
) -> None:
    import duckdb

    from segue.catalog.core import SCHEMA_VERSION, schema_version_of
    from segue.fitting.demo import _set_aside_old_catalog

    home = tmp_path / "home"
    home.mkdir()
    old = home / "catalog.duckdb"
    con = duckdb.connect(str(old))
    con.execute("CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
    con.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    con.execute("CREATE TABLE tracks (track_id VARCHAR PRIMARY KEY)")
    con.execute("INSERT INTO tracks VALUES ('kept')")
    con.close()
    said: list[str] = []
    _set_aside_old_catalog(home, said.append)
    kept = home / "catalog.duckdb.schema-1.old"
    assert not old.exists() and kept.exists()
    assert "schema version 1" in said[0] and kept.name in said[0]
    con = duckdb.connect(str(kept), read_only=True)
    assert con.execute("SELECT track_id FROM tracks").fetchall() == [("kept",)]  # nothing lost
    con.close()
    ensure_demo_catalog(home)
    assert schema_version_of(old) == SCHEMA_VERSION
    said.clear()
    _set_aside_old_catalog(home, said.append)  # a current catalog stays where it is
    assert old.exists() and not said
    assert schema_version_of(demo) == SCHEMA_VERSION


def test_the_demo_keeps_which_labels_each_playlist_gave_as_genres(demo: Path) -> None:
    """Artist genres of the demo are its playlists' labels; the snapshot knows which playlist
    gave which, so validation can leave a held-out playlist's labels out."""
    from segue.snapshot.derived import GENRE_LABELS, has_playlist_labels, without_playlist_labels
    from segue.snapshot.from_catalog import build_snapshot

    table = pq.read_table(demo_table_path()).to_pydict()
    first = table["playlist_id"][0]
    expected = {
        label
        for pid, g, s in zip(
            table["playlist_id"], table["playlist_genre"], table["playlist_subgenre"], strict=True
        )
        if pid == first
        for label in (g, s)
        if label
    }
    with Catalog.open(demo, read_only=True) as catalog:
        snap = build_snapshot(catalog)
    assert has_playlist_labels(snap)
    assert set(snap.playlists[GENRE_LABELS].iloc[0]) == expected
    # every genre of an artist is a label of one of its playlists, and leaving out every
    # playlist's labels leaves no genre at all
    everything = without_playlist_labels(snap, range(snap.n_playlists))
    assert sum(len(g) for g in everything.artists["genres"]) == 0
    assert sum(len(g) for g in snap.artists["genres"]) > 0
