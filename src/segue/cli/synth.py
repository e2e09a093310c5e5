"""``segue synth``: write synthetic MPD-format slices."""

from __future__ import annotations

from pathlib import Path

import typer

from segue.cli._console import err, fail, out


def register(app: typer.Typer) -> None:
    @app.command()
    def synth(
        playlists: int = typer.Option(
            ..., "--playlists", "-n", help="How many playlists to write (1,000 per slice file)."
        ),
        out_dir: Path = typer.Option(
            ..., "--out", "-o", help="Folder for the mpd.slice.<a>-<b>.json files (created)."
        ),
        seed: int = typer.Option(0, "--seed", help="Random seed: same arguments, same bytes."),
        tracks: int | None = typer.Option(
            None,
            "--tracks",
            help="Catalog size in tracks (default grows with --playlists like the MPD's).",
        ),
        start_pid: int = typer.Option(0, "--start-pid", help="pid of the first playlist."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    ) -> None:
        """Write MPD-shaped synthetic playlists in the full official slice schema."""
        from segue.formats import synth as synth_mod

        if playlists < 1:
            raise fail(f"--playlists must be at least 1, got {playlists}")
        if tracks is not None and tracks < synth_mod.MIN_CATALOG_TRACKS:
            raise fail(f"--tracks must be at least {synth_mod.MIN_CATALOG_TRACKS}, got {tracks}")
        if seed < 0:
            raise fail(f"--seed must be a non-negative integer, got {seed}")
        if start_pid < 0:
            raise fail(f"--start-pid must be a non-negative integer, got {start_pid}")
        if out_dir.exists() and not out_dir.is_dir():
            raise fail(f"--out must be a folder, but {str(out_dir)!r} is a file")

        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        progress = Progress(
            TextColumn("synth"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("playlists"),
            TimeRemainingColumn(),
            console=err,
            disable=quiet,
        )
        try:
            with progress:
                task = progress.add_task("synth", total=playlists)
                result = synth_mod.synthesize(
                    playlists,
                    out_dir,
                    seed=seed,
                    n_tracks=tracks,
                    start_pid=start_pid,
                    on_slice=lambda n: progress.advance(task, n),
                )
        except (OSError, ValueError) as exc:
            raise fail(str(exc)) from None
        rate = result.n_playlists / result.seconds if result.seconds > 0 else float("inf")
        out.print(
            f"wrote {len(result.paths):,} slice file(s) to {out_dir}: "
            f"{result.n_playlists:,} playlists, {result.n_rows:,} track rows, "
            f"{result.n_unique_tracks:,} distinct tracks (catalog {result.n_catalog_tracks:,}), "
            f"{result.n_unique_artists:,} artists, {result.n_unique_albums:,} albums "
            f"in {result.seconds:.1f} s ({rate:,.0f} playlists/s)",
            highlight=False,
        )
