"""Playlists a user gives as files, and seeds pasted as free text.

:func:`read_playlist_file` reads, by content rather than by file name:

* an **Exportify CSV** (a ``Track URI`` or ``Spotify ID`` column; also its ``Track Name``,
  ``Artist Name(s)``, ``Artist URI(s)``, ``Album Name``, ``Album URI``, ``Release Date``,
  ``Popularity``, ``Duration`` and audio-feature columns when present);
* an **MPD JSON** playlist: one playlist object, an MPD slice or challenge set, or a list of
  playlist objects (:func:`read_playlists` returns each; :func:`read_playlist_file` wants one);
* a **list of track links**, ``spotify:track:`` URIs or bare ids, one per line or separated by
  whitespace or commas; blank lines and ``#`` comments are ignored.

Bad input raises :class:`segue.core.errors.InputFileError` (a ``ValueError``) naming the file and
the line (or JSON path) and saying what was expected.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segue.core import ids
from segue.core.errors import InputFileError
from segue.core.ids import Kind, SpotifyRef
from segue.core.records import AUDIO_FEATURES, ArtistFacts, ArtistRef, AudioFeatures, TrackFacts
from segue.formats.mpd import LOCAL_PREFIX, USER_RULES, PlaylistChecker, parse_json

BYTES_NAME = "<input>"

_CSV_COLUMNS: dict[str, tuple[str, ...]] = {
    "track_id": (
        "track uri",
        "spotify id",
        "track_uri",
        "track_id",
        "track id",
        "spotify_id",
        "uri",
        "id",
    ),
    "track_name": ("track name", "track_name", "name"),
    "artist_names": (
        "artist name(s)",
        "artist names",
        "artist_name",
        "artist name",
        "artists",
        "artist",
    ),
    "artist_ids": ("artist uri(s)", "artist ids", "artist_uri", "artist_id", "artist uri"),
    "album_id": ("album uri", "album_uri", "album_id"),
    "album_name": ("album name", "album_name", "album"),
    "release_date": ("album release date", "release date", "release_date", "album_release_date"),
    "popularity": ("popularity", "track_popularity"),
    "duration_ms": ("track duration (ms)", "duration (ms)", "duration_ms"),
    "genres": ("artist genres", "genres"),
}
_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")
_COMMENT = re.compile(r"(^|\s)#.*$")
_SEPARATORS = re.compile(r"[,;\n\r]+")
_LOOKS_LIKE_REF = re.compile(r"^(spotify:|https?://|open\.spotify\.com/)", re.IGNORECASE)


@dataclass
class InputPlaylist:
    """One playlist read from a file.

    ``track_ids``: bare track ids in file order, duplicates removed. ``tracks``: facts for the
    ids the file describes (name, artists, album, ...), empty for a list of links.
    ``artists``/``audio_features``: what an Exportify export adds. ``skipped``: notes about
    rows left out (local files, rows without a URI).
    """

    name: str | None
    track_ids: list[str]
    tracks: list[TrackFacts] = field(default_factory=list)
    artists: list[ArtistFacts] = field(default_factory=list)
    audio_features: list[AudioFeatures] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    format: str = ""  # 'exportify', 'mpd' or 'links'


# ----------------------------------------------------------------------------------------
# loading and format detection


def _load(source: str | Path | bytes, name: str | None) -> tuple[str, str, str | None]:
    """(label for messages, text, default playlist name) of a path or bytes."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        label = name or BYTES_NAME
        raw = bytes(source)
        default_name = None
    elif isinstance(source, (str, Path)):
        path = Path(source).expanduser()
        label = str(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise InputFileError(label, None, f"cannot read: {exc.strerror or exc}") from exc
        stem = re.sub(r"\.(csv|json|txt|m3u|gz)$", "", path.name, flags=re.IGNORECASE)
        stem = re.sub(r"\.(csv|json|txt)$", "", stem, flags=re.IGNORECASE)
        default_name = " ".join(stem.replace("_", " ").split()) or None
    else:
        raise TypeError(f"expected a path or bytes, got {type(source).__name__}")
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputFileError(label, None, f"damaged gzip data: {exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputFileError(
            label,
            f"byte {exc.start}",
            "not UTF-8 text: expected an Exportify CSV, an MPD JSON playlist or a list of track links",
        ) from None
    if not text.strip():
        raise InputFileError(
            label,
            None,
            "the file is empty: expected an Exportify CSV, an MPD JSON playlist or a list of track links",
        )
    return label, text, default_name


def _csv_header(text: str) -> list[str] | None:
    """The first line's cells when it names a track id column, else None."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    try:
        cells = next(csv.reader([first]))
    except (csv.Error, StopIteration):
        return None
    lowered = {c.strip().lower() for c in cells}
    if len(cells) > 1 and lowered & set(_CSV_COLUMNS["track_id"]):
        return cells
    return None


def read_playlists(source: str | Path | bytes, name: str | None = None) -> list[InputPlaylist]:
    """Every playlist in a file (or bytes): one for a CSV or a links list, one or more for JSON.

    ``name`` names the playlist (else the MPD ``name``, else the file name for a CSV or a list
    of links) and, for bytes, the input in error messages.
    """
    label, text, default_name = _load(source, name)
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        playlists = _read_json(label, text)
        if name is not None and len(playlists) == 1:
            playlists[0].name = name
        return playlists
    if _csv_header(text) is not None:
        return [_read_csv(label, text, name or default_name)]
    return [_read_links(label, text, name or default_name)]


def read_playlist_file(source: str | Path | bytes, name: str | None = None) -> InputPlaylist:
    """The one playlist of an Exportify CSV, an MPD JSON playlist or a list of track links.

    Raises :class:`InputFileError` (a ``ValueError``) naming the file and line for bad input,
    and when a JSON file holds several playlists (use :func:`read_playlists` for those).
    """
    playlists = read_playlists(source, name)
    if len(playlists) != 1:
        label = name if isinstance(source, (bytes, bytearray, memoryview)) else str(source)
        raise InputFileError(
            label or BYTES_NAME,
            None,
            f"holds {len(playlists)} playlists, expected one: pass one playlist, or read them all with read_playlists()",
        )
    return playlists[0]


# ----------------------------------------------------------------------------------------
# Exportify CSV


def _release(value: str) -> str | None:
    text = value.strip()
    return text if _DATE.fullmatch(text) and 1000 <= int(text[:4]) <= 2100 else None


def _int_or_none(value: str) -> int | None:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def _read_csv(label: str, text: str, name: str | None) -> InputPlaylist:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    fields = reader.fieldnames or []
    lower: dict[str, str] = {}
    for f in fields:
        lower.setdefault(f.strip().lower(), f)
    col = {
        key: next((lower[a] for a in names if a in lower), None)
        for key, names in _CSV_COLUMNS.items()
    }
    feature_cols = {
        f: next((lower[a] for a in (f, f.replace("_", " ")) if a in lower), None)
        for f in AUDIO_FEATURES
    }
    id_col = col["track_id"]
    if id_col is None:  # _csv_header saw one, so this only guards direct calls
        raise InputFileError(
            label, "line 1", f"no track id column: expected one of {list(_CSV_COLUMNS['track_id'])}"
        )
    out = InputPlaylist(name=name, track_ids=[], format="exportify")
    seen: set[str] = set()
    try:
        for row in reader:
            line = reader.line_num
            raw_id = (row.get(id_col) or "").strip()
            if not raw_id:
                out.skipped.append(f"line {line}: no track URI (unavailable track?)")
                continue
            if raw_id.startswith(LOCAL_PREFIX):
                out.skipped.append(f"line {line}: local file {raw_id!r} has no Spotify id")
                continue
            try:
                track_id = ids.parse(raw_id, Kind.TRACK).id
            except ValueError as exc:
                raise InputFileError(label, f"line {line}, column {id_col!r}", str(exc)) from None
            if track_id in seen:
                continue
            seen.add(track_id)
            out.track_ids.append(track_id)

            def cell(key: str, row: dict[str, Any] = row) -> str:
                c = col[key]
                value = row.get(c) if c is not None else None
                return value.strip() if isinstance(value, str) else ""

            refs = _artist_refs(cell("artist_names"), cell("artist_ids"))
            pop = _int_or_none(cell("popularity"))
            dur = _int_or_none(cell("duration_ms"))
            album = cell("album_id")
            album_ref = ids.try_parse(album, Kind.ALBUM) if album else None
            out.tracks.append(
                TrackFacts(
                    track_id=track_id,
                    name=cell("track_name") or None,
                    artists=refs,
                    album_id=album_ref.id if album_ref else None,
                    album_name=cell("album_name") or None,
                    release_date=_release(cell("release_date")),
                    popularity=pop if pop is not None and 0 <= pop <= 100 else None,
                    duration_ms=dur if dur is not None and dur >= 0 else None,
                    source="exportify",
                )
            )
            values: dict[str, float] = {}
            for feature, c in feature_cols.items():
                if c is None:
                    continue
                raw = (row.get(c) or "").strip()
                if not raw:
                    continue
                try:
                    values[feature] = float(raw)
                except ValueError:
                    raise InputFileError(
                        label, f"line {line}, column {c!r}", f"expected a number, got {raw!r}"
                    ) from None
            if values:
                out.audio_features.append(AudioFeatures(track_id, values, "exportify"))
            genres = cell("genres")
            if genres and len(refs) == 1 and refs[0].artist_id is not None:
                out.artists.append(
                    ArtistFacts(
                        refs[0].artist_id,
                        refs[0].name,
                        [g.strip() for g in genres.split(",") if g.strip()],
                        source="exportify",
                    )
                )
    except csv.Error as exc:
        raise InputFileError(label, f"line {reader.line_num}", f"malformed CSV: {exc}") from None
    if not out.track_ids and not out.skipped:
        raise InputFileError(label, None, "the CSV has a header but no track rows")
    return out


def _artist_refs(names_cell: str, ids_cell: str) -> list[ArtistRef]:
    """Artists of an Exportify row. Names are comma-joined there, and a name may hold a comma
    ("Tyler, The Creator"), so the ids' count decides how the names split when ids are given."""
    artist_ids: list[str | None] = []
    for part in (p.strip() for p in ids_cell.split(",") if p.strip()):
        ref = ids.try_parse(part, Kind.ARTIST)
        artist_ids.append(ref.id if ref else None)
    names = [p.strip() for p in names_cell.split(",") if p.strip()] if names_cell else []
    if artist_ids:
        if len(names) != len(artist_ids):
            names = [names_cell] if len(artist_ids) == 1 and names_cell else []
        return [
            ArtistRef(names[i] if i < len(names) else "", artist_ids[i])
            for i in range(len(artist_ids))
            if artist_ids[i] is not None or i < len(names)
        ]
    return [ArtistRef(n) for n in names]


# ----------------------------------------------------------------------------------------
# MPD JSON


def _read_json(label: str, text: str) -> list[InputPlaylist]:
    doc = parse_json(label, text.encode("utf-8"))
    if isinstance(doc, dict) and isinstance(doc.get("playlists"), list):
        items, where, lone = doc["playlists"], "playlists", False
    elif isinstance(doc, dict) and "tracks" in doc:
        items, where, lone = [doc], "playlist", True
    elif isinstance(doc, list):
        items, where, lone = doc, "", False
    else:
        raise InputFileError(
            label,
            "top level",
            "expected an MPD playlist object (with 'tracks'), an MPD slice or challenge set "
            "(with 'playlists'), or a list of playlist objects",
        )
    # the one MPD playlist validator, with the rules of a playlist a user gives
    checker = PlaylistChecker(label, USER_RULES, where)
    out = [_mpd_playlist(checker, item, None if lone else i) for i, item in enumerate(items)]
    if not out:
        raise InputFileError(label, where or "top level", "holds no playlist")
    return out


def _mpd_playlist(checker: PlaylistChecker, item: Any, index: int | None) -> InputPlaylist:
    one = checker.playlist(item, index, tracks=False)
    out = InputPlaylist(name=one.name, track_ids=[], format="mpd")
    seen: set[str] = set()
    for j, tr in enumerate(one.tracks):
        uri = checker.track(one, j, tr)
        if uri.startswith(LOCAL_PREFIX):
            out.skipped.append(f"{one.track_at(j)}: local file {uri!r} has no Spotify id")
            continue
        track_id = ids.parse(uri, Kind.TRACK).id  # the checker let only track references by
        if track_id in seen:
            continue
        seen.add(track_id)
        out.track_ids.append(track_id)
        if not isinstance(tr, dict):
            continue  # a track given as its URI alone
        tname, aname = tr.get("track_name"), tr.get("artist_name")
        if tname is None and aname is None:
            continue
        artist_ref = ids.try_parse(tr["artist_uri"], Kind.ARTIST) if tr.get("artist_uri") else None
        album_ref = ids.try_parse(tr["album_uri"], Kind.ALBUM) if tr.get("album_uri") else None
        dur = tr.get("duration_ms")
        out.tracks.append(
            TrackFacts(
                track_id=track_id,
                name=tname,
                artists=[ArtistRef(aname, artist_ref.id if artist_ref else None)]
                if aname is not None
                else [],
                album_id=album_ref.id if album_ref else None,
                album_name=tr.get("album_name"),
                duration_ms=dur
                if isinstance(dur, int) and not isinstance(dur, bool) and dur >= 0
                else None,
                source="mpd",
            )
        )
    return out


# ----------------------------------------------------------------------------------------
# seed text that names a file

#: Suffixes of the playlist files segue reads (an Exportify CSV, MPD JSON, a list of links,
#: any of them gzipped).
PLAYLIST_FILE_SUFFIXES = (".csv", ".json", ".txt", ".m3u", ".m3u8", ".gz")
_DRIVE = re.compile(r"^[A-Za-z]:(?:[\\/]|$)")
#: Characters a file system drops or ignores at the end of a path ("x.txt/", "x.txt/.",
#: "x.txt//" and, on Windows, "x.txt." and "x.txt " all open x.txt).
_PATH_TAIL = "/\\. \t"


def names_a_file(text: str) -> bool:
    """True when the seed text ``text`` is to be taken as a file path rather than as a
    Spotify reference or a name to look up.

    The one rule every shell uses (command line, HTTP API, web app): the service reads such a
    text as a file only where files are allowed (the command line), and refuses it elsewhere.
    It is decided from the text alone, never by looking at the file system, so an answer
    tells nothing about which files exist.

    A file path is text that is not a Spotify reference and that starts like a path (``/``,
    ``\\``, ``~``, ``./``, ``../``, ``C:``, ``file:``), holds a ``..`` component or a NUL, or
    ends with a playlist file's suffix (:data:`PLAYLIST_FILE_SUFFIXES`) once the separators,
    dots and blanks a file system ignores at the end are dropped. A name with a slash inside
    (``AC/DC``) stays a name.
    """
    t = text.strip()
    if not t:
        return False
    if "\x00" in t:
        return True
    if ids.try_parse(t, default_kind=Kind.TRACK) is not None:
        return False
    if t.lower().startswith("file:") or t.startswith(("/", "\\", "~")) or _DRIVE.match(t):
        return True
    parts = re.split(r"[\\/]", t)
    if any(p in (".", "..") for p in parts[:-1]) or parts[-1] == "..":
        return True
    if t in (".", ".."):
        return True
    return t.rstrip(_PATH_TAIL).lower().endswith(PLAYLIST_FILE_SUFFIXES)


def file_path(text: str) -> Path:
    """The path a seed text for which :func:`names_a_file` holds names (``file:`` URLs and
    ``~`` resolved); for the command line, where a person names their own files."""
    from urllib.parse import unquote, urlparse

    t = text.strip()
    if "\x00" in t:
        raise ValueError(f"{t!r}: a file path cannot hold a NUL character")
    if t.lower().startswith("file:"):
        t = unquote(urlparse(t).path)
    return Path(t).expanduser()


# ----------------------------------------------------------------------------------------
# links list and free text


def _read_links(label: str, text: str, name: str | None) -> InputPlaylist:
    out = InputPlaylist(name=name, track_ids=[], format="links")
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        body = _COMMENT.sub("", line).strip()
        if not body:
            continue
        for token in (t for t in re.split(r"[\s,]+", body) if t):
            if token.startswith(LOCAL_PREFIX):
                out.skipped.append(f"line {number}: local file {token!r} has no Spotify id")
                continue
            try:
                track_id = ids.parse(token, Kind.TRACK).id
            except ValueError as exc:
                raise InputFileError(
                    label,
                    f"line {number}",
                    f"{exc} (a list of tracks holds one link, URI or id per line)",
                ) from None
            if track_id not in seen:
                seen.add(track_id)
                out.track_ids.append(track_id)
    if not out.track_ids and not out.skipped:
        raise InputFileError(
            label, None, "no track link, URI or id found (only blank lines and # comments)"
        )
    return out


def parse_seed_text(text: str) -> list[SpotifyRef | str]:
    """Seeds pasted by a user, in order: Spotify references and search strings.

    The text is split into groups on commas, semicolons and newlines, and each group on
    whitespace. A token that is a link, URI or bare id becomes a :class:`SpotifyRef` (a bare id
    is a track); the other words of a group are kept together as one search string
    (``"yellow coldplay, daft punk"`` -> ``["yellow coldplay", "daft punk"]``). A token that looks
    like a link or URI but is malformed raises ``ValueError`` saying what was expected.
    """
    if not isinstance(text, str):
        raise TypeError(f"seed text must be a str, got {type(text).__name__}")
    out: list[SpotifyRef | str] = []
    for group in _SEPARATORS.split(text):
        words: list[str] = []
        word_slot: int | None = None
        for token in group.split():
            ref = ids.try_parse(token, default_kind=Kind.TRACK)
            if ref is not None:
                out.append(ref)
                continue
            if _LOOKS_LIKE_REF.match(token):
                ids.parse(token, default_kind=Kind.TRACK)  # raises the ValueError that explains
            if word_slot is None:
                word_slot = len(out)
                out.append("")
            words.append(token)
        if word_slot is not None:
            out[word_slot] = " ".join(words)
    return out


__all__ = [
    "PLAYLIST_FILE_SUFFIXES",
    "InputPlaylist",
    "file_path",
    "names_a_file",
    "parse_seed_text",
    "read_playlist_file",
    "read_playlists",
]
