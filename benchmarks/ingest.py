"""Ingest throughput: synthetic full-schema MPD slices into fresh catalogs.

Generates the first ``max(--slices)`` slices of a synthetic full-scale MPD (the catalog sized for
1,000,000 playlists, so each slice looks like one of the real dataset's), then ingests the first
10, 50, ... of them into a fresh catalog per run. Each run is its own subprocess, so its peak
RSS is its own. The reference, measured in the same run on the same files, is reading them and
parsing them with a bare ``orjson.loads``: the floor for any ingest that parses JSON.

    python benchmarks/ingest.py                      # --slices 10 50
    python benchmarks/ingest.py --slices 10 50 --repeat 3 --keep /tmp/ingest-bench
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FULL_MPD_SLICES = 1_000


def child(catalog_path: str, paths: list[str]) -> None:
    """Ingest ``paths`` into a new catalog; print one JSON line with the figures."""
    from segue.catalog import Catalog
    from segue.catalog.ingest import ingest_paths

    started = time.perf_counter()
    with Catalog.open(catalog_path, bulk=True) as catalog:  # as `segue ingest` opens it
        report = ingest_paths(catalog, paths, progress=False)
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(
        json.dumps(
            {
                "seconds": seconds,
                "playlists": report.playlists,
                "rows": report.rows,
                "files": len(report.results),
                "peak_rss_mib": peak_kib / 1024,
                "parse_seconds": report.parse_seconds,
                "write_seconds": report.write_seconds,
                "wait_seconds": report.wait_seconds,
            }
        )
    )


def orjson_reference(paths: list[Path], repeat: int = 3) -> tuple[float, int, int]:
    """Best of ``repeat`` timings of reading and ``orjson.loads``-ing every file, and the
    playlists and rows the files hold (the best, as the machine may be shared)."""
    import orjson

    best = float("inf")
    playlists = rows = 0
    for _ in range(repeat):
        seconds = 0.0
        playlists = rows = 0
        for path in paths:
            began = time.perf_counter()
            doc = orjson.loads(path.read_bytes())
            seconds += time.perf_counter() - began
            playlists += len(doc["playlists"])
            rows += sum(len(p["tracks"]) for p in doc["playlists"])
            del doc
        best = min(best, seconds)
    return best, playlists, rows


def run_ingest(workdir: Path, paths: list[Path], repeat: int = 1) -> dict[str, float]:
    """Ingest ``paths`` into a fresh catalog ``repeat`` times, each in a new subprocess: the
    best time (as for the reference) and the highest peak RSS of the runs."""
    runs = []
    for _ in range(repeat):
        catalog = workdir / f"catalog-{len(paths)}.duckdb"
        for stale in (catalog, catalog.with_name(catalog.name + ".wal")):
            stale.unlink(missing_ok=True)
        proc = subprocess.run(
            [sys.executable, __file__, "--child", str(catalog), *map(str, paths)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            sys.exit(f"ingest of {len(paths)} slices failed:\n{proc.stderr}")
        figures: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
        figures["catalog_mib"] = catalog.stat().st_size / 2**20
        runs.append(figures)
    best = min(runs, key=lambda f: f["seconds"])
    return {**best, "peak_rss_mib": max(f["peak_rss_mib"] for f in runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, nargs="+", default=[10, 50], help="runs to make")
    parser.add_argument("--keep", type=Path, help="keep slices and catalogs in this folder")
    parser.add_argument("--seed", type=int, default=0, help="synthetic data seed")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="ingest runs per size: the best time and the highest peak RSS are shown",
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1:])
        return
    if any(n < 1 for n in args.slices):
        parser.error(f"--slices must be positive, got {args.slices}")
    if args.repeat < 1:
        parser.error(f"--repeat must be positive, got {args.repeat}")

    from segue.formats import synth

    tmp = None
    if args.keep is None:
        tmp = tempfile.TemporaryDirectory(prefix="segue-ingest-bench-")
        workdir = Path(tmp.name)
    else:
        workdir = args.keep
        workdir.mkdir(parents=True, exist_ok=True)
    try:
        n_slices = max(args.slices)
        print(f"generating {n_slices} synthetic slices in {workdir} ...", file=sys.stderr)
        cpu_began = time.process_time()
        result = synth.synthesize(
            n_slices * synth.SLICE_SIZE,
            workdir / "slices",
            seed=args.seed,
            n_tracks=synth.default_catalog_size(FULL_MPD_SLICES * synth.SLICE_SIZE),
        )
        cpu = time.process_time() - cpu_began
        size_mib = sum(p.stat().st_size for p in result.paths) / 2**20
        print(
            f"synth: {n_slices} slices, {result.n_rows:,} rows, {size_mib:,.0f} MiB "
            f"in {result.seconds:.1f} s wall ({result.n_playlists / result.seconds:,.0f} playlists/s), "
            f"{cpu:.1f} s CPU ({result.n_playlists / cpu:,.0f} playlists per CPU second)"
        )
        header = (
            f"{'slices':>6} {'playlists':>9} {'rows':>10} {'ingest s':>9} {'playlists/s':>11} "
            f"{'rows/s':>9} {'peak RSS':>9} {'catalog':>9} {'orjson s':>9} {'x orjson':>8}"
        )
        print(header)
        runs = []
        splits = []
        for k in sorted(set(args.slices)):
            paths = result.paths[:k]
            ref_seconds, ref_playlists, ref_rows = orjson_reference(paths)
            fig = run_ingest(workdir, paths, args.repeat)
            if (fig["playlists"], fig["rows"]) != (ref_playlists, ref_rows):
                sys.exit(
                    f"ingest saw {fig['playlists']} playlists / {fig['rows']} rows, "
                    f"the files hold {ref_playlists} / {ref_rows}"
                )
            runs.append((k, fig["seconds"]))
            splits.append(
                f"{k:>6} slices: parsing {fig['parse_seconds'] / k:.3f} s/slice (parse thread, "
                f"and the writer when it would wait), "
                f"writing {fig['write_seconds'] / k:.3f} s/slice, writer waiting for the parser "
                f"{fig['wait_seconds'] / k:.3f} s/slice"
            )
            print(
                f"{k:>6} {fig['playlists']:>9,.0f} {fig['rows']:>10,.0f} {fig['seconds']:>9.2f} "
                f"{fig['playlists'] / fig['seconds']:>11,.0f} {fig['rows'] / fig['seconds']:>9,.0f} "
                f"{fig['peak_rss_mib']:>6,.0f} MiB {fig['catalog_mib']:>5,.0f} MiB "
                f"{ref_seconds:>9.2f} {fig['seconds'] / ref_seconds:>8.1f}"
            )
        print("\n".join(splits))
        k, seconds = runs[-1]
        flat = FULL_MPD_SLICES * seconds / k
        print(
            f"projected full MPD ({FULL_MPD_SLICES:,} slices) at the {k}-slice rate: "
            f"{flat / 60:,.1f} min"
        )
        if len(runs) > 1:
            (k0, s0), (k1, s1) = runs[-2], runs[-1]
            marginal = (s1 - s0) / (k1 - k0)
            print(
                f"projected full MPD at the marginal rate between {k0} and {k1} slices "
                f"({marginal:.2f} s/slice): {(s1 + marginal * (FULL_MPD_SLICES - k1)) / 60:,.1f} min"
            )
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    main()
