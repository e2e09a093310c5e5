"""``segue serve`` (HTTP API), ``segue app`` (web app) and ``segue demo`` (web app on the demo catalog)."""

from __future__ import annotations

import errno
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import typer

from segue.cli._console import err, error
from segue.cli.core import home_of
from segue.core.errors import SegueError
from segue.core.home import HOME_ENV, Home
from segue.wire import serving
from segue.wire.pool import PoolUnavailable

if TYPE_CHECKING:
    from segue.fitting.demo import BuildProgress

#: How long the web app may take to answer its health check before segue gives up on it.
APP_START_TIMEOUT = 180.0


def _demo_home(home: Home) -> Home:
    """The demo home of ``home``, built on first use."""
    from segue.fitting.demo import ensure_demo_ready

    try:
        return ensure_demo_ready(home, log=lambda m: err.print(m, highlight=False))
    except (SegueError, ValueError, OSError) as exc:
        error(f"the demo catalog cannot be set up: {exc}")
        raise typer.Exit(1) from None


def _use_demo_home(home: Home) -> tuple[Home, bool]:
    """The demo home of ``home`` (its folder made), building nothing, and True when the demo
    there is built (else the web app builds it behind a progress page)."""
    from segue.fitting.demo import demo_ready

    try:
        demo = home.demo.ensure()
        return demo, demo_ready(demo.root)
    except (SegueError, ValueError, OSError) as exc:
        error(f"the demo catalog cannot be set up: {exc}")
        raise typer.Exit(1) from None


def _run_demo_app(base: Home, host: str, port: int, no_browser: bool, command: str) -> int:
    """``segue demo`` and ``segue app --demo``: the web app on ``base``'s demo home, which it
    builds behind a progress page when not built yet. A port in use is said before anything
    is built; ``command`` is how to run it again, for the hints."""
    problem = listen_problem(host, port)
    if problem is not None:
        error(_port_message(host, port, command, problem))
        raise typer.Exit(1)
    home, ready = _use_demo_home(base)
    return run_app(
        home,
        host=host,
        port=port,
        open_browser=not no_browser,
        command=command,
        build_demo=not ready,
    )


def streamlit_command(*, host: str, port: int) -> list[str]:
    """The command line that runs the web app's script with Streamlit.

    Every prompt and notice of Streamlit is off whatever its config files say (flags override
    them): no first-run email prompt (it blocks with a terminal and exits 255 without one), no
    telemetry notice, no welcome banner or advertisement, no browser opened by Streamlit
    (segue prints the URL and opens the browser itself, once the server answers).
    """
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
        "true",
        "--server.showEmailPrompt",
        "false",
        "--browser.gatherUsageStats",
        "false",
        "--logger.hideWelcomeMessage",
        "true",
        "--logger.level",
        "warning",
        "--server.fileWatcherType",
        "none",
        "--server.runOnSave",
        "false",
        "--client.showErrorDetails",
        "none",
        "--client.toolbarMode",
        "minimal",
        "--server.maxUploadSize",
        "20",
    ]


