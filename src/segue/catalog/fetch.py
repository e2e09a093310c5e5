"""Filling the catalog's missing facts from the network: ``segue fetch``, self-growing, playlists.

:func:`run_fetch` asks each provider only for what the catalog still lacks (track facts: names,
album, release date, popularity; artist facts: genres, popularity; audio features), in batches.
Each batch's answer is written at once in short transactions (facts, then the attempts and the
fetch-log lines), so a run killed at any moment loses nothing written, and a resumed run asks only
for what is still missing: at most the one batch in flight at the kill is asked again.

Ids a provider answered "not found" (or whose fact it cannot give, e.g. an artist without
genres) are recorded and never asked again; ids skipped because an endpoint is gone for this app
are not recorded, so a later run with better access can still ask.

Ctrl+C stops a run the same way: the lookups already answered in the batch in flight are written
(an interrupt that arrives during a write waits for its end), then :class:`FetchInterrupted`
carries the report of what was kept; a resumed run asks only for the rest.

Every failed batch goes to ``fetch-errors.log`` in the home's logs folder (timestamp,
provider, kind, reason, ids) and to the catalog's fetch log; the run ends with a total.

:func:`grow_catalog` adds unknown tracks (by single lookups) for the service;
:func:`fetch_playlist_tracks` reads a Spotify playlist; :func:`import_playlist` adds its tracks.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segue.core.errors import SegueError
from segue.core.home import Home
from segue.core.ids import is_spotify_id
from segue.core.records import ArtistFacts, AudioFeatures, TrackFacts
from segue.providers.base import (
    FACT_KINDS,
    BatchInterrupted,
    BatchResult,
    FactKind,
    FactsProvider,
    ProviderError,
    ProviderUnavailable,
    redact,
)
from segue.providers.credentials import CredentialsError
from segue.providers.matching import NAME_KEY, ArtistKey, TrackKey

if TYPE_CHECKING:
    from rich.console import Console

    from segue.catalog import Catalog
    from segue.providers.open_sources import OpenSourceProvider
    from segue.providers.spotify import SpotifyProvider

ERROR_LOG_NAME = "fetch-errors.log"
#: ``fetch_attempts.kind`` under which each kind of answer is recorded (the catalog's names).
ATTEMPT_KIND: dict[FactKind, str] = {
    "track_facts": "track_facts",
    "artist_facts": "artist_genres",
    "audio_features": "audio_features",
}
#: Failed batches in a row after which a provider is given up for this run (the source is down).
MAX_CONSECUTIVE_FAILURES = 3

#: ``segue fetch --provider`` values; "all" asks every configured source in this order.
PROVIDER_CHOICES = ("spotify", "musicbrainz", "lastfm", "deezer", "audio-service", "all")
#: Sources that match catalog tracks by name (no Spotify ids): MusicBrainz, Last.fm, Deezer.
OPEN_SOURCES = ("musicbrainz", "lastfm", "deezer")


# -- catalog access ----------------------------------------------------------------------------


class _CatalogAccess:
    """An open catalog, or a path opened for each short write so other processes can take turns
    on the file between batches (DuckDB lets one process hold it at a time)."""

    def __init__(self, catalog: Catalog | str | Path) -> None:
        self._catalog = catalog if not isinstance(catalog, str | Path) else None
        self._path = Path(catalog) if isinstance(catalog, str | Path) else None

    @contextlib.contextmanager
    def use(self) -> Iterator[Catalog]:
        if self._catalog is not None:
            yield self._catalog
            return
        from segue.catalog import Catalog

        if self._path is None:  # unreachable: one of the two is always set
            raise RuntimeError("no catalog given")
        with Catalog.open(self._path, wait=60) as catalog:
            yield catalog

    # what a name-matching source reads (segue.providers.open_sources.CatalogAccess)
    def track_keys(self, track_ids: Sequence[str]) -> dict[str, TrackKey]:
        from segue.catalog.matching import track_keys

        with self.use() as catalog:
            return track_keys(catalog, track_ids)

    def artist_keys(self, artist_ids: Sequence[str]) -> dict[str, ArtistKey]:
        from segue.catalog.matching import artist_keys

        with self.use() as catalog:
            return artist_keys(catalog, artist_ids)


# -- the report --------------------------------------------------------------------------------


@dataclass
class Tally:
    """Counts of one provider and kind in one run."""

    missing: int = 0  # ids the catalog lacked at the start (within --limit)
    asked: int = 0
    found: int = 0
    not_found: int = 0
    unavailable: int = 0  # answered, but without the fact (e.g. an artist without genres)
    skipped: int = 0  # endpoint gone for this app
    failed: int = 0  # ids of failed batches


@dataclass
class FetchReport:
    run_id: str
    log_path: Path
    tallies: dict[tuple[str, str], Tally] = field(default_factory=dict)
    failed_batches: int = 0
    notices: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)  # why a provider stopped early
    waited: float = 0.0  # seconds spent waiting on rate limits and backoff
    interrupted: bool = False  # stopped by Ctrl+C; everything answered before it is kept
    #: {provider: {how: count}}: how the ids asked of a name-matching source were matched.
    matched: dict[str, dict[str, int]] = field(default_factory=dict)

    def tally(self, provider: str, kind: str) -> Tally:
        return self.tallies.setdefault((provider, kind), Tally())

    @property
    def failed_ids(self) -> int:
        return sum(t.failed for t in self.tallies.values())

    @property
    def kept(self) -> int:
        """Answers written to the catalog in this run (found, not found, without the fact)."""
        return sum(t.found + t.not_found + t.unavailable for t in self.tallies.values())

    @property
    def complete(self) -> bool:
        """True when every asked batch got an answer and no provider stopped early."""
        return not self.failed_batches and not self.stopped and not self.interrupted

    def summary_lines(self) -> list[str]:
        lines = []
        for (provider, kind), t in self.tallies.items():
            if not t.missing:
                lines.append(f"{provider} {kind}: nothing missing")
                continue
            parts = [f"{t.asked:,} of {t.missing:,} asked", f"{t.found:,} found"]
            for label, n in (
                ("not found", t.not_found),
                ("without the fact", t.unavailable),
                ("skipped (endpoint gone)", t.skipped),
                ("failed", t.failed),
            ):
                if n:
                    parts.append(f"{n:,} {label}")
            lines.append(f"{provider} {kind}: " + ", ".join(parts))
        for provider, methods in self.matched.items():
            parts = [f"{n:,} by {how}" for how, n in sorted(methods.items()) if how != "unmatched"]
            parts.append(f"{methods.get('unmatched', 0):,} unmatched")
            lines.append(f"{provider} matching: " + ", ".join(parts))
        if self.failed_batches:
            lines.append(
                f"{self.failed_batches} failed batch(es), {self.failed_ids:,} id(s): see {self.log_path}"
            )
        else:
            lines.append("no failed batches")
        lines.extend(f"stopped early: {s}" for s in self.stopped)
        if self.interrupted:
            lines.append(
                f"interrupted: {self.kept:,} answer(s) of this run are kept in the catalog"
            )
        if not self.complete:
            lines.append("run `segue fetch` again to resume: only what is still missing is asked")
        return lines


# -- providers ---------------------------------------------------------------------------------


def build_providers(
    which: str = "all", *, credentials_path: str | None = None, home: Home | None = None
) -> tuple[list[FactsProvider], list[str]]:
    """Providers for ``which`` (one of :data:`PROVIDER_CHOICES`) and why others are left out.

    "all" is the default order, each source used when it is configured: Spotify (credentials),
    MusicBrainz and Deezer (no key: when named in ``SEGUE_OPEN_SOURCES`` or their base URL is
    set), Last.fm (an API key), the audio-feature service (``SEGUE_AUDIO_FEATURES_BASE``).
    Raises :class:`CredentialsError` / :class:`ProviderUnavailable` when the one asked for
    cannot be used, or when ``"all"`` leaves none.
    """
    from segue.providers.audio_service import AudioFeatureService
    from segue.providers.open_sources import enabled_open_sources
    from segue.providers.spotify import SpotifyProvider

    if which not in PROVIDER_CHOICES:
        raise ValueError(
            f"unknown provider {which!r}; expected one of {', '.join(PROVIDER_CHOICES)}"
        )
    providers: list[FactsProvider] = []
    left_out: list[str] = []
    errors: list[SegueError] = []
    if which in ("spotify", "all"):
        try:
            providers.append(SpotifyProvider.from_env(credentials_path, home=home))
        except (CredentialsError, ProviderUnavailable) as exc:
            if which == "spotify":
                raise
            errors.append(exc)
            left_out.append(f"spotify left out: {exc}")
    enabled = enabled_open_sources()
    for name in OPEN_SOURCES:
        if which not in (name, "all"):
            continue
        cls = _open_source_class(name)
        if (
            which == "all"
            and name != "lastfm"
            and not (name in enabled or os.environ.get(cls.base_env, "").strip())
        ):
            continue  # keyless sources join the default order only when asked for
        try:
            # Last.fm's key may be in the home's settings file
            settings: dict[str, Any] = {"home": home} if name == "lastfm" else {}
            providers.append(cls(**settings))
        except ProviderUnavailable as exc:
            if which == name:
                raise
            if name in enabled:
                left_out.append(f"{name} left out: {exc}")
    if which in ("audio-service", "all"):
        try:
            providers.append(AudioFeatureService.from_env())
        except ProviderUnavailable as exc:
            if which == "audio-service":
                raise
            left_out.append(f"audio-service left out: {exc}")
    if not providers:
        raise errors[0] if errors else ProviderUnavailable("no provider can be used")
    return providers, left_out


def _open_source_class(name: str) -> type[OpenSourceProvider]:
    if name == "musicbrainz":
        from segue.providers.musicbrainz import MusicBrainzProvider

        return MusicBrainzProvider
    if name == "lastfm":
        from segue.providers.lastfm import LastfmProvider

        return LastfmProvider
    from segue.providers.deezer import DeezerProvider

    return DeezerProvider


# -- the fetch run -----------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _missing(catalog: Catalog, kind: FactKind, limit: int | None, provider: str) -> list[str]:
    if kind == "artist_facts":
        return catalog.artists_missing_genres(limit=limit, provider=provider)
    return catalog.tracks_missing(kind, limit=limit, provider=provider)


def _has_fact(kind: FactKind, record: Any) -> bool:
    """Whether a found record fills the fact the catalog counts as missing."""
    if kind == "track_facts":
        return bool(record.release_date)
    if kind == "artist_facts":
        return record.genres is not None
    return True


def _record_key(record: TrackFacts | ArtistFacts | AudioFeatures) -> str | None:
    from segue.providers.base import _record_key as key

    return key(record)


def error_log_path(home: Home) -> Path:
    """``home``'s ``fetch-errors.log``."""
    return home.logs / ERROR_LOG_NAME


