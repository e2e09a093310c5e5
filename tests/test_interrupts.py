"""No traceback reaches a user: Ctrl+C (a real SIGINT into a real process) during ``segue fetch``
keeps what was answered and says how to resume; the CLI's net turns any other interrupt into one
line and exit 130, and any unexpected error into one line (the traceback only with --debug or
SEGUE_DEBUG=1); ``segue --version``."""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from segue.catalog import Catalog
from segue.catalog.ingest import ingest_paths
from tests.fake_spotify import FakeSpotify, env_for, make_world, write_mpd_slice

N_TRACKS = 60
#: Answers the first run gets before Ctrl+C: within the first batch of single lookups (the first
#: batch holds 50 ids), so keeping them needs the batch in flight to be kept.
ANSWERED_BEFORE_CTRL_C = 15


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SEGUE_DEBUG",)}
    env.update(extra)
    return env


def _sigint_as_usual() -> None:
    """In the child: SIGINT at its default even when this test runs with it ignored (a
    background job of a shell without job control), so Python installs its handler."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_for(predicate, what: str, limit: float = 120.0) -> None:
    """Wait until ``predicate()`` holds (a bound against a hung process, not a speed check)."""
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


def _with_dates(path: Path) -> int:
    with Catalog.open(path, read_only=True) as catalog:
        return int(catalog.scalar("SELECT count(*) FROM tracks WHERE release_date IS NOT NULL"))


def test_ctrl_c_during_fetch_keeps_the_answers_and_the_next_run_resumes(home, tmp_path):
    world = make_world(N_TRACKS, seed=21, n_artists=12)
    catalog_path = home / "catalog.duckdb"
    with Catalog.open(catalog_path) as catalog:
        ingest_paths(catalog, [str(write_mpd_slice(world, tmp_path / "s.json"))], progress=False)
    command = [sys.executable, "-m", "segue", "fetch", "--provider", "spotify"]
    with FakeSpotify(world) as fake:
        fake.dev_mode_2026()  # single lookups, one id per request
        fake.fail("track", mode="slow", delay=0.15)
        env = _env(**env_for(fake, audio=False), SEGUE_HOME=str(home))
        proc = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=_sigint_as_usual,
        )
        try:
            _wait_for(
                lambda: len(fake.asked_ids("track")) >= ANSWERED_BEFORE_CTRL_C,
                "the first answers",
            )
            proc.send_signal(signal.SIGINT)
            stdout, stderr = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
        answered_first = set(fake.asked_ids("track"))
        assert proc.returncode == 130, stderr
        assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
        last = stderr.strip().splitlines()[-1]
        assert last.startswith("interrupted (Ctrl+C): ")
        assert "kept in the catalog" in last and "run `segue fetch` again to resume" in last
        kept = _with_dates(catalog_path)
        # everything answered was kept, but for the one answer that may have been on its way
        assert len(answered_first) - 1 <= kept <= len(answered_first)
        assert kept >= ANSWERED_BEFORE_CTRL_C - 1
        assert f"{kept:,} answer(s)" in last
        assert any(line.startswith("interrupted: ") for line in stdout.splitlines())

        fake.clear_failures()
        fake.dev_mode_2026()
        before = len(fake.requests_to("track"))
        again = subprocess.run([*command, "-q"], env=env, capture_output=True, text=True)
        assert again.returncode == 0, again.stderr
        second = [r.ids[0] for r in fake.requests_to("track")[before:]]
    # the second run asked exactly what the first did not keep, each id once
    assert len(second) == len(set(second)) == N_TRACKS - kept
    assert not set(second) & _kept_ids(catalog_path, before=second)
    assert _with_dates(catalog_path) == N_TRACKS


def _kept_ids(path: Path, *, before: list[str]) -> set[str]:
    """Ids with facts now, less those the second run fetched: what the first run kept."""
    with Catalog.open(path, read_only=True) as catalog:
        rows = catalog.con.execute(
            "SELECT track_id FROM tracks WHERE release_date IS NOT NULL"
        ).fetchall()
    return {r[0] for r in rows} - set(before)


_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from segue.cli import app, main

    @app.command()
    def wait():
        print("ready", flush=True)
        time.sleep(120)

    @app.command()
    def wrapped():
        # a library that turns Ctrl+C into its own error, as DuckDB does
        print("ready", flush=True)
        try:
            time.sleep(120)
        except KeyboardInterrupt:
            raise RuntimeError("Query interrupted") from None

    @app.command()
    def boom():
        raise ZeroDivisionError("the unexpected\\nsecond line")

    main()
    """
)


def _script(tmp_path: Path) -> list[str]:
    path = tmp_path / "cli_with_extra_commands.py"
    path.write_text(_SCRIPT)
    return [sys.executable, str(path)]


