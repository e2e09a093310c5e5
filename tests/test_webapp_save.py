"""The web app's "Save to Spotify" button and the About page's sources, through AppTest, against
the fake Spotify accounts service and Web API on 127.0.0.1."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from segue.snapshot.arrays import Snapshot
from segue.webapp import APP_SCRIPT, logic
from tests._serving_home import build_home
from tests.fake_spotify_user import NOT_REGISTERED, FakeSpotifyUser
from tests.test_spotify_save import _login

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:altair.*")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Snapshot]:
    home = tmp_path_factory.mktemp("webapp-save") / "home"
    return home, build_home(home)


@pytest.fixture
def fake(
    built: tuple[Path, Snapshot], monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeSpotifyUser]:
    monkeypatch.setenv("SEGUE_HOME", str(built[0]))
    monkeypatch.delenv("SEGUE_SPOTIFY_YAML", raising=False)
    with FakeSpotifyUser() as server:
        for key, value in server.env().items():
            monkeypatch.setenv(key, value)
        yield server
    (built[0] / "spotify-user-token.json").unlink(missing_ok=True)


def texts(elements: Any) -> str:
    return "\n".join(str(e.value) for e in elements)


def _recommend(built: tuple[Path, Snapshot]) -> AppTest:
    at = AppTest.from_file(str(APP_SCRIPT), default_timeout=30)
    at.run()
    ids = built[1].tracks["track_id"].iloc[10:15].tolist()
    at.text_area(key="text").input("\n".join(f"spotify:track:{t}" for t in ids))
    at.slider(key="n").set_value(5)
    at.button(key="go").click()
    at.run()
    assert not at.exception and not at.error, texts(at.error)
    return at


def test_save_button_creates_the_playlist(fake, built):
    _login(fake)
    at = _recommend(built)
    at.text_input(key="save_name").input("Rock from segue")
    at.button(key="save_spotify").click()
    at.run()
    assert not at.exception and not at.error, texts(at.error)
    assert "Saved 5 tracks to “Rock from segue”" in texts(at.success)
    (playlist,) = fake.playlists.values()
    assert playlist["name"] == "Rock from segue" and len(playlist["uris"]) == 5


def test_save_button_says_what_to_do(fake, built):
    at = _recommend(built)
    at.button(key="save_spotify").click()
    at.run()
    assert re.search(r"`segue (--home \S+ )?login`", texts(at.error)), texts(at.error)
    _login(fake, user="bob")  # not on the app's allow-list
    at.button(key="save_spotify").click()
    at.run()
    assert NOT_REGISTERED in texts(at.error) and "User Management" in texts(at.error)
    assert not fake.playlists


def test_about_page_names_the_sources(fake, built):
    from segue.catalog import Catalog
    from segue.catalog.ingest import ingest_paths
    from segue.core.records import ArtistFacts
    from tests.fake_open_sources import catalog_world
    from tests.fake_spotify import write_mpd_slice

    home = built[0]
    assert logic.catalog_sources(home) == {}  # no catalog: the section is left out
    world, _ = catalog_world()
    slice_file = write_mpd_slice(world, home.parent / "sources-slice.json", n_playlists=2)
    try:
        with Catalog.open(home / "catalog.duckdb") as catalog:
            ingest_paths(catalog, [str(slice_file)], progress=False)
            aid = next(iter(world.artists))
            catalog.upsert_facts(
                artists=[
                    ArtistFacts(aid, world.artists[aid]["name"], ["r&b"], source="musicbrainz")
                ]
            )
        assert logic.catalog_sources(home) == {
            "tracks from": "mpd 8",
            "artist genres from": "musicbrainz 1",
        }
        at = AppTest.from_file(str(APP_SCRIPT), default_timeout=30)
        at.run()
        at.sidebar.radio(key="page").set_value("About").run()
        assert not at.exception
        assert "Sources that filled it" in texts(at.subheader)
        assert "musicbrainz 1" in at.table[1].value.to_string()
    finally:
        (home / "catalog.duckdb").unlink(missing_ok=True)
