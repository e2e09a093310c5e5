"""User text is never Rich markup: paths, names, titles, echoed file content and hosts print
literally, never raise ``MarkupError`` and never restyle the terminal."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from segue.cli._console import err, labelled
from segue.wire.export import OutputFormat, cell, render
from tests._serving_home import build_home

HOSTILE = ["[/]", "[bold red]loud[/bold red]", "[link=http://x]y[/link]", ":skull:", "\\[x]"]


def _cli() -> typer.Typer:
    from segue.cli import _registry

    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    _registry.register_all(app)
    return app


def _invoke(*args: str):
    result = CliRunner().invoke(_cli(), list(args))
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), result.exception
    return result


@pytest.fixture
def built_home(home: Path) -> Path:
    build_home(home, ("itemknn", "title"))
    return home


def _mpd(path: Path, *, track_uri: str, name: str) -> Path:
    row = {
        "pos": 0,
        "track_uri": track_uri,
        "artist_name": "a",
        "artist_uri": "spotify:artist:" + "1" * 22,
        "track_name": "t",
        "album_uri": "spotify:album:" + "1" * 22,
        "album_name": "b",
        "duration_ms": 1000,
    }
    playlist = {
        "name": name,
        "pid": 1,
        "collaborative": "false",
        "modified_at": 1,
        "num_tracks": 1,
        "num_albums": 1,
        "num_artists": 1,
        "num_followers": 1,
        "num_edits": 1,
        "duration_ms": 1000,
        "tracks": [row],
    }
    path.write_text(json.dumps({"info": {}, "playlists": [playlist]}))
    return path


def test_ingest_path_with_markup_is_named_literally(home):
    result = _invoke("ingest", "-q", "nope[/].json")
    assert result.exit_code == 1
    assert "nope[/].json" in result.stderr
    assert result.stderr.startswith("error: ")


def test_ingest_echoes_a_bad_value_literally(home, tmp_path):
    bad = _mpd(tmp_path / "bad.json", track_uri="[/]", name="[bold red]x")
    result = _invoke("ingest", "-q", str(bad))
    assert result.exit_code == 1
    assert "got '[/]'" in result.stderr and "bad.json" in result.stderr


@pytest.mark.parametrize("seed", HOSTILE)
def test_recommend_unknown_seed_is_echoed_literally(built_home, seed):
    result = _invoke("recommend", "-m", "itemknn", seed)
    assert result.exit_code == 1
    # a seed starting like a path (a backslash) is read as a file on the command line
    assert f"unknown: {seed}" in result.stderr or f"{seed!r}: no such file" in result.stderr


@pytest.mark.parametrize("title", HOSTILE)
def test_recommend_title_appears_literally_in_the_table(built_home, title):
    result = _invoke("recommend", "-m", "title", "--title", title, "-n", "3")
    assert result.exit_code == 0, result.output
    assert f"for {title!r}" in result.stdout


def test_import_features_path_with_markup(home, tmp_path):
    result = _invoke("import-features", "x[/].csv")
    assert result.exit_code == 1 and "x[/].csv" in result.stderr
    bad = tmp_path / "y[bold]z[red].csv"
    bad.write_text("nothing,useful\n1,2\n")
    result = _invoke("import-features", "--skip-bad", str(bad), "x[/].csv")
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert any(line.startswith("skipped: ") and "y[bold]z[red].csv" in line for line in lines)
    assert any(line.startswith("skipped: ") and "x[/].csv" in line for line in lines)


def test_serve_host_with_markup_is_named_literally(home):
    proc = subprocess.run(
        [sys.executable, "-m", "segue", "serve", "--host", "[/]", "--port", "8123"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SEGUE_HOME": str(home)},
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "MarkupError" not in proc.stderr
    assert "cannot listen on [/]:8123" in proc.stderr
    assert "error: " in proc.stderr and "[/]" in proc.stderr.splitlines()[-1]


def test_table_cells_never_parse_markup():
    tracks = [
        SimpleNamespace(
            name=name,
            artists=[name, "[/]"],
            year=None,
            score=1.0,
            explanation=f"because {name}",
            uri="spotify:track:" + "1" * 22,
            url="https://open.spotify.com/track/" + "1" * 22,
            album=None,
            to_dict=dict,
        )
        for name in HOSTILE
    ]
    rec = SimpleNamespace(model="itemknn", tracks=tracks, title="[bold red]mix")
    text = render(rec, OutputFormat.table)
    for name in HOSTILE:
        assert name in text and f"because {name}" in text
    assert "for '[bold red]mix'" in text


def test_labels_are_styled_and_messages_are_not():
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, color_system="standard", width=200)
    console.print(labelled("error:", "red", "[bold red]loud[/bold red] and [/]"))
    printed = buf.getvalue()
    styled_label, message = printed.split("error:", 1)
    assert "\x1b[31m" in styled_label  # the label is red
    assert "\x1b" not in message.split("\x1b[0m", 1)[1]  # after it, not one style
    assert "[bold red]loud[/bold red] and [/]" in message
    assert cell("[/]").plain == "[/]" and cell(None).plain == ""


def test_text_that_looks_like_markup_prints_as_it_is(capsys):
    """Every line of the CLI is literal: a string that looks like markup prints as it is."""
    err.print("[red]error:[/red] cannot listen on [/]:80 ([bold]x)", highlight=False)
    assert capsys.readouterr().err.splitlines() == [
        "[red]error:[/red] cannot listen on [/]:80 ([bold]x)"
    ]
