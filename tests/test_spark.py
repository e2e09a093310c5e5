"""The Spark engine in local mode (``local[2]``): ingest parity with the one-machine path, bad
slices, a Spark-trained ALS served through the API, and a Spark job failing midway.

One SparkSession serves the whole module (a JVM takes seconds to start); data stay small.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from segue.catalog import Catalog
from segue.catalog.ingest import ingest_paths
from segue.core.errors import InputFileError
from segue.formats.synth import generate
from segue.spark import SparkUnavailable, require_pyspark, spark_failure
from segue.spark.ingest import ingest_spark
from segue.spark.session import start
from segue.spark.train import ALSParams, fit_on_spark
from tests.conftest import SHARED_DATA

#: The real dev files (../shared beside the checkout, as CI lays them; SEGUE_TEST_DATA elsewhere).
DEV = SHARED_DATA / "mpd" / "mpd-followers10-dev.tar.gz"
PARAMS = ALSParams(factors=8, regularization=0.05, iterations=5, alpha=10.0)


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    session = start(
        "local[2]",
        {
            "spark.sql.shuffle.partitions": "4",
            "spark.default.parallelism": "2",
            "spark.driver.memory": "1g",
        },
        app="segue tests",
    )
    yield session
    session.stop()


def _slice(pid: int, tracks: list[dict[str, Any]], name: str = "mix") -> dict[str, Any]:
    return {"name": name, "pid": pid, "num_followers": 3, "num_edits": 2, "tracks": tracks}


def _track(
    n: int, artist: str, artist_id: str | None = None, album: str | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "track_uri": f"spotify:track:{n:022d}",
        "track_name": f"Song {n}",
        "artist_name": artist,
    }
    if artist_id is not None:
        out["artist_uri"] = f"spotify:artist:{artist_id}"
    if album is not None:
        out["album_uri"] = f"spotify:album:{album}"
        out["album_name"] = f"Album {album[-2:]}"
    return out


@pytest.fixture(scope="module")
def slices(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic slices plus hand-made ones: artists with and without ids under one name, a
    track first seen without an album, a repeated file, and a playlist repeated in a later file."""
    folder = tmp_path_factory.mktemp("slices")
    generate(600, folder, n_tracks=1500, seed=3)
    band = "A" * 21 + "b"
    album = "C" * 20 + "01"
    mixed = {
        "playlists": [
            _slice(9000, [_track(1, "The  Band"), _track(2, "The Band", band), _track(3, "Solo")]),
            _slice(9001, [_track(2, "the band", band), _track(4, "SOLO")]),
        ]
    }
    (folder / "mixed.json").write_text(json.dumps(mixed))
    (folder / "mixed-again.json").write_text(json.dumps(mixed))  # the same bytes
    later = {
        "playlists": [
            mixed["playlists"][1],  # the same playlist again: skipped
            _slice(9002, [_track(1, "the band", band, album), _track(5, "New")]),
        ]
    }
    (folder / "zz-later.json").write_text(json.dumps(later))
    return folder


