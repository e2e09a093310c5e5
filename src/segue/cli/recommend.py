"""``segue fit``, ``segue recommend``, ``segue models``."""

from __future__ import annotations

import csv
import io
import json
import sys
from enum import StrEnum

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from segue import config
from segue.cli._console import err, fail, out
from segue.errors import SegueError


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    m3u = "m3u"


def _model_names() -> list[str]:
    from segue.models.registry import MODELS

    return list(MODELS)


def render(rec, fmt: OutputFormat) -> str:
    """Recommendations as text in one of the output formats."""
    if fmt is OutputFormat.json:
        return json.dumps([t.to_dict() for t in rec.tracks], indent=2, ensure_ascii=False) + "\n"
    if fmt is OutputFormat.csv:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(["rank", "uri", "name", "artists", "album", "year", "score", "explanation"])
        for i, t in enumerate(rec.tracks, 1):
            writer.writerow(
                [
                    i,
                    t.uri,
                    t.name,
                    "; ".join(t.artists),
                    t.album or "",
                    t.year or "",
                    f"{t.score:.6f}",
                    t.explanation or "",
                ]
            )
        return buf.getvalue()
    if fmt is OutputFormat.m3u:
        lines = ["#EXTM3U"]
        for t in rec.tracks:
            lines.append(f"#EXTINF:-1,{', '.join(t.artists)} - {t.name}")
            lines.append(t.url)
        return "\n".join(lines) + "\n"
    buf = io.StringIO()
    console = Console(file=buf, width=160, soft_wrap=False)
    table = Table(
        title=f"{rec.model}: {len(rec.tracks)} tracks"
        + (f" for {rec.title!r}" if rec.title else "")
    )
    for col in ("#", "track", "artist", "year", "score", "why"):
        table.add_column(col, overflow="fold")
    for i, t in enumerate(rec.tracks, 1):
        table.add_row(
            str(i),
            t.name,
            ", ".join(t.artists),
            str(t.year or ""),
            f"{t.score:.3f}",
            t.explanation or "",
        )
    console.print(table)
    return buf.getvalue()


def register(app: typer.Typer) -> None:
    @app.command()
    def fit(
        model: list[str] = typer.Option(
            None, "--model", "-m", help="Model(s) to build; default: the set the service uses."
        ),
        engine: str = typer.Option(
            "local", "--engine", help="local, or spark (als and popularity on Apache Spark)."
        ),
        spark_master: str = typer.Option(
            "local[*]",
            "--spark-master",
            help="Spark master: local[*], spark://host:7077, yarn, k8s://...",
        ),
        spark_conf: list[str] = typer.Option(
            None, "--spark-conf", help="Spark setting key=value (repeatable)."
        ),
        lake: str | None = typer.Option(
            None, "--lake", help="Where Spark reads the playlist rows (default: HOME/lake)."
        ),
    ) -> None:
        """Rebuild the snapshot from the catalog and fit models."""
        from segue.build import DEFAULT_BUILD, build

        if engine not in ("local", "spark"):
            raise fail(f"--engine {engine!r}: expected 'local' or 'spark'", 2)
        if engine == "spark":
            _fit_spark(model or ["als", "popularity"], spark_master, spark_conf or [], lake)
            return
        names = model or list(DEFAULT_BUILD)
        known = _model_names()
        for name in names:
            if name not in known:
                raise fail(f"unknown model {name!r}; expected one of: {', '.join(known)}", 2)
        try:
            build(names)
        except SegueError as exc:
            raise fail(str(exc)) from None

    def _fit_spark(names: list[str], master: str, conf: list[str], lake: str | None) -> None:
        from segue.spark import require_pyspark, spark_failure

        try:
            require_pyspark()
            from segue.spark.session import parse_conf, start
            from segue.spark.train import fit_on_spark

            session = start(master, parse_conf(conf), app="segue fit")
            home = config.home()
            fit_on_spark(
                session,
                names,
                home=home,
                lake=lake or str(home / "lake"),
                log=lambda m: err.print(m, highlight=False),
            )
        except SegueError as exc:
            raise fail(escape(str(exc))) from None
        except Exception as exc:
            said = spark_failure(exc)
            if said is None:
                raise
            raise fail(escape(f"{said}; the previous snapshot and models are unchanged")) from None
        out.print(f"fitted on Spark: {', '.join(names)}", highlight=False)

    @app.command()
    def models() -> None:
        """List the models, whether each is built here, and why one is unavailable."""
        from segue.service import Service

        for m in Service().models():
            state = "ready" if m["available"] else f"unavailable: {m['reason']}"
            out.print(
                f"{m['name']:<11} {'(default) ' if m['default'] else ''}{state}", highlight=False
            )

    @app.command()
    def recommend(
        inputs: list[str] = typer.Argument(
            None,
            help="Tracks, artists or playlists (links, URIs, ids), files (Exportify CSV, MPD JSON, list of links), "
            "a catalog playlist name, or a track/artist name.",
        ),
        model: str = typer.Option(
            "hybrid", "--model", "-m", help="Model name (see `segue models`)."
        ),
        n: int = typer.Option(10, "-n", "--n", min=1, max=500, help="Number of tracks."),
        fmt: OutputFormat = typer.Option(
            OutputFormat.table, "--format", "-f", help="Output format."
        ),
        title: str | None = typer.Option(
            None, "--title", help="Playlist title (the title model uses it; enough on its own)."
        ),
        demo: bool = typer.Option(
            False, "--demo", help="Use the bundled demo catalog (built on first use)."
        ),
        exclude_artist: list[str] = typer.Option(
            None, "--exclude-artist", help="Leave out this artist (repeatable)."
        ),
        year_min: int | None = typer.Option(None, "--year-min"),
        year_max: int | None = typer.Option(None, "--year-max"),
        popularity_min: float | None = typer.Option(None, "--popularity-min", min=0, max=100),
        popularity_max: float | None = typer.Option(None, "--popularity-max", min=0, max=100),
        max_per_artist: int | None = typer.Option(None, "--max-per-artist", min=1),
    ) -> None:
        """Recommend tracks that continue the input."""
        from segue.service import Filters, Service

        if model not in _model_names():
            raise fail(f"unknown model {model!r}; expected one of: {', '.join(_model_names())}", 2)
        if not inputs and not title:
            raise fail(
                "give at least one input (a track, artist, playlist, file or name) or --title", 2
            )
        if demo:
            from segue.demo_setup import ensure_demo_ready

            ensure_demo_ready(log=lambda m: err.print(m, highlight=False))
        service = Service()
        filters = Filters(
            exclude_artists=list(exclude_artist or []),
            year_min=year_min,
            year_max=year_max,
            popularity_min=popularity_min,
            popularity_max=popularity_max,
            max_per_artist=max_per_artist,
        )
        try:
            rec = service.recommend(
                list(inputs or []), n=n, model=model, title=title, filters=filters
            )
        except (SegueError, ValueError) as exc:
            raise fail(str(exc)) from None
        for message in rec.messages:
            err.print(message, highlight=False)
        sys.stdout.write(render(rec, fmt))


__all__ = ["config", "register", "render"]
