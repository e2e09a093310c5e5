"""The provider interface and the one retry/backoff/rate-limit policy all network code uses.

A provider answers questions about tracks and artists (by Spotify id) with typed records
(:mod:`segue.core.records`): track facts, artist facts, audio features. Each question is one batch of
ids; the answer is a :class:`BatchResult` saying which ids were found, which the source does not
know, which it cannot answer any more (an endpoint removed for this app), and which failed.

Every request goes through :meth:`Retrier.call`, the single place that decides what to do with a
failure:

* **429** — wait ``Retry-After`` seconds when it is at most ``max_retry_after`` (and at most
  ``rate_limit_retries`` times), else raise :class:`RateLimitStop` at once so the run stops cleanly
  and the next run resumes. A quota answer (``QUOTA_EXCEEDED``) stops at once too.
* **5xx, timeouts, dropped connections** — bounded exponential backoff: ``attempts`` tries in all,
  waits ``backoff_base * 2**k`` capped at ``backoff_cap``.
* **401** — refresh the token once (when the caller gives a ``refresh``) and retry.
* everything else (403, 404, malformed JSON, 400) is raised to the provider, which knows what a
  403 or a 404 means for the endpoint it called.

A provider whose source has a batch endpoint and a one-id endpoint asks through
:meth:`FactsProvider.batch_then_single`: the batch first, then one id at a time once the batch
endpoint is gone for this app, with the same rules for every source (what ends the run, what
means unknown, when the source is down).

Waits are capped everywhere: no call ever sleeps longer than ``max(max_retry_after, backoff_cap)``
at a time.
"""

from __future__ import annotations

import email.utils
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar

from segue.core.config import NetworkSettings
from segue.core.errors import SegueError
from segue.core.records import ArtistFacts, AudioFeatures, TrackFacts
from segue.core.redact import MASK as MASK
from segue.core.redact import redact as redact
from segue.core.redact import register_secret as register_secret

if TYPE_CHECKING:
    from segue.providers.ratelimit import RateLimiter

T = TypeVar("T")
R = TypeVar("R", TrackFacts, ArtistFacts, AudioFeatures)

#: What a provider can be asked for. ``track_facts``: names, album, release date, popularity;
#: ``artist_facts``: genres and popularity; ``audio_features``: the audio features.
FactKind = Literal["track_facts", "artist_facts", "audio_features"]
FACT_KINDS: tuple[FactKind, ...] = ("track_facts", "artist_facts", "audio_features")

ErrorKind = Literal["http", "timeout", "connection", "malformed", "config"]

TRANSIENT_STATUSES = frozenset({500, 502, 503, 504})


class ProviderError(SegueError):
    """One failed request, in one exception type for every provider.

    ``provider`` names the source ("spotify"), ``endpoint`` the request ("GET /tracks?ids="),
    ``status`` the HTTP status (None when no answer came: timeout, dropped connection, refused
    connection), ``retry_after`` the server's ``Retry-After`` in seconds when it sent one,
    ``error_kind`` one of "http", "timeout", "connection", "malformed", "config", ``reason`` the
    server's own short reason when it gave one (e.g. ``QUOTA_EXCEEDED``).

    Messages never carry request headers, and ``problem`` and ``reason`` (which may quote a
    server's answer) go through :func:`redact`, so no credential or token appears in the message,
    in the logs or in the catalog's fetch log even when a server echoes one back. Every provider
    raises this class, so every provider's errors are redacted here.
    """

    def __init__(
        self,
        provider: str,
        endpoint: str,
        problem: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        error_kind: ErrorKind = "http",
        reason: str | None = None,
    ) -> None:
        problem = redact(problem)
        reason = redact(reason) if reason is not None else None
        self.provider = provider
        self.endpoint = endpoint
        self.problem = problem
        self.status = status
        self.retry_after = retry_after
        self.error_kind = error_kind
        self.reason = reason
        code = f"HTTP {status}: " if status is not None else ""
        super().__init__(f"{provider} {endpoint}: {code}{problem}")

    @property
    def transient(self) -> bool:
        """Worth another try after a short wait: 5xx, timeouts and dropped connections."""
        if self.error_kind in ("timeout", "connection"):
            return True
        return self.error_kind == "http" and self.status in TRANSIENT_STATUSES


class RateLimitStop(ProviderError):
    """The source asked to wait longer than the cap (or kept answering 429): stop, resume later."""


class CredentialsRejected(ProviderError):
    """The source refused the app's credentials: nothing more can be asked in this run."""


