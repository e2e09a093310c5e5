"""Reading Million Playlist Dataset slices: the official schema and reduced ones.

One slice file is read whole (a slice holds 1,000 playlists, about 33 MB), validated and turned
into columns in a single pass, so memory stays bounded by one file however many are ingested.

Required per playlist: ``pid`` (int), ``tracks`` (list) and, unless ``require_name=False``,
``name``. Required per track: ``track_uri``, ``track_name``, ``artist_name``. Everything else
(``pos``, ``artist_uri``, ``album_uri``, ``album_name``, ``duration_ms``, playlist counters,
``description``, ``collaborative`` as "true"/"false" or a bool) is optional.

:class:`PlaylistChecker` is the one validator of an MPD playlist object, used by ingest (here),
by the challenge reader (:mod:`segue.evaluation.formats`) and by the files a user gives
(:mod:`segue.service.inputs`): the same checks and messages (naming the file, the playlist and
the field), with :class:`PlaylistRules` for what legitimately differs (:data:`SLICE_RULES`,
:data:`CHALLENGE_RULES`, :data:`USER_RULES`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import sys
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from segue.core import ids
from segue.core.errors import InputFileError

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
    #: Optional values given but not usable (negative, not integers, out of range, of the
    #: wrong type), stored as NULL.
    nulled: int = 0
    #: Playlists whose positions were unusable or repeated, stored in list order instead.
    renumbered: int = 0

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
    :func:`~segue.core.text.normalise_name`) and albums (likewise), in order of first
    appearance.

    ``track_keys``, ``artist_keys`` and ``album_keys`` are the :func:`id_keys` of the ids of
    ``tracks``, ``artist_first`` and ``albums`` (row for row), and ``track_artist`` the row in
    ``artist_first`` of each track's artist (-1 when it has no id): the writer looks them up in
    the ids an ingest run already knows (:class:`segue.catalog.playlists.KnownIds`).
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
    from segue.core.text import normalise_names

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


#: The largest file (after decompression) ingest reads, unless told otherwise: a real slice is
#: about 33 MB, and reading one takes a few times its size in memory (docs/ingest-robustness.md).
MAX_FILE_BYTES = 256 << 20
#: Compressed input is fed to zlib in pieces of this size: one piece inflates to at most about
#: 1,000 times as much, so the output is checked against the cap as it grows.
_INFLATE_PIECE = 64 << 10


def _mib(n: int) -> str:
    return f"{n / (1 << 20):,.0f} MiB"


def _too_large(name: str, limit: int, what: str) -> InputFileError:
    return InputFileError(
        name,
        None,
        f"{what} more than the {_mib(limit)} allowed for one file (a slice is about 33 MB; "
        "raise the limit with --max-file-mb)",
    )


def _limit(max_bytes: int | None) -> int:
    return MAX_FILE_BYTES if max_bytes is None else max_bytes


def read_bytes(path: Path, max_bytes: int | None = None) -> Bytes:
    """The file's bytes, decompressed when it is gzip (by name or by magic number); at most
    ``max_bytes`` (default :data:`MAX_FILE_BYTES`) of them, or an error."""
    limit = _limit(max_bytes)
    try:
        with path.open("rb") as handle:
            raw = handle.read(limit + 1)
    except OSError as exc:
        raise InputFileError(str(path), None, f"cannot read: {exc.strerror or exc}") from exc
    if len(raw) > limit:  # compressed or not: deflate never shrinks what it inflates
        raise _too_large(str(path), limit, "holds")
    return gunzipped(str(path), raw, limit)


def gunzipped(name: str, raw: Bytes, max_bytes: int | None = None) -> Bytes:
    """``raw`` decompressed when it starts with gzip's magic number (else as it is), inflated a
    piece at a time so that more than ``max_bytes`` of output is refused as soon as it appears,
    not after it filled memory (a gzip of 1 GiB of spaces is 1 MB)."""
    if bytes(raw[:2]) != b"\x1f\x8b":
        return raw
    limit = _limit(max_bytes)
    out = bytearray()
    view = memoryview(raw)
    at = 0
    try:
        while True:  # one gzip member after another, as gzip.decompress reads them
            inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
            while not inflate.eof:
                piece = view[at : at + _INFLATE_PIECE]
                if not piece:
                    raise InputFileError(
                        name, None, "damaged gzip data: the file ends before the end of the stream"
                    )
                at += len(piece)
                out += inflate.decompress(piece, limit + 1 - len(out))
                if len(out) > limit or inflate.unconsumed_tail:
                    raise _too_large(name, limit, "decompresses to")
            at -= len(inflate.unused_data)
            while at < len(view) and view[at] == 0:  # padding after the last member
                at += 1
            if at >= len(view):
                return memoryview(out)
            if bytes(view[at : at + 2]) != b"\x1f\x8b":
                raise InputFileError(
                    name, f"byte {at}", "damaged gzip data: not gzip data after the end of a stream"
                )
    except zlib.error as exc:
        raise InputFileError(name, None, f"damaged gzip data: {exc}") from exc


_buffers = threading.local()


def release_buffer() -> None:
    """Free this thread's :func:`read_into_buffer` buffer (the views it handed out stay valid)."""
    _buffers.buffer = None


