"""``segue fit --engine spark``: playlist counts, popularity and ALS computed by Spark.

Spark reads the playlist rows as Parquet from the lake (``<lake>/playlist_tracks``, which
``segue ingest --engine spark`` writes; for a catalog ingested on one machine, or one that
has grown since, the rows are first copied there from the catalog when the lake is local),
counts the playlists of each track, and trains Spark MLlib's ALS with implicit preferences.
Only then is the snapshot rebuilt from the catalog and the results written in segue's
artifact formats (:mod:`segue.spark.export`), tracks matched by id: a Spark job that fails
leaves the snapshot and every model as they were.

Parameters mean what they mean for the one-machine ALS: ``alpha`` is the confidence of a held
track (implicit's ``alpha``; Spark's confidence is ``1 + alpha * r``, so Spark is given
``alpha - 1``), ``regularization`` is Spark's ``regParam``, which Spark scales by each row's
number of ratings (ALS-WR) where implicit does not.
"""

from __future__ import annotations

import contextlib
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from segue.core import artifacts
from segue.core.errors import SegueError
from segue.core.home import Home

if TYPE_CHECKING:
    from segue.models.base import Recommender

#: The models Spark can build.
SPARK_MODELS = ("als", "popularity")


@dataclass
class ALSParams:
    factors: int = 64
    regularization: float = 0.1
    iterations: int = 15
    alpha: float = 20.0
    random_state: int = 0

    def check(self) -> None:
        if self.factors < 1 or self.iterations < 1:
            raise SegueError("ALS factors and iterations must be positive integers")
        if self.regularization < 0:
            raise SegueError(f"ALS regularization must be >= 0, got {self.regularization}")
        if self.alpha < 1:
            raise SegueError(
                f"ALS alpha must be >= 1 on Spark (Spark's confidence is 1 + (alpha - 1)), got {self.alpha}"
            )


@dataclass
class SparkFit:
    """What Spark computed: track ids (sorted), playlists per track, and ALS item factors
    (row ``i`` for ``track_ids[i]``; None when ALS was not asked for)."""

    track_ids: np.ndarray
    counts: np.ndarray
    item_factors: np.ndarray | None
    seconds: float


def _is_local(uri: str) -> bool:
    head, sep, _ = uri.partition("://")
    return not sep or head == "file"


def _local(uri: str) -> Path:
    return Path(uri[len("file://") :] if uri.startswith("file://") else uri)


def export_catalog_rows(catalog_path: Path, lake: str) -> str:
    """The catalog's playlist rows as Parquet at ``<lake>/playlist_tracks`` (local lakes),
    written beside and renamed in; returns the folder."""
    from segue.catalog import Catalog

    target = _local(lake) / "playlist_tracks"
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".playlist_tracks.writing-{uuid.uuid4().hex[:8]}")
    staging.mkdir()
    out = str(staging / "part-0.parquet").replace("'", "''")
    with Catalog.open(catalog_path, read_only=True) as catalog:
        catalog.con.execute(
            f"COPY (SELECT pid, pos, track_id FROM playlist_tracks) TO '{out}' (FORMAT parquet)"
        )
    if target.exists():
        shutil.rmtree(target)
    staging.replace(target)
    return str(target)


def interaction_rows(
    session: Any, catalog_path: Path, lake: str, say: Callable[[str], None]
) -> Any:
    """The playlist rows (pid, track_id) Spark trains on: the lake's, refreshed from the
    catalog (local lakes) when missing or not the catalog's."""
    from segue.catalog import Catalog

    with Catalog.open(catalog_path, read_only=True) as catalog:
        held = catalog.counts()["tracks"]
    where = f"{lake.rstrip('/')}/playlist_tracks"
    if _is_local(lake):
        folder = _local(lake) / "playlist_tracks"
        if not folder.exists():
            say(f"copying the catalog's {held:,} playlist rows to {folder}")
            export_catalog_rows(catalog_path, lake)
        where = str(folder)
    rows = session.read.parquet(where).select("pid", "track_id")
    found = rows.count()
    if found != held:
        if not _is_local(lake):
            raise SegueError(
                f"the lake {lake} holds {found:,} playlist rows and the catalog {held:,}: "
                "ingest again with --engine spark, or give a local --lake"
            )
        say(f"the lake holds {found:,} playlist rows, the catalog {held:,}: copying them again")
        export_catalog_rows(catalog_path, lake)
        rows = session.read.parquet(where).select("pid", "track_id")
    return rows


RATINGS_PER_BLOCK = 4_000_000


