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
import io
import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from segue.errors import InputFileError

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


#: Two uint64 arrays of the same length: two independent 64-bit hashes of each id.
IdKeys = tuple[np.ndarray[Any, np.dtype[np.uint64]], np.ndarray[Any, np.dtype[np.uint64]]]


@dataclass(frozen=True)
class DistinctRows:
    """One slice's distinct tracks (one row per track id, the values of its first row), artist
    (id, name) pairs, and albums (one row per album id).

    ``track_keys`` and ``album_keys`` are the :func:`id_keys` of ``tracks.track_id`` and
    ``albums.album_id``, row for row: the writer compares them with the ids an ingest run
    already knows (:class:`segue.catalog.mpd.KnownIds`).
    """

    tracks: pa.Table
    artists: pa.Table
    albums: pa.Table
    track_keys: IdKeys
    album_keys: IdKeys


#: The two seeds of :func:`id_keys`' hashes.
_SEEDS = (0x5E6E_5EED_0001, 0x5E6E_5EED_0002)


def id_keys(ids: pa.Array | pa.ChunkedArray) -> IdKeys:
    """128-bit keys of string ids (no nulls): polars' string hash under two seeds.

    Computed the same way for the catalog's ids and a file's (polars' hash is fixed for a given
    seed within a process, which is as long as a set of keys lives).
    """
    import polars as pl

    series = pl.Series(ids).cast(pl.String)
    return series.hash(_SEEDS[0]).to_numpy(), series.hash(_SEEDS[1]).to_numpy()


