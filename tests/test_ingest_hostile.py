"""Ingest never crashes on input: hostile and unlucky files (issue 18) each get the usual
one-line error, leave the catalog as it was and let ``--skip-bad`` carry on; values the
schema allows to be missing are stored as NULL with a count; Ctrl+C stops cleanly."""

from __future__ import annotations

import gzip
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from segue.catalog import Catalog
from segue.catalog.ingest import ingest_paths
from segue.core.errors import InputFileError
from segue.formats.mpd import (
    MAX_TEXT_BYTES,
    gunzipped,
    one_shallow_object,
    read_slice_data,
)
from tests.conftest import make_playlists, write_slice
from tests.test_ingest import consistent, snapshot_of

TRACK = "spotify:track:0123456789abcdefghijkl"


def _playlist(pid: int = 1, **extra: Any) -> dict[str, Any]:
    track = {"track_uri": TRACK, "track_name": "t", "artist_name": "a"}
    return {"pid": pid, "name": "p", "tracks": [track], **extra}


def _doc(*playlists: dict[str, Any]) -> str:
    return json.dumps({"playlists": list(playlists)})


def _nested(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


def hostile_files(folder: Path) -> dict[str, tuple[Path, str]]:
    """Files that crashed ingest or were accepted silently, and what the error must say."""
    folder.mkdir(parents=True, exist_ok=True)
    text: dict[str, tuple[str | bytes, str]] = {
        "null": ("null", "at top level: expected an object with a 'playlists' list, got null"),
        "deep": (
            '{"playlists": ' + "[" * 20_000 + "]" * 20_000 + "}",
            "nested more than 1024 levels deep (an MPD slice needs 5)",
        ),
        "deep_top": ("[" * 20_000 + "]" * 20_000, "nested more than 1024 levels deep"),
        "deep_extra_too_deep": (
            _doc(_playlist()).replace('"pid": 1', '"x": ' + _nested(1_100) + ', "pid": 1'),
            "nested more than 1024 levels deep",
        ),
        "pid_2_63": (
            _doc(_playlist(2**63)),
            "'pid' must be an integer from 0 to 9223372036854775807, got 9223372036854775808",
        ),
        "pid_negative": (
            _doc(_playlist(-5)),
            "at playlists[0]: 'pid' must be an integer from 0 to 9223372036854775807, got -5",
        ),
        "name_20mb": (
            _doc(_playlist(name="x" * (20 << 20))),
            f"at playlists[0] (pid 1): 'name' is 20,971,520 bytes long; at most {MAX_TEXT_BYTES:,} allowed",
        ),
        "track_name_long": (
            _doc(_playlist()).replace('"track_name": "t"', '"track_name": "' + "y" * 20_000 + '"'),
            "at playlists[0].tracks[0] (pid 1): 'track_name' is 20,000 bytes long",
        ),
        "nul_name": (_doc(_playlist(name="a\u0000b")), "'name' contains a NUL character"),
        "nul_artist": (
            _doc(_playlist()).replace('"artist_name": "a"', '"artist_name": "a\\u0000"'),
            "at playlists[0].tracks[0] (pid 1): 'artist_name' contains a NUL character",
        ),
        "markup_uri": (
            _doc(_playlist()).replace(TRACK, "[/]"),
            "'track_uri' must be like 'spotify:track:<22 base62 chars>', got '[/]'",
        ),
        "two_values": (
            _doc(_playlist()) + "\nnull",
            "invalid JSON: unexpected content after document",
        ),
        "huge_number": (
            _doc(_playlist(duration_ms=10**400)).replace("1" + "0" * 400, "1e400"),
            "invalid JSON: number is infinity",
        ),
    }
    out: dict[str, tuple[Path, str]] = {}
    for name, (content, message) in text.items():
        path = folder / f"{name}.json"
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        out[name] = (path, message)
    return out


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    cat = Catalog.open(tmp_path / "c.duckdb")
    yield cat
    cat.close()


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    return hostile_files(tmp_path_factory.mktemp("hostile"))


@pytest.mark.parametrize(
    "case",
    [
        "null",
        "deep",
        "deep_top",
        "deep_extra_too_deep",
        "pid_2_63",
        "pid_negative",
        "name_20mb",
        "track_name_long",
        "nul_name",
        "nul_artist",
        "markup_uri",
        "two_values",
        "huge_number",
    ],
)
def test_hostile_file_is_refused_in_one_line_and_the_catalog_unchanged(
    tmp_path: Path, catalog: Catalog, hostile: dict[str, tuple[Path, str]], case: str
) -> None:
    ingest_paths(
        catalog,
        [write_slice(tmp_path / "good.json", make_playlists(3, start_pid=900))],
        progress=False,
    )
    before = snapshot_of(catalog)
    path, message = hostile[case]
    for fast in (True, False):  # both readers refuse it the same way
        with pytest.raises(InputFileError) as info:
            read_slice_data(str(path), path.read_bytes(), fast=fast)
        assert message in str(info.value)
    with pytest.raises(InputFileError) as info:
        ingest_paths(catalog, [path], progress=False)
    said = str(info.value)
    assert said.startswith(str(path)) and message in said
    assert "\n" not in said and len(said) < len(str(path)) + 300  # never echoes a huge value
    assert snapshot_of(catalog) == before


def test_skip_bad_carries_on_past_every_hostile_file_in_the_real_cli(
    tmp_path: Path, hostile: dict[str, tuple[Path, str]]
) -> None:
    """A good file before the hostile ones and one after them both go in; each hostile file
    gets one line; no traceback, no crash (the segfaults gave rc 139)."""
    first = write_slice(tmp_path / "a-first.json", make_playlists(4, seed=1, start_pid=0))
    last = write_slice(tmp_path / "z-last.json", make_playlists(4, seed=2, start_pid=100))
    bad = [path for path, _ in hostile.values()]
    home = tmp_path / "home"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "segue",
            "ingest",
            "-q",
            "--skip-bad",
            str(first),
            *map(str, bad),
            str(last),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "SEGUE_HOME": str(home)},
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "ingested 2 file(s): 8 playlists" in proc.stdout
    lines = proc.stderr.splitlines()
    assert lines[0] == f"skipped {len(bad)} bad file(s):"
    assert len(lines) == 1 + len(bad)
    for (path, message), line in zip(hostile.values(), lines[1:], strict=True):
        assert line.startswith(f"  {path}") and message in line
    with Catalog.open(home / "catalog.duckdb") as cat:
        assert cat.counts()["files"] == 2
        consistent(cat)


