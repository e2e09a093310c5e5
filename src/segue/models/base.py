"""The one recommender interface, numpy in and out, in the manner of implicit.

Orientation is fixed: rows are playlists, columns are tracks. Models see only integer track
indices of a :class:`segue.snapshot.arrays.Snapshot`; raw ids become indices in the snapshot alone.

* ``fit(snapshot)`` learns from the snapshot's playlist x track matrix and track facts and
  returns ``self``. Learned state ends in ``_``.
* ``recommend(seeds, n, *, title=None, exclude=None)`` scores every track for one query:
  ``seeds`` int array of track indices (may be empty), ``title`` the playlist's name if any,
  ``exclude`` extra track indices never to return. Seeds are never returned. Returns
  ``(track_indices int64 (k,), scores float32 (k,))`` with ``k <= n``, scores non-increasing.
* ``recommend_batch(seed_lists, n, *, titles=None)`` does the same for many queries and returns
  2-D arrays of shape ``(len(seed_lists), n)`` padded with -1 (indices) and -inf (scores).
* ``explain(seeds, track, *, title=None)`` says in words why ``track`` scored for these seeds.
* ``save(dir)`` / ``load(dir, snapshot)`` round-trip without pickle (JSON + one ``.npy`` per
  array, mapped read-only on load: :mod:`segue.core.mapped`). Loaded arrays may be read-only.
"""

from __future__ import annotations

import contextlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from segue.core import mapped
from segue.core.errors import NotFittedError

#: The on-disk format of a saved model: ``model.json`` (name, format, parameters) and one
#: ``.npy`` file per learned array in ``arrays/``, mapped read-only when loaded
#: (:mod:`segue.core.mapped`). Format 1 kept the arrays in one ``state.npz``.
FORMAT_VERSION = 2
ARRAYS_DIR = "arrays"

_phase_hook: ContextVar[Callable[[str], None] | None] = ContextVar("segue_fit_phase", default=None)


def fit_phase(text: str) -> None:
    """Say which phase of a long ``fit`` is running (``segue fit`` shows it in its progress
    display); does nothing when no one listens."""
    hook = _phase_hook.get()
    if hook is not None:
        hook(text)


@contextlib.contextmanager
def reporting_phases(hook: Callable[[str], None]) -> Iterator[None]:
    """Send the :func:`fit_phase` calls made in this block (this thread) to ``hook``."""
    token = _phase_hook.set(hook)
    try:
        yield
    finally:
        _phase_hook.reset(token)