class _ErrorLog:
    """``fetch-errors.log``: one tab-separated line per failed batch, appended and flushed at once."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def write(self, run_id: str, provider: str, kind: str, ids: list[str], reason: str) -> None:
        reason = " ".join(redact(reason).split())
        line = "\t".join([_now(), run_id, provider, kind, reason, ",".join(ids)])
        if self.path is None:  # no home given: the catalog's fetch log only
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")


def _write_batch(
    access: _CatalogAccess,
    run_id: str,
    provider: str,
    result: BatchResult,
    errlog: _ErrorLog,  # type: ignore[type-arg]
) -> tuple[int, int]:
    """Write one batch's answer at once. Returns (found with the fact, answered without it)."""
    kind: FactKind = result.kind
    attempt_kind = ATTEMPT_KIND[kind]
    with_fact = [r for r in result.found if _has_fact(kind, r)]
    without = [r for r in result.found if not _has_fact(kind, r)]
    ok_ids = [k for k in map(_record_key, with_fact) if k]
    unavailable_ids = [k for k in map(_record_key, without) if k]
    for ids, reason in result.errors:
        errlog.write(run_id, provider, kind, ids, reason)
    # The facts and the record that they were asked for commit together: after a kill -9
    # either both are in the catalog (never asked again) or neither (asked again, once).
    with access.use() as catalog, catalog.transaction():
        if result.found:
            if kind == "track_facts":
                catalog.upsert_facts(tracks=result.found)
            elif kind == "artist_facts":
                catalog.upsert_facts(artists=result.found)
            else:
                catalog.upsert_facts(audio_features=result.found)
        if ok_ids:
            catalog.record_attempts(provider, attempt_kind, ok_ids, "ok")
            catalog.log_fetch(run_id, provider, kind, ok_ids, "ok", None)
        if unavailable_ids:
            catalog.record_attempts(provider, attempt_kind, unavailable_ids, "unavailable")
            catalog.log_fetch(
                run_id,
                provider,
                kind,
                unavailable_ids,
                "unavailable",
                "answered without this fact",
            )
        if result.not_found:
            catalog.record_attempts(provider, attempt_kind, result.not_found, "not_found")
            catalog.log_fetch(run_id, provider, kind, result.not_found, "not_found", None)
        for ids, reason in result.errors:
            catalog.log_fetch(run_id, provider, kind, ids, "error", redact(reason))
        if result.matches:
            from segue.catalog.matching import store_matches

            store_matches(catalog, result.matches)
    return len(with_fact), len(without)


