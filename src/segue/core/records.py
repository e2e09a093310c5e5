"""Plain records of track and artist facts, as providers return them and the catalog stores them.

Providers (Spotify Web API, audio-feature services, tables, the catalog itself) turn their
responses into these records at the boundary; nothing downstream sees raw JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Spotify's audio features, in the order every table and array of them uses.
AUDIO_FEATURES = (
    "danceability",
    "energy",
    "key",
    "loudness",
    "mode",
    "speechiness",
    "acousticness",
    "instrumentalness",
    "liveness",
    "valence",
    "tempo",
    "time_signature",
)

_FEATURE_NAMES = frozenset(AUDIO_FEATURES)


@dataclass(frozen=True, slots=True)
class ArtistRef:
    """An artist as a track names it: by Spotify id when known, always by name."""

    name: str
    artist_id: str | None = None


@dataclass(slots=True)
class TrackFacts:
    track_id: str
    name: str | None = None
    artists: list[ArtistRef] = field(default_factory=list)  # first = primary artist
    album_id: str | None = None
    album_name: str | None = None
    release_date: str | None = None  # as given: "2019", "2019-06", "2019-06-14"
    popularity: int | None = None  # 0-100
    duration_ms: int | None = None
    source: str = "unknown"
    year: int | None = None  # release year when only a year is known (no release_date)

    @property
    def release_year(self) -> int | None:
        if not self.release_date or not self.release_date[:4].isdigit():
            return self.year
        return int(self.release_date[:4])


@dataclass(slots=True)
class ArtistFacts:
    artist_id: str | None
    name: str
    genres: list[str] | None = None  # None = not known; [] = known to have none
    popularity: int | None = None
    source: str = "unknown"
    # False: genres/popularity only fill what the catalog does not know (weaker evidence such
    # as playlist genre labels standing in for Spotify's artist genres).
    overwrite: bool = True


@dataclass(slots=True)
class AudioFeatures:
    track_id: str
    values: dict[str, float]  # keys among AUDIO_FEATURES
    source: str = "unknown"

    def __post_init__(self) -> None:
        unknown = self.values.keys() - _FEATURE_NAMES
        if unknown:
            raise ValueError(
                f"unknown audio feature(s) {sorted(unknown)}; expected among {list(AUDIO_FEATURES)}"
            )
