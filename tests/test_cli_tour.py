"""The README's tour, section 2, run for real through the CLI on generated MPD slices:
ingest -> stats -> import-features -> fit -> models -> recommend in every format."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from segue.cli import app
from segue.cli._registry import register_all
from tests.conftest import make_playlists, write_slice

register_all(app)
runner = CliRunner()


@pytest.fixture(scope="module")
def built_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    root = tmp_path_factory.mktemp("tour")
    home = root / "home"
    pls = make_playlists(150, seed=11)
    write_slice(root / "mpd" / "mpd.slice.0-149.json", pls)

    def run(*args: str) -> str:
        result = runner.invoke(app, ["--home", str(home), *args])
        assert result.exit_code == 0, f"segue {' '.join(args)}\n{result.output}"
        return result.stdout

    assert "ingested 1 file(s): 150 playlists" in run("ingest", "-q", str(root / "mpd"))
    assert "number of playlists 150" in run("stats")
    table = root / "tracks.csv"
    first = pls[0]["tracks"][0]
    table.write_text(
        "track_uri,danceability,energy,artist_genres\n"
        f"{first['track_uri']},0.5,0.7,\"['indie pop']\"\n"
    )
    run("import-features", str(table))
    run(
        "fit",
        "--model",
        "popularity",
        "--model",
        "itemknn",
        "--model",
        "model2",
        "--model",
        "title",
    )
    return home, pls


def invoke(home: Path, *args: str):
    return runner.invoke(app, ["--home", str(home), *args])


def test_models_lists_what_is_built(built_home: tuple[Path, list[dict]]) -> None:
    out = invoke(built_home[0], "models").stdout
    assert "itemknn     ready" in out
    assert "hybrid      (default) unavailable: not built yet: run `segue fit --model hybrid`" in out


@pytest.mark.parametrize("fmt", ["json", "csv", "m3u", "table"])
def test_recommend_formats(built_home: tuple[Path, list[dict]], fmt: str) -> None:
    home, pls = built_home
    seeds = [t["track_uri"] for t in pls[0]["tracks"][:3]]
    result = invoke(home, "recommend", *seeds, "--model", "itemknn", "-n", "7", "--format", fmt)
    assert result.exit_code == 0, result.output
    out = result.stdout
    if fmt == "json":
        rows = json.loads(out)
        assert len(rows) == 7
        assert {"uri", "name", "artists", "score", "explanation"} <= set(rows[0])
        assert not set(seeds) & {r["uri"] for r in rows}
        scores = [r["score"] for r in rows]
        assert scores == sorted(scores, reverse=True)
    elif fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(out)))
        assert (
            len(rows) == 7
            and rows[0]["rank"] == "1"
            and rows[0]["uri"].startswith("spotify:track:")
        )
    elif fmt == "m3u":
        lines = out.splitlines()
        assert lines[0] == "#EXTM3U" and len(lines) == 1 + 2 * 7
        assert lines[2].startswith("https://open.spotify.com/track/")
    else:
        assert "itemknn: 7 tracks" in out


def test_recommend_from_an_exportify_csv_and_a_title(
    built_home: tuple[Path, list[dict]], tmp_path: Path
) -> None:
    home, pls = built_home
    export = tmp_path / "my-playlist.csv"
    export.write_text(
        "Track URI,Track Name,Artist Name(s)\n"
        + "".join(
            f"{t['track_uri']},{t['track_name']},{t['artist_name']}\n" for t in pls[1]["tracks"][:4]
        )
    )
    result = invoke(
        home, "recommend", str(export), "-n", "5", "--model", "model2", "--format", "json"
    )
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) == 5
    result = invoke(
        home, "recommend", "--title", "Workout", "--model", "title", "-n", "5", "--format", "json"
    )
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) == 5


def test_recommend_filters(built_home: tuple[Path, list[dict]]) -> None:
    home, pls = built_home
    seed = pls[0]["tracks"][0]["track_uri"]
    result = invoke(
        home,
        "recommend",
        seed,
        "--model",
        "popularity",
        "-n",
        "20",
        "--format",
        "json",
        "--exclude-artist",
        "Artist 1",
        "--max-per-artist",
        "2",
    )
    rows = json.loads(result.stdout)
    artists = [r["artists"][0] for r in rows]
    assert "Artist 1" not in artists
    assert max(artists.count(a) for a in set(artists)) <= 2


def test_recommend_bad_input_is_one_plain_line(built_home: tuple[Path, list[dict]]) -> None:
    home, _ = built_home
    result = invoke(home, "recommend", "spotify:track:123", "--model", "popularity")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: not a Spotify reference: 'spotify:track:123'")
    assert "Traceback" not in result.output
    result = invoke(home, "recommend", "x", "--model", "nope")
    assert result.exit_code == 2 and "unknown model 'nope'" in result.stderr
    result = invoke(home, "recommend", "Z" * 22, "--model", "popularity")
    assert (
        result.exit_code == 1
        and "no seed track found in the catalog (unknown: " + "Z" * 22 in result.stderr
    )
    seed = built_home[1][0]["tracks"][0]["track_uri"]
    result = invoke(home, "recommend", seed, "--model", "hybrid")
    assert result.exit_code == 1 and "run `segue fit --model hybrid`" in result.stderr


def test_recommend_with_a_model_variant(built_home: tuple[Path, list[dict]]) -> None:
    home, pls = built_home
    seeds = [t["track_uri"] for t in pls[0]["tracks"][:3]]
    ask = ("recommend", *seeds, "--model", "model2", "-n", "5")
    result = invoke(home, *ask, "--param", "n_genres=1", "--param", "aggregate=mean")
    assert result.exit_code == 0, result.output
    assert "model2@n_genres=1,aggregate=mean: 5 tracks" in result.stdout
    # the same variant by name, in any order of its parameters
    by_name = ("recommend", *seeds, "--model", "model2@aggregate=mean,n_genres=1", "-n", "5")
    as_json = invoke(home, *ask, "--param", "aggregate=mean", "--param", "n_genres=1", "-f", "json")
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout) == json.loads(invoke(home, *by_name, "-f", "json").stdout)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--model", "model2", "--param", "n_genres=0"), "parameter 'n_genres' of model 'model2'"),
        (("--model", "model2", "--param", "n_genres=lots"), "expected an integer from 1 to 10000"),
        (("--model", "model2", "--param", "colour=red"), "no parameter 'colour'"),
        (("--model", "model2", "--param", "n_genres"), "expected NAME=VALUE"),
        (("--model", "itemknn", "--param", "n_genres=2"), "model 'itemknn' has no variants"),
    ],
)
def test_recommend_refuses_a_bad_parameter(
    built_home: tuple[Path, list[dict]], args: tuple[str, ...], said: str
) -> None:
    home, pls = built_home
    result = invoke(home, "recommend", pls[0]["tracks"][0]["track_uri"], *args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and said in result.stderr
    assert "Traceback" not in result.output


def test_models_on_an_empty_home_names_the_commands_to_run(tmp_path: Path) -> None:
    result = invoke(tmp_path / "empty", "models")
    assert result.exit_code == 1 and result.stdout == ""
    assert "ingest <MPD slices>`" in result.stderr and " fit`" in result.stderr
    assert "`segue demo`" in result.stderr and "not built yet" not in result.stderr
