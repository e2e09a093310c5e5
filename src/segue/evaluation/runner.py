"""Adapters from a fitted model to the ``recommend_fn`` that :func:`run_challenge` calls.

:func:`segue.evaluation.challenge.run_challenge` knows nothing of models: it calls
``recommend_fn(seed_track_ids, title, n=500) -> bare track ids``. This module builds that
function from a :class:`segue.models.base.Recommender` and its
:class:`segue.snapshot.arrays.Snapshot`, plus the popularity fallback that completes short lists.
Models and snapshots are imported lazily.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from segue.evaluation.challenge import RecommendFn
from segue.evaluation.metrics import N_RECOMMENDATIONS

if TYPE_CHECKING:
    from segue.models.base import Recommender
    from segue.snapshot.arrays import Snapshot

#: Fallback length: 500 plus room for up to 100 seeds and the model's own picks.
FALLBACK_SIZE = 2 * N_RECOMMENDATIONS


def popularity_fallback(snapshot: Snapshot, size: int = FALLBACK_SIZE) -> list[str]:
    """The ``size`` tracks in most playlists of the snapshot, most popular first (bare ids).

    Ties are broken by track index so the list is deterministic.
    """
    counts = snapshot.tracks["playlist_count"].to_numpy(dtype=np.int64)
    order = np.lexsort((np.arange(len(counts)), -counts))[:size]
    ids = snapshot.tracks["track_id"].to_numpy()
    return [str(ids[i]) for i in order]


def recommend_fn_for(
    model: Recommender, snapshot: Snapshot, *, fallback_size: int = FALLBACK_SIZE
) -> tuple[RecommendFn, list[str]]:
    """``(recommend_fn, fallback)`` for a fitted model over ``snapshot``.

    Seeds unknown to the snapshot are ignored (the fallback completes what the model cannot
    give); the model never returns its seeds.
    """
    track_ids = snapshot.tracks["track_id"].to_numpy()

    def recommend(
        seed_track_ids: Sequence[str], title: str | None, n: int = N_RECOMMENDATIONS
    ) -> list[str]:
        seeds, _unknown = snapshot.known_indices(list(seed_track_ids))
        if len(seeds) == 0 and not title:
            return []
        indices, _scores = model.recommend(seeds, n, title=title)
        indices = indices[indices >= 0]
        return [str(track_ids[i]) for i in indices]

    return recommend, popularity_fallback(snapshot, fallback_size)


def make_recommend_fn(model_name: str) -> tuple[RecommendFn, list[str]]:
    """Load the built snapshot and the saved model ``model_name`` from the home folder.

    Raises :class:`segue.core.errors.NotFittedError` when either is not built yet, ``ValueError``
    for an unknown model name.
    """
    from segue.core import config
    from segue.models.registry import load_model
    from segue.snapshot.arrays import Snapshot

    snapshot = Snapshot.load(config.snapshot_dir())
    model = load_model(model_name, snapshot)
    return recommend_fn_for(model, snapshot)
