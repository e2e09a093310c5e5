"""Reading Million Playlist Dataset slices: the official schema and reduced ones.

One slice file is read whole (a slice holds 1,000 playlists, about 33 MB), validated and turned
into columns in a single pass, so memory stays bounded by one file however many are ingested.

Required per playlist: ``pid`` (int), ``tracks`` (list) and, unless ``require_name=False``,
``name``. Required per track: ``track_uri``, ``track_name``, ``artist_name``. Everything else
(``pos``, ``artist_uri``, ``album_uri``, ``album_name``, ``duration_ms``, playlist counters,
``description``, ``collaborative`` as "true"/"false" or a bool) is optional.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import os
import re
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from segue.errors import InputFileError

#: A file's bytes: a bytes object, or a view of a buffer that is reused (:func:`read_into_buffer`).
Bytes = bytes | memoryview

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
    """A validated slice as two Arrow tables.

    ``playlists``: one row per playlist (pid, name, description, collaborative, the counters of
    :data:`PLAYLIST_INT_FIELDS`). ``rows``: one row per playlist row (pid, pos,
    track_id, track_name, artist_name, artist_id, album_id, album_name, duration_ms); ids are
    bare 22-character ids, NULL where the file has none.
    """

    path: str
    content_hash: str
    playlists: pa.Table
    rows: pa.Table
    salvaged: bool = False

    @property
    def n_playlists(self) -> int:
        return self.playlists.num_rows

    @property
    def n_rows(self) -> int:
        return self.rows.num_rows

    @functools.cached_property
    def distinct(self) -> DistinctRows:
        """The file's distinct tracks, artists and albums, computed once (ingest computes them
        in its parse thread)."""
        return distinct_rows(self.rows)


@dataclass(frozen=True)
class DistinctRows:
    """One slice's distinct tracks (one row per track id, the values of its first row), artists
    (``artist_first``: one row per artist id, the name of its first row and its
    :func:`~segue.catalog.core.normalise_name`) and albums (likewise), in order of first
    appearance.

    ``track_keys``, ``artist_keys`` and ``album_keys`` are the :func:`id_keys` of the ids of
    ``tracks``, ``artist_first`` and ``albums`` (row for row), and ``track_artist`` the row in
    ``artist_first`` of each track's artist (-1 when it has no id): the writer looks them up in
    the ids an ingest run already knows (:class:`segue.catalog.mpd.KnownIds`).
    """

    rows: pa.Table
    tracks: pa.Table
    artist_first: pa.Table
    albums: pa.Table
    track_keys: IdKeys
    artist_keys: IdKeys
    album_keys: IdKeys
    track_artist: np.ndarray[Any, np.dtype[np.int64]]

    @functools.cached_property
    def artists(self) -> pa.Table:
        """The file's distinct (artist_id, artist_name) pairs, NULL ids included."""
        return (
            self.rows.select(["artist_id", "artist_name"])
            .group_by(["artist_id", "artist_name"], use_threads=False)
            .aggregate([])
        )


#: Every Spotify id is 22 base62 characters.
ID_BYTES = 22
_ID_DTYPE = np.dtype(f"S{ID_BYTES}")


def _fixed_width(strings: pa.Array, width: int) -> np.ndarray[Any, Any] | None:
    """The values of a string array without NULLs as an (n, width) byte matrix over Arrow's
    buffer (no copy); None when one is not ``width`` bytes long."""
    n = len(strings)
    if strings.null_count or not n:
        return None
    _, offsets_buf, data = strings.buffers()
    offsets = np.frombuffer(offsets_buf, np.int32, n + 1, strings.offset * 4)
    if offsets[-1] - offsets[0] != width * n or not (np.diff(offsets) == width).all():
        return None
    return np.frombuffer(data, np.uint8, width * n, int(offsets[0])).reshape(n, width)


