"""``segue ingest``: MPD slices from files, folders, globs and .tar.gz archives into the catalog.

Each file is read whole, validated and written in one transaction (its playlists, their rows and
the tracks, artists and albums new to the catalog): a bad or interrupted file leaves the catalog
as it was. The next files are parsed in a background thread while the current one is written
(Arrow and DuckDB release the GIL), so parsing and writing overlap on two cores.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import tarfile
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from segue.catalog import Catalog, SliceResult
from segue.core.errors import InputFileError
from segue.formats.mpd import (
    MAX_FILE_BYTES,
    Bytes,
    SliceColumns,
    expand_paths,
    gunzipped,
    out_of_memory,
    read_into_buffer,
    read_slice_data,
    release_buffer,
)

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")
#: A slice to read: its name, and what reads its bytes.
Source = tuple[str, Callable[[], Bytes]]
#: DuckDB settings while ingesting (restored after). One DuckDB thread: the other core parses the
#: next files, and one thread spends less CPU per file than two. A small buffer pool: left at its
#: default, DuckDB keeps every block the catalog has written as cache and the process grows with
#: the catalog; capped, blocks a file's writes need are read again from the file when evicted.
#: 64 MB rather than 96 MB: the pool fills sooner, so a short ingest peaks closer to a long one
#: (benchmarks/README.md), at no measured CPU cost.
#: A checkpoint every 64 MB of changes (DuckDB's estimate of the WAL they take, written or
#: not) rather than DuckDB's 16 MB: a slice is about 7 MB and a checkpoint costs more than the
#: data it moves (10 synthetic slices: 1.1 s of
#: checkpoints one file at a time, 0.47 s all at once).
INGEST_SETTINGS = {"threads": "1", "memory_limit": "64MB", "checkpoint_threshold": "64MB"}

#: Files from which an ingest keeps the catalog's track, album and artist ids in memory.
RUN_MIN_FILES = 4
#: Files parsed ahead of the one being written (each holds its columns, a few tens of MB).
PARSE_AHEAD = 3


@dataclass
class IngestReport:
    results: list[SliceResult] = field(default_factory=list)
    skipped: list[InputFileError] = field(default_factory=list)
    #: Where the time went: reading and parsing files (in the parse thread, or in the writer
    #: when it would wait), writing them to the catalog, and the writer waiting for a parse
    #: (wall seconds).
    parse_seconds: float = 0.0
    write_seconds: float = 0.0
    wait_seconds: float = 0.0

    @property
    def playlists(self) -> int:
        return sum(r.playlists for r in self.results)

    @property
    def rows(self) -> int:
        return sum(r.rows for r in self.results)

    #: Whether the run stopped early on request (Ctrl+C): the files in ``results`` are in the
    #: catalog, whole; the others were not started.
    stopped: bool = False

    @property
    def unchanged(self) -> int:
        return sum(r.status == "unchanged" for r in self.results)

    @property
    def nulled(self) -> int:
        """Optional values given but unusable (negative, not integers, out of range), stored
        as NULL."""
        return sum(r.nulled for r in self.results)

    @property
    def renumbered(self) -> int:
        """Playlists whose positions were unusable or repeated, stored in list order."""
        return sum(r.renumbered for r in self.results)


#: What reading a damaged archive raises.
_DAMAGED = (tarfile.TarError, OSError, EOFError, zlib.error)


def _said(exc: BaseException) -> str:
    """An exception's message on one line, or its kind when it has none."""
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0].rstrip(":") if text.strip() else type(exc).__name__


def _open_archive(path: Path) -> tarfile.TarFile:
    """A tar read forwards: gzip-compressed for ``.tar.gz`` and ``.tgz``, any way for ``.tar``."""
    plain = path.name.endswith(".tar")
    try:
        return tarfile.open(path, "r|*" if plain else "r|gz")  # a .tar may be compressed too
    except tarfile.ReadError as exc:
        kind = "a tar archive" if plain else "a gzip-compressed tar archive"
        empty = path.exists() and path.stat().st_size == 0
        raise InputFileError(
            str(path), None, f"not {kind}: {'the file is empty' if empty else _said(exc)}"
        ) from exc
    except _DAMAGED as exc:
        raise InputFileError(str(path), None, f"cannot open archive: {_said(exc)}") from exc
    except TypeError as exc:
        # tarfile's stream reader calls ord() on a byte it did not get when a gzip header
        # is cut short after its flags (CPython 3.11 raises TypeError, not ReadError).
        raise InputFileError(
            str(path), None, "cannot open archive: the gzip header is cut short"
        ) from exc


