"""``segue ingest --engine spark``: MPD slices read, validated and joined by Spark.

Spark reads the files (local paths, folders, globs, or any URI Hadoop can read: ``hdfs://``,
``s3a://``, ...) as whole binary files, and each executor validates its files with the very
reader the one-machine ingest uses (:func:`segue.formats.mpd.read_slice_data`), so a bad file gets the
same one-line message. Spark then builds the catalog's tables (playlists, playlist rows, the
distinct tracks, artists and albums with their keys) and writes them as Parquet under the lake
folder (``<home>/lake`` unless ``--lake`` says otherwise); the catalog loads them in one
transaction.

The rules are today's: a file whose content is already in the run is unchanged; a track,
album or artist takes the values of its first row (files in path order, rows in file order);
an artist is its id, else its normalised name, and a row without an artist id belongs to an
artist of that name; a track first seen without an album takes the first album a later row
gives it. A file that reuses a pid of an earlier file goes through the one-machine writer
after the bulk load (identical playlists are skipped there, different ones refuse the file),
so those rules stay in one place.

What differs: Spark validates every file before anything is written, so without
``--skip-bad`` a bad file stops the run with the catalog as it was (the one-machine ingest
keeps the files before it); and the Spark engine loads into a new catalog (one without
playlists or tracks), since its keys are drawn for the whole run at once.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from segue.catalog import SliceResult
from segue.catalog.ingest import ARCHIVE_SUFFIXES, IngestReport
from segue.core.errors import CatalogError, InputFileError

if TYPE_CHECKING:
    from segue.catalog import Catalog

PLAYLIST_FIELDS = (
    ("pid", pa.int64()),
    ("name", pa.string()),
    ("description", pa.string()),
    ("collaborative", pa.bool_()),
    ("modified_at", pa.int64()),
    ("num_tracks", pa.int64()),
    ("num_albums", pa.int64()),
    ("num_followers", pa.int64()),
    ("num_edits", pa.int64()),
    ("duration_ms", pa.int64()),
    ("num_artists", pa.int64()),
)
ROW_FIELDS = (
    ("pid", pa.int64()),
    ("pos", pa.int32()),
    ("track_id", pa.string()),
    ("track_name", pa.string()),
    ("artist_name", pa.string()),
    ("artist_id", pa.string()),
    ("album_id", pa.string()),
    ("album_name", pa.string()),
    ("duration_ms", pa.int32()),
    ("artist_norm", pa.string()),
)
PARSED_SCHEMA = pa.schema(
    [
        ("path", pa.string()),
        ("content_hash", pa.string()),
        ("salvaged", pa.bool_()),
        ("position", pa.string()),
        ("problem", pa.string()),
        ("n_playlists", pa.int64()),
        ("n_rows", pa.int64()),
        ("playlists", pa.list_(pa.struct(list(PLAYLIST_FIELDS)))),
        ("rows", pa.list_(pa.struct(list(ROW_FIELDS)))),
    ]
)
NESTED_VECTORISED = "spark.sql.parquet.enableNestedColumnVectorizedReader"
TABLES = ("playlists", "playlist_tracks", "tracks", "artists", "albums", "ingested_files")


@dataclass
class SparkIngestReport(IngestReport):
    """:class:`segue.catalog.ingest.IngestReport` plus where the Parquet tables went."""

    lake: str = ""
    deferred: list[str] = field(default_factory=list)


def display_name(spark_path: str) -> str:
    """The name a file is reported by: a local path as the one-machine ingest names it."""
    if spark_path.startswith("file:"):
        rest = spark_path[len("file:") :]
        while rest.startswith("//"):
            rest = rest[1:]
        return rest
    return spark_path


def _has_scheme(spec: str) -> bool:
    head, sep, _ = spec.partition("://")
    return bool(sep) and head.isalnum() and head != "file"


def spark_inputs(specs: list[str]) -> list[str]:
    """What Spark reads for ``specs``: local files, folders and globs expanded as the
    one-machine ingest expands them (absolute ``file:`` URIs); other URIs passed on for Spark to
    list. Archives are refused: Spark reads slices, not tar members."""
    from segue.formats.mpd import expand_paths

    out: list[str] = []
    for spec in specs:
        if spec.endswith(ARCHIVE_SUFFIXES):
            raise InputFileError(
                spec,
                None,
                "the Spark engine reads .json and .json.gz slices, not archives: extract it "
                f"first (tar xzf {spec}) and give the folder",
            )
        if _has_scheme(spec):
            out.append(spec)
            continue
        local = spec[len("file://") :] if spec.startswith("file://") else spec
        for path in expand_paths([local]):
            if path.name.endswith(ARCHIVE_SUFFIXES):
                raise InputFileError(
                    str(path),
                    None,
                    "the Spark engine reads .json and .json.gz slices, not archives: extract "
                    "it first and give the folder",
                )
            out.append(path.resolve().as_uri())
    return out


# executors ----------------------------------------------------------------------------------
def _one_file(path: str, content: bytes, salvage: bool) -> pa.RecordBatch:
    """One file's record: its columns as two lists, or its problem."""
    from segue.core.text import normalise_names
    from segue.formats.mpd import gunzipped, read_slice_data

    name = display_name(path)
    try:
        data = gunzipped(name, content)
        cols = read_slice_data(name, data, salvage=salvage)
    except InputFileError as exc:
        empty = {
            "path": [path],
            "content_hash": [None],
            "salvaged": [False],
            "position": [exc.position],
            "problem": [exc.problem],
            "n_playlists": [0],
            "n_rows": [0],
            "playlists": [[]],
            "rows": [[]],
        }
        return pa.RecordBatch.from_pydict(empty, schema=PARSED_SCHEMA)
    rows = cols.rows.combine_chunks()
    rows = rows.append_column("artist_norm", normalise_names(rows["artist_name"]))
    lists = []
    for table, fields in ((cols.playlists.combine_chunks(), PLAYLIST_FIELDS), (rows, ROW_FIELDS)):
        arrays = [table[name].combine_chunks().cast(kind) for name, kind in fields]
        struct = pa.StructArray.from_arrays(arrays, fields=[pa.field(n, k) for n, k in fields])
        lists.append(pa.ListArray.from_arrays(pa.array([0, len(struct)], pa.int32()), struct))
    return pa.RecordBatch.from_arrays(
        [
            pa.array([path]),
            pa.array([cols.content_hash]),
            pa.array([cols.salvaged]),
            pa.nulls(1, pa.string()),
            pa.nulls(1, pa.string()),
            pa.array([cols.n_playlists], pa.int64()),
            pa.array([cols.n_rows], pa.int64()),
            *lists,
        ],
        schema=PARSED_SCHEMA,
    )


