"""Track and artist facts, playlists and recommendations from the Spotify Web API, via spotipy.

What an app can still ask changes (see ``docs/SPOTIFY_API.md``): batch lookups, audio features and
recommendations answer 403 for many apps. :class:`SpotifyProvider` asks the batch endpoint first,
falls back to single lookups on 403, remembers for the run which endpoints are gone (saying so
once), and turns every answer into typed records (:mod:`segue.core.records`).

spotipy does the client-credentials login and token caching. Its request path is replaced
(:meth:`_SpotipyClient._internal_call`) because spotipy's own one logs request headers, returns
``None`` for an unparseable body, and loses the status of a 429/5xx behind urllib3's retry; here
one path raises :class:`~segue.providers.base.ProviderError` keeping status and ``Retry-After``,
and :class:`~segue.providers.base.Retrier` decides about retries with capped waits.

Base URLs come from ``SEGUE_SPOTIFY_API_BASE`` and ``SEGUE_SPOTIFY_TOKEN_URL`` so tests can point
the client at a server on 127.0.0.1.
"""

from __future__ import annotations

import math
import time
import weakref
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

import requests
import spotipy
from spotipy.cache_handler import MemoryCacheHandler
from spotipy.oauth2 import SpotifyClientCredentials, _make_authorization_headers

from segue.core import ids as spotify_ids
from segue.core.config import NetworkSettings
from segue.core.home import Home
from segue.core.records import AUDIO_FEATURES, ArtistFacts, ArtistRef, AudioFeatures, TrackFacts
from segue.providers.base import (
    BatchResult,
    CredentialsRejected,
    FactKind,
    FactsProvider,
    Notify,
    ProviderError,
    RateLimitStop,
    Retrier,
    RetryPolicy,
    parse_retry_after,
    redact,
    register_secret,
)
from segue.providers.credentials import (
    Credentials,
    InsecureURLError,
    check_credential_url,
    require_credentials,
)

PROVIDER = "spotify"

# Endpoint labels: how requests are named in messages, logs and the "gone" set.
TOKEN = "POST /api/token"
TRACKS_BATCH = "GET /tracks?ids="
TRACK_SINGLE = "GET /tracks/{id}"
ARTISTS_BATCH = "GET /artists?ids="
ARTIST_SINGLE = "GET /artists/{id}"
AUDIO_FEATURES_BATCH = "GET /audio-features?ids="
PLAYLIST = "GET /playlists/{id}"
PLAYLIST_ITEMS = "GET /playlists/{id}/items"
PLAYLIST_TRACKS = "GET /playlists/{id}/tracks"
RECOMMENDATIONS = "GET /recommendations"

RECOMMENDATIONS_GONE = "this app's Spotify access lacks the recommendations endpoint (removed for new apps since 27 Nov 2024)"
PLAYLIST_FORBIDDEN = (
    "Spotify lets this app read only the playlists its user owns or collaborates on "
    "(403 on both /items and /tracks); export the playlist (e.g. with Exportify) and import the CSV instead"
)

#: Ids per batch once only single lookups are left: each batch is written when it is done, so a
#: smaller one loses less when a run is killed.
SINGLES_PER_BATCH = 10

# A page of playlist items never holds more than this; anything claiming more pages than
# total/limit + slack is a server bug, not a reason to loop forever.
_PAGE_LIMIT = 50
_PAGE_SLACK = 5


