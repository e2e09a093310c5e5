"""What the open sources (MusicBrainz, Last.fm, Deezer) share: one HTTP path, a rate limiter,
settings, and a per-id loop that matches catalog tracks and artists by name.

These sources know nothing of Spotify ids: a provider is bound to the catalog's keys
(:meth:`OpenSourceProvider.bind_catalog`, done by :func:`segue.catalog.fetch.run_fetch`) to read the
names, durations and learnt ISRCs of the ids it is asked about, matches them
(:mod:`segue.providers.matching`), and answers in the typed records every provider gives, plus a
:class:`~segue.providers.matching.MatchRecord` per id saying how it was matched (stored with the facts).

Every request goes through :class:`~segue.providers.base.Retrier` with the provider's
:class:`~segue.providers.ratelimit.RateLimiter`, so retries count against the published limit too.
Error answers are turned into :class:`~segue.providers.base.ProviderError` by each provider's
:meth:`OpenSourceProvider.check_body` (Last.fm and Deezer put errors inside 200 answers).

Keys (Last.fm's) come from the environment or the ``Spotify.yaml`` settings file, and are never
put in a message: requests carry them as parameters, so error messages name the endpoint label,
never the URL, and httpx's own request log is filtered (:class:`RedactQuery`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol

import httpx
import yaml

from segue import __version__
from segue.core.home import Home
from segue.core.records import ArtistFacts, TrackFacts
from segue.core.redact import redact
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
)
from segue.providers.matching import NAME_KEY, ArtistKey, MatchRecord, TrackKey
from segue.providers.ratelimit import RateLimiter

DEFAULT_CONTACT = "https://github.com/segue-music/segue"
#: Keyless sources used by ``segue fetch`` without ``--provider`` (comma-separated names).
OPEN_SOURCES_ENV = "SEGUE_OPEN_SOURCES"


def user_agent() -> str:
    """``segue/<version> ( <contact> )``, as MusicBrainz asks; ``SEGUE_CONTACT`` sets the contact."""
    contact = os.environ.get("SEGUE_CONTACT", "").strip() or DEFAULT_CONTACT
    return f"segue/{__version__} ( {contact} )"


def settings_value(
    names: tuple[str, ...], yaml_keys: tuple[str, ...], *, home: Home | None = None
) -> str | None:
    """The first of environment variables ``names``, else a key of the settings file
    (``Spotify.yaml``, found as Spotify's credentials are, ``home``'s among the places).
    Never logged or echoed."""
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    from segue.providers import credentials

    explicit = os.environ.get(credentials.ENV_PATH) or None
    paths = [Path(explicit).expanduser()] if explicit else credentials.search_paths(home)
    for path in paths:
        if not path.is_file():
            continue
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue  # the Spotify credentials reader reports a broken file
        if not isinstance(data, dict):
            continue
        lowered = {str(k).strip().lower(): v for k, v in data.items()}
        for key in yaml_keys:
            found = lowered.get(key)
            if isinstance(found, str | int) and str(found).strip():
                return str(found).strip()
    return None


def enabled_open_sources() -> set[str]:
    """Names listed in ``SEGUE_OPEN_SOURCES`` (e.g. ``musicbrainz,deezer``)."""
    raw = os.environ.get(OPEN_SOURCES_ENV, "")
    return {p.strip().lower() for p in raw.split(",") if p.strip()}


class RedactQuery(logging.Filter):
    """Hides ``api_key=…`` (and every other secret :func:`redact` knows) in httpx's request
    log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            record.args = tuple(
                redact(str(a)) if isinstance(a, str | httpx.URL) else a for a in args
            )
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


_redaction_installed = False


def install_redaction() -> None:
    global _redaction_installed
    if not _redaction_installed:
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).addFilter(RedactQuery())
        _redaction_installed = True


