"""``segue fetch``, self-growing and ``segue import-playlist`` against a fake Spotify on 127.0.0.1:
nothing lost, nothing asked twice, no duplicate rows, waits capped, failures logged."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from segue.catalog import Catalog
from segue.catalog.fetch import ERROR_LOG_NAME, grow_catalog, import_playlist, run_fetch
from segue.catalog.ingest import ingest_paths
from segue.providers.audio_service import AudioFeatureService
from tests.fake_spotify import (
    CAP,
    CLIENT_SECRET,
    FakeSpotify,
    World,
    env_for,
    fast_policy,
    make_world,
    provider_for,
    write_mpd_slice,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def world() -> World:
    return make_world(160, seed=11, n_artists=40)


@pytest.fixture
def fake(world: World) -> Iterator[FakeSpotify]:
    with FakeSpotify(world) as server:
        yield server


@pytest.fixture
def catalog_path(home: Path, world: World) -> Path:
    """A catalog of the world's first 150 tracks, as an MPD slice gives them (no facts)."""
    path = home / "catalog.duckdb"
    slice_file = write_mpd_slice(
        world, home.parent / "slice.json", track_ids=world.track_ids()[:150]
    )
    with Catalog.open(path) as catalog:
        ingest_paths(catalog, [str(slice_file)], progress=False)
    return path


def _run(fake: FakeSpotify, path: Path, *, audio: bool = True, **kwargs):
    providers = [provider_for(fake)]
    if audio:
        providers.append(AudioFeatureService(fake.audio_base, policy=fast_policy()))
    console = Console(file=io.StringIO(), width=200)
    kwargs.setdefault("log_path", path.parent / "logs" / ERROR_LOG_NAME)
    with Catalog.open(path) as catalog:  # the CLI passes the path; an open catalog is quicker
        report = run_fetch(catalog, providers, progress=False, console=console, **kwargs)
    for p in providers:
        p.close()
    return report, console.file.getvalue()  # type: ignore[attr-defined]


def _scalar(path: Path, sql: str):
    with Catalog.open(path) as catalog:
        return catalog.scalar(sql)


def _counts(path: Path) -> dict[str, int]:
    with Catalog.open(path) as catalog:
        q = catalog.scalar
        return {
            "tracks": q("SELECT count(*) FROM tracks"),
            "distinct_tracks": q("SELECT count(DISTINCT track_id) FROM tracks"),
            "with_date": q("SELECT count(*) FROM tracks WHERE release_date IS NOT NULL"),
            "features": q("SELECT count(*) FROM audio_features"),
            "distinct_features": q("SELECT count(DISTINCT track_id) FROM audio_features"),
            "artists": q("SELECT count(*) FROM artists"),
            "distinct_artist_ids": q("SELECT count(DISTINCT artist_id) FROM artists"),
            "artists_with_genres": q("SELECT count(*) FROM artists WHERE genres IS NOT NULL"),
            "attempts": q("SELECT count(*) FROM fetch_attempts"),
        }


def test_fetch_fills_every_missing_fact_and_a_second_run_asks_nothing(fake, world, catalog_path):
    report, _ = _run(fake, catalog_path)
    assert report.complete
    counts = _counts(catalog_path)
    assert counts["tracks"] == counts["distinct_tracks"] == 150
    assert counts["with_date"] == 150
    assert counts["features"] == counts["distinct_features"] == 150
    assert counts["artists"] == counts["distinct_artist_ids"] == counts["artists_with_genres"] == 40
    with Catalog.open(catalog_path) as catalog:
        rows = catalog.track_rows(world.track_ids()[:1])
    raw = world.tracks[world.track_ids()[0]]
    assert rows[0]["popularity"] == raw["popularity"]
    assert rows[0]["year"] == int(raw["album"]["release_date"][:4])
    # batches: 150 tracks / 50, 40 artists / 50, features from Spotify / 100
    assert len(fake.requests_to("tracks")) == 3 and len(fake.requests_to("artists")) == 1
    asked = fake.asked_ids("tracks", "track")
    assert len(asked) == len(set(asked)) == 150
    before = len(fake.requests)
    again, _ = _run(fake, catalog_path)
    assert len(fake.requests) == before  # nothing missing: nothing asked, not even a token
    assert again.complete and _counts(catalog_path) == counts


