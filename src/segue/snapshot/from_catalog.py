"""Build a :class:`segue.snapshot.arrays.Snapshot` from the catalog (the catalog -> arrays step)."""

from __future__ import annotations

import pandas as pd

from segue.catalog import SCHEMA_VERSION, Catalog
from segue.snapshot.arrays import Snapshot


def build_snapshot(catalog: Catalog) -> Snapshot:
    """Read the catalog once into a snapshot (tracks ordered by id, playlists by pid)."""
    tables = catalog.snapshot_tables()
    tracks = tables["tracks"].to_pandas()
    artists = tables["artists"].to_pandas()
    playlists = tables["playlists"].to_pandas()
    rows = tables["rows"]
    pl_idx = rows["playlist_index"].to_numpy()
    track_idx = rows["track_index"].to_numpy()
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