def parse_batches(salvage: bool) -> Any:
    """The function ``mapInArrow`` runs on each partition of binary files."""

    def parse(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            paths = batch.column("path").to_pylist()
            contents = batch.column("content")
            for i, path in enumerate(paths):
                yield _one_file(path, contents[i].as_buffer().to_pybytes(), salvage)

    return parse


# driver -------------------------------------------------------------------------------------
def _spark_schema() -> str:
    play = ", ".join(f"{n}: {_sql_type(k)}" for n, k in PLAYLIST_FIELDS)
    rows = ", ".join(f"{n}: {_sql_type(k)}" for n, k in ROW_FIELDS)
    return (
        "path string, content_hash string, salvaged boolean, position string, problem string, "
        f"n_playlists long, n_rows long, playlists array<struct<{play}>>, "
        f"rows array<struct<{rows}>>"
    )


def _sql_type(kind: pa.DataType) -> str:
    return {pa.int64(): "long", pa.int32(): "int", pa.string(): "string", pa.bool_(): "boolean"}[
        kind
    ]


def _check_new_catalog(catalog: Catalog) -> None:
    held = catalog.counts()
    if held["playlists"] or held["unique_tracks"] or held["unique_artists"]:
        raise CatalogError(
            f"the Spark engine loads into a new catalog, and {catalog.path} already holds "
            f"{held['playlists']:,} playlists and {held['unique_tracks']:,} tracks: use a new "
            "--home, or the default engine to add to this one"
        )


def build_tables(parsed: Any, files: Any) -> dict[str, Any]:
    """The catalog's tables as Spark DataFrames, from the parsed files (``parsed``) and the
    files to load (``files``: path, file_id, in path order)."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F
    from pyspark.sql.window import Window

    loaded = parsed.join(F.broadcast(files), "path")
    playlists = loaded.select("file_id", F.explode("playlists").alias("p")).select(
        *[F.col(f"p.{n}").alias(n) for n, _ in PLAYLIST_FIELDS], "file_id"
    )
    # Every table below reads the rows: exploded once, kept on the executors' disks while the
    # tables are written (66M rows at the MPD's full size: not a heap's worth).
    rows = (
        loaded.select("file_id", F.posexplode("rows").alias("seq", "r"))
        .select("file_id", "seq", *[F.col(f"r.{n}").alias(n) for n, _ in ROW_FIELDS])
        .persist(StorageLevel.DISK_ONLY)
    )
    order = ["file_id", "seq"]
    # A track's first row (the smallest (file, row) wins: a struct compares field by field).
    first = rows.groupBy("track_id").agg(
        F.min(
            F.struct(
                *order,
                "track_name",
                "artist_id",
                "artist_name",
                "artist_norm",
                "album_id",
                "album_name",
                "duration_ms",
            )
        ).alias("f"),
        F.min(
            F.when(
                F.col("album_id").isNotNull(),
                F.struct(*order, "album_id", "album_name", "duration_ms"),
            )
        ).alias("a"),
    )
    # Artists: by id where rows have one (the name of its first row), else by normalised name
    # (the first name); a name that an artist with an id also has belongs to that artist.
    by_id = (
        rows.where(F.col("artist_id").isNotNull())
        .groupBy("artist_id")
        .agg(F.min(F.struct(*order, "artist_name", "artist_norm")).alias("f"))
        .select("artist_id", "f.*")
    )
    named = (
        rows.where(F.col("artist_id").isNull())
        .groupBy("artist_norm")
        .agg(F.min(F.struct(*order, "artist_name")).alias("f"))
        .select("artist_norm", "f.*")
        .join(by_id.select("artist_norm").distinct(), "artist_norm", "left_anti")
        .select(F.lit(None).cast("string").alias("artist_id"), *order, "artist_name", "artist_norm")
    )
    both = by_id.select("artist_id", *order, "artist_name", "artist_norm").unionByName(named)
    # Keys 1, 2, ... in order of first appearance, as the catalog's sequence hands them out.
    # (one window over every artist: a few hundred thousand rows at the MPD's full size)
    artists = both.select(
        F.row_number().over(Window.orderBy(*order)).cast("long").alias("artist_key"),
        "artist_id",
        F.col("artist_name").alias("name"),
        F.col("artist_norm").alias("norm_name"),
    )
    by_norm = artists.groupBy(F.col("norm_name").alias("n")).agg(F.min("artist_key").alias("nk"))
    ids = artists.where(F.col("artist_id").isNotNull()).select(
        F.col("artist_id").alias("i"), F.col("artist_key").alias("ik")
    )
    tracks = (
        first.join(ids, F.col("f.artist_id") == F.col("i"), "left")
        .join(
            by_norm, F.col("f.artist_id").isNull() & (F.col("f.artist_norm") == F.col("n")), "left"
        )
        .select(
            "track_id",
            F.col("f.track_name").alias("name"),
            F.coalesce("ik", "nk").alias("artist_key"),
            F.coalesce("f.album_id", "a.album_id").alias("album_id"),
            F.coalesce("f.album_name", "a.album_name").alias("album_name"),
            F.coalesce("f.duration_ms", "a.duration_ms").alias("duration_ms"),
        )
    )
    albums = (
        rows.where(F.col("album_id").isNotNull())
        .groupBy("album_id")
        .agg(F.min(F.struct(*order, "album_name")).alias("f"))
        .select("album_id", F.col("f.album_name").alias("name"))
    )
    playlist_tracks = rows.select("pid", "pos", "track_id")
    return {
        "rows": rows,
        "playlists": playlists,
        "playlist_tracks": playlist_tracks,
        "tracks": tracks,
        "artists": artists,
        "albums": albums,
    }


def _load_catalog(
    catalog: Catalog, lake: str, files: list[dict[str, Any]], tables: dict[str, Any]
) -> None:
    """The lake's tables into the catalog, in one transaction (DuckDB reads a local lake's
    Parquet itself; another lake's tables come through Spark as Arrow)."""
    con = catalog.con
    local = not _has_scheme(lake)

    def source(name: str) -> str:
        if local:
            where = str(Path(display_name(lake)) / name / "*.parquet")
            return f"read_parquet('{where.replace(chr(39), chr(39) * 2)}')"
        con.register(f"lake_{name}", tables[name].toArrow())
        return f"lake_{name}"

    with catalog.transaction():
        if files:
            con.execute(
                "INSERT INTO ingested_files (file_id, path, content_hash, playlists, rows, salvaged) "
                "SELECT * FROM (VALUES " + ", ".join("(?, ?, ?, ?, ?, ?)" for _ in files) + ")",
                [
                    v
                    for f in files
                    for v in (
                        f["file_id"],
                        f["name"],
                        f["content_hash"],
                        f["n_playlists"],
                        f["n_rows"],
                        f["salvaged"],
                    )
                ],
            )
        con.execute(
            f"""
            INSERT INTO artists (artist_key, artist_id, name, norm_name, source, updated_at)
            SELECT artist_key, artist_id, name, norm_name, 'mpd', current_timestamp
            FROM {source("artists")}
            """
        )
        n_artists = int(catalog.scalar("SELECT count(*) FROM artists"))
        if n_artists:  # the keys Spark drew, taken from the catalog's sequence
            con.execute("SELECT max(nextval('artist_key_seq')) FROM range(?)", [n_artists])
        con.execute(
            f"""
            INSERT INTO albums (album_id, name) SELECT album_id, name FROM {source("albums")}
            """
        )
        con.execute(
            f"""
            INSERT INTO tracks (track_id, name, artist_key, album_id, album_name, duration_ms, source)
            SELECT track_id, name, artist_key, album_id, album_name, duration_ms, 'mpd'
            FROM {source("tracks")}
            """
        )
        con.execute(
            f"""
            INSERT INTO playlists
            SELECT pid, name, description, collaborative, modified_at, num_tracks, num_albums,
                   num_followers, num_edits, duration_ms, num_artists, file_id
            FROM {source("playlists")}
            """
        )
        con.execute(
            f"INSERT INTO playlist_tracks SELECT pid, pos, track_id FROM {source('playlist_tracks')}"
        )
    if not local:
        for name in tables:
            con.unregister(f"lake_{name}")


def _write_lake(tables: dict[str, Any], lake: str) -> None:
    """Each table as Parquet under ``lake``: written beside (``<lake>.writing-<run>``) and
    switched in by renames when the lake is local; overwritten table by table otherwise."""
    if _has_scheme(lake):
        for name, frame in tables.items():
            frame.write.mode("overwrite").parquet(f"{lake.rstrip('/')}/{name}")
        return
    target = Path(display_name(lake))
    staging = target.with_name(f"{target.name}.writing-{uuid.uuid4().hex[:8]}")
    for name, frame in tables.items():
        frame.write.mode("overwrite").parquet(str(staging / name))
    old = target.with_name(f"{target.name}.old-{uuid.uuid4().hex[:8]}")
    if target.exists():
        target.replace(old)
    staging.replace(target)
    if old.exists():
        import shutil

        shutil.rmtree(old, ignore_errors=True)


def ingest_spark(
    catalog: Catalog,
    specs: list[str],
    session: Any,
    *,
    lake: str,
    skip_bad: bool = False,
    salvage: bool = False,
    on_error: Any = None,
    log: Any = None,
) -> SparkIngestReport:
    """Ingest the slices ``specs`` name with Spark into ``catalog`` (which must be new),
    leaving the tables as Parquet under ``lake``. Raises the first bad file's
    :class:`InputFileError` (nothing written) unless ``skip_bad``."""
    from pyspark.sql import functions as F

    began = time.perf_counter()

    def say(step: str) -> None:
        if log is not None:
            log(f"spark ingest: {step} ({time.perf_counter() - began:.1f} s)")

    _check_new_catalog(catalog)
    inputs = spark_inputs(specs)
    report = SparkIngestReport(lake=lake)
    reader = session.read.format("binaryFile").option("recursiveFileLookup", "true")
    if any(_has_scheme(s) for s in inputs):
        reader = reader.option("pathGlobFilter", "*.{json,json.gz}")
    # The parsed files are written once as Parquet beside the lake and read back by every
    # step, not cached: each file is one row holding all its rows in one nested value, and
    # Spark's in-memory cache builds such values in buffers that double as they grow (at 1M
    # playlists it ran out of a 6 GB heap); Parquet streams them and reads back only the
    # columns a step needs.
    parsed_at = f"{lake.rstrip('/')}.parsed-{uuid.uuid4().hex[:8]}"
    vectorised = session.conf.get(NESTED_VECTORISED, None)
    exploded = None
    try:
        reader.load(inputs).select("path", "content").mapInArrow(
            parse_batches(salvage), _spark_schema()
        ).write.parquet(parsed_at)
        # Read back row by row: the vectorised reader fills batches of 4,096 rows, here
        # 4,096 files' worth of nested rows at once.
        session.conf.set(NESTED_VECTORISED, "false")
        parsed = session.read.parquet(parsed_at)
        summary = sorted(
            parsed.select(
                "path", "content_hash", "salvaged", "position", "problem", "n_playlists", "n_rows"
            ).collect(),
            key=lambda r: display_name(r["path"]),
        )
        say(f"read and validated {len(summary)} file(s)")
        good: list[Any] = []
        seen: set[str] = set()
        for row in summary:
            name = display_name(row["path"])
            if row["problem"] is not None:
                error = InputFileError(name, row["position"], row["problem"])
                if not skip_bad:
                    raise error
                report.skipped.append(error)
                if on_error is not None:
                    on_error(error)
            elif row["content_hash"] in seen:
                report.results.append(SliceResult(name, "unchanged"))
            else:
                seen.add(row["content_hash"])
                good.append(row)
        # Files reusing a pid of an earlier file: the one-machine writer decides them.
        order = {row["path"]: i for i, row in enumerate(good)}
        pids = parsed.where(F.col("path").isin(list(order))).select(
            "path", F.explode("playlists.pid").alias("pid")
        )
        shared = (
            pids.groupBy("pid")
            .agg(F.collect_list("path").alias("paths"))
            .where(F.size("paths") > 1)
            .collect()
        )
        deferred: set[str] = set()
        for row in shared:
            holders = sorted(row["paths"], key=order.__getitem__)
            deferred.update(holders[1:])
        say(f"{len(deferred)} file(s) share pids with earlier ones")
        bulk = [row for row in good if row["path"] not in deferred]
        files = [
            {
                "path": row["path"],
                "file_id": i + 1,
                "name": display_name(row["path"]),
                "content_hash": row["content_hash"],
                "n_playlists": row["n_playlists"],
                "n_rows": row["n_rows"],
                "salvaged": bool(row["salvaged"]),
            }
            for i, row in enumerate(bulk)
        ]
        file_frame = session.createDataFrame(
            [(f["path"], f["file_id"]) for f in files], "path string, file_id int"
        )
        tables = build_tables(parsed, file_frame)
        exploded = tables.pop("rows")
        tables["ingested_files"] = session.createDataFrame(
            [
                (
                    f["file_id"],
                    f["name"],
                    f["content_hash"],
                    f["n_playlists"],
                    f["n_rows"],
                    f["salvaged"],
                )
                for f in files
            ],
            "file_id int, path string, content_hash string, playlists long, rows long, salvaged boolean",
        )
        _write_lake(tables, lake)
        say(f"wrote the tables to {lake}")
        _load_catalog(catalog, lake, files, tables)
        say("loaded them into the catalog")
        for f in files:
            report.results.append(
                SliceResult(
                    f["name"], "added", f["n_playlists"], f["n_rows"], salvaged=f["salvaged"]
                )
            )
        if deferred:
            _add_deferred(
                catalog,
                parsed.sparkSession,
                reader,
                inputs,
                sorted(deferred, key=order.__getitem__),
                report,
                skip_bad,
                salvage,
                on_error,
            )
    finally:
        if exploded is not None:
            exploded.unpersist()
        _remove(session, parsed_at)
        if vectorised is None:
            session.conf.unset(NESTED_VECTORISED)
        else:
            session.conf.set(NESTED_VECTORISED, vectorised)
    return report


def _remove(session: Any, where: str) -> None:
    """Delete the folder ``where`` (a local path, or a URI Hadoop can write)."""
    if not _has_scheme(where):
        import shutil

        shutil.rmtree(display_name(where), ignore_errors=True)
        return
    jvm = session._jvm
    path = jvm.org.apache.hadoop.fs.Path(where)
    path.getFileSystem(session._jsc.hadoopConfiguration()).delete(path, True)


def _add_deferred(
    catalog: Catalog,
    session: Any,
    reader: Any,
    inputs: list[str],
    paths: list[str],
    report: SparkIngestReport,
    skip_bad: bool,
    salvage: bool,
    on_error: Any,
) -> None:
    """Files that reuse an earlier file's pids, through the one-machine writer, in order."""
    from pyspark.sql import functions as F

    from segue.formats.mpd import gunzipped, read_slice_data

    contents = {
        r["path"]: bytes(r["content"])
        for r in reader.load(inputs)
        .where(F.col("path").isin(paths))
        .select("path", "content")
        .collect()
    }
    for path in paths:
        name = display_name(path)
        report.deferred.append(name)
        try:
            cols = read_slice_data(name, gunzipped(name, contents[path]), salvage=salvage)
            report.results.append(catalog.add_slice(cols))
        except InputFileError as exc:
            if not skip_bad:
                raise
            report.skipped.append(exc)
            if on_error is not None:
                on_error(exc)


__all__ = ["SparkIngestReport", "display_name", "ingest_spark", "spark_inputs"]
