"""End to end in a real headless Chromium: ``segue app`` on a tiny catalog, a playlist in, results out.

Needs Debian's ``chromium`` at /usr/bin/chromium (``apt-get install -y chromium``); Playwright
drives it and never downloads a browser of its own. A screenshot is saved under
``test-artifacts/``.
"""

from __future__ import annotations

import http.server
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright import sync_api

from tests._serving_home import build_home

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # No name resolves but the app's own address: the page cannot reach Spotify, as offline.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason=f"{CHROMIUM} is absent: apt-get install -y chromium"
    ),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def app_url(tmp_path: Path) -> Iterator[str]:
    home = tmp_path / "home"
    build_home(home)
    port = free_port()
    env = {**os.environ, "SEGUE_HOME": str(home)}
    log = (tmp_path / "app.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "segue",
            "--home",
            str(home),
            "app",
            "--no-browser",
            "--port",
            str(port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"segue app exited with {proc.returncode}: {(tmp_path / 'app.log').read_text()}"
                )
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"segue app did not start: {(tmp_path / 'app.log').read_text()}")
            time.sleep(0.25)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_a_playlist_gets_recommendations_in_a_real_browser(app_url: str) -> None:
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2200})
            page.goto(app_url)
            box = page.get_by_label("Playlist, tracks or artists")
            box.wait_for(timeout=30_000)
            box.fill("rock mix 1\nChill Artist 0")
            box.press("Control+Enter")  # commit the text area's value
            page.get_by_role("button", name="Recommend").click()
            heading = page.get_by_role("heading", name="10 tracks for “rock mix 1”")
            heading.wait_for(timeout=30_000)
            expect = sync_api.expect
            expect(page.get_by_role("button", name="Download CSV")).to_be_visible(timeout=30_000)
            expect(page.get_by_text("10. ", exact=False).first).to_be_visible(timeout=30_000)
            body = page.locator("[data-testid='stMain']").first.inner_text()
            assert "Traceback" not in body
            ranks = re.findall(r"^(\d+)\. (\w+) Song \d+ — ", body, flags=re.MULTILINE)
            assert [r for r, _ in ranks] == [str(i) for i in range(1, 11)], body
            assert ranks[0][1] in ("Rock", "Chill"), (
                body
            )  # the best continuation is in the seeds' clusters
            # Reasons in words; the models' detail only behind its toggle.
            assert "Often played with “" in body and "from your playlist" in body, body
            assert "rank" not in body and "from your seeds" not in body, body
            assert re.search(r"Started from \d+ tracks: “\w+ Song \d+” by ", body), body
            # The page cannot reach Spotify: no grey players, and it says why.
            off = page.get_by_text("Spotify players are off: this page cannot reach", exact=False)
            off.wait_for(timeout=30_000)
            assert page.locator("iframe[src*='open.spotify.com']").count() == 0
            # The model's name fits its box; no note about a genre control that is not shown.
            sidebar = page.locator("[data-testid='stSidebar']").first
            # The select box shows its value in an input: the text's drawn width must fit it.
            clipped = sidebar.locator("[data-testid='stSelectbox'] input").first.evaluate(
                """el => {
                    const style = getComputedStyle(el);
                    const ctx = document.createElement('canvas').getContext('2d');
                    ctx.font = style.font;
                    const room = el.clientWidth - parseFloat(style.paddingLeft)
                        - parseFloat(style.paddingRight);
                    return ctx.measureText(el.value).width > room ? [el.value] : [];
                }"""
            )
            assert clipped == [], clipped
            assert "Number of genres" not in sidebar.inner_text()
            page.get_by_text("Show the models' technical detail").click()
            expect(page.get_by_text("from your seeds", exact=False).first).to_be_visible(
                timeout=30_000
            )
            page.wait_for_timeout(1500)  # let the chart settle
            ARTIFACTS.mkdir(exist_ok=True)
            shot = ARTIFACTS / "webapp-recommend.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000

            box.fill("https://open.spotify.com/track/broken")
            box.press("Control+Enter")
            page.get_by_role("button", name="Recommend").click()
            error = page.get_by_text("not a Spotify reference", exact=False)
            error.wait_for(timeout=30_000)
            assert "Traceback" not in page.locator("[data-testid='stMain']").first.inner_text()

            page.get_by_text("Log", exact=True).click()
            page.get_by_role("heading", name="Fetches").wait_for(timeout=30_000)
            page.screenshot(path=str(ARTIFACTS / "webapp-log.png"), full_page=True)
        finally:
            browser.close()


class _SpotifyStandIn(http.server.BaseHTTPRequestHandler):
    """Answers every request like a reachable open.spotify.com: a page for the players."""

    def do_GET(self) -> None:
        body = b"<!doctype html><title>player</title><p>player</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def spotify_stand_in(tmp_path: Path) -> Iterator[int]:
    """An HTTPS server on 127.0.0.1 the browser reaches as open.spotify.com (self-signed)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is absent: no certificate for the Spotify stand-in")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=open.spotify.com",
        ],
        check=True,
        capture_output=True,
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SpotifyStandIn)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def test_players_show_when_the_page_reaches_spotify(app_url: str, spotify_stand_in: int) -> None:
    args = [a for a in CHROMIUM_ARGS if not a.startswith("--host-resolver-rules")] + [
        f"--host-resolver-rules=MAP open.spotify.com 127.0.0.1:{spotify_stand_in}, "
        "MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        "--ignore-certificate-errors",
    ]
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=args)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1600})
            page.goto(app_url)
            box = page.get_by_label("Playlist, tracks or artists")
            box.wait_for(timeout=30_000)
            box.fill("Rock Artist 0")
            box.press("Control+Enter")
            page.get_by_role("button", name="Recommend").click()
            page.get_by_text("Show Spotify players", exact=True).wait_for(timeout=30_000)
            players = page.locator("iframe[src^='https://open.spotify.com/embed/track/']")
            sync_api.expect(players).to_have_count(10, timeout=30_000)
            assert page.get_by_text("Spotify players are off", exact=False).count() == 0
        finally:
            browser.close()