class FetchInterrupted(KeyboardInterrupt):
    """Ctrl+C stopped :func:`run_fetch`; ``report`` says what was asked and kept before it."""

    def __init__(self, report: FetchReport) -> None:
        super().__init__()
        self.report = report


class _Interrupts:
    """Ctrl+C during a fetch run, in the main thread: raised as usual, but held back while a
    batch is written (so answered lookups are not lost half-way through a write) and
    remembered (so an error a library raises on the way out, as DuckDB turns the interrupt
    into its own exception, is known for what it is). Elsewhere (other threads, SIGINT
    ignored) it changes nothing."""

    def __init__(self) -> None:
        self.seen = False
        self._holding = False
        self._pending = False
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> _Interrupts:
        if threading.current_thread() is threading.main_thread():
            previous = signal.getsignal(signal.SIGINT)
            if previous not in (signal.SIG_IGN, None):
                self._previous = previous
                signal.signal(signal.SIGINT, self._handler)
                self._installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)

    def _handler(self, signum: int, frame: Any) -> None:
        self.seen = True
        if self._holding:
            self._pending = True
            return
        raise KeyboardInterrupt

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        self._holding = True
        try:
            yield
        finally:
            self._holding = False
        if self._pending:
            self._pending = False
            raise KeyboardInterrupt