def top_n(
    scores: np.ndarray, n: int, exclude: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the ``n`` largest finite scores, best first.

    ``scores`` float array (n_tracks,), modified in place at ``exclude``. Uses
    ``argpartition`` so the cost is O(n_tracks) rather than a full sort.
    """
    if exclude is not None and len(exclude):
        scores[exclude] = -np.inf
    n = min(n, scores.shape[0])
    if n <= 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    if n < scores.shape[0]:
        part = np.argpartition(-scores, n - 1)[:n]
    else:
        part = np.arange(scores.shape[0])
    order = part[np.lexsort((part, -scores[part]))]
    keep = np.isfinite(scores[order])
    order = order[keep]
    return order.astype(np.int64), scores[order].astype(np.float32)


def as_seed_array(seeds: Any, n_tracks: int) -> np.ndarray:
    """Validate seed indices on the hot path: refuse, never convert silently."""
    arr = np.asarray(seeds)
    if arr.ndim != 1:
        raise ValueError(
            f"seeds must be a one-dimensional array of track indices, got {arr.ndim} dimensions"
        )
    if arr.size == 0:
        return arr.astype(np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"seeds must be integer track indices, got dtype {arr.dtype}")
    if arr.min() < 0 or arr.max() >= n_tracks:
        raise IndexError(
            f"seed track index out of range [0, {n_tracks}): min {arr.min()}, max {arr.max()}"
        )
    return arr.astype(np.int64)


def dropped(seeds: np.ndarray, exclude: np.ndarray | None) -> np.ndarray:
    """Track indices a query must never return: its seeds and any it asked to exclude."""
    if exclude is None:
        return seeds
    return np.concatenate([seeds, np.asarray(exclude, dtype=np.int64)])


class Recommender(ABC):
    """Base class of every model. Subclasses set ``name`` and implement ``fit``/``_scores``."""

    name: ClassVar[str] = "base"
    #: True for models that cannot use seed tracks (e.g. title-only).
    needs_title: ClassVar[bool] = False

    def _check_fitted(self) -> None:
        if not getattr(self, "fitted_", False):
            raise NotFittedError(
                f"model {self.name!r} is not fitted: run `segue fit --model {self.name}` first"
            )

    @abstractmethod
    def fit(self, snapshot: Any) -> Self: ...

    @abstractmethod
    def scores(self, seeds: np.ndarray, *, title: str | None = None) -> np.ndarray:
        """Dense float32 scores of every track (n_tracks,) for one query; higher is better."""

    @property
    @abstractmethod
    def n_tracks(self) -> int: ...

    def recommend(
        self,
        seeds: Any,
        n: int = 10,
        *,
        title: str | None = None,
        exclude: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted()
        seed_arr = as_seed_array(seeds, self.n_tracks)
        scores = self.scores(seed_arr, title=title).astype(np.float32, copy=True)
        drop = dropped(seed_arr, exclude)
        return top_n(scores, n, drop)

    def recommend_batch(
        self,
        seed_lists: list[Any],
        n: int = 10,
        *,
        titles: list[str | None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        ids = np.full((len(seed_lists), n), -1, dtype=np.int64)
        vals = np.full((len(seed_lists), n), -np.inf, dtype=np.float32)
        for row, seeds in enumerate(seed_lists):
            t = titles[row] if titles is not None else None
            got_ids, got_vals = self.recommend(seeds, n, title=t)
            ids[row, : len(got_ids)] = got_ids
            vals[row, : len(got_vals)] = got_vals
        return ids, vals

    def explain(self, seeds: np.ndarray, track: int, *, title: str | None = None) -> str:
        return f"scored by {self.name}"

    def explain_many(
        self, seeds: np.ndarray, tracks: np.ndarray, *, title: str | None = None
    ) -> list[str]:
        """Explanations of several recommended tracks for one query.

        Models whose explanation needs the query's full scoring override this to score once.
        """
        return [self.explain(seeds, int(t), title=title) for t in np.asarray(tracks).tolist()]

    # persistence ---------------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        return {
            k: v for k, v in vars(self).items() if not k.endswith("_") and not k.startswith("_")
        }

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "model.json").write_text(
            json.dumps(
                {"name": self.name, "format_version": FORMAT_VERSION, "params": self.get_params()},
                indent=2,
            )
        )
        arrays = self._state_arrays()
        if arrays:
            mapped.write_arrays(directory / ARRAYS_DIR, arrays)

    def _state_arrays(self) -> dict[str, np.ndarray]:
        """Learned arrays to save; override with ``_load_state`` in models that have state."""
        return {}

    def _load_state(self, arrays: dict[str, np.ndarray], snapshot: Any) -> None:
        self.fit(snapshot)

    @classmethod
    def load(cls, directory: Path, snapshot: Any) -> Self:
        directory = Path(directory)
        meta = json.loads((directory / "model.json").read_text())
        check_format(directory, meta, cls.name)
        model = cls(**meta["params"])
        model._load_state(mapped.read_arrays(directory / ARRAYS_DIR), snapshot)
        return model


def check_format(directory: Path, meta: dict[str, Any], name: str) -> None:
    """Refuse a model saved in another format than this segue's (an older segue saved its
    arrays in one ``state.npz``), with the command that rebuilds it."""
    got = meta.get("format_version")
    if got == FORMAT_VERSION:
        return
    from segue.core.artifacts import ArtifactError, fit_command, home_of, shown

    home = home_of(directory)
    was = f"format {got}" if got is not None else "an older format"
    raise ArtifactError(
        f"model {name!r} in {shown(directory, home)} was saved in {was} by another version "
        f"of segue; this one reads format {FORMAT_VERSION}: rebuild it with "
        f"`{fit_command(home)}`"
    )
