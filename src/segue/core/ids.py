"""Spotify references in every form people paste, and nothing else.

Accepted, for tracks, albums, artists and playlists::

    https://open.spotify.com/track/6rqhFgbbKwnb9MLmUQDhG6?si=abc
    https://open.spotify.com/intl-de/track/6rqhFgbbKwnb9MLmUQDhG6
    https://open.spotify.com/embed/track/6rqhFgbbKwnb9MLmUQDhG6
    https://open.spotify.com/user/someone/playlist/37i9dQZF1DXcBWIGoYBM5M
    spotify:track:6rqhFgbbKwnb9MLmUQDhG6
    spotify:user:someone:playlist:37i9dQZF1DXcBWIGoYBM5M
    6rqhFgbbKwnb9MLmUQDhG6           (a bare base62 id; its kind comes from the caller)

A malformed reference raises ``ValueError`` quoting it and showing an accepted form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit


class Kind(StrEnum):
    TRACK = "track"
    ALBUM = "album"
    ARTIST = "artist"
    PLAYLIST = "playlist"


ID_PATTERN = re.compile(r"[0-9A-Za-z]{22}")
_KINDS = {k.value for k in Kind}
_EXAMPLE_ID = "6rqhFgbbKwnb9MLmUQDhG6"


@dataclass(frozen=True, slots=True)
class SpotifyRef:
    kind: Kind
    id: str

    @property
    def uri(self) -> str:
        return f"spotify:{self.kind.value}:{self.id}"

    @property
    def url(self) -> str:
        return f"https://open.spotify.com/{self.kind.value}/{self.id}"

    def __str__(self) -> str:
        return self.uri


def is_spotify_id(text: str) -> bool:
    """True for a 22-character base62 string."""
    return isinstance(text, str) and ID_PATTERN.fullmatch(text) is not None


def _example(kind: Kind | None) -> str:
    k = (kind or Kind.TRACK).value
    return f"'https://open.spotify.com/{k}/{_EXAMPLE_ID}', 'spotify:{k}:{_EXAMPLE_ID}' or '{_EXAMPLE_ID}'"


def _a(kind: Kind) -> str:
    return f"an {kind.value}" if kind is Kind.ALBUM or kind is Kind.ARTIST else f"a {kind.value}"


def _fail(ref: object, why: str, kind: Kind | None) -> ValueError:
    return ValueError(f"not a Spotify reference: {ref!r} ({why}); expected e.g. {_example(kind)}")


def _checked(ref: str, kind_text: str, raw_id: str, want: Kind | None) -> SpotifyRef:
    if kind_text not in _KINDS:
        raise _fail(ref, f"unknown kind {kind_text!r}, expected one of {sorted(_KINDS)}", want)
    kind = Kind(kind_text)
    if want is not None and kind is not want:
        raise _fail(ref, f"it is {_a(kind)}, expected {_a(want)}", want)
    if not is_spotify_id(raw_id):
        raise _fail(ref, f"id {raw_id!r} is not 22 base62 characters", want)
    return SpotifyRef(kind, raw_id)


def parse(ref: str, kind: Kind | None = None, *, default_kind: Kind | None = None) -> SpotifyRef:
    """Parse one reference.

    ``kind``: when given, the reference must be of that kind (a bare id is taken as that kind).
    ``default_kind``: the kind of a bare id when ``kind`` is not given.
    """
    if not isinstance(ref, str):
        raise TypeError(f"a Spotify reference must be a str, got {type(ref).__name__}")
    text = ref.strip()
    if not text:
        raise _fail(ref, "it is empty", kind)
    if is_spotify_id(text):
        bare_kind = kind or default_kind
        if bare_kind is None:
            raise _fail(
                ref,
                "a bare id needs a kind: say whether it is a track, album, artist or playlist",
                kind,
            )
        return SpotifyRef(bare_kind, text)
    if text.startswith("spotify:"):
        parts = text.split(":")
        # spotify:<kind>:<id>, or legacy spotify:user:<user>:playlist:<id>
        if len(parts) == 3:
            return _checked(ref, parts[1], parts[2], kind)
        if len(parts) == 5 and parts[1] == "user" and parts[3] == "playlist" and parts[2]:
            return _checked(ref, "playlist", parts[4], kind)
        raise _fail(ref, "a URI has the form spotify:<kind>:<id>", kind)
    if "://" not in text and text.startswith("open.spotify.com/"):
        text = "https://" + text
    if text.startswith(("http://", "https://")):
        split = urlsplit(text)
        if split.hostname not in {"open.spotify.com", "play.spotify.com"}:
            raise _fail(ref, f"host {split.hostname!r} is not open.spotify.com", kind)
        segments = [s for s in split.path.split("/") if s]
        if segments and re.fullmatch(r"intl-[A-Za-z_-]+", segments[0]):
            segments = segments[1:]
        if segments and segments[0] == "embed":
            segments = segments[1:]
        if len(segments) == 4 and segments[0] == "user" and segments[2] == "playlist":
            segments = segments[2:]
        if len(segments) != 2:
            raise _fail(ref, "a link has the form https://open.spotify.com/<kind>/<id>", kind)
        return _checked(ref, segments[0], segments[1], kind)
    raise _fail(ref, "neither a link, a spotify: URI nor a 22-character id", kind)


def try_parse(
    ref: str, kind: Kind | None = None, *, default_kind: Kind | None = None
) -> SpotifyRef | None:
    """Like :func:`parse` but returns ``None`` instead of raising ``ValueError``."""
    try:
        return parse(ref, kind, default_kind=default_kind)
    except ValueError:
        return None


def track_id(ref: str) -> str:
    """The bare id of a track reference (a bare id is taken as a track)."""
    return parse(ref, Kind.TRACK).id


def artist_id(ref: str) -> str:
    return parse(ref, Kind.ARTIST).id


def album_id(ref: str) -> str:
    return parse(ref, Kind.ALBUM).id


def playlist_id(ref: str) -> str:
    return parse(ref, Kind.PLAYLIST).id


def track_uri(bare_id: str) -> str:
    return f"spotify:track:{bare_id}"
