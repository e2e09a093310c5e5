"""Make the demo home ready: catalog from the bundled table, snapshot and models built."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from segue import config


def demo_ready(home: Path) -> bool:
    return (home / "artifacts" / "models" / "hybrid" / "model.json").exists() and (
        home / "artifacts" / "snapshot" / "manifest.json"
    ).exists()


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