def listen_problem(host: str, port: int) -> str | None:
    """Why a server could not listen on ``host:port`` right now, or None when it can.

    Binds the way Streamlit's server does (``SO_REUSEADDR``: a port left in TIME_WAIT is free).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return "in use"
            return exc.strerror or str(exc)
    return None


def _port_message(host: str, port: int, command: str, problem: str) -> str:
    if problem == "in use":
        return (
            f"port {port} on {host} is already in use (another program, or another segue app, "
            f"listens there): choose a free one with --port, e.g. `{command} --port {port + 1}`"
        )
    return f"cannot listen on {host}:{port}: {problem}; choose another --port or --host"


def can_open_browser() -> bool:
    """A graphical browser can be opened here: a display (on Linux and the BSDs), a person
    at a terminal, and a browser that runs in the background (never a text browser that would
    take over the terminal)."""
    import webbrowser

    if not (sys.stdin.isatty() or sys.stdout.isatty()):
        return False
    if (
        sys.platform not in ("darwin", "win32")
        and not os.environ.get("DISPLAY")
        and not os.environ.get("WAYLAND_DISPLAY")
    ):
        return False
    try:
        browser = webbrowser.get()
    except webbrowser.Error:
        return False
    return not (
        isinstance(browser, webbrowser.GenericBrowser)
        and not isinstance(browser, webbrowser.BackgroundBrowser)
    )


def _open_browser(url: str) -> None:
    import webbrowser

    try:
        webbrowser.open(url, new=2)
    except (webbrowser.Error, OSError) as exc:
        err.print(f"could not open a browser ({exc}): open {url} yourself", highlight=False)


def _answers(url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/_stcore/health", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the server gets SIGTERM if segue dies without stopping it (``kill -9``)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _stderr_fd() -> int | None:
    """This process's stderr as a file descriptor for the server's output (None: inherit)."""
    try:
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # replaced by a stream without one
        return None


#: What Streamlit prints on its stdout when it stops: segue says itself why the app stopped.
_SERVER_CHATTER = (b"Stopping...",)


def _pass_on(stream: Any) -> None:
    """Copy the server's stdout to this process's stderr, line by line, but its chatter."""
    fd = _stderr_fd()
    with stream:
        for line in iter(stream.readline, b""):
            if line.strip() in _SERVER_CHATTER:
                continue
            try:
                if fd is not None:
                    os.write(fd, line)
                else:
                    sys.stderr.write(line.decode("utf-8", "replace"))
            except (OSError, ValueError):  # stderr closed: nothing to show it on
                pass


def run_app(
    home: Home,
    *,
    host: str,
    port: int,
    open_browser: bool,
    command: str,
    build_demo: bool = False,
) -> int:
    """Run the web app in a Streamlit server on ``home`` until stopped.

    The server runs in a child process. Its URL is printed once, on stdout, when the server
    answers; the browser is opened then if ``open_browser`` and a browser can be opened here.
    Ctrl+C or SIGTERM stops the server. ``command`` is how the person started it, for hints.

    ``build_demo``: ``home`` is a demo home not built yet. The server starts first and shows a
    page with the build's progress (read from the status file of
    :class:`segue.fitting.demo.BuildProgress`) while this process builds the demo; the page
    turns into the app when the build is done. A build that fails says why in the terminal and
    on the page, which stays up until stopped; an interrupted one says what it kept.
    """
    url_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    url_host = f"[{url_host}]" if ":" in url_host else url_host
    url = f"http://{url_host}:{port}"
    problem = listen_problem(host, port)
    if problem is not None:
        error(f"{_port_message(host, port, command, problem)}")
        return 1
    from segue.fitting.demo import STATUS_ENV

    root = home.ensure().root.resolve()
    env = dict(os.environ)
    # The script runs in Streamlit's own process: hand it the home folder (it builds its Home
    # from SEGUE_HOME, as any segue without --home does).
    env[HOME_ENV] = str(root)
    env.pop(STATUS_ENV, None)
    progress: BuildProgress | None = None
    if build_demo:
        from segue.fitting.demo import BuildProgress, build_steps, status_path

        # Written before the server starts: its first page shows the build.
        progress = BuildProgress(status_path(root), build_steps(root))
        env[STATUS_ENV] = str(progress.path)
    popen: dict[str, Any] = {}
    if sys.platform.startswith("linux"):
        popen["preexec_fn"] = _die_with_parent
    # It works in the person's current folder (a Spotify.yaml there is found, as by the CLI).
    # Its own output goes to stderr; stdout carries only the URL.
    proc = subprocess.Popen(
        streamlit_command(host=host, port=port),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        **popen,
    )
    threading.Thread(
        target=_pass_on, args=(proc.stdout,), name="segue-app-output", daemon=True
    ).start()
    stop = {"signal": 0, "building": progress is not None}

    def on_term(signum: int, frame: Any) -> None:
        stop["signal"] = signum
        proc.terminate()
        if stop["building"]:
            raise KeyboardInterrupt  # stops the build, which says what it kept

    def announce() -> None:
        """Print the URL (and open the browser) once the server answers."""
        deadline = time.monotonic() + APP_START_TIMEOUT
        while proc.poll() is None and not _answers(url):
            if time.monotonic() > deadline:
                error(
                    f"the web app did not answer at {url} within "
                    f"{APP_START_TIMEOUT:.0f} s; stopping it"
                )
                proc.terminate()
                return
            time.sleep(0.2)
        if proc.poll() is None:
            typer.echo(f"segue web app: {url}  (Ctrl+C stops it)")
            sys.stdout.flush()
            if open_browser and can_open_browser():
                _open_browser(url)

    got_int: list[int] = []
    previous_int = signal.getsignal(signal.SIGINT)

    def on_int(signum: int, frame: Any) -> None:
        got_int.append(signum)  # a library may turn the KeyboardInterrupt into its own error
        if callable(previous_int):
            previous_int(signum, frame)
        else:
            signal.default_int_handler(signum, frame)

    previous = signal.signal(signal.SIGTERM, on_term)
    if progress is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, on_int)
    failed = False
    try:
        if progress is None:
            announce()
        else:
            threading.Thread(target=announce, name="segue-app-url", daemon=True).start()
            failed = not _build_demo_behind(
                progress, url, command, stopped=lambda: bool(stop["signal"] or got_int)
            )
            stop["building"] = False
        code = proc.wait()
        if stop["signal"]:
            return 1 if failed else 0
        problem = listen_problem(host, port) if code != 0 else None
        if problem is not None:
            # Another program took the port between segue's check and the server's start.
            error(f"{_port_message(host, port, command, problem)}")
        elif code != 0:
            error(f"the web app stopped (exit status {code})")
        return 0 if code == 0 and not failed else 1
    except KeyboardInterrupt:
        stop["building"] = False
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if progress is not None and progress.status.state == "interrupted":
            how = "stopped (SIGTERM)" if stop["signal"] else "interrupted (Ctrl+C)"
            err.print(f"{how}: {progress.status.message}", highlight=False, markup=False)
            return 128 + (stop["signal"] or signal.SIGINT)
        err.print("web app stopped", highlight=False)
        return 1 if failed else 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        if progress is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, previous_int)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@contextmanager
def _ctrl_c_held() -> Iterator[None]:
    """Ctrl+C waits for the end of the block, then raises ``KeyboardInterrupt``: a
    KeyboardInterrupt raised inside an import that runs code from a string makes Python kill
    itself with SIGINT at exit, so modules are loaded with it held (as ``segue fit`` does)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: got.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if got:
        raise KeyboardInterrupt


