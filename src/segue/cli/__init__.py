"""The ``segue`` command. Each area registers its commands from its own module.

No traceback reaches a user: commands turn the errors they expect into one-line messages, and
:class:`SafeGroup` is the net under all of them. Ctrl+C anywhere ends with one line and exit
status 130; any other unexpected exception with one ``error:`` line and status 1, the full
traceback only under ``--debug`` or ``SEGUE_DEBUG=1``.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import traceback
from typing import Any

import typer
from typer.core import TyperGroup

#: Exit status after Ctrl+C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130
DEBUG_ENV = "SEGUE_DEBUG"

_state = {"debug": False, "interrupted": False}


def set_debug(on: bool) -> None:
    """Show full tracebacks of unexpected errors (the ``--debug`` option)."""
    _state["debug"] = on


def debugging() -> bool:
    return _state["debug"] or os.environ.get(DEBUG_ENV, "").strip().lower() in {
        "1",
        "true",
        "yes",
        "on",
    }


def interrupted_message(detail: str = "") -> str:
    return "interrupted (Ctrl+C)" + (f": {detail}" if detail else "; run the command again")


def _say_interrupted() -> None:
    from segue.cli._console import info

    info(interrupted_message())


def _unexpected(exc: BaseException) -> None:
    from segue.cli._console import error

    if debugging():
        traceback.print_exception(exc, file=sys.stderr)
    text = str(exc).strip().splitlines()
    detail = f": {text[0]}" if text else ""
    hint = "" if debugging() else f" (run with --debug or {DEBUG_ENV}=1 for the details)"
    error(f"unexpected {type(exc).__name__}{detail}{hint}")


def _passed_through() -> tuple[type[BaseException], ...]:
    """Exits and usage errors: already what the user should see. typer raises click's own
    classes in older releases and its vendored copies in newer ones; either way its usage error
    (``typer.BadParameter``) derives from the ``ClickException`` that all of them share."""
    usage = [k for k in typer.BadParameter.__mro__ if k.__name__ == "ClickException"]
    return (typer.Exit, typer.Abort, *usage)


_PASSED_THROUGH = _passed_through()


class SafeGroup(TyperGroup):
    """Runs every command under the net described in the module docstring."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except _PASSED_THROUGH:
            raise
        except KeyboardInterrupt:
            _say_interrupted()
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except OSError as exc:
            if exc.errno == errno.EPIPE:  # output piped into e.g. `head`: typer ends quietly
                raise
            return self._fail(exc)
        except Exception as exc:
            return self._fail(exc)

    @staticmethod
    def _fail(exc: Exception) -> Any:
        if _state["interrupted"]:
            # A library turned Ctrl+C into its own error on the way (DuckDB does).
            _say_interrupted()
            raise typer.Exit(EXIT_INTERRUPTED) from None
        from segue.core.errors import SegueError

        if isinstance(exc, SegueError):  # its message is meant for the person: no "unexpected"
            from segue.cli._console import error

            if debugging():
                traceback.print_exception(exc, file=sys.stderr)
            error(str(exc))
        else:
            _unexpected(exc)
        raise typer.Exit(1) from None


app = typer.Typer(
    name="segue",
    help="Continue a playlist with tracks that fit.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=SafeGroup,
)


def _on_sigint(signum: int, frame: Any) -> None:
    _state["interrupted"] = True
    signal.default_int_handler(signum, frame)


def main() -> None:
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_sigint)
    try:
        from segue.cli import _registry

        _registry.register_all(app)
        app()
    except KeyboardInterrupt:  # before or after a command ran
        _say_interrupted()
        sys.exit(EXIT_INTERRUPTED)
