"""The ``segue`` command. Each area registers its commands from its own module."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="segue",
    help="Continue a playlist with tracks that fit.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def main() -> None:
    from segue.cli import _registry

    _registry.register_all(app)
    app()
