"""Reading Million Playlist Dataset slices: the official schema and reduced ones.

One slice file is read whole (a slice holds 1,000 playlists, about 33 MB), validated and turned
into columns in a single pass, so memory stays bounded by one file however many are ingested.

Required per playlist: ``pid`` (int), ``tracks`` (list) and, unless ``require_name=False``,
``name``. Required per track: ``track_uri``, ``track_name``, ``artist_name``. Everything else
(``pos``, ``artist_uri``, ``album_uri``, ``album_name``, ``duration_ms``, playlist counters,
``description``, ``collaborative`` as "true"/"false" or a bool) is optional.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from segue.errors import InputFileError
from segue.ids import is_spotify_id

TRACK_PREFIX = "spotify:track:"
ARTIST_PREFIX = "spotify:artist:"
ALBUM_PREFIX = "spotify:album:"

PLAYLIST_INT_FIELDS = (
    "modified_at",
    "num_tracks",
    "num_albums",
    "num_followers",
    "num_edits",
    "duration_ms",
    "num_artists",
)


@dataclass
class SliceColumns:
    """A validated slice as columns. Row columns are parallel lists of equal length."""

    path: str
    content_hash: str
    # one entry per playlist
    pid: list[int] = field(default_factory=list)
    name: list[str | None] = field(default_factory=list)
    description: list[str | None] = field(default_factory=list)
    collaborative: list[bool | None] = field(default_factory=list)
    ints: dict[str, list[int | None]] = field(
        default_factory=lambda: {k: [] for k in PLAYLIST_INT_FIELDS}
    )
    playlist_hash: list[str] = field(default_factory=list)
    # one entry per playlist row
    row_pid: list[int] = field(default_factory=list)
    row_pos: list[int] = field(default_factory=list)
    track_id: list[str] = field(default_factory=list)
    track_name: list[str] = field(default_factory=list)
    artist_name: list[str] = field(default_factory=list)
    artist_id: list[str | None] = field(default_factory=list)
    album_id: list[str | None] = field(default_factory=list)
    album_name: list[str | None] = field(default_factory=list)
    duration_ms: list[int | None] = field(default_factory=list)
    salvaged: bool = False

    @property
    def n_playlists(self) -> int:
        return len(self.pid)

    @property
    def n_rows(self) -> int:
        return len(self.track_id)


def read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed when it is gzip (by name or by magic number)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputFileError(str(path), None, f"cannot read: {exc.strerror or exc}") from exc
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputFileError(str(path), None, f"damaged gzip data: {exc}") from exc
    return raw


def _utf8_problem(data: bytes) -> str | None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = data[exc.start : exc.start + 1].hex()
        return f"byte {exc.start}: bytes are not UTF-8 (0x{bad}: {exc.reason})"
    return None


def _line_col(data: bytes, pos: int) -> tuple[int, int]:
    line = data.count(b"\n", 0, pos) + 1
    col = pos - (data.rfind(b"\n", 0, pos) + 1) + 1
    return line, col


def parse_json(path: str, data: bytes) -> Any:
    """orjson.loads with errors that name the file, the position and the problem."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        utf8 = _utf8_problem(data)
        if utf8 is not None:
            pos, _, problem = utf8.partition(": ")
            raise InputFileError(path, pos, problem) from None
        pos = min(exc.pos, len(data))
        line, col = _line_col(data, pos)
        tail = data[pos:].strip()
        if not tail:
            problem = "invalid JSON: the file ends in the middle of a value (truncated download?)"
        else:
            problem = f"invalid JSON: {exc.msg}"
        raise InputFileError(path, f"line {line}, column {col} (byte {pos})", problem) from None


