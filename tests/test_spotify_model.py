"""What is specific to the ``spotify`` model, against a real HTTP server on 127.0.0.1 answering
like Spotify's /recommendations (tests/fake_spotify.py): how answers become scores, the ids the
snapshot lacks (kept per thread, and grown into the catalog by the service), the seeds sent, the
403 of apps created after Nov 2024, and 429 with Retry-After. The model never builds a provider
itself: tests attach one, the service attaches one built from the credentials of its own home.
The shared invariants run in tests/test_model_contract.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import segue.providers.spotify as spotify_provider
from segue.catalog import Catalog
from segue.core.errors import NotFittedError
from segue.core.home import Home
from segue.models.registry import fit_model
from segue.models.spotify import NoProviderError, SpotifyRecommender
from segue.providers import for_models
from segue.providers.base import ProviderError, RateLimitStop
from segue.providers.credentials import CredentialsError
from segue.providers.spotify import RECOMMENDATIONS_GONE, recommendations_available
from segue.service.engine import Service
from segue.snapshot.arrays import Snapshot
from segue.snapshot.from_catalog import build_snapshot
from tests.fake_spotify import (
    CAP,
    FakeSpotify,
    env_for,
    numbered_id,
    parity_world,
    provider_for,
    without_credentials,
)
from tests.test_model_contract import N_TRACKS, checkerboard_snapshot

N_UNKNOWN = 20


@pytest.fixture
def fake() -> Iterator[FakeSpotify]:
    with FakeSpotify(parity_world(N_TRACKS + N_UNKNOWN, seed=5)) as server:
        yield server


@pytest.fixture(scope="module")
def snap() -> Snapshot:
    return checkerboard_snapshot()


@pytest.fixture(autouse=True)
def fresh_availability(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts with no remembered availability (a later fake may reuse a port)."""
    monkeypatch.setattr(spotify_provider, "_availability", {})


def _env(monkeypatch: pytest.MonkeyPatch, fake: FakeSpotify) -> None:
    monkeypatch.delenv("SEGUE_SPOTIFY_YAML", raising=False)
    for key, value in env_for(fake).items():
        monkeypatch.setenv(key, value)


def _model(fake: FakeSpotify, snap: Snapshot, **params: int) -> SpotifyRecommender:
    return SpotifyRecommender(**params).attach(provider_for(fake)).fit(snap)


def _spotify_answer(fake: FakeSpotify, seed_ids: list[str], limit: int) -> list[str]:
    """What the fake's rule answers for these seeds (seeds dropped, cut at ``limit``)."""
    assert fake.world.recommend is not None
    return [t for t in fake.world.recommend(seed_ids) if t not in seed_ids][:limit]


# -- from an answer to scores ----------------------------------------------------------------


def test_answer_becomes_rank_scores_and_unknown_ids_are_kept(fake, snap):
    model = _model(fake, snap)
    seeds = np.array([0, 2, 4])
    scores = model.scores(seeds)
    seed_ids = [numbered_id(i) for i in seeds]
    answer = _spotify_answer(fake, seed_ids, 100)
    known = [int(t) for t in answer if int(t) < N_TRACKS]
    unknown = [t for t in answer if int(t) >= N_TRACKS]
    assert len(unknown) == N_UNKNOWN // 2 and len(known) == N_TRACKS // 2 - 3
    assert model.last_unknown_ == unknown  # in Spotify's order
    m = len(known)
    expected = np.full(N_TRACKS, -np.inf, dtype=np.float32)
    expected[known] = (m - np.arange(m, dtype=np.float32)) / np.float32(m)
    assert scores.dtype == np.float32
    np.testing.assert_array_equal(scores, expected)
    (request,) = fake.requests_to("recommendations")
    assert request.query["seed_tracks"] == [",".join(seed_ids)]
    assert request.query["limit"] == ["100"]


def test_recommend_follows_spotify_order_without_unknown_tracks(fake, snap):
    model = _model(fake, snap)
    ids, scores = model.recommend(np.array([1, 3]), 12)
    answer = _spotify_answer(fake, [numbered_id(1), numbered_id(3)], 100)
    assert ids.tolist() == [int(t) for t in answer if int(t) < N_TRACKS][:12]
    assert scores[0] == 1.0 and np.all(np.diff(scores) < 0)


