"""Model names as the command line, the API and the web app know them.

Classes are imported lazily so ``segue --help`` stays fast. Each entry maps a name to
``"module:Class"``; the class must implement :class:`segue.models.base.Recommender`.
"""

from __future__ import annotations

import importlib
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segue.core.errors import NotFittedError, SegueError

if TYPE_CHECKING:
    from segue.models.base import Recommender
    from segue.snapshot.arrays import Snapshot

MODELS: dict[str, str] = {
    "hybrid": "segue.models.hybrid:HybridRecommender",
    "popularity": "segue.models.popularity:PopularityRecommender",
    "random": "segue.models.popularity:RandomRecommender",
    "itemknn": "segue.models.itemknn:ItemKNNRecommender",
    "als": "segue.models.als:ALSRecommender",
    "rp3beta": "segue.models.rp3:RP3betaRecommender",
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


def model_dir(name: str, root: Path) -> Path:
    """The folder of model ``name`` in the models folder ``root``."""
    return Path(root) / name


def fit_model(
    name: str, snapshot: Snapshot, *, save: bool = True, root: Path | None = None, **params: Any
) -> Recommender:
    """Fit model ``name`` on ``snapshot``; with ``save``, save it in the models folder ``root``."""
    if save and root is None:
        raise ValueError("fit_model: saving a model needs the models folder (root)")
    model = model_class(name)(**params).fit(snapshot)
    if save:
        assert root is not None
        save_model(model, name, root=root, snapshot_id=snapshot.snapshot_id)
    return model


def save_model(
    model: Recommender, name: str, *, root: Path, snapshot_id: str | None = None
) -> Path:
    """Save a fitted ``model`` as model ``name`` under ``root``, whole or not at all.

    Written into a temporary folder beside the target, synced to disk, listed (size, CRC-32,
    ``snapshot_id``: the snapshot it was fitted on) in its ``manifest.json``, then renamed into
    place; an earlier save of ``name`` is replaced.
    """
    from segue.core.artifacts import MANIFEST, sync_and_describe, write_json

    target = model_dir(name, root)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{name}.writing-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        model.save(tmp)
        files = sync_and_describe(tmp)
        write_json(
            tmp / MANIFEST,
            {
                "model": name,
                "snapshot_id": snapshot_id,
                "saved_at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                "files": files,
            },
        )
        if target.exists():
            old = target.with_name(f".{name}.old-{os.getpid()}")
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def load_model(
    name: str,
    snapshot: Snapshot,
    *,
    root: Path,
    provider_status: Callable[[str], tuple[bool, str]] | None = None,
) -> Recommender:
    """Load model ``name`` saved under ``root`` for ``snapshot``.

    ``provider_status(kind)``: ``(usable, why not)`` of the kind of provider a model asks at
    query time (:func:`segue.providers.for_models.available`); asked only for such a model that
    is not built, so that what is missing first (credentials, say) is what the error names.

    Checks first that its files are all there at the sizes written and that it was fitted on
    this snapshot; any failure to read it is an :class:`~segue.core.artifacts.ArtifactError`
    naming the file and the command that rebuilds it (never a traceback from a reader).
    """
    from segue.core.artifacts import (
        ArtifactError,
        check_model_files,
        damaged_file,
        fit_command,
        home_of,
        shown,
    )

    cls = model_class(name)
    target = model_dir(name, root)
    if not (target / "model.json").exists():
        # A model that needs something besides a fit (the spotify model asks a provider, which
        # needs credentials) says what is missing first: "not built yet" would send a person to
        # the wrong fix. Whoever loads it says whether its provider answers.
        if cls.needs_provider is not None and provider_status is not None:
            ok, why = provider_status(cls.needs_provider)
            if not ok:
                raise NotFittedError(f"model {name!r} cannot be used here: {why}")
        raise NotFittedError(f"model {name!r} is not built yet: run `segue fit --model {name}`")
    check_model_files(target, name, snapshot.manifest.get("snapshot_id"))
    try:
        return cls.load(target, snapshot)
    except (SegueError, MemoryError):
        raise
    except Exception as exc:  # any reader's failure on a file of the model: the model is bad
        home = home_of(target)
        problem = damaged_file(target)
        where = f"{shown(target, home)}/{problem}" if problem else shown(target, home)
        detail = str(exc).splitlines()[0][:160] if str(exc) else ""
        raise ArtifactError(
            f"model {name!r} cannot be loaded from {where} ({type(exc).__name__}: {detail}): "
            f"rebuild it with `{fit_command(home, [name])}`"
        ) from None
