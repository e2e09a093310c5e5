"""The README tells the truth: its set-up commands are what CI runs, and every `segue` command
it shows exists with the options it uses (the commands themselves are run by other tests and
by the tour test below)."""

from __future__ import annotations

import os
import queue
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer.main
from typer.testing import CliRunner

from segue.cli import app
from segue.cli._registry import register_all

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
register_all(app)


def code_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", README, flags=re.S)


def segue_commands() -> list[list[str]]:
    out = []
    for block in code_blocks():
        for line in block.splitlines():
            line = line.split("  #", 1)[0].strip()
            if "segue " not in line or line.startswith("#"):
                continue
            # Take the segue invocation out of a chain such as `pip install . && segue demo`.
            part = next(p for p in line.split("&&") if p.strip().startswith("segue"))
            out.append(shlex.split(part)[1:])
    return out


def test_readme_opens_with_exactly_two_setup_commands() -> None:
    first = code_blocks()[0]
    commands = [ln for ln in first.splitlines() if ln.strip()]
    assert len(commands) == 2
    assert "segue demo" in commands[0]
    test_command = commands[1].split("  #", 1)[0].strip()
    assert "pytest" in test_command
    ci = (REPO / ".ci" / "run").read_text()
    assert test_command in ci, "CI must run the README's test command verbatim"


def _resolve(args: list[str]) -> tuple[Any, list[str]]:
    command: Any = typer.main.get_command(app)
    rest = list(args)
    while rest and rest[0] == "--home":
        rest = rest[2:]
    while hasattr(command, "list_commands") and rest and not rest[0].startswith("-"):
        sub = command.get_command(type(command).context_class(command), rest[0])
        assert sub is not None, f"README names an unknown command: segue {' '.join(args)}"
        command, rest = sub, rest[1:]
    return command, rest


@pytest.mark.parametrize("args", segue_commands(), ids=lambda a: " ".join(a)[:60])
def test_every_readme_command_exists_with_its_options(args: list[str]) -> None:
    command, rest = _resolve(args)
    known = {
        opt
        for p in command.params
        for opt in getattr(p, "opts", []) + getattr(p, "secondary_opts", [])
    }
    for token in rest:
        if token.startswith("-") and token not in {"-", "--"}:
            name = token.split("=", 1)[0]
            assert name in known, (
                f"`segue {' '.join(args)}`: {name} is not an option of that command"
            )


def test_the_tour_commands_are_all_covered() -> None:
    """Commands of the README that the test suite runs for real somewhere."""
    names = {_resolve(a)[0].name for a in segue_commands()}
    assert {
        "demo",
        "recommend",
        "ingest",
        "stats",
        "fit",
        "import-features",
        "fetch",
        "import-playlist",
        "models",
        "make",
        "evaluate",
        "run",
        "score",
        "serve",
        "app",
    } <= names


@pytest.mark.slow
def test_demo_recommend_commands_of_the_readme(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from segue import config

    monkeypatch.setenv("SEGUE_HOME", str(tmp_path))
    config.set_home(None)
    runner = CliRunner()
    demo_lines = [a for a in segue_commands() if a and a[0] == "recommend" and "--demo" in a]
    assert len(demo_lines) >= 3
    for args in demo_lines:
        result = runner.invoke(app, args)
        assert result.exit_code == 0, f"segue {' '.join(args)}\n{result.output}"
        assert result.stdout.strip(), f"segue {' '.join(args)} printed nothing"
    config.set_home(None)


# The first command, as a new user runs it ------------------------------------------------------
def _first_segue_command() -> list[str]:
    """`segue demo` out of the README's first line (`python -m pip install . && segue demo`)."""
    first = code_blocks()[0].splitlines()[0].split("  #", 1)[0]
    install, _, run = first.partition("&&")
    assert install.split() == ["python", "-m", "pip", "install", "."], first
    return shlex.split(run)


def _fresh_user_env(root: Path) -> dict[str, str]:
    """The environment of a user who never ran segue or Streamlit: an empty home and config
    folders, no SEGUE_HOME, no terminal settings. PYTHONPATH is kept only so a checkout run with
    ``PYTHONPATH=src`` tests its own code; CI installs the package and sets none."""
    home = root / "fresh-home"
    home.mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "LANG": "C.UTF-8",
        "TMPDIR": str(root),
    }
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


