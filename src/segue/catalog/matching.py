"""Matching catalog tracks and artists to another service's, and remembering how each was matched.

A catalog track is matched by **ISRC** when one is known for it (learnt from an earlier match:
the catalog itself has none from the MPD), else by **normalised artist + title**, plus
**duration** when both sides know it. Names are compared after :func:`normalise_title` /
:func:`normalise_artist`: accents folded, case folded, featured artists and remaster/version
notes dropped ("Song (feat. X) - 2011 Remaster" and "Song" are one recording; a remix, a live
or an acoustic take is not). Similarity is RapidFuzz's normalised Indel ratio; a candidate is
accepted only at :data:`THRESHOLD` confidence or above.

What was matched how (method, confidence, the other service's id, the ISRC learnt) is kept in
the catalog's ``source_matches`` table, created on first use (:func:`store_matches`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from rapidfuzz import fuzz

if TYPE_CHECKING:
    from segue.catalog import Catalog

#: Lowest confidence (0-1) at which a name match is accepted.
THRESHOLD = 0.85

MatchMethod = Literal["isrc", "name", "name+duration"]

_FEAT = r"(?:feat\.?|ft\.?|featuring|with|avec|con)"
# "(feat. X)", "[ft. X]", "(with X)" anywhere; "feat. X" to the end of the string.
_BRACKETED_FEAT = re.compile(rf"[\(\[]\s*{_FEAT}\s[^\)\]]*[\)\]]", re.IGNORECASE)
_TRAILING_FEAT = re.compile(rf"\s{_FEAT}\s.*$", re.IGNORECASE)
# Notes that do not change the recording: remasters, edits of the same take, formats.
_SAME_RECORDING = (
    r"(?:\d{4}\s+)?(?:digital(?:ly)?\s+)?remaster(?:ed)?(?:\s+\d{4})?(?:\s+version)?"
    r"|(?:single|album|lp|original|radio|mono|stereo)\s+(?:version|edit|mix)"
    r"|radio\s+edit|mono|stereo|explicit|clean|bonus\s+track|deluxe(?:\s+edition)?"
)
_BRACKETED_NOTE = re.compile(rf"[\(\[]\s*(?:{_SAME_RECORDING})\s*[\)\]]", re.IGNORECASE)
_DASH_NOTE = re.compile(rf"\s[-–—]\s*(?:{_SAME_RECORDING})\s*$", re.IGNORECASE)
_PUNCT = re.compile(r"[^\w\s]")
_ARTIST_SPLIT = re.compile(rf"\s*(?:,|;|\s&\s|\sx\s|\s{_FEAT}\s|\s/\s)\s*", re.IGNORECASE)


#: Letters NFKD does not decompose.
_LETTERS = str.maketrans({"ø": "o", "Ø": "O", "ß": "ss", "æ": "ae", "Æ": "AE", "œ": "oe", "ł": "l"})


def fold(text: str) -> str:
    """Accents removed (é -> e, ø -> o), case folded, ``&`` as "and", punctuation as spaces."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    bare = bare.translate(_LETTERS)
    bare = bare.casefold().replace("&", " and ")
    return " ".join(_PUNCT.sub(" ", bare).split())


def normalise_title(title: str) -> str:
    """A title without featured artists and remaster/version notes, folded."""
    text = _BRACKETED_FEAT.sub(" ", title)
    text = _BRACKETED_NOTE.sub(" ", text)
    for _ in range(2):  # "Song - Remastered 2009 - Mono"
        text = _DASH_NOTE.sub("", text)
    text = _TRAILING_FEAT.sub("", text)
    return fold(text)


def normalise_artist(name: str) -> str:
    """An artist name folded, without a leading "the"."""
    text = fold(name)
    return text[4:] if text.startswith("the ") else text


def primary_artist(name: str) -> str:
    """The first artist of a credit like "A feat. B", "A, B & C", "A x B"."""
    head = _ARTIST_SPLIT.split(name.strip(), maxsplit=1)[0]
    return head or name


