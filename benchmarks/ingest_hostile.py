"""Hostile and unlucky inputs through the real `segue ingest`, one fresh home each.

Writes the inputs of issue 18 (and a few more) into a folder, runs ``segue ingest -q`` on each
in a subprocess and prints, per input: its size, the exit code, the process's peak RSS and the
first line it printed. An input fails when the process crashes (a signal), prints a traceback
or says more than one line on stderr. The reference in the same run is a good slice of the same
size class (its peak RSS is the floor for any input).

    python benchmarks/ingest_hostile.py                 # every input
    python benchmarks/ingest_hostile.py --skip-large    # without the 1 GiB and 2.5 GiB gzip bombs
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

TRACK = "spotify:track:0123456789abcdefghijkl"


def _playlist(pid: int = 1, **extra: object) -> dict[str, object]:
    track = {"track_uri": TRACK, "track_name": "t", "artist_name": "a"}
    return {"pid": pid, "name": "p", "tracks": [track], **extra}


def _doc(*playlists: dict[str, object]) -> bytes:
    return json.dumps({"playlists": list(playlists)}).encode()


def _nested(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


def _gzip_of(head: bytes, filler: bytes, total: int, path: Path) -> None:
    with gzip.open(path, "wb", compresslevel=1) as out:
        out.write(head)
        chunk = filler * (1 << 20)
        for _ in range(total >> 20):
            out.write(chunk)


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)


def inputs(folder: Path, large: bool) -> dict[str, Path]:
    """Each hostile input's name and file."""
    pos = [
        {"track_uri": TRACK, "track_name": "t", "artist_name": "a", "pos": p, "duration_ms": d}
        for p, d in ((0, -1), (0, "y"))
    ]
    texts: dict[str, bytes] = {
        "top-level null": b"null",
        "top-level number": b"5",
        "top-level list": b"[]",
        "empty file": b"",
        "only whitespace": b" " * 1000,
        "nesting 20,000 deep in playlists": b'{"playlists": '
        + b"[" * 20_000
        + b"]" * 20_000
        + b"}",
        "nesting 20,000 deep at the top": b"[" * 20_000 + b"]" * 20_000,
        "objects 20,000 deep": ('{"playlists": ' + _nested(20_000) + "}").encode(),
        "extra field 1,000 deep": _doc(_playlist()).replace(
            b'"pid": 1', b'"x": ' + _nested(1_000).encode() + b', "pid": 1'
        ),
        "extra field 1,100 deep": _doc(_playlist()).replace(
            b'"pid": 1', b'"x": ' + _nested(1_100).encode() + b', "pid": 1'
        ),
        "pid 2^63": _doc(_playlist(2**63)),
        "pid 2^64": _doc(_playlist(2**64)),
        "pid -1": _doc(_playlist(-1)),
        "pid 1.5": _doc(_playlist(1.5)),  # type: ignore[arg-type]
        "pid true": _doc(_playlist(True)),
        "pids repeated": _doc(_playlist(1), _playlist(1)),
        "pos repeated, duration negative/non-numeric": json.dumps(
            {"playlists": [{"pid": 1, "name": "p", "tracks": pos}]}
        ).encode(),
        "pos negative": _doc(_playlist()).replace(
            b'"artist_name": "a"', b'"artist_name": "a", "pos": -3'
        ),
        "pos 2^40": _doc(_playlist()).replace(
            b'"artist_name": "a"', b'"artist_name": "a", "pos": 1099511627776'
        ),
        "counters negative and text": _doc(_playlist(num_followers=-4, modified_at="x")),
        "number 1e400": _doc(_playlist()).replace(b'"pid": 1', b'"num_edits": 1e400, "pid": 1'),
        "name of 20 MB": _doc(_playlist(name="x" * (20 << 20))),
        "name of 50 MB": _doc(_playlist(name="x" * (50 << 20))),
        "NUL in a name": _doc(_playlist(name="a\x00b")),
        "NUL in an artist": _doc(_playlist()).replace(
            b'"artist_name": "a"', b'"artist_name": "a\\u0000"'
        ),
        "markup in a track uri": _doc(_playlist()).replace(TRACK.encode(), b"[/]"),
        "markup in a name": _doc(_playlist(name="[bold red]x[/]")),
        "two documents": _doc(_playlist()) + b"\nnull",
        "byte order mark": b"\xef\xbb\xbf" + _doc(_playlist()),
        "latin-1": _doc(_playlist(name="caf\u00e9")).replace(b"\\u00e9", b"\xe9"),
        "utf-16": json.dumps({"playlists": [_playlist()]}).encode("utf-16"),
        "lone surrogate": _doc(_playlist()).replace(b'"name": "p"', b'"name": "\\ud800"'),
        "truncated": _doc(_playlist(), _playlist(2))[:-30],
        "track not an object": _doc(_playlist(tracks=[1])),
        "tracks not a list": _doc(_playlist(tracks={"a": 1})),
    }
    out: dict[str, Path] = {}
    for i, (name, data) in enumerate(texts.items()):
        path = folder / f"{i:02d}.json"
        path.write_bytes(data)
        out[name] = path
    body = _doc(_playlist())
    path = folder / "ws-300m.json"
    with path.open("wb") as handle:
        handle.write(body)
        handle.write(b" " * (300 << 20))
    out["300 MiB of whitespace (plain)"] = path
    path = folder / "ws-200m.json.gz"
    _gzip_of(body, b" ", 200 << 20, path)
    out["200 MiB of whitespace (1 MB gzip)"] = path
    if large:
        path = folder / "ws-1g.json.gz"
        _gzip_of(body, b" ", 1 << 30, path)
        out["1 GiB of whitespace (1 MB gzip)"] = path
        path = folder / "zeros-2.5g.json.gz"
        _gzip_of(b"", b"\0", 5 << 29, path)
        out["2.5 GiB of zeros (gzip)"] = path
    path = folder / "cut.json.gz"
    path.write_bytes(gzip.compress(_doc(_playlist()))[:-10])
    out["gzip cut short"] = path
    for name, data in (("empty .tar.gz", b""), ("garbage .tar.gz", os.urandom(4096))):
        path = folder / f"{name.split()[0]}.tar.gz"
        path.write_bytes(data)
        out[name] = path
    sym = tarfile.TarInfo("mpd.slice.0-999.json")
    sym.type, sym.linkname = tarfile.SYMTYPE, "/etc/passwd"
    hard = tarfile.TarInfo("mpd.slice.1000-1999.json")
    hard.type, hard.linkname = tarfile.LNKTYPE, "mpd.slice.0-999.json"
    path = folder / "links.tar.gz"
    _tar(path, [(sym, None), (hard, None)])
    out[".tar.gz of links"] = path
    path = folder / "readme.tar.gz"
    _tar(path, [(tarfile.TarInfo("README"), b"hello")])
    out[".tar.gz without a slice"] = path
    path = folder / "odd[x].json"
    path.write_bytes(_doc(_playlist()))
    out["file name with brackets"] = path
    return out


