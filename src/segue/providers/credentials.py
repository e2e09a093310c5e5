"""Spotify app credentials: from the environment or the original project's ``Spotify.yaml``.

Looked up in this order, the first complete one wins:

1. an explicit path (``path=`` argument, the CLI's ``--credentials``, or ``SEGUE_SPOTIFY_YAML``);
2. ``SPOTIPY_CLIENT_ID`` and ``SPOTIPY_CLIENT_SECRET`` (spotipy's convention);
3. ``Spotify.yaml`` in the current folder, then in segue's home folder, then in the user's home.

The YAML file has the original format::

    Client_id: 0123456789abcdef0123456789abcdef
    client_secret: fedcba9876543210fedcba9876543210

(key case does not matter). The secret is never printed, logged, stored or put in an exception
message: :class:`Credentials` hides it from ``repr``, error messages about a broken file name
the file and the line, never its text, and the values are registered with
:func:`~segue.core.redact.register_secret` so that a server echoing them back is redacted.

Credentials go only to an ``https://`` URL, or to ``http://`` on this machine (``localhost``,
127.0.0.0/8, ``::1``) for tests: :func:`check_credential_url`.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from segue.core.errors import SegueError
from segue.core.home import SETTINGS_FILE, Home
from segue.core.redact import redact, register_secret

YAML_NAME = SETTINGS_FILE
ENV_ID = "SPOTIPY_CLIENT_ID"
ENV_SECRET = "SPOTIPY_CLIENT_SECRET"
ENV_PATH = "SEGUE_SPOTIFY_YAML"


class CredentialsError(SegueError):
    """Credentials are missing or their file is unreadable; the message says what is needed."""


class InsecureURLError(CredentialsError):
    """Credentials would go to a URL that is neither HTTPS nor on this machine: refused."""


def is_loopback_host(host: str | None) -> bool:
    """``localhost``, an address in 127.0.0.0/8 or ``::1`` (also IPv4-mapped)."""
    if not host:
        return False
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def check_credential_url(url: str, setting: str) -> None:
    """Raise :class:`InsecureURLError` unless ``url`` is ``https://`` with a host, or ``http://``
    to a loopback host: client credentials and tokens never travel in clear text off this machine.
    ``setting`` names where the URL came from (e.g. ``SEGUE_SPOTIFY_TOKEN_URL``)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        parts, host = None, None
    scheme = parts.scheme.lower() if parts is not None else ""
    if host and (scheme == "https" or (scheme == "http" and is_loopback_host(host))):
        return
    raise InsecureURLError(
        f"refusing to send Spotify credentials to {redact(url)!r} ({setting}): it must be an "
        "https:// URL, or http:// to this machine only (localhost, 127.0.0.0/8, ::1)"
    )


@dataclass(frozen=True, slots=True)
class Credentials:
    """A Spotify app's client id and secret, and where they came from (``source``)."""

    client_id: str
    client_secret: str = field(repr=False)
    source: str = "environment"

    def __post_init__(self) -> None:
        register_secret(self.client_id, self.client_secret)

    def __repr__(self) -> str:
        shown = self.client_id[:4] + "…" if len(self.client_id) > 4 else "…"
        return f"Credentials(client_id={shown!r}, source={self.source!r})"

    __str__ = __repr__


def search_paths(home: Home | None = None) -> list[Path]:
    """Where a ``Spotify.yaml`` is looked for when no path is given, in order: the current
    folder, ``home``'s settings file (default: the home segue uses without ``--home``), the
    user's home folder."""
    settings = (home or Home.resolve(None)).settings
    paths = [Path.cwd() / YAML_NAME, settings, Path.home() / YAML_NAME]
    unique: list[Path] = []
    for p in paths:
        if p not in unique:
            unique.append(p)
    return unique


def missing_message(home: Home | None = None) -> str:
    """What to do when no credentials were found (no secrets in it, only names and paths)."""
    where = ", ".join(str(p) for p in search_paths(home))
    return (
        f"Spotify credentials are needed: set {ENV_ID} and {ENV_SECRET}, or write a {YAML_NAME} "
        f"with 'Client_id: …' and 'client_secret: …' in one of: {where} (or give its path with "
        f"--credentials / {ENV_PATH}). Create an app at https://developer.spotify.com/dashboard "
        "to get them."
    )


def read_yaml(path: Path) -> Credentials:
    """Read a ``Spotify.yaml``. Raises :class:`CredentialsError` naming the file and what is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CredentialsError(f"credentials file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CredentialsError(
            f"cannot read credentials file {path}: {type(exc).__name__}"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # PyYAML's message quotes the offending line, which may hold the secret: give the
        # position only.
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise CredentialsError(
            f"credentials file {path} is not valid YAML{where}; expected 'Client_id: …' and 'client_secret: …'"
        ) from None
    if not isinstance(data, dict):
        raise CredentialsError(
            f"credentials file {path} should be a mapping with 'Client_id' and 'client_secret', "
            f"found a {type(data).__name__}"
        )
    lowered = {str(k).strip().lower(): v for k, v in data.items()}
    client_id = lowered.get("client_id")
    client_secret = lowered.get("client_secret")
    missing = [
        name
        for name, value in (("Client_id", client_id), ("client_secret", client_secret))
        if not isinstance(value, str | int) or not str(value).strip()
    ]
    if missing:
        raise CredentialsError(
            f"credentials file {path} lacks {' and '.join(missing)}; expected 'Client_id: …' and 'client_secret: …'"
        )
    return Credentials(str(client_id).strip(), str(client_secret).strip(), source=str(path))


def load_credentials(
    path: str | os.PathLike[str] | None = None, *, home: Home | None = None
) -> Credentials | None:
    """The first complete credentials in the lookup order, or None when there are none.

    An explicit ``path`` (or ``SEGUE_SPOTIFY_YAML``) that does not exist or is broken raises
    :class:`CredentialsError`; a broken file found by the search raises too (silently skipping
    it would hide the problem).
    """
    explicit = path if path is not None else (os.environ.get(ENV_PATH) or None)
    if explicit is not None:
        return read_yaml(Path(explicit).expanduser())
    env_id = os.environ.get(ENV_ID, "").strip()
    env_secret = os.environ.get(ENV_SECRET, "").strip()
    if env_id and env_secret:
        return Credentials(env_id, env_secret, source="environment")
    for candidate in search_paths(home):
        if candidate.is_file():
            return read_yaml(candidate)
    return None


def require_credentials(
    path: str | os.PathLike[str] | None = None, *, home: Home | None = None
) -> Credentials:
    """Like :func:`load_credentials` but raises :class:`CredentialsError` with what is needed."""
    found = load_credentials(path, home=home)
    if found is None:
        raise CredentialsError(missing_message(home))
    return found
