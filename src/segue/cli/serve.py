"""``segue serve`` (HTTP API), ``segue app`` (web app) and ``segue demo`` (web app on the demo catalog)."""

from __future__ import annotations

import os
import subprocess
import sys

import typer

from segue import config, serving
from segue.cli._console import err, error
from segue.errors import SegueError
from segue.pool import PoolUnavailable


def _demo_home() -> None:
    """Switch this process to the demo home, building it on first use."""
    from segue.demo_setup import ensure_demo_ready

    try:
        ensure_demo_ready(log=lambda m: err.print(m, highlight=False))
    except (SegueError, ValueError, OSError, ImportError) as exc:
        error(f"the demo catalog cannot be set up: {exc}")
        raise typer.Exit(1) from None


def streamlit_command(*, host: str, port: int, headless: bool) -> list[str]:
    """The command line that runs the web app's script with Streamlit."""
    from segue.webapp import APP_SCRIPT

    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP_SCRIPT),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true" if headless else "false",
        "--server.fileWatcherType",
        "none",
        "--browser.gatherUsageStats",
        "false",
        "--client.showErrorDetails",
        "none",
        "--client.toolbarMode",
        "minimal",
        "--server.maxUploadSize",
        "20",
    ]


def run_app(*, host: str, port: int, headless: bool) -> int:
    """Run the web app in a Streamlit server on the current home until interrupted.

    On POSIX this process becomes the Streamlit server (``exec``), so signals such as
    SIGTERM reach the server itself and no orphan is left behind.
    """
    env = dict(os.environ)
    # The script runs in Streamlit's own process: hand it this process's home folder.
    env["SEGUE_HOME"] = str(config.home())
    url_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    err.print(f"segue web app: http://{url_host}:{port}  (Ctrl+C stops it)", highlight=False)
    command = streamlit_command(host=host, port=port, headless=headless)
    if os.name == "posix":
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(command[0], command, env)
    proc = subprocess.Popen(command, env=env)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            return proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
        port: int = typer.Option(8000, "--port", min=1, max=65535, help="Port to listen on."),
        demo: bool = typer.Option(
            False, "--demo", help="Serve the bundled demo catalog (built on first use)."
        ),
        workers: int = typer.Option(
            1,
            "--workers",
            min=1,
            max=64,
            help="Processes computing recommendations, e.g. one per core (each loads the "
            "models), fed from one queue.",
        ),
        allow_growth: bool = typer.Option(
            False,
            "--allow-growth",
            help="Let requests look unknown tracks and playlist links up on Spotify and add "
            "them to the catalog (at most 100 tracks a minute per process). Off: the API "
            "never calls out nor writes the catalog.",
        ),
    ) -> None:
        """Run the HTTP API (OpenAPI docs at /docs)."""
        if demo:
            _demo_home()
        say = lambda m: err.print(m, highlight=False)  # noqa: E731
        if not (config.home() / "artifacts" / "snapshot" / "manifest.json").exists():
            say(
                "note: nothing is built in this home yet, so requests will get 503: run "
                "`segue ingest` and `segue fit`, or try `segue serve --demo` for the bundled "
                "demo catalog"
            )
        say(f"segue API: http://{host}:{port}  (docs at /docs, Ctrl+C stops it)")
        try:
            serving.serve(host, port, workers=workers, allow_growth=allow_growth, say=say)
        except (OSError, PoolUnavailable) as exc:
            error(str(exc))
            raise typer.Exit(1) from None

    @app.command(name="app")
    def web_app(
        host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
        port: int = typer.Option(8501, "--port", min=1, max=65535, help="Port to listen on."),
        demo: bool = typer.Option(
            False, "--demo", help="Use the bundled demo catalog (built on first use)."
        ),
        headless: bool = typer.Option(False, "--headless", help="Do not open a browser."),
    ) -> None:
        """Run the web app (Streamlit)."""
        if demo:
            _demo_home()
        raise typer.Exit(run_app(host=host, port=port, headless=headless))

    @app.command()
    def demo(
        port: int = typer.Option(8501, "--port", min=1, max=65535, help="Port to listen on."),
        no_browser: bool = typer.Option(False, "--no-browser", help="Do not open a browser."),
    ) -> None:
        """Set up the bundled demo catalog (first run only) and open the web app on it."""
        _demo_home()
        out_host = "127.0.0.1"
        typer.echo(f"http://{out_host}:{port}")
        raise typer.Exit(run_app(host=out_host, port=port, headless=no_browser))
