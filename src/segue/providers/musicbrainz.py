"""Release dates and artist genres from MusicBrainz (WS/2, JSON), no key needed.

* track facts: ``GET /isrc/{isrc}?inc=artist-credits`` when an ISRC is known for the track,
  else ``GET /recording?query=recording:"…" AND artist:"…"`` (Lucene search); the best recording
  at the matching threshold gives ``first-release-date`` (and its ISRCs are remembered);
* artist facts: ``GET /artist?query=artist:"…"``, then ``GET /artist/{mbid}?inc=genres+tags``:
  the artist's genres (MusicBrainz's curated genre list), most voted first; its tags when it
  has no genre.

MusicBrainz allows one request per second per client and asks for a meaningful User-Agent
(``segue/<version> ( <contact> )``, ``SEGUE_CONTACT``); an excess is answered 503, which the
retry policy backs off from. ``SEGUE_MUSICBRAINZ_BASE`` points at a mirror (whose own limit, if
any, ``SEGUE_MUSICBRAINZ_RATE`` sets, e.g. ``10/1``). Terms: core data is CC0, supplementary
data such as tags CC BY-NC-SA (https://musicbrainz.org/doc/About/Data_License).
"""

from __future__ import annotations

from typing import Any, ClassVar

from segue.core.records import ArtistFacts, TrackFacts
from segue.core.text import normalise_recording_title, primary_artist
from segue.providers.base import FactKind, ProviderError
from segue.providers.matching import (
    ArtistKey,
    Candidate,
    MatchRecord,
    TrackKey,
    best_artist,
    best_track,
)
from segue.providers.open_sources import OpenSourceProvider

PROVIDER = "musicbrainz"
ISRC = "GET /isrc/{isrc}"
RECORDING_SEARCH = "GET /recording?query="
ARTIST_SEARCH = "GET /artist?query="
ARTIST_LOOKUP = "GET /artist/{mbid}?inc=genres+tags"
MAX_GENRES = 6

_LUCENE_SPECIAL = set('+-&|!(){}[]^"~*?:\\/')


def lucene_phrase(text: str) -> str:
    """``text`` as a quoted Lucene phrase, its special characters escaped."""
    return '"' + "".join("\\" + c if c in _LUCENE_SPECIAL else c for c in text) + '"'


def _credit(item: dict[str, Any]) -> str:
    parts = []
    for credit in item.get("artist-credit") or []:
        if isinstance(credit, dict):
            parts.append(str(credit.get("name") or (credit.get("artist") or {}).get("name") or ""))
            parts.append(str(credit.get("joinphrase") or ""))
    return "".join(parts).strip()


def _date(value: Any) -> str | None:
    if isinstance(value, str) and len(value) >= 4 and value[:4].isdigit():
        return value
    return None


def _names_by_count(items: Any) -> list[str]:
    if not isinstance(items, list):
        return []
    pairs = [
        (str(i["name"]).strip().lower(), int(i.get("count") or 0))
        for i in items
        if isinstance(i, dict) and isinstance(i.get("name"), str) and i["name"].strip()
    ]
    pairs.sort(key=lambda p: (-p[1], p[0]))
    return list(dict.fromkeys(name for name, _ in pairs))


class MusicBrainzProvider(OpenSourceProvider):
    """Track release dates and artist genres from MusicBrainz, matched by ISRC or name."""

    name = PROVIDER
    kinds: ClassVar[tuple[FactKind, ...]] = ("track_facts", "artist_facts")
    # Small batches: at one request per second a batch of 5 artists takes 10 s, and each
    # batch is written as soon as it is done.
    batch_sizes: ClassVar[dict[str, int]] = {"track_facts": 5, "artist_facts": 5}
    base_env = "SEGUE_MUSICBRAINZ_BASE"
    default_base = "https://musicbrainz.org/ws/2"
    rate_env = "SEGUE_MUSICBRAINZ_RATE"
    default_rate = (1, 1.0)

    def _recordings(self, label: str, path: str, params: dict[str, str]) -> list[Any]:
        data = self.get(label, path, {**params, "fmt": "json"})
        self.expect(
            isinstance(data, dict) and isinstance(data.get("recordings", []), list),
            label,
            "an object with a 'recordings' list",
        )
        return [r for r in data.get("recordings", []) if isinstance(r, dict) and r.get("id")]

    @staticmethod
    def _candidate(rec: dict[str, Any], isrc: str | None = None) -> Candidate:
        isrcs = [i for i in rec.get("isrcs") or [] if isinstance(i, str)]
        length = rec.get("length")
        return Candidate(
            str(rec["id"]),
            _credit(rec),
            str(rec.get("title") or ""),
            int(length) if isinstance(length, int | float) and length > 0 else None,
            isrc or (isrcs[0] if isrcs else None),
            rec,
        )

    def track_fact(self, key: TrackKey) -> tuple[TrackFacts | None, MatchRecord]:
        candidates: list[Candidate] = []
        if key.isrc:
            try:
                recs = self._recordings(ISRC, f"isrc/{key.isrc}", {"inc": "artist-credits"})
            except ProviderError as exc:
                if exc.status not in (400, 404):
                    raise
                recs = []
            candidates = [self._candidate(r, key.isrc) for r in recs]
        match = best_track(key, candidates)
        if match is None:
            query = (
                f"recording:{lucene_phrase(normalise_recording_title(key.title) or key.title)} AND "
                f"artist:{lucene_phrase(primary_artist(key.artist))}"
            )
            recs = self._recordings(RECORDING_SEARCH, "recording", {"query": query, "limit": "10"})
            match = best_track(key, [self._candidate(r) for r in recs])
        if match is None:
            return None, self.unmatched("track", key.track_id)
        rec = match.candidate.payload
        record = TrackFacts(
            key.track_id, release_date=_date(rec.get("first-release-date")), source=PROVIDER
        )
        return record, MatchRecord(
            PROVIDER,
            "track",
            key.track_id,
            match.candidate.external_id,
            match.method,
            match.confidence,
            match.candidate.isrc,
        )

    def artist_fact(self, key: ArtistKey) -> tuple[ArtistFacts | None, MatchRecord]:
        data = self.get(
            ARTIST_SEARCH,
            "artist",
            {"query": f"artist:{lucene_phrase(key.name)}", "limit": "10", "fmt": "json"},
        )
        self.expect(
            isinstance(data, dict) and isinstance(data.get("artists", []), list),
            ARTIST_SEARCH,
            "an object with an 'artists' list",
        )
        found = [
            (str(a["id"]), str(a.get("name") or ""), a)
            for a in data.get("artists", [])
            if isinstance(a, dict) and a.get("id")
        ]
        match = best_artist(key.name, found)
        if match is None:
            return None, self.unmatched("artist", key.artist_id)
        mbid = match.candidate.external_id
        info = self.get(ARTIST_LOOKUP, f"artist/{mbid}", {"inc": "genres+tags", "fmt": "json"})
        self.expect(isinstance(info, dict), ARTIST_LOOKUP, "an artist object")
        genres = _names_by_count(info.get("genres")) or _names_by_count(info.get("tags"))
        record = ArtistFacts(
            key.spotify_id, key.name, genres=genres[:MAX_GENRES] or None, source=PROVIDER
        )
        return record, MatchRecord(
            PROVIDER, "artist", key.artist_id, mbid, match.method, match.confidence
        )
