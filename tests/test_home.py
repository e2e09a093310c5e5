"""The home as a value: its layout, the order it is looked up in, and two homes in one process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from segue.catalog import Catalog
from segue.catalog.ingest import ingest_paths
from segue.cli import app
from segue.cli._registry import register_all
from segue.core import artifacts
from segue.core.errors import HomeError
from segue.core.home import Home, default_root
from segue.fitting.build import build
from segue.service.engine import Service
from tests.conftest import make_playlists, write_slice

register_all(app)


def test_layout_is_under_the_root(tmp_path: Path) -> None:
    home = Home(tmp_path / "h")
    assert home.catalog == tmp_path / "h" / "catalog.duckdb"
    assert home.artifacts == tmp_path / "h" / "artifacts" == artifacts.artifacts_root(home.root)
    assert home.logs == tmp_path / "h" / "logs"
    assert home.cache == tmp_path / "h" / "cache"
    assert home.lake == tmp_path / "h" / "lake"
    assert home.settings == tmp_path / "h" / "Spotify.yaml"
    assert home.token == tmp_path / "h" / "spotify-user-token.json"
    assert os.fspath(home) == str(tmp_path / "h") == str(home)
    assert not (tmp_path / "h").exists()  # a Home touches nothing until ensured
    assert home.ensure() is home and (tmp_path / "h").is_dir()
    assert Home.of(tmp_path / "h") == home and Home.of(home) is home


def test_ensure_refuses_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(HomeError, match="not a folder"):
        Home(tmp_path / "file").ensure()


def test_resolve_order_flag_then_env_then_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SEGUE_HOME", raising=False)
    assert Home.resolve(None).root == default_root()
    monkeypatch.setenv("SEGUE_HOME", str(tmp_path / "env"))
    assert Home.resolve(None).root == tmp_path / "env"
    assert Home.resolve(tmp_path / "flag").root == tmp_path / "flag"
    assert Home.resolve(tmp_path / "env").option() == ""  # the one a bare `segue` uses
    assert Home.resolve(tmp_path / "flag").option() == f"--home {tmp_path / 'flag'} "


def test_demo_home_follows_its_home_or_the_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SEGUE_DEMO_HOME", raising=False)
    assert Home(tmp_path / "a").demo == Home(tmp_path / "a" / "demo")
    monkeypatch.setenv("SEGUE_DEMO_HOME", str(tmp_path / "d"))
    assert Home(tmp_path / "a").demo == Home(tmp_path / "d")


def _built(root: Path, n: int, seed: int) -> tuple[Home, list[dict]]:
    playlists = make_playlists(n, seed=seed)
    write_slice(root / "slices" / f"mpd.slice.0-{n - 1}.json", playlists)
    home = Home(root / "home").ensure()
    with Catalog.open(home.catalog) as catalog:
        ingest_paths(catalog, [root / "slices"], progress=False)
    build(["popularity"], home=home, log=lambda m: None)
    return home, playlists


def test_two_homes_in_one_process_answer_from_their_own_data(tmp_path: Path) -> None:
    home_a, lists_a = _built(tmp_path / "a", 40, seed=1)
    home_b, lists_b = _built(tmp_path / "b", 90, seed=2)
    a, b = Service(home_a, grow=False), Service(home_b, grow=False)
    assert a.snapshot.n_playlists == 40 and b.snapshot.n_playlists == 90
    assert a.generation().root.is_relative_to(home_a.root)
    assert b.generation().root.is_relative_to(home_b.root)
    known_a = set(a.snapshot.tracks["track_id"])
    known_b = set(b.snapshot.tracks["track_id"])
    seed_a = lists_a[0]["tracks"][0]["track_uri"]
    seed_b = lists_b[0]["tracks"][0]["track_uri"]
    got_a = a.recommend([seed_a], n=5, model="popularity", explain=False).tracks
    got_b = b.recommend([seed_b], n=5, model="popularity", explain=False).tracks
    assert got_a and {t.id for t in got_a} <= known_a
    assert got_b and {t.id for t in got_b} <= known_b


def test_the_cli_home_flag_reaches_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEGUE_HOME", str(tmp_path / "env"))
    home, _ = _built(tmp_path / "flag", 30, seed=5)
    result = CliRunner().invoke(app, ["--home", str(home.root), "stats", "--json"])
    assert result.exit_code == 0, result.output
    assert '"playlists": 30' in result.stdout
    assert not (tmp_path / "env").exists()  # the environment's home was never touched
