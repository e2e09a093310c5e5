"""Upgrading a catalog written by an earlier segue to this one's schema.

Schema 1 -> 2 changed storage only (no primary-key indexes on tracks, albums and playlists; ids
stored uncompressed; no ``staged_tracks`` table), so every table is copied as it is into a new
file with the current schema, counted on both sides, and the files are swapped. The old file
is kept beside the new one (``catalog.duckdb.schema-1.old``); a failure before the swap leaves
it where it was and removes the partial copy.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from segue.catalog.core import SCHEMA, SCHEMA_VERSION, schema_version_of
from segue.core.errors import CatalogError

#: Schema versions this segue can upgrade from.
UPGRADABLE = (1,)
_TABLE = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+)")


@dataclass(frozen=True)
class UpgradeReport:
    path: Path
    from_version: int
    kept: Path
    rows: dict[str, int]


def _wal(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


def kept_path(path: Path, version: int | None) -> Path:
    """Where :func:`set_aside` keeps a catalog of schema ``version``."""
    return path.with_name(f"{path.name}.schema-{version}.old")


def set_aside(path: Path, version: int | None, *, replace: bool = False) -> Path:
    """Rename the catalog at ``path`` (schema ``version``), with its WAL, to :func:`kept_path`;
    an earlier file kept there is replaced only with ``replace``. Returns the new path."""
    kept = kept_path(path, version)
    if replace:
        for leftover in (kept, _wal(kept)):
            leftover.unlink(missing_ok=True)
    elif kept.exists():
        raise CatalogError(f"{kept} is in the way; move it first")
    os.replace(path, kept)
    if _wal(path).exists():
        os.replace(_wal(path), _wal(kept))
    return kept


def upgrade_catalog(path: Path) -> UpgradeReport | None:
    """Upgrade the catalog at ``path`` in place; None when it already has this schema."""
    path = Path(path)
    if not path.exists():
        raise CatalogError(f"no catalog at {path}")
    found = schema_version_of(path)
    if found == SCHEMA_VERSION:
        return None
    if found not in UPGRADABLE:
        raise CatalogError(
            f"cannot upgrade {path}: schema version {found}; this segue upgrades versions "
            f"{', '.join(map(str, UPGRADABLE))} to {SCHEMA_VERSION}"
        )
    if kept_path(path, found).exists():
        raise CatalogError(
            f"cannot upgrade {path}: {kept_path(path, found)} is in the way; move it first"
        )
    building = path.with_name(f".{path.name}.upgrading-{os.getpid()}")
    for stale in (building, _wal(building)):
        stale.unlink(missing_ok=True)
    try:
        rows = _copy(path, building)
        kept = set_aside(path, found)
        os.replace(building, path)
    finally:
        for leftover in (building, _wal(building)):
            leftover.unlink(missing_ok=True)
    return UpgradeReport(path, found, kept, rows)


def _copy(old: Path, new: Path) -> dict[str, int]:
    con = duckdb.connect(str(new))
    try:
        con.execute(SCHEMA)
        try:
            con.execute(f"ATTACH '{_quoted(old)}' AS old (READ_ONLY)")
        except duckdb.Error as exc:
            raise CatalogError(f"cannot open {old} to upgrade it: {exc}") from None
        old_tables = {
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'old'"
            ).fetchall()
        }
        if "staged_tracks" in old_tables:
            staged = con.execute("SELECT count(*) FROM old.staged_tracks").fetchall()[0][0]
            if staged:
                raise CatalogError(
                    f"cannot upgrade {old}: it holds {staged:,} track rows of an interrupted "
                    "ingest not merged yet; open it once for writing with the segue that wrote "
                    "it (any ingest finishes the merge), then upgrade"
                )
        rows: dict[str, int] = {}
        con.execute("BEGIN")
        for table in _TABLE.findall(SCHEMA):
            if table not in old_tables:
                continue
            columns = [
                r[0]
                for r in con.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_catalog = 'old' AND table_name = ? ORDER BY ordinal_position",
                    [table],
                ).fetchall()
            ]
            names = ", ".join(f'"{c}"' for c in columns)
            if table == "meta":
                con.execute(
                    f"INSERT INTO meta ({names}) SELECT {names} FROM old.meta "
                    "WHERE key <> 'schema_version'"
                )
                con.execute("INSERT INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
                continue
            con.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM old.{table}")
            copied = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
            expected = con.execute(f"SELECT count(*) FROM old.{table}").fetchall()[0][0]
            if copied != expected:
                raise CatalogError(
                    f"upgrade of {old} stopped: {table} has {expected} rows, {copied} copied"
                )
            rows[table] = int(copied)
        # artist keys continue after the highest one given so far
        top = con.execute("SELECT coalesce(max(artist_key), 0) FROM artists").fetchall()[0][0]
        con.execute(f"CREATE OR REPLACE SEQUENCE artist_key_seq START {int(top) + 1}")
        con.execute("COMMIT")
        con.execute("DETACH old")
        con.execute("CHECKPOINT")
        return rows
    finally:
        con.close()


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")