class CatalogAccess(Protocol):
    """What a name-matching source reads of the catalog: the match keys of the ids asked about
    (given by :func:`segue.catalog.fetch.run_fetch`; ids unknown or without a name are left out)."""

    def track_keys(self, track_ids: Sequence[str]) -> dict[str, TrackKey]: ...

    def artist_keys(self, artist_ids: Sequence[str]) -> dict[str, ArtistKey]: ...


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class OpenSourceProvider(FactsProvider):
    """Base of the MusicBrainz, Last.fm and Deezer providers (see the module docstring).

    Subclasses set ``name``, ``kinds``, ``batch_sizes``, ``base_env``, ``default_base``,
    ``rate_env`` and ``default_rate``, and implement :meth:`track_fact` / :meth:`artist_fact`
    (each returns the record, or None when nothing matched, and the match record).
    """

    #: Artists are matched by name: those known by name only are asked about too.
    matches_by_name: ClassVar[bool] = True
    base_env: ClassVar[str] = ""
    default_base: ClassVar[str] = ""
    rate_env: ClassVar[str] = ""
    default_rate: ClassVar[tuple[int, float]] = (1, 1.0)

    def __init__(
        self,
        base_url: str | None = None,
        *,
        policy: RetryPolicy | None = None,
        limiter: RateLimiter | None = None,
        notify: Notify | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(notify=notify)
        base = base_url or os.environ.get(self.base_env, "").strip() or self.default_base
        if not base.startswith(("http://", "https://")):
            raise ProviderUnavailable(f"{self.base_env} must be an http(s) URL, got {base!r}")
        self.base_url = base.rstrip("/")
        self.policy = policy or RetryPolicy.from_env()
        self.limiter = limiter or RateLimiter.from_env(self.rate_env, self.default_rate)
        self.retrier = Retrier(self.policy, self.name, sleep=sleep, limiter=self.limiter)
        install_redaction()
        self._client = httpx.Client(
            timeout=self.policy.timeout,
            headers={"Accept": "application/json", "User-Agent": user_agent()},
        )
        self._access: CatalogAccess | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} base={self.base_url!r} limit={self.limiter.describe()!r}>"

    def close(self) -> None:
        self._client.close()

    def bind_catalog(self, access: CatalogAccess) -> None:
        """Read names of the ids asked about from this catalog (done by ``run_fetch``)."""
        self._access = access

    # the one request path ------------------------------------------------------------------
    def check_body(self, label: str, status: int, body: Any) -> None:
        """Raise :class:`ProviderError` for an error carried in the body (any status)."""

    def _request_once(self, label: str, url: str, params: dict[str, str] | None) -> Any:
        try:
            response = self._client.get(url, params=params)
        except httpx.TimeoutException:
            raise ProviderError(
                self.name, label, "no answer within the timeout", error_kind="timeout"
            ) from None
        except httpx.TransportError as exc:
            raise ProviderError(
                self.name,
                label,
                f"connection failed or dropped ({type(exc).__name__})",
                error_kind="connection",
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        status = response.status_code
        self.check_body(label, status, body)
        if status >= 400:
            message = response.reason_phrase or "error"
            if isinstance(body, dict) and isinstance(body.get("error"), str):
                message = body["error"]
            raise ProviderError(
                self.name,
                label,
                _short(message),
                status=status,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        if body is None:
            raise ProviderError(
                self.name, label, "the answer is not valid JSON", error_kind="malformed"
            )
        return body

    def get(self, label: str, path: str, params: dict[str, str] | None = None) -> Any:
        url = f"{self.base_url}/{path.lstrip('/')}" if path else self.base_url
        return self.retrier.call(lambda: self._request_once(label, url, params))

    def expect(self, ok: bool, label: str, what: str) -> None:
        """Raise a 'malformed answer' error unless ``ok``."""
        if not ok:
            raise ProviderError(self.name, label, f"expected {what}", error_kind="malformed")

    # facts ---------------------------------------------------------------------------------
    def track_fact(self, key: TrackKey) -> tuple[TrackFacts | None, MatchRecord]:
        raise NotImplementedError

    def artist_fact(self, key: ArtistKey) -> tuple[ArtistFacts | None, MatchRecord]:
        raise NotImplementedError

    def unmatched(self, kind: str, ident: str) -> MatchRecord:
        return MatchRecord(self.name, kind, ident, None, "unmatched")  # type: ignore[arg-type]

    def _catalog(self) -> CatalogAccess:
        if self._access is None:
            raise ProviderUnavailable(
                f"the {self.name} provider matches by name: it must be bound to a catalog "
                "(bind_catalog) before it is asked"
            )
        return self._access

    def fetch(self, kind: FactKind, ids: list[str]) -> BatchResult:  # type: ignore[type-arg]
        if kind not in self.kinds:
            raise ValueError(f"provider {self.name!r} gives {list(self.kinds)}, not {kind!r}")
        limit = self.batch_size(kind)
        if len(ids) > limit:
            raise ValueError(f"at most {limit} ids per batch, got {len(ids)}")
        from segue.providers.spotify import check_ids

        check_ids([i for i in ids if not i.startswith(NAME_KEY)])
        result: BatchResult[Any] = BatchResult(kind, list(ids))
        if not ids:
            return result
        access = self._catalog()
        keys: dict[str, Any] = (
            access.track_keys(ids) if kind == "track_facts" else access.artist_keys(ids)
        )
        match_kind = "track" if kind == "track_facts" else "artist"
        asked: list[str] = []
        for one in ids:
            if keys.get(one) is None:  # no name in the catalog: nothing to match by
                result.not_found.append(one)
                result.matches.append(self.unmatched(match_kind, one))
            else:
                asked.append(one)
        matched: set[str] = set()

        def ask(one: str) -> Any:
            key = keys[one]
            record, match = self.track_fact(key) if kind == "track_facts" else self.artist_fact(key)
            result.matches.append(match)
            matched.add(one)
            return record

        try:  # one id at a time, as every provider's single lookups: Ctrl+C keeps the answers
            self.one_by_one(
                result, asked, label=kind, ask=ask, gone=lambda _status: None, not_found={404}
            )
        finally:  # a 404: the source does not know it
            result.matches.extend(
                self.unmatched(match_kind, one)
                for one in result.not_found
                if keys.get(one) is not None and one not in matched
            )
        return result
