"""Credentials and tokens never reach stdout, stderr, fetch-errors.log or the catalog, even when
the servers echo them back in their error answers; credentials go only to HTTPS or loopback."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from segue.catalog import Catalog
from segue.catalog.fetch import ERROR_LOG_NAME
from segue.catalog.ingest import ingest_paths
from segue.core.redact import MASK, redact, register_secret
from segue.providers.credentials import InsecureURLError, check_credential_url, is_loopback_host
from tests.fake_spotify import (
    CLIENT_ID,
    CLIENT_SECRET,
    FakeSpotify,
    World,
    env_for,
    make_world,
    provider_for,
    write_mpd_slice,
)

WRONG_SECRET = "wrongSECRET-0d9e8f7a6b5c4d3e2f1a-never-log-me"


@pytest.fixture
def world() -> World:
    return make_world(30, seed=5, n_artists=10)


@pytest.fixture
def catalog_path(home: Path, world: World) -> Path:
    path = home / "catalog.duckdb"
    slice_file = write_mpd_slice(world, home.parent / "slice.json")
    with Catalog.open(path) as catalog:
        ingest_paths(catalog, [str(slice_file)], progress=False)
    return path


@pytest.fixture
def fake(world: World) -> Iterator[FakeSpotify]:
    with FakeSpotify(world, echo_secrets=True) as server:
        yield server


def _cli() -> typer.Typer:
    from segue.cli import _registry

    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    _registry.register_all(app)
    return app


def _catalog_text(path: Path) -> str:
    """Every value of every table of the catalog, as text."""
    with Catalog.open(path, read_only=True) as catalog:
        tables = [
            r[0]
            for r in catalog.con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
            ).fetchall()
        ]
        return "\n".join(
            repr(catalog.con.execute(f'SELECT * FROM "{t}"').fetchall()) for t in tables
        )


def _secrets(fake: FakeSpotify, *extra: str) -> list[str]:
    basic = [
        base64.b64encode(f"{CLIENT_ID}:{s}".encode()).decode() for s in (CLIENT_SECRET, *extra)
    ]
    return [CLIENT_ID, CLIENT_SECRET, *extra, *basic, *fake.tokens_seen]


def _assert_clean(texts: dict[str, str], secrets: list[str]) -> None:
    for where, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"a credential reached {where}"
        # no fragment of one either (a message cut short must not keep half a secret)
        for secret in secrets:
            assert secret[:12] not in text, f"part of a credential reached {where}"


def _run_fetch(monkeypatch, fake: FakeSpotify, **env: str):
    for key, value in {**env_for(fake, audio=False), **env}.items():
        monkeypatch.setenv(key, value)
    return CliRunner().invoke(_cli(), ["fetch", "-q", "--provider", "spotify"])


def _outputs(result, home: Path, catalog_path: Path) -> dict[str, str]:
    log = home / "logs" / ERROR_LOG_NAME
    return {
        "stdout": result.stdout,
        "stderr": result.stderr,
        "fetch-errors.log": log.read_text() if log.exists() else "",
        "catalog": _catalog_text(catalog_path),
        "catalog file": catalog_path.read_bytes().decode("latin-1"),
    }


def test_token_error_echoing_the_credentials_is_redacted_everywhere(
    fake, home, catalog_path, monkeypatch
):
    result = _run_fetch(monkeypatch, fake, SPOTIPY_CLIENT_SECRET=WRONG_SECRET)
    assert result.exit_code == 1, result.output
    assert fake.requests_to("token")  # the server was asked and echoed
    texts = _outputs(result, home, catalog_path)
    assert "refused the app's client credentials" in result.stdout
    assert MASK in result.stdout  # the echo was there, and masked
    _assert_clean(texts, _secrets(fake, WRONG_SECRET))


def test_api_errors_echoing_the_token_are_redacted_everywhere(
    fake, home, catalog_path, monkeypatch
):
    fake.fail("tracks", status=500)
    fake.fail("artists", status=429, retry_after=3600)
    result = _run_fetch(monkeypatch, fake)
    assert result.exit_code == 1, result.output
    assert fake.tokens_seen  # a token was issued, then quoted back in every error answer
    texts = _outputs(result, home, catalog_path)
    assert "HTTP 500" in texts["fetch-errors.log"] and MASK in texts["fetch-errors.log"]
    assert "stopped early: spotify" in result.stdout
    _assert_clean(texts, _secrets(fake))


def test_token_endpoint_rate_limit_echo_is_redacted(fake, home, catalog_path, monkeypatch):
    fake.fail("token", status=429, retry_after=3600)
    result = _run_fetch(monkeypatch, fake)
    assert result.exit_code == 1
    assert "3600" in result.stdout
    _assert_clean(_outputs(result, home, catalog_path), _secrets(fake))


def test_provider_errors_are_redacted_for_every_caller(fake):
    """The library path (the API's self-growing, the Spotify model) gets redacted errors too."""
    fake.fail("tracks", status=503)
    fake.fail("track", status=503)
    provider = provider_for(fake)
    try:
        result = provider.fetch("track_facts", list(fake.world.tracks)[:3])
    finally:
        provider.close()
    reasons = " ".join(reason for _, reason in result.errors)
    assert "HTTP 503" in reasons
    _assert_clean({"errors": reasons}, _secrets(fake))


def test_insecure_token_url_is_refused_before_anything_is_sent(
    fake, home, catalog_path, monkeypatch
):
    result = _run_fetch(
        monkeypatch, fake, SEGUE_SPOTIFY_TOKEN_URL="http://accounts.example.org/api/token"
    )
    assert result.exit_code == 2
    assert "refusing to send Spotify credentials" in result.stderr
    assert "SEGUE_SPOTIFY_TOKEN_URL" in result.stderr and "https://" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert fake.requests == []


def test_insecure_token_url_given_to_the_provider_directly_stops_without_sending(fake):
    from segue.core.config import NetworkSettings
    from segue.providers.credentials import Credentials
    from segue.providers.spotify import SpotifyProvider
    from tests.fake_spotify import fast_policy

    settings = NetworkSettings(fake.api_base, "http://192.0.2.1/api/token", None, 1.0, 0.3)
    provider = SpotifyProvider(
        Credentials(CLIENT_ID, CLIENT_SECRET), settings=settings, policy=fast_policy()
    )
    try:
        result = provider.fetch("track_facts", list(fake.world.tracks)[:2])
    finally:
        provider.close()
    assert result.stop is not None and "refusing to send" in str(result.stop)
    assert fake.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "https://accounts.spotify.com/api/token",
        "http://127.0.0.1:8080/api/token",
        "http://127.8.9.10/api/token",
        "http://localhost:9/api/token",
        "http://LOCALHOST./x",
        "http://[::1]:8000/api/token",
        "http://[::ffff:127.0.0.1]/x",
    ],
)
def test_https_and_loopback_urls_are_accepted(url):
    check_credential_url(url, "SEGUE_SPOTIFY_TOKEN_URL")


