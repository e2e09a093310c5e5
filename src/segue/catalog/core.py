"""The catalog: one embedded DuckDB file, the only place segue writes SQL.

DuckDB lets one process hold a database file for writing at a time; :meth:`CatalogBase.open`
waits and retries while another process holds the lock, so a web app, an API server and a
running ``segue fetch`` can take turns on one catalog (serving reads the built snapshot).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import duckdb

from segue.core.errors import CatalogError

#: 2: no primary-key indexes on tracks, albums and playlists (their keys are kept unique by the
#: writers, which anti-join against the catalog); no staged_tracks table.
SCHEMA_VERSION = 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE SEQUENCE IF NOT EXISTS artist_key_seq START 1;
CREATE TABLE IF NOT EXISTS artists (
    artist_key BIGINT PRIMARY KEY,
    artist_id VARCHAR USING COMPRESSION uncompressed,  -- Spotify id; NULL while known by name only
    name VARCHAR NOT NULL,
    norm_name VARCHAR NOT NULL,
    popularity SMALLINT,            -- Spotify 0-100 where known
    genres VARCHAR[],               -- NULL = not known yet, [] = known to have none
    source VARCHAR,
    updated_at TIMESTAMP
);
-- tracks, albums and playlists have no PRIMARY KEY: ingest and facts writes anti-join against the
-- table before inserting, so keys stay unique, and an index over millions of keys would cost
-- ingest a third of its time and memory that grows with the catalog. Spotify ids (22 random
-- base62 characters) are stored uncompressed: compressing them saves a fifth of their size at
-- a quarter of ingest's time.
CREATE TABLE IF NOT EXISTS albums (
    album_id VARCHAR NOT NULL USING COMPRESSION uncompressed,  -- unique
    name VARCHAR,
    release_date VARCHAR,
    release_year SMALLINT
);
CREATE TABLE IF NOT EXISTS tracks (
    track_id VARCHAR NOT NULL USING COMPRESSION uncompressed,  -- unique
    name VARCHAR,
    artist_key BIGINT NOT NULL,     -- primary artist
    album_id VARCHAR USING COMPRESSION uncompressed,
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
    pid BIGINT NOT NULL,            -- unique
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
CREATE TABLE IF NOT EXISTS playlist_tracks (
    pid BIGINT NOT NULL,
    pos INTEGER NOT NULL,
    track_id VARCHAR NOT NULL USING COMPRESSION uncompressed
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
);
"""