def salvage_playlists(path: str, data: bytes) -> list[dict[str, Any]]:
    """The complete playlists before a truncation or corruption, in file order.

    Walks the ``"playlists": [`` array one object at a time with the standard library's
    ``raw_decode`` (orjson has no incremental mode) and stops at the first object that does
    not parse.
    """
    text = data.decode("utf-8", errors="replace")
    key = text.find('"playlists"')
    if key < 0:
        raise InputFileError(path, None, 'cannot salvage: no "playlists" array found')
    start = text.find("[", key)
    if start < 0:
        raise InputFileError(path, None, 'cannot salvage: no "playlists" array found')
    decoder = json.JSONDecoder()
    out: list[dict[str, Any]] = []
    pos = start + 1
    n = len(text)
    while True:
        while pos < n and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= n or text[pos] == "]":
            break
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            break
        if not isinstance(obj, dict):
            break
        out.append(obj)
    return out


def _norm_uri(value: Any, prefix: str, kind: str) -> str | None:
    """Bare id of a ``spotify:<kind>:<id>`` URI (or of a bare id); None when unusable."""
    if not isinstance(value, str):
        return None
    if value.startswith(prefix):
        bare = value[len(prefix) :]
    else:
        bare = value.rsplit(":", 1)[-1].rsplit("/", 1)[-1].split("?", 1)[0]
    return bare if is_spotify_id(bare) else None