def test_an_extra_field_nested_1000_deep_is_ignored_by_both_readers(tmp_path: Path) -> None:
    deep = _doc(_playlist()).replace('"pid": 1', '"x": ' + _nested(1_000) + ', "pid": 1')
    plain = read_slice_data("plain", _doc(_playlist()).encode())
    for fast in (True, False):
        cols = read_slice_data("deep", deep.encode(), fast=fast)
        assert cols.rows.equals(plain.rows) and cols.playlists.equals(plain.playlists)


def test_salvage_of_a_cut_file_with_a_deep_playlist_does_not_crash(tmp_path: Path) -> None:
    deep = json.dumps(_playlist(2)).replace('"pid": 2', '"x": ' + _nested(1_000) + ', "pid": 2')
    text = '{"playlists": [' + json.dumps(_playlist(1)) + ", " + deep + ", "
    text += json.dumps(_playlist(3)) + "]}"
    cut = text[: len(text) - 40]  # inside the last playlist
    cols = read_slice_data("cut", cut.encode(), salvage=True)
    # The playlists before the cut, the one nested 1,000 deep included; no RecursionError.
    assert cols.salvaged and cols.playlists["pid"].to_pylist() == [1, 2]
    deeper = deep.replace(_nested(1_000), _nested(1_300))
    text = '{"playlists": [' + json.dumps(_playlist(1)) + ", " + deeper + ", " + '{"pid": 3'
    # Past the nesting salvage takes (a little over the exact reader's), it stops before.
    cols = read_slice_data("cut", text.encode(), salvage=True)
    assert cols.playlists["pid"].to_pylist() == [1]


