"""Fit time, peak memory and recommend latency of the collaborative and hybrid models at scale.

    python benchmarks/train.py                                   # 100k and 1M playlists
    python benchmarks/train.py --sizes 100000 --models itemknn als hybrid
    python benchmarks/train.py --sizes 1000000 --cache /tmp/train-bench   # keep the snapshots
    python benchmarks/train.py --sizes 1000000 --models hybrid --home /tmp/full-home  # servable

Data: MPD-shaped playlists from the sampler of :mod:`segue.formats.synth` (``SynthCatalog`` and the
per-slice draw behind ``segue synth``: lengths, Zipf popularity, genre clusters, titles from
the cluster vocabulary), turned straight into a :class:`~segue.snapshot.arrays.Snapshot` instead of
being written as JSON and ingested. That skips only the file round trip (see
``benchmarks/ingest.py`` for ingest) and gives the same playlists and tracks.

Each (size, model) runs in its own subprocess so its peak RSS is its own: the worker loads the
snapshot (saved once per size by a first worker, whose build time is the reference printed
next to every fit time), fits the model, then times ``recommend(seeds, 500)`` for 100-seed
playlists (the first 100 tracks of random playlists of at least 100 tracks, 50 queries after
one warm-up). Printed per model: fit seconds, fit / build ratio, peak RSS of the process, RSS
after loading the snapshot, p50 and p99 latency. The default model's target: the full MPD
shape (1,000,000 playlists, ~2.26M tracks, ~66M rows) fitted in at most 20 minutes and 16 GB.

``--home DIR`` (one size only) also leaves a home ``segue --home DIR serve`` can serve: the
snapshot as segue saves it in ``DIR/artifacts/snapshot`` and each fitted model saved as
``segue fit`` saves it in ``DIR/artifacts/models/<model>/`` (after the timings, so they are
unchanged). The home has no ``catalog.duckdb``: its tracks have no titles or artist names.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

MODELS = ("popularity", "itemknn", "als", "title", "hybrid")
TARGET_SECONDS = 20 * 60
TARGET_BYTES = 16 * 2**30


def _peak_rss() -> int:
    """Peak resident set size of this process in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _rss() -> int:
    import psutil

    return int(psutil.Process(os.getpid()).memory_info().rss)


def build_snapshot(n_playlists: int, seed: int) -> Any:
    """A snapshot of ``n_playlists`` synthetic MPD playlists, drawn slice by slice."""
    import pandas as pd

    from segue.formats import synth
    from segue.snapshot.arrays import Snapshot

    catalog = synth.SynthCatalog.build(synth.default_catalog_size(n_playlists), seed)
    rows_p: list[np.ndarray] = []
    rows_t: list[np.ndarray] = []
    names: list[str] = []
    for first in range(0, n_playlists, synth.SLICE_SIZE):
        n = min(synth.SLICE_SIZE, n_playlists - first)
        arrays = synth._draw_slice(catalog, first, n)  # the sampler behind `segue synth`
        rows_p.append(np.repeat(np.arange(first, first + n, dtype=np.int64), arrays.lengths))
        rows_t.append(arrays.tracks.astype(np.int64))
        names.extend(arrays.names)
    n_tracks = catalog.n_tracks
    tracks = pd.DataFrame(
        {
            "track_id": np.char.zfill(np.arange(n_tracks).astype(str), 22),
            "artist_key": catalog.track_artist.astype(np.int64),
            "album_id": catalog.track_album.astype(np.int64),
        }
    )
    n_artists = int(catalog.track_artist.max()) + 1
    artists = pd.DataFrame(
        {"artist_key": np.arange(n_artists), "name": [f"artist {a}" for a in range(n_artists)]}
    )
    playlists = pd.DataFrame({"pid": np.arange(n_playlists), "name": names})
    return Snapshot.from_frames(
        tracks, artists, playlists, (np.concatenate(rows_p), np.concatenate(rows_t))
    )


def worker_build(size: int, seed: int, cache: Path) -> dict[str, Any]:
    started = time.perf_counter()
    snap = build_snapshot(size, seed)
    seconds = time.perf_counter() - started
    snap.save(cache)
    return {
        "seconds": seconds,
        "playlists": snap.n_playlists,
        "tracks": snap.n_tracks,
        "played_tracks": int((snap.tracks["playlist_count"] > 0).sum()),
        "rows": int(snap.interactions.nnz),
        "peak_rss": _peak_rss(),
    }


