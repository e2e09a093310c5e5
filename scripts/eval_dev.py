"""Collaborative and hybrid models on the real MPD dev playlists, by the challenge protocol.

Usage::

    python scripts/eval_dev.py                      # test split: all models, one run
    python scripts/eval_dev.py --write-docs         # ... and rewrite our section of docs/results.md
    python scripts/eval_dev.py --validation         # tuning: a validation split of the training
                                                    # playlists only (never the test split)
    python scripts/eval_dev.py --validation --validation-seeds 1 2 3 --models popularity hybrid
                                                    # ... three validation splits and their mean

Protocol (EVALUATION.md, docs/results.md "Collaborative and hybrid models on the MPD dev files"):

* ``segue challenge make`` on ``mpd-followers10-dev.tar.gz``: 100 playlists per category,
  seed 0 (:func:`segue.evaluation.make_challenge`).
* :func:`segue.evaluation.run.evaluate` then runs what a user runs: ingest the training
  slices plus the challenge seeds into a fresh catalog, build the snapshot, fit every model
  with its default parameters, write an official submission per model and score the file.
* ``--validation`` cuts a second challenge (60 per category, seed 1) out of the *training*
  slices of the test challenge and evaluates there; defaults were chosen on it. With
  ``--validation-seeds`` several such splits (other seeds, same training playlists) are
  evaluated one after the other and their mean is printed: category 1 has only 60 playlists
  per split, too few to tell small differences apart on one.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from segue.evaluation import make_challenge
from segue.evaluation.run import evaluate
from segue.models.registry import MODELS as REGISTRY

# The plain original method (the reference of the content targets) is not a model users pick;
# this script scores it like one.
REGISTRY.setdefault("plain", "segue.models.content:PlainMethod")

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path("/work/shared/data/mpd/mpd-followers10-dev.tar.gz")
if not DEFAULT_DATA.exists():  # a checkout beside ../shared
    DEFAULT_DATA = REPO.parent / "shared" / "data" / "mpd" / "mpd-followers10-dev.tar.gz"
SECTION = "## Collaborative and hybrid models on the MPD dev files"
KEPT_PART = "### Tuning on the validation split"
MODELS = ("popularity", "itemknn", "als", "rp3beta", "title", "model1", "model2", "plain", "hybrid")
BASELINES = ("popularity", "itemknn", "als")


def _fmt(value: float, metric: str) -> str:
    return f"{value:.2f}" if metric == "clicks" else f"{value:.4f}"


def section(results: dict[str, dict[str, Any]], meta: dict[str, str]) -> str:
    """Markdown of our docs/results.md section (header included)."""
    lines = [SECTION, ""]
    lines.append(
        f"Measured by `{meta['command']}` ({meta['seconds']} s on 2 shared cores). "
        f"Challenge: {meta['challenge']}; {meta['train']}."
    )
    lines.append("")
    lines.append(
        "Protocol: `segue challenge make` (EVALUATION.md: 10 categories, a playlist eligible "
        "only if it keeps max(10, k/2) held-out tracks), then `segue.evaluation.run."
        "evaluate`: train on the training slices plus the challenge seeds, write an official "
        "submission per model, score the file. Every model runs with its default parameters, "
        "chosen on a validation split cut from the training playlists (`--validation`: 60 per "
        "category, seed 1), never on this test split."
    )
    lines.append("")
    lines.append("| model | R-precision | NDCG | clicks | fit s | recommend s |")
    lines.append("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, res in results.items():
        o = res["overall"]
        lines.append(
            f"| {name} | {o['r_precision']:.4f} | {o['ndcg']:.4f} | {o['clicks']:.2f} | "
            f"{res.get('fit_seconds', float('nan')):.1f} | {res.get('run_seconds', float('nan')):.1f} |"
        )
    for metric, label in (("r_precision", "R-precision"), ("ndcg", "NDCG"), ("clicks", "Clicks")):
        lines.append("")
        lines.append(f"{label} per category (1: title only; 4, 6: no title; 8, 10: random seeds):")
        lines.append("")
        cats = sorted(next(iter(results.values()))["per_category"], key=int)
        lines.append("| model | " + " | ".join(str(c) for c in cats) + " |")
        lines.append("| --- |" + " ---: |" * len(cats))
        for name, res in results.items():
            pc = res["per_category"]
            lines.append(
                f"| {name} | " + " | ".join(_fmt(pc[c][metric], metric) for c in cats) + " |"
            )
    lines.append("")
    lines.extend(verdict(results))
    lines.append("")
    return "\n".join(lines)


def verdict(results: dict[str, dict[str, Any]]) -> list[str]:
    out: list[str] = []
    if "hybrid" not in results:
        return out
    hyb = results["hybrid"]["overall"]
    base = [b for b in BASELINES if b in results]
    if not base:
        return out
    singles = [m for m in results if m != "hybrid"]
    if singles:
        top = max(singles, key=lambda m: results[m]["overall"]["ndcg"])
        value = results[top]["overall"]["ndcg"]
        out.append(
            f"* hybrid NDCG {hyb['ndcg']:.4f} vs the best single model ({top}, {value:.4f}): "
            f"at least best - 0.005: {'yes' if hyb['ndcg'] >= value - 0.005 else 'no'}."
        )
    for metric in ("r_precision", "ndcg"):
        best = max(base, key=lambda b: results[b]["overall"][metric])
        value = results[best]["overall"][metric]
        gain = hyb[metric] / value - 1 if value else float("inf")
        out.append(
            f"* hybrid {metric.replace('_', '-')} {hyb[metric]:.4f} vs best of {', '.join(base)} "
            f"({best}, {value:.4f}): {gain:+.1%} - target beaten: "
            f"{'yes' if hyb[metric] > value else 'no'}."
        )
    if "popularity" in results:
        pc_h = results["hybrid"]["per_category"]
        pc_p = results["popularity"]["per_category"]
        key = next(k for k in pc_h if int(k) == 1)
        pop = pc_p[key]["r_precision"]
        ratio = pc_h[key]["r_precision"] / pop if pop else float("inf")
        out.append(
            f"* category 1 (title only): hybrid R-precision {pc_h[key]['r_precision']:.4f} = "
            f"{ratio:.2f}x popularity ({pop:.4f}); target >= 2x: {'yes' if ratio >= 2 else 'no'}."
        )
    return out


def print_results(results: dict[str, dict[str, Any]]) -> None:
    for name, res in results.items():
        o = res["overall"]
        cats = " ".join(
            f"{res['per_category'][c]['r_precision']:.3f}"
            for c in sorted(res["per_category"], key=int)
        )
        print(
            f"{name:12s} R-prec {o['r_precision']:.4f} NDCG {o['ndcg']:.4f} clicks {o['clicks']:.2f} "
            f"| R-prec per category {cats} | fit {res['fit_seconds']:.1f}s run {res['run_seconds']:.1f}s"
        )
    print("\n".join(verdict(results)))


def mean_results(runs: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per model, the mean of each metric (overall and per category) and time over ``runs``."""
    out: dict[str, dict[str, Any]] = {}
    for name in runs[0]:
        got = [r[name] for r in runs if name in r]
        if len(got) != len(runs):
            continue
        cats = got[0]["per_category"]
        out[name] = {
            "overall": {m: sum(g["overall"][m] for g in got) / len(got) for m in got[0]["overall"]},
            "per_category": {
                c: {m: sum(g["per_category"][c][m] for g in got) / len(got) for m in cats[c]}
                for c in cats
            },
            "fit_seconds": sum(g["fit_seconds"] for g in got) / len(got),
            "run_seconds": sum(g["run_seconds"] for g in got) / len(got),
        }
    return out