TOKEN_URL_ENV = "SEGUE_SPOTIFY_TOKEN_URL"
API_BASE_ENV = "SEGUE_SPOTIFY_API_BASE"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def _short(text: str, limit: int = 200) -> str:
    # Redacted before it is cut: a secret cut in two would no longer be recognised.
    text = " ".join(redact(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _error_from_response(response: requests.Response, label: str) -> ProviderError:
    """The project exception for an HTTP error answer, keeping status, Retry-After and reason."""
    message: str | None = None
    reason: str | None = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            message = error.get("message") if isinstance(error.get("message"), str) else None
            reason = error.get("reason") if isinstance(error.get("reason"), str) else None
        elif isinstance(error, str):
            message = body.get("error_description") or error
            if not isinstance(message, str):
                message = error
    if message is None:
        message = response.reason or "error"
    return ProviderError(
        PROVIDER,
        label,
        _short(message),
        status=response.status_code,
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
        reason=reason,
    )


def _transport_error(exc: requests.RequestException, label: str) -> ProviderError:
    """Timeouts, refused or dropped connections. Only the exception's class is shown: its text
    may quote the URL, never headers, but the class says enough."""
    if isinstance(exc, requests.Timeout):
        return ProviderError(PROVIDER, label, "no answer within the timeout", error_kind="timeout")
    if isinstance(exc, requests.ConnectionError):
        return ProviderError(
            PROVIDER,
            label,
            f"connection failed or dropped ({type(exc).__name__})",
            error_kind="connection",
        )
    return ProviderError(
        PROVIDER, label, f"request failed ({type(exc).__name__})", error_kind="connection"
    )


class _ClientCredentials(SpotifyClientCredentials):
    """spotipy's client-credentials flow pointed at a configurable token URL.

    ``OAUTH_TOKEN_URL`` is a class attribute in spotipy; setting it on the instance points this
    manager (only) elsewhere. The token request is re-implemented because spotipy's logs the
    Basic authorization header at DEBUG level; this one never logs headers and raises
    :class:`ProviderError`/:class:`CredentialsRejected` with the status kept.
    """

    def __init__(
        self, credentials: Credentials, *, token_url: str, session: requests.Session, timeout: float
    ):
        super().__init__(
            client_id=credentials.client_id,
            client_secret=credentials.client_secret,
            requests_session=session,
            requests_timeout=timeout,
            cache_handler=MemoryCacheHandler(),
        )
        self.OAUTH_TOKEN_URL = token_url

    def __repr__(self) -> str:
        return f"<{type(self).__name__} token_url={self.OAUTH_TOKEN_URL!r}>"

    def _request_access_token(self) -> dict[str, Any]:
        try:
            check_credential_url(self.OAUTH_TOKEN_URL, TOKEN_URL_ENV)
        except InsecureURLError as exc:
            raise CredentialsRejected(PROVIDER, TOKEN, str(exc), error_kind="config") from None
        headers = _make_authorization_headers(self.client_id, self.client_secret)
        register_secret(headers["Authorization"].split(" ", 1)[-1])
        try:
            response = self._session.post(
                self.OAUTH_TOKEN_URL,
                data={"grant_type": "client_credentials"},
                headers=headers,
                timeout=self.requests_timeout,
            )
        except requests.RequestException as exc:
            raise _transport_error(exc, TOKEN) from None
        if response.status_code in (400, 401, 403):
            err = _error_from_response(response, TOKEN)
            raise CredentialsRejected(
                PROVIDER,
                TOKEN,
                f"Spotify refused the app's client credentials ({err.problem}); check the client id and secret",
                status=response.status_code,
            )
        if response.status_code >= 400:
            raise _error_from_response(response, TOKEN)
        try:
            token = response.json()
        except ValueError:
            raise ProviderError(
                PROVIDER, TOKEN, "the token answer is not JSON", error_kind="malformed"
            ) from None
        if not isinstance(token, dict) or not isinstance(token.get("access_token"), str):
            raise ProviderError(
                PROVIDER, TOKEN, "the token answer has no access_token", error_kind="malformed"
            )
        register_secret(token["access_token"], token.get("refresh_token"))
        if not isinstance(token.get("expires_in"), int | float):
            token["expires_in"] = 3600
        return token


class _SpotipyClient(spotipy.Spotify):
    """spotipy's client with one request path (see the module docstring for why)."""

    def request_json(self, method: str, url: str, params: dict[str, Any] | None, label: str) -> Any:
        """Send one request; return the parsed JSON body or raise :class:`ProviderError`."""
        if not url.startswith(("http://", "https://")):
            url = self.prefix + url
        elif _origin(url) != _origin(self.prefix):
            # A ``next`` link elsewhere would carry the access token off to another host.
            raise _malformed(label, f"the answer links to another host ({_origin(url)})")
        try:
            check_credential_url(url, API_BASE_ENV)
        except InsecureURLError as exc:
            raise CredentialsRejected(PROVIDER, label, str(exc), error_kind="config") from None
        headers = self._auth_headers()
        headers["Accept"] = "application/json"
        try:
            response = self._session.request(
                method, url, headers=headers, params=params, timeout=self.requests_timeout
            )
        except requests.RequestException as exc:
            raise _transport_error(exc, label) from None
        if response.status_code >= 400:
            raise _error_from_response(response, label)
        try:
            return response.json()
        except ValueError:
            raise ProviderError(
                PROVIDER,
                label,
                f"the answer is not valid JSON (HTTP {response.status_code})",
                error_kind="malformed",
            ) from None

    def _internal_call(self, method: str, url: str, payload: Any, params: dict[str, Any]) -> Any:
        # spotipy's own methods (``track``, ``next``...) end up here too.
        if payload:
            raise TypeError("segue's Spotify client only reads; it sends no request bodies")
        return self.request_json(
            method, url, params or None, f"{method} {urlsplit(url).path or url}"
        )


# -- records ---------------------------------------------------------------------------------


def _malformed(label: str, problem: str) -> ProviderError:
    return ProviderError(PROVIDER, label, problem, error_kind="malformed")


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _opt_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def parse_track(obj: Any, track_id: str, label: str = TRACK_SINGLE) -> TrackFacts:
    """A Web API track object as :class:`TrackFacts` (``track_id`` is the id asked for, so a
    relinked answer still lands on the asked track). Raises a malformed :class:`ProviderError`
    when ``obj`` is not a track object."""
    if not isinstance(obj, dict):
        raise _malformed(label, f"expected a track object for {track_id}, got {type(obj).__name__}")
    raw_album = obj.get("album")
    album: dict[str, Any] = raw_album if isinstance(raw_album, dict) else {}
    artists = [
        ArtistRef(name=a["name"], artist_id=_opt_str(a.get("id")))
        for a in (obj.get("artists") or [])
        if isinstance(a, dict) and _opt_str(a.get("name"))
    ]
    release = _opt_str(album.get("release_date"))
    if release is not None and release.startswith("0000"):
        release = None  # Spotify's "unknown"
    popularity = _opt_int(obj.get("popularity"))
    return TrackFacts(
        track_id=track_id,
        name=_opt_str(obj.get("name")),
        artists=artists,
        album_id=_opt_str(album.get("id")),
        album_name=_opt_str(album.get("name")),
        release_date=release,
        popularity=popularity if popularity is not None and 0 <= popularity <= 100 else None,
        duration_ms=_opt_int(obj.get("duration_ms")),
        source=PROVIDER,
    )


def parse_artist(obj: Any, artist_id: str, label: str = ARTIST_SINGLE) -> ArtistFacts:
    """A Web API artist object as :class:`ArtistFacts`; absent ``genres`` stays None (unknown)."""
    if not isinstance(obj, dict):
        raise _malformed(
            label, f"expected an artist object for {artist_id}, got {type(obj).__name__}"
        )
    name = _opt_str(obj.get("name"))
    if name is None:
        raise _malformed(label, f"artist {artist_id} has no name")
    raw_genres = obj.get("genres")
    genres = (
        [g for g in raw_genres if isinstance(g, str) and g.strip()]
        if isinstance(raw_genres, list)
        else None
    )
    popularity = _opt_int(obj.get("popularity"))
    return ArtistFacts(
        artist_id=artist_id,
        name=name,
        genres=genres,
        popularity=popularity if popularity is not None and 0 <= popularity <= 100 else None,
        source=PROVIDER,
    )


def parse_audio_features(
    obj: Any, track_id: str, label: str, source: str = PROVIDER
) -> AudioFeatures | None:
    """An audio-features object as :class:`AudioFeatures`; None when it holds no feature at all."""
    if not isinstance(obj, dict):
        raise _malformed(
            label, f"expected an audio-features object for {track_id}, got {type(obj).__name__}"
        )
    values: dict[str, float] = {}
    for name in AUDIO_FEATURES:
        value = obj.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            values[name] = float(value)
    if not values:
        return None
    return AudioFeatures(track_id=track_id, values=values, source=source)


def _list_field(data: Any, key: str, expected: int, label: str) -> list[Any]:
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise _malformed(label, f"expected an object with a {key!r} list")
    items: list[Any] = data[key]
    if len(items) != expected:
        raise _malformed(label, f"asked for {expected} {key}, the answer holds {len(items)}")
    return items


def check_ids(values: list[str], what: str = "track") -> None:
    """Refuse malformed ids locally (a ValueError, never a request)."""
    bad = [v for v in values if not spotify_ids.is_spotify_id(v)]
    if bad:
        raise ValueError(
            f"{len(bad)} malformed Spotify {what} id(s), e.g. {bad[0]!r}; expected 22 base62 characters"
        )


# -- the provider ----------------------------------------------------------------------------


class SpotifyProvider(FactsProvider):
    """Track facts, artist facts and audio features from Spotify, plus playlists and recommendations.

    ``credentials``: the app's client id and secret. ``settings``: base URLs and timeouts
    (default :meth:`NetworkSettings.from_env`). ``policy``: retries (default
    :meth:`RetryPolicy.from_env`). ``sleep``: injectable for tests. ``notify``: receives one-line
    notices (each once), e.g. that an endpoint answered 403.
    """

    name = PROVIDER
    kinds: ClassVar[tuple[FactKind, ...]] = ("track_facts", "artist_facts", "audio_features")
    batch_sizes: ClassVar[dict[str, int]] = {
        "track_facts": 50,
        "artist_facts": 50,
        "audio_features": 100,
    }

    def __init__(
        self,
        credentials: Credentials,
        *,
        settings: NetworkSettings | None = None,
        policy: RetryPolicy | None = None,
        notify: Notify | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(notify=notify)
        self.settings = settings or NetworkSettings.from_env()
        self.policy = policy or RetryPolicy.from_env(self.settings)
        self.retrier = Retrier(self.policy, PROVIDER, sleep=sleep)
        self._session = requests.Session()
        self._auth = _ClientCredentials(
            credentials,
            token_url=self.settings.spotify_token_url,
            session=self._session,
            timeout=self.policy.timeout,
        )
        self._client = _SpotipyClient(
            auth_manager=self._auth,
            requests_session=self._session,
            retries=0,
            status_retries=0,
            requests_timeout=self.policy.timeout,
        )
        prefix = self.settings.spotify_api_base
        self._client.prefix = prefix if prefix.endswith("/") else prefix + "/"
        self.missing_fields: set[str] = set()

    @classmethod
    def from_env(
        cls, credentials_path: str | None = None, *, home: Home | None = None, **kwargs: Any
    ) -> SpotifyProvider:
        """Build from the environment (and ``home``'s settings file); raises :class:`CredentialsError` saying what is needed,
        and :class:`~segue.providers.credentials.InsecureURLError` when the token URL or the API
        base is neither HTTPS nor on this machine (credentials are never sent there)."""
        settings = kwargs.get("settings") or NetworkSettings.from_env()
        kwargs["settings"] = settings
        check_credential_url(settings.spotify_token_url, TOKEN_URL_ENV)
        check_credential_url(settings.spotify_api_base, API_BASE_ENV)
        return cls(require_credentials(credentials_path, home=home), **kwargs)

    def __repr__(self) -> str:
        return f"<SpotifyProvider api={self._client.prefix!r} gone={sorted(self.gone)}>"

    def close(self) -> None:
        self._session.close()

    # the one request path ------------------------------------------------------------------
    def _refresh(self) -> None:
        self._auth.get_access_token(as_dict=False, check_cache=False)

    def get(self, label: str, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET ``path`` (relative to the API base, or an absolute ``next`` URL) under the retry policy."""
        return self.retrier.call(
            lambda: self._client.request_json("GET", path, params, label), refresh=self._refresh
        )

    # facts -------------------------------------------------------------------------------
    def can_answer(self, kind: FactKind) -> bool:
        if kind == "track_facts":
            return not (self.is_gone(TRACKS_BATCH) and self.is_gone(TRACK_SINGLE))
        if kind == "artist_facts":
            return not (self.is_gone(ARTISTS_BATCH) and self.is_gone(ARTIST_SINGLE))
        if kind == "audio_features":
            return not self.is_gone(AUDIO_FEATURES_BATCH)
        return False

    def batch_size(self, kind: FactKind) -> int:
        """Ids per batch: the endpoint's limit, or :data:`SINGLES_PER_BATCH` once the batch
        endpoint is gone (single lookups are slow: smaller batches are written sooner)."""
        size = super().batch_size(kind)
        single_mode = (kind == "track_facts" and self.is_gone(TRACKS_BATCH)) or (
            kind == "artist_facts" and self.is_gone(ARTISTS_BATCH)
        )
        return min(size, SINGLES_PER_BATCH) if single_mode else size

    def fetch(self, kind: FactKind, ids: list[str]) -> BatchResult:  # type: ignore[type-arg]
        limit = super().batch_size(kind)
        if len(ids) > limit:
            raise ValueError(f"at most {limit} ids per {kind} batch, got {len(ids)}")
        check_ids(ids, "artist" if kind == "artist_facts" else "track")
        if kind == "track_facts":
            return self._facts(
                kind, ids, TRACKS_BATCH, "tracks", TRACK_SINGLE, "tracks/{id}", parse_track
            )
        if kind == "artist_facts":
            return self._facts(
                kind, ids, ARTISTS_BATCH, "artists", ARTIST_SINGLE, "artists/{id}", parse_artist
            )
        if kind == "audio_features":
            return self._audio_features(ids)
        raise ValueError(f"unknown kind {kind!r}; expected one of {list(self.kinds)}")

    def track_facts_single(self, ids: list[str]) -> BatchResult[TrackFacts]:
        """Track facts by single lookups only (``GET /tracks/{id}``), for a few ids at a time."""
        check_ids(ids)
        result: BatchResult[TrackFacts] = BatchResult("track_facts", list(ids))
        self.one_by_one(
            result,
            ids,
            label=TRACK_SINGLE,
            ask=self._single("track_facts", TRACK_SINGLE, "tracks/{id}", parse_track),
            gone=self._single_gone(TRACK_SINGLE, "tracks/{id}"),
        )
        return result

    def _facts(
        self,
        kind: FactKind,
        ids: list[str],
        batch_label: str,
        key: str,
        single_label: str,
        single_path: str,
        parse: Callable[[Any, str, str], Any],
    ) -> BatchResult:  # type: ignore[type-arg]
        def ask_batch() -> list[tuple[str, Any]]:
            data = self.get(batch_label, key, {"ids": ",".join(ids)})
            items = _list_field(data, key, len(ids), batch_label)
            records = [
                (i, parse(obj, i, batch_label))
                for i, obj in zip(ids, items, strict=True)
                if obj is not None
            ]
            self._note_missing_fields(kind, items)
            return records

        def batch_gone(status: int | None) -> str | None:
            if status != 403:
                return None
            return (
                f"Spotify answered 403 to {batch_label} (batch lookups removed for this app): "
                f"using single lookups {single_label} for the rest of this run"
            )

        return self.batch_then_single(
            BatchResult(kind, list(ids)),
            batch_label=batch_label,
            ask_batch=ask_batch,
            batch_gone=batch_gone,
            singles_after=(400,),  # a bad id in the batch; single lookups find it
            single_label=single_label,
            ask_single=self._single(kind, single_label, single_path, parse),
            single_gone=self._single_gone(single_label, single_path),
        )

    def _single(
        self, kind: FactKind, label: str, path: str, parse: Callable[[Any, str, str], Any]
    ) -> Callable[[str], Any]:
        """Asks ``GET path`` for one id and parses the answer."""

        def ask(one: str) -> Any:
            obj = self.get(label, path.format(id=one))
            record = parse(obj, one, label)
            self._note_missing_fields(kind, [obj])
            return record

        return ask

    @staticmethod
    def _single_gone(label: str, path: str) -> Callable[[int | None], str | None]:
        what = "track facts" if "tracks" in path else "artist facts"

        def gone(status: int | None) -> str | None:
            if status != 403:
                return None
            return (
                f"Spotify answered 403 to {label} too: {what} cannot be had from Spotify "
                "with this app; skipped for this run"
            )

        return gone

    def _note_missing_fields(self, kind: FactKind, objects: list[Any]) -> None:
        """Say once per field when Spotify's objects lack a field this app used to get."""
        wanted = {"track_facts": ("popularity",), "artist_facts": ("popularity", "genres")}.get(
            kind, ()
        )
        for name in wanted:
            key = f"{kind}.{name}"
            if key in self.missing_fields:
                continue
            present = [o for o in objects if isinstance(o, dict)]
            if present and all(name not in o for o in present):
                self.missing_fields.add(key)
                what = "track" if kind == "track_facts" else "artist"
                self.notice(
                    f"missing:{key}",
                    f"Spotify's {what} objects carry no {name} for this app (removed for development-mode "
                    f"apps in 2026): {what} {name} stays unknown",
                )

    def _audio_features(self, ids: list[str]) -> BatchResult[AudioFeatures]:
        result: BatchResult[AudioFeatures] = BatchResult("audio_features", list(ids))
        if not ids:
            return result
        if self.is_gone(AUDIO_FEATURES_BATCH):
            result.skipped.extend(ids)
            return result
        try:
            data = self.get(AUDIO_FEATURES_BATCH, "audio-features", {"ids": ",".join(ids)})
            items = _list_field(data, "audio_features", len(ids), AUDIO_FEATURES_BATCH)
            parsed = [
                (i, parse_audio_features(o, i, AUDIO_FEATURES_BATCH))
                if o is not None
                else (i, None)
                for i, o in zip(ids, items, strict=True)
            ]
        except (RateLimitStop, CredentialsRejected) as exc:
            result.stop = exc
        except ProviderError as exc:
            if exc.status == 403:
                # The single form (GET /audio-features/{id}) was removed with the batch one.
                instead = (
                    "the audio-feature service is asked instead"
                    if self.settings.audio_features_base
                    else "set SEGUE_AUDIO_FEATURES_BASE to use an audio-feature service instead"
                )
                self.mark_gone(
                    AUDIO_FEATURES_BATCH,
                    f"Spotify answered 403 to {AUDIO_FEATURES_BATCH} (audio features removed for "
                    f"new apps since 27 Nov 2024): skipped from Spotify; {instead}",
                )
                result.skipped.extend(ids)
            else:
                result.errors.append((list(ids), str(exc)))
        else:
            for i, record in parsed:
                if record is None:
                    result.not_found.append(i)
                else:
                    result.found.append(record)
        return result

    # playlists ---------------------------------------------------------------------------
    def playlist_name(self, playlist_id: str) -> str | None:
        """The playlist's name, or None when Spotify will not say."""
        try:
            data = self.get(PLAYLIST, f"playlists/{playlist_id}", {"fields": "name"})
        except (RateLimitStop, CredentialsRejected):
            raise
        except ProviderError:
            return None
        return _opt_str(data.get("name")) if isinstance(data, dict) else None

    def playlist_tracks(self, ref: str) -> tuple[str | None, list[TrackFacts]]:
        """Name and tracks of a playlist (any reference form), following ``next``.

        Asks ``/playlists/{id}/items`` and falls back to ``/playlists/{id}/tracks`` on 404/403.
        Local files and episodes are left out; a track listed twice appears twice. Raises
        :class:`ProviderError` (403: the app may not read this playlist; 404: no such playlist).
        """
        playlist_id = spotify_ids.playlist_id(ref)
        name = self.playlist_name(playlist_id)
        params = {"limit": _PAGE_LIMIT, "offset": 0, "additional_types": "track"}
        try:
            first = self.get(PLAYLIST_ITEMS, f"playlists/{playlist_id}/items", params)
            label = PLAYLIST_ITEMS
        except (RateLimitStop, CredentialsRejected):
            raise
        except ProviderError as exc:
            if exc.status not in (403, 404):
                raise
            try:
                first = self.get(PLAYLIST_TRACKS, f"playlists/{playlist_id}/tracks", params)
                label = PLAYLIST_TRACKS
            except ProviderError as exc2:
                if exc.status == 403 and exc2.status in (403, 404):
                    raise ProviderError(
                        PROVIDER, PLAYLIST_ITEMS, PLAYLIST_FORBIDDEN, status=403
                    ) from None
                if exc2.status == 404:
                    raise ProviderError(
                        PROVIDER,
                        PLAYLIST_ITEMS,
                        f"no playlist {playlist_id} on Spotify",
                        status=404,
                    ) from None
                raise
        tracks = list(self._iter_playlist(first, label))
        return name, tracks

    def _iter_playlist(self, page: Any, label: str) -> Iterator[TrackFacts]:
        seen_urls: set[str] = set()
        max_pages: int | None = None
        pages = 0
        while True:
            if not isinstance(page, dict) or not isinstance(page.get("items"), list):
                raise _malformed(label, "expected a page object with an 'items' list")
            pages += 1
            if max_pages is None and isinstance(page.get("total"), int):
                limit = (
                    page.get("limit")
                    if isinstance(page.get("limit"), int) and page["limit"] > 0
                    else _PAGE_LIMIT
                )
                max_pages = page["total"] // limit + _PAGE_SLACK
            for entry in page["items"]:
                if not isinstance(entry, dict) or entry.get("is_local"):
                    continue
                obj = entry.get("item", entry.get("track"))  # "item" since 2026, "track" before
                if (
                    not isinstance(obj, dict)
                    or obj.get("type", "track") != "track"
                    or obj.get("is_local")
                ):
                    continue
                track_id = _opt_str(obj.get("id"))
                if track_id is None or not spotify_ids.is_spotify_id(track_id):
                    continue
                yield parse_track(obj, track_id, label)
            next_url = page.get("next")
            if not isinstance(next_url, str) or not next_url:
                return
            if next_url in seen_urls or (max_pages is not None and pages >= max_pages):
                raise _malformed(label, "the 'next' links go round in circles")
            seen_urls.add(next_url)
            page = self.get(label, next_url)

    # recommendations ---------------------------------------------------------------------
    def recommendations(self, seed_track_ids: list[str], *, limit: int = 100) -> list[TrackFacts]:
        """Spotify's recommendations for up to 5 seed tracks, best first.

        Raises :class:`ProviderError`; a 403 gets the message :data:`RECOMMENDATIONS_GONE`.
        """
        if not 1 <= len(seed_track_ids) <= 5:
            raise ValueError(f"Spotify takes 1 to 5 seed tracks, got {len(seed_track_ids)}")
        if not 1 <= limit <= 100:
            raise ValueError(f"limit must be within 1..100, got {limit}")
        check_ids(seed_track_ids)
        if self.is_gone(RECOMMENDATIONS):
            raise ProviderError(PROVIDER, RECOMMENDATIONS, RECOMMENDATIONS_GONE, status=403)
        try:
            data = self.get(
                RECOMMENDATIONS,
                "recommendations",
                {"seed_tracks": ",".join(seed_track_ids), "limit": limit},
            )
        except ProviderError as exc:
            if exc.status == 403:
                self.mark_gone(RECOMMENDATIONS, RECOMMENDATIONS_GONE)
                raise ProviderError(
                    PROVIDER, RECOMMENDATIONS, RECOMMENDATIONS_GONE, status=403
                ) from None
            raise
        if not isinstance(data, dict) or not isinstance(data.get("tracks"), list):
            raise _malformed(RECOMMENDATIONS, "expected an object with a 'tracks' list")
        out: list[TrackFacts] = []
        for obj in data["tracks"]:
            track_id = _opt_str(obj.get("id")) if isinstance(obj, dict) else None
            if track_id is not None and spotify_ids.is_spotify_id(track_id):
                out.append(parse_track(obj, track_id, RECOMMENDATIONS))
        return out


# -- does the recommendations endpoint answer? -----------------------------------------------

#: A track every catalog of Spotify has, used only to ask whether the endpoint answers.
PROBE_TRACK = "4uLU6hMCjMI75M1A2tKUQC"
#: Seconds a failed probe that may pass is remembered when the server sent no Retry-After.
RETRY_PROBE_AFTER = 60.0

#: A remembered availability: (available, why not, time.monotonic() it is good until).
_Remembered = tuple[bool, str, float]
#: Answers for providers built from credentials, keyed by (API base, client id).
_availability: dict[tuple[str, str], _Remembered] = {}
# Answers for given providers, keyed by the provider object itself, held weakly: an ``id()``
# key would hand a freed provider's answer to a new one that happens to get the same address.
_provider_availability: weakref.WeakKeyDictionary[SpotifyProvider, _Remembered] = (
    weakref.WeakKeyDictionary()
)


def _recall(memory: MutableMapping[Any, _Remembered], key: Any) -> tuple[bool, str] | None:
    """The remembered availability under ``key`` while it is still good, else None."""
    known = memory.get(key)
    if known is None or time.monotonic() >= known[2]:
        return None
    return known[0], known[1]


def recommendations_available(
    provider: SpotifyProvider | None = None, *, home: Home | None = None, refresh: bool = False
) -> tuple[bool, str]:
    """``(True, "")`` when credentials exist and the recommendations endpoint answers, else
    ``(False, why)``. Asks through ``provider``, else through one built from the credentials
    of ``home`` (:func:`~segue.providers.credentials.load_credentials`).

    The answer is remembered per API base and client (or per ``provider``): an answer or a 403
    for the life of the process, any other failure (429, 5xx, timeout, refused login) for the
    ``Retry-After`` the server sent, else :data:`RETRY_PROBE_AFTER` seconds, so a passing
    failure does not hide the endpoint for good. ``refresh=True`` asks again at once.
    """
    from segue.providers.credentials import CredentialsError, load_credentials, missing_message

    if provider is None:
        try:
            credentials = load_credentials(home=home)
        except CredentialsError as exc:
            return False, str(exc)
        if credentials is None:
            return False, missing_message(home)
        key: Any = (NetworkSettings.from_env().spotify_api_base, credentials.client_id)
        memory: MutableMapping[Any, _Remembered] = _availability
        remembered = None if refresh else _recall(memory, key)
        if remembered is not None:
            return remembered
        probe = SpotifyProvider(credentials)
    else:
        key, memory, probe = provider, _provider_availability, provider
        remembered = None if refresh else _recall(memory, key)
        if remembered is not None:
            return remembered
    keep = math.inf
    try:
        probe.recommendations([PROBE_TRACK], limit=1)
        answer = (True, "")
    except ProviderError as exc:
        if exc.status == 403:
            answer = (False, RECOMMENDATIONS_GONE)
        else:
            answer = (False, f"Spotify's recommendations endpoint did not answer: {exc}")
            keep = exc.retry_after if exc.retry_after is not None else RETRY_PROBE_AFTER
    finally:
        if provider is None:
            probe.close()
    memory[key] = (*answer, time.monotonic() + keep)
    return answer
