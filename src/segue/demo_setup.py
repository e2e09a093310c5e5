"""Make the demo home ready: catalog from the bundled table, snapshot and models built."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from segue import config


def demo_ready(home: Path) -> bool:
    """True when the demo's snapshot and default model are built and load with this segue
    (a model saved by an older segue is rebuilt rather than failing at the first request)."""
    from segue.errors import SegueError
    from segue.models.registry import DEFAULT_MODEL, load_model
    from segue.snapshot import Snapshot

    artifacts = home / "artifacts"
    if not (artifacts / "models" / DEFAULT_MODEL / "model.json").exists():
        return False
    try:
        load_model(DEFAULT_MODEL, Snapshot.load(artifacts / "snapshot"), root=artifacts / "models")
    except (SegueError, ValueError, KeyError, OSError):
        return False
    return True


def ensure_demo_ready(*, log: Callable[[str], None] | None = None) -> Path:
    """Switch this process to the demo home and build what is missing there. Returns the home."""
    from segue.demo import demo_home, ensure_demo_catalog

    home = demo_home()
    config.set_home(home)
    home.mkdir(parents=True, exist_ok=True)
    if demo_ready(home):
        return home
    say = log or (lambda m: None)
    say(f"building the demo catalog in {home} (first run only)")
    ensure_demo_catalog(home)
    from segue.build import build

    build(home=home, log=say)
    return home