def write_docs(text: str, path: Path) -> None:
    """Replace our section of ``path`` (or append it), leaving every other section alone.

    The hand-written parts of the old section, from ``### Tuning on the validation split`` on
    (tuning notes and the ``benchmarks/train.py`` figures), are kept at the end of the new one.
    """
    old = path.read_text(encoding="utf-8") if path.exists() else "# Results\n"
    start = old.find(SECTION)
    if start < 0:
        new = old.rstrip("\n") + "\n\n" + text
    else:
        nxt = old.find("\n## ", start + len(SECTION))
        end = len(old) if nxt < 0 else nxt
        kept = old.find(KEPT_PART, start, end)
        tail = old[kept:end].rstrip("\n") + "\n" if kept >= 0 else ""
        new = old[:start] + text.rstrip("\n") + "\n\n" + tail + old[end:]
    path.write_text(new.rstrip("\n") + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--per-category", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument(
        "--validation",
        action="store_true",
        help="evaluate on a validation split of the training playlists",
    )
    parser.add_argument(
        "--validation-seeds",
        type=int,
        nargs="+",
        default=[1],
        help="seeds of the validation splits (with --validation; default 1)",
    )
    parser.add_argument(
        "--work", type=Path, default=None, help="keep challenge files and reports here"
    )
    parser.add_argument(
        "--write-docs", action="store_true", help="rewrite our section of docs/results.md"
    )
    args = parser.parse_args(argv)
    if not args.data.exists():
        print(
            f"error: {args.data} not found (the MPD dev files live in ../shared/data/mpd)",
            file=sys.stderr,
        )
        return 2
    if args.write_docs and args.validation:
        print("error: --write-docs reports the test split; drop --validation", file=sys.stderr)
        return 2
    if args.validation_seeds != [1] and not args.validation:
        print("error: --validation-seeds needs --validation", file=sys.stderr)
        return 2
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="segue-eval-dev-") as tmp_name:
        work = args.work or Path(tmp_name)
        test_dir = work / "challenge"
        summary = make_challenge(
            [args.data],
            test_dir,
            per_category=args.per_category,
            seed=args.seed,
            overwrite=True,
            progress=False,
        )
        print("\n".join(summary.lines()), file=sys.stderr)
        if args.validation:
            runs = []
            for seed in args.validation_seeds:
                target = work / f"validation-{seed}"
                val = make_challenge(
                    [test_dir / "train"],
                    target,
                    per_category=60,
                    seed=seed,
                    overwrite=True,
                    progress=False,
                )
                print("\n".join(val.lines()), file=sys.stderr)
                runs.append(evaluate(target, args.models, work / f"report-{seed}", progress=False))
                print(f"validation split, seed {seed}:")
                print_results(runs[-1])
            results = runs[0] if len(runs) == 1 else mean_results(runs)
            if len(runs) > 1:
                print(f"mean of the validation splits, seeds {args.validation_seeds}:")
                print_results(results)
        else:
            results = evaluate(test_dir, args.models, work / "report", progress=False)
            print_results(results)
        seconds = time.perf_counter() - started
        if args.write_docs:
            meta = {
                "command": "python scripts/eval_dev.py --write-docs",
                "seconds": f"{seconds:.0f}",
                "challenge": (
                    f"{summary.per_category[next(iter(summary.per_category))]:,} playlists per category from "
                    f"{args.data.name} (seed {args.seed})"
                ),
                "train": (
                    f"{summary.n_train_playlists:,} training playlists plus the challenge seeds, "
                    f"{summary.n_tracks:,} tracks in the input"
                ),
            }
            write_docs(section(results, meta), REPO / "docs" / "results.md")
            (work / "report" / "eval_dev.json").write_text(
                json.dumps(results, indent=2, default=str)
            )
            print(f"wrote {REPO / 'docs' / 'results.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