def read_into_buffer(path: Path, max_bytes: int | None = None) -> Bytes:
    """:func:`read_bytes` into a buffer this thread reuses: valid until the thread's next call.

    An ingest reads one slice (about 33 MB) after another; a new bytes object for each would
    have the kernel find and zero fresh pages for every file, about a fifth of ingest's page
    faults.
    """
    limit = _limit(max_bytes)
    try:
        with path.open("rb", buffering=0) as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > limit:
                raise _too_large(str(path), limit, "holds")
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
                return read_bytes(path, limit)
    except OSError as exc:
        raise InputFileError(str(path), None, f"cannot read: {exc.strerror or exc}") from exc
    return gunzipped(str(path), view[:got], limit)


#: The pieces the structural scan and the error helpers below read a file in: their scratch
#: arrays stay a few times this size whatever the file's size.
_SCAN_PIECE = 256 << 10
#: Nesting the fast reader is given (an MPD slice needs 5: document, playlists, playlist,
#: tracks, track). pyarrow's JSON reader recurses once per level and overflows the C stack
#: (a segmentation fault) near 20,000; deeper files take the exact path, which refuses
#: nesting past orjson's limit (1,024) with an error.
FAST_MAX_DEPTH = 64
#: orjson's nesting limit (a value deeper than this is refused).
JSON_MAX_DEPTH = 1024
_WHITESPACE = b" \t\r\n"
#: Every byte but quotes and brackets, which :func:`one_shallow_object` deletes first.
_NOT_STRUCTURE = bytes(sorted(set(range(256)) - set(b'"[]{}')))


def _first_byte(view: memoryview) -> tuple[int, int] | None:
    """The first byte that is not JSON whitespace and its offset (None: only whitespace)."""
    at, size = 0, 4096
    while at < len(view):
        piece = bytes(view[at : at + size])
        stripped = piece.lstrip(_WHITESPACE)
        if stripped:
            return stripped[0], at + len(piece) - len(stripped)
        at, size = at + size, min(size * 2, _SCAN_PIECE)
    return None


def _last_byte_offset(view: memoryview) -> int:
    """The offset of the last byte that is not JSON whitespace (-1: none)."""
    end, size = len(view), 4096
    while end > 0:
        start = max(0, end - size)
        stripped = bytes(view[start:end]).rstrip(_WHITESPACE)
        if stripped:
            return start + len(stripped) - 1
        end, size = start, min(size * 2, _SCAN_PIECE)
    return -1


def _escaped_quotes(raw: np.ndarray[Any, Any], carried: int) -> tuple[np.ndarray[Any, Any], int]:
    """The offsets in ``raw`` of quotes escaped by an odd run of backslashes (``carried``: the
    run that ended the previous piece), and the run that ends this one."""
    slashes = np.flatnonzero(raw == ord("\\"))
    if not len(slashes) and not carried:
        return slashes, 0
    new_run = np.diff(slashes, prepend=-2) != 1
    starts = slashes[new_run]
    ends = slashes[np.flatnonzero(np.append(new_run[1:], len(slashes) > 0))]
    lengths = ends - starts + 1
    lengths[starts == 0] += carried
    after = ends + 1
    if carried and (not len(starts) or starts[0] != 0):  # the carried run ends at offset 0
        after, lengths = np.append(0, after), np.append(carried, lengths)
    odd = (lengths % 2 == 1) & (after < len(raw))
    escaped = after[odd]
    escaped = escaped[raw[escaped] == ord('"')]
    if not len(slashes) or slashes[-1] != len(raw) - 1:
        return escaped, 0
    return escaped, int(lengths[-1]) if carried or len(slashes) else 0


def one_shallow_object(data: Bytes, max_depth: int = FAST_MAX_DEPTH) -> bool:
    """Whether ``data`` is, as far as brackets and strings go, one JSON object nested at most
    ``max_depth`` deep with nothing but whitespace after it: what pyarrow's JSON reader is
    safe on (it crashes on a top-level ``null`` and on deep nesting).

    Written by hand because no JSON library here measures depth without either building the
    document or recursing. Per piece of the file: quotes escaped by an odd run of backslashes
    (a few in a real slice) are blanked, everything but quotes and brackets is deleted
    (``bytes.translate``, a tenth of the bytes remain), and on what remains numpy counts the
    quotes before each bracket, ignores brackets inside strings and sums the others (parsing a
    slice takes a few percent longer with it: docs/ingest-robustness.md). On invalid JSON the
    count may go wrong past the first
    error, but the reader stops there too; up to that point it is exact, so it never
    understates what the reader meets.
    """
    view = memoryview(data).cast("B")
    first = _first_byte(view)
    if first is None or first[0] != ord("{"):
        return False
    last = _last_byte_offset(view)
    if view[last] != ord("}"):
        return False  # something follows the object, or it is not closed
    depth = 0
    in_string = closed = False
    carried = 0  # the run of backslashes that ended the previous piece
    for at in range(0, len(view), _SCAN_PIECE):
        piece = bytes(view[at : at + _SCAN_PIECE])
        if carried or b"\\" in piece:  # most pieces of a slice have no backslash
            raw = np.frombuffer(piece, np.uint8)
            escaped, carried = _escaped_quotes(raw, carried)
            if len(escaped):
                blanked = np.array(raw)
                blanked[escaped] = ord(" ")
                piece = blanked.tobytes()
        tokens = np.frombuffer(piece.translate(None, _NOT_STRUCTURE), np.uint8)
        if not len(tokens):
            continue
        if closed:
            return False  # more after the object closed
        quote = tokens == ord('"')
        quotes_before = np.cumsum(quote, dtype=np.int64) - quote
        brackets = np.flatnonzero(~quote)
        outside = brackets[(quotes_before[brackets] % 2 == 1) == in_string]
        if len(outside):
            levels = depth + np.cumsum(np.where(tokens[outside] | 0x20 == ord("{"), 1, -1))
            if levels.max() > max_depth:
                return False
            shut = np.flatnonzero(levels <= 0)
            if len(shut):
                if outside[shut[0]] != len(tokens) - 1:
                    return False  # the object closes before more values
                closed = True
            depth = int(levels[-1])
        in_string ^= int(quote.sum()) % 2 == 1
    return closed and depth == 0