def test_only_the_first_distinct_seeds_are_sent_and_later_seeds_are_never_returned(fake, snap):
    model = _model(fake, snap)
    seeds = np.array([1, 1, 3, 5, 7, 9, 11, 13])
    sent = [numbered_id(i) for i in (1, 3, 5, 7, 9)]
    answer = _spotify_answer(fake, sent, 100)
    assert {numbered_id(11), numbered_id(13)} <= set(answer)  # Spotify does return them
    ids, _ = model.recommend(seeds, N_TRACKS)
    assert fake.requests_to("recommendations")[-1].ids == sent
    assert not np.isin(ids, seeds).any()
    assert ids.size == N_TRACKS // 2 - 7 and np.all(ids % 2 == 1)
    _model(fake, snap, max_seeds=2).recommend(seeds, 5)
    assert fake.requests_to("recommendations")[-1].ids == sent[:2]


def test_limit_is_what_spotify_is_asked_for(fake, snap):
    model = _model(fake, snap, limit=7)
    scores = model.scores(np.array([0]))
    assert fake.requests_to("recommendations")[0].query["limit"] == ["7"]
    assert np.isfinite(scores).sum() + len(model.last_unknown_) == 7


def test_no_seeds_asks_nothing(fake, snap):
    model = _model(fake, snap)
    model.scores(np.array([0]))
    assert model.last_unknown_
    ids, _ = model.recommend(np.array([], dtype=np.int64), 5)
    assert ids.size == 0 and model.last_unknown_ == []
    assert len(fake.requests_to("recommendations")) == 1


def test_a_failed_request_leaves_no_stale_unknown_ids(fake, snap):
    model = _model(fake, snap)
    model.scores(np.array([0]))
    assert model.last_unknown_
    fake.fail("recommendations", status=500)
    with pytest.raises(ProviderError, match="HTTP 500"):
        model.scores(np.array([0]))
    assert model.last_unknown_ == []


def test_bad_parameters_and_unfitted_use_say_what_is_wrong(fake, snap):
    with pytest.raises(
        ValueError,
        match=r"parameter .limit. of model .spotify. must be an integer in \[1, 100\], got 0",
    ):
        SpotifyRecommender(limit=0).fit(snap)
    with pytest.raises(NotFittedError, match="not fitted"):
        SpotifyRecommender().explain(np.array([0]), 1)
    with pytest.raises(IndexError, match="out of range"):
        _model(fake, snap).explain(np.array([0]), N_TRACKS)
    assert fake.requests == []


# -- the provider is attached, never built by the model ----------------------------------------


def test_with_a_provider_attached_the_model_answers_and_without_one_it_says_so(fake, snap):
    bare = SpotifyRecommender().fit(snap)
    assert bare.needs_provider == "spotify" and not bare.attached
    with pytest.raises(NoProviderError, match=r"no provider attached: give it one with attach"):
        bare.recommend(np.array([0, 2]), 5)
    assert fake.requests == []  # nothing asked without a provider
    with pytest.raises(NoProviderError):
        bare.provider  # noqa: B018
    ids, scores = bare.recommend(np.array([], dtype=np.int64), 5)  # no seeds: nothing to ask
    assert ids.size == 0

    provider = provider_for(fake)
    assert bare.attach(provider) is bare and bare.attached and bare.provider is provider
    ids, scores = bare.recommend(np.array([0, 2]), 5)
    answer = _spotify_answer(fake, [numbered_id(0), numbered_id(2)], 100)
    assert ids.tolist() == [int(t) for t in answer if int(t) < N_TRACKS][:5]
    assert scores[0] == 1.0
    assert len(fake.requests_to("recommendations")) == 1


def test_without_credentials_the_service_says_what_is_needed(snap, monkeypatch, tmp_path):
    without_credentials(monkeypatch, tmp_path)
    home = tmp_path / "served"
    snap.save(home / "artifacts" / "snapshot")
    fit_model("spotify", snap, root=home / "artifacts" / "models")
    service = Service(home)
    with pytest.raises(CredentialsError, match="SPOTIPY_CLIENT_ID") as err:
        service.recommend([numbered_id(0)], n=5, model="spotify")
    assert str(home / "Spotify.yaml") in str(err.value)  # the service's own home is searched
    spotify = {m["name"]: m for m in service.models()}["spotify"]
    assert not spotify["available"] and "Spotify credentials are needed" in spotify["reason"]
    assert str(home / "Spotify.yaml") in spotify["reason"]  # where to write them, for this home


