"""Make the demo home ready: catalog from the bundled table, snapshot and models built."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from segue.core import config


def demo_ready(home: Path) -> bool:
    """True when the demo's catalog has this segue's schema and its snapshot and default model
    are built and load with this segue (what an older segue wrote is rebuilt rather than
    failing at the first request)."""
    from segue.catalog.bundled import CATALOG_NAME
    from segue.catalog.core import SCHEMA_VERSION, schema_version_of
    from segue.core.artifacts import current
    from segue.core.errors import SegueError
    from segue.models.registry import DEFAULT_MODEL, load_model
    from segue.snapshot.arrays import Snapshot

    try:
        generation = current(home)
    except SegueError:
        return False
    if not (generation.model_dir(DEFAULT_MODEL) / "model.json").exists():
        return False
    if schema_version_of(home / CATALOG_NAME) != SCHEMA_VERSION:
        return False
    try:
        load_model(
            DEFAULT_MODEL, Snapshot.load(generation.snapshot_dir), root=generation.models_dir
        )
    except (SegueError, ValueError, KeyError, OSError):
        return False
    return True


def _set_aside_old_catalog(home: Path, say: Callable[[str], None]) -> None:
    """Rename a demo catalog written by a segue with another schema, so the demo is rebuilt
    (it is made from the bundled table) and the old file is kept, not deleted."""
    from segue.catalog.bundled import CATALOG_NAME
    from segue.catalog.core import SCHEMA_VERSION, schema_version_of
    from segue.catalog.upgrade import set_aside

    path = home / CATALOG_NAME
    if not path.exists():
        return
    found = schema_version_of(path)
    if found == SCHEMA_VERSION:
        return
    kept = set_aside(path, found, replace=True)
    say(
        f"the demo catalog was written by a segue with schema version {found} (this one uses "
        f"{SCHEMA_VERSION}): kept as {kept.name}, building it again"
    )


def ensure_demo_ready(*, log: Callable[[str], None] | None = None) -> Path:
    """Switch this process to the demo home and build what is missing there. Returns the home."""
    from segue.catalog.bundled import demo_home, ensure_demo_catalog

    home = demo_home()
    config.set_home(home)
    home.mkdir(parents=True, exist_ok=True)
    if demo_ready(home):
        return home
    say = log or (lambda m: None)
    _set_aside_old_catalog(home, say)
    say(f"building the demo catalog in {home} (first run only)")
    ensure_demo_catalog(home)
    from segue.fitting.build import build

    build(home=home, log=say)
    return home