def _utf8_problem(data: Bytes) -> str | None:
    """Where the bytes stop being UTF-8 (checked in pieces: no copy of the whole file)."""
    import codecs

    view = memoryview(data).cast("B")
    decoder = codecs.getincrementaldecoder("utf-8")()
    for at in range(0, len(view), _SCAN_PIECE):
        pending = len(decoder.getstate()[0])
        piece = view[at : at + _SCAN_PIECE]
        try:
            decoder.decode(piece, final=at + _SCAN_PIECE >= len(view))
        except UnicodeDecodeError as exc:
            start = at - pending + exc.start
            bad = bytes(view[start : start + 1]).hex()
            return f"byte {start}: bytes are not UTF-8 (0x{bad}: {exc.reason})"
    return None


def _line_col(data: Bytes, pos: int) -> tuple[int, int]:
    view = memoryview(data).cast("B")
    line, line_start = 1, 0
    for at in range(0, pos, _SCAN_PIECE):
        piece = bytes(view[at : min(pos, at + _SCAN_PIECE)])
        line += piece.count(b"\n")
        if (last := piece.rfind(b"\n")) >= 0:
            line_start = at + last + 1
    return line, pos - line_start + 1


def out_of_memory(path: str, size: int | None) -> InputFileError:
    """The error for a file that could not be read for want of memory (not a fault of the
    file's)."""
    of = "" if size is None else f" ({_mib(size)})"
    return InputFileError(
        path,
        None,
        f"not enough memory to read this file{of}; nothing of it was stored. Free memory or "
        "raise the process's memory limit and run ingest again",
    )


#: Peak memory of the exact reader (orjson's document, then columns) per byte of file, with
#: room to spare (measured: about 6.3; docs/ingest-robustness.md).
EXACT_MEMORY_PER_BYTE = 8


def memory_room() -> int | None:
    """Bytes this process can still allocate, as far as the system says: the least of the
    address-space limit (``ulimit -v``) less what the process maps, the cgroup's memory limit
    less its use, and the kernel's MemAvailable. None when none of them is known."""
    import resource

    room: list[int] = []
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    status = _proc_fields("/proc/self/status")
    if soft != resource.RLIM_INFINITY and "VmSize" in status:
        room.append(soft - status["VmSize"])
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = Path("/sys/fs/cgroup/memory.current").read_text().strip()
        if limit != "max":
            room.append(int(limit) - int(used))
    except (OSError, ValueError):
        pass
    available = _proc_fields("/proc/meminfo").get("MemAvailable")
    if available is not None:
        room.append(available)
    return min(room) if room else None


def _proc_fields(path: str) -> dict[str, int]:
    """``Name: <n> kB`` lines of a /proc file, in bytes (empty where there is no /proc)."""
    out: dict[str, int] = {}
    try:
        text = Path(path).read_text()
    except OSError:
        return out
    for line in text.splitlines():
        key, _, value = line.partition(":")
        parts = value.split()
        if len(parts) == 2 and parts[1] == "kB" and parts[0].isdigit():
            out[key] = int(parts[0]) * 1024
    return out