def test_the_service_reads_the_credentials_of_its_own_home(fake, snap, monkeypatch, tmp_path):
    """Credentials only in the served home's Spotify.yaml (none in the environment nor in the
    default home): the service's provider is built from them."""
    without_credentials(monkeypatch, tmp_path)
    for key, value in env_for(fake, credentials=False).items():
        monkeypatch.setenv(key, value)
    home = tmp_path / "served"
    snap.save(home / "artifacts" / "snapshot")
    fit_model("spotify", snap, root=home / "artifacts" / "models")
    (home / "Spotify.yaml").write_text(
        f"Client_id: {fake.client_id}\nclient_secret: {fake.client_secret}\n"
    )
    assert recommendations_available()[0] is False  # the default home has none
    service = Service(home, grow=False)
    spotify = {m["name"]: m for m in service.models()}["spotify"]
    assert spotify["available"] and spotify["reason"] == ""
    rec = service.recommend([numbered_id(0), numbered_id(2)], n=5, model="spotify")
    answer = _spotify_answer(fake, [numbered_id(0), numbered_id(2)], 100)
    assert [t.id for t in rec.tracks] == [t for t in answer if int(t) < N_TRACKS][:5]
    # One provider per service, attached once: a second request asks for no new token.
    tokens = len(fake.requests_to("token"))
    service.recommend([numbered_id(1)], n=5, model="spotify")
    assert len(fake.requests_to("token")) == tokens


# -- 403: the endpoint is gone for apps created after 27 Nov 2024 -------------------------------


def test_403_says_why_and_the_service_hides_the_model(fake, snap, monkeypatch, tmp_path):
    _env(monkeypatch, fake)
    spotify = {m["name"]: m for m in Service(tmp_path).models()}["spotify"]
    assert spotify["available"] and spotify["reason"] == ""

    monkeypatch.setattr(spotify_provider, "_availability", {})
    fake.fail("recommendations", status=403)
    spotify = {m["name"]: m for m in Service(tmp_path).models()}["spotify"]
    assert not spotify["available"] and spotify["reason"] == RECOMMENDATIONS_GONE
    assert recommendations_available() == (False, RECOMMENDATIONS_GONE)
    assert len(fake.requests_to("recommendations")) == 2  # the 403 is remembered

    # with a provider from the environment, as the service builds it
    model = SpotifyRecommender().attach(for_models.build("spotify", home=Home(tmp_path)))
    model.fit(snap)
    with pytest.raises(ProviderError, match="removed for new apps since 27 Nov 2024") as err:
        model.recommend(np.array([0, 2]), 5)
    assert err.value.status == 403


def test_availability_of_one_provider_is_not_taken_for_another(fake):
    for _ in range(5):  # each provider freed at once: its address often goes to the next one
        assert recommendations_available(provider_for(fake)) == (True, "")
    fake.fail("recommendations", status=403)
    for _ in range(5):
        provider = provider_for(fake)
        assert recommendations_available(provider) == (False, RECOMMENDATIONS_GONE)
        assert provider.is_gone("GET /recommendations")


# -- 429 with Retry-After -------------------------------------------------------------------


def test_429_within_the_cap_waits_retry_after_then_answers(fake, snap):
    fake.fail("recommendations", status=429, retry_after=0.4, times=1)
    model = _model(fake, snap)
    ids, _ = model.recommend(np.array([0, 2]), 5)
    assert ids.size == 5 and np.all(ids % 2 == 0)
    assert [r.status for r in fake.requests_to("recommendations")] == [429, 200]
    assert fake.gaps("recommendations")[0] >= 0.4
    assert model.provider.retrier.waited == pytest.approx(0.4)