def _build_demo_behind(
    progress: BuildProgress, url: str, command: str, stopped: Callable[[], bool]
) -> bool:
    """Build the demo in the folder of ``progress``'s status file while the web app shows
    ``progress``. True when built; False when it failed (said in the terminal and on the page).
    Interrupted (``KeyboardInterrupt``, or any error once ``stopped()`` says Ctrl+C or SIGTERM
    came: DuckDB turns the interrupt into its own error): the page's status says what was kept,
    and ``KeyboardInterrupt`` goes on."""
    from segue.fitting.demo import what_was_kept

    root = progress.path.parent
    again = f"run `{command}` again to continue"

    def say(line: str) -> None:
        err.print(line, highlight=False, markup=False)
        progress.log(line)

    started = time.monotonic()
    try:
        with _ctrl_c_held():
            from segue.fitting.build import DEFAULT_BUILD
            from segue.fitting.demo import build_demo
            from segue.models.registry import model_class

            for name in DEFAULT_BUILD:
                model_class(name)
            import segue.catalog.bundled
            import segue.snapshot.from_catalog  # noqa: F401
        build_demo(root, log=say, on_step=progress.step)
    except KeyboardInterrupt:
        progress.finish("interrupted", f"the demo build stopped: {what_was_kept(root)}; {again}")
        raise
    except Exception as exc:
        if stopped():
            progress.finish(
                "interrupted", f"the demo build stopped: {what_was_kept(root)}; {again}"
            )
            raise KeyboardInterrupt from None
        why = (
            str(exc)
            if isinstance(exc, (SegueError, ValueError, OSError, ImportError))
            else f"unexpected {type(exc).__name__}: {exc}"
        )
        kept = what_was_kept(root)
        progress.finish("failed", f"{why} ({kept})")
        error(
            f"the demo catalog cannot be set up: {why}. {kept[0].upper()}{kept[1:]}; fix the "
            f"cause and {again}. The page at {url} says so too; Ctrl+C stops it."
        )
        return False
    progress.finish("ready")
    err.print(
        f"the demo is built ({time.monotonic() - started:.0f} s): the page now shows the app",
        highlight=False,
    )
    return True