def test_unusable_optional_values_become_null_with_a_count(
    tmp_path: Path, catalog: Catalog
) -> None:
    rows = [
        {"track_uri": TRACK, "track_name": "a", "artist_name": "x", "pos": 0, "duration_ms": -1},
        {"track_uri": TRACK, "track_name": "a", "artist_name": "x", "pos": 0, "duration_ms": "y"},
    ]
    neg = [{**r, "pos": -3 + i, "duration_ms": 2**31 + i} for i, r in enumerate(rows)]
    text = [{**r, "pos": "first"} for r in rows]
    fine = [{**r, "pos": 1 - i, "duration_ms": 1000} for i, r in enumerate(rows)]
    doc = {
        "playlists": [
            {"pid": 1, "name": "dup pos", "tracks": rows, "num_followers": -4},
            {"pid": 2, "name": "neg pos", "tracks": neg, "modified_at": "yesterday"},
            {"pid": 3, "name": "text pos", "tracks": text, "collaborative": "maybe"},
            {"pid": 4, "name": "fine", "tracks": fine, "num_edits": 3, "collaborative": "true"},
        ]
    }
    path = tmp_path / "odd.json"
    path.write_text(json.dumps(doc))
    for fast in (True, False):
        cols = read_slice_data(str(path), path.read_bytes(), fast=fast)
        # -1 and "y" (twice), 2**31 and 2**31 + 1, -4, "yesterday", "maybe"
        assert (cols.nulled, cols.renumbered) == (9, 3)
        assert cols.rows["duration_ms"].to_pylist() == [None] * 6 + [1000, 1000]
        # Playlists with unusable or repeated positions take their list order; the fine one
        # keeps its own (its second row first).
        assert cols.rows["pos"].to_pylist() == [0, 1, 0, 1, 0, 1, 1, 0]
    report = ingest_paths(catalog, [path], progress=False)
    assert (report.nulled, report.renumbered) == (9, 3)
    stored = catalog.con.execute(
        "SELECT pid, list(pos ORDER BY pos) FROM playlist_tracks GROUP BY pid ORDER BY pid"
    ).fetchall()
    assert stored == [(1, [0, 1]), (2, [0, 1]), (3, [0, 1]), (4, [0, 1])]
    assert catalog.con.execute(
        "SELECT num_followers, modified_at, collaborative FROM playlists ORDER BY pid"
    ).fetchall() == [(None, None, None), (None, None, None), (None, None, None), (None, None, True)]