def _read_member(
    tar: tarfile.TarFile, member: tarfile.TarInfo, name: str, max_bytes: int | None
) -> Bytes:
    limit = MAX_FILE_BYTES if max_bytes is None else max_bytes
    if member.size > limit:
        raise InputFileError(
            name,
            None,
            f"holds more than the {limit / (1 << 20):,.0f} MiB allowed for one file "
            "(raise the limit with --max-file-mb)",
        )
    handle = tar.extractfile(member)
    if handle is None:
        raise InputFileError(name, None, "archive member is not a file")
    try:
        data = handle.read()
    except _DAMAGED as exc:
        raise InputFileError(name, None, f"damaged archive: {_said(exc)}") from exc
    return gunzipped(name, data, limit)


def _is_slice_name(member: tarfile.TarInfo) -> bool:
    return member.name.endswith((".json", ".json.gz"))


def _is_slice(member: tarfile.TarInfo) -> bool:
    return member.isfile() and _is_slice_name(member)


def _not_a_file(member: tarfile.TarInfo) -> str:
    """Why an archive member named like a slice is not read."""
    if member.issym() or member.islnk():
        kind = "a symbolic link" if member.issym() else "a hard link"
        return f"archive member is {kind} to {member.linkname!r}; links are not followed"
    return "archive member is not a regular file"


def count_sources(paths: list[Path]) -> int:
    """How many files an ingest of ``paths`` meets, archive members included (one pass over
    each archive); a damaged or empty archive counts as one (bad) file."""
    total = 0
    for path in paths:
        if not path.name.endswith(ARCHIVE_SUFFIXES):
            total += 1
            continue
        found = 0
        try:
            with _open_archive(path) as tar:
                for member in tar:
                    found += _is_slice_name(member)
        except (InputFileError, *_DAMAGED):
            found += 1
        total += max(found, 1)
    return total


def iter_sources(paths: list[Path], max_bytes: int | None = None) -> Iterator[Source]:
    """(name, loader) per slice, in order. Archive members are read from one open tar as the
    iteration reaches them (a tar.gz can only be read forwards), so their loader holds bytes.
    Members named like slices that are links or not regular files, and archives holding no
    slice, are reported as bad files, not skipped silently."""
    for path in paths:
        if not path.name.endswith(ARCHIVE_SUFFIXES):
            yield str(path), functools.partial(read_into_buffer, path, max_bytes)
            continue
        try:
            tar = _open_archive(path)
        except InputFileError as exc:
            yield _failing(exc)
            continue
        found = 0
        with tar:
            members = iter(tar)
            while True:
                try:
                    member = next(members, None)
                except _DAMAGED as exc:  # cut short or corrupt past the members read so far
                    found += 1
                    yield _failing(
                        InputFileError(str(path), None, f"damaged archive: {_said(exc)}")
                    )
                    break
                if member is None:
                    break
                if not _is_slice_name(member):
                    continue
                found += 1
                name = f"{path}!{member.name}"
                if not member.isfile():
                    yield _failing(InputFileError(name, None, _not_a_file(member)))
                    continue
                try:
                    data = _read_member(tar, member, name, max_bytes)
                except InputFileError as exc:
                    yield _failing(exc)
                    continue
                yield name, functools.partial(bytes, data)
        if not found:
            yield _failing(
                InputFileError(str(path), None, "the archive holds no .json or .json.gz file")
            )


def _failing(error: InputFileError) -> Source:
    """A source whose loader raises ``error`` (a file that could not be read), in its turn."""

    def fail() -> bytes:
        raise error

    return error.path, fail


@contextlib.contextmanager
def _arrow_allocator() -> Iterator[None]:
    """Arrow's jemalloc pool as the default while ingesting, where the build has one.

    Slices are parsed in one thread and freed in another, tens of MB each: with Arrow's
    default mimalloc pool, 10 synthetic slices took about 10% longer (in page faults) and
    peaked 60-75 MiB higher than with jemalloc (benchmarks/README.md).
    """
    try:
        pool = pa.jemalloc_memory_pool()
    except NotImplementedError:  # a build without jemalloc keeps its default
        yield
        return
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pool)
    try:
        yield
    finally:
        pa.set_memory_pool(previous)


def _parsed_here(parse: Callable[[Source], SliceColumns], item: Source) -> Future[SliceColumns]:
    """``parse(item)`` run in this thread, as a finished future (its error kept for its turn)."""
    done: Future[SliceColumns] = Future()
    try:
        done.set_result(parse(item))
    except Exception as exc:
        done.set_exception(exc)
    return done


