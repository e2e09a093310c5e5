"""Artist genres from Last.fm's crowd tags (``artist.getTopTags``, ``track.getTopTags``).

Needs a free API key (https://www.last.fm/api/account/create): ``LASTFM_API_KEY`` (or
``SEGUE_LASTFM_API_KEY``) or a ``lastfm_api_key:`` line in the ``Spotify.yaml`` settings file.
The key travels as a query parameter, so it is never put in a message and httpx's request log
is filtered (:class:`~segue.providers.open_sources.RedactQuery`).

An artist's tags are those of ``artist.getTopTags`` (with ``autocorrect=1``; the corrected name
must still match the catalog's), else those of its most-played catalog track
(``track.getTopTags``). Tags are kept when their weight (0-100, relative to the top tag) is at
least :data:`MIN_WEIGHT`, without listening-habit tags such as "seen live", at most
:data:`MAX_TAGS` of them.

Errors arrive as ``{"error": <code>, "message": …}`` (with HTTP 200 or an error status): 29 is
the rate limit (backed off like a 429), 10 and 26 a bad or suspended key (the run stops: nothing
more can be asked), 6 an unknown artist or track, 11 and 16 a temporary failure (retried).
About 5 requests per second are allowed (``SEGUE_LASTFM_RATE``). Terms: non-commercial use,
with attribution (https://www.last.fm/api/tos).
"""

from __future__ import annotations

from typing import Any, ClassVar

from segue.core.home import Home
from segue.core.records import ArtistFacts
from segue.core.redact import register_secret
from segue.core.text import primary_artist
from segue.providers.base import CredentialsRejected, FactKind, ProviderError, ProviderUnavailable
from segue.providers.matching import ArtistKey, MatchRecord, artist_similarity
from segue.providers.open_sources import OpenSourceProvider, settings_value

PROVIDER = "lastfm"
ARTIST_TAGS = "artist.getTopTags"
TRACK_TAGS = "track.getTopTags"
KEY_ENVS = ("LASTFM_API_KEY", "SEGUE_LASTFM_API_KEY")
KEY_YAML = ("lastfm_api_key", "lastfm_key")
MIN_WEIGHT = 10
MAX_TAGS = 6
THRESHOLD = 0.85
#: Tags about listening, not about the music.
STOP_TAGS = frozenset(
    {
        "seen live",
        "favorites",
        "favourites",
        "favorite",
        "favourite",
        "my favorite",
        "love",
        "loved",
        "awesome",
        "beautiful",
        "spotify",
        "albums i own",
        "under 2000 listeners",
        "check out",
        "good",
        "cool",
        "best",
    }
)


def missing_key_message() -> str:
    return (
        "Last.fm needs an API key: set LASTFM_API_KEY (or a 'lastfm_api_key: …' line in "
        "Spotify.yaml); get one free at https://www.last.fm/api/account/create"
    )


def tags_of(data: Any) -> tuple[list[str], str | None]:
    """Kept tag names of a getTopTags answer, and the name it says it is about."""
    top = data.get("toptags") if isinstance(data, dict) else None
    if not isinstance(top, dict):
        return [], None
    items = top.get("tag") or []
    if isinstance(items, dict):  # a single tag may come as an object
        items = [items]
    attr: dict[str, Any] = top["@attr"] if isinstance(top.get("@attr"), dict) else {}
    about = attr.get("artist") if isinstance(attr.get("artist"), str) else None
    kept: list[str] = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        try:
            weight = int(item.get("count") or 0)
        except (TypeError, ValueError):
            continue
        name = " ".join(item["name"].lower().split())
        if weight >= MIN_WEIGHT and name and name not in STOP_TAGS and name not in kept:
            kept.append(name)
    return kept[:MAX_TAGS], about


class LastfmProvider(OpenSourceProvider):
    """Artist genres from Last.fm top tags, matched by artist name."""

    name = PROVIDER
    kinds: ClassVar[tuple[FactKind, ...]] = ("artist_facts",)
    batch_sizes: ClassVar[dict[str, int]] = {"artist_facts": 10}
    base_env = "SEGUE_LASTFM_BASE"
    default_base = "https://ws.audioscrobbler.com/2.0"
    rate_env = "SEGUE_LASTFM_RATE"
    default_rate = (5, 1.0)

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        home: Home | None = None,
        **kwargs: Any,
    ):
        key = api_key or settings_value(KEY_ENVS, KEY_YAML, home=home)
        if not key:
            raise ProviderUnavailable(missing_key_message())
        super().__init__(base_url, **kwargs)
        register_secret(key)  # redact() hides it in every error text and log line
        self._key = key

    def __repr__(self) -> str:  # never the key
        return f"<LastfmProvider base={self.base_url!r}>"

    def check_body(self, label: str, status: int, body: Any) -> None:
        if not isinstance(body, dict) or "error" not in body:
            return
        try:
            code = int(body["error"])
        except (TypeError, ValueError):
            code = -1
        message = str(body.get("message") or "error")
        if code == 29:
            raise ProviderError(
                PROVIDER, label, f"rate limit exceeded (error 29): {message}", status=429
            )
        if code in (10, 26, 4):
            raise CredentialsRejected(
                PROVIDER,
                label,
                f"Last.fm refused the API key (error {code}); check LASTFM_API_KEY",
                status=403,
            )
        if code == 6:
            raise ProviderError(PROVIDER, label, f"not known to Last.fm: {message}", status=404)
        if code in (8, 11, 16):
            raise ProviderError(PROVIDER, label, f"temporary failure (error {code})", status=503)
        raise ProviderError(
            PROVIDER, label, f"error {code}: {message}", status=status if status >= 400 else 400
        )

    def _call(self, method: str, **params: str) -> Any:
        data = self.get(
            method,
            "",
            {
                "method": method,
                **params,
                "autocorrect": "1",
                "api_key": self._key,
                "format": "json",
            },
        )
        self.expect(
            isinstance(data, dict) and "toptags" in data, method, "an object with 'toptags'"
        )
        return data

    def artist_fact(self, key: ArtistKey) -> tuple[ArtistFacts | None, MatchRecord]:
        tags: list[str] = []
        about: str | None = None
        method = "name"
        known = True
        try:
            tags, about = tags_of(self._call(ARTIST_TAGS, artist=key.name))
        except ProviderError as exc:
            if exc.status != 404 or not key.tracks:
                raise
            known = False
        confidence = artist_similarity(key.name, about) if about else 1.0
        if about and confidence < THRESHOLD:
            return None, self.unmatched("artist", key.artist_id)
        if not tags and key.tracks:
            track = key.tracks[0]
            try:
                tags, about = tags_of(
                    self._call(TRACK_TAGS, artist=primary_artist(track.artist), track=track.title)
                )
                method = "name (track tags)"
                known = True
            except ProviderError as exc:
                if exc.status != 404:
                    raise
        if not known:
            return None, self.unmatched("artist", key.artist_id)
        record = ArtistFacts(key.spotify_id, key.name, genres=tags or None, source=PROVIDER)
        return record, MatchRecord(
            PROVIDER, "artist", key.artist_id, about or key.name, method, round(confidence, 4)
        )