def test_dev_mode_app_uses_single_lookups_and_says_so_once(world, catalog_path):
    with FakeSpotify(world) as fake:
        fake.dev_mode_2026()
        report, err = _run(fake, catalog_path, limit=25)
        asked = fake.asked_ids("track")
    assert len(asked) == len(set(asked)) == 25
    assert len(fake.requests_to("tracks")) == 1 and len(fake.requests_to("audio-features")) == 1
    gone_lines = [line for line in err.splitlines() if "403" in line]
    assert len(gone_lines) == 3  # tracks batch, artists batch, audio features: each once
    assert sum("GET /tracks?ids=" in line for line in gone_lines) == 1
    assert sum("popularity" in line for line in err.splitlines()) == 2  # track and artist
    with Catalog.open(catalog_path) as catalog:
        log = catalog.fetch_log_rows(None)
    skipped = [r for r in log if r["status"] == "skipped"]
    assert len([r for r in skipped if "GET /tracks?ids=" in r["reason"]]) == 1
    assert report.tally("spotify", "track_facts").found == 25
    assert report.tally("spotify", "audio_features").skipped == 25
    assert report.tally("audio-service", "audio_features").found == 25
    assert _scalar(catalog_path, "SELECT count(*) FROM tracks WHERE popularity IS NOT NULL") == 0


def test_rate_limit_past_the_cap_stops_cleanly_and_the_next_run_resumes(fake, world, catalog_path):
    fake.fail("tracks", status=429, retry_after=3600, skip=1)
    started = time.monotonic()
    report, _ = _run(fake, catalog_path, audio=False)
    assert time.monotonic() - started < 10  # nowhere near the hour asked for
    assert not report.complete and report.stopped and "3600" in report.stopped[0]
    assert report.waited == 0.0
    first_run = set(fake.asked_ids("tracks"))
    assert len(first_run) == 50
    assert _counts(catalog_path)["with_date"] == 50  # what was fetched is kept
    assert fake.requests_to("artists") == []  # the provider stopped: no later kinds either
    fake.clear_failures()
    resumed, _ = _run(fake, catalog_path, audio=False)
    assert resumed.complete
    second_run = fake.asked_ids("tracks")[50:]
    assert len(second_run) == 100 and not first_run & set(second_run)
    assert _counts(catalog_path)["with_date"] == 150


def test_retry_after_within_the_cap_is_waited_and_never_longer(fake, world, catalog_path):
    fake.fail("tracks", status=429, retry_after="0.4", times=1, skip=1)
    report, _ = _run(fake, catalog_path, audio=False, limit=100)
    assert report.complete
    assert 0.4 <= report.waited <= CAP
    assert max(fake.gaps("tracks")) >= 0.4  # the server saw the client wait


def test_failed_batches_are_logged_to_file_and_catalog_and_retried_next_run(
    fake, world, catalog_path
):
    fake.fail("tracks", mode="malformed", times=1, skip=1)
    report, _ = _run(fake, catalog_path, audio=False)
    assert report.failed_batches == 1 and not report.complete
    log_file = catalog_path.parent / "logs" / ERROR_LOG_NAME
    lines = log_file.read_text().splitlines()
    assert len(lines) == 1
    stamp, run_id, provider, kind, reason, ids = lines[0].split("\t")
    assert stamp.endswith("Z") and run_id == report.run_id
    assert (provider, kind) == ("spotify", "track_facts")
    assert "not valid JSON" in reason and len(ids.split(",")) == 50
    with Catalog.open(catalog_path) as catalog:
        errors = [r for r in catalog.fetch_log_rows(None) if r["status"] == "error"]
    assert len(errors) == 1 and errors[0]["ids"] == ids.split(",")
    assert any("1 failed batch(es), 50 id(s)" in line for line in report.summary_lines())
    # the failed ids were not recorded as answered: the next run asks them, and only them
    again, _ = _run(fake, catalog_path, audio=False)
    assert again.complete
    assert sorted(fake.asked_ids("tracks")[150:]) == sorted(ids.split(","))


def test_not_found_ids_are_recorded_and_never_asked_again(fake, world, catalog_path):
    gone = world.track_ids()[:3]
    for tid in gone:
        del world.tracks[tid]
    report, _ = _run(fake, catalog_path, audio=False)
    assert report.tally("spotify", "track_facts").not_found == 3
    _run(fake, catalog_path, audio=False)
    asked = fake.asked_ids("tracks")
    assert len(asked) == 150 and all(asked.count(t) == 1 for t in gone)
    with Catalog.open(catalog_path) as catalog:
        assert catalog.tracks_missing("track_facts", provider="spotify") == []


