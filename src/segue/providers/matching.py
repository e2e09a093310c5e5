"""How a track or an artist of the catalog is matched to another service's answer.

A catalog track is matched by **ISRC** when one is known for it (learnt from an earlier match:
the catalog itself has none from the MPD), else by **normalised artist + title**, plus
**duration** when both sides know it. Names are compared after
:func:`~segue.core.text.normalise_recording_title` / :func:`~segue.core.text.normalise_artist`:
accents folded, case folded, featured artists and remaster/version notes dropped ("Song (feat.
X) - 2011 Remaster" and "Song" are one recording; a remix, a live or an acoustic take is not).
Similarity is RapidFuzz's normalised Indel ratio; a candidate is accepted only at
:data:`THRESHOLD` confidence or above.

These are the rules and records only: the catalog reads the keys to match and stores what was
matched how (:mod:`segue.catalog.matching`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from rapidfuzz import fuzz

from segue.core.text import normalise_artist, normalise_recording_title, primary_artist

#: Lowest confidence (0-1) at which a name match is accepted.
THRESHOLD = 0.85

MatchMethod = Literal["isrc", "name", "name+duration"]


def artist_similarity(a: str, b: str) -> float:
    """0-1: the best of the whole credits and their primary artists compared."""
    whole = fuzz.ratio(normalise_artist(a), normalise_artist(b)) / 100.0
    primary = (
        fuzz.ratio(normalise_artist(primary_artist(a)), normalise_artist(primary_artist(b))) / 100.0
    )
    return max(whole, primary)


def title_similarity(a: str, b: str) -> float:
    return fuzz.ratio(normalise_recording_title(a), normalise_recording_title(b)) / 100.0


def duration_agreement(a_ms: int | None, b_ms: int | None) -> float | None:
    """1 within 3 s, falling to 0 at 30 s apart; None when either is unknown."""
    if not a_ms or not b_ms:
        return None
    gap = abs(a_ms - b_ms) / 1000.0
    if gap <= 3:
        return 1.0
    return max(0.0, 1.0 - (gap - 3) / 27.0)


@dataclass(frozen=True, slots=True)
class TrackKey:
    """What the catalog knows of a track to match it: primary artist, title, duration, ISRC."""

    track_id: str
    artist: str
    title: str
    duration_ms: int | None = None
    isrc: str | None = None


@dataclass(frozen=True, slots=True)
class Candidate:
    """One answer of the other service: its id, names, duration and ISRC where given."""

    external_id: str
    artist: str
    title: str
    duration_ms: int | None = None
    isrc: str | None = None
    payload: Any = None


@dataclass(frozen=True, slots=True)
class Match:
    candidate: Candidate
    method: MatchMethod
    confidence: float


def score(key: TrackKey, cand: Candidate) -> tuple[float, MatchMethod]:
    """Confidence (0-1) that ``cand`` is the catalog track ``key``, and how it was judged."""
    if key.isrc and cand.isrc and key.isrc.strip().upper() == cand.isrc.strip().upper():
        return 1.0, "isrc"
    names = 0.55 * title_similarity(key.title, cand.title) + 0.45 * artist_similarity(
        key.artist, cand.artist
    )
    agreement = duration_agreement(key.duration_ms, cand.duration_ms)
    if agreement is None:
        return names, "name"
    return 0.8 * names + 0.2 * agreement, "name+duration"


def best_track(
    key: TrackKey, candidates: Iterable[Candidate], threshold: float = THRESHOLD
) -> Match | None:
    """The best candidate at ``threshold`` or above (ties: the first given), or None."""
    best: Match | None = None
    for cand in candidates:
        confidence, method = score(key, cand)
        if confidence >= threshold and (best is None or confidence > best.confidence):
            best = Match(cand, method, round(confidence, 4))
    return best


def best_artist(
    name: str, candidates: Iterable[tuple[str, str, Any]], threshold: float = THRESHOLD
) -> Match | None:
    """The best of ``(external_id, name, payload)`` candidates for an artist ``name``."""
    best: Match | None = None
    for ext_id, cand_name, payload in candidates:
        confidence = artist_similarity(name, cand_name)
        if confidence >= threshold and (best is None or confidence > best.confidence):
            best = Match(Candidate(ext_id, cand_name, "", payload=payload), "name", confidence)
    return best


@dataclass(frozen=True, slots=True)
class MatchRecord:
    """One row of ``source_matches``: how catalog ``id`` was matched at ``provider``."""

    provider: str
    kind: Literal["track", "artist"]
    id: str
    external_id: str | None
    method: str
    confidence: float | None = None
    isrc: str | None = None


@dataclass(frozen=True, slots=True)
class ArtistKey:
    """An artist to match: its name and its most-played catalog tracks (to pick the right one
    among namesakes, and for sources that know genres only through tracks or albums)."""

    artist_id: str  # the key asked about: a Spotify id or ``name:<normalised name>``
    name: str
    tracks: tuple[TrackKey, ...] = ()

    @property
    def spotify_id(self) -> str | None:
        return None if self.artist_id.startswith(NAME_KEY) else self.artist_id


#: Prefix of the key of an artist known by name only (no Spotify id): ``name:<normalised name>``.
NAME_KEY = "name:"
