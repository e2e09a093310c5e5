"""Build a :class:`segue.snapshot.arrays.Snapshot` from the catalog (the catalog -> arrays step)."""

from __future__ import annotations

import json

import pandas as pd

from segue.catalog import SCHEMA_VERSION, Catalog
from segue.catalog.bundled import PLAYLIST_LABELS
from segue.snapshot.arrays import Snapshot
from segue.snapshot.derived import GENRE_LABELS


def build_snapshot(catalog: Catalog) -> Snapshot:
    """Read the catalog once into a snapshot (tracks ordered by id, playlists by pid)."""
    tables = catalog.snapshot_tables()
    tracks = tables["tracks"].to_pandas()
    artists = tables["artists"].to_pandas()
    playlists = tables["playlists"].to_pandas()
    given = catalog.get_meta(PLAYLIST_LABELS)
    if given:
        # the labels each playlist gave as artist genres (the demo catalog): see
        # segue.snapshot.derived.without_playlist_labels
        labels = json.loads(given)
        playlists[GENRE_LABELS] = [labels.get(str(pid), []) for pid in playlists["pid"].tolist()]
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