def test_429_past_the_cap_stops_at_once_saying_how_long(fake, snap):
    fake.fail("recommendations", status=429, retry_after=120)
    model = _model(fake, snap)
    with pytest.raises(RateLimitStop, match=r"wait 120 s, more than the 1 s cap") as err:
        model.recommend(np.array([0, 2]), 5)
    assert err.value.retry_after == 120
    assert len(fake.requests_to("recommendations")) == 1
    assert model.provider.retrier.waited == 0
    assert model.last_unknown_ == []


def test_a_rate_limited_probe_is_remembered_only_for_its_retry_after(fake, monkeypatch):
    _env(monkeypatch, fake)
    wait = CAP + 0.5  # past the cap: the probe stops at once
    fake.fail("recommendations", status=429, retry_after=wait, times=1)
    ok, reason = recommendations_available()
    assert not ok and "rate limited" in reason and "SEGUE_MAX_RETRY_AFTER" in reason
    assert recommendations_available() == (ok, reason)  # remembered: not asked again
    assert len(fake.requests_to("recommendations")) == 1
    time.sleep(wait)
    assert recommendations_available() == (True, "")
    assert len(fake.requests_to("recommendations")) == 2


def test_a_failed_probe_without_retry_after_is_asked_again_later(fake, monkeypatch):
    _env(monkeypatch, fake)
    monkeypatch.setattr(spotify_provider, "RETRY_PROBE_AFTER", 1.0)
    fake.fail("recommendations", status=503, times=3)  # every one of the 3 attempts
    ok, reason = recommendations_available()
    assert not ok and "HTTP 503" in reason
    assert recommendations_available() == (ok, reason)  # remembered for a while
    assert len(fake.requests_to("recommendations")) == 3
    time.sleep(1.0)
    assert recommendations_available() == (True, "")
    assert len(fake.requests_to("recommendations")) == 4


def test_save_load_keeps_parameters_and_answers_alike(fake, snap, tmp_path: Path):
    model = _model(fake, snap, limit=9, max_seeds=2)
    model.save(tmp_path / "spotify")
    loaded = SpotifyRecommender.load(tmp_path / "spotify", snap)
    assert loaded.get_params() == {"limit": 9, "max_seeds": 2}
    assert not loaded.attached  # a provider is never saved: whoever loads it attaches one
    loaded.attach(provider_for(fake))
    a = model.recommend(np.array([1, 3, 5]), 5)
    b = loaded.recommend(np.array([1, 3, 5]), 5)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert [r.query["limit"] for r in fake.requests_to("recommendations")] == [["9"], ["9"]]


# -- unknown ids per thread ------------------------------------------------------------------