def artist_similarity(a: str, b: str) -> float:
    """0-1: the best of the whole credits and their primary artists compared."""
    whole = fuzz.ratio(normalise_artist(a), normalise_artist(b)) / 100.0
    primary = (
        fuzz.ratio(normalise_artist(primary_artist(a)), normalise_artist(primary_artist(b))) / 100.0
    )
    return max(whole, primary)


def title_similarity(a: str, b: str) -> float:
    return fuzz.ratio(normalise_title(a), normalise_title(b)) / 100.0


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


# -- the catalog's record of matches -----------------------------------------------------------

MATCHES_TABLE = """
CREATE TABLE IF NOT EXISTS source_matches (
    provider VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,          -- 'track' or 'artist'
    id VARCHAR NOT NULL,            -- Spotify id in the catalog
    external_id VARCHAR,            -- the other service's id (NULL: unmatched)
    method VARCHAR NOT NULL,        -- 'isrc', 'name', 'name+duration', 'unmatched'
    confidence REAL,
    isrc VARCHAR,
    matched_at TIMESTAMP DEFAULT current_timestamp,
    PRIMARY KEY (provider, kind, id)
)
"""


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


def _has_table(catalog: Catalog) -> bool:
    return bool(
        catalog.scalar(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'source_matches'"
        )
    )


def store_matches(catalog: Catalog, records: Sequence[MatchRecord]) -> int:
    """Record (or replace) how each id was matched. Creates the table on first use."""
    if not records:
        return 0
    con = catalog.con
    con.execute(MATCHES_TABLE)
    con.executemany(
        """
        INSERT OR REPLACE INTO source_matches
            (provider, kind, id, external_id, method, confidence, isrc, matched_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, current_timestamp)
        """,
        [
            [r.provider, r.kind, r.id, r.external_id, r.method, r.confidence, r.isrc]
            for r in records
        ],
    )
    return len(records)


