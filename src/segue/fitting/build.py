"""Build step: catalog -> snapshot -> fitted models, saved under the home folder as one set.

The new snapshot and models are built beside the set in use and switched in one step (see
:mod:`segue.core.artifacts`): a fit that fails, is interrupted or is killed leaves the previous
set answering, whole.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segue.core import artifacts
from segue.core.errors import SegueError
from segue.core.home import Home
from segue.models.registry import model_class, save_model
from segue.snapshot.arrays import Snapshot

if TYPE_CHECKING:
    from rich.console import Console

    from segue.models.base import Recommender

logger = logging.getLogger(__name__)

#: What ``segue fit`` builds by default, and what the demo builds.
DEFAULT_BUILD = ("hybrid", "model1", "model2", "itemknn", "als", "title", "popularity")


class NoDataError(SegueError):
    """The home has no catalog, or a catalog without tracks: there is nothing to fit."""


class FitError(SegueError):
    """A model could not be fitted; nothing was switched."""


def no_data_message(home: Home | Path, why: str) -> str:
    h = artifacts.home_option(home)
    return (
        f"nothing to fit: {why}. Add MPD playlist files with `segue {h}ingest PATH...` "
        f"(`segue synth` writes some), then run `segue {h}fit`; or try the bundled demo "
        "with `segue demo` or `segue recommend --demo ...`"
    )


def read_snapshot(home: Home | str | os.PathLike[str]) -> Snapshot:
    """Read the catalog of ``home`` into a snapshot (not saved). Refuses a home without a
    catalog or whose catalog has no tracks, without creating anything."""
    from segue.catalog import Catalog
    from segue.snapshot.from_catalog import build_snapshot

    home = Home.of(home)
    path = home.catalog
    if not path.exists():
        raise NoDataError(no_data_message(home, f"{home} has no catalog"))
    with Catalog.open(path) as catalog:
        snapshot = build_snapshot(catalog)
    if snapshot.n_tracks == 0:
        raise NoDataError(no_data_message(home, f"the catalog in {home} has no tracks"))
    return snapshot


def build_snapshot_from_catalog(home: Home | str | os.PathLike[str]) -> Snapshot:
    """Read the catalog of ``home`` into a snapshot (not switched in: :func:`build` does that)."""
    return read_snapshot(home)


class _Steps:
    """Progress of ``fit`` on a Rich console (stderr): one line per step with a spinner and
    its time, the running phase of a long model as the step's text. Without a terminal, only
    the lines ``log`` prints. ``on_step`` is told each step's text and each phase as
    ``"<step>: <phase>"`` (the demo's build page shows them)."""

    def __init__(
        self, console: Console | None, on_step: Callable[[str], None] | None = None
    ) -> None:
        self.console = console
        self.on_step = on_step
        self.bar: Any = None
        self.task: Any = None

    def __enter__(self) -> _Steps:
        if self.console is not None and self.console.is_terminal:
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self.bar = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    @contextmanager
    def step(self, text: str) -> Iterator[None]:
        from rich.markup import escape

        from segue.models.base import reporting_phases

        tell = self.on_step
        if tell is not None:
            tell(text)
        if self.bar is None:
            if tell is None:
                yield
            else:
                with reporting_phases(lambda name: tell(f"{text}: {name}")):
                    yield
            return
        task = self.bar.add_task(escape(text), total=None)

        def phase(name: str) -> None:
            self.bar.update(task, description=escape(f"{text}: {name}"))
            if tell is not None:
                tell(f"{text}: {name}")

        try:
            with reporting_phases(phase):
                yield
        finally:
            self.bar.remove_task(task)


def _plan(
    previous: artifacts.Generation | None,
    names: list[str],
    snapshot_id: str,
    *,
    only: bool,
) -> tuple[list[str], dict[str, str], dict[str, str]]:
    """What to do with the models of the set in use: ``(carry, refit, stale)``, the last two
    mapping a name to why.

    A model not asked for whose saved snapshot id is the new snapshot's is carried into the
    new set as it is; one fitted on another snapshot (or damaged) is fitted again (``only``:
    left out and reported stale), so no model of a set answers from another snapshot's data.
    """
    carry: list[str] = []
    refit: dict[str, str] = {}
    stale: dict[str, str] = {}
    if previous is None:
        return carry, refit, stale
    earlier = list(dict.fromkeys([*previous.built_models(), *previous.stale]))
    for name in earlier:
        if name in names:
            continue
        try:
            model_class(name)
        except ValueError:  # a model this segue no longer has
            continue
        status = artifacts.model_status(previous, name)
        fitted_on = _fitted_on(previous, name) if status.ok else None
        if fitted_on == snapshot_id:
            carry.append(name)
            continue
        if status.built and not status.ok:
            why = "damaged"
        else:
            why = "fitted on an earlier snapshot (the catalog changed since)"
        if only:
            stale[name] = f"stale: {why}, left out by `fit --only`"
        else:
            refit[name] = why
    return carry, refit, stale


def _fitted_on(gen: artifacts.Generation, name: str) -> str | None:
    import json

    try:
        data = json.loads((gen.model_dir(name) / artifacts.MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    got = data.get("snapshot_id") if isinstance(data, dict) else None
    return got if isinstance(got, str) else None


def build(
    models: tuple[str, ...] | list[str] = DEFAULT_BUILD,
    *,
    home: Home | str | os.PathLike[str],
    log: Callable[[str], None] | None = None,
    only: bool = False,
    console: Console | None = None,
    fitters: Mapping[str, Callable[[Snapshot], Recommender]] | None = None,
    on_step: Callable[[str], None] | None = None,
    lock_held: bool = False,
) -> dict[str, float]:
    """Read the catalog of ``home`` into a new snapshot, fit ``models`` on it and switch to the
    new set.

    Models built in the set in use and not named are carried over when the snapshot is
    unchanged, else fitted again (``only``: left out and reported stale). Returns seconds per
    step. ``console``: where the progress display goes (none without it). ``fitters``: how to
    make some of ``models`` from the new snapshot instead of fitting them here (a model trained
    elsewhere, e.g. on Spark); they are saved and switched in like the others. ``on_step``: told
    the text of each step as it starts and of each phase of a long one. ``lock_held``: the
    caller holds the home's fit lock (:func:`~segue.core.artifacts.fit_lock`) already. Raises
    :class:`NoDataError` for a home with nothing to fit, :class:`FitError` when a model
    cannot be fitted, :class:`~segue.core.artifacts.FitBusyError` when another fit runs; in every
    failure, and when interrupted, the set in use is left as it was.
    """
    say = log or logger.info
    home = Home.of(home)
    root = home.root
    names = list(dict.fromkeys(models))
    for name in names:
        model_class(name)  # unknown: ValueError before any work
    if not home.catalog.exists():  # refused before anything is created
        raise NoDataError(no_data_message(root, f"{root} has no catalog"))
    timings: dict[str, float] = {}
    held = nullcontext() if lock_held else artifacts.fit_lock(root)
    with held, _Steps(console, on_step) as steps:
        artifacts.remove_leftovers(root)
        previous = artifacts.current_or_none(root)
        t0 = time.perf_counter()
        with steps.step("snapshot: reading the catalog"):
            snapshot = read_snapshot(home)
            snapshot_id = snapshot.snapshot_id
        timings["snapshot"] = time.perf_counter() - t0
        say(
            f"snapshot: {snapshot.n_playlists:,} playlists x {snapshot.n_tracks:,} tracks, "
            f"{snapshot.interactions.nnz:,} rows ({timings['snapshot']:.1f} s)"
        )
        carry, refit, stale = _plan(previous, names, snapshot_id, only=only)
        for why in dict.fromkeys(refit.values()):
            which = [n for n, w in refit.items() if w == why]
            say(
                f"also fitting {', '.join(which)}: {why}, so every model of the new set answers "
                "from its snapshot (`--only` fits just the models named)"
            )
        with artifacts.GenerationBuilder(root) as gen:
            t0 = time.perf_counter()
            with steps.step("snapshot: saving"):
                snapshot.save(gen.snapshot_dir)
            timings["snapshot_save"] = time.perf_counter() - t0
            for name in carry:
                assert previous is not None
                gen.carry(previous.model_dir(name), name)
            for name in [*names, *refit]:
                t0 = time.perf_counter()
                with steps.step(f"fitting {name}"):
                    try:
                        make = (fitters or {}).get(name)
                        model = make(snapshot) if make else model_class(name)().fit(snapshot)
                    except (ValueError, SegueError) as exc:
                        raise FitError(
                            f"fitting {name} failed: {exc}; nothing was switched, the models "
                            "in use are kept"
                        ) from None
                    save_model(model, name, root=gen.models_dir, snapshot_id=snapshot_id)
                    del model
                timings[name] = time.perf_counter() - t0
                say(f"fitted {name} ({timings[name]:.1f} s)")
            gen.commit(
                {
                    "snapshot_id": snapshot_id,
                    "fitted": [*names, *refit],
                    "carried": carry,
                    "stale": stale,
                    "seconds": {k: round(v, 3) for k, v in timings.items()},
                }
            )
        artifacts.remove_old_generations(root)
    if carry:
        say(f"kept {', '.join(carry)} (fitted on the same snapshot)")
    if stale:
        say(
            f"left out {', '.join(stale)} (fitted on the previous snapshot): rebuild with "
            f"`{artifacts.fit_command(root, list(stale))}`"
        )
    return timings
