"""Global options: --home, --debug, --version. The callback builds the one :class:`Home` of the
command (``ctx.obj``); commands take it with :func:`home_of`."""

from __future__ import annotations

from pathlib import Path

import typer

from segue.core.home import Home


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("segue")
    except PackageNotFoundError:  # run from a source tree that is not installed
        from segue import __version__

        return __version__


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"segue {_version()}")
        raise typer.Exit()


def home_of(ctx: typer.Context) -> Home:
    """The home of this command, as the callback built it from ``--home`` / ``SEGUE_HOME``."""
    obj = ctx.find_root().obj
    return obj if isinstance(obj, Home) else Home.resolve(None)


def register(app: typer.Typer) -> None:
    @app.callback()
    def _root(
        ctx: typer.Context,
        home: Path | None = typer.Option(
            None,
            "--home",
            help="Folder of the catalog and built artifacts (else $SEGUE_HOME, else a platform default).",
        ),
        debug: bool = typer.Option(
            False,
            "--debug",
            help="Show the full traceback of an unexpected error (also: SEGUE_DEBUG=1).",
        ),
        version: bool = typer.Option(
            False,
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print segue's version and exit.",
        ),
    ) -> None:
        from segue.cli import set_debug
        from segue.cli._console import show_library_messages

        set_debug(debug)
        ctx.call_on_close(show_library_messages())
        ctx.obj = Home.resolve(home)