def parse_json(path: str, data: Bytes) -> Any:
    """orjson.loads with errors that name the file, the position and the problem."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if "memory" in exc.msg.lower():  # orjson reports a failed allocation this way
            raise out_of_memory(path, len(data)) from None
        utf8 = _utf8_problem(data)
        if utf8 is not None:
            where, _, problem = utf8.partition(": ")
            raise InputFileError(path, where, problem) from None
        pos = min(exc.pos, len(data))
        line, col = _line_col(data, pos)
        if exc.msg == "recursion limit exceeded" or "depth" in exc.msg:
            problem = (
                f"nested more than {JSON_MAX_DEPTH} levels deep (an MPD slice needs 5); not read"
            )
        elif _first_byte(memoryview(data).cast("B")) is None:
            problem = "the file is empty (or only whitespace): expected an MPD slice"
        elif _last_byte_offset(memoryview(data).cast("B")[pos:]) < 0:
            problem = "invalid JSON: the file ends in the middle of a value (truncated download?)"
        else:
            problem = f"invalid JSON: {exc.msg}"
        raise InputFileError(path, f"line {line}, column {col} (byte {pos})", problem) from None


#: Salvages change the interpreter's recursion limit: one at a time.
_SALVAGE = threading.Lock()


def salvage_playlists(path: str, data: Bytes) -> list[dict[str, Any]]:
    """The complete playlists before a truncation or corruption, in file order.

    Walks the ``"playlists": [`` array one object at a time with the standard library's
    ``raw_decode`` (orjson has no incremental mode) and stops at the first object that does
    not parse. The standard library's decoder recurses once per level of nesting, within the
    interpreter's recursion limit: that limit is raised, while salvaging, to take the nesting
    the exact reader takes (:data:`JSON_MAX_DEPTH`); deeper, the walk stops there.
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
    with _SALVAGE:
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, JSON_MAX_DEPTH + 200))
        try:
            while True:
                while pos < n and text[pos] in " \t\r\n,":
                    pos += 1
                if pos >= n or text[pos] == "]":
                    break
                try:
                    obj, pos = decoder.raw_decode(text, pos)
                except (json.JSONDecodeError, RecursionError):  # damaged, or nested too deep
                    break
                if not isinstance(obj, dict):
                    break
                out.append(obj)
        finally:
            sys.setrecursionlimit(limit)
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


_INT64_MAX = 2**63 - 1
_INT32_MAX = 2**31 - 1
#: The longest text (a name, a description) a file may hold, in UTF-8 bytes: the real MPD's
#: longest is 424 (a description); a 20 MB name is damage or an attack, not a name.
MAX_TEXT_BYTES = 10_000


def _kind(value: Any) -> str:
    """A value's type as the error lines name it (JSON's null for None)."""
    return "null" if value is None else type(value).__name__


def _shown(value: Any, limit: int = 60) -> str:
    """A value as an error line shows it: cut to about ``limit`` characters, containers
    described, so that no error echoes a huge value."""
    if isinstance(value, list):
        return f"a list of {len(value):,} item(s)"
    if isinstance(value, dict):
        return f"an object with {len(value):,} key(s)"
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}… ({len(value):,} characters)"
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _int_array(values: list[Any]) -> tuple[pa.Array, np.ndarray[Any, Any] | None]:
    """Integers as int64; a value that is not an integer or does not fit becomes NULL
    (optional fields), and the mask of those values (None when there are none)."""
    try:
        return pa.array(values, pa.int64()), None
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        ints = [_opt_int(v) for v in values]
        kept = [v if v is not None and -_INT64_MAX - 1 <= v <= _INT64_MAX else None for v in ints]
        unusable = np.fromiter(
            (v is not None and k is None for v, k in zip(values, kept, strict=True)),
            bool,
            len(values),
        )
        return pa.array(kept, pa.int64()), unusable


def _id_pattern(kind: str) -> str:
    """The regular expression of a ``spotify:<kind>:<id>`` URI or a bare id, whole."""
    return rf"^(spotify:{kind}:)?[0-9A-Za-z]{{22}}$"


def _bare_ids(uris: pa.Array, kind: str) -> pa.Array:
    """Bare ids of ``spotify:<kind>:<id>`` URIs (or bare ids); NULL where malformed."""
    ok = pc.match_substring_regex(uris, _id_pattern(kind))
    return pc.if_else(ok, pc.utf8_slice_codeunits(uris, -22), pa.scalar(None, pa.string()))


_TRACK_URI = re.compile(_id_pattern("track"))
LOCAL_PREFIX = "spotify:local:"
#: The form a ``track_uri`` must have, as the error lines say it.
TRACK_URI_FORM = "'spotify:track:<22 base62 chars>'"


def _too_long(key: str, n_bytes: int) -> str:
    return f"{key!r} is {n_bytes:,} bytes long; at most {MAX_TEXT_BYTES:,} allowed"


def _has_nul(key: str) -> str:
    return f"{key!r} contains a NUL character"


def _text_problem(key: str, value: str) -> str | None:
    """What makes a text unstorable (too long, a NUL), or None."""
    if len(value) * 4 > MAX_TEXT_BYTES:  # a character is at most 4 bytes: count only then
        n_bytes = len(value.encode("utf-8", "surrogatepass"))
        if n_bytes > MAX_TEXT_BYTES:
            return _too_long(key, n_bytes)
    if "\x00" in value:
        return _has_nul(key)
    return None


@dataclass(frozen=True)
class PlaylistRules:
    """What one MPD playlist object must hold, where the readers legitimately differ.

    The defaults are the slice rules of ingest. ``pid``/``name``/``tracks``: the field is
    required (else it may be absent, but when given it must be right); ``track_names``: every
    track needs ``track_name`` and ``artist_name``; ``uri_strings``: a track may be its URI
    alone; ``local_files``: ``spotify:local:`` tracks are let through (their reader skips
    them); ``links``: a ``track_uri`` may be any Spotify track reference
    (:func:`segue.core.ids.parse`: an open.spotify.com link, say).
    """

    pid: bool = True
    name: bool = True
    tracks: bool = True
    track_names: bool = True
    uri_strings: bool = False
    local_files: bool = False
    links: bool = False


