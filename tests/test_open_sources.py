"""MusicBrainz, Last.fm and Deezer providers against fake services on 127.0.0.1: matching by
ISRC and by name (featurings, remasters, accents, decoys), genres into the catalog with their
source, rate limits as counts over windows, error answers, resumption, no key in any output."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from segue.catalog import Catalog
from segue.catalog.fetch import ERROR_LOG_NAME, build_providers, run_fetch
from segue.catalog.ingest import ingest_paths
from segue.catalog.matching import match_counts
from segue.core.redact import MASK
from segue.providers.deezer import DeezerProvider
from segue.providers.lastfm import LastfmProvider
from segue.providers.matching import Candidate, TrackKey, best_track
from segue.providers.musicbrainz import MusicBrainzProvider, lucene_phrase
from segue.providers.ratelimit import RateLimiter
from tests.fake_open_sources import LASTFM_KEY, FakeOpenSources, catalog_world
from tests.fake_spotify import SHORT_TIMEOUT, fast_policy, write_mpd_slice

FAST = RateLimiter(1000, 1.0)


@pytest.fixture
def fake() -> Iterator[FakeOpenSources]:
    with FakeOpenSources() as server:
        yield server


@pytest.fixture
def catalog_path(home: Path) -> Path:
    world, _ = catalog_world()
    path = home / "catalog.duckdb"
    slice_file = write_mpd_slice(world, home.parent / "slice.json", n_playlists=2)
    with Catalog.open(path) as catalog:
        ingest_paths(catalog, [str(slice_file)], progress=False)
    return path


def _providers(fake: FakeOpenSources, *names: str, **kw) -> list:
    kw.setdefault("policy", fast_policy())
    out = []
    for name in names:
        limiter = kw.pop(f"{name}_limiter", None) or RateLimiter(1000, 1.0)
        if name == "musicbrainz":
            out.append(MusicBrainzProvider(fake.mb_base, limiter=limiter, **kw))
        elif name == "lastfm":
            out.append(LastfmProvider(LASTFM_KEY, fake.lastfm_base, limiter=limiter, **kw))
        else:
            out.append(DeezerProvider(fake.deezer_base, limiter=limiter, **kw))
    return out


def _fetch(path: Path, providers: list, **kwargs):
    console = Console(file=io.StringIO(), width=200)
    kwargs.setdefault("log_path", path.parent / "logs" / ERROR_LOG_NAME)
    report = run_fetch(path, providers, progress=False, console=console, **kwargs)
    for p in providers:
        p.close()
    return report, console.file.getvalue()  # type: ignore[attr-defined]


def _genres(path: Path) -> dict[str, tuple[list[str] | None, str | None]]:
    with Catalog.open(path) as catalog:
        rows = catalog.con.execute("SELECT name, genres, source FROM artists").fetchall()
    return {name: (genres, source) for name, genres, source in rows}


def _dates(path: Path) -> dict[str, str | None]:
    with Catalog.open(path) as catalog:
        return dict(catalog.con.execute("SELECT name, release_date FROM tracks").fetchall())


# -- matching ----------------------------------------------------------------------------------


def test_best_track_prefers_isrc_then_name_and_duration_and_refuses_a_remix():
    key = TrackKey("t", "Queen", "Bohemian Rhapsody - Remastered 2011", 354320)
    karaoke = Candidate("1", "Ameritz Karaoke", "Bohemian Rhapsody (Karaoke Version)", 360000)
    real = Candidate("2", "Queen", "Bohemian Rhapsody", 354000)
    match = best_track(key, [karaoke, real])
    assert match is not None and match.candidate.external_id == "2"
    assert match.method == "name+duration" and match.confidence >= 0.95
    by_isrc = best_track(
        TrackKey("t", "Queen", "x", isrc="GBUM71029604"),
        [Candidate("3", "Other", "y", isrc="gbum71029604")],
    )
    assert by_isrc is not None and by_isrc.method == "isrc" and by_isrc.confidence == 1.0
    remix = Candidate("4", "Robyn", "Dancing On My Own (Calvin Harris Remix)", 288000)
    assert best_track(TrackKey("t", "Robyn", "Dancing On My Own", 288000), [remix]) is None
    far = Candidate("5", "Queen", "Bohemian Rhapsody", 600000)  # same name, other length
    assert best_track(TrackKey("t", "Queen", "Bohemian Rhapsody", 354320), [far]) is None


def test_lucene_phrase_escapes_specials():
    assert lucene_phrase('AC/DC "Live"') == '"AC\\/DC \\"Live\\""'


# -- providers through run_fetch ---------------------------------------------------------------


def test_three_sources_fill_dates_and_genres_with_their_source(fake, catalog_path):
    report, _ = _fetch(catalog_path, _providers(fake, "musicbrainz", "lastfm", "deezer"))
    assert report.complete, report.summary_lines()
    genres = _genres(catalog_path)
    # MusicBrainz answers first and fills every artist it knows; the rest stay asked of others.
    assert genres["Beyoncé"] == (["r&b", "pop", "contemporary r&b"], "musicbrainz")
    assert genres["Sigur Rós"][1] == "musicbrainz"
    assert genres["MØ"] == (["electropop"], "musicbrainz")
    assert genres["Totally Unknown Garage Band"] == (None, "mpd")
    dates = _dates(catalog_path)
    assert dates["Crazy In Love (feat. Jay-Z)"] == "2003-05-18"
    assert dates["Here Comes The Sun - Remastered 2009"] == "1969-09-26"
    assert dates["Hoppípolla"] == "2005-09-12"
    assert dates["Nobody Heard This"] is None
    lines = report.summary_lines()
    assert "musicbrainz track_facts: 8 of 8 asked, 7 found, 1 not found" in lines
    assert any(line.startswith("musicbrainz matching:") and "2 unmatched" in line for line in lines)
    with Catalog.open(catalog_path) as catalog:
        counts = match_counts(catalog)
        from segue.catalog.matching import genres_by_source

        assert genres_by_source(catalog) == {"musicbrainz": 7}
        isrcs = catalog.con.execute(
            "SELECT count(*) FROM source_matches WHERE isrc IS NOT NULL"
        ).fetchone()[0]
    assert counts["musicbrainz"].get("unmatched") == 2  # the unknown band: track and artist
    assert isrcs == 7


def test_each_source_alone_and_its_matching(fake, catalog_path, home):
    report, _ = _fetch(catalog_path, _providers(fake, "deezer"))
    assert report.complete, report.summary_lines()
    genres = _genres(catalog_path)
    assert genres["Sigur Rós"] == (["alternative"], "deezer")  # matched without accents
    assert genres["Queen"] == (["rock"], "deezer")  # the karaoke cover was not taken
    assert genres["Robyn"] == (None, "mpd")  # only a remix on Deezer: not the track
    dates = _dates(catalog_path)
    assert dates["Bohemian Rhapsody - Remastered 2011"] == "1975-10-31"
    assert dates["Dancing On My Own"] is None
    # Last.fm next: only what is still missing is asked; its tags skip "seen live".
    before = len(fake.seen("lastfm"))
    report, _ = _fetch(catalog_path, _providers(fake, "lastfm"))
    asked = {r.query["artist"][0] for r in fake.seen("lastfm")[before:]}
    assert "Queen" not in asked and "Robyn" in asked
    genres = _genres(catalog_path)
    assert genres["Robyn"] == (["electropop", "swedish", "dance"], "lastfm")
    assert genres["Beyoncé"][0] == ["r&b", "pop"] or genres["Beyoncé"][1] == "deezer"


def test_isrc_learnt_from_one_source_is_used_by_the_next(fake, catalog_path):
    _fetch(catalog_path, _providers(fake, "deezer"), kinds=("track_facts",))
    with Catalog.open(catalog_path) as catalog:
        catalog.con.execute("UPDATE tracks SET release_date = NULL, release_year = NULL")
    _fetch(catalog_path, _providers(fake, "musicbrainz"), kinds=("track_facts",))
    isrc_lookups = [r for r in fake.seen("mb") if r.path.startswith("/isrc/")]
    assert len(isrc_lookups) == 6  # every track Deezer matched (not the remix, not the unknown)
    with Catalog.open(catalog_path) as catalog:
        methods = dict(
            catalog.con.execute(
                "SELECT method, count(*) FROM source_matches WHERE provider = 'musicbrainz' GROUP BY ALL"
            ).fetchall()
        )
    assert methods["isrc"] == 6


def test_resumed_run_asks_nothing_twice_and_duplicates_nothing(fake, catalog_path):
    # MusicBrainz is down after the first five requests: batches fail, the run stops.
    fake.fail("mb", status=503, skip=5)
    report, _ = _fetch(catalog_path, _providers(fake, "musicbrainz"))
    assert not report.complete
    first = len(fake.seen("mb"))
    fake.rules.clear()
    report, _ = _fetch(catalog_path, _providers(fake, "musicbrainz"))
    assert report.complete, report.summary_lines()
    # What the first run got was not asked again.
    lookups = [r.path for r in fake.seen("mb") if r.path.startswith("/artist/")]
    assert len(lookups) == len(set(lookups))
    with Catalog.open(catalog_path) as catalog:
        assert catalog.scalar("SELECT count(*) FROM artists") == 8
        assert catalog.scalar("SELECT count(*) FROM tracks") == 8
        assert catalog.scalar("SELECT count(*) FROM artists WHERE len(genres) > 0") == 7
    assert first > 0
    # A third run has nothing left to ask.
    n = len(fake.requests)
    report, _ = _fetch(catalog_path, _providers(fake, "musicbrainz"))
    assert len(fake.requests) == n and report.complete


def test_musicbrainz_503_is_backed_off_and_retried(fake, catalog_path):
    fake.fail("mb", status=503, times=2)
    report, _ = _fetch(catalog_path, _providers(fake, "musicbrainz"))
    assert report.complete, report.summary_lines()
    assert sum(1 for r in fake.seen("mb") if r.status == 503) == 2
    assert _genres(catalog_path)["Queen"][1] == "musicbrainz"


def test_lastfm_rate_limit_error_29_is_backed_off(fake, catalog_path):
    fake.fail("lastfm", mode="lastfm", code=29, status=200, times=2)
    report, _ = _fetch(catalog_path, _providers(fake, "lastfm"))
    assert report.complete, report.summary_lines()
    assert _genres(catalog_path)["Daft Punk"] == (["electronic", "house", "french"], "lastfm")


@pytest.mark.parametrize(("code", "status"), [(10, 403), (26, 200)])
def test_lastfm_bad_key_stops_the_source_cleanly(fake, catalog_path, code, status, caplog):
    fake.fail("lastfm", mode="lastfm", code=code, status=status)
    caplog.set_level(logging.DEBUG)
    report, printed = _fetch(catalog_path, _providers(fake, "lastfm"))
    assert any("refused the API key" in s for s in report.stopped)
    assert len(fake.seen("lastfm")) == 1  # never looped on a refused key
    text = "\n".join(report.summary_lines()) + printed + caplog.text
    text += (catalog_path.parent / "logs" / ERROR_LOG_NAME).read_text()
    with Catalog.open(catalog_path) as catalog:
        text += str(catalog.fetch_log_rows(None))
    assert LASTFM_KEY not in text


def test_no_key_in_httpx_debug_log(fake, catalog_path, caplog):
    caplog.set_level(logging.DEBUG)
    _fetch(catalog_path, _providers(fake, "lastfm"))
    assert f"api_key={MASK}" in caplog.text
    assert LASTFM_KEY not in caplog.text


def test_deezer_quota_error_inside_200_is_backed_off(fake, catalog_path):
    fake.fail("deezer", mode="deezer", code=4, times=3)
    report, _ = _fetch(catalog_path, _providers(fake, "deezer"))
    assert report.complete, report.summary_lines()
    assert _genres(catalog_path)["Daft Punk"] == (["dance", "electro"], "deezer")


def test_deezer_quota_that_never_ends_stops_and_resumes(fake, catalog_path):
    fake.fail("deezer", mode="deezer", code=4, skip=6)
    report, _ = _fetch(catalog_path, _providers(fake, "deezer"))
    assert report.stopped and "rate limited" in report.stopped[0]
    fake.rules.clear()
    report, _ = _fetch(catalog_path, _providers(fake, "deezer"))
    assert report.complete
    assert _dates(catalog_path)["Harder, Better, Faster, Stronger"] == "2001-03-12"


def test_timeouts_and_malformed_bodies_are_logged_and_retried_later(fake, catalog_path):
    fake.fail("deezer", mode="slow", delay=0.6, times=3, path="/search")  # past the 0.3 s timeout
    fake.fail("mb", mode="malformed", times=1, path="/recording")
    short = fast_policy(timeout=SHORT_TIMEOUT)
    report, _ = _fetch(catalog_path, _providers(fake, "deezer", "musicbrainz", policy=short))
    assert report.failed_batches >= 2
    log = (catalog_path.parent / "logs" / ERROR_LOG_NAME).read_text()
    assert "no answer within the timeout" in log and "not valid JSON" in log
    fake.rules.clear()
    report, _ = _fetch(catalog_path, _providers(fake, "deezer", "musicbrainz"))
    assert report.complete
    assert _dates(catalog_path)["Crazy In Love (feat. Jay-Z)"] is not None


# -- rate limits, measured as counts over windows at the server --------------------------------


def _max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best = 0
    start = 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


@pytest.mark.parametrize(
    ("name", "limit", "per", "requests"),
    [("musicbrainz", 1, 1.0, 4), ("lastfm", 5, 1.0, 12), ("deezer", 50, 5.0, 56)],
)
def test_published_rate_limit_is_never_exceeded(fake, catalog_path, name, limit, per, requests):
    fake.mb_enforce_rate = name == "musicbrainz"  # musicbrainz.org answers 503 to an excess
    provider = _providers(fake, name, **{f"{name}_limiter": RateLimiter(limit, per)})[0]
    service = {"musicbrainz": "mb", "lastfm": "lastfm", "deezer": "deezer"}[name]
    path = {"musicbrainz": "artist", "lastfm": "", "deezer": "search"}[name]
    params = {"musicbrainz": {"query": 'artist:"Queen"', "fmt": "json"},
              "lastfm": {"method": "artist.getTopTags", "artist": "Queen", "api_key": LASTFM_KEY,
                         "format": "json"},
              "deezer": {"q": 'artist:"Queen"'}}[name]  # fmt: skip
    for _ in range(requests):
        provider.get("rate test", path, params)
    provider.close()
    times = [r.at for r in fake.seen(service)]
    assert len(times) == requests
    assert _max_in_window(times, per) <= limit
    assert all(r.status == 200 for r in fake.seen(service))  # no 503 for an excess


def test_rate_limiter_counts_retries_too(fake, catalog_path):
    fake.mb_enforce_rate = True
    fake.fail("mb", status=500, times=2)
    provider = _providers(fake, "musicbrainz", musicbrainz_limiter=RateLimiter(1, 1.0))[0]
    provider.get("retry test", "artist", {"query": 'artist:"Queen"', "fmt": "json"})
    provider.close()
    times = [r.at for r in fake.seen("mb")]
    assert len(times) == 3 and _max_in_window(times, 1.0) == 1


# -- the CLI -----------------------------------------------------------------------------------


def _cli():
    import typer

    from segue.cli import _registry

    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    _registry.register_all(app)
    return app


def test_cli_fetch_provider_choice_and_default_order(fake, catalog_path, monkeypatch):
    for key, value in fake.env().items():
        monkeypatch.setenv(key, value)
    for name in ("SPOTIPY_CLIENT_ID", "SPOTIPY_CLIENT_SECRET", "SEGUE_SPOTIFY_YAML",
                 "SEGUE_AUDIO_FEATURES_BASE", "SEGUE_OPEN_SOURCES"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(catalog_path.parent)
    monkeypatch.setenv("HOME", str(catalog_path.parent))
    providers, left_out = build_providers("all")
    # Base URLs set count as configured; Last.fm has a key; Spotify has no credentials.
    assert [p.name for p in providers] == ["musicbrainz", "lastfm", "deezer"]
    assert any(line.startswith("spotify left out") for line in left_out)
    for p in providers:
        p.close()
    # Without base URLs, the keyless sources join the default order only when named.
    monkeypatch.delenv("SEGUE_MUSICBRAINZ_BASE")
    monkeypatch.delenv("SEGUE_DEEZER_BASE")
    providers, _ = build_providers("all")
    assert [p.name for p in providers] == ["lastfm"]
    monkeypatch.setenv("SEGUE_OPEN_SOURCES", "deezer, musicbrainz")
    providers, _ = build_providers("all")
    assert [p.name for p in providers] == ["musicbrainz", "lastfm", "deezer"]
    assert providers[0].base_url == "https://musicbrainz.org/ws/2"
    for p in providers:
        p.close()
    result = CliRunner().invoke(_cli(), ["fetch", "-q", "--provider", "lastfm"])
    assert result.exit_code == 0, result.output
    assert "lastfm artist_facts: 8 of 8 asked, 7 found, 1 not found" in result.stdout
    assert "lastfm matching:" in result.stdout
    assert LASTFM_KEY not in result.output
    monkeypatch.delenv("LASTFM_API_KEY")
    result = CliRunner().invoke(_cli(), ["fetch", "-q", "--provider", "lastfm"])
    assert result.exit_code == 2 and "LASTFM_API_KEY" in result.stderr


def test_lastfm_key_from_the_settings_file(tmp_path, monkeypatch):
    for name in ("LASTFM_API_KEY", "SEGUE_LASTFM_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    settings = tmp_path / "Spotify.yaml"
    settings.write_text(f"Client_id: abc\nclient_secret: def\nlastfm_api_key: {LASTFM_KEY}\n")
    monkeypatch.setenv("SEGUE_SPOTIFY_YAML", str(settings))
    provider = LastfmProvider(base_url="http://127.0.0.1:9/", limiter=FAST)
    assert LASTFM_KEY not in repr(provider)
    provider.close()


def test_stats_json_counts_artists_with_genres_by_source(fake, catalog_path):
    import json

    _fetch(catalog_path, _providers(fake, "musicbrainz"), kinds=("artist_facts",))
    _fetch(catalog_path, _providers(fake, "lastfm"))
    result = CliRunner().invoke(_cli(), ["stats", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["artists_with_genres_by_source"] == {"musicbrainz": 7}
    assert data["matches_by_source"]["musicbrainz"]["unmatched"] == 1
    text = CliRunner().invoke(_cli(), ["stats"]).stdout
    assert "  from musicbrainz 7" in text.splitlines()


def test_artists_known_by_name_only_are_matched_too(fake, catalog_path):
    # Feature tables and the demo know artists by name only (no Spotify id).
    with Catalog.open(catalog_path) as catalog:
        catalog.con.execute("UPDATE artists SET artist_id = NULL WHERE name IN ('Robyn', 'MØ')")
    report, _ = _fetch(catalog_path, _providers(fake, "lastfm"))
    assert report.complete, report.summary_lines()
    genres = _genres(catalog_path)
    assert genres["Robyn"] == (["electropop", "swedish", "dance"], "lastfm")
    assert genres["MØ"] == (["electronic", "danish"], "lastfm")
    with Catalog.open(catalog_path) as catalog:
        keys = {
            r[0]
            for r in catalog.con.execute(
                "SELECT id FROM fetch_attempts WHERE provider = 'lastfm'"
            ).fetchall()
        }
        assert {"name:robyn", "name:mø"} <= keys
        assert catalog.scalar("SELECT count(*) FROM artists") == 8  # none created twice
    n = len(fake.requests)
    report, _ = _fetch(catalog_path, _providers(fake, "lastfm"))
    assert len(fake.requests) == n  # the unknown band was answered 'not found': not asked again


def test_kill_9_mid_run_loses_nothing_and_asks_at_most_the_batch_in_flight_again(
    fake, catalog_path, tmp_path
):
    import os
    import signal
    import subprocess
    import sys
    import time

    fake.fail("mb", mode="slow", delay=0.8, path="/recording")  # each track takes a while
    env = {**os.environ, **fake.env(), "SEGUE_HOME": str(catalog_path.parent)}
    cmd = [sys.executable, "-m", "segue", "fetch", "-q", "--provider", "musicbrainz"]
    err_file = tmp_path / "first-run.err"
    with err_file.open("wb") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + 60
        while len([r for r in fake.seen("mb") if r.path == "/recording"]) < 7:
            assert proc.poll() is None, err_file.read_text()
            assert time.monotonic() < deadline, "the fetch made no progress"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    first = [r.query["query"][0] for r in fake.seen("mb") if r.path == "/recording"]
    with Catalog.open(catalog_path) as catalog:
        written = catalog.scalar("SELECT count(*) FROM tracks WHERE release_date IS NOT NULL")
    assert written == 5  # the first batch of 5 was written; the second was in flight
    n = len(fake.requests)
    fake.rules.clear()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    again = [r.query["query"][0] for r in fake.requests[n:] if r.path == "/recording"]
    assert len(again) == 3 and not set(again) & set(first[:5])  # only the batch in flight
    assert len(_dates(catalog_path)) == 8
    with Catalog.open(catalog_path) as catalog:
        assert catalog.scalar("SELECT count(*) FROM tracks") == 8
        assert catalog.scalar("SELECT count(*) FROM artists") == 8
        assert catalog.scalar("SELECT count(*) FROM artists WHERE len(genres) > 0") == 7
        assert (
            catalog.scalar(
                "SELECT count(*) FROM (SELECT id FROM source_matches GROUP BY provider, kind, id "
                "HAVING count(*) > 1)"
            )
            == 0
        )


def test_ctrl_c_mid_batch_keeps_the_answers_before_it_and_asks_only_the_rest_again(
    fake, catalog_path, tmp_path
):
    """Ctrl+C while MusicBrainz answers one track at a time: the tracks answered before it
    are written (not only whole batches), the run says it stopped, and the next run asks only
    the tracks not answered."""
    import os
    import signal
    import subprocess
    import sys
    import time

    # six tracks answered at once, the seventh held long enough for Ctrl+C to land while the
    # run waits for it (in the second batch of five), however loaded the machine
    fake.fail("mb", mode="slow", delay=0.05, path="/recording", times=6)
    fake.fail("mb", mode="slow", delay=10, path="/recording", times=1)
    env = {**os.environ, **fake.env(), "SEGUE_HOME": str(catalog_path.parent)}
    cmd = [sys.executable, "-m", "segue", "fetch", "-q", "--provider", "musicbrainz"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while len([r for r in fake.seen("mb") if r.path == "/recording"]) < 7:
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the fetch made no progress"
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert b"Traceback" not in err
    first = [r.query["query"][0] for r in fake.seen("mb") if r.path == "/recording"]
    with Catalog.open(catalog_path) as catalog:
        answered = catalog.scalar(
            "SELECT count(*) FROM source_matches WHERE provider = 'musicbrainz' AND kind = 'track'"
        )
    # the first batch of five, and the second batch's track answered before Ctrl+C
    assert answered == 6
    n = len(fake.requests)
    fake.rules.clear()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    again = [r.query["query"][0] for r in fake.requests[n:] if r.path == "/recording"]
    assert len(again) == 8 - answered and not set(again) & set(first[:answered])
    with Catalog.open(catalog_path) as catalog:
        assert (
            catalog.scalar(
                "SELECT count(*) FROM source_matches WHERE provider = 'musicbrainz' "
                "AND kind = 'track'"
            )
            == 8
        )
        assert (
            catalog.scalar(
                "SELECT count(*) FROM (SELECT id FROM source_matches GROUP BY provider, kind, id "
                "HAVING count(*) > 1)"
            )
            == 0
        )
