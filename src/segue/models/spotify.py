"""Spotify's own recommendations as a model, for apps that still have the endpoint.

``GET /recommendations?seed_tracks=...`` takes up to 5 seed tracks; the model sends the first
``max_seeds`` seeds in the order given (callers put the most recent or most telling first) and
maps the answer back to snapshot indices. Tracks the snapshot does not know are dropped from the
scores and kept in ``last_unknown_`` so the service can grow the catalog with them. That record
is per thread: one model object may answer several threads at once, and each thread reads the
ids of its own last call.

The model never touches the network itself: it asks a provider it is given with
:meth:`SpotifyRecommender.attach` (any object with a :class:`RecommendationSource`'s
``recommendations``; the service and evaluation attach a
:class:`segue.providers.spotify.SpotifyProvider` built from the home's credentials, see
:mod:`segue.providers.for_models`). Without one it refuses to answer and says so. Whether the
endpoint answers at all (since 27 Nov 2024 new apps get 403) is asked by the service, through
:func:`segue.providers.for_models.available`, which hides the model when it does not.
``fit`` only stores the snapshot: there is nothing to learn locally.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self

import numpy as np

from segue.core.errors import SegueError
from segue.models.base import Recommender
from segue.models.params import Constraints, Interval

if TYPE_CHECKING:
    from segue.snapshot.arrays import Snapshot


class _HasTrackId(Protocol):
    @property
    def track_id(self) -> str: ...


class RecommendationSource(Protocol):
    """What the model asks: Spotify's recommendations for up to 5 seed track ids, best first
    (records with a ``track_id``, e.g. :class:`segue.core.records.TrackFacts`)."""

    def recommendations(
        self, seed_track_ids: list[str], *, limit: int = 100
    ) -> Sequence[_HasTrackId]: ...


class NoProviderError(SegueError):
    """The model was asked to recommend with no provider attached."""


class SpotifyRecommender(Recommender):
    """Scores from Spotify's recommendations: the k-th of m returned tracks scores ``(m - k) / m``
    (float32, in (0, 1]); every other track scores ``-inf``.

    ``limit``: tracks to ask for (1..100). ``max_seeds``: seeds sent (1..5).
    """

    name: ClassVar[str] = "spotify"
    needs_provider: ClassVar[str | None] = "spotify"
    _parameter_constraints: ClassVar[Constraints] = {
        "limit": [Interval(int, 1, 100)],
        "max_seeds": [Interval(int, 1, 5)],
    }

    def __init__(self, *, limit: int = 100, max_seeds: int = 5) -> None:
        self.limit = limit
        self.max_seeds = max_seeds
        self._provider: RecommendationSource | None = None
        # What each thread's last call left: a thread reads its own unknown ids, never those of
        # a call another thread made meanwhile on the same model.
        self._calls = threading.local()

    # the provider ------------------------------------------------------------------------
    def attach(self, provider: RecommendationSource) -> Self:
        """Ask Spotify through ``provider`` (replacing any attached before)."""
        self._provider = provider
        return self

    @property
    def attached(self) -> bool:
        return self._provider is not None

    @property
    def provider(self) -> RecommendationSource:
        """The attached provider; :class:`NoProviderError` when there is none."""
        if self._provider is None:
            raise NoProviderError(
                f"model {self.name!r} asks Spotify at query time and has no provider attached: "
                "give it one with attach(provider) (segue's service and evaluation attach a "
                "SpotifyProvider built from the home's Spotify credentials)"
            )
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

        Raises :class:`NoProviderError` with no provider attached, and what the provider raises
        (a ``ProviderError``) when Spotify cannot be asked; with no seeds, every score is ``-inf``
        and nothing is asked.
        """
        seed_arr = seeds
        out = np.full(self.n_tracks, -np.inf, dtype=np.float32)
        self._calls.unknown = []
        if seed_arr.size == 0:
            return out
        track_ids = self.snapshot_.tracks["track_id"].to_numpy()
        chosen = list(dict.fromkeys(int(i) for i in seed_arr))[: self.max_seeds]
        seed_ids = [str(track_ids[i]) for i in chosen]
        answer = self.provider.recommendations(seed_ids, limit=self.limit)
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