#: Slices read by ingest and by ``challenge make``.
SLICE_RULES = PlaylistRules()
#: An official challenge set: a category may give no title and no tracks; seeds need a URI.
CHALLENGE_RULES = PlaylistRules(name=False, tracks=False, track_names=False)
#: A playlist a user gives (a seed file, an upload): only its tracks matter.
USER_RULES = PlaylistRules(
    pid=False,
    name=False,
    tracks=False,
    track_names=False,
    uri_strings=True,
    local_files=True,
    links=True,
)


@dataclass(frozen=True)
class CheckedPlaylist:
    """A playlist object that passed :meth:`PlaylistChecker.playlist`: its pid (None when absent
    and allowed), name, track list (empty when absent and allowed) and its JSON path."""

    pid: int | None
    name: str | None
    tracks: list[Any]
    loc: str

    @property
    def at(self) -> str:
        """Where the playlist is: ``playlists[3] (pid 7)``."""
        return self.loc if self.pid is None else f"{self.loc} (pid {self.pid})"

    def track_at(self, j: int) -> str:
        """Where its ``j``-th track is: ``playlists[3].tracks[0] (pid 7)``."""
        at = f"{self.loc}.tracks[{j}]"
        return at if self.pid is None else f"{at} (pid {self.pid})"


class PlaylistChecker:
    """The one validator of MPD playlist objects: ingest, challenge sets and user files.

    One checker reads one file (``path`` names it in errors; ``where`` is the JSON path of its
    playlist list, "playlists" for a slice) and remembers its pids, so a pid given twice is
    refused. :meth:`playlist` checks one playlist dict, :meth:`track` one of its tracks; both
    raise :class:`InputFileError` naming the file, the playlist (index and pid) and the field.
    Messages are the same whoever reads; only ``rules`` (:class:`PlaylistRules`) differ.
    ``texts=False`` leaves the text caps (length, NUL) to the caller, for ingest, which checks
    them in bulk over its columns with the same messages (:func:`_finished`).

    Refused: a playlist that is not an object; a pid that is not an integer from 0 to 2^63 - 1
    or that repeats; a name or track name that is not a string; ``tracks`` that is not a list;
    a track that is not an object; a ``track_uri`` not of the form
    ``spotify:track:<22 base62 chars>`` (or the bare id); artist/album URIs and names that are
    not strings; a name, description or track text longer than :data:`MAX_TEXT_BYTES` or
    holding a NUL. Bad optional counters, dates and flags are not refused here (ingest stores
    them as NULL).
    """

    def __init__(
        self,
        path: str,
        rules: PlaylistRules = SLICE_RULES,
        where: str = "playlists",
        *,
        texts: bool = True,
    ) -> None:
        self.path = path
        self.rules = rules
        self.where = where
        self.texts = texts
        self._pids: set[int] = set()

    def _error(self, at: str, problem: str) -> InputFileError:
        return InputFileError(self.path, at, problem)

    def playlist(self, pl: Any, index: int | None, *, tracks: bool = True) -> CheckedPlaylist:
        """Check one playlist object (the ``index``-th of the list; None for a lone object)
        and, unless ``tracks=False``, each of its tracks."""
        loc = self.where if index is None else f"{self.where}[{index}]"
        if not isinstance(pl, dict):
            raise self._error(loc, f"expected a playlist object, got {_kind(pl)}")
        rules = self.rules
        pid = pl.get("pid")
        if pid is not None or rules.pid:
            if not isinstance(pid, int) or isinstance(pid, bool) or not 0 <= pid <= _INT64_MAX:
                raise self._error(
                    loc, f"'pid' must be an integer from 0 to {_INT64_MAX}, got {_shown(pid)}"
                )
            if pid in self._pids:
                raise self._error(loc, f"pid {pid} appears twice in this file")
            self._pids.add(pid)
        at = loc if pid is None else f"{loc} (pid {pid})"
        name = pl.get("name")
        if name is None:
            if rules.name:
                raise self._error(at, "missing 'name'")
        elif not isinstance(name, str):
            raise self._error(at, f"'name' must be a string, got {_shown(name)}")
        for key, text in (("name", name), ("description", pl.get("description"))):
            if (
                self.texts
                and isinstance(text, str)
                and (problem := _text_problem(key, text)) is not None
            ):
                raise self._error(at, problem)
        found = pl.get("tracks")
        if found is None and not rules.tracks and "tracks" not in pl:
            found = []
        if not isinstance(found, list):
            raise self._error(at, f"'tracks' must be a list, got {_kind(found)}")
        checked = CheckedPlaylist(pid, name, found, loc)
        if tracks:
            for j, tr in enumerate(found):
                self.track(checked, j, tr)
        return checked

    def track(self, pl: CheckedPlaylist, j: int, tr: Any) -> str:
        """Check the ``j``-th track of ``pl``; returns its ``track_uri`` (a local file's when
        the rules let local files through)."""
        at = pl.track_at(j)
        rules = self.rules
        if isinstance(tr, str) and rules.uri_strings:
            uri: Any = tr
            tr = {}
        elif isinstance(tr, dict):
            uri = tr.get("track_uri")
        else:
            raise self._error(at, f"expected a track object, got {_kind(tr)}")
        if not (
            isinstance(uri, str)
            and (
                _TRACK_URI.fullmatch(uri)
                or (rules.local_files and uri.startswith(LOCAL_PREFIX))
                or (rules.links and ids.try_parse(uri, ids.Kind.TRACK) is not None)
            )
        ):
            raise self._error(at, f"'track_uri' must be like {TRACK_URI_FORM}, got {_shown(uri)}")
        for key in ("track_name", "artist_name", "artist_uri", "album_uri", "album_name"):
            value = tr.get(key)
            required = rules.track_names and key in ("track_name", "artist_name")
            if value is None and not required:
                continue
            if not isinstance(value, str):
                raise self._error(at, f"{key!r} must be a string, got {_shown(value)}")
            if (
                self.texts
                and key.endswith("_name")
                and (problem := _text_problem(key, value)) is not None
            ):
                raise self._error(at, problem)
        return uri