def _opt_int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def _collab(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        if value.lower() == "true":
            return True
        if value.lower() == "false":
            return False
    return None


def playlist_hash(playlist: dict[str, Any]) -> str:
    """Content hash of one playlist, independent of key order."""
    return hashlib.blake2b(
        orjson.dumps(playlist, option=orjson.OPT_SORT_KEYS), digest_size=16
    ).hexdigest()


def columns_from_playlists(
    path: str,
    content_hash: str,
    playlists: list[Any],
    *,
    require_name: bool = True,
    where: str = "playlists",
) -> SliceColumns:
    """Validate playlists (MPD form) and turn them into columns."""
    cols = SliceColumns(path=path, content_hash=content_hash)
    seen_pids: set[int] = set()
    for i, pl in enumerate(playlists):
        loc = f"{where}[{i}]"
        if not isinstance(pl, dict):
            raise InputFileError(path, loc, f"expected a playlist object, got {type(pl).__name__}")
        pid = pl.get("pid")
        if not isinstance(pid, int) or isinstance(pid, bool):
            raise InputFileError(path, loc, f"'pid' must be an integer, got {pid!r}")
        if pid in seen_pids:
            raise InputFileError(path, loc, f"pid {pid} appears twice in this file")
        seen_pids.add(pid)
        name = pl.get("name")
        if name is None and require_name:
            raise InputFileError(path, f"{loc} (pid {pid})", "missing 'name'")
        if name is not None and not isinstance(name, str):
            raise InputFileError(
                path, f"{loc} (pid {pid})", f"'name' must be a string, got {name!r}"
            )
        tracks = pl.get("tracks")
        if not isinstance(tracks, list):
            raise InputFileError(
                path, f"{loc} (pid {pid})", f"'tracks' must be a list, got {type(tracks).__name__}"
            )
        cols.pid.append(pid)
        cols.name.append(name)
        desc = pl.get("description")
        cols.description.append(desc if isinstance(desc, str) else None)
        cols.collaborative.append(_collab(pl.get("collaborative")))
        for key in PLAYLIST_INT_FIELDS:
            cols.ints[key].append(_opt_int(pl.get(key)))
        cols.playlist_hash.append(playlist_hash(pl))
        for j, tr in enumerate(tracks):
            if not isinstance(tr, dict):
                raise InputFileError(
                    path,
                    f"{loc}.tracks[{j}] (pid {pid})",
                    f"expected a track object, got {type(tr).__name__}",
                )
            uri = tr.get("track_uri")
            tid = _norm_uri(uri, TRACK_PREFIX, "track")
            if tid is None:
                raise InputFileError(
                    path,
                    f"{loc}.tracks[{j}] (pid {pid})",
                    f"'track_uri' must be like 'spotify:track:<22 base62 chars>', got {uri!r}",
                )
            tname = tr.get("track_name")
            aname = tr.get("artist_name")
            if not isinstance(tname, str):
                raise InputFileError(
                    path,
                    f"{loc}.tracks[{j}] (pid {pid})",
                    f"'track_name' must be a string, got {tname!r}",
                )
            if not isinstance(aname, str):
                raise InputFileError(
                    path,
                    f"{loc}.tracks[{j}] (pid {pid})",
                    f"'artist_name' must be a string, got {aname!r}",
                )
            pos = tr.get("pos")
            cols.row_pid.append(pid)
            cols.row_pos.append(pos if isinstance(pos, int) and not isinstance(pos, bool) else j)
            cols.track_id.append(tid)
            cols.track_name.append(tname)
            cols.artist_name.append(aname)
            cols.artist_id.append(_norm_uri(tr.get("artist_uri"), ARTIST_PREFIX, "artist"))
            cols.album_id.append(_norm_uri(tr.get("album_uri"), ALBUM_PREFIX, "album"))
            album_name = tr.get("album_name")
            cols.album_name.append(album_name if isinstance(album_name, str) else None)
            cols.duration_ms.append(_opt_int(tr.get("duration_ms")))
    return cols


def read_slice(path: Path, *, salvage: bool = False) -> SliceColumns:
    """Read and validate one MPD slice file.

    Raises :class:`InputFileError` naming the file, the position and the problem. With
    ``salvage=True`` a file that is not valid JSON yields the complete playlists before the
    damage (``SliceColumns.salvaged`` is then True).
    """
    return read_slice_data(str(path), read_bytes(path), salvage=salvage)


def read_slice_data(spath: str, data: bytes, *, salvage: bool = False) -> SliceColumns:
    """:func:`read_slice` for bytes already in memory (``spath`` names them in errors)."""
    digest = hashlib.sha256(data).hexdigest()
    try:
        doc = parse_json(spath, data)
    except InputFileError:
        if not salvage:
            raise
        playlists = salvage_playlists(spath, data)
        cols = columns_from_playlists(spath, digest, playlists)
        cols.salvaged = True
        return cols
    if not isinstance(doc, dict):
        raise InputFileError(
            spath,
            "top level",
            f"expected an object with a 'playlists' list, got {type(doc).__name__}",
        )
    playlists = doc.get("playlists")
    if not isinstance(playlists, list):
        raise InputFileError(
            spath,
            "top level",
            f"expected a 'playlists' list, got {type(playlists).__name__ if playlists is not None else 'nothing'}",
        )
    return columns_from_playlists(spath, digest, playlists)


def iter_playlists(path: Path) -> Iterator[dict[str, Any]]:
    """Raw playlist dicts of one slice (for tools such as the challenge splitter)."""
    data = read_bytes(path)
    doc = parse_json(str(path), data)
    if not isinstance(doc, dict) or not isinstance(doc.get("playlists"), list):
        raise InputFileError(str(path), "top level", "expected an object with a 'playlists' list")
    yield from doc["playlists"]


def expand_paths(specs: list[str]) -> list[Path]:
    """Files named by paths, folders (their *.json and *.json.gz, sorted) or glob patterns.

    A ``.tar.gz``/``.tgz`` archive is returned as is; :mod:`segue.ingest` unpacks it.
    """
    import glob

    out: list[Path] = []
    for spec in specs:
        p = Path(spec).expanduser()
        if any(ch in spec for ch in "*?["):
            matches = sorted(Path(m) for m in glob.glob(str(p), recursive=True))
            if not matches:
                raise InputFileError(spec, None, "the pattern matches no file")
            out.extend(m for m in matches if m.is_file())
        elif p.is_dir():
            found = sorted(
                q for q in p.rglob("*") if q.is_file() and (q.name.endswith((".json", ".json.gz")))
            )
            if not found:
                raise InputFileError(spec, None, "the folder holds no .json or .json.gz file")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise InputFileError(spec, None, "no such file or folder")
    return out
