"""Figures for docs/security-console.md: markup in user text, echoed secrets, insecure token
URLs, Ctrl+C during fetch, clean stops on a long Retry-After.

Every case runs the real ``segue`` command in a subprocess against the fake Spotify server of
``tests/fake_spotify.py`` on 127.0.0.1, so the same script measures any source tree::

    PYTHONPATH=src python scripts/console_figures.py                  # this tree
    PYTHONPATH=/path/to/other/src python scripts/console_figures.py   # e.g. the code before

It prints one line per case.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import duckdb  # noqa: E402

from tests.fake_spotify import (  # noqa: E402
    CLIENT_ID,
    CLIENT_SECRET,
    FakeSpotify,
    env_for,
    make_world,
    write_mpd_slice,
)

WRONG_SECRET = "wrongSECRET-0d9e8f7a6b5c4d3e2f1a-never-log-me"


def segue(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "segue", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def base_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SEGUE_DEBUG"}
    env["SEGUE_HOME"] = str(home)
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tracebacks(text: str) -> int:
    return text.count("Traceback (most recent call last)")


# -- markup ------------------------------------------------------------------------------------


def markup_cases(root: Path) -> None:
    from tests._serving_home import build_home

    empty = root / "empty"
    built = root / "built"
    build_home(built, ("itemknn", "title"))
    bad = root / "bad.json"
    row = {
        "pos": 0,
        "track_uri": "[/]",
        "artist_name": "a",
        "artist_uri": "spotify:artist:" + "1" * 22,
        "track_name": "t",
        "album_uri": "spotify:album:" + "1" * 22,
        "album_name": "b",
        "duration_ms": 1000,
    }
    playlist = {"name": "[bold red]x", "pid": 1, "num_followers": 1, "tracks": [row]}
    bad.write_text(json.dumps({"info": {}, "playlists": [playlist]}))
    port = str(free_port())
    cases = [
        (empty, ["ingest", "-q", "nope[/].json"], "nope[/].json"),
        (empty, ["ingest", "-q", str(bad)], "'[/]'"),
        (built, ["recommend", "-m", "itemknn", "[/]"], "[/]"),
        (built, ["recommend", "-m", "title", "--title", "[/]", "-n", "3"], "'[/]'"),
        (built, ["recommend", "-m", "itemknn", "[bold red]hi"], "[bold red]hi"),
        (empty, ["import-features", "x[/].csv"], "x[/].csv"),
        (empty, ["serve", "--host", "[/]", "--port", port], "[/]:" + port),
    ]
    clean = 0
    for home, args, literal in cases:
        proc = segue(*args, env=base_env(home))
        shown = literal in proc.stdout + proc.stderr
        ok = not tracebacks(proc.stderr) and "MarkupError" not in proc.stderr and shown
        clean += ok
        print(
            f"markup  {' '.join(args)[:60]:<60} exit {proc.returncode:>3}  "
            f"tracebacks {tracebacks(proc.stderr)}  text shown literally: {shown}"
        )
    print(f"markup  {clean} of {len(cases)} cases clean")


# -- fetch cases ---------------------------------------------------------------------------------


def fresh_catalog(root: Path, name: str, world) -> Path:
    home = root / name
    home.mkdir(parents=True)
    slice_file = write_mpd_slice(world, root / f"{name}.json")
    proc = segue("ingest", "-q", str(slice_file), env=base_env(home))
    if proc.returncode != 0:
        raise SystemExit(f"ingest failed: {proc.stderr}")
    return home


def catalog_dump(path: Path) -> str:
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
            ).fetchall()
        ]
        return "\n".join(repr(con.execute(f'SELECT * FROM "{t}"').fetchall()) for t in tables)
    finally:
        con.close()


def with_dates(home: Path) -> int:
    con = duckdb.connect(str(home / "catalog.duckdb"), read_only=True)
    try:
        return int(
            con.execute("SELECT count(*) FROM tracks WHERE release_date IS NOT NULL").fetchone()[0]
        )
    finally:
        con.close()


def secret_cases(root: Path) -> None:
    world = make_world(30, seed=5, n_artists=10)
    scenarios = {
        "token error quoting the credentials": ({"SPOTIPY_CLIENT_SECRET": WRONG_SECRET}, []),
        "API errors quoting the token": ({}, [("tracks", 500, None), ("artists", 429, 3600)]),
    }
    for label, (extra, rules) in scenarios.items():
        home = fresh_catalog(root, label.replace(" ", "-"), world)
        with FakeSpotify(world, echo_secrets=True) as fake:
            for endpoint, status, retry_after in rules:
                fake.fail(endpoint, status=status, retry_after=retry_after)
            env = base_env(home, **{**env_for(fake, audio=False), **extra})
            proc = segue("fetch", "-q", "--provider", "spotify", env=env)
            secrets = [CLIENT_ID, CLIENT_SECRET, WRONG_SECRET, *fake.tokens_seen]
            secrets += [
                base64.b64encode(f"{CLIENT_ID}:{s}".encode()).decode()
                for s in (CLIENT_SECRET, WRONG_SECRET)
            ]
        log = home / "logs" / "fetch-errors.log"
        places = {
            "stdout": proc.stdout,
            "stderr": proc.stderr,
            "fetch-errors.log": log.read_text() if log.exists() else "",
            "catalog": catalog_dump(home / "catalog.duckdb"),
        }
        leaks = {where: sum(text.count(s) for s in secrets) for where, text in places.items()}
        print(
            f"secrets {label:<38} exit {proc.returncode}  occurrences: "
            + ", ".join(f"{k} {v}" for k, v in leaks.items())
        )
    home = fresh_catalog(root, "insecure", world)
    with FakeSpotify(world) as fake:
        env = base_env(home, **env_for(fake, audio=False))
        env["SEGUE_SPOTIFY_TOKEN_URL"] = "http://accounts.example.org/api/token"
        proc = segue("fetch", "-q", "--provider", "spotify", env=env)
    print(
        f"secrets {'http:// token URL off this machine':<38} exit {proc.returncode}  "
        f"refused: {'refusing to send' in proc.stderr}  stderr lines {len(proc.stderr.splitlines())}"
    )


def ctrl_c_case(root: Path, n_tracks: int = 60, answered: int = 15) -> None:
    world = make_world(n_tracks, seed=21, n_artists=12)
    home = fresh_catalog(root, "ctrl-c", world)
    with FakeSpotify(world) as fake:
        fake.dev_mode_2026()
        fake.fail("track", mode="slow", delay=0.15)
        env = base_env(home, **env_for(fake, audio=False))
        proc = subprocess.Popen(
            [sys.executable, "-m", "segue", "fetch", "--provider", "spotify"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        deadline = time.monotonic() + 120
        while len(fake.asked_ids("track")) < answered and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
        first = set(fake.asked_ids("track"))
        kept = with_dates(home)
        fake.clear_failures()
        fake.dev_mode_2026()
        before = len(fake.requests_to("track"))
        again = segue("fetch", "-q", "--provider", "spotify", env=env)
        second = [r.ids[0] for r in fake.requests_to("track")[before:]]
    print(
        f"ctrl-c  fetch: exit {proc.returncode}, {tracebacks(stderr)} traceback(s), "
        f"{len(stderr.strip().splitlines()[-1:][0]) if stderr.strip() else 0}-char last line; "
        f"{len(first)} answered before Ctrl+C, {kept} kept; next run (exit {again.returncode}) "
        f"asked {len(second)}, {len(set(second) & first)} of them answered before"
    )
    print(f"ctrl-c  last stderr line: {stderr.strip().splitlines()[-1] if stderr.strip() else ''}")


def retry_after_cases(root: Path, n_tracks: int = 40, answered: int = 7) -> None:
    world = make_world(n_tracks, seed=17, n_artists=30)
    for label, rules in {
        "429 Retry-After 3600 mid-batch": [("track", 429, 3600, answered)],
        "429 on the token refresh mid-batch": [
            ("token", 429, 3600, 1),
            ("track", 401, None, answered),
        ],
    }.items():
        home = fresh_catalog(root, label.replace(" ", "-").replace("/", ""), world)
        with FakeSpotify(world) as fake:
            fake.dev_mode_2026()
            for endpoint, status, retry_after, skip in rules:
                fake.fail(
                    endpoint,
                    status=status,
                    retry_after=retry_after,
                    skip=skip,
                    # the token refresh case: the token has expired (every later call 401)
                    times=1 if status == 429 and endpoint == "track" else None,
                )
            env = base_env(home, **env_for(fake, audio=False))
            first_run = segue("fetch", "-q", "--provider", "spotify", env=env)
            first = [i for r in fake.requests_to("track") if r.status == 200 for i in r.ids]
            tokens = len(fake.requests_to("token"))
            kept = with_dates(home)
            stopped = "stopped early" in first_run.stdout
            fake.clear_failures()
            fake.dev_mode_2026()
            before = len(fake.requests_to("track"))
            segue("fetch", "-q", "--provider", "spotify", env=env)
            second = [i for r in fake.requests_to("track")[before:] for i in r.ids]
        print(
            f"stop    {label:<36} run 1: exit {first_run.returncode}, clean stop {stopped}, "
            f"{len(first)} answered, {kept} kept, {tokens} token request(s); "
            f"run 2 asked {len(second)} (of {n_tracks}), {len(set(second) & set(first))} again"
        )


def main() -> None:
    import segue

    print(f"segue from {Path(segue.__file__).parent}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        markup_cases(root / "markup")
        secret_cases(root / "secrets")
        ctrl_c_case(root / "ctrl-c")
        retry_after_cases(root / "stop")


if __name__ == "__main__":
    main()