def test_each_thread_reads_the_unknown_ids_of_its_own_last_call(fake, snap):
    """One model answers two threads; the second call lands between the first call and its
    read, and the first thread still reads its own ids."""
    model = _model(fake, snap)
    first_called, second_called = threading.Event(), threading.Event()
    seen: dict[str, list[str]] = {}

    def even() -> None:
        model.recommend(np.array([0, 2]), 5)
        first_called.set()
        second_called.wait(10)
        seen["even"] = model.last_unknown_

    def odd() -> None:
        first_called.wait(10)
        model.recommend(np.array([1, 3]), 5)
        seen["odd"] = model.last_unknown_
        second_called.set()

    threads = [threading.Thread(target=even), threading.Thread(target=odd)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert seen["even"] == _unknown_answer(fake, [0, 2])
    assert seen["odd"] == _unknown_answer(fake, [1, 3])
    assert len(seen["even"]) == len(seen["odd"]) == N_UNKNOWN // 2
    assert model.last_unknown_ == []  # this thread called nothing


# -- the service grows the catalog with what Spotify recommended ------------------------------


def _unknown_answer(fake: FakeSpotify, seeds: list[int]) -> list[str]:
    """The ids Spotify answers for ``seeds`` that the snapshot lacks, in Spotify's order."""
    answer = _spotify_answer(fake, [numbered_id(i) for i in seeds], 100)
    return [t for t in answer if int(t) >= N_TRACKS]


@pytest.fixture
def served(fake, snap, home: Path, monkeypatch) -> Path:
    """A home with the snapshot and the spotify model saved, as ``segue fit`` leaves it; the
    model and the catalog's growth ask the fake, pointed at through the environment."""
    _env(monkeypatch, fake)
    snap.save(home / "artifacts" / "snapshot")
    fit_model("spotify", snap, root=home / "artifacts" / "models")
    return home


ADDED = (
    f"Spotify also recommended {N_UNKNOWN // 2} track(s) this catalog does not have: added to "
    "the catalog; they can be recommended after the next `segue fit`"
)


def test_the_service_adds_recommended_tracks_the_catalog_lacks(fake, served):
    service = Service(served)
    rec = service.recommend([numbered_id(0), numbered_id(2)], n=5, model="spotify")
    unknown = _unknown_answer(fake, [0, 2])
    assert len(unknown) == N_UNKNOWN // 2
    known = [
        t for t in _spotify_answer(fake, [numbered_id(0), numbered_id(2)], 100) if int(t) < N_TRACKS
    ]
    assert [t.id for t in rec.tracks] == known[:5]
    assert ADDED in rec.messages
    assert sorted(fake.asked_ids("track")) == sorted(unknown)  # single lookups, each once
    with Catalog.open(served / "catalog.duckdb") as catalog:
        rows = catalog.track_rows(unknown)
        grown = build_snapshot(catalog)  # what the next `segue fit` reads
    assert [r["track_id"] for r in rows] == unknown
    assert [r["name"] for r in rows] == [fake.world.tracks[t]["name"] for t in unknown]
    assert [r["artist"] for r in rows] == ["Even Band"] * len(unknown)
    assert grown.known_indices(unknown)[1] == []

    # Asked again before a new fit: the tracks are in the catalog, nothing is fetched twice.
    again = service.recommend([numbered_id(0), numbered_id(2)], n=5, model="spotify")
    assert [t.id for t in again.tracks] == known[:5]
    assert ADDED in again.messages
    assert sorted(fake.asked_ids("track")) == sorted(unknown)


def test_with_growing_off_nothing_is_written_and_the_message_says_so(fake, served):
    rec = Service(served, grow=False).recommend([numbered_id(1)], n=5, model="spotify")
    assert [t.id for t in rec.tracks] == [
        t for t in _spotify_answer(fake, [numbered_id(1)], 100) if int(t) < N_TRACKS
    ][:5]
    assert rec.messages == [
        f"Spotify also recommended {N_UNKNOWN // 2} track(s) this catalog does not have: "
        "they are not in the catalog (growing the catalog is off)"
    ]
    assert not (served / "catalog.duckdb").exists()
    assert fake.requests_to("track", "tracks", "artists", "artist") == []


@pytest.mark.parametrize("mode", ["drop", "status"])
def test_network_down_while_growing_still_answers_and_says_so(fake, served, mode):
    # Every API request after the recommendations one fails: dropped connections or 503.
    fake.fail("*", mode=mode, status=503, skip=1)
    rec = Service(served).recommend([numbered_id(0), numbered_id(2)], n=5, model="spotify")
    assert len(rec.tracks) == 5 and all(int(t.id) % 2 == 0 for t in rec.tracks)
    (message,) = [m for m in rec.messages if m.startswith("Spotify also recommended")]
    assert message.startswith(
        f"Spotify also recommended {N_UNKNOWN // 2} track(s) this catalog does not have: "
        "they are not in the catalog ("
    )
    assert "could not be fetched" in message
    assert fake.requests_to("track")  # growth was tried
    with Catalog.open(served / "catalog.duckdb") as catalog:
        assert catalog.track_rows(_unknown_answer(fake, [0, 2])) == []


def test_tracks_spotify_cannot_look_up_are_counted_apart(fake, served):
    unknown = _unknown_answer(fake, [0, 2])
    fake.fail("track", status=404, ids=unknown[:2])
    rec = Service(served).recommend([numbered_id(0), numbered_id(2)], n=5, model="spotify")
    assert (
        f"Spotify also recommended {N_UNKNOWN // 2} track(s) this catalog does not have: "
        f"{N_UNKNOWN // 2 - 2} added to the catalog (they can be recommended after the next "
        f"`segue fit`), 2 not (added {N_UNKNOWN // 2 - 2} track(s) to the catalog; "
        "2 unknown to Spotify)"
    ) in rec.messages
    with Catalog.open(served / "catalog.duckdb") as catalog:
        assert [r["track_id"] for r in catalog.track_rows(unknown)] == unknown[2:]