def test_limit_caps_what_is_asked(fake, catalog_path):
    report, _ = _run(fake, catalog_path, audio=False, limit=7)
    assert report.tally("spotify", "track_facts").asked == 7
    assert len(fake.asked_ids("tracks")) == 7
    with pytest.raises(ValueError, match="limit"):
        _run(fake, catalog_path, limit=-1)


# -- self-growing and playlists -----------------------------------------------------------------


def test_grow_catalog_adds_unknown_tracks_by_single_lookups(fake, world, catalog_path):
    unknown = world.track_ids()[150:155]
    known = world.track_ids()[:2]
    with Catalog.open(catalog_path) as catalog:
        report = grow_catalog(
            catalog, [*known, *unknown, "x" * 5], provider=provider_for(fake), audio=None
        )
        rows = catalog.track_rows(unknown)
    assert set(report.added) == set(known) | set(unknown)
    assert report.unknown == ["x" * 5]
    assert "added 5 track(s)" in report.message
    assert sorted(fake.asked_ids("track")) == sorted(unknown)  # known ones are not asked
    assert fake.requests_to("tracks") == []
    assert [r["name"] for r in rows] == [world.tracks[t]["name"] for t in unknown]
    assert all(r["year"] for r in rows)
    # their artists' facts and their audio features came along
    assert len(fake.requests_to("artists")) == 1 and len(fake.requests_to("audio-features")) == 1
    artists = {world.tracks[t]["artists"][0]["id"] for t in unknown}
    with Catalog.open(catalog_path) as catalog:
        assert catalog.scalar("SELECT count(*) FROM audio_features") == 5
        for aid in artists:
            row = catalog.artist_by_ref(aid)
            assert row is not None and row["genres"] is not None


def test_grow_catalog_without_credentials_is_not_fatal(world, catalog_path, monkeypatch, tmp_path):
    for name in ("SPOTIPY_CLIENT_ID", "SPOTIPY_CLIENT_SECRET", "SEGUE_SPOTIFY_YAML"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    unknown = world.track_ids()[150:152]
    with Catalog.open(catalog_path) as catalog:
        report = grow_catalog(catalog, unknown)
    assert report.added == [] and report.unknown == unknown
    assert "not added" in report.message and "SPOTIPY_CLIENT_ID" in report.message


def test_grow_catalog_network_down_keeps_ids_unknown(fake, world, catalog_path):
    fake.fail("track", status=503)
    unknown = world.track_ids()[150:153]
    with Catalog.open(catalog_path) as catalog:
        report = grow_catalog(catalog, unknown, provider=provider_for(fake))
    assert report.added == [] and report.unknown == unknown
    assert "could not be fetched" in report.message and "503" in report.message


def test_import_playlist_adds_its_tracks(fake, world, catalog_path):
    pid, playlist = next(iter(world.playlists.items()))
    with Catalog.open(catalog_path) as catalog:
        report = import_playlist(catalog, f"spotify:playlist:{pid}", provider=provider_for(fake))
        n_tracks = catalog.scalar("SELECT count(*) FROM tracks")
    assert report.name == playlist["name"] and report.track_ids == playlist["track_ids"]
    new = {t for t in playlist["track_ids"] if t not in set(world.track_ids()[:150])}
    assert report.added == len(new) and n_tracks == 150 + len(new)


# -- the command line ---------------------------------------------------------------------------


def _cli() -> typer.Typer:
    from segue.cli import _registry

    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    _registry.register_all(app)
    return app


def _set_env(monkeypatch, env: dict[str, str]) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)


