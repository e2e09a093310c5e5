from __future__ import annotations

import typer


def register_all(app: typer.Typer) -> None:
    from segue.cli import catalog, core

    core.register(app)
    catalog.register(app)
