"""Build a :class:`segue.snapshot.Snapshot` from the catalog (the catalog -> arrays step)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from segue.catalog import SCHEMA_VERSION, Catalog
from segue.snapshot import Snapshot


def _index_of(values: pa.ChunkedArray, keys: pa.Array | pa.ChunkedArray) -> np.ndarray:
    idx = pc.index_in(values, value_set=keys)
    if idx.null_count:
        raise ValueError(
            f"{idx.null_count} playlist row(s) name a track missing from the tracks table"
        )
    return idx.to_numpy(zero_copy_only=False).astype(np.int64)


def build_snapshot(catalog: Catalog) -> Snapshot:
    """Read the catalog once into a snapshot (tracks ordered by id, playlists by pid)."""
    tables = catalog.snapshot_tables()
    tracks = tables["tracks"].to_pandas()
    artists = tables["artists"].to_pandas()
    playlists = tables["playlists"].to_pandas()
    rows = tables["rows"]
    track_idx = _index_of(rows["track_id"], tables["tracks"]["track_id"].combine_chunks())
    pl_idx = _index_of(rows["pid"], tables["playlists"]["pid"].combine_chunks())
    counts = catalog.counts()
    return Snapshot.from_frames(
        tracks,
        artists,
        playlists,
        (pl_idx, track_idx),
        manifest={
            "catalog_schema_version": SCHEMA_VERSION,
            "catalog_path": str(catalog.path),
            "catalog_counts": counts,
        },
    )


__all__ = ["build_snapshot", "pd"]