def test_cli_fetch_without_credentials_says_what_is_needed(catalog_path, monkeypatch, tmp_path):
    for name in ("SPOTIPY_CLIENT_ID", "SPOTIPY_CLIENT_SECRET", "SEGUE_SPOTIFY_YAML",
                 "SEGUE_AUDIO_FEATURES_BASE"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    for args in (["fetch"], ["fetch", "--provider", "spotify"], ["import-playlist", "1" * 22]):
        result = CliRunner().invoke(_cli(), args)
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith(
            "error: Spotify credentials are needed: set SPOTIPY_CLIENT_ID"
        )
        assert "Traceback" not in result.output
    result = CliRunner().invoke(_cli(), ["fetch", "--provider", "audio-service"])
    assert result.exit_code == 2 and "SEGUE_AUDIO_FEATURES_BASE" in result.stderr


def test_cli_fetch_runs_and_reports(fake, catalog_path, monkeypatch):
    _set_env(monkeypatch, env_for(fake))
    result = CliRunner().invoke(_cli(), ["fetch", "-q"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "spotify track_facts: 150 of 150 asked, 150 found" in lines
    assert "no failed batches" in lines
    assert CLIENT_SECRET not in result.output
    assert _counts(catalog_path)["features"] == 150


def test_cli_fetch_exit_code_1_when_a_source_stopped(fake, catalog_path, monkeypatch):
    _set_env(monkeypatch, env_for(fake))
    fake.fail("tracks", status=429, retry_after=999)
    result = CliRunner().invoke(_cli(), ["fetch", "-q", "--provider", "spotify"])
    assert result.exit_code == 1
    assert any(line.startswith("stopped early: spotify") for line in result.stdout.splitlines())
    assert "run `segue fetch` again to resume" in result.stdout


def test_cli_import_playlist(fake, world, catalog_path, monkeypatch):
    _set_env(monkeypatch, env_for(fake))
    pid, playlist = next(iter(world.playlists.items()))
    result = CliRunner().invoke(
        _cli(), ["import-playlist", f"https://open.spotify.com/playlist/{pid}"]
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    distinct = list(dict.fromkeys(playlist["track_ids"]))
    assert lines[0].startswith(
        f"{playlist['name']}: {len(playlist['track_ids'])} track(s), {len(distinct)} distinct"
    )
    assert lines[1].startswith(f"spotify:track:{distinct[0]}  Artist ")
    assert len(lines) == 1 + len(distinct)
    fake.fail("playlist-items", status=403)
    fake.fail("playlist-tracks", status=403)
    result = CliRunner().invoke(_cli(), ["import-playlist", pid])
    assert result.exit_code == 1
    assert "owns or collaborates on" in result.stderr
    result = CliRunner().invoke(_cli(), ["import-playlist", "not a playlist"])
    assert result.exit_code == 2 and "not a Spotify reference" in result.stderr


# -- kill -9 mid-run ----------------------------------------------------------------------------


@pytest.mark.slow
def test_kill_9_mid_run_loses_nothing_and_asks_nothing_twice(home, tmp_path):
    world = make_world(500, seed=5, n_artists=60)
    path = home / "catalog.duckdb"
    slice_file = write_mpd_slice(world, tmp_path / "slice.json")
    with Catalog.open(path) as catalog:
        ingest_paths(catalog, [str(slice_file)], progress=False)
    with FakeSpotify(world) as fake:
        fake.fail("tracks", mode="slow", delay=0.25)  # each batch takes a while
        env = {**os.environ, **env_for(fake, audio=False), "SEGUE_HOME": str(home)}
        cmd = [sys.executable, "-m", "segue", "fetch", "-q", "--provider", "spotify"]
        err_file = tmp_path / "first-run.err"
        with err_file.open("wb") as err:
            proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=err)
            deadline = time.monotonic() + 30
            while len([r for r in fake.requests_to("tracks") if r.status == 200]) < 4:
                assert proc.poll() is None, err_file.read_text()
                assert time.monotonic() < deadline, "the fetch made no progress"
                time.sleep(0.02)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        assert proc.returncode == -signal.SIGKILL
        answered_first = [r.ids for r in fake.requests_to("tracks") if r.status == 200]
        with Catalog.open(path) as catalog:
            written = 500 - len(catalog.tracks_missing("track_facts"))
        assert written >= 150  # at least the batches before the one in flight
        n_first = len(fake.requests_to("tracks"))
        fake.clear_failures()
        done = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        asked_again = [i for r in fake.requests_to("tracks")[n_first:] for i in r.ids]
    first_ids = {i for ids in answered_first for i in ids}
    overlap = first_ids & set(asked_again)
    # at most the batch answered but not yet written when the process died is asked again
    assert len(overlap) <= 50 and (not overlap or overlap in [set(b) for b in answered_first])
    counts = _counts(path)
    assert counts["tracks"] == counts["distinct_tracks"] == 500
    assert counts["with_date"] == 500
    assert counts["artists"] == counts["distinct_artist_ids"] == 60
    with Catalog.open(path) as catalog:
        dup = catalog.scalar(
            "SELECT count(*) FROM (SELECT track_id FROM playlist_tracks GROUP BY pid, pos, track_id HAVING count(*) > 1)"
        )
    assert dup == 0
