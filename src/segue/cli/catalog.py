"""``segue ingest`` and ``segue stats``."""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, NoReturn

import typer
from rich.table import Table

from segue.cli import _spark
from segue.cli._console import err, fail, out
from segue.cli.core import home_of
from segue.core.errors import InputFileError, SegueError
from segue.core.home import Home

if TYPE_CHECKING:
    from segue.catalog.ingest import IngestReport


@contextlib.contextmanager
def _stop_on_interrupt() -> Iterator[Callable[[], bool]]:
    """While inside: the first Ctrl+C (SIGINT) only asks the work to stop at its next safe
    point (the callable yielded turns True); a second one interrupts at once, as usual."""
    asked: list[bool] = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False  # signal handlers belong to the main thread
        return

    def ask(signum: int, frame: object) -> None:
        asked.append(True)
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, ask)
    try:
        yield lambda: bool(asked)
    finally:
        signal.signal(signal.SIGINT, previous)


def _interrupted(report: IngestReport, *, at_once: bool) -> NoReturn:
    """Say what an interrupted ingest kept and how to go on; exit 130 (as a shell does)."""
    done = sum(r.status == "added" for r in report.results)
    err.print(
        f"interrupted: kept the {done:,} file(s) ingested so far ({report.playlists:,} "
        "playlists), each whole"
        + ("; the file being written was left out" if at_once else "")
        + ". Run the same command again to add the rest (files already in the catalog are "
        "skipped).",
        markup=False,
        highlight=False,
    )
    raise typer.Exit(130)


def open_catalog(home: Home, read_only: bool = False, bulk: bool = False):
    from segue.catalog import Catalog

    return Catalog.open(home.ensure().catalog, read_only=read_only, bulk=bulk)


