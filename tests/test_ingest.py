from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from segue.catalog import SCHEMA_VERSION, Catalog
from segue.catalog.ingest import ingest_paths
from segue.catalog.playlists import KnownIds
from segue.cli import app
from segue.cli._registry import register_all
from segue.core.errors import CatalogError, InputFileError
from segue.formats.mpd import read_slice
from tests.conftest import make_playlists, shared, write_slice

register_all(app)
runner = CliRunner()


def snapshot_of(catalog: Catalog) -> tuple:
    """Everything a failed ingest must leave untouched."""
    q = catalog.con.execute
    return (
        catalog.counts(),
        q("SELECT * FROM playlist_tracks ORDER BY pid, pos").fetchall(),
        q("SELECT artist_key, artist_id, name FROM artists ORDER BY artist_key").fetchall(),
    )


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    cat = Catalog.open(tmp_path / "c.duckdb")
    yield cat
    cat.close()


def test_full_and_reduced_schema_and_artist_merge(tmp_path: Path, catalog: Catalog) -> None:
    reduced = write_slice(tmp_path / "reduced.json", make_playlists(5, seed=1, full=False))
    report = ingest_paths(catalog, [reduced], progress=False)
    assert report.playlists == 5
    name_only = catalog.scalar("SELECT count(*) FROM artists WHERE artist_id IS NULL")
    assert name_only > 0
    # The same tracks and artists, now with URIs: artists learn their id, nothing is duplicated.
    full = write_slice(tmp_path / "full.json", make_playlists(5, seed=1, start_pid=100, full=True))
    ingest_paths(catalog, [full], progress=False)
    assert catalog.scalar("SELECT count(*) FROM artists WHERE artist_id IS NULL") == 0
    assert catalog.scalar("SELECT count(*) FROM artists") == catalog.scalar(
        "SELECT count(DISTINCT norm_name) FROM artists"
    )
    assert catalog.scalar("SELECT count(*) FROM tracks WHERE album_id IS NULL") == 0
    assert catalog.counts()["playlists"] == 10
    consistent(catalog)


def test_reingest_changes_nothing(tmp_path: Path, catalog: Catalog) -> None:
    path = write_slice(tmp_path / "a.json", make_playlists(8))
    ingest_paths(catalog, [path], progress=False)
    before = snapshot_of(catalog)
    # Same content under another name and compressed: still recognised by content hash.
    gz = tmp_path / "copy.json.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    report = ingest_paths(catalog, [path, gz], progress=False)
    assert report.unchanged == 2
    assert snapshot_of(catalog) == before


def test_same_playlists_in_another_file_are_skipped_not_duplicated(
    tmp_path: Path, catalog: Catalog
) -> None:
    pls = make_playlists(6)
    ingest_paths(catalog, [write_slice(tmp_path / "a.json", pls[:4])], progress=False)
    report = ingest_paths(catalog, [write_slice(tmp_path / "b.json", pls[2:])], progress=False)
    assert report.results[0].duplicates == 2
    assert catalog.counts()["playlists"] == 6
    consistent(catalog)


def bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    ok = make_playlists(3)
    files: dict[str, tuple[Path, str]] = {}
    p = tmp_path / "invalid.json"
    p.write_text('{"playlists": [ {"pid": 1, }')
    files["invalid"] = (
        p,
        f"{p} at line 1, column 26 (byte 25): invalid JSON: trailing comma is not allowed",
    )
    p = tmp_path / "truncated.json"
    text = json.dumps({"playlists": ok})
    p.write_text(text[: len(text) // 2])
    files["truncated"] = (
        p,
        "invalid JSON: the file ends in the middle of a value (truncated download?)",
    )
    p = tmp_path / "latin1.json"
    p.write_bytes(
        json.dumps({"playlists": [{**ok[0], "name": "caf\u00e9"}]}, ensure_ascii=False).encode(
            "latin-1"
        )
    )
    files["latin1"] = (p, "bytes are not UTF-8 (0xe9: invalid continuation byte)")
    p = tmp_path / "list.json"
    p.write_text("[1, 2]")
    files["structure"] = (
        p,
        f"{p} at top level: expected an object with a 'playlists' list, got list",
    )
    p = tmp_path / "no-playlists.json"
    p.write_text('{"info": {}}')
    files["no_playlists"] = (p, "expected a 'playlists' list, got nothing")
    broken = json.loads(json.dumps(ok))
    del broken[1]["tracks"][2]["track_uri"]
    p = write_slice(tmp_path / "missing-uri.json", broken)
    files["missing_uri"] = (
        p,
        f"{p} at playlists[1].tracks[2] (pid 1): 'track_uri' must be like 'spotify:track:<22 base62 chars>', got None",
    )
    broken = json.loads(json.dumps(ok))
    broken[0]["pid"] = "zero"
    p = write_slice(tmp_path / "pid.json", broken)
    files["pid"] = (
        p,
        f"{p} at playlists[0]: 'pid' must be an integer from 0 to 9223372036854775807, got 'zero'",
    )
    broken = json.loads(json.dumps(ok))
    broken[2]["pid"] = broken[0]["pid"]
    p = write_slice(tmp_path / "dup.json", broken)
    files["dup_pid"] = (p, "pid 0 appears twice in this file")
    return files


@pytest.mark.parametrize(
    "case",
    [
        "invalid",
        "truncated",
        "latin1",
        "structure",
        "no_playlists",
        "missing_uri",
        "pid",
        "dup_pid",
    ],
)
def test_bad_input_is_refused_and_the_catalog_unchanged(
    tmp_path: Path, catalog: Catalog, case: str
) -> None:
    ingest_paths(
        catalog,
        [write_slice(tmp_path / "good.json", make_playlists(4, seed=9, start_pid=500))],
        progress=False,
    )
    before = snapshot_of(catalog)
    path, message = bad_files(tmp_path)[case]
    with pytest.raises(InputFileError) as info:
        ingest_paths(catalog, [path], progress=False)
    assert message in str(info.value)
    assert str(path) in str(info.value)
    assert snapshot_of(catalog) == before


def test_pid_conflict_with_other_content(tmp_path: Path, catalog: Catalog) -> None:
    first = write_slice(tmp_path / "first.json", make_playlists(3, seed=1))
    ingest_paths(catalog, [first], progress=False)
    before = snapshot_of(catalog)
    second = write_slice(tmp_path / "second.json", make_playlists(3, seed=2))
    with pytest.raises(InputFileError) as info:
        ingest_paths(catalog, [second], progress=False)
    assert str(info.value) == (
        f"{second} at playlist pid 0: pid 0 was already ingested from {first} with different content"
    )
    assert snapshot_of(catalog) == before


def test_cli_bad_file_one_line_error_and_exit_code(tmp_path: Path, home: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"playlists": [')
    result = runner.invoke(app, ["ingest", "-q", str(path)])
    assert result.exit_code == 1
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert lines == [
        f"error: {path} at line 1, column 16 (byte 15): invalid JSON: the file ends in the middle of a value "
        "(truncated download?)"
    ]
    assert (
        not (home / "catalog.duckdb").exists()
        or Catalog.open(home / "catalog.duckdb").counts()["playlists"] == 0
    )


def test_cli_skip_bad_summarises(tmp_path: Path, home: Path) -> None:
    good = write_slice(tmp_path / "in" / "a.json", make_playlists(4))
    bad = tmp_path / "in" / "b.json"
    bad.write_text("[]")
    result = runner.invoke(app, ["ingest", "-q", "--skip-bad", str(tmp_path / "in")])
    assert result.exit_code == 0, result.output
    assert "ingested 1 file(s): 4 playlists" in result.stdout
    assert "skipped 1 bad file(s):" in result.stderr
    assert (
        f"{bad} at top level: expected an object with a 'playlists' list, got list" in result.stderr
    )
    assert good.exists()


def test_globs_folders_and_gzip(tmp_path: Path, catalog: Catalog) -> None:
    write_slice(tmp_path / "d" / "mpd.slice.0-2.json", make_playlists(3))
    gz = tmp_path / "d" / "sub" / "mpd.slice.3-5.json.gz"
    gz.parent.mkdir(parents=True)
    gz.write_bytes(
        gzip.compress(json.dumps({"playlists": make_playlists(3, seed=4, start_pid=3)}).encode())
    )
    report = ingest_paths(catalog, [str(tmp_path / "d")], progress=False)
    assert report.playlists == 6
    with pytest.raises(InputFileError, match="the pattern matches no file"):
        ingest_paths(catalog, [str(tmp_path / "nothing*.json")], progress=False)
    with pytest.raises(InputFileError, match="no such file or folder"):
        ingest_paths(catalog, [str(tmp_path / "missing.json")], progress=False)


def test_tar_archive(tmp_path: Path, catalog: Catalog) -> None:
    src = tmp_path / "src"
    write_slice(src / "mpd.slice.0-3.json", make_playlists(4))
    write_slice(src / "mpd.slice.4-7.json", make_playlists(4, seed=3, start_pid=4))
    archive = tmp_path / "slices.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src, arcname="slices")
    report = ingest_paths(catalog, [archive], progress=False)
    assert report.playlists == 8 and len(report.results) == 2


def test_schema_version_mismatch_leaves_the_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "c.duckdb"
    with Catalog.open(path) as cat:
        cat.con.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    data = path.read_bytes()
    with pytest.raises(
        CatalogError, match=f"has schema version 999, this segue uses {SCHEMA_VERSION}"
    ):
        Catalog.open(path)
    assert path.read_bytes() == data


def test_two_processes_share_one_catalog(tmp_path: Path) -> None:
    """A second writer waits for the lock instead of failing or corrupting the file."""
    path = tmp_path / "c.duckdb"
    files = [
        write_slice(tmp_path / f"s{i}.json", make_playlists(3, seed=i, start_pid=10 * i))
        for i in range(4)
    ]
    code = (
        "import sys; from segue.catalog import Catalog; from segue.catalog.ingest import ingest_paths\n"
        "with Catalog.open(sys.argv[1], wait=60) as c: ingest_paths(c, sys.argv[2:], progress=False)\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(path), str(f)], stderr=subprocess.PIPE)
        for f in files
    ]
    for p in procs:
        _, stderr = p.communicate(timeout=120)
        assert p.returncode == 0, stderr.decode()
    with Catalog.open(path, read_only=True) as cat:
        assert cat.counts()["playlists"] == 12


# --- the real files -----------------------------------------------------------------------


def test_real_truncated_file_fails_then_salvages_37(tmp_path: Path, catalog: Catalog) -> None:
    path = shared("mpd", "mpd.slice.0-999.truncated.json")
    with pytest.raises(InputFileError) as info:
        ingest_paths(catalog, [path], progress=False)
    assert str(info.value) == (
        f"{path} at line 21320, column 47 (byte 1048576): invalid JSON: the file ends in the middle of a value "
        "(truncated download?)"
    )
    assert catalog.counts()["playlists"] == 0
    report = ingest_paths(catalog, [path], salvage=True, progress=False)
    assert report.playlists == 37 and report.results[0].salvaged


def test_real_full_schema_slice(catalog: Catalog) -> None:
    path = shared("mpd", "mpd.slice.0-999.first29.json")
    report = ingest_paths(catalog, [path], progress=False)
    assert (report.playlists, report.rows) == (29, 1447)
    assert catalog.scalar("SELECT count(*) FROM artists WHERE artist_id IS NULL") == 0


@pytest.mark.slow
def test_real_dev_files_stats(tmp_path: Path, home: Path) -> None:
    archive = shared("mpd", "mpd-followers10-dev.tar.gz")
    result = runner.invoke(app, ["ingest", "-q", str(archive)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["stats", "--json"])
    data = json.loads(result.stdout)
    assert (data["playlists"], data["tracks"], data["unique_tracks"]) == (3574, 353119, 128663)
    for key in ("unique_artists", "unique_albums", "unique_titles"):
        assert key in data
    with Catalog.open(home / "catalog.duckdb", read_only=True) as cat:
        consistent(cat)
    # A folder of the extracted files is the same data: nothing changes.
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "x", filter="data")
    result = runner.invoke(app, ["ingest", "-q", str(tmp_path / "x")])
    assert "466 already in the catalog" in result.stdout
    text = runner.invoke(app, ["stats"]).stdout
    assert "number of playlists 3574" in text and "top tracks" in text
    shutil.rmtree(tmp_path / "x")


@pytest.mark.parametrize("full", [True, False])
def test_fast_reader_equals_the_exact_reader(tmp_path: Path, full: bool) -> None:
    from segue.formats.mpd import read_slice_data

    pls = make_playlists(20, seed=5, full=full)
    pls[3]["description"] = "road trip \u00e9t\u00e9 \U0001f697"
    data = write_slice(tmp_path / "s.json", pls).read_bytes()
    fast = read_slice_data("s", data)
    exact = read_slice_data("s", data, fast=False)
    assert fast.rows.equals(exact.rows)
    assert fast.playlists.equals(exact.playlists)


def _edge_slice(case: str) -> bytes:
    """A small valid slice, altered as ``case`` says (text level, so invalid JSON is possible)."""
    track = {
        "pos": 0,
        "track_uri": "spotify:track:" + "A" * 22,
        "track_name": "t",
        "artist_name": "a",
        "artist_uri": "spotify:artist:" + "B" * 22,
        "album_uri": "spotify:album:" + "C" * 22,
        "album_name": "al",
        "duration_ms": 1,
    }
    pls = [{"pid": pid, "name": "n", "tracks": [track]} for pid in (1, 2)]
    text = json.dumps({"info": {}, "playlists": pls})
    first = '"pid": 1, "name": "n"'
    altered = {
        "byte order mark": "\ufeff" + text,
        "two documents": text + "\n" + text,
        "two documents on one line": text + " " + text,
        "trailing garbage": text + " x",
        "top-level array": "[" + text + "]",
        "duplicate key": text.replace(first, first + ', "name": "m"', 1),
        "lone surrogate": text.replace(first, '"pid": 1, "name": "\\ud800"', 1),
        "name not a string": text.replace(first, '"pid": 1, "name": 5', 1),
        "null track": text.replace('"tracks": [{', '"tracks": [null, {', 1),
        "pid not an integer": text.replace(first, '"pid": 1.5, "name": "n"', 1),
        "nul and escapes": text.replace(first, '"pid": 1, "name": "a\\u0000\\/\\n"', 1),
        "duration beyond int32": text.replace('"duration_ms": 1', '"duration_ms": 3000000000', 1),
        "duration beyond int64": text.replace('"duration_ms": 1', '"duration_ms": 1' + "0" * 20, 1),
        "pos null everywhere": text.replace('"pos": 0', '"pos": null'),
        "pos null once": text.replace('"pos": 0', '"pos": null', 1),
        "track_uri null": text.replace(f'"{track["track_uri"]}"', "null", 1),
        "artist_name null": text.replace('"artist_name": "a"', '"artist_name": null', 1),
        "key not UTF-8": text,
    }[case]
    if case == "key not UTF-8":
        return text.encode("utf-8").replace(b'"name": "n"', b'"\xff": 1, "name": "n"', 1)
    return altered.encode("utf-8")


@pytest.mark.parametrize(
    "case",
    [
        "byte order mark",
        "two documents",
        "two documents on one line",
        "trailing garbage",
        "top-level array",
        "duplicate key",
        "lone surrogate",
        "name not a string",
        "null track",
        "pid not an integer",
        "nul and escapes",
        "duration beyond int32",
        "duration beyond int64",
        "pos null everywhere",
        "pos null once",
        "track_uri null",
        "artist_name null",
        "key not UTF-8",
    ],
)
def test_fast_reader_agrees_on_unusual_files(case: str) -> None:
    """Whatever the JSON reader of the fast path accepts, the result or the error is the one
    the exact path gives."""
    from segue.formats.mpd import read_slice_data

    data = _edge_slice(case)
    outcomes = []
    for fast in (True, False):
        try:
            cols = read_slice_data("x.json", data, fast=fast)
        except InputFileError as exc:
            outcomes.append(("error", str(exc)))
        else:
            outcomes.append(("ok", cols.rows.to_pylist(), cols.playlists.to_pylist()))
    assert outcomes[0] == outcomes[1]


def test_real_files_read_the_same_both_ways() -> None:
    from segue.formats.mpd import read_bytes, read_slice_data

    path = shared("mpd", "mpd.slice.0-999.first29.json")
    data = read_bytes(path)
    fast, exact = read_slice_data("x", data), read_slice_data("x", data, fast=False)
    assert fast.rows.equals(exact.rows) and fast.playlists.equals(exact.playlists)


def consistent(catalog: Catalog) -> None:
    """What every committed state of the catalog satisfies: no key twice, every row's track
    known with its artist, and the file records adding up to what is stored."""
    q = catalog.scalar
    for table, key in (("tracks", "track_id"), ("albums", "album_id"), ("playlists", "pid")):
        assert q(f"SELECT count(*) - count(DISTINCT {key}) FROM {table}") == 0, table
    assert q("SELECT count(*) FROM playlist_tracks r ANTI JOIN tracks t USING (track_id)") == 0
    assert q("SELECT count(*) FROM tracks t ANTI JOIN artists a USING (artist_key)") == 0
    assert q("SELECT coalesce(sum(playlists), 0) FROM ingested_files") == q(
        "SELECT count(*) FROM playlists"
    )
    assert q("SELECT coalesce(sum(rows), 0) FROM ingested_files") == q(
        "SELECT count(*) FROM playlist_tracks"
    )


def _twelve_files(tmp_path: Path) -> list[Path]:
    return [
        write_slice(
            tmp_path / f"s{i}.json",
            make_playlists(40, seed=i, start_pid=100 * i, full=i % 3 != 1),
        )
        for i in range(12)
    ]


def _resume_matches_a_clean_run(tmp_path: Path, path: Path, files: list[Path]) -> int:
    """Files the killed run left, after checking that the catalog is whole and that ingesting
    every file again gives what one clean run gives."""
    with Catalog.open(path) as cat:
        consistent(cat)
        left = int(cat.counts()["files"])
        assert left < len(files)
        ingest_paths(cat, files, progress=False)
        consistent(cat)
        resumed = cat.counts()
    with Catalog.open(tmp_path / "ref.duckdb") as ref:
        ingest_paths(ref, files, progress=False)
        assert ref.counts() == resumed
    return left


def _ingest_child(code: str, path: Path, files: list[Path]) -> subprocess.Popen[bytes]:
    """A Python process running ``code`` (with ``sys``, ``Catalog`` and ``ingest_paths``
    imported) on the catalog ``path`` and ``files`` given as arguments."""
    head = "import sys; from segue.catalog import Catalog; from segue.catalog.ingest import ingest_paths\n"
    return subprocess.Popen(
        [sys.executable, "-c", head + code, str(path), *map(str, files)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )


def test_killed_ingest_resumes_without_duplicates(tmp_path: Path) -> None:
    """A file's playlists, rows and new tracks commit together: an ingest killed at any point
    leaves whole files only, and running it again adds exactly what is missing."""
    path = tmp_path / "c.duckdb"
    files = _twelve_files(tmp_path)
    code = (
        "with Catalog.open(sys.argv[1]) as c:\n"
        "    for f in sys.argv[2:]:\n"
        "        ingest_paths(c, [f], progress=False); print('done', flush=True)\n"
    )
    with _ingest_child(code, path, files) as proc:
        assert proc.stdout is not None
        for _ in range(3):
            assert proc.stdout.readline().strip() == b"done"
        proc.kill()  # SIGKILL: no cleanup, wherever the child is in the next file
        proc.communicate(timeout=60)
    # Each ingest that returned had written its file to the catalog file.
    assert _resume_matches_a_clean_run(tmp_path, path, files) >= 3


@pytest.mark.parametrize("delay", [0.0, 0.3, 0.8])
def test_killed_bulk_ingest_resumes_without_duplicates(tmp_path: Path, delay: float) -> None:
    """`segue ingest` opens the catalog in bulk (no write-ahead log): killed at any point, it
    loses the files since its last checkpoint, whole, and a rerun adds exactly those."""
    path = tmp_path / "c.duckdb"
    files = _twelve_files(tmp_path)
    code = (
        "with Catalog.open(sys.argv[1], bulk=True) as c:\n"
        "    print('open', flush=True)\n"
        "    ingest_paths(c, sys.argv[2:], progress=False)\n"
        "    print('done', flush=True)\n"
    )
    with _ingest_child(code, path, files) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"open"
        time.sleep(delay)
        proc.kill()
        finished = proc.communicate(timeout=60)[0].strip() == b"done"
    if finished:  # the run ended before the kill: every file is in
        with Catalog.open(path) as cat:
            assert cat.counts()["files"] == len(files)
        return
    _resume_matches_a_clean_run(tmp_path, path, files)


def test_bulk_ingest_keeps_committed_files_when_it_stops_on_a_bad_one(tmp_path: Path) -> None:
    """Stopped by a bad file, a bulk ingest still writes the files before it to the catalog
    file (it has no write-ahead log to keep them in)."""
    good = _twelve_files(tmp_path)[:3]
    bad = tmp_path / "bad.json"
    bad.write_text('{"playlists": [')
    path = tmp_path / "c.duckdb"
    code = (
        "import os, sys; from segue.catalog import Catalog; from segue.catalog.ingest import ingest_paths\n"
        "c = Catalog.open(sys.argv[1], bulk=True)\n"
        "try:\n"
        "    ingest_paths(c, sys.argv[2:], progress=False)\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, flush=True)\n"
        "os._exit(0)  # no close: only what ingest wrote to the file is there\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(path), *map(str, good), str(bad)],
        capture_output=True,
        check=True,
    )
    assert proc.stdout.strip() == b"InputFileError"
    with Catalog.open(path) as cat:
        consistent(cat)
        assert cat.counts()["files"] == 3


def test_known_ids_decide_exactly_or_not_at_all() -> None:
    known = KnownIds(np.array([1, 5, 9], np.uint64), np.array([10, 50, 90], np.uint64))
    found = known.new_mask((np.array([7, 5, 1], np.uint64), np.array([70, 50, 10], np.uint64)))
    assert found is not None
    mask, new = found
    assert mask.tolist() == [True, False, False]
    known.add(new)
    assert known.first.tolist() == [1, 5, 7, 9] and known.second.tolist() == [10, 50, 70, 90]
    # Another id with a known first hash: the set cannot tell, the caller asks the catalog.
    assert known.new_mask((np.array([5], np.uint64), np.array([51], np.uint64))) is None
    # Two ids of one file with the same first hash: likewise.
    assert known.new_mask((np.array([3, 3], np.uint64), np.array([1, 2], np.uint64))) is None
    empty = KnownIds(np.array([], np.uint64), np.array([], np.uint64))
    found = empty.new_mask((np.array([4, 2], np.uint64), np.array([1, 2], np.uint64)))
    assert found is not None and found[0].tolist() == [True, True]


@pytest.mark.parametrize(("first_full", "split"), [(True, False), (False, False), (True, True)])
def test_run_keys_match_the_catalog_anti_joins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, first_full: bool, split: bool
) -> None:
    """One ingest run (ids known in memory) and file by file without a run (anti-joins against
    the catalog) write the same catalog, with a refused file in the middle of the run: its
    tracks are not known afterwards, so the next file that has them adds them. With full files
    only, the run keys artists from memory too; a reduced first file (artists known by name
    only) sends every file's artists through SQL. ``split``: the first file in a run of its
    own, so the second run starts from the ids and artist keys already in the catalog."""
    monkeypatch.setattr("segue.catalog.ingest.RUN_MIN_FILES", 1)
    files = [
        write_slice(tmp_path / "a.json", make_playlists(6, seed=1, full=first_full)),
        write_slice(tmp_path / "b.json", make_playlists(6, seed=2)),  # pids of a.json: refused
        write_slice(tmp_path / "c.json", make_playlists(6, seed=2, start_pid=100)),
        write_slice(tmp_path / "d.json", make_playlists(6, seed=1, start_pid=200)),
    ]
    tables = []
    for name, use_run in (("run", True), ("plain", False)):
        with Catalog.open(tmp_path / f"{name}.duckdb") as cat:
            if use_run:
                runs = [files[:1], files[1:]] if split else [files]
                skipped = []
                for part in runs:
                    report = ingest_paths(cat, part, skip_bad=True, progress=False)
                    skipped += [e.path for e in report.skipped]
                assert skipped == [str(files[1])]
            else:
                for path in files:
                    try:
                        cat.add_slice(read_slice(path))
                    except InputFileError:
                        assert path == files[1]
            consistent(cat)
            tables.append(
                [
                    cat.con.execute(f"SELECT {columns} FROM {table} ORDER BY ALL").fetchall()
                    for table, columns in (
                        # Artist keys are numbered in no particular order: tracks name theirs.
                        (
                            "tracks t JOIN artists a USING (artist_key)",
                            "t.* EXCLUDE (added_at, artist_key), a.artist_id, a.name",
                        ),
                        ("albums", "*"),
                        ("artists", "* EXCLUDE (artist_key, updated_at)"),
                        ("playlist_tracks", "*"),
                    )
                ]
            )
    assert tables[0] == tables[1]
    assert len(tables[0][0]) > 60  # c.json's tracks went in


def test_a_file_rolled_back_after_its_tracks_teaches_the_run_nothing(
    tmp_path: Path, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure after a file's new tracks and albums were written (here injected right after
    them) rolls the file back; the run must not count them as known once another file commits,
    or the retry would leave its rows without tracks."""
    cols = read_slice(write_slice(tmp_path / "a.json", make_playlists(5, seed=3)))
    other = read_slice(write_slice(tmp_path / "b.json", make_playlists(5, seed=4, start_pid=50)))
    run = catalog.start_ingest_run()
    merge = Catalog._merge_tracks

    def merge_then_fail(self: Catalog, *args: object) -> int:
        merge(self, *args)  # type: ignore[arg-type]
        raise RuntimeError("interrupted")

    monkeypatch.setattr(Catalog, "_merge_tracks", merge_then_fail)
    with pytest.raises(RuntimeError):
        catalog.add_slice(cols, run)
    assert catalog.counts()["tracks"] == 0
    monkeypatch.undo()
    catalog.add_slice(other, run)
    assert catalog.add_slice(cols, run).new_tracks > 0
    consistent(catalog)


@given(st.lists(st.text(alphabet="0123456789abcdefABCDEF", min_size=22, max_size=22), max_size=30))
def test_id_keys_tell_distinct_ids_apart(ids: list[str]) -> None:
    from segue.formats.mpd import fixed_ids, id_keys

    fixed = fixed_ids(pa.array(ids, pa.string()))
    assert fixed is not None and [x.decode() for x in fixed] == ids
    first, second = id_keys(fixed)
    keys = {(int(a), int(b)) for a, b in zip(first, second, strict=True)}
    assert len(keys) == len(set(ids))
    # The same id has the same key wherever it comes from.
    again = id_keys(fixed_ids(pa.array(list(reversed(ids)), pa.string())))  # type: ignore[arg-type]
    assert list(again[0]) == list(reversed(list(first)))


def test_fixed_ids_refuse_other_lengths_and_nulls() -> None:
    from segue.formats.mpd import fixed_ids

    assert fixed_ids(pa.array(["A" * 22, "B" * 21], pa.string())) is None
    assert fixed_ids(pa.array(["A" * 22, None], pa.string())) is None
    sliced = pa.array(["x", "A" * 22, "B" * 22])[1:]
    assert [x.decode() for x in fixed_ids(sliced)] == ["A" * 22, "B" * 22]  # type: ignore[union-attr]
    assert fixed_ids(pa.chunked_array([["A" * 22], ["C" * 22]])) is not None


def test_distinct_rows_keep_first_rows_in_order(tmp_path: Path) -> None:
    """Tracks, artists and albums as the first row that names each, in file order; each
    track's artist is the artist of its first row."""
    from segue.formats.mpd import distinct_rows

    pls = make_playlists(30, seed=8)
    rows = read_slice(write_slice(tmp_path / "d.json", pls)).rows
    got = distinct_rows(rows)
    seen: dict[str, dict[str, object]] = {}
    artists: dict[str, str] = {}
    albums: dict[str, str] = {}
    for row in rows.to_pylist():
        seen.setdefault(row["track_id"], row)
        if row["artist_id"] is not None:
            artists.setdefault(row["artist_id"], row["artist_name"])
        if row["album_id"] is not None:
            albums.setdefault(row["album_id"], row["album_name"])
    assert got.tracks["track_id"].to_pylist() == list(seen)
    assert got.tracks["track_name"].to_pylist() == [r["track_name"] for r in seen.values()]
    assert got.artist_first["artist_id"].to_pylist() == list(artists)
    assert got.artist_first["artist_name"].to_pylist() == list(artists.values())
    assert got.albums["album_id"].to_pylist() == list(albums)
    first_artist = got.artist_first["artist_id"].to_pylist()
    assert [first_artist[i] for i in got.track_artist] == [r["artist_id"] for r in seen.values()]
    assert len(got.track_keys[0]) == len(seen) and len(got.artist_keys[0]) == len(artists)


def test_known_ids_carry_values() -> None:
    known = KnownIds(
        np.array([1, 5, 9], np.uint64), np.array([10, 50, 90], np.uint64), np.array([7, 8, 9])
    )
    found = known.new_mask((np.array([9, 3, 1], np.uint64), np.array([90, 30, 10], np.uint64)))
    assert found is not None
    mask, new = found
    assert mask.tolist() == [False, True, False]
    assert new.found is not None and new.rows is not None
    assert [new.found[i] for i in (0, 2)] == [9, 7] and new.rows.tolist() == [1]
    new.values = np.array([4])
    known.add(new)
    assert known.first.tolist() == [1, 3, 5, 9] and known.values.tolist() == [7, 4, 8, 9]  # type: ignore[union-attr]


def test_buffered_reads_are_whole_and_do_not_leak_into_parsed_slices(tmp_path: Path) -> None:
    """The reused read buffer: files of any size in any order read whole (gzip too), and a
    slice parsed from it keeps its values once the buffer holds the next file."""
    from segue.formats.mpd import read_into_buffer, read_slice_data

    big = write_slice(tmp_path / "big.json", make_playlists(40, seed=11))
    small = write_slice(tmp_path / "small.json", make_playlists(3, seed=12, start_pid=500))
    zipped = tmp_path / "z.json.gz"
    zipped.write_bytes(gzip.compress(small.read_bytes()))
    for path in (small, big, small, zipped, big):
        expected = small.read_bytes() if path == zipped else path.read_bytes()
        assert bytes(read_into_buffer(path)) == expected
    first = read_slice_data(str(big), read_into_buffer(big))
    before = (first.rows.to_pylist(), first.playlists.to_pylist())
    read_into_buffer(small)  # overwrites the buffer the first slice was parsed from
    assert (first.rows.to_pylist(), first.playlists.to_pylist()) == before
    assert first.rows.equals(read_slice(big).rows)


def test_a_run_names_an_artist_first_seen_with_a_blank_name(tmp_path: Path) -> None:
    """An artist first named blank (stored without a name) learns its name from a later file,
    in one run as file by file."""
    files = []
    for i in range(4):
        pls = make_playlists(3, seed=20, start_pid=10 * i)
        for pl in pls:
            for tr in pl["tracks"]:
                tr["artist_name"] = "   " if i == 0 else tr["artist_name"]
        files.append(write_slice(tmp_path / f"b{i}.json", pls))
    names = []
    for name, one_run in (("run", True), ("plain", False)):
        with Catalog.open(tmp_path / f"{name}.duckdb") as cat:
            if one_run:
                ingest_paths(cat, files, progress=False)
            else:
                for path in files:
                    ingest_paths(cat, [path], progress=False)
            consistent(cat)
            names.append(cat.con.execute("SELECT name FROM artists ORDER BY ALL").fetchall())
    assert names[0] == names[1]
    assert ("",) not in names[0] and ("   ",) not in names[0]


def test_archive_cut_short_keeps_its_whole_members(tmp_path: Path, catalog: Catalog) -> None:
    """A .tar.gz cut short (an interrupted download): the members before the cut go in, the
    damage is a one-line error naming the archive, skipped with --skip-bad."""
    files = [
        write_slice(
            tmp_path / "src" / f"s{i}.json", make_playlists(200, seed=i, start_pid=1000 * i)
        )
        for i in range(6)
    ]
    full = tmp_path / "full.tar.gz"
    with tarfile.open(full, "w:gz") as tar:
        for f in files:
            tar.add(f, arcname=f"mpd/{f.name}")
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(full.read_bytes()[: int(full.stat().st_size * 0.8)])
    with pytest.raises(InputFileError, match=r"cut\.tar\.gz.*damaged archive"):
        ingest_paths(catalog, [cut], progress=False)
    before = catalog.counts()["files"]
    assert 0 < before < len(files)
    report = ingest_paths(catalog, [cut], skip_bad=True, progress=False)
    assert report.skipped and all("damaged archive" in str(e) for e in report.skipped)
    assert catalog.counts()["files"] == before  # the whole members were already in
    consistent(catalog)


def test_a_file_that_grows_while_read_is_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reused buffer is sized from the file's size; a file longer than that when read (it
    grew in between) is read again, whole."""
    import os
    import types

    from segue.formats.mpd import read_into_buffer

    path = write_slice(tmp_path / "g.json", make_playlists(5, seed=13))
    real = os.fstat

    def shorter(fd: int) -> types.SimpleNamespace:
        return types.SimpleNamespace(st_size=real(fd).st_size - 100)

    monkeypatch.setattr(os, "fstat", shorter)
    assert bytes(read_into_buffer(path)) == path.read_bytes()


def test_ingest_restores_arrows_memory_pool_with_or_without_jemalloc(
    tmp_path: Path, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = [write_slice(tmp_path / "m.json", make_playlists(5, seed=14))]
    before = pa.default_memory_pool().backend_name
    ingest_paths(catalog, files, progress=False)
    assert pa.default_memory_pool().backend_name == before

    def missing() -> pa.MemoryPool:
        raise NotImplementedError("built without jemalloc")

    monkeypatch.setattr(pa, "jemalloc_memory_pool", missing)
    other = write_slice(tmp_path / "n.json", make_playlists(5, seed=15, start_pid=50))
    assert ingest_paths(catalog, [other], progress=False).playlists == 5
    assert pa.default_memory_pool().backend_name == before


def test_known_ids_decline_ids_that_are_not_22_bytes() -> None:
    """A catalog id of another length cannot be keyed: the run then anti-joins that table."""
    import duckdb

    con = duckdb.connect()
    assert KnownIds.of_query(con, "SELECT 'short' AS id UNION ALL SELECT repeat('A', 22)") is None
    known = KnownIds.of_query(con, "SELECT repeat('A', 22) AS id, 7 AS value")
    assert known is not None and known.size == 1 and known.values.tolist() == [7]  # type: ignore[union-attr]
