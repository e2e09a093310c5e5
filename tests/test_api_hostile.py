"""Hostile and unlucky requests against a real ``segue serve`` (uvicorn in a subprocess on
127.0.0.1): file paths in every disguise, bounded work, strict types, broken bodies, huge
headers, slow bodies. Each answer is checked for what it must never do: read a server file,
tell whether one exists, grow the catalog, show a trace or a server path."""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from segue.service.engine import MAX_NAME_LOOKUPS, MAX_PLAYLIST_LINKS, Service
from tests._serving_home import MODEL, build_home, clean_env, free_port, serving

with warnings.catch_warnings():
    from starlette.exceptions import StarletteDeprecationWarning

    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

SECRET = "SECRET_TOKEN=hunter2-do-not-show"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Path]]:
    """(base URL, home, a folder of server files a client must never reach)."""
    root = tmp_path_factory.mktemp("hostile")
    home = root / "home"
    build_home(home)
    secrets = root / "secrets"
    secrets.mkdir()
    for name in ("secret.txt", "secret.json", "secret.m3u", "secret.csv"):
        (secrets / name).write_text(SECRET + "\n")
    # an Exportify CSV with a track the catalog lacks: read, it would grow the catalog
    (secrets / "export.csv").write_text("Track URI,Track Name\nspotify:track:" + "Q" * 22 + ",x\n")
    os.mkfifo(secrets / "pipe.txt")  # opening it for reading would block the request
    with serving(home, root, cwd=root) as base:
        yield base, home, secrets


