"""A clean stop (a Retry-After past the cap, also on a token refresh) keeps the lookups already
answered in the batch in flight: counted on the fake server across two runs, no id is asked
twice and every id is asked."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from segue.catalog import Catalog
from segue.catalog.fetch import ERROR_LOG_NAME, run_fetch
from segue.catalog.ingest import ingest_paths
from segue.providers.audio_service import AudioFeatureService
from tests.fake_spotify import (
    FakeSpotify,
    World,
    fast_policy,
    make_world,
    provider_for,
    write_mpd_slice,
)

N_TRACKS = 40
N_ARTISTS = 30
ANSWERED = 7  # single lookups answered in the first batch before the long Retry-After


@pytest.fixture
def world() -> World:
    return make_world(N_TRACKS, seed=17, n_artists=N_ARTISTS)


@pytest.fixture
def catalog_path(home: Path, world: World, tmp_path: Path) -> Path:
    path = home / "catalog.duckdb"
    with Catalog.open(path) as catalog:
        ingest_paths(catalog, [str(write_mpd_slice(world, tmp_path / "s.json"))], progress=False)
    return path


def _run(fake: FakeSpotify, path: Path, kind: str):
    providers = [provider_for(fake)]
    if kind == "audio_features":
        providers.append(AudioFeatureService(fake.audio_base, policy=fast_policy()))
    try:
        return run_fetch(
            str(path),  # as the CLI does: the catalog opened for each write
            providers,
            kinds=(kind,),  # type: ignore[arg-type]
            progress=False,
            console=Console(file=io.StringIO()),
            log_path=path.parent / "logs" / ERROR_LOG_NAME,
        )
    finally:
        for p in providers:
            p.close()


def _answered(fake: FakeSpotify, endpoint: str, since: int = 0) -> list[str]:
    return [i for r in fake.requests_to(endpoint)[since:] if r.status == 200 for i in r.ids]


@pytest.mark.parametrize(
    ("endpoint", "kind", "total"),
    [
        ("track", "track_facts", N_TRACKS),
        ("artist", "artist_facts", N_ARTISTS),
        ("recco-single", "audio_features", N_TRACKS),
    ],
)
def test_long_retry_after_keeps_the_answered_part_of_the_batch(
    world, catalog_path, endpoint, kind, total
):
    with FakeSpotify(world) as fake:
        fake.dev_mode_2026()  # single lookups: a batch is many requests
        fake.fail("recco-batch", status=404)  # the audio service's single form too
        fake.fail(endpoint, status=429, retry_after=3600, skip=ANSWERED, times=1)
        first = _run(fake, catalog_path, kind)
        assert first.stopped and "3600" in first.stopped[0] and not first.complete
        answered_first = _answered(fake, endpoint)
        assert len(answered_first) == ANSWERED
        assert first.kept == ANSWERED
        before = len(fake.requests_to(endpoint))
        second = _run(fake, catalog_path, kind)
        assert second.complete, second.summary_lines()
        asked_second = [i for r in fake.requests_to(endpoint)[before:] for i in r.ids]
    # the second run asked every id the first did not answer, once, and none it did
    assert not set(asked_second) & set(answered_first)
    assert len(asked_second) == len(set(asked_second)) == total - ANSWERED


def test_rate_limited_token_refresh_stops_cleanly_and_keeps_the_answers(world, catalog_path):
    with FakeSpotify(world) as fake:
        fake.dev_mode_2026()
        fake.fail("token", status=429, retry_after=3600, skip=1)  # only the first token
        fake.fail("track", status=401, skip=ANSWERED)  # then the token has expired
        first = _run(fake, catalog_path, "track_facts")
        assert first.stopped and "3600" in first.stopped[0]
        assert first.failed_batches == 0  # a stop, not ids failing one after another
        answered_first = _answered(fake, "track")
        assert len(answered_first) == ANSWERED == first.kept
        assert len(fake.requests_to("token")) == 2  # the refresh was asked once, not per id
        fake.clear_failures()
        fake.dev_mode_2026()
        before = len(fake.requests_to("track"))
        second = _run(fake, catalog_path, "track_facts")
        assert second.complete
        asked_second = [i for r in fake.requests_to("track")[before:] for i in r.ids]
    assert not set(asked_second) & set(answered_first)
    assert len(asked_second) == len(set(asked_second)) == N_TRACKS - ANSWERED
