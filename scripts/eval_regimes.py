"""Every model and the plain original method on the TidyTuesday playlists, in four regimes.

Usage::

    python scripts/eval_regimes.py                 # all regimes, test split, one run
    python scripts/eval_regimes.py --regimes a c   # some of them
    python scripts/eval_regimes.py --write-docs    # ... and rewrite our section of docs/results.md

Regimes (the split, queries and metrics of scripts/eval_content.py; seed 2018, 150 test
playlists, k = 5 and 10 seeds):

* (a) no genres at all: audio features, popularity and release dates only (crowd tags from
  the training playlists' titles remain);
* (b) artist genres from the training playlists' labels (eval_content.py's setting);
* (c) few playlists: 50 training playlists (drawn with the seed) with genres from their labels;
* (c') the same 50 training playlists, with genres from the labels of the other non-test
  playlists (an outside source: a training playlist's own labels never name its artists'
  genres, which in (b) and (c) favour genres in any validation on training playlists).

Regime (d), the MPD dev files, is scripts/eval_dev.py. Models run with their defaults: the
content presets and the hybrid choose their settings at fit on the training playlists only.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import eval_content as ec
from segue.models.als import ALSRecommender
from segue.models.content import Model1, Model2, OriginalScoring, PlainMethod
from segue.models.hybrid import HybridRecommender
from segue.models.itemknn import ItemKNNRecommender
from segue.models.popularity import PopularityRecommender

SECTION = "## Every model in the regimes of the TidyTuesday playlists"
REGIMES = {
    "a": "(a) no genres: audio, popularity, release dates",
    "b": "(b) genres from the training playlists' labels",
    "c": "(c) 50 training playlists, genres from their labels",
    "c2": "(c') 50 training playlists, genres from the other non-test playlists' labels",
}
MODELS: dict[str, Any] = {
    "hybrid (default)": lambda: HybridRecommender(progress=False),
    "model1": lambda: Model1(progress=False),
    "model2": lambda: Model2(progress=False),
    "plain original method": PlainMethod,
    "original scoring": OriginalScoring,
    "itemknn": ItemKNNRecommender,
    "als": ALSRecommender,
    "popularity": PopularityRecommender,
}


def run_regime(table: ec.Table, regime: str, seed: int, ks: tuple[int, ...]) -> dict[str, Any]:
    splits = ec.make_splits(table, seed=seed, n_test=150, n_validation=100)
    train = np.sort(np.r_[splits["rest"], splits["validation"]])
    others = None
    if regime in ("c", "c2"):
        pool = train
        train = np.sort(np.random.default_rng(seed).choice(pool, 50, replace=False))
        others = np.setdiff1d(pool, train) if regime == "c2" else None
    results: dict[str, dict[int, dict[str, float]]] = {name: {} for name in MODELS}
    notes: dict[str, str] = {}
    for k in ks:
        queries = ec.make_queries(table, splits["test"], k, seed)
        snap = ec.build_snapshot(
            table, train, queries, genres_from_labels=regime != "a", genre_playlists=others
        )
        for name, make in MODELS.items():
            started = time.perf_counter()
            model = make().fit(snap)
            results[name][k] = ec.evaluate(model, snap, queries, table)
            if hasattr(model, "describe_settings"):
                notes[f"{name} k={k}"] = model.describe_settings()
            r = results[name][k]
            print(
                f"  ({regime}) k={k:<3} {name:<24} R-prec {r['r_precision']:.4f}  NDCG "
                f"{r['ndcg']:.4f}  ({time.perf_counter() - started:.1f} s)",
                file=sys.stderr,
            )
    return {"results": results, "notes": notes}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--csv", type=Path, default=ec.DEFAULT_CSV)
    parser.add_argument("--seed", type=int, default=2018)
    parser.add_argument("--regimes", nargs="+", default=list(REGIMES), choices=list(REGIMES))
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    table = ec.load_table(args.csv)
    ks = (5, 10)
    body: list[str] = []
    for regime in args.regimes:
        got = run_regime(table, regime, args.seed, ks)
        res = got["results"]
        plain = ec.mean_ndcg(res["plain original method"])
        default = ec.mean_ndcg(res["hybrid (default)"])
        singles = {n: ec.mean_ndcg(r) for n, r in res.items() if n != "hybrid (default)"}
        best_single = max(singles, key=lambda n: singles[n])
        better_preset = max(("model1", "model2"), key=lambda n: singles[n])
        lines = [
            f"### {REGIMES[regime]}",
            "",
            ec.table_md(res, ks),
            "",
            f"Mean NDCG over k = 5 and 10: default {default:.4f}; best single model "
            f"`{best_single}` {singles[best_single]:.4f} (target: default >= best - 0.005: "
            f"{'yes' if default >= singles[best_single] - 0.005 else 'no'}); plain method "
            f"{plain:.4f}; better preset `{better_preset}` {singles[better_preset]:.4f} = "
            f"{singles[better_preset] / plain:.2f}x plain, default {default / plain:.2f}x plain "
            "(target in (a), (c): 1.2x).",
            "",
            "Settings chosen at fit (k = 5 run):",
            "",
        ]
        lines += [f"* {name}: {text}" for name, text in got["notes"].items() if "k=5" in name]
        lines.append("")
        text = "\n".join(lines)
        print(text)
        body.append(text)
    elapsed = time.perf_counter() - started
    head = (
        f"Measured by `python scripts/eval_regimes.py --write-docs` (seed {args.seed}, "
        f"{elapsed:.0f} s on a shared 2-core machine). The split, queries and metrics of "
        "`scripts/eval_content.py` (150 test playlists, k = 5 and 10 random seeds, 500 "
        "recommendations, models trained on the training playlists plus one untitled "
        "seeds-only row per test playlist); every model with its defaults, so the content "
        "presets and the hybrid choose their settings at fit on the training playlists alone. "
        "The plain original method: min-max audio features + one-hot popularity // 5 and "
        "year // 50, one summed vector per playlist, cosine, top 500 (`PlainMethod`)."
    )
    if args.write_docs:
        ec.SECTION = SECTION
        ec.write_section(ec.REPO / "docs" / "results.md", head + "\n\n" + "\n".join(body))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
