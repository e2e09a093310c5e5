"""Consoles for the CLI: results to stdout, progress and errors to stderr.

User text is never markup: both consoles have Rich markup *off*, so ``out.print(f"... {path}")``
prints a path like ``nope[/].json`` or a name like ``[bold red]x`` exactly as given (markup on,
Rich would raise ``MarkupError`` on the first and restyle the terminal with the second). Colour
comes only from :class:`rich.text.Text` built here (:func:`error`, :func:`warn`, :func:`fail`)
or by a caller that passes ``markup=True`` on a string it wrote itself with
:func:`rich.markup.escape` around every user part. Table cells go through :func:`segue.wire.export.cell`.

``stderr=True`` makes rich look up ``sys.stderr`` at write time, so test runners that swap the
streams see the output.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import typer
from rich.console import Console
from rich.text import Text

from segue.core.redact import redact

err = Console(stderr=True, soft_wrap=True, highlight=False, markup=False, emoji=False)
out = Console(soft_wrap=True, highlight=False, markup=False, emoji=False)


def labelled(label: str, style: str, message: str) -> Text:
    """``label`` in ``style``, then ``message`` literally with credentials redacted."""
    return Text.assemble((label, style), " ", redact(message))


def error(message: str) -> None:
    """Print ``error: message`` on stderr (message literal, credentials redacted)."""
    err.print(labelled("error:", "red", message))


def warn(message: str) -> None:
    """Print ``warning: message`` on stderr (message literal, credentials redacted)."""
    err.print(labelled("warning:", "yellow", message))


def info(message: str) -> None:
    """Print ``message`` on stderr as it is (a notice, never markup)."""
    err.print(Text(message))


class LibraryMessages(logging.Handler):
    """Shows what segue's library modules log (they never print) on stderr, as the CLI's own
    notices: a warning with the ``warning:`` label, anything else as it is (an error logged by
    the API server comes with its traceback)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            if record.levelno == logging.WARNING:
                warn(text)
            else:
                info(text)
        except Exception:
            self.handleError(record)


def show_library_messages() -> Callable[[], None]:
    """Show the ``segue`` loggers' records of level INFO and up through :class:`LibraryMessages`
    while a command runs; returns what undoes it (called when the command ends)."""
    logger = logging.getLogger("segue")
    if any(isinstance(h, LibraryMessages) for h in logger.handlers):
        return lambda: None  # a command run from inside another: the outer one shows them
    handler, level = LibraryMessages(), logger.level
    logger.addHandler(handler)
    if level == logging.NOTSET or level > logging.INFO:
        logger.setLevel(logging.INFO)

    def undo() -> None:
        logger.removeHandler(handler)
        logger.setLevel(level)

    return undo


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` on one stderr line and return the Exit to raise."""
    error(message)
    return typer.Exit(code)