def unregister(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Drop a registered Arrow view, also inside a transaction a failed statement aborted.

    DuckDB refuses every call on an aborted transaction, ``unregister`` included; raising that
    from a ``finally`` would hide the error that aborted it (an out-of-memory, which ingest
    reports by name). The rollback that follows ends the transaction; a view left registered
    is replaced by the next ``register`` of the same name.
    """
    with contextlib.suppress(duckdb.TransactionException):
        con.unregister(name)


def schema_version_of(path: str | Path) -> int | None:
    """The schema version recorded in the catalog file at ``path`` (read-only, nothing
    changed); None when the file is not a segue catalog or cannot be read."""
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error:
        return None
    try:
        rows = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
        return int(rows[0][0]) if rows else None
    except (duckdb.Error, ValueError):
        return None
    finally:
        con.close()


#: DuckDB memory a bulk connection keeps for its blocks once allocated, rather than freeing it
#: and having the kernel hand out (and zero) fresh pages again: an ingest's writes and
#: checkpoints go through its 64 MB buffer pool over and over (10 synthetic slices: about 10%
#: faster, peak memory about 15 MiB higher; benchmarks/README.md).
BULK_BLOCK_MEMORY = "64MB"


def _connect(path: Path, *, read_only: bool, bulk: bool) -> duckdb.DuckDBPyConnection:
    """A connection to the catalog file; ``bulk``: without write-ahead log (see
    :meth:`CatalogBase.open`), which only an attached database can be opened with."""
    if not bulk or read_only:
        return duckdb.connect(str(path), read_only=read_only)
    con = duckdb.connect(config={"block_allocator_memory": BULK_BLOCK_MEMORY})
    try:
        con.execute("ATTACH ? AS catalog (RECOVERY_MODE no_wal_writes)", [str(path)])
        con.execute("USE catalog")
    except BaseException:
        con.close()
        raise
    return con


class CatalogBase:
    """Connection, schema and transactions. Query and write methods live in the mixins."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path, read_only: bool) -> None:
        self.con = con
        self.path = path
        self.read_only = read_only
        self._depth = 0

    @classmethod
    def open(
        cls, path: str | Path, *, read_only: bool = False, wait: float = 30.0, bulk: bool = False
    ) -> Self:
        """Open (creating when absent and writable) a catalog file.

        Waits up to ``wait`` seconds while another process holds the file. Raises
        :class:`CatalogError` when the file is of another schema version or not a catalog.

        ``bulk`` (for loading many files, as ``segue ingest`` does) writes no write-ahead log:
        commits stay in memory until the next checkpoint (DuckDB's, every 64 MB of changes
        during an ingest; an explicit ``CHECKPOINT``; or the close), which writes them to the
        file together. Each transaction is still all or nothing, but a process killed outright
        loses the transactions since the last checkpoint, and a rerun adds them again.
        """
        path = Path(path)
        if read_only and not path.exists():
            raise CatalogError(
                f"no catalog at {path}: ingest playlists first (`segue ingest`) or run `segue demo`"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + wait
        delay = 0.05
        while True:
            try:
                con = _connect(path, read_only=read_only, bulk=bulk)
                break
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower() or time.monotonic() >= deadline:
                    raise CatalogError(f"cannot open catalog {path}: {exc}") from None
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
            except duckdb.Error as exc:
                raise CatalogError(f"{path} is not a segue catalog: {exc}") from None
        catalog = cls(con, path, read_only)
        try:
            catalog._check_or_create_schema()
        except Exception:
            con.close()
            raise
        return catalog

    def _check_or_create_schema(self) -> None:
        tables = {
            r[0]
            for r in self.con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        }
        if "meta" in tables:
            rows = self.con.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'"
            ).fetchall()
            found = int(rows[0][0]) if rows else None
            if found != SCHEMA_VERSION:
                how = (
                    "`segue upgrade` upgrades it (keeping the old file)"
                    if found is not None and found < SCHEMA_VERSION
                    else "use a segue of that version, or a new --home"
                )
                raise CatalogError(
                    f"catalog {self.path} has schema version {found}, this segue uses "
                    f"{SCHEMA_VERSION}; it was left untouched: {how}"
                )
            return
        if tables:
            raise CatalogError(
                f"{self.path} is a DuckDB file but not a segue catalog (no 'meta' table); left untouched"
            )
        if self.read_only:
            raise CatalogError(f"catalog {self.path} is empty and opened read-only")
        with self.transaction():
            self.con.execute(SCHEMA)
            self.con.execute("INSERT INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])

    @property
    def in_transaction(self) -> bool:
        """True inside :meth:`transaction` (writes there commit with the outermost one)."""
        return self._depth > 0

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """All or nothing: commit on success, roll back on any exception.

        Nested uses join the outermost transaction, so a caller can make several writes (say,
        facts and the record that they were fetched) one commit.
        """
        if self._depth:
            self._depth += 1
            try:
                yield self.con
            finally:
                self._depth -= 1
            return
        self.con.execute("BEGIN TRANSACTION")
        self._depth = 1
        try:
            yield self.con
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        else:
            self.con.execute("COMMIT")
        finally:
            self._depth = 0

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def scalar(self, sql: str, params: list[Any] | None = None) -> Any:
        rows = self.con.execute(sql, params or []).fetchall()
        return rows[0][0] if rows else None
