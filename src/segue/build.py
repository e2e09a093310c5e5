"""Build step: catalog -> snapshot -> fitted models, saved under the home folder."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from segue import config
from segue.models.registry import fit_model
from segue.snapshot import Snapshot

#: What ``segue fit`` builds by default, and what the demo builds.
DEFAULT_BUILD = ("hybrid", "model1", "model2", "itemknn", "als", "title", "popularity")


def build_snapshot_from_catalog(home: Path | None = None) -> Snapshot:
    from segue.catalog import Catalog
    from segue.snapshot_build import build_snapshot

    root = home or config.home()
    with Catalog.open(root / "catalog.duckdb") as catalog:
        snapshot = build_snapshot(catalog)
    snapshot.save(root / "artifacts" / "snapshot")
    return snapshot


def build(
    models: tuple[str, ...] | list[str] = DEFAULT_BUILD,
    *,
    home: Path | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, float]:
    """Rebuild the snapshot and fit ``models``; returns seconds per step."""
    say = log or (lambda m: print(m, file=sys.stderr))
    root = home or config.home()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    snapshot = build_snapshot_from_catalog(root)
    timings["snapshot"] = time.perf_counter() - t0
    say(
        f"snapshot: {snapshot.n_playlists:,} playlists x {snapshot.n_tracks:,} tracks, "
        f"{snapshot.interactions.nnz:,} rows ({timings['snapshot']:.1f} s)"
    )
    for name in models:
        t0 = time.perf_counter()
        fit_model(name, snapshot, root=root / "artifacts" / "models")
        timings[name] = time.perf_counter() - t0
        say(f"fitted {name} ({timings[name]:.1f} s)")
    return timings