def als_blocks(ratings: int, cores: int) -> int:
    """How many user (and item) blocks Spark's ALS splits ``ratings`` into on ``cores``."""
    return max(2, min(10, cores), -(-ratings // RATINGS_PER_BLOCK))


#: Spark's ALS cuts its lineage every this many iterations when the session has a checkpoint
#: directory, and only then deletes the shuffle files behind it. Without one, every
#: iteration's shuffle (each factor sent to each block that needs it: GBs an iteration at the
#: full MPD with 17 blocks) stays on the local disks until the fit ends; a 1M-playlist fit
#: had filled 40 GB of /tmp before its 15 iterations were done.
ALS_CHECKPOINT_EVERY = 2

#: The checkpoint directories segue set (one per fit), so a later fit in the same session
#: tells its own (deleted) directory from one the user configured.
_OURS: set[str] = set()


@contextlib.contextmanager
def als_checkpoints(session: Any, lake: str) -> Iterator[str]:
    """A checkpoint directory for one ALS fit: the session's own when the user set one
    (``--spark-conf spark.checkpoint.dir=URI``, kept afterwards), else a new folder under
    ``<lake>/_checkpoints`` (any URI Hadoop writes, so executors on a cluster share it),
    deleted when the fit ends, failed or not."""
    sc = session.sparkContext
    configured = sc.getCheckpointDir()
    if configured and configured not in _OURS:
        yield configured
        return
    sc.setCheckpointDir(f"{lake.rstrip('/')}/_checkpoints/als-{uuid.uuid4().hex[:12]}")
    where = sc.getCheckpointDir()  # Spark adds a folder of its own inside
    _OURS.add(where)
    try:
        yield where
    finally:
        with contextlib.suppress(Exception):  # a failed delete must not hide the fit's outcome
            ours = sc._jvm.org.apache.hadoop.fs.Path(where).getParent()
            fs = ours.getFileSystem(sc._jsc.hadoopConfiguration())
            fs.delete(ours, True)
            fs.delete(ours.getParent(), False)  # `_checkpoints` too, once no other fit uses it


def spark_fit(
    rows: Any, params: ALSParams | None, say: Callable[[str], None], *, lake: str
) -> SparkFit:
    """Counts per track, and ALS item factors when ``params`` is given, from ``rows`` (ALS
    checkpoints under ``lake`` unless the session has a checkpoint directory)."""
    from pyspark import StorageLevel
    from pyspark.ml.feature import StringIndexer
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import functions as F

    began = time.perf_counter()
    pairs = rows.select("pid", "track_id").distinct().persist(StorageLevel.MEMORY_AND_DISK)
    try:
        # Tracks numbered in id order, as the snapshot numbers them.
        indexer = StringIndexer(
            inputCol="track_id", outputCol="item", stringOrderType="alphabetAsc"
        ).fit(pairs)
        track_ids = np.asarray(indexer.labels, dtype=object)
        data = indexer.transform(pairs).select("pid", F.col("item").cast("int").alias("item"))
        counted = data.groupBy("item").count().toArrow()
        counts = np.zeros(len(track_ids), dtype=np.int64)
        counts[counted["item"].to_numpy()] = counted["count"].to_numpy()
        say(f"counted {int(counts.sum()):,} rows over {len(track_ids):,} tracks")
        factors = None
        if params is not None:
            span = data.agg(F.min("pid"), F.max("pid")).first()
            lo, hi = (span[0], span[1]) if span is not None else (0, 0)
            if lo is not None and (lo < 0 or hi >= 2**31):
                users = StringIndexer(inputCol="p", outputCol="user").fit(
                    data.select(F.col("pid").cast("string").alias("p"))
                )
                data = users.transform(data.withColumn("p", F.col("pid").cast("string")))
                data = data.select(F.col("user").cast("int").alias("user"), "item")
            else:  # MPD pids fit Spark's int ids as they are
                data = data.select(F.col("pid").cast("int").alias("user"), "item")
            # One block of users and of items per core Spark has (its default of 10 each spends
            # a local run's time scheduling small tasks), but never more than ~4M ratings a
            # block: a block's ratings are gathered in one task's heap, and at the full MPD
            # (66M rows) two blocks ran a 6 GB driver out of memory in local mode.
            cores = rows.sparkSession.sparkContext.defaultParallelism
            blocks = als_blocks(int(counts.sum()), cores)
            als = ALS(
                rank=params.factors,
                maxIter=params.iterations,
                regParam=params.regularization,
                alpha=params.alpha - 1.0,
                implicitPrefs=True,
                userCol="user",
                itemCol="item",
                ratingCol="rating",
                seed=params.random_state,
                numUserBlocks=blocks,
                numItemBlocks=blocks,
                checkpointInterval=ALS_CHECKPOINT_EVERY,
            )
            with als_checkpoints(rows.sparkSession, lake):
                model = als.fit(data.withColumn("rating", F.lit(1.0).cast("float")))
                got = model.itemFactors.toArrow()
            factors = np.zeros((len(track_ids), params.factors), dtype=np.float32)
            flat = got["features"].combine_chunks().flatten().to_numpy(zero_copy_only=False)
            factors[got["id"].to_numpy()] = flat.reshape(-1, params.factors)
            say(
                f"trained ALS: {params.factors} factors, {params.iterations} iterations, "
                f"{blocks} blocks, checkpointed every {ALS_CHECKPOINT_EVERY} iterations"
            )
    finally:
        pairs.unpersist()
    return SparkFit(track_ids, counts, factors, time.perf_counter() - began)


def aligned(fit: SparkFit, snapshot_track_ids: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """Spark's counts and factors in the snapshot's track order (tracks Spark did not see,
    e.g. added since by `segue fetch`, get 0 and zero factors, as an ALS without rows for them
    would give)."""
    import pandas as pd

    where = pd.Index(fit.track_ids).get_indexer(pd.Index(list(snapshot_track_ids)))
    hit = where >= 0
    if int(hit.sum()) != len(fit.track_ids):
        raise SegueError(
            f"Spark saw {len(fit.track_ids) - int(hit.sum()):,} tracks that the catalog does not "
            "hold: the lake is not this catalog's (give the right --lake, or remove it)"
        )
    counts = np.zeros(len(where), dtype=np.int64)
    counts[hit] = fit.counts[where[hit]]
    factors = None
    if fit.item_factors is not None:
        factors = np.zeros((len(where), fit.item_factors.shape[1]), dtype=np.float32)
        factors[hit] = fit.item_factors[where[hit]]
    return counts, factors


def fit_on_spark(
    session: Any,
    models: list[str],
    *,
    home: Home | Path,
    lake: str,
    params: ALSParams | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, float]:
    """``segue fit --engine spark``: Spark's counts (and ALS), then the snapshot and the
    artifacts of ``models`` (a subset of :data:`SPARK_MODELS`); returns seconds per step."""
    from segue.fitting.build import NoDataError, no_data_message

    other = [m for m in models if m not in SPARK_MODELS]
    if other:
        raise SegueError(
            f"the Spark engine fits {' and '.join(SPARK_MODELS)}, not {', '.join(other)}: "
            "fit those with the default engine (`segue fit --model NAME`)"
        )
    params = params or ALSParams()
    params.check()
    began = time.perf_counter()

    def say(message: str) -> None:
        if log is not None:
            log(f"spark fit: {message} ({time.perf_counter() - began:.1f} s)")

    home = Home.of(home)
    if not home.catalog.exists():  # refused before anything is created
        raise NoDataError(no_data_message(home, f"{home} has no catalog"))
    # The home's fit lock from the start: a second fit is refused now, not after Spark's
    # training, and checkpoints a killed fit left in the home's own lake are nobody's.
    with artifacts.fit_lock(home.root):
        if _is_local(lake) and _local(lake).resolve() == home.lake.resolve():
            shutil.rmtree(home.lake / "_checkpoints", ignore_errors=True)
        return _fit_on_spark(session, models, home, lake, params, say)


def _fit_on_spark(
    session: Any,
    models: list[str],
    home: Home,
    lake: str,
    params: ALSParams,
    say: Callable[[str], None],
) -> dict[str, float]:
    from segue.fitting.build import build
    from segue.spark.export import als_model, popularity_model

    rows = interaction_rows(session, home.catalog, lake, say)
    fit = spark_fit(rows, params if "als" in models else None, say, lake=lake)
    timings = {"spark": fit.seconds}

    def from_spark(name: str) -> Callable[[Any], Recommender]:
        """The model ``name`` made from Spark's results, aligned to the new snapshot's tracks."""

        def make(snapshot: Any) -> Recommender:
            counts, factors = aligned(fit, snapshot.tracks["track_id"])
            if name == "popularity":
                return popularity_model(counts)
            assert factors is not None
            return als_model(factors, counts, asdict(params))

        return make

    # The same build as `segue fit`: a new snapshot and these models written beside the set in
    # use and switched in one step; models not fitted here are carried over when the snapshot
    # is unchanged and reported stale otherwise (they need the default engine).
    timings.update(
        build(
            models,
            home=home,
            only=True,
            log=say,
            lock_held=True,
            fitters={name: from_spark(name) for name in models},
        )
    )
    return timings


__all__ = [
    "ALS_CHECKPOINT_EVERY",
    "SPARK_MODELS",
    "ALSParams",
    "SparkFit",
    "aligned",
    "als_checkpoints",
    "export_catalog_rows",
    "fit_on_spark",
    "interaction_rows",
    "spark_fit",
]