def worker_fit(
    model_name: str, cache: Path, queries: int, seed: int, home: Path | None = None
) -> dict[str, Any]:
    from segue.models.registry import model_class, save_model
    from segue.snapshot.arrays import Snapshot

    snap = Snapshot.load(cache)
    loaded_rss = _rss()
    model = model_class(model_name)()
    started = time.perf_counter()
    model.fit(snap)
    fit_seconds = time.perf_counter() - started
    fit_peak = _peak_rss()
    matrix = snap.interactions
    lengths = np.diff(matrix.indptr)
    long_rows = np.flatnonzero(lengths >= 100)
    rng = np.random.default_rng(seed)
    picks = rng.choice(long_rows, size=min(queries + 1, long_rows.size), replace=False)
    names = snap.playlists["name"].tolist()
    latencies = []
    for i, row in enumerate(picks):
        seeds = matrix.indices[matrix.indptr[row] : matrix.indptr[row] + 100].astype(np.int64)
        t0 = time.perf_counter()
        model.recommend(seeds, 500, title=names[row])
        if i > 0:  # the first query warms caches
            latencies.append(time.perf_counter() - t0)
    lat = np.asarray(latencies) * 1000
    result = {
        "fit_seconds": fit_seconds,
        "peak_rss": fit_peak,
        "loaded_rss": loaded_rss,
        "p50_ms": float(np.percentile(lat, 50)) if lat.size else float("nan"),
        "p99_ms": float(np.percentile(lat, 99)) if lat.size else float("nan"),
        "queries": int(lat.size),
    }
    if home is not None:  # saved as `segue fit` saves it, after the timings
        started = time.perf_counter()
        save_model(
            model, model_name, root=home / "artifacts" / "models", snapshot_id=snap.snapshot_id
        )
        result["save_seconds"] = time.perf_counter() - started
    return result


def _run_worker(args: list[str]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def _gb(n: float) -> str:
    return f"{n / 2**30:.2f} GB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--cache", type=Path, default=None, help="keep snapshots here (reused when present)"
    )
    parser.add_argument(
        "--home",
        type=Path,
        default=None,
        help="leave a servable segue home here: the snapshot and each fitted model (one size only)",
    )
    parser.add_argument("--worker", choices=["build", "fit"], help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker == "build":
        print(json.dumps(worker_build(args.size, args.seed, args.dir)))
        return 0
    if args.worker == "fit":
        print(json.dumps(worker_fit(args.model, args.dir, args.queries, args.seed, args.home)))
        return 0
    if args.home is not None and len(args.sizes) != 1:
        parser.error(f"--home keeps one snapshot: give one size with --sizes, not {args.sizes}")

    with tempfile.TemporaryDirectory(prefix="segue-train-bench-") as tmp_name:
        root = args.cache or Path(tmp_name)
        for size in args.sizes:
            cache = root / f"snapshot-{size}-{args.seed}"
            if (cache / "manifest.json").exists():
                manifest = json.loads((cache / "manifest.json").read_text())
                build = {
                    "seconds": float("nan"),
                    "rows": manifest["n_rows"],
                    "tracks": manifest["n_tracks"],
                    "playlists": manifest["n_playlists"],
                    "played_tracks": -1,
                    "peak_rss": 0,
                }
                print(f"\n{size:,} playlists: snapshot reused from {cache}")
            else:
                build = _run_worker(
                    [
                        "--worker",
                        "build",
                        "--size",
                        str(size),
                        "--seed",
                        str(args.seed),
                        "--dir",
                        str(cache),
                    ]
                )
                if "error" in build:
                    print(
                        f"{size:,} playlists: building the snapshot failed: {build['error']}",
                        file=sys.stderr,
                    )
                    return 1
                print(
                    f"\n{size:,} playlists, {build['rows']:,} rows, {build['tracks']:,} tracks "
                    f"({build['played_tracks']:,} in some playlist): snapshot built in {build['seconds']:.1f} s "
                    f"(reference), peak {_gb(build['peak_rss'])}"
                )
            if args.home is not None:  # the files Snapshot.save wrote, where segue loads them
                target = args.home / "artifacts" / "snapshot"
                if target.exists():
                    shutil.rmtree(target)
                shutil.copytree(cache, target)
                print(f"snapshot copied to {target}")
            print(
                f"{'model':12s} {'fit s':>9s} {'x build':>8s} {'peak RSS':>10s} {'loaded':>10s} {'p50 ms':>8s} {'p99 ms':>8s}"
            )
            for name in args.models:
                res = _run_worker(
                    [
                        "--worker",
                        "fit",
                        "--model",
                        name,
                        "--dir",
                        str(cache),
                        "--queries",
                        str(args.queries),
                        "--seed",
                        str(args.seed),
                        *(["--home", str(args.home)] if args.home is not None else []),
                    ]
                )
                if "error" in res:
                    print(f"{name:12s} failed: {res['error']}")
                    continue
                ratio = (
                    res["fit_seconds"] / build["seconds"]
                    if build["seconds"] == build["seconds"]
                    else float("nan")
                )
                print(
                    f"{name:12s} {res['fit_seconds']:9.1f} {ratio:8.1f} {_gb(res['peak_rss']):>10s} "
                    f"{_gb(res['loaded_rss']):>10s} {res['p50_ms']:8.1f} {res['p99_ms']:8.1f}",
                    flush=True,
                )
                if "save_seconds" in res:
                    print(
                        f"  {name} saved to {args.home / 'artifacts' / 'models' / name} "
                        f"in {res['save_seconds']:.1f} s"
                    )
                if name == "hybrid":
                    ok_t = res["fit_seconds"] <= TARGET_SECONDS * size / 1_000_000
                    ok_m = res["peak_rss"] <= TARGET_BYTES
                    print(
                        f"  hybrid at {size:,}: fit {'within' if ok_t else 'over'} the target pro rata "
                        f"({TARGET_SECONDS * size / 1_000_000:.0f} s for 20 min at 1M), peak memory "
                        f"{'within' if ok_m else 'over'} 16 GB"
                    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
