"""Consoles for the CLI: results to stdout, progress and errors to stderr.

``stderr=True`` makes rich look up ``sys.stderr`` at write time, so test runners that swap the
streams see the output.
"""

from __future__ import annotations

import typer
from rich.console import Console

err = Console(stderr=True, soft_wrap=True, highlight=False)
out = Console(soft_wrap=True, highlight=False)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` on one stderr line and return the Exit to raise."""
    err.print(f"[red]error:[/red] {message}", markup=True)
    return typer.Exit(code)
