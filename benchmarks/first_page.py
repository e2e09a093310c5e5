"""First contact: ``pip install .`` then ``segue demo`` on a fresh machine, timed.

    python benchmarks/first_page.py                 # fresh venv, install, first run, second run
    python benchmarks/first_page.py --keep /tmp/fp  # leave the venv and the home there
    python benchmarks/first_page.py --no-pip-cache  # install with no pip cache (downloads all)

In a temporary folder: ``python -m venv``, then ``pip install <this checkout>`` into it (timed
apart from the rest). Then the README's first command as a new user without a terminal runs it:
``segue demo --no-browser`` from the venv (stdin from /dev/null, output to pipes, its own
session), with an empty ``HOME`` and config folders (no Streamlit config, no segue home, no
``SEGUE_HOME``, no ``PYTHONPATH``). Timed from the start of the process:

* the URL printed on stdout;
* the URL answering 200 with the page's HTML;
* real content in a real browser (headless Chromium driven by Playwright, as
  ``tests/test_browser.py`` does; the browser is started before ``segue demo``): the first of
  the build's progress page ("Building the demo catalog") or the app itself;
* the app usable: the same page, never reloaded, shows the app's seed box ("Playlist, tracks or
  artists") once the demo is built.

The reference, in the same run: ``segue demo`` again on the home the first run built (nothing
to build), timed the same way. The machine's load average is printed before and after. Without
Chromium at /usr/bin/chromium or without Playwright, the browser's figures are left out (the
page's status file then tells when the build ends).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BUILD_PAGE_TEXT = "Building the demo catalog"
APP_LABEL = "Playlist, tracks or artists"
#: Bounds against a hung run (not targets).
URL_LIMIT = 300.0
APP_LIMIT = 1200.0


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} on {os.cpu_count()} cores"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _fresh_env(root: Path, venv: Path) -> dict[str, str]:
    """A user who never ran segue nor Streamlit: empty home and config folders."""
    home = root / "home"
    home.mkdir(exist_ok=True)
    return {
        "PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "LANG": "C.UTF-8",
        "TMPDIR": str(root),
        "VIRTUAL_ENV": str(venv),
    }


def install(root: Path, *, pip_cache: bool) -> tuple[Path, float, float]:
    """A venv in ``root`` with this checkout installed; seconds for each step."""
    venv = root / "venv"
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    t_venv = time.monotonic() - t0
    env = {**os.environ}
    env.pop("PYTHONPATH", None)
    if not pip_cache:
        env["PIP_NO_CACHE_DIR"] = "1"
    t0 = time.monotonic()
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(REPO)],
        check=True,
        env=env,
        cwd=root,
    )
    return venv, t_venv, time.monotonic() - t0


@dataclass
class Run:
    """What one ``segue demo`` showed, in seconds from its start."""

    url: float | None = None
    answered: float | None = None
    content: float | None = None
    content_was: str = ""
    app: float | None = None
    built_line: str = ""
    exit_code: int | None = None
    stderr: list[str] = field(default_factory=list)


def _reader(stream: Any, into: queue.Queue[tuple[float, str]]) -> None:
    for line in iter(stream.readline, ""):
        into.put((time.monotonic(), line))
    into.put((time.monotonic(), ""))


def _page_answers(url: str) -> bool:
    import httpx

    try:
        r = httpx.get(url, timeout=5)
    except httpx.HTTPError:
        return False
    return r.status_code == 200 and "<html" in r.text.lower()


def run_demo(env: dict[str, str], root: Path, browser: Any) -> Run:
    """Start ``segue demo --no-browser`` as a user without a terminal and time it."""
    port = _free_port()
    segue = Path(env["VIRTUAL_ENV"]) / "bin" / "segue"
    run = Run()
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [str(segue), "demo", "--no-browser", "--port", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=root,
        text=True,
        start_new_session=True,
    )
    out: queue.Queue[tuple[float, str]] = queue.Queue()
    errs: queue.Queue[tuple[float, str]] = queue.Queue()
    threading.Thread(target=_reader, args=(proc.stdout, out), daemon=True).start()
    threading.Thread(target=_reader, args=(proc.stderr, errs), daemon=True).start()

    def drain_stderr() -> None:
        while True:
            try:
                _, line = errs.get_nowait()
            except queue.Empty:
                return
            if line:
                run.stderr.append(line.rstrip("\n"))
                if line.startswith("the demo is built"):
                    run.built_line = line.strip()

    try:
        url = ""
        while not url:
            at, line = out.get(timeout=URL_LIMIT)
            if not line:
                raise RuntimeError(f"segue demo ended: {proc.wait()}")
            if "http://" in line:
                url = line.split()[3]
                run.url = at - t0
        while not _page_answers(url):
            time.sleep(0.05)
        run.answered = time.monotonic() - t0
        if browser is not None:
            page = browser.new_page()
            page.goto(url)
            building = page.get_by_text(BUILD_PAGE_TEXT)
            app = page.get_by_label(APP_LABEL)
            building.or_(app).first.wait_for(timeout=URL_LIMIT * 1000)
            run.content = time.monotonic() - t0
            run.content_was = "the app" if app.count() else "the build's progress page"
            app.wait_for(timeout=APP_LIMIT * 1000)  # the same page, turned into the app
            run.app = time.monotonic() - t0
            page.close()
        else:  # the status file the page reads says when the build is done
            status = Path(env["XDG_DATA_HOME"]) / "segue" / "demo" / ".demo-build.json"
            deadline = time.monotonic() + APP_LIMIT
            while time.monotonic() < deadline:
                try:
                    state = json.loads(status.read_text()).get("state")
                except (OSError, ValueError):
                    state = None
                if state == "ready":
                    run.app = time.monotonic() - t0
                    break
                if state in ("failed", "interrupted"):
                    break
                time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl+C
        try:
            run.exit_code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            run.exit_code = proc.wait()
        time.sleep(0.5)
        drain_stderr()
    return run


def _s(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="work in this folder and leave it there")
    parser.add_argument("--no-pip-cache", action="store_true", help="install with no pip cache")
    args = parser.parse_args()

    root = args.keep or Path(tempfile.mkdtemp(prefix="segue-first-page-"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"before: {_load()}", flush=True)
    try:
        venv, t_venv, t_pip = install(root, pip_cache=not args.no_pip_cache)
        cache = "no pip cache" if args.no_pip_cache else "pip's cache as found"
        print(f"install: venv {t_venv:.1f} s, pip install . {t_pip:.1f} s ({cache})", flush=True)
        env = _fresh_env(root, venv)

        pw: Any = None
        browser: Any = None
        if CHROMIUM.exists():
            try:
                from playwright import sync_api

                pw = sync_api.sync_playwright().start()
                browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            except ImportError:
                print("no Playwright: the browser's figures are left out", file=sys.stderr)
        else:
            print(f"no {CHROMIUM}: the browser's figures are left out", file=sys.stderr)
        try:
            first = run_demo(env, root, browser)
            print(f"after the first run: {_load()}", flush=True)
            again = run_demo(env, root, browser)
        finally:
            if browser is not None:
                browser.close()
            if pw is not None:
                pw.stop()
        print(f"after: {_load()}")
        print()
        print("| segue demo | URL printed | URL answers 200 | real content | app usable |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for name, r in (("first run (builds the demo)", first), ("again (built)", again)):
            content = f"{_s(r.content)} ({r.content_was})" if r.content is not None else "-"
            print(f"| {name} | {_s(r.url)} | {_s(r.answered)} | {content} | {_s(r.app)} |")
        print()
        print(
            f"install to first page: {t_venv + t_pip + (first.answered or 0):.1f} s; to the app:"
            f" {t_venv + t_pip + (first.app or 0):.1f} s"
        )
        print(f"first run: {first.built_line or 'no build line'}; exit {first.exit_code}")
        print(f"again: exit {again.exit_code}")
        for name, r in (("first", first), ("again", again)):
            if any("Traceback" in line for line in r.stderr):
                print(f"{name} run's stderr holds a traceback:\n" + "\n".join(r.stderr))
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
