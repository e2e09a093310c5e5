"""The Spotify provider, the audio-feature service and the Spotify model against a real HTTP
server on 127.0.0.1 (tests/fake_spotify.py): shapes, fallbacks, retries, caps."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from segue.core.home import Home
from segue.providers.audio_service import AudioFeatureService
from segue.providers.base import (
    CredentialsRejected,
    ProviderError,
    RateLimitStop,
    Retrier,
    RetryPolicy,
    parse_retry_after,
)
from segue.providers.spotify import (
    PLAYLIST_FORBIDDEN,
    RECOMMENDATIONS_GONE,
    SINGLES_PER_BATCH,
)
from tests.fake_spotify import (
    CAP,
    SHORT_TIMEOUT,
    FakeSpotify,
    World,
    fast_policy,
    make_world,
    provider_for,
    without_credentials,
)


@pytest.fixture
def world() -> World:
    return make_world(130, seed=7, playlist_length=120)


@pytest.fixture
def fake(world: World) -> Iterator[FakeSpotify]:
    with FakeSpotify(world) as server:
        yield server


def _ids(world: World, n: int, start: int = 0) -> list[str]:
    return world.track_ids()[start : start + n]


# -- shapes ------------------------------------------------------------------------------------


def test_batch_track_facts_are_typed_records_matching_the_server(fake, world):
    provider = provider_for(fake)
    ids = _ids(world, 50)
    result = provider.fetch("track_facts", ids)
    assert result.not_found == [] and result.errors == [] and result.stop is None
    assert [f.track_id for f in result.found] == ids
    first = result.found[0]
    raw = world.tracks[ids[0]]
    assert first.name == raw["name"]
    assert first.album_id == raw["album"]["id"] and first.album_name == raw["album"]["name"]
    assert first.release_date == raw["album"]["release_date"]
    assert first.popularity == raw["popularity"] and first.duration_ms == raw["duration_ms"]
    assert [(a.name, a.artist_id) for a in first.artists] == [
        (a["name"], a["id"]) for a in raw["artists"]
    ]
    assert first.source == "spotify"
    # one token, one batch request, Basic auth accepted
    assert len(fake.requests_to("token")) == 1
    assert len(fake.requests_to("tracks")) == 1


def test_artist_facts_and_audio_features_batches(fake, world):
    provider = provider_for(fake)
    artist_ids = list(world.artists)[:5]
    artists = provider.fetch("artist_facts", artist_ids)
    assert [a.artist_id for a in artists.found] == artist_ids
    assert artists.found[0].genres == world.artists[artist_ids[0]]["genres"]
    feats = provider.fetch("audio_features", _ids(world, 100))
    assert len(feats.found) == 100
    raw = world.audio_features[feats.found[0].track_id]
    assert feats.found[0].values["tempo"] == pytest.approx(raw["tempo"])
    assert set(feats.found[0].values) <= {
        "danceability", "energy", "key", "loudness", "mode", "speechiness", "acousticness",
        "instrumentalness", "liveness", "valence", "tempo", "time_signature",
    }  # fmt: skip


def test_unknown_ids_are_not_found_in_batches_and_single_lookups(fake, world):
    provider = provider_for(fake)
    unknown = "0" * 22
    result = provider.fetch("track_facts", [*_ids(world, 3), unknown])
    assert result.not_found == [unknown] and len(result.found) == 3
    single = provider.track_facts_single([unknown, _ids(world, 1)[0]])
    assert single.not_found == [unknown] and len(single.found) == 1
    assert fake.requests_to("track")[0].status == 404


def test_malformed_id_is_a_local_value_error_and_sends_nothing(fake):
    provider = provider_for(fake)
    with pytest.raises(ValueError, match="22 base62"):
        provider.fetch("track_facts", ["not-an-id"])
    assert fake.requests == []


# -- 403: endpoint gone -----------------------------------------------------------------------


def test_403_on_batch_falls_back_to_single_lookups_and_says_so_once(fake, world):
    fake.fail("tracks", status=403)
    notices: list[str] = []
    provider = provider_for(fake, notify=notices.append)
    first = provider.fetch("track_facts", _ids(world, 50))
    assert provider.batch_size("track_facts") == SINGLES_PER_BATCH
    second = provider.fetch("track_facts", _ids(world, 10, start=50))
    assert len(first.found) == 50 and len(second.found) == 10
    # the batch endpoint was asked once in the whole run, then never again
    assert len(fake.requests_to("tracks")) == 1
    assert len(fake.requests_to("track")) == 60
    gone = [n for n in notices if "403" in n]
    assert len(gone) == 1 and "GET /tracks?ids=" in gone[0]


def test_403_on_batch_and_single_skips_the_field_without_looping(fake, world):
    fake.fail("artists", status=403)
    fake.fail("artist", status=403)
    notices: list[str] = []
    provider = provider_for(fake, notify=notices.append)
    result = provider.fetch("artist_facts", list(world.artists)[:5])
    assert result.found == [] and result.skipped == list(world.artists)[:5]
    assert not provider.can_answer("artist_facts")
    again = provider.fetch("artist_facts", list(world.artists)[5:8])
    assert again.skipped == list(world.artists)[5:8]
    assert len(fake.requests_to("artists", "artist")) == 2  # one of each, never more
    assert len(notices) == 2


def test_audio_features_403_is_skipped_not_retried(fake, world):
    fake.fail("audio-features", status=403)
    provider = provider_for(fake)
    result = provider.fetch("audio_features", _ids(world, 20))
    assert result.skipped == _ids(world, 20) and not provider.can_answer("audio_features")
    assert len(fake.requests_to("audio-features", "audio-feature")) == 1


def test_removed_fields_are_reported_once(world):
    with FakeSpotify(world, remove_fields=True) as fake:
        notices: list[str] = []
        provider = provider_for(fake, notify=notices.append)
        result = provider.fetch("track_facts", _ids(world, 5))
        provider.fetch("track_facts", _ids(world, 5, start=5))
    assert all(f.popularity is None for f in result.found)
    assert all(f.release_date for f in result.found)
    assert len([n for n in notices if "popularity" in n]) == 1


# -- 429, 5xx, timeouts, dropped connections, 401 ------------------------------------------------


def test_retry_after_within_the_cap_is_honoured(fake, world):
    fake.fail("tracks", status=429, retry_after="0.3", times=1)
    provider = provider_for(fake)
    result = provider.fetch("track_facts", _ids(world, 5))
    assert len(result.found) == 5
    gaps = fake.gaps("tracks")
    assert len(gaps) == 1 and gaps[0] >= 0.3  # the server saw the client wait
    assert provider.retrier.longest_wait == pytest.approx(0.3) and provider.retrier.waited <= CAP


def test_retry_after_over_the_cap_stops_at_once(fake, world):
    fake.fail("tracks", status=429, retry_after=3600)
    provider = provider_for(fake)
    started = time.monotonic()
    result = provider.fetch("track_facts", _ids(world, 5))
    assert time.monotonic() - started < 10  # nowhere near the hour asked for
    assert isinstance(result.stop, RateLimitStop) and result.stop.retry_after == 3600
    assert "cap" in str(result.stop)
    assert result.found == [] and result.errors == []
    assert len(fake.requests_to("tracks")) == 1
    assert provider.retrier.waited == 0.0


def test_quota_exceeded_stops_at_once(fake, world):
    fake.fail("tracks", status=429, retry_after="0.1", reason="QUOTA_EXCEEDED")
    result = provider_for(fake).fetch("track_facts", _ids(world, 2))
    assert isinstance(result.stop, RateLimitStop) and "quota" in str(result.stop)


def test_server_errors_back_off_then_succeed(fake, world):
    fake.fail("tracks", status=503, times=2)
    waits: list[float] = []
    provider = provider_for(fake, sleep=waits.append)
    result = provider.fetch("track_facts", _ids(world, 5))
    assert len(result.found) == 5
    assert [r.status for r in fake.requests_to("tracks")] == [503, 503, 200]
    assert waits == [0.01, 0.02]  # exponential from the base, far below the cap
    assert provider.retrier.longest_wait <= fast_policy().backoff_cap


def test_persistent_server_errors_give_a_batch_error_after_bounded_tries(fake, world):
    fake.fail("tracks", status=500)
    provider = provider_for(fake)
    result = provider.fetch("track_facts", _ids(world, 5))
    assert result.found == [] and len(result.errors) == 1
    ids, reason = result.errors[0]
    assert ids == _ids(world, 5) and "HTTP 500" in reason
    assert len(fake.requests_to("tracks")) == fast_policy().attempts


@pytest.mark.parametrize("mode", ["slow", "drop"])
def test_timeouts_and_dropped_connections_are_retried(fake, world, mode):
    fake.fail("tracks", mode=mode, delay=1.0, times=1)
    provider = provider_for(fake, policy=fast_policy(timeout=SHORT_TIMEOUT))
    result = provider.fetch("track_facts", _ids(world, 5))
    assert len(result.found) == 5
    assert len(fake.requests_to("tracks")) == 2


def test_dropped_connections_everywhere_end_in_an_error_not_a_hang(fake, world):
    fake.fail("track", mode="drop")
    fake.fail("tracks", status=403)
    provider = provider_for(fake)
    started = time.monotonic()
    result = provider.fetch("track_facts", _ids(world, 20))
    assert time.monotonic() - started < 10
    # two single lookups in a row spend their retries; the rest of the batch is not asked
    assert len(fake.requests_to("track")) == 2 * fast_policy().attempts
    assert [ids for ids, _ in result.errors] == [_ids(world, 1), _ids(world, 19, start=1)]
    assert result.errors[0][1].startswith("spotify GET /tracks/{id}: connection")


def test_one_failing_id_in_single_lookups_does_not_fail_the_others(fake, world):
    fake.fail("tracks", status=403)
    bad = _ids(world, 1, start=3)
    fake.fail("track", status=500, ids=bad)
    result = provider_for(fake).fetch("track_facts", _ids(world, 10))
    assert [ids for ids, _ in result.errors] == [bad]
    assert len(result.found) == 9


def test_expired_token_is_refreshed_once(fake, world):
    provider = provider_for(fake)
    provider.fetch("track_facts", _ids(world, 2))
    fake.expire_tokens()
    result = provider.fetch("track_facts", _ids(world, 2, start=2))
    assert len(result.found) == 2
    assert fake.tokens_issued == 2
    assert [r.status for r in fake.requests_to("tracks")] == [200, 401, 200]


def test_401_that_persists_is_not_retried_forever(fake, world):
    fake.fail("tracks", status=401)
    provider = provider_for(fake)
    result = provider.fetch("track_facts", _ids(world, 2))
    assert len(result.errors) == 1 and "401" in result.errors[0][1]
    assert len(fake.requests_to("tracks")) == 2
    assert fake.tokens_issued == 2


def test_rejected_credentials_stop_the_provider(fake, world):
    provider = provider_for(fake, secret="wrong-secret")
    result = provider.fetch("track_facts", _ids(world, 2))
    assert isinstance(result.stop, CredentialsRejected)
    assert "client id and secret" in str(result.stop)
    assert len(fake.requests_to("token")) == 1
    assert fake.requests_to("tracks") == []


def test_malformed_json_is_an_error_for_that_batch_only(fake, world):
    fake.fail("tracks", mode="malformed", times=1)
    provider = provider_for(fake)
    bad = provider.fetch("track_facts", _ids(world, 5))
    good = provider.fetch("track_facts", _ids(world, 5, start=5))
    assert bad.found == [] and "not valid JSON" in bad.errors[0][1]
    assert len(good.found) == 5


def test_retrier_never_waits_longer_than_the_cap():
    waits: list[float] = []
    retrier = Retrier(RetryPolicy(max_retry_after=1.0, backoff_cap=0.5), "x", sleep=waits.append)
    answers = iter(
        [
            ProviderError("x", "GET /a", "slow down", status=429, retry_after=0.9),
            ProviderError("x", "GET /a", "down", status=503),
            ProviderError("x", "GET /a", "slow down", status=429, retry_after=None),
            ProviderError("x", "GET /a", "slow down", status=429, retry_after=5.0),
        ]
    )

    def call() -> None:
        raise next(answers)

    with pytest.raises(RateLimitStop):
        retrier.call(call)
    assert waits == [0.9, 0.5, 0.5]
    assert max(waits) <= 1.0


def test_retry_after_parsing():
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after(" 0.5 ") == 0.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    now = 1_700_000_000.0
    http_date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now + 30))
    assert parse_retry_after(http_date, now=now) == pytest.approx(30.0)


def test_policy_validates_and_reads_the_environment(monkeypatch):
    with pytest.raises(ValueError, match="attempts"):
        RetryPolicy(attempts=0)
    monkeypatch.setenv("SEGUE_MAX_RETRY_AFTER", "7")
    monkeypatch.setenv("SEGUE_BACKOFF_BASE", "0.25")
    policy = RetryPolicy.from_env()
    assert policy.max_retry_after == 7.0 and policy.backoff_base == 0.25
    monkeypatch.setenv("SEGUE_BACKOFF_BASE", "fast")
    with pytest.raises(ValueError, match="SEGUE_BACKOFF_BASE"):
        RetryPolicy.from_env()


# -- playlists ---------------------------------------------------------------------------------


def test_playlist_items_follow_next_in_order(fake, world):
    pid, playlist = next(iter(world.playlists.items()))
    name, tracks = provider_for(fake).playlist_tracks(
        f"https://open.spotify.com/playlist/{pid}?si=x"
    )
    assert name == playlist["name"]
    assert [t.track_id for t in tracks] == playlist["track_ids"]
    assert len(fake.requests_to("playlist-items")) == 3  # 120 items, pages of 50


@pytest.mark.parametrize("status", [403, 404])
def test_playlist_falls_back_to_the_tracks_path(fake, world, status):
    fake.fail("playlist-items", status=status)
    pid, playlist = next(iter(world.playlists.items()))
    _, tracks = provider_for(fake).playlist_tracks(f"spotify:playlist:{pid}")
    assert [t.track_id for t in tracks] == playlist["track_ids"]
    assert len(fake.requests_to("playlist-tracks")) == 3


def test_playlist_forbidden_on_both_paths_says_why(fake, world):
    fake.fail("playlist-items", status=403)
    fake.fail("playlist-tracks", status=403)
    pid = next(iter(world.playlists))
    with pytest.raises(ProviderError) as info:
        provider_for(fake).playlist_tracks(pid)
    assert info.value.status == 403
    assert PLAYLIST_FORBIDDEN in str(info.value) and "owns or collaborates" in str(info.value)


def test_unknown_playlist_is_a_404(fake):
    with pytest.raises(ProviderError) as info:
        provider_for(fake).playlist_tracks("1" * 22)
    assert info.value.status == 404


# -- the audio-feature service -----------------------------------------------------------------


def _service(fake: FakeSpotify, **kwargs) -> AudioFeatureService:
    kwargs.setdefault("policy", fast_policy())
    return AudioFeatureService(fake.audio_base, **kwargs)


def test_audio_service_multi_id_form_maps_items_by_href(fake, world):
    unknown = "0" * 22
    result = _service(fake).fetch("audio_features", [*_ids(world, 39), unknown])
    assert len(result.found) == 39 and result.not_found == [unknown]
    got = {r.track_id: r for r in result.found}
    tid = _ids(world, 1)[0]
    assert got[tid].values["energy"] == pytest.approx(world.audio_features[tid]["energy"])
    assert got[tid].source == "audio-service"
    assert len(fake.requests_to("recco-batch")) == 1


def test_audio_service_uses_the_single_form_when_the_multi_form_is_missing(fake, world):
    fake.fail("recco-batch", status=404)
    notices: list[str] = []
    service = _service(fake, notify=notices.append)
    result = service.fetch("audio_features", _ids(world, 5))
    assert len(result.found) == 5
    assert len(fake.requests_to("recco-single")) == 5 and len(notices) == 1
    assert service.batch_size("audio_features") == SINGLES_PER_BATCH


def test_audio_service_single_lookups_follow_the_one_by_one_rules(fake, world):
    """Once the multi form is gone, single lookups follow the rules every provider shares
    (FactsProvider.one_by_one): 404 is unknown, 405 marks the single form gone and skips
    the ids left."""
    ids = _ids(world, 6)
    fake.fail("recco-batch", status=405)
    fake.fail("recco-single", status=404, ids=[ids[0]])
    fake.fail("recco-single", status=405, ids=[ids[3]])
    notices: list[str] = []
    service = _service(fake, notify=notices.append)
    result = service.fetch("audio_features", ids)
    assert [r.track_id for r in result.found] == ids[1:3]
    assert result.not_found == [ids[0]] and result.skipped == ids[3:] and result.errors == []
    assert len(fake.requests_to("recco-single")) == 4
    assert not service.can_answer("audio_features") and len(notices) == 2
    assert "answered 405 to GET /track/{id}/audio-features too" in notices[1]


def test_audio_service_stops_asking_one_by_one_when_the_source_is_down(fake, world):
    ids = _ids(world, 5)
    fake.fail("recco-batch", status=404)
    fake.fail("recco-single", status=503)  # every attempt of every id
    result = _service(fake).fetch("audio_features", ids)
    assert result.found == [] and result.not_found == []
    # the first id fails alone; the second failing too means the source is down: the rest
    # are recorded with it, never asked
    assert [group for group, _ in result.errors] == [ids[:1], ids[1:]]
    assert len(fake.requests_to("recco-single")) == 2 * 3


def test_audio_service_rate_limit_over_the_cap_stops(fake, world):
    fake.fail("recco-batch", status=429, retry_after=120)
    result = _service(fake).fetch("audio_features", _ids(world, 5))
    assert isinstance(result.stop, RateLimitStop)


def test_audio_service_needs_a_base_url(monkeypatch):
    from segue.providers.base import ProviderUnavailable

    monkeypatch.delenv("SEGUE_AUDIO_FEATURES_BASE", raising=False)
    with pytest.raises(ProviderUnavailable, match="SEGUE_AUDIO_FEATURES_BASE"):
        AudioFeatureService.from_env()


# -- recommendations and the Spotify model ------------------------------------------------------


def _snapshot(world: World, n: int):
    from segue.snapshot.arrays import Snapshot

    tracks = pd.DataFrame({"track_id": _ids(world, n), "name": [f"t{i}" for i in range(n)]})
    return Snapshot.from_frames(tracks, pd.DataFrame({"artist_key": range(n)}), pd.DataFrame())


def test_spotify_model_maps_answers_to_indices_and_drops_unknown(fake, world):
    from segue.models.spotify import SpotifyRecommender

    snap = _snapshot(world, 100)
    model = SpotifyRecommender(limit=20).attach(provider_for(fake)).fit(snap)
    seeds = np.array([0, 1, 2, 3, 4, 5, 6], dtype=np.int64)
    idx, scores = model.recommend(seeds, n=10)
    answered = [t for t in world.recommendations if t not in _ids(world, 5)]
    pos = {tid: i for i, tid in enumerate(_ids(world, 100))}
    expected = [pos[t] for t in answered if t in pos and pos[t] not in seeds][:10]
    assert idx.tolist() == expected
    assert np.all(np.diff(scores) <= 0)
    assert set(model.last_unknown_) == {t for t in answered if t not in pos}
    sent = fake.requests_to("recommendations")[0].ids
    assert sent == _ids(world, 5)  # the first five seeds only


def test_spotify_model_save_load_round_trip(fake, world, tmp_path):
    from segue.models.spotify import SpotifyRecommender

    snap = _snapshot(world, 100)
    model = SpotifyRecommender(limit=30, max_seeds=3).fit(snap)
    model.save(tmp_path / "m")
    loaded = SpotifyRecommender.load(tmp_path / "m", snap)
    assert loaded.get_params() == {"limit": 30, "max_seeds": 3} and loaded.n_tracks == 100
    with pytest.raises(ValueError, match="max_seeds"):
        SpotifyRecommender(max_seeds=9).fit(snap)


def test_recommendations_403_reason_and_availability(fake):
    from segue.providers.spotify import recommendations_available

    provider = provider_for(fake)
    assert recommendations_available(provider) == (True, "")
    fake.fail("recommendations", status=403)
    # cached: asked once per process
    assert recommendations_available(provider) == (True, "")
    assert len(fake.requests_to("recommendations")) == 1
    assert recommendations_available(provider, refresh=True) == (
        False,
        RECOMMENDATIONS_GONE,
    )
    with pytest.raises(ProviderError, match="removed for new apps since 27 Nov 2024"):
        provider.recommendations(["1" * 22])
    assert len(fake.requests_to("recommendations")) == 2  # remembered as gone


def test_availability_without_credentials(monkeypatch, tmp_path):
    from segue.providers import for_models

    without_credentials(monkeypatch, tmp_path)
    ok, reason = for_models.available("spotify", home=Home(tmp_path / "home"))
    assert not ok and "SPOTIPY_CLIENT_ID" in reason
