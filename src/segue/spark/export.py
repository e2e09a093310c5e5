"""Spark's results as segue's own models: saved by :func:`segue.fitting.build.build` with the rest of
a new set and switched in one step, so a run that fails leaves the previous set answering."""

from __future__ import annotations

from typing import Any

import numpy as np

from segue.models.als import ALSRecommender
from segue.models.itemknn import PRIOR_WEIGHT
from segue.models.popularity import PopularityRecommender


def als_model(
    item_factors: np.ndarray, counts: np.ndarray, params: dict[str, Any]
) -> ALSRecommender:
    """An :class:`ALSRecommender` holding factors trained elsewhere: ``item_factors`` float32
    (n_tracks, factors) in the snapshot's track order, ``counts`` playlists per track (its
    popularity prior, as :func:`segue.models.itemknn.popularity_prior` computes it)."""
    items = np.ascontiguousarray(item_factors, dtype=np.float32)
    counts = np.asarray(counts, dtype=np.float64)
    if items.ndim != 2 or items.shape[0] != counts.shape[0]:
        raise ValueError(
            f"item factors of shape {items.shape} do not match {counts.shape[0]} track counts"
        )
    model = ALSRecommender(**{**params, "factors": int(items.shape[1])})
    model._set_items(items)
    top = max(float(counts.max(initial=0)), 1.0)
    model.prior_ = (PRIOR_WEIGHT * counts / top).astype(np.float32)
    model.fitted_ = True
    return model


def popularity_model(counts: np.ndarray) -> PopularityRecommender:
    """Playlists per track (snapshot order) as segue's popularity model."""
    model = PopularityRecommender()
    model.counts_ = np.asarray(counts, dtype=np.float32)
    model._rank()
    model.fitted_ = True
    return model


__all__ = ["als_model", "popularity_model"]
