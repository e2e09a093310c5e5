"""The web app: its logic as plain functions, and the Streamlit script through AppTest."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from segue.core.home import Home
from segue.models.base import Recommender
from segue.models.registry import MODELS
from segue.service.engine import Service
from segue.service.variants import GenreSetting
from segue.snapshot.arrays import Snapshot
from segue.webapp import APP_SCRIPT, logic
from tests._serving_home import MODEL, build_home

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:altair.*")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Snapshot]:
    home = tmp_path_factory.mktemp("webapp") / "home"
    return home, build_home(home)


@pytest.fixture
def service(built: tuple[Path, Snapshot]) -> Service:
    return Service(built[0], grow=False)


class FakeContent(Recommender):
    """A content model with ``n_genres``: scores by closeness in danceability; counts fits."""

    name = "model1"
    fits: ClassVar[list[int]] = []

    def __init__(self, *, n_genres: int = 50) -> None:
        self.n_genres = n_genres

    def fit(self, snapshot: Any) -> Self:
        self.dance_ = snapshot.tracks["danceability"].to_numpy(dtype=np.float32)
        self.fitted_ = True
        FakeContent.fits.append(self.n_genres)
        return self

    @property
    def n_tracks(self) -> int:
        return int(self.dance_.shape[0])

    def _score(self, seeds: np.ndarray, *, title: str | None) -> np.ndarray:
        centre = self.dance_[seeds].mean() if seeds.size else 0.5
        return -np.abs(self.dance_ - centre) - 1e-4 * self.n_genres * np.arange(self.n_tracks)

    def explain(self, seeds: np.ndarray, track: int, *, title: str | None = None) -> str:
        return f"similar danceability ({self.n_genres} genres)"

    def _state_arrays(self) -> dict[str, np.ndarray]:
        return {"dance": self.dance_}

    def _load_state(self, arrays: dict[str, np.ndarray], snapshot: Any) -> None:
        self.dance_ = arrays["dance"]
        self.fitted_ = True


@pytest.fixture
def content_model(built: tuple[Path, Snapshot], monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from segue.models.registry import fit_model

    monkeypatch.setitem(MODELS, "model1", f"{__name__}:FakeContent")
    root = built[0] / "artifacts" / "models"
    fit_model("model1", built[1], root=root, n_genres=3)
    FakeContent.fits.clear()
    yield
    import shutil

    shutil.rmtree(root / "model1")


# logic ----------------------------------------------------------------------------------------
def test_split_inputs_keeps_names_whole_and_splits_runs_of_links() -> None:
    text = (
        "Earth, Wind & Fire\n\n  https://open.spotify.com/track/6rqhFgbbKwnb9MLmUQDhG6?si=1 "
        "spotify:track:7ouMYWpwJ422jRcDASZB7P\nsummer road trip\n"
    )
    assert logic.split_inputs(text) == [
        "Earth, Wind & Fire",
        "https://open.spotify.com/track/6rqhFgbbKwnb9MLmUQDhG6?si=1",
        "spotify:track:7ouMYWpwJ422jRcDASZB7P",
        "summer road trip",
    ]


def test_typed_file_paths_are_refused_but_links_pass() -> None:
    logic.check_typed_inputs(
        ["https://open.spotify.com/playlist/37i9dQZF1DXcBWIGoYBM5M", "Daft Punk", "AC/DC"]
    )
    # one rule for every shell (segue.service.inputs.names_a_file): a relative name is a path too
    for path in ("/etc/passwd.csv", "~/music/list.txt", "..\\x.json", "a.csv", "x.txt/."):
        with pytest.raises(ValueError, match="upload the file"):
            logic.check_typed_inputs([path])


def test_upload_names_are_reduced_to_a_safe_file_name() -> None:
    assert logic.safe_upload_name("../../etc/My Mix!.CSV") == "My Mix_.csv"
    assert logic.safe_upload_name("C:\\Users\\me\\list.json") == "list.json"
    with pytest.raises(ValueError, match="expected a file ending in"):
        logic.safe_upload_name("run.sh")


def test_filters_from_the_form(service: Service) -> None:
    bounds = logic.catalog_bounds(service)
    assert bounds.years == (1980, 2019) and bounds.n_tracks == 40
    untouched = logic.build_filters(
        logic.AppRequest(year_range=bounds.years, popularity_range=(0, 100)), bounds
    )
    assert (untouched.year_min, untouched.popularity_min, untouched.max_per_artist) == (
        None,
        None,
        None,
    )
    req = logic.AppRequest(
        year_range=(1990, 2000),
        popularity_range=(10, 90),
        max_per_artist=2,
        exclude_artists="A; B\nC, D",
    )
    f = logic.build_filters(req, bounds)
    assert (f.year_min, f.year_max, f.popularity_min, f.popularity_max, f.max_per_artist) == (
        1990,
        2000,
        10,
        90,
        2,
    )
    assert f.exclude_artists == ["A", "B", "C, D"]


def test_recommend_turns_the_form_into_a_service_call(
    service: Service, built: tuple[Path, Snapshot]
) -> None:
    snap = built[1]
    picked = snap.tracks.loc[snap.tracks["name"].str.startswith("Rap"), "track_id"].tolist()[:2]
    req = logic.AppRequest(text="Rap Artist 0", picked=picked, model=MODEL, n=6, max_per_artist=2)
    rec = logic.recommend(service, req)
    assert rec.model == MODEL and len(rec.tracks) == 6
    # Seeds: the 5 tracks of Rap Artist 0 and one more of Rap Artist 1, whose other 4 are the
    # best continuations but capped at 2; tracks without co-occurrence follow.
    assert set(picked) <= {t.id for t in rec.seeds} and len(rec.seeds) == 6
    assert [t.artists[0] for t in rec.tracks[:2]] == ["Rap Artist 1"] * 2
    assert all(not t.name.startswith("Rap") for t in rec.tracks[2:])
    artists = [t.artists[0] for t in rec.tracks]
    assert max(artists.count(a) for a in artists) <= 2
    frame = logic.results_frame(rec)
    assert list(frame["#"]) == [1, 2, 3, 4, 5, 6]
    assert frame["track"].tolist() == [t.name for t in rec.tracks]


@pytest.mark.parametrize(
    ("req", "words"),
    [
        (logic.AppRequest(), "nothing to start from"),
        (logic.AppRequest(text="https://open.spotify.com/track/nope"), "not a Spotify reference"),
        (logic.AppRequest(text="no such thing at all"), "no seed track found"),
        (logic.AppRequest(text="Rock Artist 0", n=0), "between 1 and 500"),
        (logic.AppRequest(text="Rock Artist 0", year_range=(2000, 1990)), "year range is empty"),
        (logic.AppRequest(text="/etc/passwd.csv"), "upload the file"),
        (logic.AppRequest(upload=logic.Upload("x.exe", b"")), "expected a file ending in"),
    ],
)
def test_bad_form_values_raise_plain_value_errors(
    service: Service, req: logic.AppRequest, words: str
) -> None:
    req.model = MODEL
    with pytest.raises(ValueError, match=words):
        logic.recommend(service, req)


def test_an_uploaded_playlist_file_is_read(service: Service, built: tuple[Path, Snapshot]) -> None:
    links = [f"https://open.spotify.com/track/{t}" for t in built[1].tracks["track_id"].iloc[20:24]]
    req = logic.AppRequest(
        upload=logic.Upload("../my list.txt", "\n".join(links).encode()), model=MODEL, n=3
    )
    rec = logic.recommend(service, req)
    assert len(rec.tracks) == 3 and all(t.name.startswith("Rap") for t in rec.tracks)
    assert any("my list.txt" in m for m in rec.messages)


def test_exports_hold_every_track(service: Service) -> None:
    rec = logic.recommend(
        service, logic.AppRequest(text="Country Artist 1", model=MODEL, n=5, title="Dust & Roads")
    )
    files = {e.label: e for e in logic.exports(rec)}
    assert set(files) == {"CSV", "M3U", "JSON"}
    assert files["CSV"].file_name == f"dust-roads-{MODEL}.csv"
    rows = list(csv.DictReader(io.StringIO(files["CSV"].data)))
    assert [r["uri"] for r in rows] == [t.uri for t in rec.tracks]
    m3u = files["M3U"].data.splitlines()
    assert m3u[0] == "#EXTM3U" and [line for line in m3u if line.startswith("https://")] == [
        t.url for t in rec.tracks
    ]
    assert [d["id"] for d in json.loads(files["JSON"].data)] == [t.id for t in rec.tracks]


def test_feature_profile_compares_input_and_results(service: Service) -> None:
    rec = logic.recommend(service, logic.AppRequest(text="Chill Artist 0", model=MODEL, n=5))
    frame = logic.profile_frame(service, rec)
    assert {"danceability", "energy", "tempo", "release year"} <= set(frame["feature"])
    scaled = frame[["input_scaled", "recommended_scaled"]].to_numpy()
    assert ((scaled >= 0) & (scaled <= 1)).all()
    seeds = [service.snapshot.track_index(t.id) for t in rec.seeds]
    expected = float(service.snapshot.tracks["danceability"].iloc[seeds].mean())
    assert frame.set_index("feature").loc["danceability", "input"] == pytest.approx(expected)
    fig = logic.profile_figure(frame)
    assert [trace.name for trace in fig.data] == ["input", "recommended"]
    assert len(fig.data[0].r) == len(frame) + 1  # closed polygon


def test_embed_url() -> None:
    assert (
        logic.embed_url("6rqhFgbbKwnb9MLmUQDhG6")
        == "https://open.spotify.com/embed/track/6rqhFgbbKwnb9MLmUQDhG6"
    )
    with pytest.raises(ValueError):
        logic.embed_url("<script>")


def test_model_options_order_and_availability(service: Service) -> None:
    options = logic.model_options(service)
    names = [o.name for o in options]
    assert names[:3] == ["hybrid", "model1", "model2"] and set(names) == set(MODELS)
    by_name = {o.name: o for o in options}
    assert (
        by_name[MODEL].available and not by_name["spotify"].available and by_name["spotify"].reason
    )
    assert options[logic.default_model_index(options)].name == MODEL  # hybrid is not built here
    assert logic.option_label(by_name["spotify"]).endswith("(off)")
    # Short enough for the sidebar's select box, which cuts longer text off.
    assert max(len(logic.option_label(o)) for o in options) <= 22
    # A hint names the home in use: this one is not the default home.
    assert f"`segue --home {service.home} fit --model hybrid`" in by_name["hybrid"].reason


def test_n_genres_variants_are_fitted_once_and_cached(
    service: Service, content_model: None
) -> None:
    # The tiny catalog has 4 genres; the built model keeps 3 of them.
    assert service.genre_setting("model1") == GenreSetting(current=3, vocabulary=4)
    assert service.genre_setting(MODEL) is None
    assert service.model("model1@n_genres=3") is service.model("model1")
    assert FakeContent.fits == []
    a = logic.recommend(
        service, logic.AppRequest(text="Rock Artist 0", model="model1", n_genres=2, n=3)
    )
    b = logic.recommend(
        service, logic.AppRequest(text="Rock Artist 0", model="model1", n_genres=2, n=3)
    )
    assert FakeContent.fits == [2]
    assert a.model == "model1@n_genres=2" and "2 genres" in (a.tracks[0].explanation or "")
    assert [t.id for t in a.tracks] == [t.id for t in b.tracks]
    for bad in ("model1@n_genres=x", "itemknn@n_genres=5", "model1@colour=5", "model1@n_genres=0"):
        with pytest.raises(ValueError):
            service.model(bad)


def test_genre_setting_of_a_model_that_keeps_every_genre() -> None:
    setting = GenreSetting(current=None, vocabulary=30)
    assert setting.effective == 30
    assert GenreSetting(current=50, vocabulary=30).effective == 30


def test_catalog_log_without_and_with_a_catalog(tmp_path: Path) -> None:
    missing = logic.catalog_log(tmp_path)
    assert missing.fetches.empty and "no catalog" in missing.message
    from segue.catalog import Catalog

    with Catalog.open(tmp_path / "catalog.duckdb"):
        pass
    log = logic.catalog_log(tmp_path)
    assert log.fetches.empty and log.added.empty and log.message == ""
    with Catalog.open(tmp_path / "catalog.duckdb") as catalog, catalog.transaction():
        catalog.log_fetch(
            "r1",
            "spotify",
            "track_facts",
            ["6rqhFgbbKwnb9MLmUQDhG6", "7ouMYWpwJ422jRcDASZB7P"],
            "ok",
        )
        catalog.log_fetch(
            "r1", "spotify", "artist_facts", ["0OdUWJ0sBjDrqHygGUXeCF"], "error", "HTTP 429"
        )
    log = logic.catalog_log(tmp_path)
    assert len(log.fetches) == 2 and set(log.fetches["status"]) == {"ok", "error"}
    assert log.added["ids"].tolist() == ["6rqhFgbbKwnb9MLmUQDhG6, 7ouMYWpwJ422jRcDASZB7P"]


def test_about_facts(service: Service) -> None:
    facts = logic.about_facts(service)
    assert facts["tracks"] == "40" and facts["playlists"] == "48" and MODEL in facts["models"]


# the Streamlit script -----------------------------------------------------------------------
@pytest.fixture
def app_home(built: tuple[Path, Snapshot], monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("SEGUE_HOME", str(built[0]))
    yield built[0]


def run_app() -> AppTest:
    at = AppTest.from_file(str(APP_SCRIPT), default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    return at


def texts(elements: Any) -> str:
    return "\n".join(str(e.value) for e in elements)


def test_app_recommends_for_a_playlist(app_home: Path, built: tuple[Path, Snapshot]) -> None:
    at = run_app()
    assert at.selectbox(key="model").value == MODEL
    ids = built[1].tracks["track_id"].iloc[10:15].tolist()  # half the rock cluster
    at.text_area(key="text").input("\n".join(f"spotify:track:{t}" for t in ids))
    at.slider(key="n").set_value(5)
    at.button(key="go").click()
    at.run()
    assert not at.exception and not at.error, texts(at.error)
    assert "5 tracks" in texts(at.subheader)
    shown = texts(at.markdown)
    assert shown.count("Rock Song") == 5 and "Chill Song" not in shown
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) == 5
    assert len(at.get("download_button")) == 3
    assert len(at.get("plotly_chart")) == 1


def test_app_search_and_pick(app_home: Path, built: tuple[Path, Snapshot]) -> None:
    tracks = built[1].tracks
    wanted = tracks.loc[tracks["name"] == "Country Song 33", "track_id"].iloc[0]
    at = run_app()
    at.text_input(key="query").input("country song 33").run()
    assert at.multiselect[0].options == ["Country Song 33 — Country Artist 1 (2013)"]
    at.multiselect[0].select(wanted)
    at.run()
    at.text_input(key="query").input("rap song 2").run()  # a new search keeps the pick
    assert at.multiselect[0].value == [wanted]
    assert len(at.multiselect[0].options) == 11
    at.button(key="go").click()
    at.run()
    assert not at.error, texts(at.error)
    assert "**1. Country Song" in texts(at.markdown)
    # The pick is confirmed by name.
    assert "Started from 1 track: “Country Song 33” by Country Artist 1." in texts(at.success)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("https://open.spotify.com/track/broken", "not a Spotify reference"),
        ("nothing by this name", "no seed track found"),
        ("", "nothing to start from"),
    ],
)
def test_app_shows_bad_input_as_a_plain_error(app_home: Path, text: str, words: str) -> None:
    at = run_app()
    at.text_area(key="text").input(text)
    at.button(key="go").click()
    at.run()
    assert not at.exception
    assert len(at.error) == 1 and words in at.error[0].value
    assert "Traceback" not in at.error[0].value


def test_app_shows_the_spotify_model_disabled_with_its_reason(
    app_home: Path, built: tuple[Path, Snapshot]
) -> None:
    at = run_app()
    reason = next(m["reason"] for m in Service(built[0]).models() if m["name"] == "spotify")
    assert "(off)" in at.selectbox(key="model").format_func("spotify")
    at.selectbox(key="model").set_value("spotify").run()
    assert not at.exception
    assert any(reason in w.value for w in at.sidebar.warning)
    assert at.button(key="go").disabled


def test_app_offers_n_genres_for_content_models_only(app_home: Path, content_model: None) -> None:
    at = run_app()
    at.selectbox(key="model").set_value(MODEL).run()
    assert not [s for s in at.sidebar.slider if s.label == "Number of genres"]
    assert "genres" not in texts(at.sidebar.caption).lower()  # no caption for a hidden control
    at.selectbox(key="model").set_value("model1").run()
    slider = next(s for s in at.sidebar.slider if s.label == "Number of genres")
    assert (slider.value, slider.max) == (3, 4)
    assert "uses 3 of the 4 genres" in texts(at.sidebar.caption)
    at.text_area(key="text").input("Chill Artist 1")
    at.button(key="go").click()
    at.run()
    assert "Model: Model 1: content\n" in texts(at.caption) + "\n" and FakeContent.fits == []
    slider = next(s for s in at.sidebar.slider if s.label == "Number of genres")
    slider.set_value(2)
    at.button(key="go").click()
    at.run()
    assert not at.error, texts(at.error)
    assert "Model: Model 1: content (n_genres=2)" in texts(at.caption)
    assert FakeContent.fits == [2]


def test_app_log_and_about_pages(app_home: Path) -> None:
    at = run_app()
    at.sidebar.radio(key="page").set_value("Log").run()
    assert not at.exception and at.title[0].value == "Log"
    assert "no catalog here yet" in texts(at.info)
    at.sidebar.radio(key="page").set_value("About").run()
    assert not at.exception and at.title[0].value == "About segue"
    table = at.table[0].value
    assert "40" in table.to_string()


def test_app_without_a_built_catalog_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEGUE_HOME", str(tmp_path / "nothing"))
    at = run_app()
    assert len(at.error) == 1
    assert f"`segue --home {tmp_path / 'nothing'} fit`" in at.error[0].value  # the home shown
    assert "segue demo" in texts(at.info)


def test_the_app_command_runs_streamlit_on_loopback_by_default() -> None:
    from typer.testing import CliRunner

    from segue.cli import _registry, app
    from segue.cli.serve import streamlit_command

    command = streamlit_command(host="127.0.0.1", port=8601)
    assert command[1:5] == ["-m", "streamlit", "run", str(APP_SCRIPT)]
    options = dict(zip(command[5::2], command[6::2], strict=True))
    assert options["--server.address"] == "127.0.0.1" and options["--server.port"] == "8601"
    # Streamlit's prompts and notices are off whatever its config files say.
    assert (
        options["--server.headless"] == "true" and options["--browser.gatherUsageStats"] == "false"
    )
    assert options["--server.showEmailPrompt"] == "false"
    assert options["--logger.hideWelcomeMessage"] == "true"
    _registry.register_all(app)
    for name in ("app", "demo"):
        result = CliRunner().invoke(app, [name, "--help"])
        assert result.exit_code == 0 and "--port" in result.output


# the app's words ------------------------------------------------------------------------------
def test_reasons_are_sentences_for_a_listener(service: Service) -> None:
    rec = logic.recommend(service, logic.AppRequest(text="Rap Artist 0", model=MODEL, n=4))
    reasons = logic.listener_reasons(service, rec)
    assert len(reasons) == 4
    # An artist seed: the other artist of its cluster, played with the seed artist's songs.
    top = reasons[0]
    assert re.fullmatch(
        r"Often played with “Rap Song \d+” and “Rap Song \d+” by Rap Artist 0; "
        r"same genre as your tracks: rap\.",
        top,
    ), top
    # The model's own detail is kept for the command line and the API.
    assert rec.tracks[0].explanation and "from your seeds" in rec.tracks[0].explanation
    snap = service.snapshot
    by = snap.tracks.groupby("artist_name")["track_id"].apply(list)
    picked = [*by["Rock Artist 0"][:4], by["Rock Artist 1"][0]]
    rec = logic.recommend(
        service,
        logic.AppRequest(text="\n".join(f"spotify:track:{t}" for t in picked), model=MODEL, n=6),
    )
    reasons = logic.listener_reasons(service, rec)
    same_artist = [
        r for t, r in zip(rec.tracks, reasons, strict=True) if t.artists == ["Rock Artist 0"]
    ]
    assert same_artist and all("same artist as 4 of your tracks" in r for r in same_artist)
    assert all(" from your playlist" in r for r in reasons if r.startswith("Often played"))
    assert logic.seed_summary(rec).startswith("Started from 5 tracks: “Rock Song")
    assert logic.seed_summary(rec).endswith(" and 2 more.")
    frame = logic.results_frame(rec, reasons)
    assert frame["reason"].tolist() == reasons and frame["why"].str.len().gt(0).all()


def test_csv_download_has_the_popularity_json_has(service: Service) -> None:
    rec = logic.recommend(service, logic.AppRequest(text="Chill Artist 0", model=MODEL, n=3))
    files = {e.label: e for e in logic.exports(rec)}
    rows = list(csv.DictReader(io.StringIO(files["CSV"].data)))
    from_json = [d["popularity"] for d in json.loads(files["JSON"].data)]
    assert [float(r["popularity"]) for r in rows] == from_json and None not in from_json


def test_one_bad_line_of_an_uploaded_list_is_reported_and_the_rest_kept(
    service: Service, built: tuple[Path, Snapshot]
) -> None:
    good = [f"https://open.spotify.com/track/{t}" for t in built[1].tracks["track_id"].iloc[20:24]]
    text = "\n".join([good[0], "https://open.spotify.com/track/broken", *good[1:]])
    req = logic.AppRequest(upload=logic.Upload("my list.txt", text.encode()), model=MODEL, n=3)
    rec = logic.recommend(service, req)
    assert len(rec.seeds) == 4 and len(rec.tracks) == 3
    said = "\n".join(rec.messages)
    assert "my list.txt, line 2: left out (not a Spotify reference" in said
    assert "my list.txt: 4 tracks, 4 known" in said
    assert "/tmp" not in said and "_.txt" not in said


def test_an_uploaded_csv_keeps_no_file_name_as_title_and_errors_name_no_server_path(
    service: Service, built: tuple[Path, Snapshot], tmp_path: Path
) -> None:
    ids = built[1].tracks["track_id"].iloc[0:3].tolist()
    body = "Track URI,Track Name\n" + "".join(f"spotify:track:{t},x\n" for t in ids)
    req = logic.AppRequest(upload=logic.Upload("Summer Mix.csv", body.encode()), model=MODEL, n=3)
    rec = logic.recommend(service, req, workdir=tmp_path)
    assert rec.title is None
    assert any("Summer Mix.csv: 3 tracks, 3 known" in m for m in rec.messages), rec.messages
    titled = logic.recommend(service, dataclasses.replace(req, title="road trip"), workdir=tmp_path)
    assert titled.title == "road trip"
    for data in (b"[not json", b"\xff\xfe", b"", b"Track URI,Name\nspotify:track:x,y\n" * 60):
        bad = logic.AppRequest(upload=logic.Upload("list.json", data), model=MODEL)
        with pytest.raises(ValueError) as caught:
            logic.recommend(service, bad, workdir=tmp_path)
        message = str(caught.value)
        assert message.startswith("list.json"), message
        assert str(tmp_path) not in message and "/tmp" not in message and "<input>" not in message


def test_the_log_names_where_the_demo_tracks_come_from(tmp_path: Path) -> None:
    from segue.catalog.bundled import ensure_demo_catalog

    ensure_demo_catalog(tmp_path)
    entry = logic.catalog_log(tmp_path)
    assert "TidyTuesday Spotify songs table" in entry.message
    assert "28,352 tracks" in entry.message and "Nothing was fetched from the web" in entry.message
    assert entry.added.empty  # the bundled tracks are not additions


def test_app_explains_in_sentences_and_confirms_the_seed(
    app_home: Path, built: tuple[Path, Snapshot]
) -> None:
    wanted = built[1].tracks["track_id"].iloc[12]
    at = run_app()
    at.text_area(key="text").input(f"https://open.spotify.com/track/{wanted}")
    at.slider(key="n").set_value(3)
    at.button(key="go").click()
    at.run()
    assert not at.exception and not at.error, texts(at.error)
    name = built[1].tracks["name"].iloc[12]
    assert f"Started from 1 track: “{name}” by Rock Artist 0." in texts(at.success)
    captions = texts(at.caption)
    assert captions.count("Often played with “Rock Song") == 3, captions
    assert "`model1`: score" not in captions and "rank" not in captions  # detail stays hidden
    # The players stay off until the page says it reaches Spotify (AppTest has no browser).
    assert "Spotify players are off" in captions and not at.get("iframe")
    at.toggle(key="detail").set_value(True).run()
    assert texts(at.caption).count("`model1`: score") == 3


def test_search_does_not_say_no_match_once_its_matches_are_picked(
    app_home: Path, built: tuple[Path, Snapshot]
) -> None:
    tracks = built[1].tracks
    wanted = tracks.loc[tracks["name"] == "Country Song 33", "track_id"].iloc[0]
    at = run_app()
    at.text_input(key="query").input("country song 33").run()
    at.multiselect[0].select(wanted)
    at.run()
    assert "No track or artist matches" not in texts(at.caption)
    assert "Every match for 'country song 33' is picked." in texts(at.caption)
    at.text_input(key="query").input("zzz nothing").run()
    assert "No track or artist matches 'zzz nothing'." in texts(at.caption)
    assert at.multiselect[0].value == [wanted]


def test_app_hints_name_the_home_in_use(app_home: Path) -> None:
    at = run_app()
    at.selectbox(key="model").set_value("hybrid").run()
    warning = texts(at.sidebar.warning)
    assert f"`segue --home {app_home} fit --model hybrid`" in warning, warning


def test_serve_and_app_on_an_empty_home_say_what_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from segue.cli.serve import nothing_built_hint

    monkeypatch.delenv("SEGUE_HOME", raising=False)
    hint = nothing_built_hint(Home(tmp_path / "empty"), "segue serve")
    assert hint is not None
    assert f"`segue --home {tmp_path / 'empty'} ingest <MPD slices>`" in hint
    assert "`segue serve --demo`" in hint
    monkeypatch.setenv("SEGUE_HOME", str(tmp_path / "empty"))  # the shell already says where
    hint = nothing_built_hint(Home.resolve(None), "segue app")
    assert "`segue ingest <MPD slices>`" in (hint or "")
    (tmp_path / "built" / "artifacts" / "snapshot").mkdir(parents=True)
    assert nothing_built_hint(Home(tmp_path / "built"), "segue serve") is None


# the page shown while `segue demo` builds the demo -------------------------------------------
def test_the_demo_build_page_shows_progress_then_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from segue.fitting.demo import STATUS_ENV, BuildProgress, read_status

    monkeypatch.setenv("SEGUE_HOME", str(tmp_path))
    progress = BuildProgress(tmp_path / "status.json", ["demo catalog", "fitting hybrid"])
    progress.step("fitting hybrid: ranker")
    progress.log("snapshot: 471 playlists")
    monkeypatch.setenv(STATUS_ENV, str(progress.path))
    at = run_app()
    assert "Building the demo catalog" in texts(at.subheader)
    assert "step 2 of 2: fitting hybrid: ranker" in at.get("progress")[0].proto.text
    assert not at.sidebar.radio  # the app itself waits for the build
    progress.finish("failed", "the disk is full (kept the demo catalog)")
    at = run_app()
    assert "could not be built: the disk is full" in texts(at.error)
    status = read_status(progress.path)
    assert (
        status is not None
        and status.state == "failed"
        and status.log == ["snapshot: 471 playlists"]
    )
    progress.finish("ready")
    assert read_status(progress.path).fraction == 1.0  # type: ignore[union-attr]


def test_a_build_status_whose_builder_is_gone_says_so(tmp_path: Path) -> None:
    import json

    from segue.fitting.demo import read_status

    path = tmp_path / "status.json"
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    path.write_text(json.dumps({"state": "building", "pid": int(gone.stdout)}))
    status = read_status(path)
    assert status is not None and status.builder_gone()
    path.write_text("{half")
    assert read_status(path) is None


def test_a_failed_demo_build_says_why_in_the_terminal_and_on_the_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from segue.cli import serve
    from segue.fitting import demo
    from segue.fitting.demo import BuildProgress, read_status

    def full_disk(home: Path, **kwargs: Any) -> None:
        kwargs["log"]("building the demo catalog in the test's home (first run only)")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(demo, "build_demo", full_disk)
    progress = BuildProgress(demo.status_path(tmp_path), demo.build_steps(tmp_path))
    url = "http://127.0.0.1:8501"
    built = serve._build_demo_behind(progress, url, "segue demo", stopped=lambda: False)
    assert built is False
    status = read_status(progress.path)
    assert status is not None and status.state == "failed"
    assert "No space left on device" in status.message
    assert "nothing was kept" in status.message
    assert status.log == ["building the demo catalog in the test's home (first run only)"]
    said = capsys.readouterr().err
    assert "error: the demo catalog cannot be set up: [Errno 28] No space left" in said
    assert "run `segue demo` again to continue" in said and url in said
    assert "Traceback" not in said

    # An error once Ctrl+C came (DuckDB turns the interrupt into its own) is an interruption.
    def interrupted(home: Path, **kwargs: Any) -> None:
        raise RuntimeError("Query interrupted")

    monkeypatch.setattr(demo, "build_demo", interrupted)
    progress = BuildProgress(demo.status_path(tmp_path), demo.build_steps(tmp_path))
    with pytest.raises(KeyboardInterrupt):
        serve._build_demo_behind(progress, url, "segue demo", stopped=lambda: True)
    status = read_status(progress.path)
    assert status is not None and status.state == "interrupted"
    assert status.message == (
        "the demo build stopped: nothing was kept (the demo catalog was not finished); "
        "run `segue demo` again to continue"
    )