def register(app: typer.Typer) -> None:
    @app.command()
    def ingest(
        ctx: typer.Context,
        paths: list[str] = typer.Argument(
            ..., help="MPD slice files (.json, .json.gz), folders, globs or .tar.gz archives."
        ),
        skip_bad: bool = typer.Option(
            False, "--skip-bad", help="Carry on past bad files and summarise them at the end."
        ),
        salvage: bool = typer.Option(
            False, "--salvage", help="Keep the complete playlists of a truncated or damaged file."
        ),
        max_file_mb: int = typer.Option(
            256,
            "--max-file-mb",
            min=1,
            help="Refuse a file larger than this, in MiB once decompressed (a slice is about 33 MB).",
        ),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
        engine: str = _spark.ENGINE,
        spark_master: str = _spark.SPARK_MASTER,
        spark_conf: list[str] = _spark.SPARK_CONF,
        lake: str | None = typer.Option(
            None,
            "--lake",
            help="Where Spark writes the tables as Parquet (default: HOME/lake; any URI Spark writes).",
        ),
    ) -> None:
        """Add MPD-format playlists to the catalog (each file all or nothing; re-ingesting changes nothing).

        Files reach the catalog file at checkpoints (every few files and at the end): killed
        outright, an ingest loses the files since the last one, and a rerun adds them. Ctrl+C
        stops after the file being written, keeping every file before it.
        """
        from segue.catalog.ingest import IngestReport, ingest_paths

        home = home_of(ctx)
        if _spark.use_spark(engine):
            _ingest_spark(
                home, paths, skip_bad, salvage, quiet, spark_master, spark_conf or [], lake
            )
            return
        report = IngestReport()
        with _stop_on_interrupt() as stop:
            try:
                # In bulk: files reach the catalog file at checkpoints, not one WAL write each.
                with open_catalog(home, bulk=True) as catalog:
                    ingest_paths(
                        catalog,
                        paths,
                        skip_bad=skip_bad,
                        salvage=salvage,
                        progress=not quiet,
                        max_file_bytes=max_file_mb << 20,
                        stop=stop,
                        report=report,
                    )
                    counts = catalog.counts()
            except SegueError as exc:
                raise fail(str(exc)) from None
            except Exception as exc:
                # A second Ctrl+C reaches DuckDB as "Query interrupted" (or the like).
                if not (stop() and "interrupt" in str(exc).lower()):
                    raise
                _interrupted(report, at_once=True)
            except KeyboardInterrupt:
                _interrupted(report, at_once=True)
        added = [r for r in report.results if r.status == "added"]
        salvaged = [r for r in added if r.salvaged]
        out.print(
            f"ingested {len(added)} file(s): {report.playlists:,} playlists, {report.rows:,} track rows"
            + (f"; {report.unchanged} already in the catalog" if report.unchanged else "")
            + (
                f"; {sum(r.duplicates for r in added)} duplicate playlist(s) skipped"
                if any(r.duplicates for r in added)
                else ""
            )
            + (
                f"; salvaged {sum(r.playlists for r in salvaged)} complete playlist(s) from {len(salvaged)} damaged file(s)"
                if salvaged
                else ""
            )
            + (
                f"; {report.nulled:,} value(s) stored as NULL (negative, not integers or too large)"
                if report.nulled
                else ""
            )
            + (
                f"; {report.renumbered:,} playlist(s) stored in list order (positions missing, "
                "negative, not integers or repeated)"
                if report.renumbered
                else ""
            ),
            markup=False,
            highlight=False,
        )
        out.print(
            f"catalog: {counts['playlists']:,} playlists, {counts['tracks']:,} rows, {counts['unique_tracks']:,} tracks",
            markup=False,
            highlight=False,
        )
        if report.skipped:
            err.print(f"skipped {len(report.skipped)} bad file(s):", highlight=False)
            for skipped in report.skipped:
                err.print(f"  {skipped}", markup=False, highlight=False, soft_wrap=True)
        if report.stopped:
            _interrupted(report, at_once=False)
        if report.skipped:
            raise typer.Exit(1 if not added else 0)

    def _ingest_spark(
        home: Home,
        paths: list[str],
        skip_bad: bool,
        salvage: bool,
        quiet: bool,
        master: str,
        conf: list[str],
        lake: str | None,
    ) -> None:
        from segue.spark import require_pyspark, spark_failure

        try:
            require_pyspark()
            from segue.spark.ingest import ingest_spark
            from segue.spark.session import parse_conf, start

            session = start(master, parse_conf(conf), app="segue ingest")
            where = lake or str(home.ensure().lake)
            with open_catalog(home) as catalog:
                report = ingest_spark(
                    catalog,
                    paths,
                    session,
                    lake=where,
                    skip_bad=skip_bad,
                    salvage=salvage,
                    log=None if quiet else (lambda m: err.print(m, highlight=False)),
                )
                counts = catalog.counts()
        except SegueError as exc:
            raise fail(str(exc)) from None
        except Exception as exc:
            said = spark_failure(exc)
            if said is None:
                raise
            raise fail(f"{said}; the catalog is unchanged") from None
        added = [r for r in report.results if r.status == "added"]
        unchanged = sum(r.status == "unchanged" for r in report.results)
        out.print(
            f"ingested {len(added)} file(s) on Spark: {report.playlists:,} playlists, "
            f"{report.rows:,} track rows"
            + (f"; {unchanged} repeated file(s) unchanged" if unchanged else "")
            + f"; tables in {report.lake}",
            highlight=False,
        )
        out.print(
            f"catalog: {counts['playlists']:,} playlists, {counts['tracks']:,} rows, {counts['unique_tracks']:,} tracks",
            highlight=False,
        )
        if report.skipped:
            err.print(f"skipped {len(report.skipped)} bad file(s):", highlight=False)
            for skipped in report.skipped:
                err.print(f"  {skipped}", highlight=False, soft_wrap=True)
            raise typer.Exit(1 if not added else 0)

    @app.command()
    def upgrade(ctx: typer.Context) -> None:
        """Upgrade a catalog written by an earlier segue to this one's schema (the old file is
        kept beside it)."""
        from segue.catalog.upgrade import upgrade_catalog

        path = home_of(ctx).ensure().catalog
        try:
            report = upgrade_catalog(path)
        except SegueError as exc:
            raise fail(str(exc)) from None
        if report is None:
            out.print(f"{path} already has this segue's schema: nothing to do", highlight=False)
            return
        copied = ", ".join(f"{t} {n:,}" for t, n in report.rows.items() if n)
        out.print(
            f"upgraded {path} from schema {report.from_version} ({copied}); "
            f"the old file is kept as {report.kept.name}",
            highlight=False,
        )

    @app.command()
    def stats(
        ctx: typer.Context,
        as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
        top: int = typer.Option(20, "--top", min=1, help="Length of the top lists."),
    ) -> None:
        """What the official MPD statistics print, for this catalog."""
        try:
            # Opened for writing: that finishes the merge of an interrupted ingest, if any.
            with open_catalog(home_of(ctx)) as catalog:
                data = catalog.stats(top=top)
        except SegueError as exc:
            raise fail(str(exc)) from None
        if as_json:
            sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
            return
        lines = [
            f"number of playlists {data['playlists']}",
            f"number of tracks {data['tracks']}",
            f"number of unique tracks {data['unique_tracks']}",
            f"number of unique albums {data['unique_albums']}",
            f"number of unique artists {data['unique_artists']}",
            f"number of unique titles {data['unique_titles']}",
            f"number of playlists with descriptions {data['playlists_with_descriptions']}",
            f"number of unique normalized titles {data['unique_normalized_titles']}",
            f"avg playlist length {data['avg_playlist_length']:.6f}",
            f"tracks with audio features {data['tracks_with_audio_features']}",
            f"tracks with release date {data['tracks_with_release_date']}",
            f"artists with genres {data['artists_with_genres']}",
            *(
                f"  from {source} {n}"
                for source, n in data.get("artists_with_genres_by_source", {}).items()
            ),
            "",
            "top playlist titles",
            *(f"{d['count']:7d} {d['title']}" for d in data["top_titles"]),
            "",
            "top tracks",
            *(f"{d['count']:7d} {d['track']} by {d['artist']}" for d in data["top_tracks"]),
            "",
            "top artists",
            *(f"{d['count']:7d} {d['artist']}" for d in data["top_artists"]),
            "",
            "numedits histogram",
            *(f"{d['count']:7d} {d['edits']}" for d in data["num_edits_histogram"]),
            "",
            "playlist length histogram",
            *(f"{d['count']:7d} {d['length']}" for d in data["playlist_length_histogram"]),
            "",
            "num followers histogram",
            *(f"{d['count']:7d} {d['followers']}" for d in data["num_followers_histogram"]),
        ]
        sys.stdout.write("\n".join(lines) + "\n")


__all__ = ["InputFileError", "Table", "fail", "open_catalog", "register"]
