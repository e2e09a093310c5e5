"""Where segue keeps its catalog and artifacts, and the settings read from the environment.

One setting decides the home folder: the ``--home`` option, else ``SEGUE_HOME``, else the
platform's user data folder. Network base URLs are settings too, so tests can point the
clients at servers on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_home_override: Path | None = None


def set_home(path: str | os.PathLike[str] | None) -> None:
    """Force the home folder for this process (the CLI's ``--home``)."""
    global _home_override
    _home_override = Path(path).expanduser() if path is not None else None


@contextlib.contextmanager
def temporary_home(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Point this process's home at ``path`` for the duration, then restore the previous one."""
    previous = _home_override
    set_home(path)
    try:
        yield Path(path)
    finally:
        set_home(previous)


def default_home() -> Path:
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return base / "segue"


def home() -> Path:
    """The home folder (created on demand)."""
    if _home_override is not None:
        path = _home_override
    elif os.environ.get("SEGUE_HOME"):
        path = Path(os.environ["SEGUE_HOME"]).expanduser()
    else:
        path = default_home()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file given as home (--home /dev/null), or no permission
        from segue.core.errors import HomeError

        why = "it is not a folder" if path.exists() else (exc.strerror or str(exc))
        raise HomeError(
            f"cannot use {path} as segue's home: {why}; give a folder with --home or SEGUE_HOME"
        ) from None
    return path


def catalog_path() -> Path:
    return home() / "catalog.duckdb"


def artifacts_dir() -> Path:
    path = home() / "artifacts"
    path.mkdir(parents=True, exist_ok=True)
    return path


def logs_dir() -> Path:
    path = home() / "logs"
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class NetworkSettings:
    spotify_api_base: str
    spotify_token_url: str
    audio_features_base: str | None
    max_retry_after: float
    timeout: float

    @classmethod
    def from_env(cls) -> NetworkSettings:
        return cls(
            spotify_api_base=os.environ.get(
                "SEGUE_SPOTIFY_API_BASE", "https://api.spotify.com/v1/"
            ),
            spotify_token_url=os.environ.get(
                "SEGUE_SPOTIFY_TOKEN_URL", "https://accounts.spotify.com/api/token"
            ),
            audio_features_base=os.environ.get("SEGUE_AUDIO_FEATURES_BASE") or None,
            max_retry_after=float(os.environ.get("SEGUE_MAX_RETRY_AFTER", "60")),
            timeout=float(os.environ.get("SEGUE_HTTP_TIMEOUT", "10")),
        )
