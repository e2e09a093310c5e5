"""``segue evaluate``: the whole challenge on a folder made by ``segue challenge make``.

Steps, the same code path a user runs by hand: ingest the training slices plus the challenge
seeds (never the held-out tracks) into a fresh catalog in a temporary home, build the snapshot,
fit each model, continue the official-format challenge set into an official-format submission
per model, score each submission file against ``truth.json``, and write ``results.md``,
``results.json`` and ``results.png``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from segue.core import config
from segue.core.errors import SegueError
from segue.evaluation.challenge import (
    load_challenge_set,
    run_challenge,
    score_submission,
)
from segue.evaluation.report import write_report
from segue.formats.mpd import parse_json, read_bytes


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no {what}; expected a folder made by `segue challenge make`"
        )
    return path


def _evaluate_one(
    name: str, snapshot: Any, challenge_set: Path, truth: Path, out: Path, *, progress: bool
) -> dict[str, Any]:
    """Fit one model, write its submission, score it."""
    from segue.evaluation.runner import recommend_fn_for
    from segue.models.registry import fit_model

    started = time.perf_counter()
    model = fit_model(name, snapshot, save=False)
    fit_seconds = time.perf_counter() - started
    recommend, fallback = recommend_fn_for(model, snapshot)
    submission = out / "submissions" / f"{name}.csv.gz"
    started = time.perf_counter()
    run_challenge(challenge_set, submission, recommend, fallback=fallback, progress=progress)
    run_seconds = time.perf_counter() - started
    scores = score_submission(submission, truth)
    scores["fit_seconds"] = round(fit_seconds, 3)
    scores["run_seconds"] = round(run_seconds, 3)
    return scores


def write_seed_slice(challenge_set: Path, out_path: Path) -> int:
    """The challenge playlists with their seed tracks only, as one MPD slice; returns its size.

    Playlists without seeds (category 1) carry nothing to learn and are left out; a playlist
    without a title gets an empty name (the slice format requires one).
    """
    doc = parse_json(str(challenge_set), read_bytes(challenge_set))
    load_challenge_set(challenge_set)  # validates the file and says where it is wrong
    playlists = []
    for pl in doc["playlists"]:
        tracks = pl.get("tracks") or []
        if not tracks:
            continue
        playlists.append(
            {
                "name": pl.get("name") or "",
                "pid": pl["pid"],
                "num_tracks": len(tracks),
                "tracks": tracks,
            }
        )
    info = {"slice": "challenge-seeds", "version": "v1"}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(orjson.dumps({"info": info, "playlists": playlists}))
    return len(playlists)


def evaluate(
    challenge_dir: str | Path,
    models: Sequence[str],
    out_dir: str | Path,
    *,
    progress: bool = True,
) -> dict[str, dict[str, Any]]:
    """Fit, run and score every model of ``models`` on one challenge; write the report.

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
    source = Path(challenge_dir)
    train_dir = _need(source / "train", "train/ folder of training slices")
    challenge_set = _need(source / "challenge_set.json", "challenge_set.json")
    truth = _need(source / "truth.json", "truth.json")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="segue-evaluate-") as tmp_name:
        tmp = Path(tmp_name)
        seeds_file = tmp / "seeds" / "mpd.slice.challenge-seeds.json"
        n_seed_playlists = write_seed_slice(challenge_set, seeds_file)
        with config.temporary_home(tmp / "home"):
            started = time.perf_counter()
            with Catalog.open(config.catalog_path()) as catalog:
                ingest_paths(catalog, [train_dir, seeds_file], progress=progress)
                snapshot = build_snapshot(catalog)
            build_seconds = time.perf_counter() - started
            failed: dict[str, str] = {}
            for name in models:
                print(f"evaluate: fitting {name}", file=sys.stderr)
                try:
                    results[name] = _evaluate_one(
                        name, snapshot, challenge_set, truth, out, progress=progress
                    )
                except (SegueError, ValueError, RuntimeError) as exc:
                    # One model that cannot run (no network for `spotify`, say) must not cost
                    # the comparison of the others: report it and go on.
                    failed[name] = str(exc)
                    print(f"evaluate: {name} skipped: {exc}", file=sys.stderr)
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