def known_isrcs(catalog: Catalog, track_ids: Sequence[str]) -> dict[str, str]:
    """ISRCs learnt for ``track_ids`` from any earlier match."""
    if not track_ids or not _has_table(catalog):
        return {}
    rows = catalog.con.execute(
        """
        SELECT id, min(isrc) FROM source_matches
        WHERE kind = 'track' AND isrc IS NOT NULL AND list_contains(?, id) GROUP BY id
        """,
        [list(track_ids)],
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def match_counts(catalog: Catalog) -> dict[str, dict[str, int]]:
    """``{provider: {method: count}}`` over every stored match (and 'unmatched')."""
    if not _has_table(catalog):
        return {}
    out: dict[str, dict[str, int]] = {}
    for provider, method, n in catalog.con.execute(
        "SELECT provider, method, count(*) FROM source_matches GROUP BY ALL ORDER BY ALL"
    ).fetchall():
        out.setdefault(provider, {})[method] = int(n)
    return out


def track_keys(catalog: Catalog, track_ids: Sequence[str]) -> dict[str, TrackKey]:
    """Match keys of the catalog's ``track_ids`` (unknown or nameless ones left out)."""
    isrcs = known_isrcs(catalog, track_ids)
    durations = dict(
        catalog.con.execute(
            "SELECT track_id, duration_ms FROM tracks WHERE list_contains(?, track_id)",
            [list(track_ids)],
        ).fetchall()
    )
    out: dict[str, TrackKey] = {}
    for row in catalog.track_rows(track_ids):
        if not row.get("name") or not row.get("artist"):
            continue
        tid = row["track_id"]
        out[tid] = TrackKey(tid, row["artist"], row["name"], durations.get(tid), isrcs.get(tid))
    return out


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


def name_key(norm_name: str) -> str:
    return NAME_KEY + norm_name


def artist_ref(key: str) -> tuple[str | None, str | None]:
    """``(spotify_id, None)`` or ``(None, normalised_name)`` for an artist key."""
    if key.startswith(NAME_KEY):
        return None, key[len(NAME_KEY) :]
    return key, None


def artists_missing_genres(
    catalog: Catalog, limit: int | None = None, provider: str | None = None
) -> list[str]:
    """Keys of artists without genres, most-played first: their Spotify id, or
    ``name:<normalised name>`` for artists known by name only (feature tables, the demo), so
    sources that match by name can fill those too. With ``provider``, keys it already answered
    'not_found' or 'unavailable' for are left out."""
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be a non-negative int or None, got {limit!r}")
    rows = catalog.con.execute(
        f"""
        WITH k AS (
            SELECT a.artist_key, coalesce(a.artist_id, '{NAME_KEY}' || a.norm_name) AS key
            FROM artists a WHERE a.genres IS NULL AND (a.artist_id IS NOT NULL OR a.norm_name <> '')
        )
        SELECT k.key FROM k
        LEFT JOIN (SELECT t.artist_key, count(*) AS n FROM playlist_tracks r
                   JOIN tracks t USING (track_id) GROUP BY t.artist_key) c USING (artist_key)
        WHERE NOT EXISTS (SELECT 1 FROM fetch_attempts fa WHERE fa.provider = ?
                          AND fa.kind IN ('artist_genres', 'artist_facts', 'artists')
                          AND fa.id = k.key AND fa.status IN ('not_found', 'unavailable'))
        ORDER BY coalesce(c.n, 0) DESC, k.key {"" if limit is None else f"LIMIT {limit}"}
        """,
        [provider or ""],
    ).fetchall()
    return [r[0] for r in rows]


def artist_keys(
    catalog: Catalog, artist_ids: Sequence[str], tracks_each: int = 2
) -> dict[str, ArtistKey]:
    """Match keys of the catalog's artists (Spotify ids or ``name:`` keys) with up to
    ``tracks_each`` tracks each."""
    if not artist_ids:
        return {}
    by_id = [k for k in artist_ids if not k.startswith(NAME_KEY)]
    by_name = [k[len(NAME_KEY) :] for k in artist_ids if k.startswith(NAME_KEY)]
    rows = catalog.con.execute(
        f"""
        WITH a AS (SELECT artist_key, coalesce(artist_id, '{NAME_KEY}' || norm_name) AS artist_id, name
                   FROM artists WHERE list_contains(?, artist_id)
                      OR (artist_id IS NULL AND list_contains(?, norm_name))),
        t AS (
            SELECT a.artist_id, t.track_id,
                   row_number() OVER (PARTITION BY a.artist_id
                                      ORDER BY coalesce(c.n, 0) DESC, t.track_id) AS rk
            FROM a JOIN tracks t USING (artist_key)
            LEFT JOIN (SELECT track_id, count(*) AS n FROM playlist_tracks GROUP BY track_id) c
                   USING (track_id)
        )
        SELECT a.artist_id, a.name, list(t.track_id ORDER BY t.rk) FILTER (WHERE t.rk <= ?)
        FROM a LEFT JOIN t USING (artist_id) GROUP BY a.artist_id, a.name
        """,
        [by_id, by_name, tracks_each],
    ).fetchall()
    wanted = [tid for r in rows for tid in (r[2] or [])]
    keys = track_keys(catalog, wanted)
    out: dict[str, ArtistKey] = {}
    for aid, name, tids in rows:
        if not name:
            continue
        out[aid] = ArtistKey(aid, name, tuple(keys[t] for t in (tids or []) if t in keys))
    return out


def genres_by_source(catalog: Catalog) -> dict[str, int]:
    """Artists with at least one genre, by the source that gave them."""
    return {
        str(source or "unknown"): int(n)
        for source, n in catalog.con.execute(
            "SELECT source, count(*) FROM artists WHERE len(genres) > 0 GROUP BY source ORDER BY source"
        ).fetchall()
    }