def _stats(home: Path) -> dict[str, Any]:
    """`segue stats --json` of a home, as the command prints it."""
    done = subprocess.run(
        [sys.executable, "-m", "segue", "--home", str(home), "stats", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def _ingest_both(spark: Any, root: Path, specs: list[str], **flags: Any) -> tuple[Path, Path]:
    local, remote = root / "local", root / "spark"
    with Catalog.open(local / "catalog.duckdb", bulk=True) as catalog:
        ingest_paths(catalog, specs, progress=False, **flags)
    with Catalog.open(remote / "catalog.duckdb") as catalog:
        ingest_spark(catalog, specs, spark, lake=str(remote / "lake"), **flags)
    return local, remote


@pytest.fixture(scope="module")
def spark_home(
    spark: Any, slices: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    return _ingest_both(spark, tmp_path_factory.mktemp("parity"), [str(slices)])


# ingest -------------------------------------------------------------------------------------
def test_spark_ingest_gives_the_same_stats_as_todays_ingest(spark_home: tuple[Path, Path]) -> None:
    local, remote = spark_home
    want, got = _stats(local), _stats(remote)
    assert want["playlists"] == 603 and want["files"] == 3  # the repeat changes nothing
    assert got == want
    # the artist known by id and by name alone is one artist, 'Solo' and 'SOLO' are one, and a
    # track first seen without an album learns it from a later file: alike in both catalogs
    query = (
        "SELECT t.track_id, a.artist_id, a.name, t.album_id FROM tracks t JOIN artists a "
        "USING (artist_key) WHERE t.track_id LIKE '00000000000000000000%' ORDER BY 1"
    )
    found = []
    for home in (local, remote):
        with Catalog.open(home / "catalog.duckdb", read_only=True) as catalog:
            found.append(catalog.con.execute(query).fetchall())
    assert found[0] == found[1]
    band, album = "A" * 21 + "b", "C" * 20 + "01"
    assert [row[1:] for row in found[1][:4]] == [
        (band, "The Band", album),
        (band, "The Band", None),
        (None, "Solo", None),
        (None, "Solo", None),
    ]
    for table in ("playlists", "playlist_tracks", "tracks", "artists", "albums"):
        assert list((remote / "lake" / table).glob("*.parquet")), table
    # the parsed files, written beside the lake for the run, are gone
    assert sorted(p.name for p in remote.iterdir()) == ["catalog.duckdb", "lake"]


def test_spark_failures_name_memory_and_a_driver_that_died() -> None:
    class AnalysisException(Exception):  # shaped as pyspark's
        pass

    AnalysisException.__module__ = "pyspark.errors.exceptions.captured"
    oom = AnalysisException(
        "Job aborted due to stage failure: Task 83 in stage 1.0 failed 1 times, most recent "
        "failure: Lost task 83.0: java.lang.OutOfMemoryError: Java heap space"
    )
    said = spark_failure(oom)
    assert said is not None and said.startswith("Spark ran out of memory (Job aborted")
    assert "spark.driver.memory" in said and "spark.executor.memory" in said
    failed = spark_failure(AnalysisException("Path does not exist: file:/nowhere"))
    assert failed == "the Spark job failed: Path does not exist: file:/nowhere"
    # a socket error raised inside py4j's code: the JVM behind it exited
    scope: dict[str, Any] = {"__name__": "py4j.clientserver"}
    exec("def connect():\n    raise ConnectionRefusedError(111, 'Connection refused')", scope)
    with pytest.raises(ConnectionRefusedError) as raised:
        scope["connect"]()
    said = spark_failure(raised.value)
    assert said is not None and "driver stopped answering" in said and "spark.driver.memory" in said
    # the same error from anywhere else is not Spark's
    with pytest.raises(ConnectionRefusedError) as elsewhere:
        raise ConnectionRefusedError(111, "Connection refused")
    assert spark_failure(elsewhere.value) is None


def test_als_blocks_follow_the_cores_until_a_block_would_pass_4m_ratings() -> None:
    from segue.spark.train import RATINGS_PER_BLOCK, als_blocks

    assert als_blocks(276_473, 2) == 2  # the dev split in local[2]: one block per core
    assert als_blocks(276_473, 64) == 10  # Spark's own default on a cluster
    assert als_blocks(6_566_000, 2) == 2  # 100k playlists
    full = 65_700_000  # the full MPD: 17 blocks, none over the limit
    blocks = als_blocks(full, 2)
    assert blocks == 17 and full / blocks <= RATINGS_PER_BLOCK
    assert full / (blocks - 1) > RATINGS_PER_BLOCK


def test_als_checkpoints_under_the_lake_and_leaves_nothing_there(
    spark: Any, tmp_path: Path
) -> None:
    """ALS checkpoints (so Spark deletes the shuffle files behind it) into the session's
    checkpoint directory: one the user set is kept with its files; segue's own, under the lake,
    is gone after the fit."""
    from segue.spark import train

    rng = np.random.default_rng(0)
    rows = spark.createDataFrame(
        [(int(p), f"spotify:track:{t:04d}") for p in range(60) for t in rng.choice(80, 12)],
        "pid long, track_id string",
    )
    params = ALSParams(factors=4, iterations=2 * train.ALS_CHECKPOINT_EVERY, alpha=5.0)
    sc = spark.sparkContext
    mine = tmp_path / "my-checkpoints"
    sc.setCheckpointDir(str(mine))  # as --spark-conf spark.checkpoint.dir=... would
    try:
        with_mine = train.spark_fit(rows, params, lambda _: None, lake=str(tmp_path / "lake1"))
        assert list(mine.rglob("rdd-*")), "ALS wrote no checkpoint into the user's directory"
        assert not (tmp_path / "lake1").exists()
    finally:
        train._OURS.add(sc.getCheckpointDir())  # later fits here set their own again

    lake = tmp_path / "lake2"
    said: list[str] = []
    ours = train.spark_fit(rows, params, said.append, lake=str(lake))
    assert "/lake2/_checkpoints/als-" in sc.getCheckpointDir()
    assert not (lake / "_checkpoints").exists()
    assert any(f"checkpointed every {train.ALS_CHECKPOINT_EVERY}" in line for line in said)
    assert ours.item_factors is not None and with_mine.item_factors is not None
    np.testing.assert_allclose(ours.item_factors, with_mine.item_factors, rtol=1e-4, atol=1e-5)


def test_a_bad_slice_is_named_alike_and_skipped_or_stops_the_run(
    spark: Any, slices: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.json").write_bytes((slices / "mixed.json").read_bytes())
    bad = json.loads((slices / "zz-later.json").read_text())
    bad["playlists"][1]["tracks"][0]["track_uri"] = "spotify:track:nope"
    (folder / "b.json").write_text(json.dumps(bad))
    (folder / "c.json.gz").write_bytes(b"\x1f\x8b not gzip at all")
    spec = [str(folder)]
    errors = []
    for engine in ("local", "spark"):
        with (
            Catalog.open(tmp_path / engine / "catalog.duckdb") as catalog,
            pytest.raises(InputFileError) as raised,
        ):
            if engine == "local":
                ingest_paths(catalog, spec, progress=False)
            else:
                ingest_spark(catalog, spec, spark, lake=str(tmp_path / engine / "lake"))
        errors.append(str(raised.value))
    assert errors[0] == errors[1]
    assert errors[1].startswith(f"{folder / 'b.json'} at playlists[1].tracks[0] (pid 9002): ")
    with Catalog.open(tmp_path / "spark" / "catalog.duckdb", read_only=True) as catalog:
        assert catalog.counts()["playlists"] == 0  # validated before anything was written
    local, remote = _ingest_both(spark, tmp_path / "skip", spec, skip_bad=True)
    assert _stats(local) == _stats(remote)
    assert _stats(remote)["playlists"] == 2


def test_spark_ingest_reports_skipped_files_with_todays_messages(
    spark: Any, slices: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "ok.json").write_bytes((slices / "mixed.json").read_bytes())
    (folder / "short.json").write_bytes((slices / "mixed.json").read_bytes()[:-30])
    with Catalog.open(tmp_path / "a.duckdb") as catalog:
        want = ingest_paths(catalog, [str(folder)], progress=False, skip_bad=True)
    with Catalog.open(tmp_path / "b.duckdb") as catalog:
        got = ingest_spark(
            catalog, [str(folder)], spark, lake=str(tmp_path / "lake"), skip_bad=True
        )
    assert [str(e) for e in got.skipped] == [str(e) for e in want.skipped]
    assert "truncated" in str(got.skipped[0])
    assert got.playlists == want.playlists == 2


def test_archives_and_catalogs_with_playlists_are_refused_in_one_line(
    spark: Any, spark_home: tuple[Path, Path], tmp_path: Path
) -> None:
    archive = tmp_path / "x.tar.gz"
    with tarfile.open(archive, "w:gz"):
        pass
    with (
        Catalog.open(tmp_path / "c.duckdb") as catalog,
        pytest.raises(InputFileError, match="extract it"),
    ):
        ingest_spark(catalog, [str(archive)], spark, lake=str(tmp_path / "lake"))
    with (
        Catalog.open(spark_home[1] / "catalog.duckdb") as catalog,
        pytest.raises(Exception, match="loads into a new catalog"),
    ):
        ingest_spark(catalog, [str(archive)], spark, lake=str(tmp_path / "lake"))


@pytest.mark.slow
@pytest.mark.realdata
def test_spark_ingest_parity_on_the_dev_files(spark: Any, tmp_path: Path) -> None:
    if not DEV.exists():
        pytest.skip("needs ../shared/data/mpd/mpd-followers10-dev.tar.gz")
    with tarfile.open(DEV) as tar:
        tar.extractall(tmp_path / "dev", filter="data")
    local, remote = _ingest_both(spark, tmp_path, [str(tmp_path / "dev")])
    want = _stats(local)
    assert want["playlists"] == 3574 and want["tracks"] == 353119
    assert _stats(remote) == want


# ALS ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fitted(spark: Any, spark_home: tuple[Path, Path]) -> Path:
    home = spark_home[1]
    fit_on_spark(spark, ["als", "popularity"], home=home, lake=str(home / "lake"), params=PARAMS)
    return home


def _client(home: Path) -> Any:
    from starlette.exceptions import StarletteDeprecationWarning  # type: ignore[attr-defined]

    from segue.api.app import create_app
    from segue.service.engine import Service

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StarletteDeprecationWarning)
        from fastapi.testclient import TestClient
    return TestClient(create_app(Service(home, grow=False)), raise_server_exceptions=False)


def test_spark_als_is_served_through_the_api_with_fold_in(fitted: Path) -> None:
    from segue.core import artifacts
    from segue.models.registry import load_model
    from segue.snapshot.arrays import Snapshot

    gen = artifacts.current(fitted)
    snapshot = Snapshot.load(gen.snapshot_dir)
    model = load_model("als", snapshot, root=gen.models_dir)
    popularity = load_model("popularity", snapshot, root=gen.models_dir)
    counts = snapshot.tracks["playlist_count"].to_numpy()
    assert np.array_equal(popularity.counts_, counts)  # Spark's counts, in the snapshot's order
    y = model.item_factors_
    assert y.shape == (snapshot.n_tracks, PARAMS.factors) and np.abs(y).sum() > 0
    # Factors sit at their tracks: tracks that share playlists are closer than random pairs.
    m = snapshot.interactions.tocsr()
    rng = np.random.default_rng(0)
    together, apart = [], []
    for p in rng.choice(m.shape[0], 200, replace=False):
        held = m.indices[m.indptr[p] : m.indptr[p + 1]]
        if held.size >= 2:
            together.append(float(y[held[0]] @ y[held[1]]))
            apart.append(float(y[held[0]] @ y[rng.integers(m.shape[1])]))
    assert np.mean(together) > 2 * np.mean(apart)
    # An unseen playlist: seeds folded in exactly as the one-machine ALS does it.
    seeds = m.indices[m.indptr[7] : m.indptr[7] + 5]
    ys = y[seeds].astype(np.float64)
    a = y.astype(np.float64).T @ y + PARAMS.regularization * np.eye(PARAMS.factors)
    x = np.linalg.solve(a + (PARAMS.alpha - 1) * ys.T @ ys, PARAMS.alpha * ys.sum(axis=0))
    scores = y @ x.astype(np.float32) + model.prior_
    scores[seeds] = -np.inf
    want = snapshot.tracks["track_id"].to_numpy()[np.argsort(-scores, kind="stable")[:10]]
    ids = snapshot.tracks["track_id"].to_numpy()[seeds]
    with _client(fitted) as client:
        r = client.post(
            "/recommend",
            json={
                "seeds": [f"spotify:track:{t}" for t in ids],
                "n": 10,
                "model": "als",
                "explain": False,
            },
        )
        assert r.status_code == 200, r.text
        got = [t["id"] for t in r.json()["tracks"]]
        assert got == list(want)
        r = client.post(
            "/recommend", json={"seeds": [], "title": "x", "n": 3, "model": "popularity"}
        )
        assert r.status_code == 200, r.text


def test_a_spark_job_failing_midway_leaves_the_previous_model(
    spark: Any, fitted: Path, tmp_path: Path
) -> None:
    tree = fitted / "artifacts"  # the set in use, its pointer, and nothing beside them
    before = {p.relative_to(tree): p.read_bytes() for p in tree.rglob("*") if p.is_file()}
    # The lake's rows, rewritten in many row groups, then damaged in the middle: Spark reads
    # the footer (the row count matches the catalog's) and fails on a page partway through.
    lake = tmp_path / "lake"
    rows = pq.read_table(fitted / "lake" / "playlist_tracks")
    (lake / "playlist_tracks").mkdir(parents=True)
    target = lake / "playlist_tracks" / "part-0.parquet"
    pq.write_table(rows, target, row_group_size=5_000, compression="snappy", use_dictionary=False)
    data = bytearray(target.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4096] = os.urandom(4096)
    target.write_bytes(bytes(data))
    with pytest.raises(Exception) as raised:
        fit_on_spark(spark, ["als", "popularity"], home=fitted, lake=str(lake), params=PARAMS)
    assert spark_failure(raised.value) is not None, raised.value
    after = {p.relative_to(tree): p.read_bytes() for p in tree.rglob("*") if p.is_file()}
    assert after == before  # nothing half-written beside them either
    with _client(fitted) as client:
        r = client.post("/recommend", json={"seeds": ["Song 1"], "n": 3, "model": "als"})
        assert r.status_code == 200, r.text


def test_a_second_fit_is_refused_before_spark_works_and_a_killed_fits_checkpoints_go(
    spark: Any, fitted: Path, tmp_path: Path
) -> None:
    from segue.core import artifacts

    stale = fitted / "lake" / "_checkpoints" / "als-killed" / "0d1e"  # as a kill -9 leaves it
    (stale / "rdd-7").mkdir(parents=True)
    (stale / "rdd-7" / "part-00000").write_bytes(b"\0" * 1024)
    unused = tmp_path / "lake"
    with artifacts.fit_lock(fitted), pytest.raises(artifacts.FitBusyError, match="another"):
        fit_on_spark(spark, ["popularity"], home=fitted, lake=str(unused), params=PARAMS)
    assert not unused.exists()  # refused before Spark read or wrote anything
    assert stale.exists()  # and the other fit's files untouched
    fit_on_spark(spark, ["popularity"], home=fitted, lake=str(fitted / "lake"), params=PARAMS)
    assert not (fitted / "lake" / "_checkpoints").exists()


# without the extra --------------------------------------------------------------------------
def test_a_missing_extra_says_which_install_line_to_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "pyspark", None)
    with pytest.raises(SparkUnavailable, match=r"pip install 'segue\[spark\]'"):
        require_pyspark()
    code = (
        "import sys; sys.modules['pyspark'] = None; from segue.cli import main; "
        f"sys.argv = ['segue', '--home', {str(tmp_path)!r}, 'fit', '--engine', 'spark']; main()"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'segue[spark]'" in lines[0], done.stderr


def test_the_default_engine_never_imports_pyspark(slices: Path, tmp_path: Path) -> None:
    code = (
        "import sys; from segue.cli import main; "
        f"sys.argv = ['segue', '--home', {str(tmp_path)!r}, 'ingest', '-q', {str(slices / 'mixed.json')!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "assert 'pyspark' not in sys.modules, 'pyspark imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "ingested 1 file(s)" in done.stdout