def _fingerprint(home: Path) -> dict[str, str]:
    """Every file under the home with a hash of its content (the catalog included)."""
    return {
        str(p.relative_to(home)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(home.rglob("*"))
        if p.is_file()
    }


def _assert_clean(r: httpx.Response, *folders: Path) -> None:
    body = r.text
    for leak in ("Traceback", 'File "', SECRET, "hunter2", ".py"):
        assert leak not in body, f"{leak!r} leaked in {body!r}"
    for folder in folders:
        assert str(folder) not in body


def _path_tricks(secrets: Path) -> list[str]:
    s = str(secrets)
    rel = os.path.relpath(secrets, "/")
    return [
        f"{s}/secret.txt",
        f"{s}/secret.txt/",
        f"{s}/secret.json/",
        f"{s}/secret.m3u/",
        f"{s}/secret.txt/.",
        f"{s}/secret.txt//",
        f"{s}/secret.txt/./",
        f"{s}/./secret.csv",
        f"{s}/secret.TXT",
        f"{s}/export.csv",
        f"{s}/export.csv/.",
        f"{s}/pipe.txt",
        f"{s}/pipe.txt/",
        f"{s}",
        f"{s}/",
        f"file://{s}/secret.txt",
        f"file:{s}/secret.txt",
        f"FILE://localhost{s}/secret.txt",
        "secret.txt",
        "secrets/secret.txt",
        "./secrets/secret.txt",
        f"../../../../../../{rel}/secret.txt",
        f"{s}/../secrets/secret.txt",
        "~/secrets/secret.txt",
        "~root/.bashrc",
        "C:\\secrets\\secret.txt",
        "\\\\server\\share\\secret.txt",
        "secrets\\secret.txt",
        f"{s}/secret.txt\x00.mp3",
        "\x00",
        f"{s}/secret.txt ",
        "/etc/passwd",
        "/etc/hostname",
        "/proc/self/environ",
        "/dev/stdin",
        "..",
        ".",
    ]


# -- item 1: no server path is ever opened ------------------------------------------------
def test_no_path_trick_reads_reveals_or_grows(server: tuple[str, Path, Path]) -> None:
    base, home, secrets = server
    before = _fingerprint(home)
    answers: dict[str, tuple[int, str]] = {}
    with httpx.Client(base_url=base, timeout=20) as c:
        for trick in _path_tricks(secrets):
            for seeds in ([trick], ["Rock Artist 0", trick]):
                r = c.post("/recommend", json={"seeds": seeds, "n": 3, "model": MODEL})
                # answered at all: the FIFO was never opened (a read would block for ever)
                assert r.status_code == 422, (trick, r.status_code, r.text)
                # a NUL is refused as a character before any reading of the text as a path
                why = "invalid character (NUL)" if "\x00" in trick else "cannot be files"
                assert why in r.json()["detail"], (trick, r.text)
                _assert_clean(r, secrets, home)
                answers[trick] = (r.status_code, r.json()["detail"].split(":")[0])
        # the same answer whether the file exists or not: nothing to learn about the disk
        there = c.post("/recommend", json={"seeds": [f"{secrets}/secret.txt/"], "model": MODEL})
        absent = c.post("/recommend", json={"seeds": [f"{secrets}/absent.txt/"], "model": MODEL})
        assert there.status_code == absent.status_code == 422
        assert there.json()["detail"] == absent.json()["detail"]
    assert _fingerprint(home) == before  # nothing written: the catalog did not grow
    assert not (home / "catalog.duckdb").exists()


def test_names_with_slashes_are_names_not_paths(server: tuple[str, Path, Path]) -> None:
    base, _, _ = server
    r = httpx.post(
        f"{base}/recommend", json={"seeds": ["Rock Artist 0", "AC/DC"], "n": 2, "model": MODEL}
    )
    assert r.status_code == 200, r.text
    acdc = next(i for i in r.json()["inputs"] if i["input"] == "AC/DC")
    assert acdc["tracks"] == 0 and "no track, artist or playlist" in acdc["reason"]


# -- item 2: bounded work -----------------------------------------------------------------
def test_too_many_names_get_a_422_naming_the_cap(server: tuple[str, Path, Path]) -> None:
    base, home, _ = server
    before = _fingerprint(home)
    names = [f"love {i}" for i in range(1000)]
    r = httpx.post(f"{base}/recommend", json={"seeds": names, "model": MODEL}, timeout=20)
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert f"at most {MAX_NAME_LOOKUPS} per request" in detail and "1000 distinct names" in detail
    # the same name a thousand times is one lookup
    r = httpx.post(
        f"{base}/recommend", json={"seeds": ["Rock Artist 0"] * 1000, "n": 3, "model": MODEL}
    )
    assert r.status_code == 200 and len(r.json()["inputs"]) == 1
    links = [f"spotify:playlist:{i:022d}" for i in range(MAX_PLAYLIST_LINKS + 1)]
    r = httpx.post(f"{base}/recommend", json={"seeds": links, "model": MODEL})
    assert r.status_code == 422 and f"at most {MAX_PLAYLIST_LINKS} per request" in r.text
    assert _fingerprint(home) == before


def test_unknown_tracks_and_playlists_never_call_out_or_grow(
    server: tuple[str, Path, Path],
) -> None:
    base, home, _ = server
    before = _fingerprint(home)
    seeds = [f"spotify:track:{i:022d}" for i in range(1000)]
    r = httpx.post(f"{base}/recommend", json={"seeds": seeds, "model": MODEL}, timeout=30)
    assert r.status_code == 422 and "not in the catalog" in r.json()["detail"]
    r = httpx.post(
        f"{base}/recommend",
        json={"seeds": ["Rock Artist 0", "spotify:playlist:37i9dQZF1DXcBWIGoYBM5M"], "n": 2},
    )
    assert r.status_code in (200, 503)  # the default model is not built in this home
    r = httpx.post(
        f"{base}/recommend",
        json={"seeds": ["spotify:playlist:37i9dQZF1DXcBWIGoYBM5M"], "model": MODEL},
    )
    assert r.status_code == 422 and "--allow-growth" in r.json()["detail"]
    assert _fingerprint(home) == before


# -- lower: strict types, broken bodies, headers, slow bodies -------------------------------
@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"n": "10"}, "n"),
        ({"n": True}, "n"),
        ({"n": 10.0}, "n"),
        ({"explain": "yes"}, "explain"),
        ({"explain": 1}, "explain"),
        ({"year_min": "1990"}, "year_min"),
        ({"seeds": [1]}, "seeds.0"),
    ],
)
def test_values_are_never_coerced(server: tuple[str, Path, Path], extra: dict, field: str) -> None:
    base, _, _ = server
    r = httpx.post(f"{base}/recommend", json={"seeds": ["Rock Artist 0"], **extra})
    assert r.status_code == 422, r.text
    assert field in {e["field"] for e in r.json()["errors"]}


