"""Spotify's own recommendations as a model, for apps that still have the endpoint.

``GET /recommendations?seed_tracks=...`` takes up to 5 seed tracks; the model sends the first
``max_seeds`` seeds in the order given (callers put the most recent or most telling first) and
maps the answer back to snapshot indices. Tracks the snapshot does not know are dropped from the
scores and kept in ``last_unknown_`` so the service can grow the catalog with them. That record
is per thread: one model object may answer several threads at once, and each thread reads the
ids of its own last call.

Since 27 Nov 2024 new apps get 403 from this endpoint; :meth:`SpotifyRecommender.available`
says so and the service hides the model. The answer is remembered per API base and client: an
answer or a 403 for the life of the process, a failure that may pass (rate limit, 5xx, timeout,
refused login) only for the server's ``Retry-After`` or ``retry_probe_after`` seconds.
``fit`` only stores the snapshot: there is nothing to learn locally. The network is asked at
query time, so this model needs credentials and a connection whenever it recommends.
"""

from __future__ import annotations

import math
import threading
import time
import weakref
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np

from segue.models.base import Recommender
from segue.models.params import Constraints, Interval

if TYPE_CHECKING:
    from segue.providers.spotify import SpotifyProvider
    from segue.snapshot.arrays import Snapshot

#: A track every catalog of Spotify has, used only to ask whether the endpoint answers.
PROBE_TRACK = "4uLU6hMCjMI75M1A2tKUQC"

#: A remembered availability: (available, why not, time.monotonic() it is good until).
_Remembered = tuple[bool, str, float]


def _recall(memory: MutableMapping[Any, _Remembered], key: Any) -> tuple[bool, str] | None:
    """The remembered availability under ``key`` while it is still good, else None."""
    known = memory.get(key)
    if known is None or time.monotonic() >= known[2]:
        return None
    return known[0], known[1]


class SpotifyRecommender(Recommender):
    """Scores from Spotify's recommendations: the k-th of m returned tracks scores ``(m - k) / m``
    (float32, in (0, 1]); every other track scores ``-inf``.

    ``limit``: tracks to ask for (1..100). ``max_seeds``: seeds sent (1..5).
    """

    name: ClassVar[str] = "spotify"
    _parameter_constraints: ClassVar[Constraints] = {
        "limit": [Interval(int, 1, 100)],
        "max_seeds": [Interval(int, 1, 5)],
    }
    #: Seconds a failed probe that may pass is remembered when the server sent no Retry-After.
    retry_probe_after: ClassVar[float] = 60.0
    _availability: ClassVar[dict[tuple[str, str], _Remembered]] = {}
    # Keyed by the provider object itself, held weakly: an ``id()`` key would hand a freed
    # provider's answer to a new one that happens to get the same address.
    _provider_availability: ClassVar[weakref.WeakKeyDictionary[SpotifyProvider, _Remembered]] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self, *, limit: int = 100, max_seeds: int = 5) -> None:
        self.limit = limit
        self.max_seeds = max_seeds
        self._provider: SpotifyProvider | None = None
        # What each thread's last call left: a thread reads its own unknown ids, never those of
        # a call another thread made meanwhile on the same model.
        self._calls = threading.local()

    # availability ------------------------------------------------------------------------
    @classmethod
    def available(
        cls, *, provider: SpotifyProvider | None = None, refresh: bool = False
    ) -> tuple[bool, str]:
        """``(True, "")`` when credentials exist and the endpoint answers, else ``(False, why)``.

        The network answer is remembered per API base and client (or per ``provider``): an
        answer or a 403 for the life of the process, any other failure (429, 5xx, timeout,
        refused login) for the ``Retry-After`` the server sent, else ``retry_probe_after``
        seconds, so a passing failure does not hide the model for good. ``refresh=True`` asks
        again at once.
        """
        from segue.core.config import NetworkSettings
        from segue.providers.base import ProviderError
        from segue.providers.credentials import CredentialsError, load_credentials
        from segue.providers.spotify import RECOMMENDATIONS_GONE, SpotifyProvider

        if provider is None:
            try:
                credentials = load_credentials()
            except CredentialsError as exc:
                return False, str(exc)
            if credentials is None:
                return False, (
                    "no Spotify credentials: set SPOTIPY_CLIENT_ID and SPOTIPY_CLIENT_SECRET "
                    "or write a Spotify.yaml"
                )
            key: Any = (NetworkSettings.from_env().spotify_api_base, credentials.client_id)
            memory: MutableMapping[Any, _Remembered] = cls._availability
            remembered = None if refresh else _recall(memory, key)
            if remembered is not None:
                return remembered
            probe = SpotifyProvider(credentials)
        else:
            key, memory, probe = provider, cls._provider_availability, provider
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
                keep = exc.retry_after if exc.retry_after is not None else cls.retry_probe_after
        finally:
            if provider is None:
                probe.close()
        memory[key] = (*answer, time.monotonic() + keep)
        return answer

    def use_provider(self, provider: SpotifyProvider) -> Self:
        """Ask through ``provider`` instead of one built from the environment."""
        self._provider = provider
        return self

    def _get_provider(self) -> SpotifyProvider:
        if self._provider is None:
            from segue.providers.spotify import SpotifyProvider

            self._provider = SpotifyProvider.from_env()
        return self._provider

    # the estimator -----------------------------------------------------------------------
    def fit(self, snapshot: Snapshot) -> Self:
        self.snapshot_ = snapshot
        self._calls.unknown = []
        self.fitted_ = True
        return self

    @property
    def last_unknown_(self) -> list[str]:
        """Ids Spotify answered in this thread's last call that the snapshot lacks, in Spotify's
        order (empty before any call, with no seeds, or when the call failed)."""
        return list(getattr(self._calls, "unknown", ()))

    @property
    def n_tracks(self) -> int:
        return int(self.snapshot_.n_tracks)

    def _score(self, seeds: np.ndarray, *, title: str | None) -> np.ndarray:
        """float32 (n_tracks,): rank scores of the tracks Spotify returned, ``-inf`` elsewhere.

        Raises :class:`SegueError` (a ``ProviderError`` or ``CredentialsError``) when Spotify
        cannot be asked; with no seeds, every score is ``-inf``.
        """
        seed_arr = seeds
        out = np.full(self.n_tracks, -np.inf, dtype=np.float32)
        self._calls.unknown = []
        if seed_arr.size == 0:
            return out
        track_ids = self.snapshot_.tracks["track_id"].to_numpy()
        chosen = list(dict.fromkeys(int(i) for i in seed_arr))[: self.max_seeds]
        seed_ids = [str(track_ids[i]) for i in chosen]
        answer = self._get_provider().recommendations(seed_ids, limit=self.limit)
        returned = list(dict.fromkeys(f.track_id for f in answer))
        known, unknown = self.snapshot_.known_indices(returned)
        self._calls.unknown = unknown
        if known.size:
            m = known.size
            out[known] = (m - np.arange(m, dtype=np.float32)) / np.float32(m)
        return out

    def explain(self, seeds: np.ndarray, track: int, *, title: str | None = None) -> str:
        self._check_fitted()
        if not 0 <= int(track) < self.n_tracks:
            raise IndexError(f"track index {track} out of range [0, {self.n_tracks})")
        return "recommended by Spotify's recommendations endpoint for these seeds"

    def get_params(self) -> dict[str, Any]:
        return {"limit": self.limit, "max_seeds": self.max_seeds}
