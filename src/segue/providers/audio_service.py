"""Audio features from a service keyed by Spotify track id, in the manner of ReccoBeats.

The base URL comes from ``SEGUE_AUDIO_FEATURES_BASE`` (e.g. ``https://api.reccobeats.com/v1``);
without it the provider is not used. Two request forms are understood:

* ``GET {base}/audio-features?ids=a,b,c`` (at most 40 ids): ``{"content": [...]}``, one object per
  *known* track (unknown ones are left out), each naming its Spotify track in ``href``
  (``https://open.spotify.com/track/<id>``) — ReccoBeats' own ``id`` is its internal UUID;
* ``GET {base}/track/{id}/audio-features``: one features object. ReccoBeats itself expects its
  own UUID there, so this form is used only when the multi-id form is missing (answers 404, 405
  or 403), for services that key it by Spotify id.

Same retry/backoff/rate-limit policy as every provider (:class:`~segue.providers.base.Retrier`).
No key or login is needed. httpx is used directly: there is no spotipy here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from segue.core import ids as spotify_ids
from segue.core.config import NetworkSettings
from segue.core.records import AudioFeatures
from segue.providers.base import (
    BatchResult,
    FactKind,
    FactsProvider,
    Notify,
    ProviderError,
    ProviderUnavailable,
    Retrier,
    RetryPolicy,
    parse_retry_after,
    redact,
)
from segue.providers.spotify import SINGLES_PER_BATCH, check_ids, parse_audio_features

PROVIDER = "audio-service"
MULTI = "GET /audio-features?ids="
SINGLE = "GET /track/{id}/audio-features"
BASE_ENV = "SEGUE_AUDIO_FEATURES_BASE"


def _short(text: str, limit: int = 200) -> str:
    # Redacted before it is cut: a secret cut in two would no longer be recognised.
    text = " ".join(redact(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class AudioFeatureService(FactsProvider):
    """Audio features by Spotify track id from a ReccoBeats-style service at ``base_url``."""

    name = PROVIDER
    kinds: ClassVar[tuple[FactKind, ...]] = ("audio_features",)
    batch_sizes: ClassVar[dict[str, int]] = {"audio_features": 40}

    def __init__(
        self,
        base_url: str,
        *,
        policy: RetryPolicy | None = None,
        notify: Notify | None = None,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(notify=notify)
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"{BASE_ENV} must be an http(s) URL, got {redact(base_url)!r}")
        self.base_url = base_url.rstrip("/")
        self.policy = policy or RetryPolicy.from_env()
        self.retrier = Retrier(self.policy, PROVIDER, sleep=sleep)
        self._client = httpx.Client(
            timeout=self.policy.timeout,
            headers={"Accept": "application/json", "User-Agent": "segue (music recommender)"},
            transport=transport,
        )

    @classmethod
    def from_env(
        cls, settings: NetworkSettings | None = None, **kwargs: Any
    ) -> AudioFeatureService:
        """Build from ``SEGUE_AUDIO_FEATURES_BASE``; raises :class:`ProviderUnavailable` when unset."""
        settings = settings or NetworkSettings.from_env()
        if not settings.audio_features_base:
            raise ProviderUnavailable(
                f"no audio-feature service configured: set {BASE_ENV} (e.g. https://api.reccobeats.com/v1)"
            )
        kwargs.setdefault("policy", RetryPolicy.from_env(settings))
        return cls(settings.audio_features_base, **kwargs)

    def __repr__(self) -> str:
        return f"<AudioFeatureService base={self.base_url!r}>"

    def close(self) -> None:
        self._client.close()

    # the one request path ------------------------------------------------------------------
    def _request_once(self, label: str, path: str, params: dict[str, str] | None) -> Any:
        try:
            response = self._client.get(f"{self.base_url}/{path}", params=params)
        except httpx.TimeoutException:
            raise ProviderError(
                PROVIDER, label, "no answer within the timeout", error_kind="timeout"
            ) from None
        except httpx.TransportError as exc:
            raise ProviderError(
                PROVIDER,
                label,
                f"connection failed or dropped ({type(exc).__name__})",
                error_kind="connection",
            ) from None
        if response.status_code >= 400:
            message = response.reason_phrase or "error"
            try:
                body = response.json()
            except ValueError:
                body = None
            if isinstance(body, dict):
                for key in ("message", "error"):
                    if isinstance(body.get(key), str):
                        message = body[key]
                        break
            raise ProviderError(
                PROVIDER,
                label,
                _short(message),
                status=response.status_code,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        try:
            return response.json()
        except ValueError:
            raise ProviderError(
                PROVIDER, label, "the answer is not valid JSON", error_kind="malformed"
            ) from None

    def get(self, label: str, path: str, params: dict[str, str] | None = None) -> Any:
        return self.retrier.call(lambda: self._request_once(label, path, params))

    # facts ---------------------------------------------------------------------------------
    def batch_size(self, kind: FactKind) -> int:
        size = super().batch_size(kind)
        return min(size, SINGLES_PER_BATCH) if self.is_gone(MULTI) else size

    def can_answer(self, kind: FactKind) -> bool:
        return kind == "audio_features" and not (self.is_gone(MULTI) and self.is_gone(SINGLE))

    def fetch(self, kind: FactKind, ids: list[str]) -> BatchResult:  # type: ignore[type-arg]
        if kind != "audio_features":
            raise ValueError(f"provider {self.name!r} gives only audio_features, not {kind!r}")
        limit = super().batch_size(kind)
        if len(ids) > limit:
            raise ValueError(f"at most {limit} ids per batch, got {len(ids)}")
        check_ids(ids)
        return self.batch_then_single(
            BatchResult("audio_features", list(ids)),
            batch_label=MULTI,
            ask_batch=lambda: list(
                self._parse_multi(
                    self.get(MULTI, "audio-features", {"ids": ",".join(ids)}), ids
                ).items()
            ),
            batch_gone=lambda status: (
                f"the audio-feature service answered {status} to {MULTI}: using {SINGLE} for the rest of this run"
                if status in (403, 404, 405)
                else None
            ),
            single_label=SINGLE,
            ask_single=lambda one: parse_audio_features(
                self.get(SINGLE, f"track/{one}/audio-features"), one, SINGLE, PROVIDER
            ),
            single_gone=lambda status: (
                f"the audio-feature service answered {status} to {SINGLE} too: skipped for this run"
                if status in (403, 405)
                else None
            ),
        )

    def _parse_multi(self, data: Any, ids: list[str]) -> dict[str, AudioFeatures]:
        if not isinstance(data, dict) or not isinstance(data.get("content"), list):
            raise ProviderError(
                PROVIDER, MULTI, "expected an object with a 'content' list", error_kind="malformed"
            )
        wanted = set(ids)
        found: dict[str, AudioFeatures] = {}
        for item in data["content"]:
            track_id = self._spotify_id(item)
            if track_id is None or track_id not in wanted:
                continue
            record = parse_audio_features(item, track_id, MULTI, PROVIDER)
            if record is not None:
                found[track_id] = record
        return found

    @staticmethod
    def _spotify_id(item: Any) -> str | None:
        """The Spotify id an item is about: the last segment of ``href``, else ``id`` when that
        is a Spotify id."""
        if not isinstance(item, dict):
            return None
        href = item.get("href")
        if isinstance(href, str) and href:
            last = urlsplit(href).path.rstrip("/").rsplit("/", 1)[-1]
            if spotify_ids.is_spotify_id(last):
                return last
        raw = item.get("id")
        if isinstance(raw, str) and spotify_ids.is_spotify_id(raw):
            return raw
        return None