def test_cli_summary_counts_nulled_values_and_renumbered_playlists(tmp_path: Path) -> None:
    tracks = [
        {"track_uri": TRACK, "track_name": "a", "artist_name": "x", "pos": 0, "duration_ms": -5}
    ] * 2
    path = tmp_path / "odd.json"
    path.write_text(json.dumps({"playlists": [{"pid": 7, "name": "n", "tracks": tracks}]}))
    proc = subprocess.run(
        [sys.executable, "-m", "segue", "ingest", "-q", str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, "SEGUE_HOME": str(tmp_path / "home")},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert (
        "ingested 1 file(s): 1 playlists, 2 track rows; 2 value(s) stored as NULL "
        "(negative, not integers or too large); 1 playlist(s) stored in list order "
        "(positions missing, negative, not integers or repeated)"
    ) in proc.stdout


def test_gzip_is_inflated_under_a_cap(tmp_path: Path) -> None:
    body = _doc(_playlist()).encode() + b" " * (3 << 20)
    packed = gzip.compress(body, compresslevel=1)
    assert len(packed) < 64 << 10  # a bomb: small outside, large inside
    assert bytes(gunzipped("x", packed, 4 << 20)) == body
    with pytest.raises(InputFileError) as info:
        gunzipped("x.json.gz", packed, 2 << 20)
    assert str(info.value) == (
        "x.json.gz: decompresses to more than the 2 MiB allowed for one file "
        "(a slice is about 33 MB; raise the limit with --max-file-mb)"
    )
    # Several members (as gzip.decompress reads them), padding, damage.
    two = gzip.compress(b'{"playlists": ') + gzip.compress(b"[]}") + b"\0\0"
    assert bytes(gunzipped("x", two)) == b'{"playlists": []}'
    with pytest.raises(InputFileError, match="damaged gzip data: the file ends before"):
        gunzipped("x", packed[: len(packed) // 2])
    with pytest.raises(InputFileError, match="not gzip data after the end of a stream"):
        gunzipped("x", packed + b"junk")


def test_max_file_mb_refuses_large_and_inflating_files_in_the_cli(tmp_path: Path) -> None:
    plain = tmp_path / "big.json"
    plain.write_bytes(_doc(_playlist(1)).encode() + b" " * (2 << 20))
    bomb = tmp_path / "bomb.json.gz"
    bomb.write_bytes(gzip.compress(_doc(_playlist(2)).encode() + b" " * (3 << 20), 1))
    small = write_slice(tmp_path / "small.json", make_playlists(2, start_pid=50))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "segue",
            "ingest",
            "-q",
            "--skip-bad",
            "--max-file-mb",
            "1",
            str(plain),
            str(bomb),
            str(small),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "SEGUE_HOME": str(tmp_path / "home")},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "ingested 1 file(s): 2 playlists" in proc.stdout
    assert f"  {plain}: holds more than the 1 MiB allowed for one file" in proc.stderr
    assert f"  {bomb}: decompresses to more than the 1 MiB allowed for one file" in proc.stderr


def _tar(path: Path, members: list[tarfile.TarInfo], data: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for member in members:
            payload = data.get(member.name)
            if payload is not None:
                member.size = len(payload)
            tar.addfile(member, io.BytesIO(payload) if payload is not None else None)
    return path


def test_archives_empty_garbage_links_and_without_slices_get_one_line(
    tmp_path: Path, catalog: Catalog
) -> None:
    empty = tmp_path / "empty.tar.gz"
    empty.write_bytes(b"")
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(bytes(range(256)) * 4)
    good = json.dumps({"playlists": make_playlists(2, start_pid=10)}).encode()
    sym = tarfile.TarInfo("d/mpd.slice.0-999.json")
    sym.type, sym.linkname = tarfile.SYMTYPE, "/etc/passwd"
    hard = tarfile.TarInfo("d/mpd.slice.1000-1999.json")
    hard.type, hard.linkname = tarfile.LNKTYPE, "d/real.json"
    links = _tar(
        tmp_path / "links.tar.gz",
        [tarfile.TarInfo("d/real.json"), sym, hard],
        {"d/real.json": good},
    )
    nothing = _tar(tmp_path / "nothing.tar.gz", [tarfile.TarInfo("README")], {"README": b"hi"})
    report = ingest_paths(catalog, [empty, garbage, links, nothing], skip_bad=True, progress=False)
    assert [r.path for r in report.results] == [f"{links}!d/real.json"]
    said = [str(e) for e in report.skipped]
    assert said == [
        f"{empty}: not a gzip-compressed tar archive: the file is empty",
        f"{garbage}: not a gzip-compressed tar archive: not a gzip file",
        f"{links}!d/mpd.slice.0-999.json: archive member is a symbolic link to '/etc/passwd'; "
        "links are not followed",
        f"{links}!d/mpd.slice.1000-1999.json: archive member is a hard link to 'd/real.json'; "
        "links are not followed",
        f"{nothing}: the archive holds no .json or .json.gz file",
    ]


def test_a_file_whose_name_looks_like_a_pattern_is_read_as_named(
    tmp_path: Path, catalog: Catalog
) -> None:
    path = write_slice(tmp_path / "slice[1].json", make_playlists(2))
    assert ingest_paths(catalog, [str(path)], progress=False).playlists == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"null", False),
        (b' {"a": [1, {"b": 2}]} \n', True),
        (b'{"a": 1} 5', False),
        (b'{"a": 1}\nnull', False),
        (b'{"a": 1}}', False),
        (b'{"a": 1} "}', False),
        (b'{"a": "[[[[[["}', True),
        (b'{"a": "]]]]]]", "b": ' + b"[" * 70 + b"]" * 70 + b"}", False),
        (b'{"a": "\\"[[[["}', True),
        (b'{"a": "\\\\", "b": "]"}', True),
        (b'{"a\\\\\\"]]]]": "\\\\\\\\"}', True),
        (b'{"a": ' + b"[" * 63 + b"]" * 63 + b"}", True),
        (b'{"a": ' + b"[" * 64 + b"]" * 64 + b"}", False),
        (b'{"a": [', False),
        (b"", False),
        (b"   ", False),
    ],
)
def test_structure_scan_across_piece_boundaries(
    monkeypatch: pytest.MonkeyPatch, text: bytes, expected: bool
) -> None:
    import segue.formats.mpd

    for piece in (256 << 10, 1, 2, 3, 5):
        monkeypatch.setattr(segue.formats.mpd, "_SCAN_PIECE", piece)
        assert one_shallow_object(text) is expected, piece


