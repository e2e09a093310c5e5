"""Baselines every model must beat: the most popular tracks, and tracks drawn at random.

* :class:`PopularityRecommender` ranks by ``playlist_count`` (playlists holding the track in
  the snapshot), ties by track index; seeds and titles change nothing but the exclusions.
* :class:`RandomRecommender` ranks by random scores drawn from a generator seeded with
  ``random_state`` and the query's seed tracks, so the same query always gets the same answer
  (and batch equals single) while different playlists get different draws.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np

from segue.models.base import Recommender, dropped
from segue.models.params import Constraints, Interval

if TYPE_CHECKING:
    from segue.snapshot.arrays import Snapshot


class PopularityRecommender(Recommender):
    """Most-held tracks first: score = ``playlist_count`` (float32), ties by track index."""

    name: ClassVar[str] = "popularity"

    def __init__(self) -> None:
        pass

    @property
    def n_tracks(self) -> int:
        return int(self.counts_.shape[0])

    def fit(self, snapshot: Snapshot) -> Self:
        counts = snapshot.tracks["playlist_count"].fillna(0).to_numpy(dtype=np.float64)
        if counts.shape[0] != snapshot.n_tracks:
            raise ValueError(
                f"playlist_count has {counts.shape[0]} rows for {snapshot.n_tracks} tracks"
            )
        self.counts_ = counts.astype(np.float32)
        self._rank()
        self.fitted_ = True
        return self

    def _rank(self) -> None:
        # the whole order once: a query is then a walk down it, skipping the seeds
        self._ranking = np.lexsort((np.arange(self.counts_.size), -self.counts_))

    def _select(
        self, seeds: np.ndarray, n: int, *, title: str | None, exclude: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` most-held tracks that are not seeds (or ``exclude``d), ties by index."""
        drop = dropped(seeds, exclude)
        head = self._ranking[: n + np.unique(drop).size]
        picked = head[~np.isin(head, drop)][:n].astype(np.int64)
        return picked, self.counts_[picked]

    def _score(self, seeds: np.ndarray, *, title: str | None) -> np.ndarray:
        """``playlist_count`` of every track, float32 (n_tracks,); ``seeds`` and ``title`` unused."""
        return self.counts_.copy()

    def explain(self, seeds: np.ndarray, track: int, *, title: str | None = None) -> str:
        self._check_fitted()
        if not 0 <= int(track) < self.n_tracks:
            raise IndexError(f"track index {track} out of range [0, {self.n_tracks})")
        return f"popular: in {int(self.counts_[int(track)])} playlists"

    def _state_arrays(self) -> dict[str, np.ndarray]:
        return {"counts": self.counts_}

    def _load_state(self, arrays: dict[str, np.ndarray], snapshot: Any) -> None:
        if "counts" not in arrays:
            self.fit(snapshot)
            return
        self.counts_ = arrays["counts"].astype(np.float32)
        self._rank()
        if snapshot is not None and snapshot.n_tracks != self.counts_.shape[0]:
            raise ValueError(
                f"model was built for {self.counts_.shape[0]} tracks, the snapshot has {snapshot.n_tracks}: "
                "rebuild it with `segue fit --model popularity`"
            )
        self.fitted_ = True


class RandomRecommender(Recommender):
    """Uniform random scores, reproducible: the generator is seeded by ``random_state`` and
    the (sorted, distinct) seed tracks of the query."""

    name: ClassVar[str] = "random"
    _parameter_constraints: ClassVar[Constraints] = {"random_state": [Interval(int, 0, None)]}

    def __init__(self, *, random_state: int = 0) -> None:
        self.random_state = random_state

    @property
    def n_tracks(self) -> int:
        return int(self.n_tracks_)

    def fit(self, snapshot: Snapshot) -> Self:
        self.n_tracks_ = int(snapshot.n_tracks)
        self.fitted_ = True
        return self

    def _score(self, seeds: np.ndarray, *, title: str | None) -> np.ndarray:
        """Random float32 scores in [0, 1) (n_tracks,), the same for the same seeds."""
        seed_arr = np.unique(seeds)
        digest = zlib.crc32(seed_arr.astype("<i8").tobytes())
        rng = np.random.default_rng([self.random_state, digest, seed_arr.size])
        return rng.random(self.n_tracks, dtype=np.float32)

    def explain(self, seeds: np.ndarray, track: int, *, title: str | None = None) -> str:
        return "drawn at random"

    def _state_arrays(self) -> dict[str, np.ndarray]:
        return {"n_tracks": np.asarray([self.n_tracks_], dtype=np.int64)}

    def _load_state(self, arrays: dict[str, np.ndarray], snapshot: Any) -> None:
        if "n_tracks" in arrays:
            self.n_tracks_ = int(arrays["n_tracks"][0])
            self.fitted_ = True
        else:
            self.fit(snapshot)


__all__ = ["PopularityRecommender", "RandomRecommender"]