def distinct_rows(rows: pa.Table) -> DistinctRows:
    """:class:`DistinctRows` of a table of slice rows (by polars, which releases the GIL)."""
    import polars as pl

    df = pl.from_arrow(rows)
    assert isinstance(df, pl.DataFrame)
    tracks = df.unique(subset="track_id", keep="first").select(
        "track_id",
        "track_name",
        "artist_name",
        "artist_id",
        "album_id",
        "album_name",
        "duration_ms",
    )
    artists = df.select("artist_id", "artist_name").unique()
    albums = (
        df.filter(pl.col("album_id").is_not_null())
        .unique(subset="album_id", keep="first")
        .select("album_id", "album_name")
    )
    tracks_t, albums_t = tracks.to_arrow(), albums.to_arrow()
    return DistinctRows(
        tracks_t,
        artists.to_arrow(),
        albums_t,
        id_keys(tracks_t["track_id"]),
        id_keys(albums_t["album_id"]),
    )


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
            where, _, problem = utf8.partition(": ")
            raise InputFileError(path, where, problem) from None
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
                row_pos.append(tr.get("pos", j))
        except (KeyError, TypeError, AttributeError):
            raise _first_bad_track(path, playlists, where) from None
        row_pid.extend([pid] * (len(uri) - start))
    try:
        uri_arr = pa.array(uri, pa.string())
        strings = [pa.array(col, pa.string()) for col in (tname, aname, auri, alb_uri, alb_name)]
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        raise _first_bad_track(path, playlists, where) from None
    if not pc.all(pc.match_substring_regex(uri_arr, _id_pattern("track"))).as_py() and len(uri):
        raise _first_bad_track(path, playlists, where)
    rows = pa.table(
        {
            "pid": pa.array(row_pid, pa.int64()),
            "pos": _int_array(row_pos, pa.int32()),
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


def _columns_fast(spath: str, digest: str, data: bytes) -> SliceColumns | None:
    """Columns through pyarrow's JSON reader and polars (C++ and Rust; both release the GIL, so
    parsing overlaps with the catalog writes of the previous file). Returns None whenever the
    file is not a plain, valid slice, and the exact Python path then decides and names any
    problem."""
    import polars as pl
    import pyarrow.json as pa_json

    # pyarrow's JSON reader builds the columns as it parses (no document tree): a slice costs
    # about a third of the transient memory of polars' ``read_json`` and is parsed no slower.
    # With a block larger than the file it reads the whole file as one block, on this thread.
    if data.startswith(b"\xef\xbb\xbf"):  # the reader skips a byte order mark; JSON has none
        return None
    options = pa_json.ReadOptions(use_threads=False, block_size=len(data) + 1)
    try:
        parsed = pa_json.read_json(
            io.BytesIO(data),
            read_options=options,
            parse_options=pa_json.ParseOptions(newlines_in_values=True),
        )
        parsed.validate(full=True)  # the reader passes bytes that are not UTF-8 through
    except Exception:  # any parse, inference or encoding problem: the exact path explains it
        return None
    if parsed.num_rows != 1:  # several top-level values: not one JSON document
        return None
    doc = pl.from_arrow(parsed)
    del parsed
    assert isinstance(doc, pl.DataFrame)
    schema = doc.schema
    if "playlists" not in schema or not isinstance(schema["playlists"], pl.List):
        return None
    inner = schema["playlists"].inner
    if not isinstance(inner, pl.Struct):
        return None
    fields = {f.name: f.dtype for f in inner.fields}
    if fields.get("pid") != pl.Int64 or fields.get("name") != pl.String:
        return None
    tracks_t = fields.get("tracks")
    if not isinstance(tracks_t, pl.List) or not isinstance(tracks_t.inner, pl.Struct):
        return None
    tfields = {f.name: f.dtype for f in tracks_t.inner.fields}
    for key in ("track_uri", "track_name", "artist_name"):
        if tfields.get(key) != pl.String:
            return None
    for key in ("artist_uri", "album_uri", "album_name"):
        if key in tfields and tfields[key] not in (pl.String, pl.Null):
            return None
    for key in ("pos", "duration_ms"):
        if key in tfields and tfields[key] not in (pl.Int64, pl.Null):
            return None
    pls = doc.select("playlists").explode("playlists").unnest("playlists")
    if (
        pls.height == 0
        or pls["pid"].null_count()
        or pls["name"].null_count()
        or pls["tracks"].null_count()
    ):
        return None
    if pls["pid"].n_unique() != pls.height:
        return None
    rows = (
        pls.select("pid", "tracks")
        .with_columns(pl.int_ranges(0, pl.col("tracks").list.len()).alias("_j"))
        .explode("tracks", "_j")
        .filter(pl.col("tracks").is_not_null())
        .unnest("tracks")
    )
    if (
        rows["track_uri"].null_count()
        or rows["track_name"].null_count()
        or rows["artist_name"].null_count()
    ):
        return None
    missing = [
        pl.lit(None, pl.String).alias(k)
        for k in ("artist_uri", "album_uri", "album_name")
        if k not in tfields
    ]
    missing += [pl.lit(None, pl.Int64).alias(k) for k in ("pos", "duration_ms") if k not in tfields]
    rows = rows.with_columns(missing).with_columns(pl.coalesce("pos", "_j").alias("pos"))

    def bare_ids(column: str, kind: str) -> pl.Expr:
        uri = pl.col(column)
        ok = uri.str.contains(_id_pattern(kind))
        return pl.when(ok).then(uri.str.slice(-22)).otherwise(None).alias(f"{kind}_id")

    # Ids are checked and cut in polars (its regex engine runs in parallel, without the GIL).
    rows = rows.select(
        "pid",
        "pos",
        pl.col("track_uri").str.contains(_id_pattern("track")).alias("_ok"),
        pl.col("track_uri").str.slice(-22).alias("track_id"),
        "track_name",
        "artist_name",
        bare_ids("artist_uri", "artist"),
        bare_ids("album_uri", "album"),
        "album_name",
        "duration_ms",
    )
    if not rows["_ok"].all():
        return None
    lo, hi = _INT_RANGE[32]
    for key in ("pos", "duration_ms"):
        column = rows[key]
        if column.dtype == pl.Null or not column.count():
            continue
        low, high = column.min(), column.max()
        if not (isinstance(low, int) and isinstance(high, int) and lo <= low and high <= hi):
            return None  # does not fit int32: the exact path decides
    table = rows.to_arrow()
    row_table = pa.table(
        {
            "pid": table["pid"].cast(pa.int64()),
            "pos": table["pos"].cast(pa.int32()),
            "track_id": table["track_id"].cast(pa.string()),
            "track_name": table["track_name"].cast(pa.string()),
            "artist_name": table["artist_name"].cast(pa.string()),
            "artist_id": table["artist_id"].cast(pa.string()),
            "album_id": table["album_id"].cast(pa.string()),
            "album_name": table["album_name"].cast(pa.string()),
            "duration_ms": table["duration_ms"].cast(pa.int32()),
        }
    )
    head = pls.drop("tracks")
    out: dict[str, pa.Array | pa.ChunkedArray] = {
        "pid": head["pid"].to_arrow().cast(pa.int64()),
        "name": head["name"].to_arrow().cast(pa.string()),
    }
    desc = (
        head["description"].to_arrow().cast(pa.string())
        if "description" in head.columns
        else pa.nulls(head.height, pa.string())
    )
    out["description"] = desc
    if "collaborative" in head.columns:
        values = head["collaborative"].cast(pl.String).str.to_lowercase()
        out["collaborative"] = pa.array(
            [
                None if v is None else v == "true" if v in ("true", "false") else None
                for v in values.to_list()
            ],
            pa.bool_(),
        )
    else:
        out["collaborative"] = pa.nulls(head.height, pa.bool_())
    for key in PLAYLIST_INT_FIELDS:
        if key in head.columns and head.schema[key] in (pl.Int64, pl.Null):
            out[key] = head[key].to_arrow().cast(pa.int64())
        elif key in head.columns:
            return None
        else:
            out[key] = pa.nulls(head.height, pa.int64())
    return SliceColumns(path=spath, content_hash=digest, playlists=pa.table(out), rows=row_table)


def read_slice_data(
    spath: str, data: bytes, *, salvage: bool = False, fast: bool = True
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