def test_ctrl_c_stops_after_whole_files_says_what_was_kept_and_a_rerun_completes(
    tmp_path: Path,
) -> None:
    """SIGINT to a real `segue ingest` mid-run: no traceback, exit 130, a message that says
    how many files went in and to run the command again; the catalog holds whole files only,
    and the rerun adds the rest without duplicates."""
    env = {**os.environ, "SEGUE_HOME": str(tmp_path / "home")}
    slices = tmp_path / "slices"
    subprocess.run(
        [sys.executable, "-m", "segue", "synth", "-n", "24000", "-o", str(slices), "-q"],
        check=True,
        env=env,
        timeout=600,
    )
    catalog_path = tmp_path / "home" / "catalog.duckdb"
    command = [sys.executable, "-m", "segue", "ingest", "-q", str(slices)]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as proc:
        while not catalog_path.exists() and proc.poll() is None:
            time.sleep(0.05)
        time.sleep(1.0)  # into the run: the catalog is open and the first files are going in
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err
    kept = int(out.split("ingested ")[1].split(" file(s)")[0])
    assert err.strip().splitlines()[-1] == (
        f"interrupted: kept the {kept} file(s) ingested so far ({kept * 1000:,} playlists), "
        "each whole. Run the same command again to add the rest (files already in the "
        "catalog are skipped)."
    )
    with Catalog.open(catalog_path) as cat:
        consistent(cat)
        assert cat.counts()["files"] == kept < 24
        # Whole files only: every playlist has all its rows.
        assert (
            cat.scalar(
                "SELECT count(*) FROM playlists p WHERE num_tracks <> "
                "(SELECT count(*) FROM playlist_tracks r WHERE r.pid = p.pid)"
            )
            == 0
        )
    rerun = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert f"ingested {24 - kept} file(s)" in rerun.stdout
    assert f"{kept} already in the catalog" in rerun.stdout or kept == 0
    assert "catalog: 24,000 playlists" in rerun.stdout
    with Catalog.open(catalog_path) as cat:
        consistent(cat)
        assert cat.counts()["files"] == 24


