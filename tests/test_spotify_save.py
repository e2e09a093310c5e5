"""Saving recommendations to a Spotify playlist against a fake accounts service and Web API on
127.0.0.1: the PKCE exchange (headless: URL printed, redirect pasted), the owner-only token
cache, refresh, logout, the 2026 endpoints and the older ones, batches of 100, and a 403 for an
account not on the app's allow-list."""

from __future__ import annotations

import io
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from segue.providers.spotify_save import (
    NeedsLogin,
    SaveRefused,
    logged_in,
    login,
    logout,
    save_playlist,
    token_path,
)
from tests.fake_spotify import fast_policy, make_id
from tests.fake_spotify_user import NOT_REGISTERED, FakeSpotifyUser


@pytest.fixture
def fake(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSpotifyUser]:
    monkeypatch.delenv("SEGUE_SPOTIFY_YAML", raising=False)
    with FakeSpotifyUser() as server:
        for key, value in server.env().items():
            monkeypatch.setenv(key, value)
        yield server


def _ids(n: int) -> list[str]:
    import random

    rng = random.Random(n)
    return [make_id(rng) for _ in range(n)]


def _login(fake: FakeSpotifyUser, user: str = "alice") -> list[str]:
    shown: list[str] = []

    def ask(_: str) -> str:
        url = next(line for line in shown[-1].splitlines() if line.startswith("http"))
        return fake.approve(url, user=user)

    login(ask, shown.append)
    return shown


def test_headless_login_exchanges_the_code_with_pkce_and_caches_owner_only(fake, caplog):
    caplog.set_level(logging.DEBUG)
    shown = _login(fake)
    assert "/authorize?" in shown[0] and "code_challenge=" in shown[0]
    body = fake.token_bodies[-1]
    assert body["grant_type"] == "authorization_code" and "code_verifier" in body
    assert "client_secret" not in body  # PKCE: no secret sent
    path = token_path()
    assert logged_in() and path.is_file()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    refresh = fake.refresh and next(iter(fake.refresh))
    assert refresh not in caplog.text and body["code_verifier"] not in caplog.text


def test_a_pasted_url_that_is_not_the_redirect_is_refused(fake):
    with pytest.raises(NeedsLogin, match="not the redirect URL"):
        login(lambda _: "https://example.com/somewhere", lambda _: None)
    with pytest.raises(NeedsLogin, match="did not authorize"):
        login(lambda _: "http://127.0.0.1:8888/callback?error=access_denied", lambda _: None)
    assert not logged_in()


def test_save_creates_a_playlist_and_adds_tracks_in_batches_of_100(fake):
    _login(fake)
    ids = _ids(230)
    saved = save_playlist("Sunday mix", ids, policy=fast_policy())
    assert saved.added == 230 and saved.url.startswith("https://open.spotify.com/playlist/")
    playlist = fake.playlists[saved.playlist_id]
    assert playlist["uris"] == [f"spotify:track:{t}" for t in ids]
    assert playlist["public"] is False and playlist["owner"] == "alice"
    posts = [p for m, p, s in fake.requests if m == "POST" and p.startswith("/v1/")]
    assert posts[0] == "/v1/me/playlists"
    assert posts[1:] == [f"/v1/playlists/{saved.playlist_id}/items"] * 3


def test_save_falls_back_to_the_older_paths(fake):
    fake.old_api = True
    _login(fake)
    saved = save_playlist("Old API", _ids(120), policy=fast_policy())
    assert len(fake.playlists[saved.playlist_id]["uris"]) == 120
    paths = [p for _, p, _ in fake.requests if p.startswith("/v1/")]
    assert "/v1/me" in paths and "/v1/users/alice/playlists" in paths
    # The new items path is tried once, then the older one is used for every batch.
    assert paths.count(f"/v1/playlists/{saved.playlist_id}/items") == 1
    assert paths.count(f"/v1/playlists/{saved.playlist_id}/tracks") == 2


def test_expired_token_is_refreshed_once(fake):
    _login(fake)
    fake.expire_tokens()
    saved = save_playlist("Refreshed", _ids(3), policy=fast_policy())
    assert saved.added == 3
    assert fake.token_bodies[-1]["grant_type"] == "refresh_token"


