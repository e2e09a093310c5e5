"""Memory of ``segue serve --workers N``: the process tree's PSS with model arrays mapped
(shared between the compute processes) and copied into each process (``SEGUE_ARRAYS=copy``).

    python benchmarks/serve_memory.py --playlists 200000 --home /tmp/mem-home
    python benchmarks/serve_memory.py --home /tmp/mem-home --workers 1 2 4   # reuse the home
    python benchmarks/serve_memory.py --playlists 1000000 --home /tmp/full-home  # full MPD shape
    python benchmarks/serve_memory.py --home /tmp/full-home --breakdown  # one process's memory
    python benchmarks/serve_memory.py --home /tmp/named --names-from /tmp/full-home  # with names

Builds a home when ``--home`` has no snapshot yet: MPD-shaped playlists from the sampler of
:mod:`segue.formats.synth` (the one behind ``segue synth``) turned into a snapshot (as
``benchmarks/train.py`` does), saved as segue saves it, and each of ``--models`` fitted and
saved in its own subprocess. Then for each worker count and each mode it starts ``segue serve
--workers N``, waits for ``/health``, sends ``--requests`` recommend requests per model from
``2 N`` connections at once (so every worker loads every model), and prints the PSS of the
whole process tree (psutil ``memory_full_info().pss`` summed: a page shared by k processes
counts 1/k in each) and of each compute process. PSS counts only pages a process has touched.

``--names-from HOME`` makes ``--home`` a copy of ``HOME`` whose tracks, artists and albums have
names of real lengths (the sampler leaves them None, which understates what names cost each
process): words drawn from a made-up vocabulary, 1-5 per title, 1-3 per artist, 1-4 per album.
The models are hard links to ``HOME``'s files and the snapshot keeps its id: no model reads
track, artist or album names.

``--breakdown`` instead loads the service in this process as a compute process does (snapshot,
name index, each model), answers the same requests, and prints after each step its memory from
``/proc/self/smaps_rollup``: anonymous (this process's own: what each further worker adds
again) and file-backed (mapped arrays and libraries: shared between the processes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent


def _gb(n: float) -> str:
    return f"{n / 2**30:.2f} GB"


def build_home(home: Path, playlists: int, seed: int, models: list[str]) -> None:
    snap_dir = home / "artifacts" / "snapshot"
    if not (snap_dir / "manifest.json").exists():
        sys.path.insert(0, str(HERE))
        from train import build_snapshot  # type: ignore[import-not-found]

        started = time.perf_counter()
        snap = build_snapshot(playlists, seed)
        snap.save(snap_dir)
        print(
            f"snapshot: {snap.n_playlists:,} playlists, {snap.n_tracks:,} tracks, "
            f"{snap.interactions.nnz:,} rows in {time.perf_counter() - started:.0f} s",
            file=sys.stderr,
        )
        del snap
    for name in models:
        if (home / "artifacts" / "models" / name / "model.json").exists():
            continue
        started = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--fit", name, "--home", str(home)], check=True)
        print(f"fitted {name} in {time.perf_counter() - started:.0f} s", file=sys.stderr)


def named_copy(src: Path, dst: Path, seed: int) -> None:
    """``dst``: ``src`` with names of real lengths (see the module's docstring)."""
    import pandas as pd

    from segue.snapshot.arrays import Snapshot

    if (dst / "artifacts" / "snapshot" / "manifest.json").exists():
        return
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocab = np.array(
        ["".join(rng.choice(letters, rng.integers(3, 9))).capitalize() for _ in range(30_000)]
    )

    def names(n: int, low: int, high: int) -> np.ndarray:
        counts = rng.integers(low, high + 1, n)
        words = vocab[rng.zipf(1.3, int(counts.sum())) % len(vocab)].tolist()
        ends = np.cumsum(counts).tolist()
        out = np.empty(n, dtype=object)
        out[:] = [" ".join(words[e - c : e]) for c, e in zip(counts.tolist(), ends, strict=True)]
        return out

    snap = Snapshot.load(src / "artifacts" / "snapshot")
    artists = snap.artists.copy()
    artists["name"] = names(len(artists), 1, 3)
    tracks = snap.tracks.copy()
    tracks["name"] = names(len(tracks), 1, 5)
    tracks["artist_name"] = artists["name"].reindex(tracks["artist_key"].to_numpy()).to_numpy()
    tracks["album_name"] = names(len(tracks), 1, 4)
    for column in ("name", "artist_name", "album_name"):
        tracks[column] = pd.Series(tracks[column]).astype(snap.tracks[column].dtype)
    named = Snapshot(
        tracks=tracks,
        artists=artists,
        playlists=snap.playlists,
        interactions=snap.interactions,
        manifest=dict(snap.manifest),  # the same snapshot id: the models fit it
    )
    named.save(dst / "artifacts" / "snapshot")
    for path in (src / "artifacts" / "models").rglob("*"):
        target = dst / path.relative_to(src)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, target)
    print(
        f"named copy of {src} in {dst} in {time.perf_counter() - started:.0f} s "
        f"(mean title {tracks['name'].str.len().mean():.1f} characters)",
        file=sys.stderr,
    )


