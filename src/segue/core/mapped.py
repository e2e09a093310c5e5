"""Large arrays on disk as plain ``.npy`` files, mapped read-only when loaded.

A model's learned arrays and the snapshot's playlist x track matrix are written one array per
uncompressed ``.npy`` file (a sparse matrix as its ``data``, ``indices`` and ``indptr``
arrays). Loading maps each file read-only (``np.load(mmap_mode="r")``): the pages come from
the operating system's page cache, so the compute processes of ``segue serve --workers N``
that load the same set share one copy of every array instead of reading N, and a page is read
from disk only when first used. Writing into a mapped array raises ``ValueError``.

``SEGUE_ARRAYS=copy`` reads every array into the process's own memory instead (as segue did
before arrays were mapped; for comparison, or for a home on a file system that cannot map
files). ``SEGUE_ARRAYS=map`` (or unset) maps them.

Tables (the snapshot's tracks, artists and playlists) are written the same way as one
uncompressed Arrow IPC file each, in a single record batch, and mapped when loaded: numbers and
strings come to pandas without a copy (``to_pandas(split_blocks=True)`` over one chunk), so a
table of 2.3 million tracks costs each process a few megabytes instead of about 0.5 GB.

Each file is written whole or not at all: into a temporary file beside it, flushed to disk
(fsync), then renamed into place.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from segue.core.errors import SegueError

if TYPE_CHECKING:
    import pyarrow as pa

ENV = "SEGUE_ARRAYS"
SUFFIX = ".npy"

Mode = Literal["map", "copy"]


class ArraysModeError(SegueError):
    """``SEGUE_ARRAYS`` holds a value segue does not know."""


def mode() -> Mode:
    """How arrays load in this process: ``"map"`` (default) or ``"copy"`` (``SEGUE_ARRAYS``)."""
    value = os.environ.get(ENV, "").strip().lower()
    if value in ("", "map", "mapped", "mmap"):
        return "map"
    if value == "copy":
        return "copy"
    raise ArraysModeError(f"{ENV} must be `map` or `copy`, got {value!r}")


def write_array(path: Path, array: np.ndarray) -> None:
    """Write ``array`` to ``path`` as an uncompressed ``.npy`` (no pickle), in one step."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    arr = np.asarray(array)
    if arr.dtype == object:
        raise TypeError(f"{path.name}: an array of Python objects cannot be saved without pickle")
    try:
        with open(tmp, "wb") as fh:
            np.save(fh, np.ascontiguousarray(arr), allow_pickle=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_array(path: Path, how: Mode | None = None) -> np.ndarray:
    """The array in ``path``: mapped read-only, or (``how="copy"``, or ``SEGUE_ARRAYS=copy``)
    read into memory. An empty array is always read (there is nothing to map)."""
    how = how or mode()
    if how == "map":
        try:
            return np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError as exc:
            if "empty" not in str(exc):  # mmap refuses a mapping of zero bytes
                raise
    return np.load(path, allow_pickle=False)


def write_arrays(directory: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write each array of ``arrays`` to ``directory/<name>.npy``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"array name {name!r} cannot name a file")
        write_array(directory / f"{name}{SUFFIX}", array)


def read_arrays(directory: Path, how: Mode | None = None) -> dict[str, np.ndarray]:
    """Every ``<name>.npy`` in ``directory`` by name (mapped unless ``how``/``SEGUE_ARRAYS``
    says copy); an empty dict when the folder is missing."""
    directory = Path(directory)
    if not directory.is_dir():
        return {}
    how = how or mode()
    return {
        path.name[: -len(SUFFIX)]: read_array(path, how)
        for path in sorted(directory.iterdir())
        if path.name.endswith(SUFFIX) and not path.name.startswith(".")
    }


TABLE_SUFFIX = ".arrow"


def write_table(path: Path, frame: pd.DataFrame) -> None:
    """Write ``frame`` (its columns, not its index) to ``path`` as one uncompressed Arrow IPC
    record batch, in one step; :func:`read_table` gives it back equal, dtypes included."""
    import pyarrow as pa

    # One chunk per column: a column of several chunks is concatenated (copied) when loaded.
    table = pa.Table.from_pandas(frame, preserve_index=False).combine_chunks()
    for i, name in enumerate(table.column_names):
        values = frame[name]
        if values.dtype.kind == "f":  # NaN kept as NaN, not as a null: a column with nulls is
            # copied when loaded (its NaNs written in), one without maps as it is
            column = pa.array(values.to_numpy(), from_pandas=False)
            table = table.set_column(i, table.schema.field(i), column)
    write_arrow(path, table)


def write_arrow(path: Path, table: pa.Table) -> None:
    """Write the Arrow ``table`` to ``path`` as one uncompressed IPC record batch, whole or not
    at all (:func:`read_arrow` maps it)."""
    import pyarrow.feather as feather

    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    table = table.combine_chunks()
    try:
        feather.write_feather(
            table, tmp, compression="uncompressed", chunksize=max(table.num_rows, 1)
        )
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_arrow(path: Path, how: Mode | None = None) -> pa.Table:
    """The Arrow table in ``path`` (written by :func:`write_arrow`): over the mapped file,
    read-only (or, ``how="copy"`` or ``SEGUE_ARRAYS=copy``, read into memory)."""
    import pyarrow.feather as feather

    how = how or mode()
    return feather.read_table(path, memory_map=how == "map")


def read_table(path: Path, how: Mode | None = None) -> pd.DataFrame:
    """The table in ``path`` (written by :func:`write_table`): its columns over the mapped
    file, read-only (or, ``how="copy"`` or ``SEGUE_ARRAYS=copy``, read into memory)."""
    frame: pd.DataFrame = read_arrow(path, how).to_pandas(split_blocks=True)
    return frame


def is_mapped(array: np.ndarray) -> bool:
    """True when ``array`` (or the array it views) is a file mapped into memory."""
    base: object = array
    while isinstance(base, np.ndarray):
        if isinstance(base, np.memmap):
            return True
        base = base.base
    import mmap

    return isinstance(base, mmap.mmap)


__all__ = [
    "ENV",
    "TABLE_SUFFIX",
    "ArraysModeError",
    "is_mapped",
    "mode",
    "read_array",
    "read_arrays",
    "read_arrow",
    "read_table",
    "write_array",
    "write_arrays",
    "write_arrow",
    "write_table",
]
