"""Names people type, looked up in a snapshot: catalog playlists, artists and tracks.

Many names are looked up together (:meth:`NameIndex.lookup`): one pass over each table finds
every exact name (a catalog playlist, an artist, a track title), and a word is searched once
however many names hold it. What no name matches exactly is searched word by word: a track
qualifies when each word of the name is a whole word of its title or artist, and it is used
only when its similarity to the name (rapidfuzz's ``WRatio``, 0-100) reaches
:data:`MATCH_SCORE`, so "not a track" finds nothing rather than "Nothing Like Us - Bonus
Track". A name left unmatched gets near names as suggestions ("Taylor Swfit" -> "Taylor
Swift").

Names are compared normalised (:func:`~segue.core.text.normalise_typed`): case folded, punctuation as spaces.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from rapidfuzz import fuzz, process

from segue.core.text import normalise_typed_column

if TYPE_CHECKING:
    from segue.snapshot.arrays import Snapshot

#: Least similarity (0-100, rapidfuzz ``WRatio``) for a word-search hit to be used as a name.
MATCH_SCORE = 80.0
#: Least similarity (0-100, rapidfuzz ``ratio``) for a near name to be suggested.
SUGGEST_SCORE = 80.0
#: Near names suggested per unmatched name.
SUGGESTIONS = 3
#: Word-search hits (most played first) scored per name.
CANDIDATES = 200
#: Most played track titles near names are suggested from (besides every artist).
SUGGEST_TRACKS = 200_000

_lock = threading.Lock()


@dataclass
class NameMatch:
    """What a name was taken as: ``kind`` is 'playlist', 'artist' or 'track'."""

    kind: str
    indices: np.ndarray
    label: str
    score: float = 100.0


@dataclass
class NoMatch:
    """Why a name matched nothing, and near names."""

    reason: str
    suggestions: list[str] = field(default_factory=list)


class NameIndex:
    """Normalised names of one snapshot (built once per snapshot, :meth:`of`)."""

    def __init__(self, snap: Snapshot) -> None:
        tracks = snap.tracks
        self.snap = snap
        # the snapshot's own columns, read one row per label: a copy as Python strings would
        # cost hundreds of MB per process at full MPD scale
        self._titles = tracks["name"].array
        self._artist_names = tracks["artist_name"].array
        # normalised with the snapshot and saved with it (mapped, shared between processes)
        names = snap.names()
        self.track_names = names.titles
        # " title artist ", padded with spaces, so " word " finds whole words only; kept as
        # Arrow only: its kernels search several times faster than pandas on object strings,
        # let other threads run meanwhile, and it holds the text in one buffer
        self.track_text = names.text
        self.counts = tracks["playlist_count"].to_numpy()
        self.artist_keys = tracks["artist_key"].to_numpy()
        self.artists = names.artists
        self.artist_display = snap.artists["name"].fillna("").astype(str)
        self.playlists = names.playlists
        # near names come from every artist and the most played track titles
        top = np.argsort(-self.counts, kind="stable")[:SUGGEST_TRACKS]
        self.suggest_choices = pd.unique(
            np.concatenate(
                [
                    snap.artists["name"].dropna().astype(str).to_numpy(),
                    tracks["name"].iloc[top].dropna().astype(str).to_numpy(),
                ]
            )
        )
        self.suggest_keys = normalise_typed_column(pd.Series(self.suggest_choices)).tolist()

    @classmethod
    def of(cls, snap: Snapshot) -> NameIndex:
        """The index of ``snap``, built on first use and kept with it."""
        cached = getattr(snap, "_name_index", None)
        if cached is None:
            with _lock:
                cached = getattr(snap, "_name_index", None)
                if cached is None:
                    cached = cls(snap)
                    snap._name_index = cached  # type: ignore[attr-defined]
        return cached  # type: ignore[no-any-return]

    # lookups ------------------------------------------------------------------------------
    def lookup(
        self, names: list[str], *, deadline: float | None = None
    ) -> dict[str, NameMatch | NoMatch]:
        """Each of ``names`` (normalised, distinct) -> its match, or why there is none.

        Past ``deadline`` (``time.monotonic()``), names not yet searched word by word are
        answered with a :class:`NoMatch` saying the time ran out.
        """
        out: dict[str, NameMatch | NoMatch] = {}
        wanted = [n for n in names if n]
        queries = set(wanted)
        # one pass per table for every exact name
        pl_rows = np.flatnonzero(self.playlists.isin(queries).to_numpy())
        pl_names = self.playlists.iloc[pl_rows].to_numpy()  # the rows only, not the column
        for row, name in zip(pl_rows.tolist(), pl_names.tolist(), strict=True):
            if name in out:
                continue
            idx = self.snap.interactions[row].indices
            label = f"the catalog playlist {self.snap.playlists['name'].iloc[row]!r}"
            out[name] = NameMatch("playlist", np.asarray(idx, dtype=np.int64), label)
        rest = queries - set(out)
        hit_art = self.artists[self.artists.isin(rest)]
        for name, keys in hit_art.groupby(hit_art, sort=False).groups.items():
            idx = np.flatnonzero(np.isin(self.artist_keys, np.asarray(keys)))
            label = f"the artist {self.artist_display.loc[keys[0]]}"
            out[str(name)] = NameMatch("artist", idx.astype(np.int64), label)
        rest -= set(out)
        hit_tr = self.track_names[self.track_names.isin(rest)]
        for name, rows in hit_tr.groupby(hit_tr, sort=False).groups.items():
            rows_a = np.asarray(rows, dtype=np.int64)
            best = int(rows_a[np.lexsort((rows_a, -self.counts[rows_a]))][0])
            out[str(name)] = NameMatch("track", np.asarray([best]), self._track_label(best))
        words: dict[str, np.ndarray] = {}  # each word searched once for every name
        for name in (n for n in wanted if n not in out):
            if deadline is not None and time.monotonic() > deadline:
                out[name] = NoMatch("not looked up: the time for looking names up ran out")
                continue
            out[name] = self._search(name, words) or NoMatch(
                "no track, artist or playlist of that name in the catalog",
                self.suggest(name),
            )
        return out

    def _track_label(self, row: int) -> str:
        title, artist = _text(self._titles[row]), _text(self._artist_names[row])
        return f"the track {title!r}" + (f" by {artist}" if artist else "")

    def _search(self, name: str, words: dict[str, np.ndarray]) -> NameMatch | None:
        mask = np.ones(len(self.track_text), dtype=bool)
        for w in name.split():
            if w not in words:
                found = pc.match_substring(self.track_text, f" {w} ")
                words[w] = found.to_numpy(zero_copy_only=False)
            mask &= words[w]
        hits = np.flatnonzero(mask)
        if hits.size == 0:
            return None
        hits = hits[np.lexsort((hits, -self.counts[hits]))][:CANDIDATES]
        titles = self.track_names.iloc[hits].to_numpy()
        texts = self.track_text.take(pa.array(hits)).to_pylist()
        scores = [
            max(fuzz.WRatio(name, t), fuzz.WRatio(name, x.strip()))
            for t, x in zip(titles, texts, strict=True)
        ]
        best = int(np.argmax(scores))  # first of the best: the most played
        if scores[best] < MATCH_SCORE:
            return None
        row = int(hits[best])
        return NameMatch("track", np.asarray([row]), self._track_label(row), float(scores[best]))

    def suggest(self, name: str, limit: int = SUGGESTIONS) -> list[str]:
        """Artist and track names near ``name`` (normalised), best first."""
        found = process.extract(
            name,
            self.suggest_keys,
            scorer=fuzz.ratio,
            limit=limit * 3,
            score_cutoff=SUGGEST_SCORE,
        )
        out: list[str] = []
        for _, _, i in found:
            label = str(self.suggest_choices[i])
            if label.casefold() not in {o.casefold() for o in out}:
                out.append(label)
        return out[:limit]


def _text(value: object) -> str:
    """A name as text: ``""`` when it is missing."""
    return "" if value is None or value is pd.NA or value != value else str(value)


__all__ = ["MATCH_SCORE", "NameIndex", "NameMatch", "NoMatch"]
