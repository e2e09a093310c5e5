"""Make the demo home ready: catalog from the bundled table, snapshot and models built."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from segue.core.home import Home


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


def ensure_demo_ready(home: Home, *, log: Callable[[str], None] | None = None) -> Home:
    """The demo's home of ``home`` (:attr:`Home.demo`), with what is missing there built.
    The caller serves that home from then on."""
    from segue.catalog.bundled import ensure_demo_catalog

    demo = home.demo.ensure()
    home_path = demo.root
    if demo_ready(home_path):
        return demo
    say = log or (lambda m: None)
    _set_aside_old_catalog(home_path, say)
    say(f"building the demo catalog in {home_path} (first run only)")
    ensure_demo_catalog(home_path)
    from segue.fitting.build import build

    build(home=demo, log=say)
    return demo