@pytest.mark.parametrize("command", ["wait", "wrapped"])
def test_ctrl_c_anywhere_is_one_line_and_exit_130(tmp_path, command):
    proc = subprocess.Popen(
        [*_script(tmp_path), command],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_sigint_as_usual,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert stderr.strip().splitlines() == ["interrupted (Ctrl+C); run the command again"]


def test_unexpected_error_is_one_line_and_debug_shows_the_traceback(tmp_path):
    plain = subprocess.run([*_script(tmp_path), "boom"], env=_env(), capture_output=True, text=True)
    assert plain.returncode == 1
    assert plain.stderr.strip().splitlines() == [
        "error: unexpected ZeroDivisionError: the unexpected "
        "(run with --debug or SEGUE_DEBUG=1 for the details)"
    ]
    for args, env in (
        (["--debug", "boom"], _env()),
        (["boom"], _env(SEGUE_DEBUG="1")),
    ):
        debug = subprocess.run([*_script(tmp_path), *args], env=env, capture_output=True, text=True)
        assert debug.returncode == 1
        assert "Traceback (most recent call last)" in debug.stderr
        assert debug.stderr.strip().splitlines()[-1] == (
            "error: unexpected ZeroDivisionError: the unexpected"
        )


@pytest.mark.parametrize("command", [["stats"], ["fit"], ["recommend", "x"], ["models"]])
def test_a_file_as_home_is_one_line_naming_it(tmp_path, command):
    home = tmp_path / "a-file"
    home.write_text("not a folder")
    proc = subprocess.run(
        [sys.executable, "-m", "segue", "--home", str(home), *command],
        env=_env(),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"error: cannot use {home} as segue's home: it is not a folder; give a folder with "
        "--home or SEGUE_HOME"
    ]
    assert home.read_text() == "not a folder"


def test_ctrl_c_stops_serve_with_one_line_saying_so(tmp_path):
    import urllib.request

    port = _free_port()
    proc = _segue_process(["--home", str(tmp_path / "h"), "serve", "--port", str(port)])

    def answers() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return True
        except OSError:
            return False

    try:
        _wait_for(answers, "the API")
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert stderr.strip().splitlines()[-1] == "segue API stopped (Ctrl+C)"
    assert "run the command again" not in stderr and "Traceback" not in stderr


def test_version():
    from importlib.metadata import version

    proc = subprocess.run(
        [sys.executable, "-m", "segue", "--version"], env=_env(), capture_output=True, text=True
    )
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout == f"segue {version('segue')}\n"


def test_usage_errors_are_typers_own_and_user_text_stays_literal():
    for args in (["recommend", "-n", "abc", "x"], ["recommend", "--format", "[/]", "x"]):
        proc = subprocess.run(
            [sys.executable, "-m", "segue", *args], env=_env(), capture_output=True, text=True
        )
        assert proc.returncode == 2
        assert "unexpected" not in proc.stderr and "Traceback" not in proc.stderr
    assert "'[/]' is not one of" in proc.stderr


def test_ctrl_c_during_self_growing_keeps_the_tracks_answered(home):
    """The service's self-growing (single lookups) keeps what was answered before Ctrl+C."""
    import threading

    from segue.catalog.fetch import grow_catalog
    from tests.fake_spotify import provider_for

    world = make_world(30, seed=4, n_artists=5)
    wanted = list(world.tracks)
    with FakeSpotify(world) as fake, Catalog.open(home / "catalog.duckdb") as catalog:
        fake.fail("track", mode="slow", delay=0.1)
        provider = provider_for(fake)

        def ctrl_c_after_some_answers() -> None:
            _wait_for(lambda: len(fake.asked_ids("track")) >= 6, "the first answers")
            os.kill(os.getpid(), signal.SIGINT)  # a real SIGINT, to this process's main thread

        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        threading.Thread(target=ctrl_c_after_some_answers, daemon=True).start()
        try:
            with (
                _socket_cut_off_while_connecting_is_freed(server_port=fake.port),
                pytest.raises(KeyboardInterrupt),
            ):
                grow_catalog(catalog, wanted, provider=provider)
        finally:
            signal.signal(signal.SIGINT, previous)
            provider.close()
        answered = set(fake.asked_ids("track"))
        kept = {row["track_id"] for row in catalog.track_rows(wanted)}
    assert kept <= answered
    assert len(kept) >= len(answered) - 1 >= 5


@contextlib.contextmanager
def _socket_cut_off_while_connecting_is_freed(server_port: int | None = None) -> Iterator[None]:
    """Free, inside the block, a socket that urllib3 was connecting when Ctrl+C came.

    urllib3 closes the socket it is connecting only on OSError. A KeyboardInterrupt landing
    between creating the socket and handing it to its connection (before the connect, or after
    it but before ``HTTPConnection.sock`` holds it) leaves it unclosed, held by the interrupt's
    traceback, then freed by the garbage collector, by chance in a later test, which would fail.
    Only the warning for such a socket is expected here: one never bound nor connected, or, with
    ``server_port``, one connected from loopback to that test server and to nothing else.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message=r"unclosed <socket\.socket .*laddr=\('0\.0\.0\.0', 0\)>",
            category=ResourceWarning,
        )
        if server_port is not None:
            warnings.filterwarnings(
                "ignore",
                message=(
                    r"unclosed <socket\.socket .*laddr=\('127\.0\.0\.1', \d+\), "
                    rf"raddr=\('127\.0\.0\.1', {server_port}\)>"
                ),
                category=ResourceWarning,
            )
        try:
            yield
        finally:
            gc.collect()


def test_a_socket_cut_off_while_connecting_is_freed_inside_the_block(monkeypatch):
    """The helper above frees, before its block ends, the socket urllib3 leaves unclosed when a
    KeyboardInterrupt comes while it connects (forced here in ``socket.connect``)."""
    import socket

    import requests

    unraisable: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)

    def interrupted(self: socket.socket, address: Any) -> None:
        raise KeyboardInterrupt

    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        with monkeypatch.context() as patch:
            patch.setattr(socket.socket, "connect", interrupted)
            with _socket_cut_off_while_connecting_is_freed(), pytest.raises(KeyboardInterrupt):
                requests.get("http://127.0.0.1:9/", timeout=5)
        gc.collect()
    assert unraisable == []


def test_a_socket_cut_off_just_after_connecting_is_freed_inside_the_block(monkeypatch):
    """The same helper, given the server's port, frees the socket left unclosed when the
    KeyboardInterrupt comes just after the connect (forced here), and only that one: a socket
    connected to another port still warns."""
    import socket

    import requests

    listener = socket.create_server(("127.0.0.1", 0))
    other = socket.create_server(("127.0.0.1", 0))
    port, other_port = listener.getsockname()[1], other.getsockname()[1]
    real_connect = socket.socket.connect

    def connected_then_interrupted(self: socket.socket, address: Any) -> None:
        real_connect(self, address)
        raise KeyboardInterrupt

    def interrupted_asking(target: int) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("error", ResourceWarning)
            with monkeypatch.context() as patch:
                patch.setattr(socket.socket, "connect", connected_then_interrupted)
                with (
                    _socket_cut_off_while_connecting_is_freed(server_port=port),
                    pytest.raises(KeyboardInterrupt),
                ):
                    requests.get(f"http://127.0.0.1:{target}/", timeout=5)
            gc.collect()

    unraisable: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    try:
        interrupted_asking(port)
        assert unraisable == []
        interrupted_asking(other_port)
        warned = [str(u.exc_value) for u in unraisable]
        assert len(warned) == 1
        assert f"raddr=('127.0.0.1', {other_port})" in warned[0]
    finally:
        listener.close()
        other.close()


def _segue_process(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``python -m segue ARGS`` as a user starts it: no terminal, Ctrl+C as usual."""
    return subprocess.Popen(
        [sys.executable, "-m", "segue", *args],
        env=_env() if env is None else env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_sigint_as_usual,
    )


def _demo_process(home: Path, port: int) -> subprocess.Popen[str]:
    """``segue --home HOME demo`` as a user starts it, with no terminal and no browser."""
    return _segue_process(
        ["--home", str(home), "demo", "--no-browser", "--port", str(port)],
        env={k: v for k, v in _env().items() if k not in ("SEGUE_HOME", "SEGUE_DEMO_HOME")},
    )


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
def test_ctrl_c_during_the_demo_build_says_what_was_kept_and_a_rerun_goes_on(tmp_path):
    """`segue demo` prints its URL while it builds the demo behind the page; Ctrl+C then stops
    the build with one line saying what was kept and the command that goes on (this home's),
    and the page's status says the same. The next run keeps the catalog and builds the models."""
    import shlex
    import urllib.request

    from segue.catalog.bundled import CATALOG_NAME
    from segue.fitting.demo import read_status, status_path

    home = tmp_path / "h"
    demo = home / "demo"
    again = f"run `segue --home {shlex.quote(str(home))} demo` again to continue"
    port = _free_port()
    proc = _demo_process(home, port)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the URL, printed while the build goes on
        assert line == f"segue web app: http://127.0.0.1:{port}  (Ctrl+C stops it)\n", line
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as page:
            assert page.status == 200 and b"<html" in page.read().lower()

        def fitting() -> bool:
            status = read_status(status_path(demo))
            assert status is not None and status.state == "building", status
            return status.step.startswith("fitting")

        _wait_for(fitting, "the demo build to fit its models", limit=300)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "unexpected" not in stderr, stderr
    assert "Stopping..." not in stderr, stderr  # the server's own chatter is left out
    last = stderr.strip().splitlines()[-1]
    kept = "kept the demo catalog; its models were not built yet"
    assert last == f"interrupted (Ctrl+C): the demo build stopped: {kept}; {again}", stderr
    status = read_status(status_path(demo))
    assert status is not None and status.state == "interrupted" and kept in status.message
    with Catalog.open(demo / CATALOG_NAME, read_only=True) as catalog:
        assert catalog.scalar("SELECT count(*) FROM tracks") > 28_000  # whole, and kept

    # Run again: the kept catalog is used, the models are built (stopped again once started).
    port = _free_port()
    proc = _demo_process(home, port)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith(f"segue web app: http://127.0.0.1:{port}")
        _wait_for(
            lambda: (s := read_status(status_path(demo))) is not None and s.step != "starting",
            "the second build to start",
        )
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "its catalog is kept from an earlier run" in stderr, stderr
    assert "building the demo catalog" not in stderr and "Traceback" not in stderr, stderr
    assert proc.returncode == 130, stderr
