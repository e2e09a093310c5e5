"""Tune the rp3beta model's alpha, beta and neighbors on validation splits of the MPD dev files.

Usage::

    python scripts/tune_rp3.py                                   # default grid, validation seed 1
    python scripts/tune_rp3.py --alpha 0.8 1.0 --beta 0.4 0.6 --neighbors 200 500 \\
        --validation-seeds 1 2 3                                 # a grid, mean of three splits

The splits are those of ``scripts/eval_dev.py --validation``: the test challenge (100 playlists
per category, seed 0) is made first and never scored; each validation challenge (60 per
category, seed 1, 2, ...) is cut from the test challenge's *training* slices. Per split the
catalog and snapshot are built once (training slices plus the validation seeds, as
:func:`segue.evaluation.run.evaluate` does), then every setting is fitted, run and scored.
Prints one line per setting (mean R-precision and NDCG over the splits), best NDCG first.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from segue.catalog import Catalog
from segue.catalog.ingest import ingest_paths
from segue.evaluation import make_challenge
from segue.evaluation.formats import write_seed_slice
from segue.evaluation.run import recommend_fn_for, run_challenge, temporary_home
from segue.evaluation.score import score_submission
from segue.models.rp3 import RP3betaRecommender
from segue.snapshot.from_catalog import build_snapshot

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path("/work/shared/data/mpd/mpd-followers10-dev.tar.gz")
if not DEFAULT_DATA.exists():  # a checkout beside ../shared
    DEFAULT_DATA = REPO.parent / "shared" / "data" / "mpd" / "mpd-followers10-dev.tar.gz"


def score_settings(
    challenge: Path, settings: list[dict[str, Any]], out: Path
) -> list[dict[str, float]]:
    """Overall R-precision and NDCG of rp3beta with each of ``settings`` on one challenge."""
    results = []
    with temporary_home() as scratch:
        seeds_file = scratch.folder / "seeds" / "mpd.slice.challenge-seeds.json"
        write_seed_slice(challenge / "challenge_set.json", seeds_file)
        with Catalog.open(scratch.home.catalog) as catalog:
            ingest_paths(catalog, [challenge / "train", seeds_file], progress=False)
            snapshot = build_snapshot(catalog)
        for params in settings:
            started = time.perf_counter()
            model = RP3betaRecommender(**params).fit(snapshot)
            recommend, fallback = recommend_fn_for(model, snapshot)
            submission = out / "rp3beta.csv.gz"
            run_challenge(
                challenge / "challenge_set.json",
                submission,
                recommend,
                fallback=fallback,
                progress=False,
            )
            overall = score_submission(submission, challenge / "truth.json")["overall"]
            results.append(
                {
                    "r_precision": overall["r_precision"],
                    "ndcg": overall["ndcg"],
                    "seconds": time.perf_counter() - started,
                }
            )
            print(
                f"  {label(params)}: R-prec {overall['r_precision']:.4f} "
                f"NDCG {overall['ndcg']:.4f} ({results[-1]['seconds']:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
    return results


def label(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--alpha", type=float, nargs="+", default=[0.5, 0.75, 1.0])
    parser.add_argument("--beta", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75])
    parser.add_argument("--neighbors", type=int, nargs="+", default=[200, 500])
    parser.add_argument("--validation-seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--work", type=Path, default=None, help="keep challenge files here")
    args = parser.parse_args(argv)
    if not args.data.exists():
        print(
            f"error: {args.data} not found (the MPD dev files live in ../shared/data/mpd)",
            file=sys.stderr,
        )
        return 2
    settings = [
        {"alpha": a, "beta": b, "neighbors": k}
        for a, b, k in itertools.product(args.alpha, args.beta, args.neighbors)
    ]
    with tempfile.TemporaryDirectory(prefix="segue-tune-rp3-") as tmp_name:
        work = args.work or Path(tmp_name)
        test_dir = work / "challenge"
        make_challenge(
            [args.data], test_dir, per_category=100, seed=0, overwrite=True, progress=False
        )
        runs = []
        for seed in args.validation_seeds:
            target = work / f"validation-{seed}"
            make_challenge(
                [test_dir / "train"],
                target,
                per_category=60,
                seed=seed,
                overwrite=True,
                progress=False,
            )
            print(f"validation split, seed {seed}:", file=sys.stderr)
            runs.append(score_settings(target, settings, work / f"report-{seed}"))
    mean = [
        {m: sum(run[i][m] for run in runs) / len(runs) for m in ("r_precision", "ndcg")}
        for i in range(len(settings))
    ]
    order = sorted(range(len(settings)), key=lambda i: -mean[i]["ndcg"])
    print(f"rp3beta on validation seeds {args.validation_seeds}, best NDCG first:")
    for i in order:
        print(
            f"{label(settings[i])}: R-prec {mean[i]['r_precision']:.4f} NDCG {mean[i]['ndcg']:.4f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
