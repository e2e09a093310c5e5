"""Generated MPD files against ingest (issue 18, item 7): valid and broken in structure, types,
depth, encoding and truncation. Whatever the bytes, ingest either takes the file (and its
playlists can be queried) or refuses it with an :class:`InputFileError` naming it, leaving the
catalog as it was; never another exception, never a crash. Bounded and deterministic
(``derandomize``): the same cases on every run.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import string
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segue.catalog import Catalog
from segue.catalog.ingest import ingest_paths
from segue.core.errors import InputFileError
from segue.formats.mpd import FAST_MAX_DEPTH, gunzipped, one_shallow_object, read_slice_data
from tests.test_ingest import consistent, snapshot_of

FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

_B62 = string.digits + string.ascii_letters
ids = st.text(_B62, min_size=22, max_size=22)
#: Text a slice may hold, with the characters that trouble parsers and terminals.
fine_texts = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=8),
    st.text(alphabet='[]{}"\\/\n é漢😀', max_size=8),
    st.sampled_from(["[/]", "[bold red]x", "", " ", "a" * 40]),
)
#: Any text, NUL characters and lone surrogates included.
texts = st.one_of(fine_texts, st.text(max_size=8))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)


@st.composite
def maybe(draw: st.DrawFn, good: st.SearchStrategy[Any], clean: bool) -> Any:
    """A value from ``good``, or (one time in eight, unless ``clean``) any JSON value."""
    if not clean and draw(st.integers(0, 15)) == 0:
        return draw(st.one_of(scalars, texts))
    return draw(good)


@st.composite
def tracks(draw: st.DrawFn, clean: bool) -> dict[str, Any]:
    def uri(kind: str) -> st.SearchStrategy[str]:
        return ids.map(lambda i: f"spotify:{kind}:{i}")

    track = {
        "track_uri": draw(maybe(uri("track"), clean)),
        "track_name": draw(maybe(fine_texts, clean)),
        "artist_name": draw(maybe(fine_texts, clean)),
    }
    optional = {
        "pos": maybe(st.integers(0, 6), clean),
        "duration_ms": maybe(st.integers(0, 10**6), clean),
        "artist_uri": maybe(uri("artist"), clean),
        "album_uri": maybe(uri("album"), clean),
        "album_name": maybe(fine_texts, clean),
    }
    for key, value in optional.items():
        if draw(st.booleans()):
            track[key] = draw(value)
    if not clean and draw(st.integers(0, 7)) == 0:
        track["extra"] = draw(json_values)
    return track


@st.composite
def playlists(draw: st.DrawFn, pid: int, clean: bool) -> dict[str, Any]:
    playlist = {
        "pid": draw(maybe(st.just(pid), clean)),
        "name": draw(maybe(fine_texts, clean)),
        "tracks": draw(st.lists(tracks(clean), max_size=5)),
    }
    optional = {
        "description": maybe(fine_texts, clean),
        "collaborative": maybe(st.sampled_from(["true", "false", True, False]), clean),
        "num_followers": maybe(st.integers(0, 10**6), clean),
        "modified_at": maybe(st.integers(0, 2**31), clean),
        "duration_ms": maybe(st.integers(0, 10**9), clean),
    }
    for key, value in optional.items():
        if draw(st.booleans()):
            playlist[key] = draw(value)
    return playlist


@st.composite
def documents(draw: st.DrawFn) -> Any:
    """An MPD document: clean (every value of the right type) or with wrong values here and
    there; now and then not an MPD document at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)
    clean = draw(st.integers(0, 2)) > 0
    first = draw(st.integers(0, 10**6))
    n = draw(st.integers(1, 4))
    doc: dict[str, Any] = {"playlists": [draw(playlists(first + i, clean)) for i in range(n)]}
    if draw(st.booleans()):
        doc["info"] = draw(json_values)
    return doc


@st.composite
def mpd_files(draw: st.DrawFn) -> bytes:
    """The bytes of an MPD-like file: a generated document, then perhaps damaged."""
    doc: Any = draw(documents())
    data = json.dumps(doc, ensure_ascii=draw(st.booleans())).encode()
    damage = draw(
        st.sampled_from(
            ["none"] * 6 + ["truncate", "byte", "deep", "encoding", "bom", "gzip", "gzip_cut"]
        )
    )
    if damage == "truncate":
        data = data[: draw(st.integers(0, max(0, len(data) - 1)))]
    elif damage == "byte" and data:
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1 :]
    elif damage == "deep":
        depth = draw(st.integers(1, 3_000))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a": ', "}")]))
        data = f'{{"playlists": [{{"pid": 1, "x": {opener * depth}1{closer * depth}, '.encode()
        data += b'"name": "n", "tracks": []}]}'
    elif damage == "encoding":
        data = json.dumps(doc, ensure_ascii=False).encode(
            draw(st.sampled_from(["utf-16", "latin-1", "utf-32"])), "replace"
        )
    elif damage == "bom":
        data = b"\xef\xbb\xbf" + data
    elif damage == "gzip":
        data = gzip.compress(data)
    elif damage == "gzip_cut":
        packed = gzip.compress(data)
        data = packed[: draw(st.integers(2, max(2, len(packed) - 1)))]
    return data


