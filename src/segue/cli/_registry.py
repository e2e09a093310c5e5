from __future__ import annotations

import typer


def register_all(app: typer.Typer) -> None:
    from segue.cli import catalog, core, recommend

    core.register(app)
    catalog.register(app)
    recommend.register(app)
    from segue.cli import evaluation

    evaluation.register(app)
    from segue.cli import serve

    serve.register(app)
    from segue.cli import synth

    synth.register(app)
    from segue.cli import fetch

    fetch.register(app)