def fit_one(name: str, home: Path) -> None:
    from segue.models.registry import model_class, save_model
    from segue.snapshot.arrays import Snapshot

    snap = Snapshot.load(home / "artifacts" / "snapshot")
    model = model_class(name)().fit(snap)
    save_model(model, name, root=home / "artifacts" / "models", snapshot_id=snap.snapshot_id)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tree_pss(pid: int) -> tuple[int, list[int]]:
    """PSS of process ``pid`` and its descendants, and of each child process."""
    import psutil

    root = psutil.Process(pid)
    total = 0
    children = []
    for proc in [root, *root.children(recursive=True)]:
        try:
            pss = int(proc.memory_full_info().pss)
        except psutil.Error:
            continue
        total += pss
        if proc.pid != pid:
            children.append(pss)
    return total, children


def seed_lists(home: Path, count: int, length: int, seed: int) -> list[list[str]]:
    from segue.snapshot.arrays import Snapshot

    return seeds_of(Snapshot.load(home / "artifacts" / "snapshot"), count, length, seed)


def seeds_of(snap: Any, count: int, length: int, seed: int) -> list[list[str]]:
    """``count`` playlists of ``snap`` with at least ``length`` tracks, their first tracks
    (only those ids read: the whole column as Python strings would weigh in a breakdown)."""
    m = snap.interactions
    rows = np.flatnonzero(np.diff(m.indptr) >= length)
    chosen = np.random.default_rng(seed).choice(rows, size=min(count, rows.size), replace=False)
    tracks = [m.indices[m.indptr[p] : m.indptr[p + 1]][:length] for p in chosen]
    ids = snap.tracks["track_id"].take(np.concatenate(tracks)).tolist() if tracks else []
    out, at = [], 0
    for t in tracks:
        out.append([f"spotify:track:{i}" for i in ids[at : at + t.size]])
        at += t.size
    return out


async def send_all(base: str, bodies: list[dict[str, Any]], clients: int) -> int:
    import aiohttp

    errors = 0
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(base_url=base, timeout=timeout) as session:

        async def client() -> None:
            nonlocal errors
            while not queue.empty():
                body = queue.get_nowait()
                async with session.post("/recommend", json=body) as r:
                    await r.read()
                    errors += r.status != 200

        await asyncio.gather(*(client() for _ in range(clients)))
    return errors


def measure(
    home: Path, workers: int, how: str, models: list[str], seeds: list[list[str]], requests: int
) -> dict[str, Any]:
    import httpx

    port = free_port()
    env = {**os.environ, "SEGUE_ARRAYS": how}
    cmd = [sys.executable, "-m", "segue", "--home", str(home), "serve", "--port", str(port)]
    cmd += ["--workers", str(workers)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        started = time.monotonic()
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                sys.exit(f"error: the server exited with {proc.returncode}:\n{err}")
            try:
                r = httpx.get(f"{base}/health", timeout=2)
                if r.status_code == 200 and r.json().get("status") == "ok":
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() - started > 1800:
                sys.exit("error: the server did not become ready")
            time.sleep(0.5)
        ready = time.monotonic() - started
        loaded, _ = tree_pss(proc.pid)
        bodies = [
            {"seeds": seeds[i % len(seeds)], "n": 10, "model": model, "explain": True}
            for model in models
            for i in range(requests)
        ]
        errors = asyncio.run(send_all(base, bodies, 2 * workers))
        total, children = tree_pss(proc.pid)
        return {
            "workers": workers,
            "arrays": how,
            "ready_s": ready,
            "pss_loaded": loaded,
            "pss": total,
            "workers_pss": children,
            "errors": errors,
        }
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _rollup() -> dict[str, int]:
    """This process's ``/proc/self/smaps_rollup`` figures, in bytes."""
    out = {}
    with open("/proc/self/smaps_rollup") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1]) * 1024
    return out


