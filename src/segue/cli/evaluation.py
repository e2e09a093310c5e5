"""``segue challenge make|run|score`` and ``segue evaluate``: the RecSys Challenge 2018 protocol."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from segue.cli.core import home_of
from segue.core.errors import SegueError

DEFAULT_EVALUATE_MODELS = ["popularity", "itemknn", "als", "hybrid"]


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _score_lines(result: dict[str, Any]) -> list[str]:
    from segue.evaluation.formats import CATEGORY_BY_NUMBER

    lines = [
        f"team {result['team']}: {result['n_playlists']:,} playlists"
        + (f" ({result['n_missing']:,} without recommendations)" if result["n_missing"] else ""),
        f"{'category':<34} {'playlists':>9} {'R-precision':>11} {'NDCG':>7} {'clicks':>7}",
    ]

    def row(label: str, count: int, scores: dict[str, float]) -> str:
        return (
            f"{label:<34} {count:>9,} {scores['r_precision']:>11.4f} {scores['ndcg']:>7.4f} "
            f"{scores['clicks']:>7.3f}"
        )

    lines.append(row("all", result["n_playlists"], result["overall"]))
    for number, scores in result["per_category"].items():
        label = f"{number} ({CATEGORY_BY_NUMBER[int(number)].describe()})"
        lines.append(row(label, result["n_per_category"][number], scores))
    return lines


def register(app: typer.Typer) -> None:
    challenge = typer.Typer(
        name="challenge",
        help="RecSys Challenge 2018: make a challenge set, run a model on it, score a submission.",
        no_args_is_help=True,
    )

    @challenge.command("make")
    def make(
        slices: list[str] = typer.Argument(
            ..., help="MPD slice files (.json, .json.gz), folders, globs or .tar.gz archives."
        ),
        out: Path = typer.Option(
            ..., "--out", help="Folder for train/, challenge_set.json, truth.json."
        ),
        per_category: int = typer.Option(
            100, "--per-category", min=1, help="Playlists in each of the 10 categories."
        ),
        seed: int = typer.Option(0, "--seed", help="Random seed of the split."),
        force: bool = typer.Option(False, "--force", help="Replace a challenge already in --out."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    ) -> None:
        """Split MPD playlists into training slices and a challenge set with its truth."""
        from segue.evaluation.make import make_challenge

        try:
            summary = make_challenge(
                slices,
                out,
                per_category=per_category,
                seed=seed,
                overwrite=force,
                progress=not quiet,
            )
        except (SegueError, ValueError, OSError) as exc:
            raise _fail(str(exc)) from None
        typer.echo("\n".join(summary.lines()))

    @challenge.command("run")
    def run(
        ctx: typer.Context,
        challenge_set: Path = typer.Argument(..., help="An official-format challenge_set.json."),
        out: Path = typer.Option(..., "--out", help="Submission to write (.csv or .csv.gz)."),
        model: str = typer.Option(
            "hybrid", "--model", "-m", help="A model built with `segue fit`."
        ),
        team: str = typer.Option("segue", "--team", help="Team name of the submission."),
        email: str = typer.Option(
            "segue@example.org", "--email", help="Contact of the submission."
        ),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    ) -> None:
        """Continue every challenge playlist with 500 tracks and write the submission."""
        from segue.evaluation.run import make_recommend_fn, run_challenge

        try:
            recommend, fallback = make_recommend_fn(model, home_of(ctx))
            summary = run_challenge(
                challenge_set,
                out,
                recommend,
                fallback=fallback,
                team=team,
                email=email,
                progress=not quiet,
            )
        except (SegueError, ValueError, OSError) as exc:
            raise _fail(str(exc)) from None
        typer.echo(summary.line())

    @challenge.command("score")
    def score(
        submission: Path = typer.Argument(..., help="Submission CSV (.csv or .csv.gz)."),
        truth: Path = typer.Argument(..., help="truth.json written by `segue challenge make`."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    ) -> None:
        """R-precision, NDCG and clicks of a submission, overall and per category."""
        from segue.evaluation.score import score_submission

        try:
            result = score_submission(submission, truth)
        except (SegueError, ValueError, OSError) as exc:
            raise _fail(str(exc)) from None
        if as_json:
            sys.stdout.write(json.dumps(result, indent=2) + "\n")
            return
        typer.echo("\n".join(_score_lines(result)))

    app.add_typer(challenge, name="challenge")

    @app.command("evaluate")
    def evaluate_command(
        ctx: typer.Context,
        challenge_dir: Path = typer.Argument(..., help="A folder made by `segue challenge make`."),
        models: list[str] = typer.Option(
            DEFAULT_EVALUATE_MODELS, "--model", "-m", help="Model to compare (repeat the option)."
        ),
        out: Path = typer.Option(
            ..., "--out", help="Folder for results.md, results.json, results.png and submissions/."
        ),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    ) -> None:
        """Train each model on the challenge's training data, run and score it, compare them."""
        from segue.evaluation.run import evaluate

        try:
            evaluate(challenge_dir, models, out, progress=not quiet, home=home_of(ctx))
        except (SegueError, ValueError, OSError) as exc:
            raise _fail(str(exc)) from None
        typer.echo((out / "results.md").read_text(encoding="utf-8"), nl=False)
