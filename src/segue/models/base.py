"""The one recommender interface, numpy in and out, in the manner of implicit.

Orientation is fixed: rows are playlists, columns are tracks. Models see only integer track
indices of a :class:`segue.snapshot.arrays.Snapshot`; raw ids become indices in the snapshot alone.

* ``fit(snapshot)`` learns from the snapshot's playlist x track matrix and track facts and
  returns ``self``. Learned state ends in ``_``.
* ``recommend(seeds, n, *, title=None, exclude=None)`` scores every track for one query:
  ``seeds`` int array of track indices (may be empty), ``title`` the playlist's name if any,
  ``exclude`` extra track indices never to return. Seeds are never returned. Returns
  ``(track_indices int64 (k,), scores float32 (k,))`` with ``k <= n``, scores non-increasing,
  ties by track index; a negative (or non-integer) ``n`` raises ValueError.
* ``recommend_batch(seed_lists, n, *, titles=None)`` does the same for many queries and returns
  2-D arrays of shape ``(len(seed_lists), n)`` padded with -1 (indices) and -inf (scores).
* ``explain(seeds, track, *, title=None)`` says in words why ``track`` scored for these seeds.
* ``needs_provider`` / ``attach(provider)``: a model that asks a web service at query time
  names the kind of provider it needs and is handed one by whoever runs it (the service,
  evaluation: :mod:`segue.providers.for_models`). Models never build a provider nor touch the
  network themselves; ``last_unknown_`` holds the track ids such a model's last call (this
  thread's) found outside the snapshot.
* ``save(dir)`` / ``load(dir, snapshot)`` round-trip without pickle (JSON + one ``.npy`` per
  array, mapped read-only on load: :mod:`segue.core.mapped`). Loaded arrays may be read-only.

These are written once, in :class:`Recommender`; a model implements the scoring hook
``_score`` and, when it ranks without scoring every track, ``_select`` / ``_select_batch``.
Top-n selection lives in :mod:`segue.models.topn`.
"""

from __future__ import annotations

