"""What a recommendation and an error look like on the wire: the response records, and the
status and body of an exception, the same whether the API computed it in its own process or
a compute worker did (:mod:`segue.wire.pool`).

The track record is the service's own :class:`segue.service.engine.TrackRecord` (a dataclass
that FastAPI and orjson serialise as they are); the records here are the ones the service has
no use for. Messages never carry a server path: :func:`public_text` takes them out.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field

from segue.core.errors import NotFittedError, SegueError
from segue.service.engine import Recommendation, TrackRecord

# An absolute path or a home-relative one, not part of a URL ("https://host/x" has ':' or
# '/' before its slashes): such text in a message would show the server's layout. A path
# starts with a name character after its first slash (so a seed's own "[/]" stays as given)
# and leaves out a colon at its end ("no snapshot in /srv/x: run ...").
_PATH = re.compile(r"(?<![\w:/.\-])(?:~|[A-Za-z]:)?[/\\](?=[\w.~\-])[^\s'\"`,;)]*[^\s'\"`,;):]")


def public_text(text: str) -> str:
    """``text`` without server paths, for a response body."""
    return _PATH.sub("<path>", text)


def public_message(exc: BaseException) -> str:
    """The exception's message without server paths, for a response body."""
    return public_text(str(exc)) or type(exc).__name__


class InputOut(BaseModel):
    """How one input was read."""

    input: str
    found: str | None = Field(
        description="What the input was taken as (e.g. \"the track 'Yellow' by Coldplay\")."
    )
    tracks: int = Field(description="Seed tracks it gave.")
    reason: str | None = Field(description="Why it gave no seed track.")
    suggestions: list[str] = Field(description="Near names in the catalog, for a name not found.")
    total: int | None = Field(
        default=None, description="Tracks a playlist input holds, known to the catalog or not."
    )


class RecommendResponse(BaseModel):
    model: str
    title: str | None
    tracks: list[TrackRecord]
    seeds: list[TrackRecord] = Field(
        description="The seed tracks found in the catalog (at most 50)."
    )
    unknown: list[str] = Field(description="Inputs that matched nothing in the catalog.")
    messages: list[str]
    inputs: list[InputOut] = Field(description="How each input was read, in order.")

    @staticmethod
    def plain(rec: Recommendation) -> dict[str, Any]:
        """The JSON object of ``rec`` for orjson, built directly: the recommend path answers
        with it without validating through this model again (its schema is what OpenAPI
        shows). The track records go as they are: orjson writes a dataclass's fields."""
        return {
            "model": rec.model,
            "title": rec.title,
            "tracks": rec.tracks,
            "seeds": rec.seeds,
            "unknown": rec.unknown,
            # the service's notes can quote errors that name files (a busy catalog): no server
            # paths in a response
            "messages": [public_text(m) for m in rec.messages],
            "inputs": [i.to_dict() for i in rec.inputs],
        }


class ErrorOut(BaseModel):
    detail: str
    errors: list[dict[str, str]] | None = None


#: Status and fixed message per exception class (None: the exception's own message, without
#: server paths).
ERROR_REPLIES: dict[type[Exception], tuple[int, str | None]] = {
    ValueError: (422, None),
    NotFittedError: (503, None),
    SegueError: (500, None),
    Exception: (500, "internal server error"),
}


def error_reply(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """HTTP status and JSON body for an exception from the service: the nearest class in its
    MRO decides (as for the app's exception handlers), so the answer is the same whether the
    request was computed in this process or in a compute worker (``segue.wire.pool``)."""
    status, message = next(
        (ERROR_REPLIES[cls] for cls in type(exc).__mro__ if cls in ERROR_REPLIES),
        ERROR_REPLIES[Exception],
    )
    return status, {"detail": message if message is not None else public_message(exc)}


__all__ = [
    "ERROR_REPLIES",
    "ErrorOut",
    "InputOut",
    "RecommendResponse",
    "error_reply",
    "public_message",
    "public_text",
]