def fixed_ids(ids: pa.Array | pa.ChunkedArray) -> np.ndarray[Any, Any] | None:
    """String ids as a numpy array of 22-byte strings (a view of Arrow's buffer when it can
    be); None when one is NULL or not 22 bytes long."""
    if isinstance(ids, pa.ChunkedArray):
        parts = [fixed_ids(chunk) for chunk in ids.chunks]
        if any(part is None for part in parts):
            return None
        return np.concatenate(parts) if parts else np.zeros(0, _ID_DTYPE)  # type: ignore[arg-type]
    if not len(ids):
        return np.zeros(0, _ID_DTYPE)
    if not pa.types.is_string(ids.type):
        ids = ids.cast(pa.string())
    raw = _fixed_width(ids, ID_BYTES)
    return None if raw is None else raw.reshape(-1).view(_ID_DTYPE)


#: Two uint64 arrays of the same length: two 64-bit hashes of each id.
IdKeys = tuple[np.ndarray[Any, np.dtype[np.uint64]], np.ndarray[Any, np.dtype[np.uint64]]]


def _mix(x: np.ndarray[Any, np.dtype[np.uint64]]) -> np.ndarray[Any, np.dtype[np.uint64]]:
    """splitmix64's finaliser, a bijection of uint64 (numpy's uint64 arithmetic wraps)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def id_keys(ids: np.ndarray[Any, Any]) -> IdKeys:
    """Two 64-bit hashes of each 22-byte id (a :func:`fixed_ids` array), each of all its bytes:
    a 128-bit key to sort and search ids as integers.

    Written on numpy because no library here hashes an array of fixed-width byte strings
    without a Python object per id. The bytes are read as three overlapping 64-bit words
    (0-7, 8-15, 14-21), which together determine the id, and mixed in two different orders.
    """
    raw = np.ascontiguousarray(ids).view(np.uint8).reshape(-1, ID_BYTES)
    w0, w1, w2 = (np.ascontiguousarray(raw[:, a : a + 8]).view("<u8")[:, 0] for a in (0, 8, 14))
    first = _mix(w0 + _mix(w1 + _mix(w2 ^ np.uint64(0x5E6E5EED0001))))
    second = _mix(w2 + _mix(w1 ^ _mix(w0 + np.uint64(0x5E6E5EED0002))))
    return first, second


def _first_rows(
    column: pa.Array | pa.ChunkedArray,
) -> tuple[pa.Array, np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """The distinct non-NULL values of ``column`` in order of first appearance, the row of each
    one's first appearance, and each row's index into them (-1 for NULL)."""
    if isinstance(column, pa.ChunkedArray):  # one dictionary for the whole column
        column = column.combine_chunks()
    encoded = pc.dictionary_encode(column)
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    # Codes are numbered in order of first appearance: a value's first row is where the
    # running maximum of the codes first reaches it.
    if len(codes):
        top = np.maximum.accumulate(codes)
        first = np.flatnonzero(np.concatenate(([top[0] >= 0], top[1:] > top[:-1])))
    else:
        first = np.zeros(0, np.int64)
    return encoded.dictionary, first, codes


def _validated_ids(values: pa.Array) -> np.ndarray[Any, Any]:
    ids = fixed_ids(values)
    if ids is None:  # the readers validate ids: 22 base62 characters, or NULL
        raise ValueError("slice ids must be 22 characters long")
    return ids


def distinct_rows(rows: pa.Table) -> DistinctRows:
    """:class:`DistinctRows` of a table of slice rows (by Arrow's hash kernels, which release
    the GIL)."""
    from segue.catalog.core import normalise_names

    rows = rows.combine_chunks()
    track_values, track_first, _ = _first_rows(rows["track_id"])
    tracks = rows.select(
        [
            "track_id",
            "track_name",
            "artist_name",
            "artist_id",
            "album_id",
            "album_name",
            "duration_ms",
        ]
    ).take(pa.array(track_first))
    artist_values, artist_first, artist_codes = _first_rows(rows["artist_id"])
    album_values, album_first, _ = _first_rows(rows["album_id"])
    artist_names = rows["artist_name"].take(pa.array(artist_first))
    track_ids, artist_ids, album_ids = (
        _validated_ids(values) for values in (track_values, artist_values, album_values)
    )
    return DistinctRows(
        rows=rows,
        tracks=tracks,
        artist_first=pa.table(
            {
                "artist_id": artist_values,
                "artist_name": artist_names,
                "norm": normalise_names(artist_names),
            }
        ),
        albums=pa.table(
            {"album_id": album_values, "album_name": rows["album_name"].take(pa.array(album_first))}
        ),
        track_keys=id_keys(track_ids),
        artist_keys=id_keys(artist_ids),
        album_keys=id_keys(album_ids),
        track_artist=artist_codes[track_first],
    )


def read_bytes(path: Path) -> Bytes:
    """The file's bytes, decompressed when it is gzip (by name or by magic number)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputFileError(str(path), None, f"cannot read: {exc.strerror or exc}") from exc
    return _gunzipped(path, raw)