import contextlib
import functools
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from segue.core import mapped
from segue.core.errors import NotFittedError
from segue.models.params import Constraints, check_params
from segue.models.topn import check_n, padded, top_n

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
    """Base class of every model.

    Subclasses set ``name`` and implement ``fit``, ``n_tracks`` and the scoring hook
    :meth:`_score`. The public methods are written here once: :meth:`scores`,
    :meth:`recommend` and :meth:`recommend_batch` check that the model is fitted, validate the
    seeds (and ``n``), then call the hooks with int64 seed arrays. A model that selects its
    answer without scoring every track overrides :meth:`_select` (and :meth:`_select_batch`
    when many queries at once can share work).
    """

    name: ClassVar[str] = "base"
    #: True for models that cannot use seed tracks (e.g. title-only).
    needs_title: ClassVar[bool] = False
    #: What each constructor parameter takes (see :mod:`segue.models.params`), checked before
    #: every ``fit``; parameters not declared here are not checked.
    _parameter_constraints: ClassVar[Constraints] = {}
    #: The kind of provider this model asks at query time (a kind of
    #: :mod:`segue.providers.for_models`), given with :meth:`attach`; None for models that
    #: answer from the snapshot alone.
    needs_provider: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Every ``fit`` a model defines checks the declared parameters first, so no model
        # writes that check (or can forget it).
        super().__init_subclass__(**kwargs)
        fit = cls.__dict__.get("fit")
        if fit is not None and not getattr(fit, "_checks_params", False):

            @functools.wraps(fit)
            def checked_fit(self: Recommender, snapshot: Any, *args: Any, **kw: Any) -> Any:
                self._validate_params()
                return fit(self, snapshot, *args, **kw)

            checked_fit._checks_params = True  # type: ignore[attr-defined]
            cls.fit = checked_fit  # type: ignore[method-assign]

    @classmethod
    def check_params(cls, params: Mapping[str, Any]) -> None:
        """Raise :class:`~segue.models.params.ParameterError` for the first of ``params`` that
        its declared constraints refuse (e.g. a variant's parameters, before it is built)."""
        check_params(cls.name, cls._parameter_constraints, params)

    def _validate_params(self) -> None:
        """Check this model's declared parameters as they are set now."""
        check_params(
            self.name,
            self._parameter_constraints,
            {k: getattr(self, k) for k in self._parameter_constraints if hasattr(self, k)},
        )

    def _check_fitted(self) -> None:
        if not getattr(self, "fitted_", False):
            raise NotFittedError(
                f"model {self.name!r} is not fitted: run `segue fit --model {self.name}` first"
            )

    @abstractmethod
    def fit(self, snapshot: Any) -> Self: ...

    @property
    @abstractmethod
    def n_tracks(self) -> int: ...

    # a provider asked at query time -------------------------------------------------------
    def attach(self, provider: Any) -> Self:
        """Give this model the provider it asks at query time (see :attr:`needs_provider`)."""
        raise TypeError(
            f"model {self.name!r} answers from the snapshot alone: it takes no provider"
        )

    @property
    def attached(self) -> bool:
        """True when the model has what it needs to answer: always, unless it needs a provider
        and none is attached yet."""
        return True

    @property
    def last_unknown_(self) -> list[str]:
        """Track ids this thread's last call found outside the snapshot, which the service may
        add to the catalog; always empty for models that rank the snapshot's tracks only."""
        return []

    # variants ------------------------------------------------------------------------------
    def variant_params(self) -> dict[str, Any]:
        """The parameters a variant of this fitted model starts from before a few of them are
        changed (:mod:`segue.service.variants`): its own, unless it chose settings at fit."""
        return self.get_params()

    def genre_terms(self) -> int | None:
        """Genre terms this fitted model's features keep, or None when it keeps no genre
        block of its own."""
        return None

    # the hooks -----------------------------------------------------------------------------
    @abstractmethod
    def _score(self, seeds: np.ndarray, *, title: str | None) -> np.ndarray:
        """Dense float32 scores of every track (n_tracks,) for one query; higher is better.

        ``seeds`` int64 track indices, already validated (in range, possibly repeated or
        empty); the model is fitted.
        """

    def _select(
        self, seeds: np.ndarray, n: int, *, title: str | None, exclude: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` best tracks that are neither seeds nor in ``exclude`` (int64, possibly
        empty), as :meth:`recommend` returns them. By default: every score, then top n."""
        scores = self._score(seeds, title=title).astype(np.float32, copy=True)
        return top_n(scores, n, dropped(seeds, exclude))

    def _select_batch(
        self, seed_lists: list[np.ndarray], n: int, titles: list[str | None]
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_select` of each query into arrays padded with -1 and -inf."""
        ids, vals = padded(len(seed_lists), n)
        no_exclusion = np.empty(0, dtype=np.int64)
        for row, seeds in enumerate(seed_lists):
            got_ids, got_vals = self._select(seeds, n, title=titles[row], exclude=no_exclusion)
            ids[row, : len(got_ids)] = got_ids
            vals[row, : len(got_vals)] = got_vals
        return ids, vals

    # the interface -------------------------------------------------------------------------
    def scores(self, seeds: Any, *, title: str | None = None) -> np.ndarray:
        """Dense float32 scores of every track (n_tracks,) for one query; higher is better."""
        self._check_fitted()
        return self._score(as_seed_array(seeds, self.n_tracks), title=title)

    def recommend(
        self,
        seeds: Any,
        n: int = 10,
        *,
        title: str | None = None,
        exclude: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted()
        n = check_n(n)
        seed_arr = as_seed_array(seeds, self.n_tracks)
        extra = (
            np.empty(0, dtype=np.int64) if exclude is None else np.asarray(exclude, dtype=np.int64)
        )
        return self._select(seed_arr, n, title=title, exclude=extra)

    def recommend_batch(
        self,
        seed_lists: list[Any],
        n: int = 10,
        *,
        titles: list[str | None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted()
        n = check_n(n)
        if titles is not None and len(titles) != len(seed_lists):
            raise ValueError(
                f"titles must have one entry per seed list: {len(titles)} != {len(seed_lists)}"
            )
        seeds = [as_seed_array(s, self.n_tracks) for s in seed_lists]
        return self._select_batch(
            seeds, n, list(titles) if titles is not None else [None] * len(seeds)
        )

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