def _first_bad_track(checker: PlaylistChecker, playlists: list[CheckedPlaylist]) -> InputFileError:
    """Slow path, taken only when the bulk checks fail: the validator finds the first bad track
    of the playlists it passed and says where and why."""
    for checked in playlists:
        for j, tr in enumerate(checked.tracks):
            try:
                checker.track(checked, j, tr)
            except InputFileError as exc:
                return exc
    return InputFileError(checker.path, checker.where, "a track is malformed")


def columns_from_playlists(
    path: str,
    content_hash: str,
    playlists: list[Any],
    *,
    require_name: bool = True,
    where: str = "playlists",
) -> SliceColumns:
    """Validate playlists (MPD form) and turn them into Arrow columns.

    Each playlist object goes through :class:`PlaylistChecker` (:data:`SLICE_RULES`, the name
    optional with ``require_name=False``). Its tracks are not checked one by one: the per-row
    loop only gathers values, types and id formats are checked in bulk with Arrow compute, and
    a failure falls back to the checker, which names the first bad track.
    """
    rules = SLICE_RULES if require_name else replace(SLICE_RULES, name=False)
    checker = PlaylistChecker(path, rules, where, texts=False)  # texts: in bulk, by _finished
    checked: list[CheckedPlaylist] = []
    pids: list[int] = []
    names: list[str | None] = []
    descriptions: list[str | None] = []
    collab: list[bool | None] = []
    ints: dict[str, list[Any]] = {k: [] for k in PLAYLIST_INT_FIELDS}
    lengths: list[int] = []
    row_pos: list[Any] = []
    uri: list[Any] = []
    tname: list[Any] = []
    aname: list[Any] = []
    auri: list[Any] = []
    alb_uri: list[Any] = []
    alb_name: list[Any] = []
    dur: list[Any] = []
    nulled = 0  # optional values given but not usable, stored as NULL
    for i, pl in enumerate(playlists):
        one = checker.playlist(pl, i, tracks=False)
        checked.append(one)
        tracks = one.tracks
        assert one.pid is not None  # the slice rules require it
        pids.append(one.pid)
        names.append(one.name)
        desc = pl.get("description")
        descriptions.append(desc if isinstance(desc, str) else None)
        flag = pl.get("collaborative")
        collab.append(_collab(flag))
        nulled += (desc is not None and not isinstance(desc, str)) + (
            flag is not None and collab[-1] is None
        )
        for key in PLAYLIST_INT_FIELDS:
            ints[key].append(pl.get(key))
        start = len(uri)
        try:
            for tr in tracks:
                uri.append(tr["track_uri"])
                tname.append(tr["track_name"])
                aname.append(tr["artist_name"])
                auri.append(tr.get("artist_uri"))
                alb_uri.append(tr.get("album_uri"))
                alb_name.append(tr.get("album_name"))
                dur.append(tr.get("duration_ms"))
                row_pos.append(tr.get("pos"))
        except (KeyError, TypeError, AttributeError):
            raise _first_bad_track(checker, checked) from None
        lengths.append(len(uri) - start)
    try:
        uri_arr = pa.array(uri, pa.string())
        strings = [pa.array(col, pa.string()) for col in (tname, aname, auri, alb_uri, alb_name)]
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        raise _first_bad_track(checker, checked) from None
    if uri_arr.null_count or strings[0].null_count or strings[1].null_count:
        raise _first_bad_track(checker, checked)  # required: track_uri, names
    if not pc.all(pc.match_substring_regex(uri_arr, _id_pattern("track"))).as_py() and len(uri):
        raise _first_bad_track(checker, checked)
    pos, pos_unusable = _int_array(row_pos)
    duration, unusable = _int_array(dur)
    nulled += 0 if unusable is None else int(unusable.sum())
    counters = {}
    for key, values in ints.items():
        counters[key], unusable = _int_array(values)
        nulled += 0 if unusable is None else int(unusable.sum())
    pid_arr = pa.array(pids, pa.int64())
    parent = np.repeat(np.arange(len(pids)), lengths)
    return _finished(
        path,
        content_hash,
        where,
        {
            "pid": pid_arr,
            "name": pa.array(names, pa.string()),
            "description": pa.array(descriptions, pa.string()),
            "collaborative": pa.array(collab, pa.bool_()),
            **counters,
        },
        {
            "pid": pid_arr.take(pa.array(parent)) if len(uri) else pa.array([], pa.int64()),
            "track_id": pc.utf8_slice_codeunits(uri_arr, -22),
            "track_name": strings[0],
            "artist_name": strings[1],
            "artist_id": _bare_ids(strings[2], "artist"),
            "album_id": _bare_ids(strings[3], "album"),
            "album_name": strings[4],
            "duration_ms": duration,
        },
        parent,
        pos,
        pos_unusable,
        nulled,
    )