_LIMITED_CHILD = """
import resource, sys
from segue.catalog import Catalog
from segue.catalog.ingest import ingest_paths
# One ingest before the limit: it loads what ingest loads lazily (pyarrow's dataset modules,
# its thread pool). A shared library opened under the limit can find no room for its
# thread-local data, and glibc then aborts the process, which is not what this test is about.
with Catalog.open(sys.argv[2] + ".warm", bulk=True) as warm:
    ingest_paths(warm, sys.argv[4:], skip_bad=True, progress=False)
with Catalog.open(sys.argv[2], bulk=True) as cat:
    fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
    mapped = int(fields["VmSize"].split()[0]) * 1024
    limit = mapped + int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    report = ingest_paths(cat, sys.argv[3:], skip_bad=True, progress=False)
print(len(report.results), flush=True)
for error in report.skipped:
    print(error, flush=True)
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc")
def test_under_a_memory_limit_a_large_file_is_refused_for_memory_not_as_invalid_json(
    tmp_path: Path,
) -> None:
    """With an address-space limit (``ulimit -v``) of what the process maps plus three times
    a 55 MB file that only the exact reader takes (it needs about six), ingest says memory ran
    out (not "invalid JSON", no crash) and keeps the small file after it."""
    small = write_slice(tmp_path / "small.json", make_playlists(3, start_pid=500))
    rows = [
        {"track_uri": TRACK, "track_name": f"song {i}", "artist_name": "a", "pos": i}
        for i in range(200)
    ]
    big = {"playlists": [{"pid": 10**6 + i, "name": "p", "tracks": rows} for i in range(2500)]}
    big["playlists"][0]["tracks"][0] = {**rows[0], "pos": "0"}  # the fast reader declines it
    large = tmp_path / "large.json"
    large.write_text(json.dumps(big))
    size = large.stat().st_size
    assert size > 50 << 20
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _LIMITED_CHILD,
            str(3 * size),
            str(tmp_path / "c.duckdb"),
            str(large),
            str(small),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    said = proc.stdout.splitlines()
    assert said[1].startswith(f"{large}: not enough memory to read this file (")
    assert "invalid JSON" not in said[1]
    # The small file went in, or (when the allocator's reserved address space leaves DuckDB no
    # room under the limit) it was refused for memory too, by name, and the run went on.
    assert said[0] == "1" or (said[0] == "0" and said[2].startswith(f"{small}: not enough memory"))


@pytest.mark.parametrize("name", ["cut.tar.gz", "cut.tar"])
def test_an_archive_whose_gzip_header_is_cut_short_gets_one_line(
    tmp_path: Path, catalog: Catalog, name: str
) -> None:
    """A gzip header cut after its flags (FEXTRA set, no length) is a bad file like any other,
    and --skip-bad carries on to the next one."""
    cut = tmp_path / name
    cut.write_bytes(b"\x1f\x8b\x08garbage")
    good = write_slice(tmp_path / "mpd.slice.0-999.json", make_playlists(2))
    report = ingest_paths(catalog, [cut, good], skip_bad=True, progress=False)
    assert [r.path for r in report.results] == [str(good)]
    assert [str(e) for e in report.skipped] == [
        f"{cut}: cannot open archive: the gzip header is cut short"
    ]


def test_a_statement_that_aborts_a_transaction_is_the_error_reported_not_the_cleanup() -> None:
    """Cleanup in a ``finally`` (dropping a registered view) must not replace the error that
    aborted the transaction: ingest turns an out-of-memory into a named refusal only if it
    sees the out-of-memory, not DuckDB's "transaction is aborted" from the cleanup."""
    import duckdb
    import pyarrow as pa

    from segue.catalog.core import unregister

    con = duckdb.connect()
    con.execute("BEGIN")
    con.register("staged", pa.table({"x": ["1", "not a number"]}))
    with pytest.raises(duckdb.ConversionException):
        try:
            con.execute("SELECT CAST(x AS INTEGER) FROM staged").fetchall()
        finally:
            unregister(con, "staged")
    con.execute("ROLLBACK")
    con.close()
