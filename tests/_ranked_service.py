"""A service over a given snapshot whose model ranks tracks by index, for the tests of what the
service does around a model (filters, versions, seeds): its order is known in advance."""

from __future__ import annotations

from pathlib import Path
from typing import Self

import numpy as np

from segue.models.base import Recommender
from segue.service.engine import Service
from segue.snapshot.arrays import Snapshot

#: The model name the service answers :class:`ScoreByIndex` under.
MODEL = "popularity"


class ScoreByIndex(Recommender):
    """Scores track i as n_tracks - i: a known order to test the service's filtering against."""

    name = MODEL

    def fit(self, snapshot: Snapshot) -> Self:
        self.n_ = snapshot.n_tracks
        self.fitted_ = True
        return self

    @property
    def n_tracks(self) -> int:
        return self.n_

    def _score(self, seeds: np.ndarray, *, title: str | None) -> np.ndarray:
        return np.arange(self.n_, 0, -1, dtype=np.float32)

    def explain(self, seeds: np.ndarray, track: int, *, title: str | None = None) -> str:
        return f"rank {track}"


def ranked_service(snap: Snapshot, home: Path) -> Service:
    """A service on ``home`` (``snap`` saved there) that never grows the catalog, answering
    model :data:`MODEL` with :class:`ScoreByIndex`."""
    snap.save(home / "artifacts" / "snapshot")
    service = Service(home, grow=False)
    service._models[MODEL] = ScoreByIndex().fit(snap)
    return service