def _gunzipped(path: Path, raw: Bytes) -> Bytes:
    if bytes(raw[:2]) == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputFileError(str(path), None, f"damaged gzip data: {exc}") from exc
    return raw


_buffers = threading.local()


def release_buffer() -> None:
    """Free this thread's :func:`read_into_buffer` buffer (the views it handed out stay valid)."""
    _buffers.buffer = None


def read_into_buffer(path: Path) -> Bytes:
    """:func:`read_bytes` into a buffer this thread reuses: valid until the thread's next call.

    An ingest reads one slice (about 33 MB) after another; a new bytes object for each would
    have the kernel find and zero fresh pages for every file, about a fifth of ingest's page
    faults.
    """
    try:
        with path.open("rb", buffering=0) as handle:
            size = os.fstat(handle.fileno()).st_size
            buffer: bytearray | None = getattr(_buffers, "buffer", None)
            if buffer is None or len(buffer) < size + 1:
                # With room to spare: slices differ in size.
                buffer = _buffers.buffer = bytearray(size + 1 + size // 4)
            view = memoryview(buffer)
            got = 0
            # One byte more than the size: a file that grew since is read to its end.
            while (n := handle.readinto(view[got:])) and got + n <= size:
                got += n
            if n:  # the file grew while being read: read it whole, the usual way
                return read_bytes(path)
    except OSError as exc:
        raise InputFileError(str(path), None, f"cannot read: {exc.strerror or exc}") from exc
    return _gunzipped(path, view[:got])


def _utf8_problem(data: Bytes) -> str | None:
    data = bytes(data)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = data[exc.start : exc.start + 1].hex()
        return f"byte {exc.start}: bytes are not UTF-8 (0x{bad}: {exc.reason})"
    return None


def _line_col(data: Bytes, pos: int) -> tuple[int, int]:
    data = bytes(data)
    line = data.count(b"\n", 0, pos) + 1
    col = pos - (data.rfind(b"\n", 0, pos) + 1) + 1
    return line, col


def parse_json(path: str, data: Bytes) -> Any:
    """orjson.loads with errors that name the file, the position and the problem."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        utf8 = _utf8_problem(data)
        if utf8 is not None:
            where, _, problem = utf8.partition(": ")
            raise InputFileError(path, where, problem) from None
        pos = min(exc.pos, len(data))
        line, col = _line_col(data, pos)
        tail = bytes(data[pos:]).strip()
        if not tail:
            problem = "invalid JSON: the file ends in the middle of a value (truncated download?)"
        else:
            problem = f"invalid JSON: {exc.msg}"
        raise InputFileError(path, f"line {line}, column {col} (byte {pos})", problem) from None


def salvage_playlists(path: str, data: Bytes) -> list[dict[str, Any]]:
    """The complete playlists before a truncation or corruption, in file order.

    Walks the ``"playlists": [`` array one object at a time with the standard library's
    ``raw_decode`` (orjson has no incremental mode) and stops at the first object that does
    not parse.
    """
    text = bytes(data).decode("utf-8", errors="replace")
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


_INT_RANGE = {32: (-(2**31), 2**31 - 1), 64: (-(2**63), 2**63 - 1)}


def _int_array(values: list[Any], kind: pa.DataType) -> pa.Array:
    """Integers as Arrow; a value that is not an integer, or does not fit ``kind``, becomes
    NULL (optional fields)."""
    try:
        return pa.array(values, kind)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        lo, hi = _INT_RANGE[kind.bit_width]
        ints = [_opt_int(v) for v in values]
        return pa.array([v if v is not None and lo <= v <= hi else None for v in ints], kind)


def _id_pattern(kind: str) -> str:
    """The regular expression of a ``spotify:<kind>:<id>`` URI or a bare id, whole."""
    return rf"^(spotify:{kind}:)?[0-9A-Za-z]{{22}}$"


def _bare_ids(uris: pa.Array, kind: str) -> pa.Array:
    """Bare ids of ``spotify:<kind>:<id>`` URIs (or bare ids); NULL where malformed."""
    ok = pc.match_substring_regex(uris, _id_pattern(kind))
    return pc.if_else(ok, pc.utf8_slice_codeunits(uris, -22), pa.scalar(None, pa.string()))


def _first_bad_track(path: str, playlists: list[dict[str, Any]], where: str) -> InputFileError:
    """Slow path, taken only on error: find the first bad track and say where and why."""
    for i, pl in enumerate(playlists):
        pid = pl.get("pid")
        for j, tr in enumerate(pl["tracks"]):
            loc = f"{where}[{i}].tracks[{j}] (pid {pid})"
            if not isinstance(tr, dict):
                return InputFileError(
                    path, loc, f"expected a track object, got {type(tr).__name__}"
                )
            uri = tr.get("track_uri")
            if not isinstance(uri, str) or not _TRACK_URI.fullmatch(uri):
                return InputFileError(
                    path,
                    loc,
                    f"'track_uri' must be like 'spotify:track:<22 base62 chars>', got {uri!r}",
                )
            for key in ("track_name", "artist_name"):
                if not isinstance(tr.get(key), str):
                    return InputFileError(
                        path, loc, f"{key!r} must be a string, got {tr.get(key)!r}"
                    )
            for key in ("artist_uri", "album_uri", "album_name"):
                if tr.get(key) is not None and not isinstance(tr.get(key), str):
                    return InputFileError(
                        path, loc, f"{key!r} must be a string, got {tr.get(key)!r}"
                    )
    return InputFileError(path, where, "a track is malformed")


_TRACK_URI = re.compile(_id_pattern("track"))


def columns_from_playlists(
    path: str,
    content_hash: str,
    playlists: list[Any],
    *,
    require_name: bool = True,
    where: str = "playlists",
) -> SliceColumns:
    """Validate playlists (MPD form) and turn them into Arrow columns.

    The per-row loop only gathers values; types and id formats are checked in bulk with
    Arrow compute, and a failure falls back to a slow scan that names the first bad track.
    """
    pids: list[int] = []
    names: list[str | None] = []
    descriptions: list[str | None] = []
    collab: list[bool | None] = []
    ints: dict[str, list[Any]] = {k: [] for k in PLAYLIST_INT_FIELDS}
    seen_pids: set[int] = set()
    row_pid: list[int] = []
    row_pos: list[Any] = []
    row_index: list[int] = []
    uri: list[Any] = []
    tname: list[Any] = []
    aname: list[Any] = []
    auri: list[Any] = []
    alb_uri: list[Any] = []
    alb_name: list[Any] = []
    dur: list[Any] = []
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
        pids.append(pid)
        names.append(name)
        desc = pl.get("description")
        descriptions.append(desc if isinstance(desc, str) else None)
        collab.append(_collab(pl.get("collaborative")))
        for key in PLAYLIST_INT_FIELDS:
            ints[key].append(pl.get(key))
        start = len(uri)
        try:
            for j, tr in enumerate(tracks):
                uri.append(tr["track_uri"])
                tname.append(tr["track_name"])
                aname.append(tr["artist_name"])
                auri.append(tr.get("artist_uri"))
                alb_uri.append(tr.get("album_uri"))
                alb_name.append(tr.get("album_name"))
                dur.append(tr.get("duration_ms"))
                row_pos.append(tr.get("pos"))
                row_index.append(j)
        except (KeyError, TypeError, AttributeError):
            raise _first_bad_track(path, playlists, where) from None
        row_pid.extend([pid] * (len(uri) - start))
    try:
        uri_arr = pa.array(uri, pa.string())
        strings = [pa.array(col, pa.string()) for col in (tname, aname, auri, alb_uri, alb_name)]
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        raise _first_bad_track(path, playlists, where) from None
    if uri_arr.null_count or strings[0].null_count or strings[1].null_count:
        raise _first_bad_track(path, playlists, where)  # required: track_uri, names
    if not pc.all(pc.match_substring_regex(uri_arr, _id_pattern("track"))).as_py() and len(uri):
        raise _first_bad_track(path, playlists, where)
    rows = pa.table(
        {
            "pid": pa.array(row_pid, pa.int64()),
            # A row without a usable position takes its place in the playlist's list.
            "pos": pc.coalesce(_int_array(row_pos, pa.int32()), pa.array(row_index, pa.int32())),
            "track_id": pc.utf8_slice_codeunits(uri_arr, -22),
            "track_name": strings[0],
            "artist_name": strings[1],
            "artist_id": _bare_ids(strings[2], "artist"),
            "album_id": _bare_ids(strings[3], "album"),
            "album_name": strings[4],
            "duration_ms": _int_array(dur, pa.int32()),
        }
    )
    table = pa.table(
        {
            "pid": pa.array(pids, pa.int64()),
            "name": pa.array(names, pa.string()),
            "description": pa.array(descriptions, pa.string()),
            "collaborative": pa.array(collab, pa.bool_()),
            **{k: _int_array(v, pa.int64()) for k, v in ints.items()},
        }
    )
    return SliceColumns(path=path, content_hash=content_hash, playlists=table, rows=rows)


def read_slice(path: Path, *, salvage: bool = False) -> SliceColumns:
    """Read and validate one MPD slice file.

    Raises :class:`InputFileError` naming the file, the position and the problem. With
    ``salvage=True`` a file that is not valid JSON yields the complete playlists before the
    damage (``SliceColumns.salvaged`` is then True).
    """
    return read_slice_data(str(path), read_bytes(path), salvage=salvage)


_TRACK_FIELDS = (
    "pos",
    "track_uri",
    "track_name",
    "artist_name",
    "artist_uri",
    "album_uri",
    "album_name",
    "duration_ms",
)


_BASE62 = np.zeros(256, dtype=bool)
_BASE62[
    np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", np.uint8)
] = True


def _ids_of_uris(uris: pa.Array, kind: str) -> tuple[pa.Array, bool]:
    """Bare ids of ``spotify:<kind>:<id>`` URIs or bare ids (NULL where missing or malformed),
    and whether every value was a well-formed URI or id.

    A slice's URIs are usually all of one length, side by side in Arrow's buffer: they are then
    checked and cut as one byte matrix, about three times faster than Arrow's regular
    expression and slicing kernels (which the other cases use).
    """
    n = len(uris)
    if pa.types.is_null(uris.type):
        return pa.nulls(n, pa.string()), n == 0
    prefix = f"spotify:{kind}:".encode()
    width = len(prefix) + ID_BYTES
    raw = _fixed_width(uris, width)
    if raw is not None:
        bare = raw[:, len(prefix) :]
        if (raw[:, : len(prefix)] == np.frombuffer(prefix, np.uint8)).all() and np.take(
            _BASE62, bare
        ).all():
            ends = np.arange(0, ID_BYTES * (n + 1), ID_BYTES, dtype=np.int32)
            ids = pa.Array.from_buffers(
                pa.string(), n, [None, pa.py_buffer(ends), pa.py_buffer(bare.tobytes())]
            )
            return ids, True
    ok = pc.match_substring_regex(uris, _id_pattern(kind))
    ids = pc.if_else(ok, pc.utf8_slice_codeunits(uris, -ID_BYTES), pa.scalar(None, pa.string()))
    return ids, bool(pc.all(ok.fill_null(False)).as_py()) if n else True


def _names_are_utf8(fields: pa.Schema | pa.DataType) -> bool:
    """Whether every field name in a schema (nested ones too) is UTF-8."""
    if isinstance(fields, pa.DataType):
        if pa.types.is_list(fields):
            return _names_are_utf8(fields.value_type)
        if not pa.types.is_struct(fields):
            return True
    children = list(fields)
    try:
        for child in children:
            _ = child.name
    except UnicodeDecodeError:
        return False
    return all(_names_are_utf8(child.type) for child in children)


def _struct_field(struct: pa.StructArray, name: str) -> pa.Array | None:
    """A field of a struct array (absent: None)."""
    index = struct.type.get_field_index(name)
    return None if index < 0 else struct.field(index)


def _is(column: pa.Array | None, *kinds: str) -> bool:
    """Whether ``column`` is absent or of one of ``kinds`` ('null', 'string', 'int64')."""
    if column is None:
        return True
    checks = {"null": pa.types.is_null, "string": pa.types.is_string, "int64": pa.types.is_int64}
    return any(checks[kind](column.type) for kind in kinds)


def _int32_or_none(column: pa.Array) -> pa.Array | None:
    """An int64 (or all-NULL) column as int32; None when a value does not fit."""
    if pa.types.is_null(column.type):
        return pa.nulls(len(column), pa.int32())
    try:
        return column.cast(pa.int32())  # a safe cast: raises on overflow
    except pa.ArrowInvalid:
        return None


def _columns_fast(spath: str, digest: str, data: Bytes) -> SliceColumns | None:
    """Columns through pyarrow's JSON reader and Arrow compute (C++, releasing the GIL, so
    parsing overlaps with the catalog writes of the previous file). Returns None whenever the
    file is not a plain, valid slice, and the exact Python path then decides and names any
    problem."""
    # pyarrow's JSON reader builds the columns as it parses (no document tree). With a block
    # larger than the file it reads the whole file as one block, on this thread.
    if bytes(data[:3]) == b"\xef\xbb\xbf":  # the reader skips a byte order mark; JSON has none
        return None
    options = pa_json.ReadOptions(use_threads=False, block_size=len(data) + 1)
    try:
        parsed = pa_json.read_json(
            pa.BufferReader(pa.py_buffer(data)),  # no copy
            read_options=options,
            parse_options=pa_json.ParseOptions(newlines_in_values=True),
        )
        parsed.validate(full=True)  # the reader passes bytes that are not UTF-8 through
    except Exception:  # any parse, inference or encoding problem: the exact path explains it
        return None
    if not _names_are_utf8(parsed.schema):
        return None  # the reader passes keys that are not UTF-8 through too
    if parsed.num_rows != 1 or "playlists" not in parsed.column_names:
        return None  # several top-level values (not one JSON document), or no playlists
    column = parsed.column("playlists")
    # One block, so one chunk (combining would copy it).
    listed = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    if not pa.types.is_list(listed.type) or not pa.types.is_struct(listed.type.value_type):
        return None
    if listed.null_count:
        return None
    pls = listed.flatten()
    n_pl = len(pls)
    pid, name, tracks = (_struct_field(pls, k) for k in ("pid", "name", "tracks"))
    if (
        not n_pl
        or pls.null_count
        or pid is None
        or name is None
        or tracks is None
        or not pa.types.is_int64(pid.type)
        or not pa.types.is_string(name.type)
        or not pa.types.is_list(tracks.type)
        or not pa.types.is_struct(tracks.type.value_type)
        or pid.null_count
        or name.null_count
        or tracks.null_count
        or pc.count_distinct(pid).as_py() != n_pl
    ):
        return None
    tr = tracks.flatten()
    if tr.null_count:
        return None
    fields = {k: _struct_field(tr, k) for k in _TRACK_FIELDS}
    for key in ("track_uri", "track_name", "artist_name"):
        column = fields[key]
        if column is None or not pa.types.is_string(column.type) or column.null_count:
            return None
    if not all(_is(fields[k], "null", "string") for k in ("artist_uri", "album_uri", "album_name")):
        return None
    if not all(_is(fields[k], "null", "int64") for k in ("pos", "duration_ms")):
        return None
    n = len(tr)
    offsets = tracks.offsets.to_numpy()
    lengths = np.diff(offsets)
    parent = np.repeat(np.arange(n_pl), lengths)
    # A row's place in its playlist's list, for files without 'pos'.
    index = np.arange(n, dtype=np.int64) - (offsets[:-1] - offsets[0])[parent]
    pos = fields["pos"]
    if pos is None or pa.types.is_null(pos.type):  # no row has a position: its place in the list
        pos = pa.array(index)
    else:
        pos = pc.coalesce(pos, pa.array(index))
    pos32 = _int32_or_none(pos)
    duration = fields["duration_ms"]
    dur32 = pa.nulls(n, pa.int32()) if duration is None else _int32_or_none(duration)
    if pos32 is None or dur32 is None:
        return None  # does not fit int32: the exact path decides
    track_id, ok = _ids_of_uris(fields["track_uri"], "track")  # type: ignore[arg-type]
    if not ok:
        return None
    strings = {
        key: pa.nulls(n, pa.string()) if (col := fields[key]) is None else col.cast(pa.string())
        for key in ("artist_uri", "album_uri", "album_name")
    }
    rows = pa.table(
        {
            "pid": pid.take(pa.array(parent)) if n else pa.array([], pa.int64()),
            "pos": pos32,
            "track_id": track_id,
            "track_name": fields["track_name"],
            "artist_name": fields["artist_name"],
            "artist_id": _ids_of_uris(strings["artist_uri"], "artist")[0],
            "album_id": _ids_of_uris(strings["album_uri"], "album")[0],
            "album_name": strings["album_name"],
            "duration_ms": dur32,
        }
    )
    out: dict[str, pa.Array] = {"pid": pid, "name": name}
    description = _struct_field(pls, "description")
    if not _is(description, "null", "string"):
        return None
    out["description"] = (
        pa.nulls(n_pl, pa.string()) if description is None else description.cast(pa.string())
    )
    collaborative = _struct_field(pls, "collaborative")
    if collaborative is None or pa.types.is_null(collaborative.type):
        out["collaborative"] = pa.nulls(n_pl, pa.bool_())
    elif pa.types.is_boolean(collaborative.type):
        out["collaborative"] = collaborative
    elif pa.types.is_string(collaborative.type):
        lower = pc.utf8_lower(collaborative)
        known = pc.is_in(lower, pa.array(["true", "false"]))
        out["collaborative"] = pc.if_else(
            known, pc.equal(lower, "true"), pa.scalar(None, pa.bool_())
        )
    else:
        return None
    for key in PLAYLIST_INT_FIELDS:
        column = _struct_field(pls, key)
        if not _is(column, "null", "int64"):
            return None
        out[key] = pa.nulls(n_pl, pa.int64()) if column is None else column.cast(pa.int64())
    return SliceColumns(path=spath, content_hash=digest, playlists=pa.table(out), rows=rows)


def read_slice_data(
    spath: str, data: Bytes, *, salvage: bool = False, fast: bool = True
) -> SliceColumns:
    """:func:`read_slice` for bytes already in memory (``spath`` names them in errors).

    ``fast=False`` forces the exact Python path (used by tests to check both give the same).
    """
    digest = hashlib.sha256(data).hexdigest()
    if fast:
        cols = _columns_fast(spath, digest, data)
        if cols is not None:
            return cols
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
    found = doc.get("playlists")
    if not isinstance(found, list):
        raise InputFileError(
            spath,
            "top level",
            f"expected a 'playlists' list, got {type(found).__name__ if found is not None else 'nothing'}",
        )
    return columns_from_playlists(spath, digest, found)


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
