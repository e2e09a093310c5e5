"""segue.formats.synth: MPD-format synthetic slices (schema, determinism, shape) and ``segue synth``."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import typer
from typer.testing import CliRunner

from segue.formats import mpd, synth
from tests.conftest import SHARED_DATA

REAL_FIRST29 = SHARED_DATA / "mpd" / "mpd.slice.0-999.first29.json"

PLAYLIST_KEYS = [
    "name", "collaborative", "pid", "modified_at", "num_tracks", "num_albums", "num_followers",
    "tracks", "num_edits", "duration_ms", "num_artists",
]  # fmt: skip
TRACK_KEYS = [
    "pos", "artist_name", "track_uri", "artist_uri", "track_name", "album_uri", "duration_ms",
    "album_name",
]  # fmt: skip
URI = {
    kind: re.compile(rf"spotify:{kind}:[0-9A-Za-z]{{22}}") for kind in ("track", "artist", "album")
}


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """1,200 playlists from pid 5,000 over a 6,000-track catalog: two slices."""
    out = tmp_path_factory.mktemp("synth")
    return synth.generate(1_200, out, seed=7, n_tracks=6_000, start_pid=5_000)


def _playlists(paths: list[Path]) -> list[dict[str, Any]]:
    return [p for path in paths for p in orjson.loads(path.read_bytes())["playlists"]]


# schema and counts ---------------------------------------------------------------------------


def test_files_are_named_and_filled_like_mpd_slices(written: list[Path]) -> None:
    assert [p.name for p in written] == ["mpd.slice.5000-5999.json", "mpd.slice.6000-6199.json"]
    for path, (first, last) in zip(written, [(5000, 5999), (6000, 6199)], strict=True):
        doc = orjson.loads(path.read_bytes())
        assert list(doc) == ["info", "playlists"]
        assert doc["info"]["slice"] == f"{first}-{last}"
        assert doc["info"]["version"] == "v1"
        assert [p["pid"] for p in doc["playlists"]] == list(range(first, last + 1))
    assert not list(written[0].parent.glob("*.tmp"))


def test_every_file_passes_the_mpd_reader(written: list[Path]) -> None:
    total = 0
    for path in written:
        cols = mpd.read_slice(path)
        assert cols.n_playlists in (1000, 200)
        for column in ("track_id", "artist_id", "album_id", "album_name", "duration_ms"):
            assert cols.rows.column(column).null_count == 0, column
        for column in ("collaborative", "num_albums", "num_artists", "num_edits"):
            assert cols.playlists.column(column).null_count == 0, column
        assert cols.n_rows == sum(cols.playlists.column("num_tracks").to_pylist())
        total += cols.n_playlists
    assert total == 1_200


def test_full_official_schema(written: list[Path]) -> None:
    for pl in _playlists(written):
        keys = list(pl)
        assert keys[: len(PLAYLIST_KEYS)] == PLAYLIST_KEYS
        assert keys[len(PLAYLIST_KEYS) :] in ([], ["description"])
        assert pl["collaborative"] in ("true", "false")
        tracks = pl["tracks"]
        assert pl["num_tracks"] == len(tracks)
        assert [t["pos"] for t in tracks] == list(range(len(tracks)))
        assert pl["num_artists"] == len({t["artist_uri"] for t in tracks})
        assert pl["num_albums"] == len({t["album_uri"] for t in tracks})
        assert pl["duration_ms"] == sum(t["duration_ms"] for t in tracks)
        assert pl["num_followers"] >= 1 and pl["num_edits"] >= 1
        assert 1_262_304_000 <= pl["modified_at"] <= 1_509_494_400
        assert pl["modified_at"] % 86_400 == 0
        assert pl["name"].strip() or pl["name"] == ""
        for t in tracks:
            assert list(t) == TRACK_KEYS
            for kind in ("track", "artist", "album"):
                assert URI[kind].fullmatch(t[f"{kind}_uri"]), t
            assert t["track_name"] and t["artist_name"] and t["album_name"]
            assert 30_000 <= t["duration_ms"] <= 1_200_000


@pytest.mark.realdata
def test_same_keys_as_the_real_full_schema_file(written: list[Path]) -> None:
    if not REAL_FIRST29.exists():
        pytest.skip(f"{REAL_FIRST29} is not here")
    real = orjson.loads(REAL_FIRST29.read_bytes())
    ours = orjson.loads(written[0].read_bytes())
    assert list(ours["info"]) == list(real["info"])
    assert list(ours["playlists"][0]) == list(real["playlists"][0])  # no description on either
    assert list(ours["playlists"][0]["tracks"][0]) == list(real["playlists"][0]["tracks"][0])


def test_a_track_has_the_same_facts_everywhere(written: list[Path]) -> None:
    facts: dict[str, tuple[Any, ...]] = {}
    album_artist: dict[str, set[str]] = {}
    for pl in _playlists(written):
        for t in pl["tracks"]:
            fact = (
                t["track_name"],
                t["artist_uri"],
                t["artist_name"],
                t["album_uri"],
                t["duration_ms"],
            )
            assert facts.setdefault(t["track_uri"], fact) == fact
            album_artist.setdefault(t["album_uri"], set()).add(t["artist_uri"])
    assert all(len(a) == 1 for a in album_artist.values())  # albums belong to one artist
    artists = {f[1] for f in facts.values()}
    albums = {f[3] for f in facts.values()}
    assert len(artists) < len(albums) < len(facts)  # artists with albums with tracks


def test_ids_are_distinct_base62() -> None:
    key = synth._kind_key(0, 1)
    ids = synth.base62_ids(np.arange(200_000), key)
    assert len(set(ids)) == 200_000
    assert all(len(i) == 22 and i.isalnum() and i.isascii() for i in ids[:1000])
    assert synth.base62_ids(np.array([5, 6]), key) == ids[5:7]
    assert synth.base62_ids(np.arange(5), synth._kind_key(1, 1)) != ids[:5]


# determinism ---------------------------------------------------------------------------------


def test_same_arguments_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    a = synth.generate(1_050, tmp_path / "a", seed=3, n_tracks=3_000)
    b = synth.generate(1_050, tmp_path / "b", seed=3, n_tracks=3_000)
    c = synth.generate(1_050, tmp_path / "c", seed=4, n_tracks=3_000)
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    for pa, pc in zip(a, c, strict=True):
        assert pa.read_bytes() != pc.read_bytes()
    assert synth.make_playlists(1_050, 3, n_tracks=3_000) == _playlists(a)


def test_a_slice_does_not_depend_on_the_run_it_is_in(tmp_path: Path) -> None:
    whole = synth.generate(2_000, tmp_path / "whole", seed=1, n_tracks=4_000)
    part = synth.generate(1_000, tmp_path / "part", seed=1, n_tracks=4_000, start_pid=1_000)
    assert part[0].name == whole[1].name
    assert part[0].read_bytes() == whole[1].read_bytes()


# shape ---------------------------------------------------------------------------------------


def test_length_distribution_is_mpd_shaped() -> None:
    pmf = synth.length_pmf()
    lengths = np.arange(synth.MIN_LENGTH, synth.MAX_LENGTH + 1)
    assert pmf.shape == (246,) and abs(pmf.sum() - 1) < 1e-12
    assert abs(pmf @ lengths - 66.346428) < 0.01
    # flat between 12 and 30 (the MPD's top of the histogram), then decaying
    assert pmf[12 - 5 : 31 - 5].max() / pmf[12 - 5 : 31 - 5].min() < 1.01
    assert pmf[20 - 5] > pmf[60 - 5] > pmf[150 - 5] > pmf[250 - 5] > 0
    drawn = np.array([p["num_tracks"] for p in synth.make_playlists(2_000, 11, n_tracks=2_000)])
    assert drawn.min() >= 5 and drawn.max() <= 250
    assert 60 < drawn.mean() < 73


def test_popularity_is_skewed() -> None:
    plays = Counter(t["track_uri"] for p in synth.make_playlists(3_000, 2) for t in p["tracks"])
    counts = np.sort(np.fromiter(plays.values(), dtype=np.int64))[::-1]
    top = counts[: len(counts) // 100].sum() / counts.sum()
    assert top > 0.1, top  # the top 1% of tracks take > 10% of rows (1% if uniform)
    assert (counts == 1).mean() > 0.3  # and a long tail of tracks seen once


def test_catalog_size_grows_like_the_mpd() -> None:
    sizes = [synth.default_catalog_size(n) for n in (1, 1_000, 10_000, 100_000, 1_000_000)]
    assert sizes == sorted(sizes)
    assert sizes[-1] == synth.CATALOG_TRACKS_AT_1M
    # expected distinct tracks drawn = sum(1 - exp(-rows * p)): ~150k at 10k playlists
    catalog = synth.SynthCatalog.build(sizes[2], 0)
    expected = np.sum(1 - np.exp(-10_000 * synth.MPD_ROWS_PER_PLAYLIST * catalog.track_probability))
    assert 140_000 < expected < 160_000


@pytest.mark.slow
def test_full_scale_catalog_draws_the_mpd_track_count() -> None:
    catalog = synth.SynthCatalog.build(synth.default_catalog_size(1_000_000), 0)
    rows = 1_000_000 * synth.MPD_ROWS_PER_PLAYLIST
    expected = np.sum(1 - np.exp(-rows * catalog.track_probability))
    assert abs(expected - 2_262_292) / 2_262_292 < 0.02
    assert 250_000 < catalog.n_artists < 400_000
    assert 600_000 < catalog.n_albums < 900_000


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b)


def test_playlists_of_one_taste_share_tracks_and_titles() -> None:
    playlists = synth.make_playlists(3_000, 5, n_tracks=20_000)
    by_title: dict[str, list[set[str]]] = {}
    for p in playlists:
        by_title.setdefault(p["name"].strip().lower(), []).append(
            {t["artist_uri"] for t in p["tracks"]}
        )
    rap, country = by_title["rap"][:60], by_title["country"][:60]
    assert len(rap) >= 30 and len(country) >= 30
    within = np.mean(
        [_jaccard(a, b) for group in (rap, country) for a, b in itertools.combinations(group, 2)]
    )
    across = np.mean([_jaccard(a, b) for a in rap for b in country])
    assert within > 3 * across, (within, across)


def test_titles_and_descriptions_look_like_the_mpd() -> None:
    playlists = synth.make_playlists(4_000, 9, n_tracks=2_000)
    titles = Counter(p["name"].strip().lower() for p in playlists)
    top = [t for t, _ in titles.most_common(12)]
    assert {"rap", "pop", "country", "chill"} <= set(top)
    assert any(ord(ch) > 0x2000 for t in titles for ch in t)  # emojis occasionally
    assert 0.005 < np.mean(["description" in p for p in playlists]) < 0.04
    assert 0.01 < np.mean([p["collaborative"] == "true" for p in playlists]) < 0.04
    followers = np.array([p["num_followers"] for p in playlists])
    assert 0.7 < np.mean(followers == 1) < 0.8 and followers.max() > 20


# errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"n_playlists": 0}, ValueError, "n_playlists must be at least 1, got 0"),
        ({"n_playlists": "5"}, TypeError, "n_playlists must be an int, got str"),
        ({"n_playlists": 5, "n_tracks": 3}, ValueError, "n_tracks must be at least 20, got 3"),
        ({"n_playlists": 5, "seed": -1}, ValueError, "seed must be a non-negative int, got -1"),
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict[str, Any], error: type, message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        synth.generate(out_dir=tmp_path, **kwargs)
    assert not list(tmp_path.iterdir())


def test_out_dir_must_be_a_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match="out_dir must be a folder"):
        synth.generate(5, blocker)


# CLI -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    from segue.cli import _registry, app

    _registry.register_all(app)
    return app


def test_cli_writes_slices(app: typer.Typer, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["synth", "--playlists", "1500", "--out", str(out), "--seed", "2", "--tracks", "5000"]
    result = CliRunner().invoke(app, [*args, "-q"])
    assert result.exit_code == 0, result.output
    assert "wrote 2 slice file(s)" in result.stdout and "1,500 playlists" in result.stdout
    assert sorted(p.name for p in out.iterdir()) == [
        "mpd.slice.0-999.json",
        "mpd.slice.1000-1499.json",
    ]
    api = synth.generate(1_500, tmp_path / "api", seed=2, n_tracks=5_000)
    assert (out / api[1].name).read_bytes() == api[1].read_bytes()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--playlists", "0"], "error: --playlists must be at least 1, got 0\n"),
        (["--playlists", "5", "--tracks", "10"], "error: --tracks must be at least 20, got 10\n"),
        (
            ["--playlists", "5", "--seed", "-3"],
            "error: --seed must be a non-negative integer, got -3\n",
        ),
    ],
)
def test_cli_bad_arguments(app: typer.Typer, tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["synth", *args, "--out", str(out)])
    assert result.exit_code == 1
    assert result.stderr == message
    assert result.stdout == ""
    assert not out.exists()


def test_cli_needs_its_options(app: typer.Typer, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["synth", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "--playlists" in result.stderr