@pytest.fixture(scope="module")
def fuzz_catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    cat = Catalog.open(tmp_path_factory.mktemp("fuzz") / "c.duckdb")
    yield cat
    cat.close()


_counter = iter(range(1_000_000))


@FUZZ
@given(data=mpd_files())
def test_generated_files_are_taken_whole_or_refused_in_one_line(
    fuzz_catalog: Catalog, tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    name = f"f{next(_counter)}.json"
    folder = tmp_path_factory.getbasetemp() / "fuzz-files"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    # Both readers decide alike, and say alike what they read.
    outcomes = []
    for fast in (True, False):
        try:
            cols = read_slice_data(name, gunzipped(name, data), fast=fast)
        except InputFileError as exc:
            assert "\n" not in str(exc) and str(exc).startswith(name)
            outcomes.append(None)
        else:
            outcomes.append(cols)
    fast_cols, exact_cols = outcomes
    try:  # salvage reads damaged files its own way: it too only ever refuses in one line
        read_slice_data(name, gunzipped(name, data), salvage=True)
    except InputFileError as exc:
        assert "\n" not in str(exc)
    assert (fast_cols is None) == (exact_cols is None)
    if fast_cols is not None and exact_cols is not None:
        assert fast_cols.rows.equals(exact_cols.rows)
        assert fast_cols.playlists.equals(exact_cols.playlists)
        assert (fast_cols.nulled, fast_cols.renumbered) == (
            exact_cols.nulled,
            exact_cols.renumbered,
        )
    # Into the catalog: whole (and queryable) or not at all.
    before = snapshot_of(fuzz_catalog)
    try:
        report = ingest_paths(fuzz_catalog, [path], progress=False)
    except InputFileError as exc:
        assert str(exc).startswith(str(path)) and "\n" not in str(exc)
        assert snapshot_of(fuzz_catalog) == before
        return
    assert fast_cols is not None, "ingest took a file the reader refuses"
    if report.results[0].status == "added":
        pids = fast_cols.playlists["pid"].to_pylist()
        stored = fuzz_catalog.con.execute(
            "SELECT count(*) FROM playlists WHERE list_contains(?, pid)", [pids]
        ).fetchall()[0][0]
        assert stored == len(pids)
        rows = fuzz_catalog.con.execute(
            "SELECT count(*) FROM playlist_tracks WHERE list_contains(?, pid)", [pids]
        ).fetchall()[0][0]
        assert rows == fast_cols.n_rows
    consistent(fuzz_catalog)


@settings(max_examples=2, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(files=st.lists(mpd_files(), min_size=16, max_size=16))
def test_generated_files_through_the_real_cli(
    tmp_path_factory: pytest.TempPathFactory, files: list[bytes]
) -> None:
    """A folder of generated files through `segue ingest --skip-bad` in a subprocess: no
    traceback, no crash, every file either in (added or already there) or named on its own
    line, and the catalog consistent."""
    root = tmp_path_factory.mktemp("cli-fuzz")
    folder = root / "in"
    folder.mkdir()
    for i, data in enumerate(files):
        (folder / f"{i:02d}.json").write_bytes(data)
    home = root / "home"
    proc = subprocess.run(
        [sys.executable, "-m", "segue", "ingest", "-q", "--skip-bad", str(folder)],
        capture_output=True,
        text=True,
        env={**os.environ, "SEGUE_HOME": str(home)},
        timeout=600,
    )
    assert proc.returncode in (0, 1), proc.stderr
    assert "Traceback" not in proc.stderr
    added = int(re.search(r"ingested (\d+) file\(s\)", proc.stdout).group(1))  # type: ignore[union-attr]
    unchanged = re.search(r"; (\d+) already in the catalog", proc.stdout)
    lines = proc.stderr.splitlines()
    skipped = 0
    if lines:
        skipped = int(re.fullmatch(r"skipped (\d+) bad file\(s\):", lines[0]).group(1))  # type: ignore[union-attr]
        assert len(lines) == 1 + skipped
        assert all(line.startswith(f"  {folder}/") for line in lines[1:])
    assert added + (int(unchanged.group(1)) if unchanged else 0) + skipped == len(files)
    assert proc.returncode == (1 if skipped and not added else 0)
    with Catalog.open(home / "catalog.duckdb") as cat:
        consistent(cat)
        assert cat.counts()["files"] == added


def _depth(value: Any) -> int:
    """How deep lists and objects nest in ``value`` (a scalar: 0)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    inner=json_values,
    wraps=st.lists(st.sampled_from(["list", "object"]), max_size=2 * FAST_MAX_DEPTH),
    top=st.booleans(),
    trailing=st.sampled_from(["", " \n", " 1", "{}", '"x"', "null"]),
)
def test_structure_scan_agrees_with_a_parser(
    inner: Any, wraps: list[str], top: bool, trailing: str
) -> None:
    """one_shallow_object says True exactly for one JSON object nested at most FAST_MAX_DEPTH
    deep with only whitespace after it, whatever quotes, brackets and backslashes the strings
    hold."""
    value = inner
    for kind in wraps:
        value = [value] if kind == "list" else {'k[\\"': value}
    doc = {"top": value} if top else value
    text = json.dumps(doc) + trailing
    expected = isinstance(doc, dict) and _depth(doc) <= FAST_MAX_DEPTH and not trailing.strip()
    assert one_shallow_object(text.encode()) is expected
