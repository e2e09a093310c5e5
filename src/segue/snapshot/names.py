"""The snapshot's names as people type them: normalised once, saved with the snapshot, mapped.

:class:`NameColumns` holds what looking names up needs (``segue.service.names``): each track's
normalised title and its search text (``" title artist "``, padded so that ``" word "`` finds
whole words only), and the normalised names of the artists and the playlists. They are a pure
function of the snapshot's tables (:func:`name_columns`), computed when the snapshot is saved
and written beside it as Arrow IPC files (``names/tracks.arrow``, ``names/artists.arrow``,
``names/playlists.arrow``), so every process that loads the snapshot maps them rather than
building its own copy (about 0.36 GB per process at the full MPD's 2.3M tracks).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa

from segue.core import mapped
from segue.core.text import normalise_typed_column

FOLDER = "names"


@dataclass(frozen=True)
class NameColumns:
    """Normalised names of one snapshot (:func:`segue.core.text.normalise_typed`)."""

    #: normalised title of each track, in track order
    titles: pd.Series
    #: ``" title artist "`` of each track (Arrow large strings, for substring search)
    text: pa.Array
    #: normalised name of each artist, indexed by ``artist_key``
    artists: pd.Series
    #: normalised name of each playlist, in playlist order
    playlists: pd.Series


def name_columns(
    tracks: pd.DataFrame, artists: pd.DataFrame, playlists: pd.DataFrame
) -> NameColumns:
    """The :class:`NameColumns` of a snapshot's tables (``artists`` indexed by key)."""
    titles = normalise_typed_column(tracks["name"])
    artist_names = normalise_typed_column(tracks["artist_name"])
    text = pa.array((" " + titles + " " + artist_names + " ").to_numpy(), type=pa.large_string())
    return NameColumns(
        titles=titles,
        text=text,
        artists=normalise_typed_column(artists["name"]),
        playlists=normalise_typed_column(playlists["name"]),
    )


def save(directory: Path, names: NameColumns) -> None:
    """Write ``names`` into ``directory`` (a folder of the snapshot being saved)."""
    directory.mkdir(parents=True, exist_ok=True)
    mapped.write_arrow(
        directory / "tracks.arrow",
        pa.table({"title": pa.array(names.titles, type=pa.large_string()), "text": names.text}),
    )
    mapped.write_arrow(
        directory / "artists.arrow",
        pa.table(
            {
                "artist_key": pa.array(names.artists.index.to_numpy(), type=pa.int64()),
                "name": pa.array(names.artists, type=pa.large_string()),
            }
        ),
    )
    mapped.write_arrow(
        directory / "playlists.arrow",
        pa.table({"name": pa.array(names.playlists, type=pa.large_string())}),
    )


def load(directory: Path, n_tracks: int, n_artists: int, n_playlists: int) -> NameColumns | None:
    """The names saved in ``directory``, mapped; None when the folder is missing (a snapshot
    saved before names were) or does not fit the snapshot's tables."""
    if not (directory / "tracks.arrow").exists():
        return None
    tracks = mapped.read_arrow(directory / "tracks.arrow")
    artists = mapped.read_arrow(directory / "artists.arrow")
    playlists = mapped.read_arrow(directory / "playlists.arrow")
    if (tracks.num_rows, artists.num_rows, playlists.num_rows) != (
        n_tracks,
        n_artists,
        n_playlists,
    ):
        return None
    text = tracks["text"]
    return NameColumns(
        titles=tracks.select(["title"]).to_pandas(split_blocks=True)["title"],
        text=text.chunk(0) if text.num_chunks == 1 else text.combine_chunks(),
        artists=artists.to_pandas(split_blocks=True).set_index("artist_key")["name"],
        playlists=playlists.to_pandas(split_blocks=True)["name"],
    )


__all__ = ["FOLDER", "NameColumns", "load", "name_columns", "save"]
