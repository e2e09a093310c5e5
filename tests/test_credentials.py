"""Credentials: where they are looked up, and that the secret never shows anywhere."""

from __future__ import annotations

import logging
import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest

from segue.providers.base import ProviderError
from segue.providers.credentials import (
    Credentials,
    CredentialsError,
    load_credentials,
    require_credentials,
)
from tests.fake_spotify import (
    BASIC_HEADER,
    CLIENT_ID,
    CLIENT_SECRET,
    SHORT_TIMEOUT,
    FakeSpotify,
    fast_policy,
    make_world,
    provider_for,
)

SECRET = "yamlSECRET-0a1b2c3d4e5f-do-not-print"


@pytest.fixture
def clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """No credentials anywhere: empty env, cwd, segue home and user home under tmp_path."""
    for name in ("SPOTIPY_CLIENT_ID", "SPOTIPY_CLIENT_SECRET", "SEGUE_SPOTIFY_YAML"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "cwd").mkdir()
    (tmp_path / "user").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.setenv("SEGUE_HOME", str(tmp_path / "segue"))
    yield tmp_path


def _yaml(
    path: Path, client_id: str = "yamlid", secret: str = SECRET, id_key: str = "Client_id"
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{id_key}: {client_id}\nclient_secret: {secret}\n")
    return path


def test_nothing_found_is_none_and_require_says_what_is_needed(clean):
    assert load_credentials() is None
    with pytest.raises(CredentialsError) as info:
        require_credentials()
    message = str(info.value)
    for needed in ("SPOTIPY_CLIENT_ID", "SPOTIPY_CLIENT_SECRET", "Spotify.yaml", "Client_id"):
        assert needed in message
    assert str(clean / "cwd" / "Spotify.yaml") in message


def test_environment_variables(clean, monkeypatch):
    monkeypatch.setenv("SPOTIPY_CLIENT_ID", "envid")
    monkeypatch.setenv("SPOTIPY_CLIENT_SECRET", "envsecret")
    creds = load_credentials()
    assert creds == Credentials("envid", "envsecret", "environment")
    monkeypatch.setenv("SPOTIPY_CLIENT_SECRET", "")
    assert load_credentials() is None  # both are needed


@pytest.mark.parametrize("where", ["cwd", "segue", "user"])
def test_yaml_in_the_searched_folders(clean, where):
    path = _yaml(clean / where / "Spotify.yaml")
    creds = load_credentials()
    assert creds is not None
    assert (creds.client_id, creds.client_secret, creds.source) == ("yamlid", SECRET, str(path))


def test_current_folder_comes_first_and_keys_ignore_case(clean):
    _yaml(clean / "user" / "Spotify.yaml", client_id="userid")
    _yaml(clean / "cwd" / "Spotify.yaml", client_id="cwdid", id_key="CLIENT_ID")
    creds = load_credentials()
    assert creds is not None and creds.client_id == "cwdid"


def test_explicit_path_wins_over_the_environment(clean, monkeypatch):
    monkeypatch.setenv("SPOTIPY_CLIENT_ID", "envid")
    monkeypatch.setenv("SPOTIPY_CLIENT_SECRET", "envsecret")
    path = _yaml(clean / "elsewhere" / "mine.yaml", client_id="fileid")
    assert require_credentials(path).client_id == "fileid"
    monkeypatch.setenv("SEGUE_SPOTIFY_YAML", str(path))
    assert require_credentials().client_id == "fileid"
    with pytest.raises(CredentialsError, match="does not exist"):
        load_credentials(clean / "nope.yaml")


@pytest.mark.parametrize(
    "text, expected",
    [
        (f"Client_id: abc\nclient_secret: [{SECRET}\n", "not valid YAML at line"),
        (f"Client_id: abc\n  client_secret: {SECRET}: x\n", "not valid YAML"),
        (f"- {SECRET}\n", "should be a mapping"),
        (f"client_secret: {SECRET}\n", "lacks Client_id"),
        ("Client_id: abc\n", "lacks client_secret"),
    ],
)
def test_broken_files_name_the_file_never_the_secret(clean, text, expected):
    path = clean / "cwd" / "Spotify.yaml"
    path.write_text(text)
    with pytest.raises(CredentialsError) as info:
        load_credentials()
    assert expected in str(info.value) and str(path) in str(info.value)
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)


def test_repr_and_str_hide_the_secret():
    creds = Credentials(CLIENT_ID, CLIENT_SECRET, "environment")
    for text in (repr(creds), str(creds), f"{creds}", repr([creds])):
        assert CLIENT_SECRET not in text and CLIENT_ID not in text
    assert creds.client_secret == CLIENT_SECRET


def _leaks(text: str) -> list[str]:
    return [s for s in (CLIENT_SECRET, BASIC_HEADER) if s in text]


def test_no_credential_in_logs_errors_or_reprs_across_failures(caplog, capfd):
    """Drive every failure path with DEBUG logging on everywhere, then search every output."""
    caplog.set_level(logging.DEBUG)  # root, spotipy, urllib3 and requests all at DEBUG
    world = make_world(20, seed=1)
    texts: list[str] = []
    with FakeSpotify(world) as fake:
        ids = world.track_ids()[:5]
        provider = provider_for(fake, policy=fast_policy(timeout=SHORT_TIMEOUT))
        texts.append(repr(provider))
        texts.append(repr(provider._auth))
        texts.append(repr(vars(provider)))
        fake.fail("tracks", status=500, times=3)
        fake.fail("tracks", mode="drop", times=3)
        fake.fail("tracks", mode="slow", delay=0.6, times=3)
        fake.fail("tracks", mode="malformed", times=1)
        fake.fail("tracks", status=401, times=2)
        fake.fail("tracks", status=429, retry_after=999, times=1)
        for _ in range(6):
            result = provider.fetch("track_facts", ids)
            texts.extend(reason for _, reason in result.errors)
            if result.stop is not None:
                texts.extend([str(result.stop), repr(result.stop)])
        fake.fail("token", status=400)
        fake.expire_tokens()
        result = provider.fetch("track_facts", ids)
        texts.extend(reason for _, reason in result.errors)
        assert result.stop is not None
        texts.append(str(result.stop))
        fake.clear_failures()
        bad = provider_for(fake, secret="another-secret-" + CLIENT_SECRET[::-1])
        texts.append(str(bad.fetch("track_facts", ids).stop))
        fake.fail("token", mode="drop")
        result = provider_for(fake).fetch("track_facts", ids)
        texts.extend(reason for _, reason in result.errors)
        gone = provider_for(fake)
    # the server is gone now: connection refused
    result = gone.fetch("track_facts", ids)
    texts.extend(reason for _, reason in result.errors)
    with pytest.raises(ProviderError) as info:
        gone.playlist_tracks("1" * 22)
    texts.extend([str(info.value), repr(info.value), str(pickle.dumps(info.value.args))])
    captured = capfd.readouterr()
    texts.extend([captured.out, captured.err, caplog.text])
    texts.extend(str(r.args) for r in caplog.records)
    assert any("HTTP 500" in t for t in texts) and any("not valid JSON" in t for t in texts)
    assert any("refused the app's client credentials" in t for t in texts)
    leaks = [t for t in texts if _leaks(t)]
    assert leaks == []
