"""Spark's results in segue's artifact formats, each written beside the old one and switched
in at the end, so a run that fails leaves the previous model answering.

Every model artifact goes through :func:`write_artifact`, which saves with the model's own
``save`` (the format ``segue fit`` writes and ``load_model`` reads): a change in how artifacts
are written or switched belongs there, in one place.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from segue.models.als import ALSRecommender
from segue.models.base import Recommender
from segue.models.itemknn import PRIOR_WEIGHT
from segue.models.popularity import PopularityRecommender


def write_artifact(model: Recommender, dest: Path) -> Path:
    """Save ``model`` into ``dest``: into a folder beside it first, then one rename; the old
    folder is moved aside before and removed after."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:8]
    staging = dest.with_name(f".{dest.name}.writing-{tag}")
    old = dest.with_name(f".{dest.name}.old-{tag}")
    try:
        model.save(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if dest.exists():
        dest.replace(old)
    staging.replace(dest)
    shutil.rmtree(old, ignore_errors=True)
    return dest


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


def write_als_artifact(
    item_factors: np.ndarray, counts: np.ndarray, params: dict[str, Any], dest: Path
) -> Path:
    """Spark's ALS factors as segue's ALS artifact at ``dest`` (see :func:`als_model`)."""
    return write_artifact(als_model(item_factors, counts, params), dest)


def write_popularity_artifact(counts: np.ndarray, dest: Path) -> Path:
    """Playlists per track (snapshot order) as segue's popularity artifact at ``dest``."""
    model = PopularityRecommender()
    model.counts_ = np.asarray(counts, dtype=np.float32)
    model._rank()
    model.fitted_ = True
    return write_artifact(model, dest)


__all__ = ["als_model", "write_als_artifact", "write_artifact", "write_popularity_artifact"]
