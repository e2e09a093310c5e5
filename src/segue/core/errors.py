"""Project exceptions. Each carries a message meant for the person at the keyboard."""

from __future__ import annotations


class SegueError(Exception):
    """Base class: a problem segue can explain in one line."""


class InputFileError(SegueError, ValueError):
    """An input file is unreadable or malformed.

    ``path`` names the file, ``position`` says where (a byte offset, a line:column pair or a
    JSON path), ``problem`` says what was expected and what was found.
    """

    def __init__(self, path: str, position: str | None, problem: str) -> None:
        self.path = path
        self.position = position
        self.problem = problem
        where = f" at {position}" if position else ""
        super().__init__(f"{path}{where}: {problem}")


class HomeError(SegueError):
    """segue's home folder cannot be made or used (a file, or not writable)."""


class CatalogError(SegueError):
    """The catalog cannot be opened or used as asked."""


class NotFittedError(SegueError):
    """A model or artifact was used before it was built."""
