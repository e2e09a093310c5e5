"""``segue fit``, ``segue recommend``, ``segue models``."""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

import typer

from segue.cli import _spark
from segue.cli._console import err, fail, out
from segue.cli.core import home_of
from segue.core.errors import SegueError
from segue.core.home import Home
from segue.wire.export import OutputFormat, render


def _model_names() -> list[str]:
    from segue.models.registry import MODELS

    return list(MODELS)


def _interrupted(home: Home, in_use: Any, models: list[str]) -> str:
    """What an interrupted fit kept and how to continue, in one line."""
    from segue.core import artifacts

    kept = artifacts.current_or_none(home.root)
    again = artifacts.fit_command(home.root, models)
    if kept is not None and in_use is not None and kept.id != in_use.id:
        return f"fit interrupted after the switch: the new models are in use, {kept.describe()}"
    if kept is not None and (kept.built_models() or (kept.snapshot_dir / "manifest.json").exists()):
        return (
            "fit interrupted: nothing was switched; the models in use are kept: "
            f"{kept.describe()}. Run `{again}` to build again."
        )
    return (
        "fit interrupted: nothing was switched and no models were built here before. "
        f"Run `{again}` to build them."
    )


def register(app: typer.Typer) -> None:
    @app.command()
    def fit(
        ctx: typer.Context,
        model: list[str] = typer.Option(
            None, "--model", "-m", help="Model(s) to build; default: the set the service uses."
        ),
        only: bool = typer.Option(
            False,
            "--only",
            help="Fit just the models named, even when the catalog changed: other built models "
            "are then left out (reported stale by `segue models`) instead of fitted again.",
        ),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display."),
        engine: str = _spark.ENGINE,
        spark_master: str = _spark.SPARK_MASTER,
        spark_conf: list[str] = _spark.SPARK_CONF,
        lake: str | None = typer.Option(
            None, "--lake", help="Where Spark reads the playlist rows (default: HOME/lake)."
        ),
    ) -> None:
        """Rebuild the snapshot from the catalog and fit models, switching to them in one step
        (killed or interrupted, the models in use stay as they were)."""
        # Ctrl+C is held back while the modules load (a KeyboardInterrupt raised inside an
        # import that runs code from a string makes Python kill itself with SIGINT at exit,
        # whatever the exit code asked), then raised. Inside a library's native code
        # (DuckDB reading the catalog) it can come back as that library's own error: the
        # flag tells an interrupt from a failure.
        home = home_of(ctx)
        if _spark.use_spark(engine):
            _fit_spark(home, model or ["als", "popularity"], spark_master, spark_conf or [], lake)
            return
        interrupted = threading.Event()

        def hold(signum: int, frame: Any) -> None:
            interrupted.set()

        def on_sigint(signum: int, frame: Any) -> None:
            interrupted.set()
            raise KeyboardInterrupt

        main = threading.current_thread() is threading.main_thread()
        previous_handler = signal.signal(signal.SIGINT, hold) if main else None
        home.ensure()
        in_use = None
        try:
            from segue.core import artifacts
            from segue.fitting.build import DEFAULT_BUILD, build
            from segue.models.registry import model_class

            names = model or list(DEFAULT_BUILD)
            known = _model_names()
            for name in names:
                if name not in known:
                    raise fail(f"unknown model {name!r}; expected one of: {', '.join(known)}", 2)
                model_class(name)  # its module loaded now
            import segue.catalog
            import segue.snapshot.from_catalog  # noqa: F401

            if main:
                signal.signal(signal.SIGINT, on_sigint)
            if interrupted.is_set():
                raise KeyboardInterrupt
            in_use = artifacts.current_or_none(home.root)
            build(
                names,
                home=home,
                only=only,
                log=lambda m: err.print(m, markup=False, highlight=False),
                console=None if quiet else err,
            )
        except (KeyboardInterrupt, Exception) as exc:
            if not (isinstance(exc, KeyboardInterrupt) or interrupted.is_set()):
                if isinstance(exc, SegueError | ValueError):
                    raise fail(str(exc)) from None
                raise
            err.print(_interrupted(home, in_use, model or []), markup=False, highlight=False)
            raise typer.Exit(130) from None
        finally:
            if main:
                signal.signal(signal.SIGINT, previous_handler)

    def _fit_spark(
        home: Home, names: list[str], master: str, conf: list[str], lake: str | None
    ) -> None:
        from segue.spark import require_pyspark, spark_failure

        try:
            require_pyspark()
            from segue.spark.session import parse_conf, start
            from segue.spark.train import fit_on_spark

            session = start(master, parse_conf(conf), app="segue fit")
            home.ensure()
            fit_on_spark(
                session,
                names,
                home=home,
                lake=lake or str(home.lake),
                log=lambda m: err.print(m, highlight=False),
            )
        except SegueError as exc:
            raise fail(str(exc)) from None
        except Exception as exc:
            said = spark_failure(exc)
            if said is None:
                raise
            raise fail(f"{said}; the previous snapshot and models are unchanged") from None
        out.print(f"fitted on Spark: {', '.join(names)}", highlight=False)

    @app.command()
    def models(
        ctx: typer.Context,
        verify: bool = typer.Option(
            False,
            "--verify",
            help="Also check every file's checksum and load each model (slower); by default "
            "manifests, files and sizes are checked.",
        ),
    ) -> None:
        """List the models, whether each is built here and usable, and why one is not."""
        from segue.cli.serve import nothing_built_hint
        from segue.core import artifacts
        from segue.service.engine import Service

        home = home_of(ctx).ensure()
        try:
            artifacts.current(home.root)
        except SegueError:  # a damaged set: the table says what is wrong and how to rebuild
            hint = None
        else:
            hint = nothing_built_hint(home, "segue models", demo="segue demo")
        if hint is not None:  # an empty home: what to run, not a table of "not built"
            err.print(hint, markup=False, highlight=False)
            raise typer.Exit(1)

        service = Service(home)
        failed = False
        for m in service.models(deep=verify):
            if verify and m["available"] and m["built"]:
                problem = service.load_problem(m["name"])
                if problem:
                    m = {**m, "available": False, "reason": problem}
            state = "ready" if m["available"] else f"unavailable: {m['reason']}"
            failed = failed or (m["built"] and not m["available"])
            out.print(
                f"{m['name']:<11} {'(default) ' if m['default'] else ''}{state}",
                highlight=False,
                markup=False,
            )
            chosen = service.chosen_settings(m["name"]) if m["available"] else None
            if chosen:
                out.print(f"{'':<12}{chosen}", highlight=False, markup=False)
        if verify and failed:
            raise typer.Exit(1)

    @app.command()
    def recommend(
        ctx: typer.Context,
        inputs: list[str] = typer.Argument(
            None,
            help="Tracks, artists or playlists (links, URIs, ids), files (Exportify CSV, MPD JSON, list of links), "
            "a catalog playlist name, or a track/artist name.",
        ),
        model: str = typer.Option(
            "hybrid", "--model", "-m", help="Model name (see `segue models`)."
        ),
        param: list[str] = typer.Option(
            None,
            "--param",
            help="Change a parameter of the model for this run, NAME=VALUE (repeatable), e.g. "
            "--param n_genres=20: the content models (model1, model2) refit with it on the "
            "built snapshot.",
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
        allow_versions: bool = typer.Option(
            False,
            "--allow-versions",
            help="Keep several versions of one song (same title and main artist).",
        ),
        save_playlist: str | None = typer.Option(
            None,
            "--save-playlist",
            help="Also create a private playlist NAME with the tracks in your Spotify account "
            "(asks you to log in once; see `segue login`).",
        ),
    ) -> None:
        """Recommend tracks that continue the input."""
        from segue.service import variants
        from segue.service.engine import Filters, Service

        try:  # a bad model or parameter is a usage error, said before anything loads
            variant = variants.parse(model, variants.assignments(param or []), text=True)
        except ValueError as exc:
            raise fail(str(exc), 2) from None
        if not inputs and not title:
            raise fail(
                "give at least one input (a track, artist, playlist, file or name) or --title", 2
            )
        home = home_of(ctx)
        if demo:
            from segue.fitting.demo import ensure_demo_ready

            home = ensure_demo_ready(home, log=lambda m: err.print(m, highlight=False))
        # a person names their own files here
        service = Service(home.ensure(), allow_files=True)
        filters = Filters(
            exclude_artists=list(exclude_artist or []),
            year_min=year_min,
            year_max=year_max,
            popularity_min=popularity_min,
            popularity_max=popularity_max,
            max_per_artist=max_per_artist,
            allow_versions=allow_versions,
        )
        try:
            rec = service.recommend(
                list(inputs or []),
                n=n,
                model=variant.model,
                title=title,
                filters=filters,
                params=variant.as_dict(),
            )
        except (SegueError, ValueError) as exc:
            raise fail(str(exc)) from None
        for message in rec.messages:
            err.print(message, highlight=False)
        sys.stdout.write(render(rec, fmt))
        if save_playlist is not None:
            _save(home_of(ctx), save_playlist, [t.id for t in rec.tracks])


def _save(home: Home, name: str, track_ids: list[str]) -> None:
    """Save the recommended tracks as a Spotify playlist; log in first on a terminal."""
    from segue.cli.account import EXIT_NEEDS_SETUP, interactive_login
    from segue.providers.credentials import CredentialsError
    from segue.providers.spotify_save import NeedsLogin, logged_in, save_playlist

    try:
        if not logged_in(home) and sys.stdin.isatty():
            interactive_login(None, open_browser=True, home=home)
        saved = save_playlist(name, track_ids, home=home)
    except (CredentialsError, NeedsLogin) as exc:
        raise fail(str(exc), EXIT_NEEDS_SETUP) from None
    except (SegueError, ValueError) as exc:
        raise fail(str(exc)) from None
    err.print(
        f"saved {saved.added} track(s) to Spotify playlist {saved.name!r}: {saved.url}",
        markup=False,
    )


__all__ = ["register", "render"]
