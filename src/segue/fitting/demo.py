"""Make the demo home ready: catalog from the bundled table, snapshot and models built.

A build can report its progress to a status file (:class:`BuildStatus`), which the web app
reads to show a "building the demo catalog" page while ``segue demo`` builds behind it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segue.core.home import Home

#: The status file of the demo's build, in the demo home.
STATUS_NAME = ".demo-build.json"
#: The environment variable that hands the web app the status file of a build in progress.
STATUS_ENV = "SEGUE_DEMO_BUILD_STATUS"
#: How many of the build's log lines the status file keeps.
LOG_LINES = 40


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


def ensure_demo_ready(
    home: Home,
    *,
    log: Callable[[str], None] | None = None,
    on_step: Callable[[str], None] | None = None,
) -> Home:
    """The demo's home of ``home`` (:attr:`Home.demo`), with what is missing there built.
    The caller serves that home from then on. ``on_step`` is told the text of each step as it
    starts (see :func:`build_steps`)."""
    demo = home.demo.ensure()
    if demo_ready(demo.root):
        return demo
    build_demo(demo.root, log=log, on_step=on_step)
    return demo


def build_demo(
    home: Path,
    *,
    log: Callable[[str], None] | None = None,
    on_step: Callable[[str], None] | None = None,
) -> None:
    """Build the demo in ``home``: its catalog when missing (kept once made), then the snapshot
    and every model of the default build."""
    from segue.catalog.bundled import CATALOG_NAME, ensure_demo_catalog

    say = log or (lambda m: None)
    tell = on_step or (lambda m: None)
    _set_aside_old_catalog(home, say)
    if (home / CATALOG_NAME).exists():
        say(f"building the demo's models in {home} (its catalog is kept from an earlier run)")
    else:
        say(f"building the demo catalog in {home} (first run only)")
        tell("demo catalog")
        ensure_demo_catalog(home)
    from segue.fitting.build import build

    build(home=home, log=say, on_step=tell)


# -- progress of a build, for the web app's waiting page ------------------------------------
def status_path(home: Path) -> Path:
    """Where the demo build in ``home`` writes its progress."""
    return Path(home) / STATUS_NAME


def build_steps(home: Path) -> list[str]:
    """The steps a build of the demo in ``home`` goes through, as ``on_step`` names them."""
    from segue.catalog.bundled import CATALOG_NAME
    from segue.fitting.build import DEFAULT_BUILD

    steps = [] if (Path(home) / CATALOG_NAME).exists() else ["demo catalog"]
    return [*steps, "snapshot: reading the catalog", *(f"fitting {m}" for m in DEFAULT_BUILD)]


@dataclass
class BuildStatus:
    """What a demo build is doing, as written to its status file.

    ``state``: ``building``, ``ready``, ``failed`` (``message`` says why) or ``interrupted``
    (``message`` says what was kept). ``step``: the running step (a phase of a long model after
    a colon); ``done`` of ``total`` steps are finished. ``pid``: the process building.
    """

    state: str
    step: str = ""
    done: int = 0
    total: int = 1
    started: float = 0.0
    updated: float = 0.0
    message: str = ""
    pid: int = 0
    log: list[str] = field(default_factory=list)

    @property
    def fraction(self) -> float:
        return max(0.0, min(1.0, self.done / self.total)) if self.total else 0.0

    @property
    def elapsed(self) -> float:
        """Seconds from the start to the last update."""
        return max(0.0, self.updated - self.started)

    def running_for(self) -> float:
        """Seconds from the start until now while building (a long step writes nothing),
        else until the last update."""
        if self.state != "building" or self.started <= 0:
            return self.elapsed
        return max(self.elapsed, time.time() - self.started)

    def builder_gone(self) -> bool:
        """The process that writes a ``building`` status no longer runs (killed)."""
        if self.state != "building" or self.pid <= 0:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except OSError:  # another user's process: it runs
            return False
        return False


def read_status(path: Path) -> BuildStatus | None:
    """The status in ``path``, or None when there is none (or it cannot be read)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("state"), str):
        return None
    known = {k: v for k, v in data.items() if k in BuildStatus.__dataclass_fields__}
    try:
        return BuildStatus(**known)
    except TypeError:
        return None


class BuildProgress:
    """Writes a demo build's :class:`BuildStatus` to ``path`` as it goes (a whole file each
    time, replaced in one step, so a reader never sees half of one)."""

    def __init__(self, path: Path, steps: list[str]) -> None:
        self.path = Path(path)
        self.steps = steps
        now = time.time()
        self.status = BuildStatus(
            state="building",
            step="starting",
            total=max(1, len(steps)),
            started=now,
            updated=now,
            pid=os.getpid(),
        )
        self._write()

    def step(self, text: str) -> None:
        """A step (or a phase of one, after a colon) starts."""
        head = text.split(": ")[0]
        names = [s.split(": ")[0] for s in self.steps]
        if head in names:
            self.status.done = max(self.status.done, names.index(head))
        self.status.step = text
        self._write()

    def log(self, line: str) -> None:
        self.status.log = [*self.status.log, line][-LOG_LINES:]
        self._write()

    def finish(self, state: str, message: str = "") -> None:
        self.status.state = state
        self.status.message = message
        if state == "ready":
            self.status.done = self.status.total
            self.status.step = "done"
        self._write()

    def _write(self) -> None:
        self.status.updated = time.time()
        data: dict[str, Any] = dict(self.status.__dict__)
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(data), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError:  # the page shows less; the build goes on
            tmp.unlink(missing_ok=True)


def what_was_kept(home: Path) -> str:
    """What a stopped demo build left in ``home``, for the message that says how to go on."""
    from segue.catalog.bundled import CATALOG_NAME
    from segue.core.artifacts import current_or_none

    if demo_ready(home):
        return "the demo is built"
    if not (Path(home) / CATALOG_NAME).exists():
        return "nothing was kept (the demo catalog was not finished)"
    generation = current_or_none(home)
    if generation is not None and generation.built_models():
        return "kept the demo catalog and the models built before"
    return "kept the demo catalog; its models were not built yet"