def run_fetch(
    catalog: Catalog | str | Path,
    providers: list[FactsProvider],
    *,
    limit: int | None = None,
    kinds: tuple[FactKind, ...] = FACT_KINDS,
    progress: bool = True,
    console: Console | None = None,
    log_path: Path | None = None,
    run_id: str | None = None,
    home: Home | None = None,
) -> FetchReport:
    """Fill the catalog's missing facts from ``providers``; see the module docstring.

    ``catalog``: an open catalog, or its path (then it is opened for each write only, so other
    processes can use it between batches). ``limit``: at most this many ids per provider and
    kind. ``console``: where notices and the progress bar go (default: stderr). Failed batches
    go to ``log_path``, else to ``home``'s error log (one of them is needed). Returns a
    :class:`FetchReport`; network failures never raise, they are logged and counted.
    """
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be a non-negative int or None, got {limit!r}")
    console = console or Console(stderr=True, soft_wrap=True, highlight=False)
    run_id = run_id or datetime.now(UTC).strftime("%Y%m%dT%H%M%S-") + uuid.uuid4().hex[:6]
    if log_path is None:
        if home is None:
            raise ValueError("run_fetch: give the home (or log_path) for its error log")
        log_path = error_log_path(home)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    errlog = _ErrorLog(log_path)
    report = FetchReport(run_id=run_id, log_path=log_path)
    access = _CatalogAccess(catalog)
    bar = Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not progress,
        transient=False,
    )
    current: dict[str, str] = {"kind": ""}

    def notifier(provider_name: str) -> Callable[[str], None]:
        def notify(message: str) -> None:
            message = redact(message)
            report.notices.append(f"{provider_name}: {message}")
            console.print(f"note: {message}", markup=False)
            with access.use() as cat:
                cat.log_fetch(
                    run_id, provider_name, current["kind"] or "notice", [], "skipped", message
                )

        return notify

    with _Interrupts() as interrupts:
        try:
            with bar:
                for provider in providers:
                    provider.set_notify(notifier(provider.name))
                    try:
                        _run_provider(
                            provider,
                            access,
                            report,
                            errlog,
                            bar,
                            current,
                            kinds=kinds,
                            limit=limit,
                            interrupts=interrupts,
                        )
                    finally:
                        report.waited += getattr(getattr(provider, "retrier", None), "waited", 0.0)
                        provider.set_notify(None)
        except KeyboardInterrupt:
            report.interrupted = True
            raise FetchInterrupted(report) from None
        except Exception:
            if not interrupts.seen:
                raise
            report.interrupted = True  # a library's own error for the interrupt
            raise FetchInterrupted(report) from None
    return report