def nothing_built_hint(home: Home, command: str, demo: str | None = None) -> str | None:
    """What to run when ``home`` has no snapshot yet (None when it has one). ``demo``: the
    command that tries the bundled demo (default: ``command`` with ``--demo``)."""
    from segue.core import artifacts

    generation = artifacts.current_or_none(home.ensure().root)
    if generation is not None and generation.exists and generation.snapshot_dir.exists():
        return None
    where = _home_flag(home)
    return (
        f"nothing is built in {home} yet: run `segue{where} ingest <MPD slices>` and "
        f"`segue{where} fit`, or try the bundled demo catalog with "
        f"`{demo or command + ' --demo'}`"
    )


def _home_flag(home: Home) -> str:
    """`` --home <home>`` when a bare ``segue`` in this shell would use another home, else ``""``."""
    root = home.root.resolve()
    return "" if home.is_bare() else f" --home {shlex.quote(str(root))}"


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        ctx: typer.Context,
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
        home = home_of(ctx)
        if demo:
            home = _demo_home(home)
        problem = listen_problem(host, port)
        if problem is not None:  # before any hint or URL: the one thing to change is the port
            command = "segue serve --demo" if demo else f"segue{_home_flag(home)} serve"
            error(_port_message(host, port, command, problem))
            raise typer.Exit(1)
        say = lambda m: err.print(m, highlight=False)  # noqa: E731
        hint = None if demo else nothing_built_hint(home, "segue serve")
        if hint:
            say(hint)
        say(f"segue API: http://{host}:{port}  (docs at /docs, Ctrl+C stops it)")
        try:
            serving.serve(
                host, port, home=home, workers=workers, allow_growth=allow_growth, say=say
            )
        except KeyboardInterrupt:  # Ctrl+C is how a server is stopped: nothing to run again
            say("segue API stopped (Ctrl+C)")
            raise typer.Exit(130) from None
        except (OSError, PoolUnavailable) as exc:
            error(str(exc))
            raise typer.Exit(1) from None

    @app.command(name="app")
    def web_app(
        ctx: typer.Context,
        host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
        port: int = typer.Option(8501, "--port", min=1, max=65535, help="Port to listen on."),
        demo: bool = typer.Option(
            False, "--demo", help="Use the bundled demo catalog (built on first use)."
        ),
        no_browser: bool = typer.Option(
            False,
            "--no-browser",
            "--headless",
            help="Do not open a browser (none is opened without a display and a terminal).",
        ),
    ) -> None:
        """Run the web app (Streamlit); its URL is printed when it answers."""
        home = home_of(ctx)
        # How to run this again (hints, the port message): the home named when not the default.
        command = f"segue{_home_flag(home)} app" + (" --demo" if demo else "")
        if demo:
            raise typer.Exit(_run_demo_app(home, host, port, no_browser, command))
        hint = nothing_built_hint(home, "segue app")
        if hint:
            err.print(hint, highlight=False)
        raise typer.Exit(
            run_app(home, host=host, port=port, open_browser=not no_browser, command=command)
        )

    @app.command()
    def demo(
        ctx: typer.Context,
        port: int = typer.Option(8501, "--port", min=1, max=65535, help="Port to listen on."),
        no_browser: bool = typer.Option(
            False,
            "--no-browser",
            help="Do not open a browser (none is opened without a display and a terminal).",
        ),
    ) -> None:
        """Set up the bundled demo catalog (first run only) and open the web app on it."""
        base = home_of(ctx)
        command = f"segue{_home_flag(base)} demo"  # how to run it again, for the hints
        raise typer.Exit(_run_demo_app(base, "127.0.0.1", port, no_browser, command))
