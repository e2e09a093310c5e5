"""A segue home: the folder of one catalog and what is built from it, as a value.

Layout under the root, written here once::

    catalog.duckdb               the catalog (segue.catalog)
    artifacts/                   built snapshots and models, switched as one set (segue.core.artifacts)
    logs/                        fetch-errors.log and other run logs
    cache/                       files segue can rebuild from the rest
    lake/                        the Spark lake of ``segue ingest --spark`` (default place)
    demo/                        the demo's own home (``segue demo``), unless SEGUE_DEMO_HOME says
    Spotify.yaml                 settings: Spotify app credentials, Last.fm key (one of the places read)
    spotify-user-token.json      the Spotify user authorization of ``segue login``

A :class:`Home` is built once by whatever starts segue (the CLI's callback from ``--home``, the
API factory, a compute worker from its argv, the web app) with :meth:`Home.resolve` — the flag,
else ``SEGUE_HOME``, else the platform's user data folder — and handed on as a value: two homes
in one process do not interfere. Building one touches nothing on disk; :meth:`Home.ensure`
creates the folder when a command needs it.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from segue.core.errors import HomeError

if TYPE_CHECKING:
    from segue.core.artifacts import Generation

HOME_ENV = "SEGUE_HOME"
DEMO_HOME_ENV = "SEGUE_DEMO_HOME"

CATALOG_FILE = "catalog.duckdb"
ARTIFACTS_DIR = "artifacts"
LOGS_DIR = "logs"
CACHE_DIR = "cache"
LAKE_DIR = "lake"
DEMO_DIR = "demo"
SETTINGS_FILE = "Spotify.yaml"
TOKEN_FILE = "spotify-user-token.json"


def default_root() -> Path:
    """The platform's user data folder for segue (the home without ``--home`` nor ``SEGUE_HOME``)."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return base / "segue"


@dataclass(frozen=True)
class Home:
    """The paths of one home folder. ``root`` is kept as given (expanded, not resolved)."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root).expanduser())

    # building one ------------------------------------------------------------------------
    @classmethod
    def resolve(cls, flag: str | os.PathLike[str] | None = None) -> Home:
        """The home segue uses: ``flag`` (``--home``), else ``SEGUE_HOME``, else
        :func:`default_root`. Looked up once, here; nothing is created."""
        if flag is not None and str(flag) != "":
            return cls(Path(flag))
        env = os.environ.get(HOME_ENV)
        return cls(Path(env)) if env else cls(default_root())

    @classmethod
    def of(cls, home: Home | str | os.PathLike[str]) -> Home:
        """``home`` as a :class:`Home` (a path is taken as the root)."""
        return home if isinstance(home, Home) else cls(Path(home))

    def ensure(self) -> Home:
        """This home, its folder created when missing; :class:`HomeError` when it cannot be
        a folder (a file given as home, no permission)."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            why = "it is not a folder" if self.root.exists() else (exc.strerror or str(exc))
            raise HomeError(
                f"cannot use {self.root} as segue's home: {why}; "
                f"give a folder with --home or {HOME_ENV}"
            ) from None
        return self

    # the layout --------------------------------------------------------------------------
    @property
    def catalog(self) -> Path:
        return self.root / CATALOG_FILE

    @property
    def artifacts(self) -> Path:
        """The built sets of snapshot and models (see :mod:`segue.core.artifacts`)."""
        return self.root / ARTIFACTS_DIR

    @property
    def logs(self) -> Path:
        return self.root / LOGS_DIR

    @property
    def cache(self) -> Path:
        return self.root / CACHE_DIR

    @property
    def lake(self) -> Path:
        return self.root / LAKE_DIR

    @property
    def settings(self) -> Path:
        """This home's ``Spotify.yaml`` (credentials and keys; also looked for elsewhere)."""
        return self.root / SETTINGS_FILE

    @property
    def token(self) -> Path:
        """The Spotify user authorization saved by ``segue login``."""
        return self.root / TOKEN_FILE

    @property
    def demo(self) -> Home:
        """The demo's home: ``SEGUE_DEMO_HOME``, else ``demo/`` in this one."""
        override = os.environ.get(DEMO_HOME_ENV)
        return Home(Path(override)) if override else Home(self.root / DEMO_DIR)

    def generation(self) -> Generation:
        """The set of snapshot and models in use (ArtifactError when its pointer is damaged)."""
        from segue.core.artifacts import current

        return current(self.root)

    @property
    def snapshot_dir(self) -> Path:
        """The snapshot of the set in use."""
        return self.generation().snapshot_dir

    @property
    def models_dir(self) -> Path:
        """The models of the set in use."""
        return self.generation().models_dir

    # how commands name it ----------------------------------------------------------------
    def is_bare(self) -> bool:
        """True when ``segue`` without ``--home`` in this environment uses this same home."""
        return _same(self.root, Home.resolve(None).root)

    def option(self) -> str:
        """``--home HOME `` for a command about this home, or ``""`` when it is the one a bare
        ``segue`` uses (``SEGUE_HOME`` or the platform default)."""
        return "" if self.is_bare() else f"--home {shlex.quote(str(self.root))} "

    def __str__(self) -> str:
        return str(self.root)

    def __fspath__(self) -> str:
        return str(self.root)


def _same(a: Path, b: Path) -> bool:
    with contextlib.suppress(OSError):
        return a.resolve() == b.resolve()
    return a == b