def _run_provider(
    provider: FactsProvider,
    access: _CatalogAccess,
    report: FetchReport,
    errlog: _ErrorLog,
    bar: Any,
    current: dict[str, str],
    *,
    kinds: tuple[FactKind, ...],
    limit: int | None,
    interrupts: _Interrupts,
) -> None:
    run_id = report.run_id
    bind = getattr(provider, "bind_catalog", None)
    if bind is not None:  # sources that match by name read the names from the catalog
        bind(access)
    for kind in FACT_KINDS:
        if kind not in kinds or kind not in provider.kinds:
            continue
        current["kind"] = kind
        tally = report.tally(provider.name, kind)
        if not provider.can_answer(kind):
            continue
        by_name = getattr(provider, "matches_by_name", False) and kind == "artist_facts"
        with access.use() as catalog:
            if by_name:  # artists known by name only can be matched too
                from segue.catalog.matching import artists_missing_genres

                wanted = artists_missing_genres(catalog, limit, provider.name)
            else:
                wanted = _missing(catalog, kind, limit, provider.name)
            malformed = [
                i
                for i in wanted
                if not is_spotify_id(i) and not (by_name and i.startswith(NAME_KEY))
            ]
            if malformed:
                # Never sent: a malformed id can only be a damaged catalog row.
                catalog.record_attempts(provider.name, ATTEMPT_KIND[kind], malformed, "not_found")
                catalog.log_fetch(
                    run_id, provider.name, kind, malformed, "not_found", "malformed id, not asked"
                )
        ids = [i for i in wanted if i not in set(malformed)]
        tally.missing = len(wanted)
        tally.not_found += len(malformed)
        if not ids:
            continue
        task = bar.add_task(f"{provider.name} {kind.replace('_', ' ')}", total=len(ids))
        failures_in_a_row = 0
        pos = 0
        while pos < len(ids):
            # The size may shrink during the run (a batch endpoint found gone).
            batch = ids[pos : pos + provider.batch_size(kind)]
            pos += len(batch)
            if not provider.can_answer(kind):
                tally.skipped += len(batch)
                bar.advance(task, len(batch))
                continue
            stopped_by_user = False
            try:
                result = provider.fetch(kind, batch)
            except BatchInterrupted as exc:  # Ctrl+C: keep what was answered before it
                result, stopped_by_user = exc.result, True
            except ProviderError as exc:  # providers report failures in the result; be safe anyway
                result = BatchResult(kind, batch, errors=[(batch, str(exc))])
            answered = set(result.found_ids) | set(result.not_found)
            with interrupts.hold():  # the answers and their count, whole or not at all
                with_fact, without = _write_batch(access, run_id, provider.name, result, errlog)
                tally.asked += len(answered) + sum(len(ids_) for ids_, _ in result.errors)
                tally.found += with_fact
                tally.unavailable += without
                tally.not_found += len(result.not_found)
                tally.skipped += len(result.skipped)
                tally.failed += sum(len(ids_) for ids_, _ in result.errors)
                report.failed_batches += len(result.errors)
            for match in result.matches:
                how = report.matched.setdefault(provider.name, {})
                how[match.method] = how.get(match.method, 0) + 1
            bar.advance(task, len(batch))
            if stopped_by_user:
                raise KeyboardInterrupt
            if result.stop is not None:
                stop = redact(result.stop)
                report.stopped.append(f"{provider.name}: {stop}")
                errlog.write(run_id, provider.name, kind, [], f"stopped: {stop}")
                with access.use() as catalog:
                    catalog.log_fetch(run_id, provider.name, kind, [], "error", f"stopped: {stop}")
                return
            failures_in_a_row = failures_in_a_row + 1 if result.errors and not answered else 0
            if failures_in_a_row >= MAX_CONSECUTIVE_FAILURES:
                reason = f"{provider.name}: {failures_in_a_row} batches in a row failed; giving up for this run"
                report.stopped.append(reason)
                errlog.write(run_id, provider.name, kind, [], reason)
                return