def test_broken_bodies_get_documented_errors(server: tuple[str, Path, Path]) -> None:
    base, _, _ = server
    spec = httpx.get(f"{base}/openapi.json").json()
    documented = set(spec["paths"]["/recommend"]["post"]["responses"])
    json_type = {"content-type": "application/json"}
    r = httpx.post(f"{base}/recommend", content=b'{"seeds": ["\xff\xfe"]}', headers=json_type)
    assert r.status_code == 400 and "UTF-8" in r.json()["detail"]
    assert "400" in documented
    deep = b'{"seeds": ' + b"[" * 5000 + b"]" * 5000 + b"}"  # valid UTF-8, too deep to parse
    r = httpx.post(f"{base}/recommend", content=deep, headers=json_type)
    assert r.status_code == 400 and "nested hundreds of levels deep" in r.json()["detail"]
    r = httpx.post(f"{base}/recommend", content=b'{"seeds": [', headers=json_type)
    assert r.status_code == 422
    errors = r.json()["errors"]
    assert [e["field"] for e in errors] == ["body"] and "not valid JSON at byte" in errors[0][
        "message"
    ]


def test_huge_headers_are_refused(server: tuple[str, Path, Path]) -> None:
    base, _, _ = server
    for size in (20_000, 1_000_000):
        try:
            r = httpx.get(f"{base}/health", headers={"x-big": "a" * size}, timeout=20)
        except httpx.HTTPError:
            continue  # the connection was closed: refused too
        assert r.status_code in (400, 431), (size, r.status_code)
    assert httpx.get(f"{base}/health", headers={"x-ok": "a" * 1000}).status_code == 200


def test_a_slow_body_is_cut_off(server: tuple[str, Path, Path]) -> None:
    """A client that announces a body and sends it a byte at a time is answered 408 once the
    body timeout passes (10 s), and the server still answers others meanwhile."""
    from segue.api.app import BODY_TIMEOUT

    base, _, _ = server
    port = int(base.rsplit(":", 1)[1])
    body = b'{"seeds": ["Rock Artist 0"], "model": "itemknn", "n": 2}' + b" " * 4000
    with socket.create_connection(("127.0.0.1", port), timeout=BODY_TIMEOUT * 3) as s:
        s.sendall(
            b"POST /recommend HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
        )
        s.setblocking(False)
        got = b""
        for byte in body:
            try:
                s.send(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError, BlockingIOError):
                break
            with contextlib.suppress(BlockingIOError):
                got += s.recv(4096)
            if got:
                break
            assert httpx.get(f"{base}/health", timeout=5).status_code == 200
            time.sleep(0.5)
        s.setblocking(True)
        if not got:
            got = s.recv(4096)
    assert got.startswith(b"HTTP/1.1 408"), got[:200]


# -- unknowns say why ----------------------------------------------------------------------
def test_every_unknown_says_why(server: tuple[str, Path, Path]) -> None:
    base, _, _ = server
    seeds = [
        "Rock Song 12",  # an exact title
        "Rock Artst 0",  # a typo
        "not a song",  # loose: "song" is in every title, "not" in none
        "ock son",  # pieces of words are not words
        "spotify:album:37i9dQZF1DXcBWIGoYBM5M",
        "spotify:artist:37i9dQZF1DXcBWIGoYBM5M",
        "spotify:track:" + "Q" * 22,
    ]
    r = httpx.post(f"{base}/recommend", json={"seeds": seeds, "n": 2, "model": MODEL})
    assert r.status_code == 200, r.text
    body = r.json()
    inputs = {i["input"]: i for i in body["inputs"]}
    assert [i["input"] for i in body["inputs"]] == seeds
    assert inputs["Rock Song 12"]["found"].startswith("the track 'Rock Song 12' by Rock Artist")
    assert inputs["Rock Artst 0"]["suggestions"][0] == "Rock Artist 0"
    assert inputs["not a song"]["reason"] and inputs["ock son"]["reason"]
    assert "albums are not accepted" in inputs[seeds[4]]["reason"]
    assert "artist not in the catalog" in inputs[seeds[5]]["reason"]
    assert "track not in the catalog" in inputs[seeds[6]]["reason"]
    assert any("did you mean 'Rock Artist 0'" in m for m in body["messages"])
    assert set(body["unknown"]) == set(seeds[1:])


