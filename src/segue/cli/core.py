"""Global options: --home."""

from __future__ import annotations

from pathlib import Path

import typer

from segue import config


def register(app: typer.Typer) -> None:
    @app.callback()
    def _root(
        home: Path | None = typer.Option(
            None,
            "--home",
            help="Folder of the catalog and built artifacts (else $SEGUE_HOME, else a platform default).",
        ),
    ) -> None:
        if home is not None:
            config.set_home(home)