def test_user_not_on_the_allow_list_gets_a_message_saying_what_to_do(fake):
    _login(fake, user="bob")
    with pytest.raises(SaveRefused) as info:
        save_playlist("Nope", _ids(3), policy=fast_policy())
    message = str(info.value)
    assert NOT_REGISTERED in message and "User Management" in message
    assert "segue login" in message
    assert not fake.playlists


def test_not_logged_in_and_logout(fake):
    with pytest.raises(NeedsLogin, match="segue login"):
        save_playlist("x", _ids(2), policy=fast_policy())
    _login(fake)
    assert logout() is True and not token_path().exists()
    assert logout() is False


def test_a_revoked_login_asks_to_log_in_again(fake):
    _login(fake)
    fake.expire_tokens()
    fake.refresh.clear()  # the user removed the app on Spotify's side
    with pytest.raises((NeedsLogin, SaveRefused), match="segue login"):
        save_playlist("x", _ids(2), policy=fast_policy())


def test_bad_input_is_refused_before_any_request(fake):
    _login(fake)
    n = len(fake.requests)
    with pytest.raises(ValueError, match="needs a name"):
        save_playlist("  ", _ids(2))
    with pytest.raises(ValueError, match="not a Spotify track id"):
        save_playlist("x", ["nope"])
    assert len(fake.requests) == n


def _cli() -> typer.Typer:
    from segue.cli import _registry

    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    _registry.register_all(app)
    return app


def test_cli_login_prints_the_url_and_reads_the_pasted_redirect(fake, home):
    """A real ``segue login`` process: the URL on stderr, the redirect pasted on stdin."""
    import subprocess
    import sys

    env = {**os.environ, "SEGUE_HOME": str(home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "segue", "login", "--no-browser"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stderr is not None and proc.stdin is not None
    url = ""
    for line in proc.stderr:
        if line.startswith("http") and "/authorize?" in line:
            url = line.strip()
            break
    assert url, "no authorization URL printed"
    proc.stdin.write(fake.approve(url) + "\n")
    proc.stdin.flush()
    stdout, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, stdout
    assert "logged in" in stdout
    assert logged_in()
    result = CliRunner().invoke(_cli(), ["logout"])
    assert result.exit_code == 0 and "deleted" in result.stdout
    assert "spotify.com/account/apps" in result.stdout
    assert not logged_in()


def test_cli_save_playlist_step(fake, monkeypatch, capsys):
    from segue.cli import recommend
    from segue.core.home import Home

    home = Home.resolve(None)  # the one SEGUE_HOME names, as without --home
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal: no login prompt
    with pytest.raises(typer.Exit) as info:
        recommend._save(home, "Mix", _ids(3))
    assert info.value.exit_code == 2
    assert "segue login" in capsys.readouterr().err
    _login(fake)
    recommend._save(home, "Mix", _ids(3))
    assert "saved 3 track(s) to Spotify playlist 'Mix'" in capsys.readouterr().err
    assert [p["name"] for p in fake.playlists.values()] == ["Mix"]


def test_a_saved_login_without_the_playlist_scopes_asks_to_log_in_again(fake):
    import json

    _login(fake)
    path = token_path()
    token = json.loads(path.read_text())
    token["scope"] = "user-read-email"
    path.write_text(json.dumps(token))
    n = len(fake.requests)
    with pytest.raises(NeedsLogin, match="does not allow creating playlists"):
        save_playlist("x", _ids(2), policy=fast_policy())
    assert len(fake.requests) == n  # never blocked on an interactive login, nothing sent


def test_an_expired_saved_token_is_refreshed_before_use(fake):
    import json

    _login(fake)
    path = token_path()
    token = json.loads(path.read_text())
    token["expires_at"] = 0
    path.write_text(json.dumps(token))
    saved = save_playlist("Later", _ids(2), policy=fast_policy())
    assert saved.added == 2 and fake.token_bodies[-1]["grant_type"] == "refresh_token"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600  # the refreshed token too
