"""Running a challenge: fit a model, continue every challenge playlist with 500 tracks, score.

* :func:`run_challenge` continues every playlist of a challenge set with a ``recommend_fn`` and
  writes the submission; it knows nothing of models.
* :func:`recommend_fn_for` / :func:`make_recommend_fn` build that function from a fitted
  :class:`segue.models.base.Recommender` (or a saved one) and its snapshot, with the popularity
  fallback that completes short lists.
* :func:`evaluate` (``segue evaluate``) is the whole challenge on a folder made by
  ``segue challenge make``, the same code path a user runs by hand: ingest the training slices
  plus the challenge seeds (never the held-out tracks) into a fresh catalog in a temporary home
  (:func:`temporary_home`), build the snapshot, fit each model, write an official-format
  submission per model, score each file against ``truth.json``
  (:func:`segue.evaluation.score.score_submission`) and write ``results.md``, ``results.json`` and
  ``results.png`` (:mod:`segue.evaluation.report`).

Models, snapshots and the catalog are imported lazily.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from segue.core.errors import SegueError
from segue.core.home import Home
from segue.core.ids import is_spotify_id
from segue.evaluation.formats import (
    DEFAULT_EMAIL,
    DEFAULT_TEAM,
    N_RECOMMENDATIONS,
    bare_id,
    load_challenge_set,
    track_uri,
    write_seed_slice,
    write_submission,
)
from segue.evaluation.make import progress_bar
from segue.evaluation.report import write_report
from segue.evaluation.score import score_submission

if TYPE_CHECKING:
    from segue.models.base import Recommender
    from segue.snapshot.arrays import Snapshot

log = logging.getLogger(__name__)

#: ``recommend_fn(seed_track_ids, title, n=500) -> track ids``: bare 22-character ids, best first.
RecommendFn = Callable[..., Sequence[str]]


# ------------------------------------------------------------------------------------------
# one challenge set, one recommend_fn
# ------------------------------------------------------------------------------------------


@dataclass
class RunSummary:
    """What :func:`run_challenge` did."""

    path: Path
    n_playlists: int
    n_filled: int  # playlists completed from the fallback
    n_fallback_tracks: int
    n_dropped: int  # seeds and repeats the model returned, left out

    def line(self) -> str:
        return (
            f"wrote {self.path}: {self.n_playlists:,} playlists; {self.n_filled:,} completed from "
            f"the popularity fallback ({self.n_fallback_tracks:,} tracks); {self.n_dropped:,} "
            "seeds or repeats dropped"
        )


def _bare_track(value: Any, pid: int) -> str:
    if isinstance(value, str):
        bare = bare_id(value)
        if is_spotify_id(bare):
            return bare
    raise ValueError(
        f"recommend_fn returned {value!r} for pid {pid}: expected a 22-character track id "
        "(or a spotify:track: URI)"
    )


def run_challenge(
    challenge_set_path: str | Path,
    out_path: str | Path,
    recommend_fn: RecommendFn,
    *,
    fallback: Sequence[str] = (),
    team: str = DEFAULT_TEAM,
    email: str = DEFAULT_EMAIL,
    n: int = N_RECOMMENDATIONS,
    progress: bool = True,
) -> RunSummary:
    """Continue every playlist of a challenge set and write the submission.

    ``recommend_fn(seed_track_ids, title, n=500)`` gets the bare seed ids (file order) and the
    title (None where not given) and returns bare track ids, best first. Seeds and repeats it
    returns are dropped; short lists are completed from ``fallback`` (bare ids, e.g. the most
    popular tracks), never repeating a seed. Raises ``ValueError`` when even the fallback cannot
    give ``n`` tracks.
    """
    playlists = load_challenge_set(challenge_set_path)
    recs: dict[int, list[str]] = {}
    seeds_of: dict[int, list[str]] = {}
    fallback_ids = [_bare_track(t, -1) for t in fallback]
    n_filled = n_fallback = n_dropped = 0
    for pl in progress_bar(playlists, "recommending", "playlist", progress):
        got = recommend_fn(list(pl.seeds), pl.name, n=n)
        seeds = set(pl.seeds)
        chosen: dict[str, None] = {}
        for value in got:
            bare = _bare_track(value, pl.pid)
            if bare in seeds or bare in chosen:
                n_dropped += 1
                continue
            chosen[bare] = None
            if len(chosen) == n:
                break
        from_model = len(chosen)
        if len(chosen) < n:
            n_filled += 1
            for bare in fallback_ids:
                if bare not in seeds and bare not in chosen:
                    chosen[bare] = None
                    n_fallback += 1
                    if len(chosen) == n:
                        break
        if len(chosen) < n:
            raise ValueError(
                f"pid {pl.pid}: the model gave {from_model} usable tracks and the fallback "
                f"({len(fallback_ids)} tracks) completes them to {len(chosen)} of {n}; "
                "give a longer fallback"
            )
        recs[pl.pid] = [track_uri(t) for t in chosen]
        seeds_of[pl.pid] = [track_uri(t) for t in pl.seeds]
    path = write_submission(out_path, team, email, recs, seeds=seeds_of, expected_tracks=n)
    return RunSummary(path, len(playlists), n_filled, n_fallback, n_dropped)


# ------------------------------------------------------------------------------------------
# a fitted model as a recommend_fn
# ------------------------------------------------------------------------------------------


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


def attach_provider(model: Recommender, home: Home) -> Recommender:
    """``model``, given the provider it asks at query time when it needs one (built from
    ``home``'s credentials: :mod:`segue.providers.for_models`)."""
    kind = model.needs_provider
    if kind is not None and not model.attached:
        from segue.providers import for_models

        model.attach(for_models.build(kind, home=home))
    return model


def make_recommend_fn(model_name: str, home: Home) -> tuple[RecommendFn, list[str]]:
    """Load the built snapshot and the saved model ``model_name`` of ``home`` (given the
    provider it asks, when it asks one, from ``home``'s credentials).

    Raises :class:`segue.core.errors.NotFittedError` when either is not built yet, ``ValueError``
    for an unknown model name, :class:`~segue.providers.credentials.CredentialsError` when the
    model asks a provider and ``home`` leads to no credentials.
    """
    from segue.models.registry import load_model
    from segue.providers import for_models
    from segue.snapshot.arrays import Snapshot

    generation = home.generation()
    snapshot = Snapshot.load(generation.snapshot_dir)
    model = load_model(
        model_name,
        snapshot,
        root=generation.models_dir,
        provider_status=lambda kind: for_models.available(kind, home=home),
    )
    model = attach_provider(model, home)
    return recommend_fn_for(model, snapshot)


# ------------------------------------------------------------------------------------------
# the whole challenge: fit, run and score every model
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scratch:
    """The temporary folders of one evaluation: ``home`` and a scratch folder beside it."""

    home: Home
    folder: Path


@contextlib.contextmanager
def temporary_home() -> Iterator[Scratch]:
    """A fresh, empty home for one evaluation, removed afterwards: its catalog, snapshot and
    models never touch the user's. Yields it with a scratch folder beside it. The one place
    evaluation makes temporary folders for a run."""
    with tempfile.TemporaryDirectory(prefix="segue-evaluate-") as tmp_name:
        tmp = Path(tmp_name)
        yield Scratch(Home(tmp / "home").ensure(), tmp)


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no {what}; expected a folder made by `segue challenge make`"
        )
    return path