def run(path: Path, home: Path) -> tuple[int, float, str, bool]:
    """Exit code (negative: killed by that signal), peak RSS in MiB, stderr's first line (or
    stdout's), and whether the output is clean (no traceback, at most one stderr line)."""
    home.mkdir(parents=True)
    with (home / "out").open("w+b") as out, (home / "err").open("w+b") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "segue", "ingest", "-q", str(path)],
            stdout=out,
            stderr=err,
            env={**os.environ, "SEGUE_HOME": str(home)},
        )
        # wait4: this child's own peak RSS (getrusage gives the largest of all children).
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        out_text, err_text = (
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
        )
    lines = err_text.strip().splitlines()
    said = lines[0] if lines else (out_text.strip().splitlines() or ["(nothing)"])[0]
    clean = "Traceback" not in err_text and len(lines) <= 1
    return proc.returncode, usage.ru_maxrss / 1024, said, clean


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-large", action="store_true", help="No 1 GiB / 2.5 GiB bombs.")
    parser.add_argument("--write", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write:  # in a child: this process stays small, so each run's peak RSS is its own
        cases = inputs(args.write, large=not args.skip_large)
        print(json.dumps({name: str(path) for name, path in cases.items()}))
        return
    with tempfile.TemporaryDirectory(prefix="segue-hostile-") as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        written = subprocess.run(
            [sys.executable, __file__, "--write", str(folder)]
            + (["--skip-large"] if args.skip_large else []),
            capture_output=True,
            text=True,
            check=True,
        )
        cases = {name: Path(path) for name, path in json.loads(written.stdout).items()}
        print(f"{'input':46} {'size':>10} {'rc':>4} {'peak MiB':>9}  said")
        failures = 0
        for i, (name, path) in enumerate(cases.items()):
            code, peak, said, clean = run(path, Path(tmp) / f"home{i}")
            ok = clean and code in (0, 1)
            failures += not ok
            size = path.stat().st_size
            shown = said.replace(str(path), "<file>")
            print(
                f"{name:46} {size:>10,} {code:>4} {peak:>9,.0f}  {'' if ok else 'FAIL '}{shown[:110]}"
            )
        print(
            f"\n{len(cases)} inputs, {failures} failure(s) (a crash, a traceback or more than one line)"
        )


if __name__ == "__main__":
    main()