@pytest.mark.parametrize(
    "url",
    [
        "http://accounts.spotify.com/api/token",
        "http://10.0.0.1/api/token",
        "http://0.0.0.0:8000/api/token",
        "http://localhost.example.org/api/token",
        "http://127.0.0.1.example.org/api/token",
        "ftp://127.0.0.1/api/token",
        "https:///api/token",
        "accounts.spotify.com/api/token",
        "",
        "http://[::2]/x",
    ],
)
def test_other_urls_are_refused(url):
    with pytest.raises(InsecureURLError, match="SEGUE_SPOTIFY_TOKEN_URL"):
        check_credential_url(url, "SEGUE_SPOTIFY_TOKEN_URL")


def test_loopback_hosts():
    assert is_loopback_host("127.0.0.1") and is_loopback_host("::1")
    assert not is_loopback_host("128.0.0.1") and not is_loopback_host(None)


@pytest.mark.parametrize(
    "text",
    [
        "Authorization: Bearer QWxhZGRpbjpvcGVuIHNlc2FtZQ",
        '{"Authorization": "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="}',
        "bearer abc123def456",
        "GET /v1/x?api_key=abc123def456&ids=1",
        "GET /v1/x?key=abc123def456",
        "https://example.org/cb?token=abc123def456&state=1",
        '{"access_token": "abc123def456", "token_type": "Bearer"}',
        "refresh_token=abc123def456",
        "client_secret: abc123def456",
        "client-id=abc123def456",
        "password=abc123def456",
        "https://bob:abc123def456@example.org/",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhYmMxMjNkZWY0NTYifQ.abc123def456",
    ],
)
def test_redact_patterns(text):
    assert "abc123def456" not in redact(text) and "QWxhZGRpbjpvcGVuIHNlc2FtZQ" not in redact(text)
    assert MASK in redact(text)


@pytest.mark.parametrize(
    "text",
    [
        "spotify GET /tracks?ids=: HTTP 500: Server error",
        "rate limited: asked to wait 3600 s, more than the 60 s cap (SEGUE_MAX_RETRY_AFTER)",
        "write a Spotify.yaml with 'Client_id: …' and 'client_secret: …'",
        "the token expired; the key: name is missing; basic auth failed",
        "nope[/].json: no such file",
    ],
)
def test_redact_leaves_ordinary_text_alone(text):
    assert redact(text) == text


def test_registered_values_are_redacted_anywhere():
    register_secret("s3cr3t-value-for-test-only", "short")
    assert redact("oops s3cr3t-value-for-test-only!") == f"oops {MASK}!"
    assert redact("short") == "short"  # too short to register: ordinary words stay


def test_a_next_link_to_another_host_is_not_followed_with_the_token(world):
    from segue.catalog.fetch import fetch_playlist_tracks
    from segue.providers.base import ProviderError

    pid = next(iter(world.playlists))
    with FakeSpotify(world) as fake:
        fake.link_base = f"http://localhost:{fake.port}"  # another host name, same server
        provider = provider_for(fake)
        try:
            with pytest.raises(ProviderError, match="links to another host"):
                fetch_playlist_tracks(pid, provider=provider)
        finally:
            provider.close()
        pages = fake.requests_to("playlist-items")
    assert len(pages) == 1  # the first page only: the token never went to the other host
