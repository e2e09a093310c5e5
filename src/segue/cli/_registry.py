from __future__ import annotations

import typer


def register_all(app: typer.Typer) -> None:
    """Add every area's commands to ``app`` (each area keeps its commands in its own module)."""
    from segue.cli import (
        account,
        catalog,
        core,
        evaluation,
        fetch,
        recommend,
        serve,
        synth,
        tables,
    )

    core.register(app)
    for area in (catalog, tables, fetch, account, recommend, evaluation, serve, synth):
        area.register(app)