def test_the_spotify_model_says_credentials_are_missing(tmp_path: Path) -> None:
    from segue.service.engine import service_for_api

    home = tmp_path / "home"
    build_home(home)
    from segue.api.app import create_app

    env = clean_env(tmp_path)
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        with TestClient(create_app(service_for_api(home)), raise_server_exceptions=False) as c:
            r = c.post("/recommend", json={"seeds": ["Rock Artist 0"], "model": "spotify"})
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert r.status_code == 503
    assert "credentials" in r.json()["detail"] and "not built yet" not in r.json()["detail"]


def test_a_playlist_link_without_credentials_says_they_are_needed(tmp_path: Path) -> None:
    """Where playlists may be read (the command line), a link without credentials says so."""
    home = tmp_path / "home"
    build_home(home)
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(clean_env(tmp_path))
    try:
        seeds = Service(home, grow=False).resolve(["spotify:playlist:37i9dQZF1DXcBWIGoYBM5M"])
    finally:
        os.environ.clear()
        os.environ.update(saved)
    (entry,) = seeds.inputs
    assert entry.reason is not None and "credentials are needed" in entry.reason


# -- the docs work offline -----------------------------------------------------------------
def test_docs_pages_load_nothing_from_another_host(server: tuple[str, Path, Path]) -> None:
    import re

    base, _, _ = server
    for page in ("/docs", "/redoc"):
        html = httpx.get(f"{base}{page}").text
        refs = re.findall(r"""(?:src|href)=["']([^"']+)""", html)
        assert refs, page
        assert not [u for u in refs if "//" in u], (page, refs)
        assert "fonts.googleapis" not in html and "cdn" not in html.lower()
        for ref in refs:
            asset = httpx.get(f"{base}{ref}")
            assert asset.status_code == 200 and len(asset.content) > 100, ref


def test_serve_on_an_empty_home_hints_at_demo(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "segue",
            "--home",
            str(tmp_path / "empty"),
            "serve",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=clean_env(tmp_path),
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline().decode()
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        if proc.stderr is not None:
            proc.stderr.close()
    assert "segue serve --demo" in line and " fit`" in line


def test_serve_on_a_taken_port_says_to_choose_another_and_prints_no_url(tmp_path: Path) -> None:
    import shlex
    import socket

    home = tmp_path / "empty"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "segue", "--home", str(home), "serve", "--port", str(port)],
            capture_output=True,
            text=True,
            env=clean_env(tmp_path),
            stdin=subprocess.DEVNULL,
            timeout=120,
        )
    assert result.returncode == 1
    assert "http://" not in result.stderr and "Traceback" not in result.stderr
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert f"`segue --home {shlex.quote(str(home))} serve --port {port + 1}`" in result.stderr


def test_the_command_line_says_which_name_it_used_and_reads_files(tmp_path: Path) -> None:
    """The command line reports what each name was taken as, like the API's ``inputs``, and
    is the one shell that reads a file named as a seed."""
    home = tmp_path / "home"
    snap = build_home(home)
    listing = tmp_path / "mine.txt/"  # a trailing slash, as a person might type it
    Path(str(listing).rstrip("/")).write_text(f"spotify:track:{snap.tracks['track_id'][12]}\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "segue",
            "--home",
            str(home),
            "recommend",
            "rock song 12",
            "Rock Artst 0",
            str(listing),
            "-m",
            MODEL,
            "-n",
            "3",
        ],
        capture_output=True,
        text=True,
        env=clean_env(tmp_path),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "'rock song 12': using the track 'Rock Song 12' by Rock Artist 0" in result.stderr
    assert "did you mean 'Rock Artist 0'" in result.stderr
    assert "using the playlist file mine.txt: 1 tracks, 1 known" in result.stderr
