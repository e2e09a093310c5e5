"""Model names as the command line, the API and the web app know them.

Classes are imported lazily so ``segue --help`` stays fast. Each entry maps a name to
``"module:Class"``; the class must implement :class:`segue.models.base.Recommender`.
"""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segue import config
from segue.errors import NotFittedError

if TYPE_CHECKING:
    from segue.models.base import Recommender
    from segue.snapshot import Snapshot

MODELS: dict[str, str] = {
    "hybrid": "segue.models.hybrid:HybridRecommender",
    "popularity": "segue.models.popularity:PopularityRecommender",
    "random": "segue.models.popularity:RandomRecommender",
    "itemknn": "segue.models.itemknn:ItemKNNRecommender",
    "als": "segue.models.als:ALSRecommender",
    "title": "segue.models.title:TitleRecommender",
    "model1": "segue.models.content:Model1",
    "model2": "segue.models.content:Model2",
    "original": "segue.models.content:OriginalScoring",
    "spotify": "segue.models.spotify:SpotifyRecommender",
}

DEFAULT_MODEL = "hybrid"


def model_class(name: str) -> type[Recommender]:
    try:
        target = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; expected one of: {', '.join(MODELS)}") from None
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)  # type: ignore[no-any-return]


def model_dir(name: str, root: Path | None = None) -> Path:
    return (root or config.models_dir()) / name


def fit_model(
    name: str, snapshot: Snapshot, *, save: bool = True, root: Path | None = None, **params: Any
) -> Recommender:
    model = model_class(name)(**params).fit(snapshot)
    if save:
        save_model(model, name, root=root)
    return model


def save_model(model: Recommender, name: str, *, root: Path | None = None) -> Path:
    """Save a fitted ``model`` as model ``name`` under ``root`` (replacing an earlier save)."""
    target = model_dir(name, root)
    if target.exists():
        shutil.rmtree(target)
    model.save(target)
    return target


def load_model(name: str, snapshot: Snapshot, *, root: Path | None = None) -> Recommender:
    cls = model_class(name)
    target = model_dir(name, root)
    if not (target / "model.json").exists():
        # A model that needs something besides a fit (the spotify model needs credentials)
        # says what is missing first: "not built yet" would send a person to the wrong fix.
        available = getattr(cls, "available", None)
        if callable(available):
            ok, why = available()
            if not ok:
                raise NotFittedError(f"model {name!r} cannot be used here: {why}")
        raise NotFittedError(f"model {name!r} is not built yet: run `segue fit --model {name}`")
    return cls.load(target, snapshot)