# -- self-growing ------------------------------------------------------------------------------


@dataclass
class GrowReport:
    """``added``: ids now in the catalog; ``unknown``: ids still unknown; ``message``: one line."""

    added: list[str]
    unknown: list[str]
    message: str


def _audio_provider() -> FactsProvider | None:
    from segue.providers.audio_service import AudioFeatureService

    try:
        return AudioFeatureService.from_env()
    except ProviderUnavailable:
        return None


def grow_catalog(
    catalog: Catalog,
    track_ids: list[str],
    *,
    provider: SpotifyProvider | None = None,
    audio: FactsProvider | None = None,
    home: Home | None = None,
) -> GrowReport:
    """Fetch tracks the catalog does not know (single lookups ``GET /tracks/{id}``), with their
    artists' facts and audio features where available, and add them.

    Never raises for network trouble or missing credentials: the ids stay in ``unknown`` and
    ``message`` says why. Ids already in the catalog count as added without being asked.
    ``home``: whose settings file may hold the credentials and whose error log gets failed
    batches (none without it).
    """
    from segue.providers.spotify import SpotifyProvider

    wanted = list(dict.fromkeys(t for t in track_ids if isinstance(t, str)))
    malformed = [t for t in wanted if not is_spotify_id(t)]
    wanted = [t for t in wanted if is_spotify_id(t)]
    known = {row["track_id"] for row in catalog.track_rows(wanted)} if wanted else set()
    todo = [t for t in wanted if t not in known]
    already = [t for t in wanted if t in known]
    if not todo:
        msg = f"{len(malformed)} malformed track id(s) ignored" if malformed else ""
        return GrowReport(already, malformed, msg)
    own = provider is None
    try:
        if provider is None:
            provider = SpotifyProvider.from_env(home=home)
    except CredentialsError as exc:
        return GrowReport(
            already,
            todo + malformed,
            f"{len(todo)} track(s) not in the catalog and not added: {exc}",
        )
    messages: list[str] = []
    provider.set_notify(messages.append)
    try:
        result = _grow_tracks(catalog, provider, todo)
        added = result.found_ids
        found_facts: list[TrackFacts] = list(result.found)
        if found_facts:
            _grow_extras(catalog, provider, audio, found_facts, messages, home)
    finally:
        provider.set_notify(None)
        if own:
            provider.close()
    unknown = [t for t in todo if t not in set(added)] + malformed
    parts = [f"added {len(added)} track(s) to the catalog"] if added else []
    if result.not_found:
        parts.append(f"{len(result.not_found)} unknown to Spotify")
    if result.errors or result.stop or result.skipped:
        reasons = (
            [r for _, r in result.errors] + ([str(result.stop)] if result.stop else []) + messages
        )
        parts.append(
            f"{len(unknown) - len(result.not_found) - len(malformed)} could not be fetched"
            + (f" ({reasons[0]})" if reasons else "")
        )
    return GrowReport(already + added, unknown, "; ".join(parts))