class ProviderUnavailable(SegueError):
    """A provider cannot be used at all in this run (no credentials, no base URL, refused login)."""


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` in seconds: a number of seconds or an HTTP date; None when absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - (now if now is not None else datetime.now(UTC).timestamp())
    return max(0.0, seconds)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long and how often to retry; the same numbers for every provider.

    ``attempts``: tries of one request against 5xx/timeouts/dropped connections (>= 1).
    ``backoff_base``/``backoff_cap``: seconds; the k-th retry waits ``min(cap, base * 2**k)``.
    ``max_retry_after``: the longest ``Retry-After`` honoured; a longer one stops the run.
    ``rate_limit_retries``: 429 answers honoured per request before stopping.
    ``timeout``: seconds to wait for an answer to one request.
    """

    attempts: int = 4
    backoff_base: float = 0.5
    backoff_cap: float = 8.0
    max_retry_after: float = 60.0
    rate_limit_retries: int = 5
    timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {self.attempts}")
        for name in ("backoff_base", "backoff_cap", "max_retry_after", "timeout"):
            value = getattr(self, name)
            if not value >= 0:
                raise ValueError(f"{name} must be a number >= 0 (seconds), got {value!r}")
        if self.rate_limit_retries < 0:
            raise ValueError(f"rate_limit_retries must be >= 0, got {self.rate_limit_retries}")

    @classmethod
    def from_env(cls, settings: NetworkSettings | None = None) -> RetryPolicy:
        """From :class:`NetworkSettings` (``SEGUE_MAX_RETRY_AFTER``, ``SEGUE_HTTP_TIMEOUT``) plus
        ``SEGUE_HTTP_ATTEMPTS``, ``SEGUE_BACKOFF_BASE`` and ``SEGUE_BACKOFF_CAP``."""
        settings = settings or NetworkSettings.from_env()
        default = cls()

        def number(name: str, default: float) -> float:
            raw = os.environ.get(name)
            if raw is None or raw == "":
                return default
            try:
                return float(raw)
            except ValueError:
                raise ValueError(f"{name} must be a number, got {raw!r}") from None

        return cls(
            attempts=int(number("SEGUE_HTTP_ATTEMPTS", default.attempts)),
            backoff_base=number("SEGUE_BACKOFF_BASE", default.backoff_base),
            backoff_cap=number("SEGUE_BACKOFF_CAP", default.backoff_cap),
            max_retry_after=settings.max_retry_after,
            timeout=settings.timeout,
        )

    def backoff(self, retry: int) -> float:
        """Seconds before retry number ``retry`` (0-based)."""
        return float(min(self.backoff_cap, self.backoff_base * (2**retry)))


@dataclass
class Retrier:
    """Runs requests under a :class:`RetryPolicy`; keeps count of what it waited.

    ``sleep`` is injectable so tests can record waits instead of sleeping. ``limiter``, when
    given, spaces every try (retries included) to the provider's published rate limit.
    """

    policy: RetryPolicy
    provider: str
    sleep: Callable[[float], None] = time.sleep
    waited: float = 0.0
    retries: int = 0
    longest_wait: float = 0.0
    limiter: RateLimiter | None = None

    def _wait(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self.waited += seconds
        self.longest_wait = max(self.longest_wait, seconds)
        if seconds:
            self.sleep(seconds)

    def call(self, request: Callable[[], T], *, refresh: Callable[[], None] | None = None) -> T:
        """Run ``request`` until it answers, retrying as the policy says; raise the last failure."""
        policy = self.policy
        transient_failures = 0
        rate_limited = 0
        refreshed = False
        while True:
            try:
                if self.limiter is None:
                    return request()
                with self.limiter.slot():
                    return request()
            except CredentialsRejected:
                raise
            except ProviderError as exc:
                if exc.status == 429:
                    rate_limited += 1
                    self._rate_limited(exc, rate_limited)
                    continue
                if exc.status == 401 and refresh is not None and not refreshed:
                    refreshed = True
                    self.retries += 1
                    try:
                        refresh()
                    except CredentialsRejected:
                        raise
                    except ProviderError as failure:
                        if failure.status != 429:
                            raise
                        # The token endpoint rate-limits too: same rule as any 429 (wait
                        # within the cap, else stop cleanly), then refresh again.
                        rate_limited += 1
                        self._rate_limited(failure, rate_limited)
                        refreshed = False
                    continue
                if exc.transient:
                    transient_failures += 1
                    if transient_failures >= policy.attempts:
                        raise
                    self.retries += 1
                    self._wait(policy.backoff(transient_failures - 1))
                    continue
                raise

    def _rate_limited(self, exc: ProviderError, count: int) -> None:
        policy = self.policy
        wait = exc.retry_after if exc.retry_after is not None else policy.backoff(count - 1)
        if exc.reason and "QUOTA" in exc.reason.upper():
            raise RateLimitStop(
                exc.provider,
                exc.endpoint,
                f"quota exceeded ({exc.reason}); stopping, the next run resumes",
                status=429,
                retry_after=exc.retry_after,
                reason=exc.reason,
            ) from None
        if wait > policy.max_retry_after:
            raise RateLimitStop(
                exc.provider,
                exc.endpoint,
                f"rate limited: asked to wait {wait:.0f} s, more than the {policy.max_retry_after:g} s cap "
                "(SEGUE_MAX_RETRY_AFTER); stopping, the next run resumes",
                status=429,
                retry_after=exc.retry_after,
                reason=exc.reason,
            ) from None
        if count > policy.rate_limit_retries:
            raise RateLimitStop(
                exc.provider,
                exc.endpoint,
                f"rate limited {count} times in a row; stopping, the next run resumes",
                status=429,
                retry_after=exc.retry_after,
                reason=exc.reason,
            ) from None
        self.retries += 1
        self._wait(wait)


@dataclass
class BatchResult(Generic[R]):
    """What a provider said about one batch of ids.

    ``found``: records for the ids it knows. ``not_found``: ids it answered it does not know
    (404 or a null entry): never to be asked again. ``skipped``: ids it could not be asked about
    because the endpoint is gone for this app (asked again on a later run). ``errors``: groups of
    ids whose request failed, with the reason. ``stop``: set when this provider must not be
    asked again in this run (a rate limit past the cap, or credentials refused); everything in
    the result is still valid and should be kept. ``matches``: how ids were matched at a
    source that does not know Spotify ids (:class:`segue.providers.matching.MatchRecord`), stored with
    the facts.
    """

    kind: FactKind
    requested: list[str]
    found: list[R] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    errors: list[tuple[list[str], str]] = field(default_factory=list)
    stop: ProviderError | None = None
    matches: list[Any] = field(default_factory=list)

    @property
    def found_ids(self) -> list[str]:
        out: list[str] = []
        for record in self.found:
            key = _record_key(record)
            if key is not None:
                out.append(key)
        return out


class BatchInterrupted(KeyboardInterrupt):
    """Ctrl+C in the middle of a batch of single lookups: ``result`` holds what was answered
    before it, so the caller can keep it. Still a :class:`KeyboardInterrupt` for any caller that
    does not know this class."""

    def __init__(self, result: BatchResult) -> None:  # type: ignore[type-arg]
        super().__init__()
        self.result = result


def _record_key(record: TrackFacts | ArtistFacts | AudioFeatures) -> str | None:
    """The id a record answers: a track id, an artist's Spotify id, or ``name:<normalised
    name>`` for an artist known by name only (see :func:`segue.catalog.matching.artists_missing_genres`)."""
    if not isinstance(record, ArtistFacts):
        return record.track_id
    if record.artist_id is not None:
        return record.artist_id
    from segue.core.text import normalise_name

    norm = normalise_name(record.name)
    return f"name:{norm}" if norm else None


Notify = Callable[[str], None]

#: For the HTTP status of a failed request, the notice to mark its endpoint gone with for the run,
#: or None when that status does not mean the endpoint is gone.
GoneNotice = Callable[[int | None], str | None]
#: Statuses of a one-id lookup that mean the source does not know the id.
NOT_FOUND_STATUSES = frozenset({400, 404})


class FactsProvider(ABC):
    """A source of track/artist facts keyed by Spotify id.

    Subclasses set ``name``, ``kinds`` (what they can answer) and ``batch_sizes``, and implement
    :meth:`fetch`. ``notify`` receives one-line notices meant for the person running segue
    (e.g. "this endpoint answered 403, using single lookups"); each notice is sent once per
    provider instance.
    """

    name: ClassVar[str] = "base"
    kinds: ClassVar[tuple[FactKind, ...]] = ()
    batch_sizes: ClassVar[dict[str, int]] = {}

    def __init__(self, *, notify: Notify | None = None) -> None:
        self._notify = notify
        self._notices_sent: set[str] = set()
        self.notices: list[str] = []
        #: Endpoints found gone (403) during this run, with the notice given.
        self.gone: dict[str, str] = {}

    def set_notify(self, notify: Notify | None) -> None:
        self._notify = notify

    def notice(self, key: str, message: str) -> None:
        """Say ``message`` once per ``key`` for the life of this provider."""
        if key in self._notices_sent:
            return
        self._notices_sent.add(key)
        self.notices.append(message)
        if self._notify is not None:
            self._notify(message)

    def mark_gone(self, endpoint: str, message: str) -> None:
        """Remember that ``endpoint`` answered 403 and is not to be called again in this run."""
        if endpoint not in self.gone:
            self.gone[endpoint] = message
            self.notice(f"gone:{endpoint}", message)

    def is_gone(self, endpoint: str) -> bool:
        return endpoint in self.gone

    def batch_size(self, kind: FactKind) -> int:
        try:
            return self.batch_sizes[kind]
        except KeyError:
            raise ValueError(
                f"provider {self.name!r} does not give {kind!r}; it gives {list(self.kinds)}"
            ) from None

    def can_answer(self, kind: FactKind) -> bool:
        """True while the provider can still be asked for ``kind`` in this run."""
        return kind in self.kinds

    # the batch, then one id at a time ------------------------------------------------------
    def batch_then_single(
        self,
        result: BatchResult[R],
        *,
        batch_label: str,
        ask_batch: Callable[[], Sequence[tuple[str, R]]],
        batch_gone: GoneNotice,
        single_label: str,
        ask_single: Callable[[str], R | None],
        single_gone: GoneNotice,
        singles_after: Collection[int] = (),
    ) -> BatchResult[R]:
        """Ask about ``result.requested`` with one batch request, or one id at a time once the
        batch endpoint ``batch_label`` is gone for this run; returns ``result``, filled.

        ``ask_batch()``: ``(id, record)`` of the ids the batch request found (the others are
        unknown to the source). When it fails with a status ``batch_gone`` has a notice for, the
        batch endpoint is marked gone and the ids are looked up singly; with a status in
        ``singles_after`` (say 400: one bad id spoils the batch) this batch alone is; any other
        failure is recorded for the whole batch. A rate limit past the cap or refused
        credentials set ``result.stop``. The single lookups are :meth:`one_by_one`'s.
        """
        ids = result.requested
        if not ids:
            return result
        if not self.is_gone(batch_label):
            try:
                records = ask_batch()
            except (RateLimitStop, CredentialsRejected) as exc:
                result.stop = exc
                return result
            except ProviderError as exc:
                notice = batch_gone(exc.status)
                if notice is not None:
                    self.mark_gone(batch_label, notice)
                elif exc.status not in singles_after:
                    result.errors.append((list(ids), str(exc)))
                    return result
            else:
                got = {i for i, _ in records}
                result.found.extend(r for _, r in records)
                result.not_found.extend(i for i in ids if i not in got)
                return result
        self.one_by_one(result, ids, label=single_label, ask=ask_single, gone=single_gone)
        return result

    def one_by_one(
        self,
        result: BatchResult[R],
        ids: list[str],
        *,
        label: str,
        ask: Callable[[str], R | None],
        gone: GoneNotice,
        not_found: Collection[int] = NOT_FOUND_STATUSES,
    ) -> None:
        """Look ``ids`` up one at a time with ``ask(id)`` (None: unknown), into ``result``.

        A status in ``not_found`` means the id is unknown; one ``gone`` has a notice for marks
        the endpoint ``label`` gone and skips the ids left; two ids in a row failing after all
        their retries mean the source is down, and the ids left are recorded as failed without
        asking. A rate limit past the cap or refused credentials set ``result.stop``. Ctrl+C
        raises :class:`BatchInterrupted` holding what was answered.
        """
        try:
            self._one_by_one(result, ids, label, ask, gone, not_found)
        except KeyboardInterrupt:
            raise BatchInterrupted(result) from None  # the caller keeps what was answered

    def _one_by_one(
        self,
        result: BatchResult[R],
        ids: list[str],
        label: str,
        ask: Callable[[str], R | None],
        gone: GoneNotice,
        not_found: Collection[int],
    ) -> None:
        down = False  # the previous id failed after all its retries
        for pos, one in enumerate(ids):
            if self.is_gone(label):
                result.skipped.extend(ids[pos:])
                return
            try:
                record = ask(one)
            except (RateLimitStop, CredentialsRejected) as exc:
                result.stop = exc
                return
            except ProviderError as exc:
                if exc.status in not_found:
                    down = False
                    result.not_found.append(one)
                elif (notice := gone(exc.status)) is not None:
                    self.mark_gone(label, notice)
                    result.skipped.extend(ids[pos:])
                    return
                elif exc.transient and down:
                    # Two ids in a row failed after all their retries: the source is down;
                    # don't spend the retries again on every id left.
                    result.errors.append((ids[pos:], str(exc)))
                    return
                else:
                    down = exc.transient
                    result.errors.append(([one], str(exc)))
            else:
                down = False
                if record is None:
                    result.not_found.append(one)
                else:
                    result.found.append(record)

    @abstractmethod
    def fetch(self, kind: FactKind, ids: list[str]) -> BatchResult:  # type: ignore[type-arg]
        """Ask about one batch of at most ``batch_size(kind)`` ids (22-char Spotify ids).

        Raises :class:`ValueError` for a malformed id and :class:`ProviderUnavailable` when the
        provider cannot be used at all; every network failure ends up in the result instead.
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