def _segue_executable() -> str:
    exe = shutil.which("segue")
    assert exe, "the segue command is not installed: python -m pip install ."
    return exe


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _lines(stream: Any, into: queue.Queue[str]) -> None:
    for line in iter(stream.readline, ""):
        into.put(line)
    into.put("")


@pytest.mark.slow
def test_the_first_command_serves_the_app_on_a_fresh_machine(tmp_path: Path) -> None:
    """`segue demo` with no terminal (stdin from /dev/null, output to pipes), a fresh empty home
    and config folders: it builds the demo, prints the URL once when the page answers, shows no
    Streamlit prompt or notice, and stops on Ctrl+C (SIGINT) leaving nothing behind. The README
    runs it on port 8501; the test adds `--port` with a free port so a busy 8501 cannot fail it."""
    args = _first_segue_command()
    assert args == ["segue", "demo"]
    port = _free_port()
    env = _fresh_user_env(tmp_path)
    proc = subprocess.Popen(
        [_segue_executable(), *args[1:], "--port", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=tmp_path,
        text=True,
        start_new_session=True,  # no controlling terminal, like a service or CI job
    )
    out: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_lines, args=(proc.stdout, out), daemon=True).start()
    stdout: list[str] = []
    try:
        deadline = time.monotonic() + 300
        while not any("http://" in line for line in stdout):
            assert time.monotonic() < deadline, "no URL within 300 s: " + "".join(stdout)
            try:
                line = out.get(timeout=1)
            except queue.Empty:
                continue
            assert line, f"segue demo ended ({proc.wait()}): {proc.stderr.read()}"  # type: ignore[union-attr]
            stdout.append(line)
        url = re.search(r"http://\S+", "".join(stdout)).group(0)  # type: ignore[union-attr]
        assert url == f"http://127.0.0.1:{port}"
        page = httpx.get(url, timeout=10)
        assert page.status_code == 200 and "<html" in page.text.lower()
        health = httpx.get(f"{url}/_stcore/health", timeout=10)
        assert (health.status_code, health.text) == (200, "ok")
        assert proc.poll() is None, "the server must keep running without a terminal"
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl+C
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            pytest.fail("segue demo did not stop on Ctrl+C")
    stderr = proc.stderr.read()  # type: ignore[union-attr]
    while (line := out.get(timeout=5)) != "":
        stdout.append(line)
    proc.stdout.close()  # type: ignore[union-attr]
    proc.stderr.close()  # type: ignore[union-attr]
    assert code == 0, stderr
    printed = "".join(stdout)
    assert printed.count("http://") == 1, printed  # the URL, once
    for notice in (
        "email",
        "gatherUsageStats",
        "streamlit skills",
        "You can now view",
        "Traceback",
    ):
        assert notice.lower() not in (printed + stderr).lower(), stderr
    assert "building the demo catalog" in stderr
    with socket.socket() as s:  # the server is gone with it
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
    assert not (Path(env["HOME"]) / ".streamlit" / "credentials.toml").exists()


def test_a_taken_port_is_one_line_naming_port(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = subprocess.run(
            [_segue_executable(), "demo", "--port", str(port)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=_fresh_user_env(tmp_path),
            cwd=tmp_path,
            timeout=120,
        )
    assert result.returncode == 1
    assert result.stdout == ""  # no URL for a server that never ran
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"port {port}" in lines[0] and "--port" in lines[0], result.stderr
    assert f"segue demo --port {port + 1}" in lines[0]
    # Nothing was built for a demo that could not start.
    assert not (tmp_path / "fresh-home" / ".local" / "share" / "segue" / "demo").exists()


def test_no_browser_is_opened_without_a_terminal() -> None:
    from segue.cli.serve import can_open_browser

    code = "from segue.cli.serve import can_open_browser as c; print(c())"
    result = subprocess.run(
        [sys.executable, "-c", code],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env={**os.environ, "DISPLAY": ":0"},
        timeout=60,
    )
    assert result.stdout.strip() == "False", result.stderr
    assert callable(can_open_browser)