def _grow_tracks(
    catalog: Catalog, provider: SpotifyProvider, todo: list[str]
) -> BatchResult[TrackFacts]:
    result: BatchResult[TrackFacts] = BatchResult("track_facts", list(todo))
    for batch in _chunks(todo, 50):
        interrupted: BatchInterrupted | None = None
        try:
            part = provider.track_facts_single(batch)
        except BatchInterrupted as exc:  # Ctrl+C: keep the lookups answered before it
            part, interrupted = exc.result, exc
        with catalog.transaction():
            if part.found:
                catalog.upsert_facts(tracks=part.found)
            if part.found_ids:
                catalog.record_attempts(provider.name, "track_facts", part.found_ids, "ok")
            if part.not_found:
                catalog.record_attempts(provider.name, "track_facts", part.not_found, "not_found")
            for ids, reason in part.errors:
                catalog.log_fetch(None, provider.name, "track_facts", ids, "error", redact(reason))
        result.found.extend(part.found)
        result.not_found.extend(part.not_found)
        result.skipped.extend(part.skipped)
        result.errors.extend(part.errors)
        if interrupted is not None:
            raise interrupted
        if part.stop is not None:
            result.stop = part.stop
            break
    return result


def _grow_extras(
    catalog: Catalog,
    provider: SpotifyProvider,
    audio: FactsProvider | None,
    facts: list[TrackFacts],
    messages: list[str],
    home: Home | None = None,
) -> None:
    """Artist facts and audio features of newly added tracks, best effort (errors only logged)."""
    artist_ids = []
    for aid in dict.fromkeys(a.artist_id for f in facts for a in f.artists if a.artist_id):
        row = catalog.artist_by_ref(aid)
        if row is None or row.get("genres") is None:
            artist_ids.append(aid)
    track_ids = [f.track_id for f in facts]
    sources: list[tuple[FactsProvider, FactKind, list[str]]] = [
        (provider, "artist_facts", artist_ids)
    ]
    own_audio = audio is None
    audio = audio or _audio_provider()
    if audio is not None:
        sources.append((audio, "audio_features", track_ids))
    elif provider.can_answer("audio_features"):
        sources.append((provider, "audio_features", track_ids))
    errlog = _ErrorLog(error_log_path(home) if home is not None else None)
    access = _CatalogAccess(catalog)
    try:
        for source, kind, ids in sources:
            for batch in _chunks(ids, source.batch_size(kind)):
                if not source.can_answer(kind):
                    break
                result = source.fetch(kind, batch)
                _write_batch(access, "grow", source.name, result, errlog)
                if result.stop is not None:
                    messages.append(str(result.stop))
                    break
    finally:
        if own_audio and audio is not None:
            audio.close()


# -- playlists ---------------------------------------------------------------------------------


def fetch_playlist_tracks(
    ref: str, *, provider: SpotifyProvider | None = None, home: Home | None = None
) -> tuple[str | None, list[TrackFacts]]:
    """Name and tracks (in playlist order) of a Spotify playlist given in any reference form.

    Raises :class:`ValueError` for a malformed reference, :class:`CredentialsError` without
    credentials, and :class:`ProviderError` when Spotify will not give the playlist (the message
    says why in plain words: e.g. an app may read only playlists its user owns or collaborates on).
    """
    from segue.providers.spotify import SpotifyProvider

    own = provider is None
    provider = provider or SpotifyProvider.from_env(home=home)
    try:
        return provider.playlist_tracks(ref)
    finally:
        if own:
            provider.close()


@dataclass
class ImportReport:
    name: str | None
    track_ids: list[str]  # in playlist order, repeats kept
    added: int  # tracks new to the catalog


def import_playlist(
    catalog: Catalog,
    ref: str,
    *,
    provider: SpotifyProvider | None = None,
    home: Home | None = None,
) -> ImportReport:
    """Read a Spotify playlist and add its tracks to the catalog (tracks only: the playlist itself
    is not stored as a training playlist)."""
    name, facts = fetch_playlist_tracks(ref, provider=provider, home=home)
    unique: dict[str, TrackFacts] = {}
    for f in facts:
        unique.setdefault(f.track_id, f)
    added = catalog.upsert_tracks(list(unique.values())) if unique else 0
    return ImportReport(name, [f.track_id for f in facts], added)


__all__ = [
    "ERROR_LOG_NAME",
    "OPEN_SOURCES",
    "PROVIDER_CHOICES",
    "FetchInterrupted",
    "FetchReport",
    "GrowReport",
    "ImportReport",
    "build_providers",
    "fetch_playlist_tracks",
    "grow_catalog",
    "import_playlist",
    "run_fetch",
]
