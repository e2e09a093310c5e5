"""Comparison of models on one challenge: a Markdown table, a JSON file and a PNG chart.

Input everywhere is ``results: {model name: scores}`` where ``scores`` is what
:func:`segue.evaluation.score.score_submission` returns (``overall`` and ``per_category``
metric means; category keys may be ints or, after a JSON round-trip, strings).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from segue.evaluation.formats import CATEGORIES
from segue.evaluation.score import METRICS

LABELS = {"r_precision": "R-precision", "ndcg": "NDCG", "clicks": "clicks"}
#: True where a higher value is better.
HIGHER_IS_BETTER = {"r_precision": True, "ndcg": True, "clicks": False}
#: Team vl6, winner of the RecSys Challenge 2018 main track (trained on all 1M playlists).
WINNER_2018 = {"r_precision": 0.2241, "ndcg": 0.3946, "clicks": 1.784}


def _category_scores(scores: Mapping[str, Any]) -> dict[int, Mapping[str, float]]:
    per = scores.get("per_category") or {}
    return {int(k): v for k, v in per.items()}


def _check(results: Mapping[str, Mapping[str, Any]]) -> None:
    if not results:
        raise ValueError("no results to report: expected at least one model's scores")
    for name, scores in results.items():
        overall = scores.get("overall") if isinstance(scores, Mapping) else None
        if not isinstance(overall, Mapping) or any(m not in overall for m in METRICS):
            raise ValueError(
                f"scores of model {name!r} must have 'overall' with {', '.join(METRICS)}; "
                f"got {sorted(overall) if isinstance(overall, Mapping) else overall!r}"
            )


def _fmt(metric: str, value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.3f}" if metric == "clicks" else f"{value:.4f}"


def _best(metric: str, values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    if len(known) < 2:
        return None
    return max(known) if HIGHER_IS_BETTER[metric] else min(known)


def _cell(metric: str, value: float | None, best: float | None) -> str:
    text = _fmt(metric, value)
    return f"**{text}**" if best is not None and value == best else text


def comparison_table(
    results: Mapping[str, Mapping[str, Any]], *, meta: Mapping[str, Any] | None = None
) -> str:
    """Markdown: one overall table (model x metric) and one table per metric (model x category).

    The best value of each column is bold when there are two models or more.
    """
    _check(results)
    names = list(results)
    lines = ["# Challenge results", ""]
    if meta:
        lines.extend(f"- {key}: {value}" for key, value in meta.items())
        lines.append("")
    lines.append(
        "R-precision and NDCG: higher is better. Clicks (refreshes of 10 tracks before the first "
        "relevant one, 51 when none): lower is better."
    )
    lines.append("")
    header = "| model | " + " | ".join(LABELS[m] for m in METRICS) + " | playlists |"
    lines.extend([header, "| --- |" + " ---: |" * (len(METRICS) + 1)])
    columns = {m: [results[n]["overall"][m] for n in names] for m in METRICS}
    bests = {m: _best(m, columns[m]) for m in METRICS}
    for i, name in enumerate(names):
        cells = [_cell(m, columns[m][i], bests[m]) for m in METRICS]
        count = results[name].get("n_playlists", "")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {count} |")
    winner = " | ".join(_fmt(m, WINNER_2018[m]) for m in METRICS)
    lines.append(f"| *2018 winner (vl6, 1M playlists)* | {winner} | 10000 |")
    lines.append("")
    per_model = {n: _category_scores(results[n]) for n in names}
    numbers = [c.number for c in CATEGORIES]
    for metric in METRICS:
        lines.extend([f"## {LABELS[metric]} per category", ""])
        lines.append("| model | " + " | ".join(str(c) for c in numbers) + " |")
        lines.append("| --- |" + " ---: |" * len(numbers))
        values = {
            n: [per_model[n][c][metric] if c in per_model[n] else None for c in numbers]
            for n in names
        }
        col_best = [_best(metric, [values[n][j] for n in names]) for j in range(len(numbers))]
        for name in names:
            cells = [_cell(metric, v, col_best[j]) for j, v in enumerate(values[name])]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    lines.append("Categories:")
    lines.append("")
    lines.extend(f"{c.number}. {c.describe()}" for c in CATEGORIES)
    return "\n".join(lines) + "\n"


def plot_results(results: Mapping[str, Mapping[str, Any]], path: str | Path) -> Path:
    """A PNG with one bar chart per metric: groups "all" and categories 1-10, one bar per model."""
    # Figure + Agg canvas directly: no pyplot global state, no display needed.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    _check(results)
    names = list(results)
    groups = ["all", *(str(c.number) for c in CATEGORIES)]
    fig = Figure(figsize=(13, 3.2 * len(METRICS)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(METRICS), 1, sharex=True)
    width = 0.8 / len(names)
    for ax, metric in zip(axes, METRICS, strict=True):
        for i, name in enumerate(names):
            per = _category_scores(results[name])
            values = [float(results[name]["overall"][metric])]
            values.extend(
                float(per[c.number][metric]) if c.number in per else float("nan")
                for c in CATEGORIES
            )
            positions = [g + (i - (len(names) - 1) / 2) * width for g in range(len(groups))]
            ax.bar(positions, values, width=width, label=name)
        better = "higher" if HIGHER_IS_BETTER[metric] else "lower"
        ax.set_ylabel(f"{LABELS[metric]} ({better} is better)")
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    axes[-1].set_xticks(range(len(groups)), groups)
    axes[-1].set_xlabel("challenge category")
    axes[0].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    fig.suptitle("RecSys Challenge 2018 metrics per model")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    return out


def write_report(
    results: Mapping[str, Mapping[str, Any]],
    out_dir: str | Path,
    *,
    meta: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    """Write ``results.md``, ``results.json`` and ``results.png`` into ``out_dir``."""
    _check(results)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "markdown": out / "results.md",
        "json": out / "results.json",
        "png": out / "results.png",
    }
    paths["markdown"].write_text(comparison_table(results, meta=meta), encoding="utf-8")
    doc = {"meta": dict(meta or {}), "reference_2018_winner": WINNER_2018, "models": results}
    paths["json"].write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
    plot_results(results, paths["png"])
    return paths
