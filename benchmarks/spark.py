"""The Spark engine against the one-machine path: ALS quality and time on the dev split, and
ingest + ALS time and memory on generated MPD-shaped playlists, projected to a cluster.

    python benchmarks/spark.py --dev                       # dev split: Spark ALS vs implicit ALS
    python benchmarks/spark.py --playlists 100000          # generated playlists: ingest + ALS
    python benchmarks/spark.py --dev --playlists 1000000 --executors 4 8 16

``--dev``: ``segue challenge make`` on ../shared/data/mpd/mpd-followers10-dev.tar.gz (100
playlists per category, seed 0), the training slices plus the challenge seeds ingested into a
fresh home, then in one run, at the same factors, regularization, alpha and iterations:
implicit's ALS (``segue fit --model als``'s model) and Spark MLlib's (``fit --engine spark``),
each scored by the challenge protocol (R-precision, NDCG). Spark's time is counted from the
session's start (JVM start-up included) to the written artifact; its start-up is also printed
alone. The target: Spark's NDCG and R-precision within 3% of implicit's.

``--playlists N``: ``segue synth`` writes N playlists; the one-machine ingest (the reference,
unless ``--no-reference``) and ``ingest --engine spark`` read them into fresh homes, then
``fit --engine spark --model als`` trains. Each step runs in its own process; its wall time,
the peak memory of its whole process tree (Spark's JVM and Python workers included, sampled
every 0.2 s) and the peak size of Spark's scratch files (``spark.local.dir`` set to
``W/scratch``, plus ALS's checkpoints; sampled every 5 s) are printed. The projection to N executors is printed with its reasoning.
With ``--work W`` the generated files are kept (and reused by the next run on ``W``);
``--steps als`` fits again on the Spark home ``W`` already holds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEV = REPO.parent / "shared" / "data" / "mpd" / "mpd-followers10-dev.tar.gz"
CONF = {"spark.sql.shuffle.partitions": "8", "spark.driver.memory": "6g"}


def _tree_rss(pid: int) -> int:
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def _bytes_under(folders: list[Path]) -> int:
    total = 0
    for folder in folders:
        for root, _, files in os.walk(folder):
            for name in files:
                with contextlib.suppress(OSError):  # Spark deletes files as it goes
                    total += os.stat(os.path.join(root, name)).st_size
    return total


def run_measured(
    cmd: list[str], label: str, disk: list[Path] | None = None, log: Path | None = None
) -> dict[str, Any]:
    """Run ``cmd``; its wall seconds, the peak RSS of its process tree and, with ``disk``, the
    peak bytes held in those folders (Spark's scratch: shuffle files, checkpoints)."""
    began = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    peak_disk = 0
    last_disk = 0.0

    def sample() -> None:
        nonlocal peak, peak_disk, last_disk
        while proc.poll() is None:
            peak = max(peak, _tree_rss(proc.pid))
            if disk and time.perf_counter() - last_disk >= 5.0:
                peak_disk = max(peak_disk, _bytes_under(disk))
                last_disk = time.perf_counter()
            time.sleep(0.2)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    out, err = proc.communicate()
    watcher.join()
    seconds = time.perf_counter() - began
    if proc.returncode:
        if log is not None:  # the whole of it: a JVM's stack trace outgrows any tail
            log.write_text(err)
            sys.stderr.write(f"(its whole stderr: {log})\n")
        sys.stderr.write(err[-3000:])
        raise SystemExit(f"{label} failed ({proc.returncode})")
    steps = [line for line in err.splitlines() if line.startswith("spark ")]
    scratch = f"   scratch disk peak {peak_disk / 2**30:5.2f} GiB" if disk else ""
    print(f"  {label:<28} {seconds:8.1f} s   peak {peak / 2**30:5.2f} GiB{scratch}", flush=True)
    for line in steps:  # printed now, so a later step's failure does not lose them
        print(f"    {line}", flush=True)
    return {
        "seconds": seconds,
        "peak_bytes": peak,
        "peak_disk_bytes": peak_disk,
        "stdout": out,
        "steps": steps,
    }


def segue(home: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "segue", "--home", str(home), *args]


def spark_args(cores: int, scratch: Path | None = None, driver_memory: str = "6g") -> list[str]:
    out = ["--spark-master", f"local[{cores}]"]
    conf = {**CONF, "spark.driver.memory": driver_memory}
    if scratch is not None:  # Spark's shuffle and spill files, where they can be measured
        conf["spark.local.dir"] = str(scratch)
    for key, value in conf.items():
        out += ["--spark-conf", f"{key}={value}"]
    return out


# the dev split --------------------------------------------------------------------------------
def dev(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from segue.catalog import Catalog
    from segue.catalog.ingest import ingest_paths
    from segue.core import artifacts, config
    from segue.evaluation import make_challenge
    from segue.evaluation.formats import write_seed_slice
    from segue.evaluation.run import recommend_fn_for, run_challenge
    from segue.evaluation.score import score_submission
    from segue.models.als import ALSRecommender
    from segue.models.registry import load_model
    from segue.snapshot.arrays import Snapshot
    from segue.snapshot.from_catalog import build_snapshot
    from segue.spark.session import start
    from segue.spark.train import ALSParams, fit_on_spark

    ch = work / "challenge"
    make_challenge([args.data], ch, per_category=100, seed=0, progress=False)
    seeds = work / "seeds" / "mpd.slice.challenge-seeds.json"
    write_seed_slice(ch / "challenge_set.json", seeds)
    home = work / "dev-home"
    with Catalog.open(home / "catalog.duckdb") as catalog:
        ingest_paths(catalog, [ch / "train", seeds], progress=False)
        snapshot = build_snapshot(catalog)
    p = ALSParams(
        factors=args.factors,
        regularization=args.regularization,
        iterations=args.iterations,
        alpha=args.alpha,
    )
    print(
        f"dev split: {snapshot.n_playlists:,} playlists x {snapshot.n_tracks:,} tracks, "
        f"{snapshot.interactions.nnz:,} rows; factors {p.factors}, regularization "
        f"{p.regularization}, alpha {p.alpha}, iterations {p.iterations}",
        flush=True,
    )

    def score(model: Any, name: str) -> dict[str, float]:
        recommend, fallback = recommend_fn_for(model, snapshot)
        sub = work / f"{name}.csv.gz"
        run_challenge(ch / "challenge_set.json", sub, recommend, fallback=fallback, progress=False)
        got = score_submission(sub, ch / "truth.json")
        return {k: float(got["overall"][k]) for k in ("r_precision", "ndcg")}

    began = time.perf_counter()
    implicit = ALSRecommender(
        factors=p.factors,
        regularization=p.regularization,
        iterations=p.iterations,
        alpha=p.alpha,
    ).fit(snapshot)
    implicit_seconds = time.perf_counter() - began
    implicit_scores = score(implicit, "implicit")
    began = time.perf_counter()
    session = start(f"local[{args.cores}]", CONF, app="segue benchmark")
    startup = time.perf_counter() - began
    results = {}
    regs = [p.regularization, *args.spark_reg]
    for reg in regs:
        q = ALSParams(p.factors, reg, p.iterations, p.alpha)
        t0 = time.perf_counter()
        with config.temporary_home(home):
            fit_on_spark(session, ["als"], home=home, lake=str(work / "lake"), params=q)
        fit_seconds = time.perf_counter() - t0
        gen = artifacts.current(home)
        snap = Snapshot.load(gen.snapshot_dir)
        model = load_model("als", snap, root=gen.models_dir)
        results[reg] = {"seconds": fit_seconds, **score(model, f"spark-{reg}")}
    session.stop()
    print(f"  {'model':<34} {'fit s':>8} {'R-prec':>8} {'NDCG':>8}  vs implicit")
    print(
        f"  {'implicit ALS':<34} {implicit_seconds:8.1f} {implicit_scores['r_precision']:8.4f} "
        f"{implicit_scores['ndcg']:8.4f}"
    )
    for i, (reg, r) in enumerate(results.items()):
        seconds = r["seconds"] + (startup if i == 0 else 0.0)
        label = f"Spark ALS regParam {reg}" + (" (+start-up)" if i == 0 else "")
        rel = [
            100 * (r[k] / implicit_scores[k] - 1) if implicit_scores[k] else 0.0
            for k in ("r_precision", "ndcg")
        ]
        print(
            f"  {label:<34} {seconds:8.1f} {r['r_precision']:8.4f} {r['ndcg']:8.4f}  "
            f"{rel[0]:+.1f}% / {rel[1]:+.1f}%"
        )
    print(f"  Spark session start-up alone: {startup:.1f} s", flush=True)
    return {"implicit": {"seconds": implicit_seconds, **implicit_scores}, "spark": results}


# generated playlists ---------------------------------------------------------------------------
def scale(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    data = work / "synth"
    n = args.playlists
    slices = -(-n // 1000)  # segue synth writes 1,000 playlists a slice
    if len(list(data.glob("mpd.slice.*.json"))) == slices:
        # A kept --work folder from an earlier run: the same generated files, not rewritten.
        print(f"{n:,} generated playlists (reusing {data})", flush=True)
    else:
        began = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "segue", "synth", "-q", "--playlists", str(n), "-o", str(data)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        print(f"{n:,} generated playlists ({time.perf_counter() - began:.0f} s to write)")
    out: dict[str, Any] = {}
    if args.reference:
        out["ingest_local"] = run_measured(
            segue(work / "local", "ingest", "-q", str(data)), "ingest (one machine)"
        )
    home = work / "spark"
    scratch = work / "scratch"
    scratch.mkdir(exist_ok=True)
    if "ingest" in args.steps:
        out["ingest_spark"] = run_measured(
            segue(
                home,
                "ingest",
                "--engine",
                "spark",
                *spark_args(args.cores, scratch, args.driver_memory),
                str(data),
            ),
            "ingest --engine spark",
            disk=[scratch],
            log=work / "ingest-spark.err",
        )
    if "als" not in args.steps:
        project(out, args)
        return out
    out["als_spark"] = run_measured(
        segue(
            home,
            "fit",
            "--engine",
            "spark",
            "--model",
            "als",
            *spark_args(args.cores, scratch, args.driver_memory),
        ),
        "fit --engine spark (als)",
        disk=[scratch, home / "lake" / "_checkpoints"],
        log=work / "fit-spark.err",
    )
    project(out, args)
    return out


def _step_seconds(steps: list[str], prefix: str) -> float:
    """The elapsed seconds a step log line ends with ('... (12.3 s)')."""
    for line in steps:
        if prefix in line:
            return float(line.rsplit("(", 1)[1].split()[0])
    return 0.0


def project(out: dict[str, Any], args: argparse.Namespace) -> None:
    """Amdahl's law over the measured steps: what is distributed scales with the cores, the
    rest does not. Each step measured in this run is projected (``--steps`` may run one)."""
    parts: dict[str, tuple[float, float]] = {}  # step: (distributed s, one-machine s)
    measured = []
    if "ingest_spark" in out:
        ing = out["ingest_spark"]["steps"]
        total = out["ingest_spark"]["seconds"]
        # One machine whatever the cluster: the catalog load (DuckDB) and the process/JVM start.
        spark = _step_seconds(ing, "wrote the tables")
        load = _step_seconds(ing, "loaded them") - spark
        parts["ingest"] = (spark, total - spark)
        measured.append(
            f"ingest {total:.0f} s = Spark {spark:.0f} s + catalog load {load:.0f} s"
            f" + start {total - spark - load:.0f} s"
        )
    if "als_spark" in out:
        total = out["als_spark"]["seconds"]
        spark = _step_seconds(out["als_spark"]["steps"], "trained ALS")
        parts["ALS fit"] = (spark, total - spark)  # then snapshot, artifacts (one machine)
        measured.append(
            f"ALS fit {total:.0f} s = Spark {spark:.0f} s + snapshot/artifacts/start "
            f"{total - spark:.0f} s"
        )
    if not parts:
        return
    print("projection to a cluster (Amdahl: distributed steps / cores, the rest unchanged):")
    print(f"  measured on {args.cores} local cores: " + "; ".join(measured))
    for executors in args.executors:
        speed = executors * args.executor_cores / args.cores
        # Shuffles cross the network on a cluster: a factor of 1.5 on the distributed part
        # (an assumption, not a measurement) for the data Spark moves between executors.
        said = [
            f"{step} ~{spread * 1.5 / speed + alone:.0f} s"
            for step, (spread, alone) in parts.items()
        ]
        print(f"  {executors:3d} executors x {args.executor_cores} cores: " + ", ".join(said))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dev", action="store_true", help="Spark ALS vs implicit ALS on the dev split")
    ap.add_argument("--playlists", type=int, default=0, help="generated playlists for ingest + ALS")
    ap.add_argument("--data", type=Path, default=DEV, help="the dev files (.tar.gz)")
    ap.add_argument("--no-reference", dest="reference", action="store_false")
    ap.add_argument(
        "--steps",
        nargs="+",
        choices=["ingest", "als"],
        default=["ingest", "als"],
        help="with --playlists: 'als' alone fits on the Spark home a kept --work already holds",
    )
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument(
        "--driver-memory",
        default="6g",
        help="spark.driver.memory for --playlists (local mode: the driver is the executor)",
    )
    ap.add_argument("--factors", type=int, default=64)
    ap.add_argument("--regularization", type=float, default=0.1)
    ap.add_argument("--iterations", type=int, default=15)
    ap.add_argument("--alpha", type=float, default=20.0)
    ap.add_argument(
        "--spark-reg", type=float, nargs="*", default=[], help="more regParam values for Spark"
    )
    ap.add_argument("--executors", type=int, nargs="*", default=[4, 16, 64])
    ap.add_argument("--executor-cores", type=int, default=4)
    ap.add_argument("--work", type=Path, default=None, help="keep the files here")
    args = ap.parse_args(argv)
    if not args.dev and not args.playlists:
        ap.error("give --dev and/or --playlists N")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    with tempfile.TemporaryDirectory(prefix="segue-spark-bench-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        result: dict[str, Any] = {}
        if args.dev:
            result["dev"] = dev(args, work)
        if args.playlists:
            result["scale"] = scale(args, work)
        (work / "result.json").write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
