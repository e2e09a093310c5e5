"""A snapshot: the catalog read once into arrays that models use.

* ``tracks``: DataFrame, row ``i`` is track index ``i``. Columns: ``track_id`` (22-char id),
  ``name``, ``artist_key`` (int64, row key of ``artists``), ``artist_name``, ``album_id``,
  ``album_name``, ``release_year`` (float32, NaN unknown), ``popularity`` (float32 0-100 from
  Spotify, NaN unknown), ``playlist_count`` (int32, playlists holding the track), and the audio
  features of :data:`AUDIO_FEATURES` (float32, NaN where unknown).
* ``artists``: DataFrame indexed by ``artist_key``. Columns: ``artist_id`` (may be None when the
  artist is known only by name), ``name``, ``popularity`` (float32, NaN unknown), ``genres``
  (list of str, empty when unknown).
* ``playlists``: DataFrame, row ``p`` is playlist index ``p``: ``pid``, ``name``.
* ``interactions``: float32 CSR of shape (n_playlists, n_tracks), 1.0 where the playlist holds
  the track.

Saved without pickle as ``tracks.arrow``, ``artists.arrow`` and ``playlists.arrow`` (Arrow
IPC files of one record batch, :func:`segue.core.mapped.write_table`; snapshots saved before
them have ``.parquet`` files, still read) + ``interactions/*.npy`` and its transpose
``interactions_t/*.npy`` + ``track_keys/*.npy`` (the sorted track ids that
:meth:`Snapshot.lookup` searches, and the track of each) + ``song_keys/keys.npy`` (one key per
song, :meth:`Snapshot.song_keys`) + ``names/*.arrow`` (normalised names, :meth:`Snapshot.names`) (mapped read-only when loaded, so processes that load one
snapshot share them) + ``manifest.json``; models never touch the database.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from segue.core import mapped
from segue.core.errors import NotFittedError
from segue.core.records import AUDIO_FEATURES
from segue.snapshot import names as names_module
from segue.snapshot.names import NameColumns, name_columns
from segue.snapshot.names import load as load_names
from segue.snapshot.names import save as save_names

#: 2: the interactions as one ``.npy`` per array in ``interactions/``, mapped read-only when
#: loaded (:mod:`segue.core.mapped`); 1 kept them in ``interactions.npz``.
FORMAT_VERSION = 2
INTERACTIONS = "interactions"
INTERACTIONS_T = "interactions_t"
TRACK_KEYS = "track_keys"
SONG_KEYS = "song_keys"
NAMES = names_module.FOLDER

TRACK_COLUMNS = (
    "track_id",
    "name",
    "artist_key",
    "artist_name",
    "album_id",
    "album_name",
    "release_year",
    "popularity",
    "playlist_count",
    *AUDIO_FEATURES,
)


@dataclass
class Snapshot:
    tracks: pd.DataFrame
    artists: pd.DataFrame
    playlists: pd.DataFrame
    interactions: sp.csr_matrix
    manifest: dict[str, Any] = field(default_factory=dict)
    _track_pos: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    #: the transpose of ``interactions`` and the matrix it was made from (valid while that is
    #: still ``interactions``)
    _transposed: tuple[sp.csr_matrix, sp.csr_matrix] | None = field(default=None, repr=False)
    #: :meth:`song_keys` and the tracks frame they were made from
    _songs: tuple[pd.DataFrame, np.ndarray] | None = field(default=None, repr=False)
    #: :meth:`names` and the tables they were made from
    _names: tuple[tuple[pd.DataFrame, ...], NameColumns] | None = field(default=None, repr=False)

    # shape ------------------------------------------------------------------------------
    @property
    def n_tracks(self) -> int:
        return len(self.tracks)

    @property
    def n_playlists(self) -> int:
        return self.interactions.shape[0]

    def interactions_t(self) -> sp.csr_matrix:
        """The track x playlist transpose of ``interactions`` (float32 CSR): read from the
        saved snapshot (mapped, shared between processes) or computed once."""
        kept = self._transposed
        if kept is None or kept[0] is not self.interactions:
            kept = (self.interactions, transpose(self.interactions))
            self._transposed = kept
        return kept[1]

    def song_keys(self) -> np.ndarray:
        """int64 (n_tracks,): equal for the versions of one song
        (:func:`segue.snapshot.versions.song_keys`): read from the saved snapshot (mapped,
        shared between processes) or computed once. At full MPD scale computing them takes
        seconds and leaves a few hundred MB of freed strings in a process's heap."""
        kept = self._songs
        if kept is None or kept[0] is not self.tracks:
            from segue.snapshot.versions import song_keys

            kept = (self.tracks, song_keys(self.tracks))
            self._songs = kept
        return kept[1]

    def names(self) -> NameColumns:
        """The normalised names of tracks, artists and playlists
        (:func:`segue.snapshot.names.name_columns`): read from the saved snapshot (mapped,
        shared between processes) or computed once."""
        tables = (self.tracks, self.artists, self.playlists)
        kept = self._names
        if kept is None or any(a is not b for a, b in zip(kept[0], tables, strict=True)):
            kept = (tables, name_columns(*tables))
            self._names = kept
        return kept[1]

    # id maps: the one place raw ids become indices ----------------------------------------
    def _positions(self) -> tuple[np.ndarray, np.ndarray]:
        """Track ids as UTF-8 bytes, sorted, and the track index of each: a lookup by binary
        search. At full MPD scale this holds about 70 MB where a dict of Python strings held
        several times that in every process that resolves ids."""
        if self._track_pos is None:
            keys = np.asarray([str(t).encode("utf-8") for t in self.tracks["track_id"].tolist()])
            if keys.dtype.kind != "S":  # no tracks
                keys = keys.astype("S1")
            order = np.argsort(keys, kind="stable")
            self._track_pos = (keys[order], order.astype(np.int64))
        return self._track_pos

    def lookup(self, track_ids: list[str]) -> np.ndarray:
        """The track index of each id (int64, in input order), -1 where it is unknown."""
        keys, order = self._positions()
        out = np.full(len(track_ids), -1, dtype=np.int64)
        if not track_ids or keys.size == 0:
            return out
        width = keys.dtype.itemsize
        encoded = [str(t).encode("utf-8") for t in track_ids]
        # longer than every id, or ending in NUL (which bytes arrays drop): unknown
        fits = np.asarray([len(b) <= width and not b.endswith(b"\0") for b in encoded])
        wanted = np.asarray([b if ok else b"" for b, ok in zip(encoded, fits, strict=True)])
        wanted = wanted.astype(keys.dtype)
        # the last of equal ids, as a dict built in track order keeps
        pos = np.searchsorted(keys, wanted, side="right") - 1
        hit = fits & (pos >= 0)
        hit[hit] = keys[pos[hit]] == wanted[hit]
        out[hit] = order[pos[hit]]
        return out

    def track_index(self, track_id: str) -> int:
        got = int(self.lookup([track_id])[0])
        if got < 0:
            raise ValueError(
                f"track {track_id!r} is not in the snapshot; add it to the catalog "
                "(`segue fetch` or an input playlist) and rebuild with `segue fit`"
            )
        return got

    def known_indices(self, track_ids: list[str]) -> tuple[np.ndarray, list[str]]:
        """Indices of the known ids (in input order, deduplicated) and the unknown ids."""
        found = self.lookup(track_ids).tolist()
        seen: set[int] = set()
        out: list[int] = []
        unknown: list[str] = []
        for tid, i in zip(track_ids, found, strict=True):
            if i < 0:
                unknown.append(tid)
            elif i not in seen:
                seen.add(i)
                out.append(i)
        return np.asarray(out, dtype=np.int64), unknown

    def artist_track_indices(self, artist_key: int) -> np.ndarray:
        return np.flatnonzero(self.tracks["artist_key"].to_numpy() == artist_key)

    def track_artist_keys(self) -> np.ndarray:
        return self.tracks["artist_key"].to_numpy(dtype=np.int64)

    def track_genres(self) -> list[list[str]]:
        """Genres of each track's artist (empty list when unknown), aligned with ``tracks``."""
        genres = self.artists["genres"]
        lookup = dict(zip(self.artists.index.tolist(), genres.tolist(), strict=True))
        return [list(lookup.get(k) or []) for k in self.tracks["artist_key"].tolist()]

    # construction -----------------------------------------------------------------------
    @classmethod
    def from_frames(
        cls,
        tracks: pd.DataFrame,
        artists: pd.DataFrame,
        playlists: pd.DataFrame,
        rows: tuple[np.ndarray, np.ndarray] | sp.spmatrix | None = None,
        manifest: dict[str, Any] | None = None,
    ) -> Snapshot:
        """Build from frames; ``rows`` is ``(playlist_index, track_index)`` pairs or a matrix.

        Missing optional track columns are added (NaN / None), so tests and tools can give
        only what they have.
        """
        tracks = tracks.reset_index(drop=True).copy()
        for col in TRACK_COLUMNS:
            if col not in tracks.columns:
                if col in ("name", "artist_name", "album_id", "album_name"):
                    tracks[col] = None
                elif col == "artist_key":
                    tracks[col] = np.arange(len(tracks), dtype=np.int64)
                elif col == "playlist_count":
                    tracks[col] = 0
                else:
                    tracks[col] = np.nan
        for col in ("release_year", "popularity", *AUDIO_FEATURES):
            tracks[col] = tracks[col].astype("float32")
        tracks["artist_key"] = tracks["artist_key"].astype("int64")
        artists = artists.copy()
        if "artist_key" in artists.columns:
            artists = artists.set_index("artist_key")
        for col, default in (("artist_id", None), ("name", None), ("popularity", np.nan)):
            if col not in artists.columns:
                artists[col] = default
        if "genres" not in artists.columns:
            artists["genres"] = [[] for _ in range(len(artists))]
        artists["genres"] = [list(g) if g is not None and len(g) else [] for g in artists["genres"]]
        artists["popularity"] = artists["popularity"].astype("float32")
        playlists = playlists.reset_index(drop=True).copy()
        if "name" not in playlists.columns:
            playlists["name"] = None
        if "pid" not in playlists.columns:
            playlists["pid"] = np.arange(len(playlists), dtype=np.int64)
        shape = (len(playlists), len(tracks))
        if rows is None:
            matrix = sp.csr_matrix(shape, dtype=np.float32)
        elif sp.issparse(rows):
            matrix = sp.csr_matrix(rows, dtype=np.float32)
        else:
            p_idx, t_idx = rows
            matrix = sp.csr_matrix(
                (np.ones(len(p_idx), dtype=np.float32), (np.asarray(p_idx), np.asarray(t_idx))),
                shape=shape,
            )
            matrix.sum_duplicates()
            matrix.data[:] = 1.0
        counts = np.asarray((matrix > 0).sum(axis=0)).ravel().astype(np.int32)
        if counts.shape[0] == len(tracks) and (tracks["playlist_count"].fillna(0) == 0).all():
            tracks["playlist_count"] = counts
        tracks["playlist_count"] = tracks["playlist_count"].astype("int32")
        man = {
            "format_version": FORMAT_VERSION,
            "n_tracks": len(tracks),
            "n_playlists": len(playlists),
            "n_rows": int(matrix.nnz),
            "n_artists": len(artists),
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        man.update(manifest or {})
        return cls(
            tracks=tracks, artists=artists, playlists=playlists, interactions=matrix, manifest=man
        )

    # identity ---------------------------------------------------------------------------
    @property
    def snapshot_id(self) -> str:
        """A hash of the snapshot's content (tracks, artists, playlists, rows): equal for two
        snapshots read from the same catalog, so a model fitted on one fits the other. Kept
        in the manifest, computed once."""
        got = self.manifest.get("snapshot_id")
        if isinstance(got, str) and got:
            return got
        sid = content_id(self)
        self.manifest["snapshot_id"] = sid
        return sid

    # persistence ------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        """Write the snapshot into ``directory`` whole or not at all: files go to a temporary
        folder beside it, are synced to disk and listed (size, CRC-32) in ``manifest.json``,
        and the folder takes the place of ``directory`` by rename."""
        from segue.core.artifacts import sync_and_describe, write_json

        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = directory.with_name(f".{directory.name}.writing-{os.getpid()}")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        try:
            mapped.write_table(tmp / f"tracks{mapped.TABLE_SUFFIX}", self.tracks)
            mapped.write_table(tmp / f"artists{mapped.TABLE_SUFFIX}", self.artists.reset_index())
            mapped.write_table(tmp / f"playlists{mapped.TABLE_SUFFIX}", self.playlists)
            m = self.interactions
            mapped.write_arrays(
                tmp / INTERACTIONS,
                {
                    "data": m.data,
                    "indices": m.indices,
                    "indptr": m.indptr,
                    "shape": np.asarray(m.shape, dtype=np.int64),
                },
            )
            t = self.interactions_t()
            mapped.write_arrays(
                tmp / INTERACTIONS_T,
                {"data": t.data, "indices": t.indices, "indptr": t.indptr},
            )
            keys, order = self._positions()
            mapped.write_arrays(tmp / TRACK_KEYS, {"keys": keys, "order": order})
            mapped.write_arrays(tmp / SONG_KEYS, {"keys": self.song_keys()})
            save_names(tmp / NAMES, self.names())
            self.snapshot_id  # noqa: B018 - into the manifest
            files = sync_and_describe(tmp)
            write_json(tmp / MANIFEST_NAME, {**self.manifest, "files": files})
            if directory.exists():  # a folder saved before: set aside, then removed
                old = directory.with_name(f".{directory.name}.old-{os.getpid()}")
                directory.rename(old)
                tmp.rename(directory)
                shutil.rmtree(old, ignore_errors=True)
            else:
                tmp.rename(directory)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    @classmethod
    def load(cls, directory: Path) -> Snapshot:
        """Read a saved snapshot. A missing, cut or unreadable file is a
        :class:`~segue.core.artifacts.ArtifactError` naming it and the command that rebuilds it."""
        from segue.core.artifacts import (
            ArtifactError,
            file_problem,
            fit_command,
            home_of,
            home_option,
            read_json,
        )
        from segue.core.artifacts import shown as _shown

        directory = Path(directory)
        home = home_of(directory)
        rebuild = fit_command(home)
        manifest_path = directory / MANIFEST_NAME
        if not manifest_path.exists():
            from segue.core.home import CATALOG_FILE

            if home is not None and not (home / CATALOG_FILE).exists():
                # Nothing to fit from either: the first step is an ingest, not a fit.
                raise NotFittedError(
                    f"nothing is built in {home} yet: add MPD playlist files with "
                    f"`segue {home_option(home)}ingest PATH...`, then run `{rebuild}` (or use "
                    "the bundled demo catalog with `--demo`)"
                )
            raise NotFittedError(
                f"no snapshot in {directory}: run `{rebuild}` first (or use the bundled demo "
                "catalog with `--demo`)"
            )
        manifest = read_json(manifest_path, "the snapshot", rebuild, home)
        if manifest.get("format_version") != FORMAT_VERSION:
            raise NotFittedError(
                f"the snapshot in {_shown(directory, home)} was saved in format "
                f"{manifest.get('format_version')} by another version of segue; this one reads "
                f"format {FORMAT_VERSION}: rebuild it with `{rebuild}`"
            )
        files = manifest.pop("files", None)
        if files is not None:
            problem = file_problem(directory, files)
            if problem:
                raise ArtifactError(
                    f"the snapshot is damaged: {_shown(directory, home)}/{problem}: "
                    f"rebuild it with `{rebuild}`"
                )
        # Tables: Arrow IPC, mapped; a snapshot saved before them has Parquet files.
        suffix = ".parquet" if (directory / "tracks.parquet").exists() else mapped.TABLE_SUFFIX

        def table(name: str) -> pd.DataFrame:
            path = directory / f"{name}{suffix}"
            return pd.read_parquet(path) if suffix == ".parquet" else mapped.read_table(path)

        reading = f"tracks{suffix}"
        try:
            tracks = table("tracks")
            reading = f"artists{suffix}"
            artists = table("artists").set_index("artist_key")
            artists["genres"] = [list(g) if g is not None else [] for g in artists["genres"]]
            reading = f"playlists{suffix}"
            playlists = table("playlists")
            reading = INTERACTIONS
            z = mapped.read_arrays(directory / reading)
            shape = tuple(int(x) for x in z["shape"])
            matrix = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=shape)
            reading = INTERACTIONS_T
            z = mapped.read_arrays(directory / reading)
            matrix_t = sp.csr_matrix(
                (z["data"], z["indices"], z["indptr"]), shape=(shape[1], shape[0])
            )
            reading = TRACK_KEYS
            z = mapped.read_arrays(directory / reading)  # empty: saved before they were
            positions = None
            if (
                set(z) == {"keys", "order"}
                and z["keys"].dtype.kind == "S"
                and z["keys"].shape == z["order"].shape == (len(tracks),)
            ):
                positions = (z["keys"], np.asarray(z["order"], dtype=np.int64))
            reading = SONG_KEYS
            z = mapped.read_arrays(directory / reading)  # empty: saved before they were
            songs = None
            if set(z) == {"keys"} and z["keys"].dtype == np.int64 and len(z["keys"]) == len(tracks):
                songs = (tracks, z["keys"])
            reading = NAMES  # missing: saved before names were
            shape = (len(tracks), len(artists), len(playlists))
            saved_names = load_names(directory / reading, *shape)
            names = None if saved_names is None else ((tracks, artists, playlists), saved_names)
        except MemoryError:
            raise
        except Exception as exc:  # any failure to read a file of the set: the file is bad
            raise ArtifactError(
                f"the snapshot is damaged: {_shown(directory / reading, home)} cannot be read "
                f"({type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}): "
                f"rebuild it with `{rebuild}`"
            ) from None
        return cls(
            tracks=tracks,
            artists=artists,
            playlists=playlists,
            interactions=matrix,
            manifest=manifest,
            _track_pos=positions,
            _transposed=(matrix, matrix_t),
            _songs=songs,
            _names=names,
        )


def transpose(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """The transpose of a CSR matrix, as a CSR matrix."""
    return sp.csr_matrix(matrix.T)


MANIFEST_NAME = "manifest.json"


def content_id(snapshot: Snapshot) -> str:
    """A 32-hex-digit BLAKE2b hash of what a model learns from: every column of tracks,
    artists and playlists (names, dtypes, values) and the playlist x track matrix.

    Hashed column by column from the columns' own buffers where they have them (numbers,
    Arrow strings) and in slices of the matrix, so it never copies a large array.
    """
    digest = hashlib.blake2b(digest_size=16)

    def frame(name: str, df: pd.DataFrame, with_index: bool) -> None:
        digest.update(f"{name}:{len(df)}".encode())
        columns = [("index", df.index.to_series())] if with_index else []
        for col, values in [*columns, *df.items()]:
            digest.update(f"{col}:{values.dtype}".encode())
            for chunk in _column_bytes(values):
                digest.update(chunk)

    frame("tracks", snapshot.tracks, False)
    frame("artists", snapshot.artists, True)
    frame("playlists", snapshot.playlists, False)
    m = snapshot.interactions
    digest.update(f"rows:{m.shape}:{m.nnz}".encode())
    step = 1 << 22
    for arr, dtype in ((m.indptr, np.int64), (m.indices, np.int64), (m.data, np.float32)):
        for start in range(0, arr.shape[0], step):
            digest.update(np.ascontiguousarray(arr[start : start + step], dtype=dtype).tobytes())
    return digest.hexdigest()


def _column_bytes(values: pd.Series) -> Iterator[bytes | memoryview]:
    """The bytes that stand for a column's values: raw numbers; for strings the validity,
    offsets and characters of their Arrow form; else one text per value."""
    import pyarrow as pa

    if isinstance(values.dtype, np.dtype) and values.dtype.kind in "biufcmM":
        yield np.ascontiguousarray(values.to_numpy()).data
        return
    try:
        arr: Any = pa.array(values, from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError):
        arr = None
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr is not None and (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        width = 8 if pa.types.is_large_string(arr.type) else 4
        _, offsets_buf, data_buf = arr.buffers()
        offsets = np.frombuffer(
            offsets_buf, dtype=f"<i{width}", count=len(arr) + 1, offset=arr.offset * width
        ).astype(np.int64)
        yield np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=np.bool_).data
        yield (offsets - offsets[0]).data
        if data_buf is not None:
            yield memoryview(data_buf)[int(offsets[0]) : int(offsets[-1])]
        return
    texts = []
    for v in values.tolist():
        if v is None or (isinstance(v, float) and v != v):
            texts.append("\x01")
        elif isinstance(v, list | tuple | np.ndarray):
            texts.append("\x1f".join(map(str, v)))
        else:
            texts.append(str(v))
    yield "\x1e".join(texts).encode("utf-8", "surrogatepass")