def breakdown(home: Path, models: list[str], requests: int, seed: int) -> None:
    """Memory of one process loading and serving as a compute process does, step by step."""
    from segue.core.threads import pin_single_thread_blas
    from segue.service.engine import service_for_api

    pin_single_thread_blas()
    print("| step | RSS | anonymous (own) | file-backed (shared) |")
    print("|---|---|---|---|")

    def row(step: str) -> None:
        r = _rollup()
        own = r["Anonymous"]
        print(f"| {step} | {_gb(r['Rss'])} | {_gb(own)} | {_gb(r['Rss'] - own)} |", flush=True)

    from segue.models.registry import model_class

    for name in models:  # the code first, so that the steps below are data
        model_class(name)
    import lightgbm  # noqa: F401 - the hybrid's rankers

    row("imports")
    service = service_for_api(home)
    seeds = seeds_of(service.snapshot, 100, 10, seed)
    row("snapshot")
    service.warm()
    row("name index")
    for name in models:
        service.model(name)
        row(f"model {name}")
    for name in models:
        for i in range(requests):
            service.recommend(seeds[i % len(seeds)], n=10, model=name, explain=True)
        row(f"{requests} requests, {name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="home to build or reuse")
    parser.add_argument("--playlists", type=int, default=200_000, help="shape of a new home")
    parser.add_argument("--models", nargs="+", default=["popularity", "itemknn", "als", "hybrid"])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--arrays", nargs="+", default=["copy", "map"], choices=["copy", "map"])
    parser.add_argument("--requests", type=int, default=40, help="requests per model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--breakdown", action="store_true", help="one process, step by step")
    parser.add_argument(
        "--names-from", type=Path, help="make --home a copy of this home, with names"
    )
    parser.add_argument("--fit", help=argparse.SUPPRESS)
    parser.add_argument("--copy-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.fit:
        fit_one(args.fit, args.home)
        return 0
    if args.copy_only:
        named_copy(args.names_from, args.home, args.seed)
        return 0
    if args.names_from:  # in its own process, so that --breakdown starts clean
        copy = ["--home", str(args.home), "--names-from", str(args.names_from), "--copy-only"]
        subprocess.run([sys.executable, __file__, *copy, "--seed", str(args.seed)], check=True)
    build_home(args.home, args.playlists, args.seed, args.models)
    if args.breakdown:
        breakdown(args.home, args.models, args.requests, args.seed)
        return 0
    seeds = seed_lists(args.home, 100, 10, args.seed)
    rows = []
    for workers in args.workers:
        for how in args.arrays:
            row = measure(args.home, workers, how, args.models, seeds, args.requests)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    print(f"home {args.home}, models {', '.join(args.models)}; PSS of the process tree")
    print(
        "| workers | arrays | /health ok | tree PSS loaded | tree PSS after requests | "
        "each compute process | errors |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        each = ", ".join(_gb(x) for x in r["workers_pss"])
        print(
            f"| {r['workers']} | {r['arrays']} | {r['ready_s']:.0f} s | {_gb(r['pss_loaded'])} | "
            f"{_gb(r['pss'])} | {each} | {r['errors']} |"
        )
    for how in args.arrays:
        one = next((r["pss"] for r in rows if r["arrays"] == how and r["workers"] == 1), None)
        if one:
            ratios = ", ".join(
                f"{r['workers']}: {r['pss'] / one:.2f}x"
                for r in rows
                if r["arrays"] == how and r["workers"] != 1
            )
            print(f"{how}: tree PSS against one worker: {ratios}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