def _first_true(mask: pa.Array | pa.ChunkedArray) -> int | None:
    """The index of the first True in a boolean array (NULLs count as False)."""
    found = pc.index(mask.fill_null(False), True).as_py()
    return None if found < 0 else int(found)


def _finished(
    path: str,
    content_hash: str,
    where: str,
    playlists: dict[str, pa.Array],
    rows: dict[str, pa.Array],
    parent: np.ndarray[Any, Any],
    pos: pa.Array,
    pos_unusable: np.ndarray[Any, Any] | None,
    nulled: int,
) -> SliceColumns:
    """The checks and repairs both readers share, on their columns: ``playlists`` (pid, name,
    description, collaborative and the counters, int64), ``rows`` (all but ``pos``; duration
    int64), each row's playlist (``parent``, by index), its position as given (int64, NULL where
    missing or not an integer) and which positions were given but not integers.

    Refused (an error naming the playlist or row): a negative pid; a text longer than
    :data:`MAX_TEXT_BYTES` or holding a NUL character. Stored as NULL and counted in
    ``SliceColumns.nulled``: negative counters and durations, durations past 2^31 - 1 (with
    the values the readers already found unusable, ``nulled``). Positions: a playlist whose
    positions are negative, not integers, too large or repeated takes its list order instead,
    counted in ``SliceColumns.renumbered`` (missing positions take their row's place quietly:
    the reduced schema has none).
    """
    n_pl = len(playlists["pid"])
    n = len(parent)
    starts = np.zeros(n_pl + 1, np.int64)
    np.cumsum(np.bincount(parent, minlength=n_pl), out=starts[1:])
    index = np.arange(n, dtype=np.int64) - starts[parent]  # each row's place in its list
    pid = playlists["pid"]

    def playlist_at(i: int) -> str:
        return f"{where}[{i}] (pid {pid[i].as_py()})"

    def row_at(i: int) -> str:
        k = int(parent[i])
        return f"{where}[{k}].tracks[{int(index[i])}] (pid {pid[k].as_py()})"

    if n_pl and (bad := _first_true(pc.less(pid, 0))) is not None:
        raise InputFileError(
            path,
            f"{where}[{bad}]",
            f"'pid' must be an integer from 0 to {_INT64_MAX}, got {pid[bad].as_py()}",
        )
    texts = [(playlists, key, playlist_at) for key in ("name", "description")]
    texts += [(rows, key, row_at) for key in ("track_name", "artist_name", "album_name")]
    for table, key, at in texts:
        column = table[key]
        if not len(column) or column.null_count == len(column):
            continue
        lengths = pc.binary_length(column)
        if pc.max(lengths).as_py() > MAX_TEXT_BYTES:
            i = _first_true(pc.greater(lengths, MAX_TEXT_BYTES))
            assert i is not None
            raise InputFileError(path, at(i), _too_long(key, lengths[i].as_py()))
        if (i := _first_true(pc.match_substring(column, "\x00"))) is not None:
            raise InputFileError(path, at(i), _has_nul(key))
    for key in PLAYLIST_INT_FIELDS:
        column = playlists[key]
        negative = pc.less(column, 0)
        if (count := pc.sum(negative).as_py() or 0) > 0:
            nulled += count
            playlists[key] = pc.if_else(negative, pa.scalar(None, pa.int64()), column)
    duration = rows["duration_ms"]
    out_of_range = pc.or_(pc.less(duration, 0), pc.greater(duration, _INT32_MAX))
    if (count := pc.sum(out_of_range).as_py() or 0) > 0:
        nulled += count
        duration = pc.if_else(out_of_range, pa.scalar(None, pa.int64()), duration)
    rows["duration_ms"] = duration.cast(pa.int32())
    # Positions: unusable ones, then repeats within a playlist.
    given = pos.to_numpy(zero_copy_only=False) if pos.null_count == 0 else None
    if given is None:
        valid = pc.is_valid(pos).to_numpy(zero_copy_only=False)
        given = pos.fill_null(-1).to_numpy(zero_copy_only=False)
    else:
        valid = np.ones(n, bool)
    bad_row = valid & ((given < 0) | (given > _INT32_MAX))
    if pos_unusable is not None:
        bad_row |= pos_unusable
    filled = np.where(valid & ~bad_row, given, index)
    renumber = np.zeros(n_pl, bool)
    renumber[parent[bad_row]] = True
    if n:
        keys = np.sort((parent.astype(np.int64) << 32) | filled)
        renumber[(keys[1:][keys[1:] == keys[:-1]] >> 32)] = True
        if renumber.any():
            filled = np.where(renumber[parent], index, filled)
    rows = {"pid": rows["pid"], "pos": pa.array(filled.astype(np.int32)), **rows}
    return SliceColumns(
        path=path,
        content_hash=content_hash,
        playlists=pa.table(playlists),
        rows=pa.table(rows),
        nulled=int(nulled),
        renumbered=int(renumber.sum()),
    )


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
    """Whether every field name in a schema (nested ones too) is UTF-8 (iteratively: a schema
    can be nested as deep as the file)."""
    stack: list[pa.Schema | pa.DataType] = [fields]
    while stack:
        item = stack.pop()
        if isinstance(item, pa.DataType):
            if pa.types.is_list(item):
                stack.append(item.value_type)
                continue
            if not pa.types.is_struct(item):
                continue
        children = list(item)
        try:
            for child in children:
                _ = child.name
        except UnicodeDecodeError:
            return False
        stack.extend(child.type for child in children)
    return True


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


