"""One version of a song per result: the same song released twice (single and album, a
remaster, a radio edit) counts once.

Two tracks are versions of one song when they share their main artist and their *normalised*
title: case and spacing folded, and a trailing version note dropped - a ``" - ..."`` suffix or
a bracketed part that names a remaster, edit, mix, live or mono/stereo take, a version or a
featured artist ("Song - Remastered 2011", "Song (Radio Edit)", "Song [feat. X]").

The service applies :func:`drop_versions` to every result unless asked to keep versions
(``allow_versions``); the challenge runner does not, since the challenge counts versions as
different tracks.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

#: Words that make a trailing part of a title a version note rather than part of the name.
VERSION_WORDS = (
    r"remaster(?:ed)?|re-?recorded|edit|mix|remix|live|mono|stereo|version|feat\.?|ft\.?"
    r"|featuring|acoustic|demo|single|album|explicit|clean|deluxe|anniversary|bonus"
)
_BRACKETED = re.compile(rf"\s*[(\[][^)\]]*\b(?:{VERSION_WORDS})\b[^)\]]*[)\]]", re.IGNORECASE)
_DASHED = re.compile(rf"\s+-\s+[^-]*\b(?:{VERSION_WORDS})\b.*$", re.IGNORECASE)


def song_title(name: object) -> str:
    """The title a song keeps across its versions: case and spacing folded, version notes off.

    >>> song_title("Here Comes The Sun - Remastered 2009")
    'here comes the sun'
    >>> song_title("Shape of You (feat. Stormzy) [Remix]")
    'shape of you'
    """
    if not isinstance(name, str):
        return ""
    text = _DASHED.sub("", name)
    previous = None
    while previous != text:
        previous, text = text, _BRACKETED.sub("", text)
    folded = " ".join(text.casefold().split())
    # a title that is nothing but a version note stays as it was
    return folded or " ".join(name.casefold().split())


def song_keys(tracks: pd.DataFrame) -> np.ndarray:
    """int64 (n_tracks,): equal for the versions of one song (main artist + :func:`song_title`);
    an untitled track or one without an artist is a song of its own."""
    titles = [song_title(t) for t in tracks["name"].tolist()]
    artist = pd.to_numeric(tracks["artist_key"], errors="coerce").to_numpy(dtype=np.float64)
    keys = pd.DataFrame({"artist": artist, "title": titles})
    alone = (keys["title"] == "").to_numpy() | np.isnan(artist)
    keys.loc[alone, "title"] = [f"\x1e{i}" for i in np.flatnonzero(alone)]
    keys["artist"] = np.nan_to_num(artist, nan=-1.0)
    return keys.groupby(["artist", "title"], sort=False).ngroup().to_numpy().astype(np.int64)


def drop_versions(
    ranked: np.ndarray, scores: np.ndarray, keys: np.ndarray, seeds: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``ranked`` (track indices, best first) and their ``scores`` without a second version of
    any song and without any version of a seed's song; ``keys`` from :func:`song_keys`."""
    ranked = np.asarray(ranked, dtype=np.int64)
    scores = np.asarray(scores)
    if ranked.size == 0:
        return ranked, scores
    song = keys[ranked]
    _, first = np.unique(song, return_index=True)
    keep = np.zeros(ranked.size, dtype=bool)
    keep[first] = True
    if seeds is not None and len(seeds):
        keep &= ~np.isin(song, keys[np.asarray(seeds, dtype=np.int64)])
    return ranked[keep], scores[keep]


__all__ = ["drop_versions", "song_keys", "song_title"]
