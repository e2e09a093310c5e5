"""Release dates, ISRCs and album genres from Deezer's public catalogue API (no key needed).

* track facts: ``GET /track/isrc:{isrc}`` when an ISRC is known for the track, else
  ``GET /search?q=artist:"…" track:"…"``, the best hit at the matching threshold (name and
  duration), then ``GET /track/{id}`` for its release date, ISRC and BPM;
* artist facts: Deezer gives genres to albums, not artists: the album of the artist's
  most-played catalog track (matched as above) is looked up, ``GET /album/{id}``, and its genres
  (``genres.data[].name``) become the artist's.

Deezer allows 50 requests per 5 seconds (``SEGUE_DEEZER_RATE``). Its errors arrive inside HTTP
200 answers as ``{"error": {"type", "message", "code"}}``: code 4 is the quota (backed off like a
429), 700 a busy service (retried), 800 "no data" (not found). ``SEGUE_DEEZER_BASE`` points
elsewhere (tests). Terms: https://developers.deezer.com/guidelines (no key for catalogue
calls; attribution; not for building a competing service).
"""

from __future__ import annotations

from typing import Any, ClassVar

from segue.core.records import ArtistFacts, TrackFacts
from segue.core.text import normalise_recording_title, primary_artist
from segue.providers.base import FactKind, ProviderError
from segue.providers.matching import (
    ArtistKey,
    Candidate,
    Match,
    MatchRecord,
    TrackKey,
    best_track,
)
from segue.providers.open_sources import OpenSourceProvider

PROVIDER = "deezer"
SEARCH = "GET /search?q="
TRACK = "GET /track/{id}"
TRACK_ISRC = "GET /track/isrc:{isrc}"
ALBUM = "GET /album/{id}"
MAX_GENRES = 4


def _quoted(text: str) -> str:
    return '"' + text.replace('"', " ").strip() + '"'


def _date(value: Any) -> str | None:
    if isinstance(value, str) and len(value) >= 4 and value[:4].isdigit() and value[:4] != "0000":
        return value
    return None


class DeezerProvider(OpenSourceProvider):
    """Track release dates and (album) genres from Deezer, matched by ISRC or name + duration."""

    name = PROVIDER
    kinds: ClassVar[tuple[FactKind, ...]] = ("track_facts", "artist_facts")
    batch_sizes: ClassVar[dict[str, int]] = {"track_facts": 10, "artist_facts": 10}
    base_env = "SEGUE_DEEZER_BASE"
    default_base = "https://api.deezer.com"
    rate_env = "SEGUE_DEEZER_RATE"
    default_rate = (50, 5.0)

    def check_body(self, label: str, status: int, body: Any) -> None:
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            return
        try:
            code = int(error.get("code"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            code = -1
        message = str(error.get("message") or error.get("type") or "error")
        if code == 4:
            raise ProviderError(PROVIDER, label, f"quota exceeded (code 4): {message}", status=429)
        if code == 700:
            raise ProviderError(PROVIDER, label, f"service busy (code 700): {message}", status=503)
        if code == 800:
            raise ProviderError(PROVIDER, label, f"no data (code 800): {message}", status=404)
        raise ProviderError(PROVIDER, label, f"error {code}: {message}", status=400)

    def _object(self, label: str, path: str) -> dict[str, Any]:
        data = self.get(label, path)
        self.expect(isinstance(data, dict) and "id" in data, label, "an object with an 'id'")
        return data  # type: ignore[no-any-return]

    @staticmethod
    def _candidate(item: dict[str, Any]) -> Candidate:
        duration = item.get("duration")
        artist: dict[str, Any] = item["artist"] if isinstance(item.get("artist"), dict) else {}
        return Candidate(
            str(item["id"]),
            str(artist.get("name") or ""),
            str(item.get("title") or ""),
            int(duration) * 1000 if isinstance(duration, int | float) and duration > 0 else None,
            item.get("isrc") if isinstance(item.get("isrc"), str) else None,
            item,
        )

    def _match(self, key: TrackKey) -> Match | None:
        if key.isrc:
            try:
                item = self._object(TRACK_ISRC, f"track/isrc:{key.isrc}")
            except ProviderError as exc:
                if exc.status != 404:
                    raise
            else:
                match = best_track(key, [self._candidate(item)])
                if match is not None:
                    return match
        query = (
            f"artist:{_quoted(primary_artist(key.artist))} "
            f"track:{_quoted(normalise_recording_title(key.title) or key.title)}"
        )
        data = self.get(SEARCH, "search", {"q": query, "limit": "10"})
        self.expect(
            isinstance(data, dict) and isinstance(data.get("data", []), list),
            SEARCH,
            "an object with a 'data' list",
        )
        hits = [h for h in data.get("data", []) if isinstance(h, dict) and "id" in h]
        return best_track(key, [self._candidate(h) for h in hits])

    def track_fact(self, key: TrackKey) -> tuple[TrackFacts | None, MatchRecord]:
        match = self._match(key)
        if match is None:
            return None, self.unmatched("track", key.track_id)
        item = match.candidate.payload
        if "release_date" not in item:  # a search hit: the full track has the date and ISRC
            item = self._object(TRACK, f"track/{match.candidate.external_id}")
        album: dict[str, Any] = item["album"] if isinstance(item.get("album"), dict) else {}
        isrc = item.get("isrc") if isinstance(item.get("isrc"), str) else None
        record = TrackFacts(
            key.track_id,
            release_date=_date(item.get("release_date")) or _date(album.get("release_date")),
            source=PROVIDER,
        )
        return record, MatchRecord(
            PROVIDER,
            "track",
            key.track_id,
            match.candidate.external_id,
            match.method,
            match.confidence,
            isrc or match.candidate.isrc,
        )

    def artist_fact(self, key: ArtistKey) -> tuple[ArtistFacts | None, MatchRecord]:
        for track in key.tracks:
            match = self._match(track)
            if match is None:
                continue
            album = match.candidate.payload.get("album")
            if not isinstance(album, dict) or "id" not in album:
                continue
            info = self._object(ALBUM, f"album/{album['id']}")
            genres_obj: dict[str, Any] = (
                info["genres"] if isinstance(info.get("genres"), dict) else {}
            )
            names = [
                " ".join(str(g["name"]).lower().split())
                for g in genres_obj.get("data") or []
                if isinstance(g, dict) and isinstance(g.get("name"), str) and g["name"].strip()
            ]
            genres = list(dict.fromkeys(names))[:MAX_GENRES]
            artist = match.candidate.payload.get("artist") or {}
            record = ArtistFacts(key.spotify_id, key.name, genres=genres or None, source=PROVIDER)
            return record, MatchRecord(
                PROVIDER,
                "artist",
                key.artist_id,
                str(artist.get("id")) if isinstance(artist, dict) and artist.get("id") else None,
                f"{match.method} (album genres)",
                match.confidence,
            )
        return None, self.unmatched("artist", key.artist_id)
