"""``segue fetch`` and ``segue import-playlist``: the commands that use the network."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

from segue.cli._console import err, fail, info, out
from segue.cli.core import home_of
from segue.core.errors import SegueError

#: Exit code when the command cannot start for want of credentials or configuration.
EXIT_NEEDS_SETUP = 2


class ProviderChoice(StrEnum):
    spotify = "spotify"
    musicbrainz = "musicbrainz"
    lastfm = "lastfm"
    deezer = "deezer"
    audio_service = "audio-service"
    all = "all"


def register(app: typer.Typer) -> None:
    @app.command()
    def fetch(
        ctx: typer.Context,
        provider: ProviderChoice = typer.Option(
            ProviderChoice.all,
            "--provider",
            "-p",
            help="Which source to ask (all: every one configured, in the order spotify, "
            "musicbrainz, lastfm, deezer, audio-service; MusicBrainz and Deezer join it when "
            "named in SEGUE_OPEN_SOURCES).",
        ),
        limit: int | None = typer.Option(
            None,
            "--limit",
            "-n",
            min=0,
            help="Ask about at most N tracks (or artists) per source and kind.",
        ),
        credentials: Path | None = typer.Option(
            None, "--credentials", help="A Spotify.yaml with 'Client_id:' and 'client_secret:'."
        ),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    ) -> None:
        """Fill in missing track facts, artist genres and audio features from the network.

        Asks only for what the catalog still lacks, writes each batch at once, and can be
        stopped and run again at any time. Failed batches go to fetch-errors.log in the logs
        folder. Exit code 0: done; 1: some batches failed or a source stopped early (run again
        to resume); 2: credentials or settings are missing; 130: stopped by Ctrl+C (what was
        fetched before it is kept; run again to resume).
        """
        from segue.catalog.fetch import FetchInterrupted, build_providers, run_fetch
        from segue.cli import EXIT_INTERRUPTED, interrupted_message
        from segue.providers.base import ProviderUnavailable
        from segue.providers.credentials import CredentialsError

        home = home_of(ctx)
        try:
            providers, left_out = build_providers(
                provider.value,
                credentials_path=str(credentials) if credentials else None,
                home=home,
            )
        except (CredentialsError, ProviderUnavailable) as exc:
            raise fail(str(exc), EXIT_NEEDS_SETUP) from None
        for line in left_out:
            err.print(f"note: {line}", markup=False)
        path = home.ensure().catalog
        if not path.exists():
            raise fail(
                f"no catalog at {path}: ingest playlists first (`segue ingest`)", EXIT_NEEDS_SETUP
            )
        try:
            report = run_fetch(
                path, providers, limit=limit, progress=not quiet, console=err, home=home
            )
        except SegueError as exc:
            raise fail(str(exc)) from None
        except FetchInterrupted as stop:
            report = stop.report
        finally:
            for p in providers:
                p.close()
        for line in report.summary_lines():
            out.print(line, markup=False)
        if report.interrupted:
            info(
                interrupted_message(
                    f"{report.kept:,} answer(s) fetched before it are kept in the catalog; "
                    "run `segue fetch` again to resume (only what is still missing is asked)"
                )
            )
            raise typer.Exit(EXIT_INTERRUPTED)
        if not report.complete:
            raise typer.Exit(1)

    @app.command("import-playlist")
    def import_playlist_cmd(
        ctx: typer.Context,
        ref: str = typer.Argument(..., help="A Spotify playlist link, URI or id."),
        name: str | None = typer.Option(None, "--name", help="Name to show instead of Spotify's."),
        credentials: Path | None = typer.Option(
            None, "--credentials", help="A Spotify.yaml with 'Client_id:' and 'client_secret:'."
        ),
    ) -> None:
        """Add the tracks of a Spotify playlist to the catalog and list them."""
        from segue.catalog import Catalog
        from segue.catalog.fetch import import_playlist
        from segue.core.ids import Kind, parse
        from segue.providers.credentials import CredentialsError
        from segue.providers.spotify import SpotifyProvider

        try:
            parse(ref, Kind.PLAYLIST)
        except ValueError as exc:
            raise fail(str(exc), EXIT_NEEDS_SETUP) from None
        home = home_of(ctx)
        try:
            provider = SpotifyProvider.from_env(
                str(credentials) if credentials else None, home=home
            )
        except CredentialsError as exc:
            raise fail(str(exc), EXIT_NEEDS_SETUP) from None
        try:
            with Catalog.open(home.ensure().catalog) as catalog:
                report = import_playlist(catalog, ref, provider=provider, home=home)
                rows = {r["track_id"]: r for r in catalog.track_rows(report.track_ids)}
        except SegueError as exc:
            raise fail(str(exc)) from None
        finally:
            provider.close()
        title = name or report.name or ref
        unique = list(dict.fromkeys(report.track_ids))
        out.print(
            f"{title}: {len(report.track_ids)} track(s), {len(unique)} distinct, "
            f"{report.added} new to the catalog",
            markup=False,
        )
        for tid in unique:
            row = rows.get(tid, {})
            artists = ", ".join(row.get("artists") or []) or "?"
            year = f" ({row['year']})" if row.get("year") else ""
            out.print(
                f"spotify:track:{tid}  {artists} - {row.get('name') or '?'}{year}", markup=False
            )
