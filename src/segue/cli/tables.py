"""``segue import-features``: track and artist facts from CSV/Parquet tables into the catalog."""

from __future__ import annotations

from pathlib import Path

import typer

from segue.cli._console import err, fail, labelled, out
from segue.cli.core import home_of
from segue.core.errors import SegueError
from segue.wire.export import cell


def register(app: typer.Typer) -> None:
    @app.command("import-features")
    def import_features(
        ctx: typer.Context,
        files: list[Path] = typer.Argument(
            ..., help="Feature tables: .csv, .csv.gz or .parquet with a Spotify id column."
        ),
        source: str | None = typer.Option(
            None, "--source", help="Name recorded as the facts' source (default: the file name)."
        ),
        skip_bad: bool = typer.Option(
            False, "--skip-bad", help="Carry on past files that cannot be imported."
        ),
    ) -> None:
        """Import audio features, release dates, popularity and genres from tables (each file all or nothing)."""
        from segue.catalog import Catalog
        from segue.catalog.tables import import_feature_table

        failed = 0
        done = 0
        try:
            with Catalog.open(home_of(ctx).ensure().catalog) as catalog:
                for path in files:
                    try:
                        with err.status(cell(f"importing {path.name}")):
                            report = import_feature_table(catalog, path, source=source)
                    except (SegueError, ValueError) as exc:
                        if not skip_bad:
                            raise fail(f"{exc} (nothing from this file was stored)") from None
                        err.print(labelled("skipped:", "red", str(exc)))
                        failed += 1
                        continue
                    done += 1
                    out.print(report.summary())
                    for note in report.table.notes:
                        out.print(f"  note: {note}")
                facts = catalog.fact_counts()
        except SegueError as exc:
            raise fail(str(exc)) from None
        out.print(
            f"catalog: {facts['tracks_with_audio_features']:,} tracks with audio features, "
            f"{facts['tracks_with_release_date']:,} with a release date, "
            f"{facts['artists_with_genres']:,} artists with genres"
        )
        if failed:
            err.print(f"{failed} file(s) could not be imported")
            raise typer.Exit(1 if not done else 0)