def ingest_paths(
    catalog: Catalog,
    specs: list[str] | list[Path],
    *,
    skip_bad: bool = False,
    salvage: bool = False,
    progress: bool = True,
    on_error: Callable[[InputFileError], None] | None = None,
    max_file_bytes: int | None = None,
    stop: Callable[[], bool] | None = None,
    report: IngestReport | None = None,
) -> IngestReport:
    """Ingest every slice named by ``specs`` (files, folders, globs, archives).

    Without ``skip_bad`` the first bad file raises :class:`InputFileError` after the files before
    it are committed (each file is its own transaction); with it, bad files are recorded in the
    report and the others go in. ``salvage`` keeps the complete playlists of a damaged file.
    A file larger than ``max_file_bytes`` (default :data:`segue.formats.mpd.MAX_FILE_BYTES`), once
    decompressed, is a bad file. ``stop`` is asked before each file: once it says True, the
    run ends after the file being written (``report.stopped``). ``report``, when given, is
    filled as files go in (so a caller interrupted outright still knows what went in).
    """
    paths = expand_paths([str(s) for s in specs])
    report = IngestReport() if report is None else report
    total = count_sources(paths)

    def parse(item: Source) -> SliceColumns:
        began = time.perf_counter()
        name, load = item
        data: Bytes | None = None
        try:
            data = load()
            cols = read_slice_data(name, data, salvage=salvage)
            _ = cols.distinct  # computed here, in the parse thread, while the writer works
        except MemoryError:
            raise out_of_memory(name, None if data is None else len(data)) from None
        finally:
            report.parse_seconds += time.perf_counter() - began
        return cols

    columns = (
        TextColumn("[bold]ingest"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("files  {task.fields[pl]:,} playlists  {task.fields[rate]:,.0f} playlists/s"),
        TimeElapsedColumn(),
    )
    console = Console(file=sys.stderr)
    started = time.perf_counter()
    sources = iter_sources(paths, max_file_bytes)
    with (
        _arrow_allocator(),
        Progress(*columns, console=console, disable=not progress) as bar,
        ThreadPoolExecutor(max_workers=1) as pool,
    ):
        task = bar.add_task("ingest", total=total, pl=0, rate=0.0)
        saved = {
            name: catalog.scalar(f"SELECT current_setting('{name}')") for name in INGEST_SETTINGS
        }
        for name, value in INGEST_SETTINGS.items():
            catalog.con.execute(f"SET {name} = '{value}'")
        # Files are parsed ahead in the pool, up to PARSE_AHEAD of them, while the current one
        # is written: a checkpoint can hold the writer for several files' parsing time.
        ahead: deque[tuple[Source, Future[SliceColumns]]] = deque()

        def parse_ahead() -> None:
            while len(ahead) < PARSE_AHEAD:
                following = next(sources, None)
                if following is None:
                    return
                ahead.append((following, pool.submit(parse, following)))

        def help_parse() -> None:
            """While the next file is still being parsed, parse a later one in this thread
            (one the pool has not started), rather than wait with a core idle."""
            if ahead[0][1].done():
                return
            for i, (item, future) in enumerate(ahead):
                if future.cancel():
                    ahead[i] = (item, _parsed_here(parse, item))
                    return

        try:
            first = next(sources, None)
            if first is not None:
                ahead.append((first, pool.submit(parse, first)))
            # The catalog's track, album and artist ids in memory find each file's new ones
            # without a scan of the catalog per file; loading them (while the first file
            # parses) costs about a few such scans, so a run of a few files does without.
            run = catalog.start_ingest_run() if total >= RUN_MIN_FILES else None
            parse_ahead()
            while ahead:
                if stop is not None and stop():
                    report.stopped = True
                    break
                help_parse()
                _, current = ahead.popleft()
                parse_ahead()
                try:
                    began = time.perf_counter()
                    try:
                        cols = current.result()
                    finally:
                        report.wait_seconds += time.perf_counter() - began
                    began = time.perf_counter()
                    try:
                        result = catalog.add_slice(cols, run)
                    except (MemoryError, duckdb.OutOfMemoryException):
                        # The file's transaction is rolled back: nothing of it was stored.
                        raise out_of_memory(cols.path, None) from None
                    finally:
                        report.write_seconds += time.perf_counter() - began
                        # Written (or refused): its columns go before the writer waits for
                        # the next file.
                        del cols
                except InputFileError as exc:
                    if not skip_bad:
                        raise
                    report.skipped.append(exc)
                    if on_error is not None:
                        on_error(exc)
                else:
                    report.results.append(result)
                done = report.playlists
                bar.update(
                    task, advance=1, pl=done, rate=done / max(time.perf_counter() - started, 1e-9)
                )
        finally:
            for _, future in ahead:  # stopped early: files not started are not parsed
                future.cancel()
            release_buffer()  # this thread's read buffer (the pool's goes with its thread)
            try:
                if not catalog.in_transaction:
                    # The files committed since the last checkpoint go into the catalog file
                    # now, however the run ends (a catalog opened in bulk has no WAL to keep
                    # them), and under the ingest memory limit: left to the close, they would
                    # be checkpointed with DuckDB's default one, and set the process's peak
                    # memory. Nothing is parsed any more: two threads.
                    catalog.con.execute("SET threads = 2")
                    catalog.con.execute("CHECKPOINT")
            finally:
                for name, value in saved.items():
                    catalog.con.execute(f"SET {name} = '{value}'")
    return report