def _columns_fast(spath: str, digest: str, data: Bytes) -> SliceColumns | None:
    """Columns through pyarrow's JSON reader and Arrow compute (C++, releasing the GIL, so
    parsing overlaps with the catalog writes of the previous file). Returns None whenever the
    file is not a plain, valid slice, and the exact Python path then decides and names any
    problem."""
    # pyarrow's JSON reader builds the columns as it parses (no document tree). With a block
    # larger than the file it reads the whole file as one block, on this thread.
    if bytes(data[:3]) == b"\xef\xbb\xbf":  # the reader skips a byte order mark; JSON has none
        return None
    if not one_shallow_object(data):  # what would crash the reader: the exact path decides
        return None
    options = pa_json.ReadOptions(use_threads=False, block_size=len(data) + 1)
    try:
        parsed = pa_json.read_json(
            pa.BufferReader(pa.py_buffer(data)),  # no copy
            read_options=options,
            parse_options=pa_json.ParseOptions(newlines_in_values=True),
        )
        parsed.validate(full=True)  # the reader passes bytes that are not UTF-8 through
    except MemoryError:
        raise
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
    parent = np.repeat(np.arange(n_pl), np.diff(tracks.offsets.to_numpy()))
    pos = fields["pos"]
    if pos is None or pa.types.is_null(pos.type):  # the reduced schema: no positions
        pos = pa.nulls(n, pa.int64())
    duration = fields["duration_ms"]
    if duration is None or pa.types.is_null(duration.type):
        duration = pa.nulls(n, pa.int64())
    track_id, ok = _ids_of_uris(fields["track_uri"], "track")  # type: ignore[arg-type]
    if not ok:
        return None
    strings = {
        key: pa.nulls(n, pa.string()) if (col := fields[key]) is None else col.cast(pa.string())
        for key in ("artist_uri", "album_uri", "album_name")
    }
    rows = {
        "pid": pid.take(pa.array(parent)) if n else pa.array([], pa.int64()),
        "track_id": track_id,
        "track_name": fields["track_name"],
        "artist_name": fields["artist_name"],
        "artist_id": _ids_of_uris(strings["artist_uri"], "artist")[0],
        "album_id": _ids_of_uris(strings["album_uri"], "album")[0],
        "album_name": strings["album_name"],
        "duration_ms": duration,
    }
    out: dict[str, pa.Array] = {"pid": pid, "name": name}
    description = _struct_field(pls, "description")
    if not _is(description, "null", "string"):
        return None
    out["description"] = (
        pa.nulls(n_pl, pa.string()) if description is None else description.cast(pa.string())
    )
    collaborative = _struct_field(pls, "collaborative")
    nulled = 0
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
        nulled += len(lower) - lower.null_count - (pc.sum(known).as_py() or 0)
    else:
        return None
    for key in PLAYLIST_INT_FIELDS:
        column = _struct_field(pls, key)
        if not _is(column, "null", "int64"):
            return None
        out[key] = pa.nulls(n_pl, pa.int64()) if column is None else column.cast(pa.int64())
    return _finished(spath, digest, "playlists", out, rows, parent, pos, None, nulled)


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
    # orjson crashes, rather than fails, when memory runs out while it builds a document:
    # the exact reader starts only where there is room for what it takes.
    room = memory_room()
    if room is not None and len(data) * EXACT_MEMORY_PER_BYTE > room:
        raise out_of_memory(spath, len(data))
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
            f"expected an object with a 'playlists' list, got {_kind(doc)}",
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

    A ``.tar.gz``/``.tgz`` archive is returned as is; :mod:`segue.catalog.ingest` unpacks it.
    """
    import glob

    out: list[Path] = []
    for spec in specs:
        p = Path(spec).expanduser()
        if any(ch in spec for ch in "*?[") and not p.exists():  # a file named x[1].json is a file
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