def _evaluate_one(
    name: str,
    snapshot: Any,
    challenge_set: Path,
    truth: Path,
    out: Path,
    *,
    progress: bool,
    home: Home,
) -> dict[str, Any]:
    """Fit one model, write its submission, score it (a model that asks a provider gets one
    from ``home``'s credentials)."""
    from segue.models.registry import fit_model

    started = time.perf_counter()
    model = fit_model(name, snapshot, save=False)
    fit_seconds = time.perf_counter() - started
    attach_provider(model, home)
    recommend, fallback = recommend_fn_for(model, snapshot)
    submission = out / "submissions" / f"{name}.csv.gz"
    started = time.perf_counter()
    run_challenge(challenge_set, submission, recommend, fallback=fallback, progress=progress)
    run_seconds = time.perf_counter() - started
    scores = score_submission(submission, truth)
    scores["fit_seconds"] = round(fit_seconds, 3)
    scores["run_seconds"] = round(run_seconds, 3)
    return scores


def evaluate(
    challenge_dir: str | Path,
    models: Sequence[str],
    out_dir: str | Path,
    *,
    progress: bool = True,
    home: Home | None = None,
) -> dict[str, dict[str, Any]]:
    """Fit, run and score every model of ``models`` on one challenge; write the report.

    Catalog, snapshot and models live in a temporary home; ``home`` (default: the one
    :meth:`Home.resolve` finds) is only where a model that asks a provider at query time (the
    ``spotify`` model) finds its credentials.

    ``challenge_dir`` holds ``train/``, ``challenge_set.json`` and ``truth.json``. Writes
    ``out_dir/submissions/<model>.csv.gz`` and ``out_dir/results.{md,json,png}``. Returns
    ``{model: scores}`` (see :func:`score_submission`) with ``fit_seconds`` and ``run_seconds``
    added.
    """
    from segue.catalog import Catalog
    from segue.catalog.ingest import ingest_paths
    from segue.models.registry import MODELS
    from segue.snapshot.from_catalog import build_snapshot

    if not models:
        raise ValueError("evaluate: no model given; expected one or more of " + ", ".join(MODELS))
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise ValueError(f"unknown model {unknown[0]!r}; expected one of: {', '.join(MODELS)}")
    settings = home if home is not None else Home.resolve(None)
    source = Path(challenge_dir)
    train_dir = _need(source / "train", "train/ folder of training slices")
    challenge_set = _need(source / "challenge_set.json", "challenge_set.json")
    truth = _need(source / "truth.json", "truth.json")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, Any]] = {}
    with temporary_home() as scratch:
        seeds_file = scratch.folder / "seeds" / "mpd.slice.challenge-seeds.json"
        n_seed_playlists = write_seed_slice(challenge_set, seeds_file)
        started = time.perf_counter()
        with Catalog.open(scratch.home.catalog) as catalog:
            ingest_paths(catalog, [train_dir, seeds_file], progress=progress)
            snapshot = build_snapshot(catalog)
        build_seconds = time.perf_counter() - started
        failed: dict[str, str] = {}
        for name in models:
            log.info("evaluate: fitting %s", name)
            try:
                results[name] = _evaluate_one(
                    name, snapshot, challenge_set, truth, out, progress=progress, home=settings
                )
            except (SegueError, ValueError, RuntimeError) as exc:
                # One model that cannot run (no network for `spotify`, say) must not cost
                # the comparison of the others: report it and go on.
                failed[name] = str(exc)
                log.info("evaluate: %s skipped: %s", name, exc)
    if not results:
        raise SegueError(
            "no model could be evaluated: "
            + "; ".join(f"{name}: {why}" for name, why in failed.items())
        )
    meta = {
        "challenge": str(source),
        "training playlists": f"{snapshot.n_playlists:,} ({n_seed_playlists:,} of them "
        "challenge playlists with their seeds only)",
        "tracks": f"{snapshot.n_tracks:,}",
        "catalog and snapshot build": f"{build_seconds:.1f} s",
    }
    for name, why in failed.items():
        meta[f"{name} (skipped)"] = why
    write_report(results, out, meta=meta)
    return results
