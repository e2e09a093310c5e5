"""What the all-or-nothing switch of ``segue fit`` costs: the snapshot's content id, writing
with fsync and checksums, and the checks ``segue models`` makes, beside the snapshot's build
time measured in the same run (the reference).

    python benchmarks/fit_artifacts.py                       # 20,000 playlists
    python benchmarks/fit_artifacts.py --playlists 100000 --models popularity itemknn

Data: the synthetic MPD-shaped snapshot of ``benchmarks/train.py``. Per model: its fit time
(reference), the time to write its files alone (``model.save``, the reference for the next)
and to save it as ``segue fit`` does (files, fsync, CRC-32 listing), and the
cheap check (manifests, sizes) and deep check (checksums) of ``segue models`` /
``segue models --verify``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train import build_snapshot


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    from segue.core import artifacts
    from segue.models.registry import model_class, save_model
    from segue.snapshot.arrays import content_id

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--playlists", type=int, default=20_000)
    parser.add_argument("--models", nargs="+", default=["popularity", "title"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    snap = build_snapshot(args.playlists, args.seed)
    build_s = time.perf_counter() - t0
    print(
        f"{args.playlists:,} playlists, {snap.interactions.nnz:,} rows, {snap.n_tracks:,} tracks: "
        f"snapshot built in {build_s:.2f} s (reference)"
    )
    t0 = time.perf_counter()
    content_id(snap)
    print(f"content id (snapshot_id)      {time.perf_counter() - t0:7.2f} s")
    with tempfile.TemporaryDirectory(prefix="segue-fit-artifacts-") as tmp:
        home = Path(tmp)
        gen = artifacts.Generation(home=home, root=home / "artifacts", id=None)
        t0 = time.perf_counter()
        snap.save(gen.snapshot_dir)
        print(
            f"snapshot save (fsync, crc32) {time.perf_counter() - t0:7.2f} s   "
            f"{_du(gen.snapshot_dir) / 2**20:,.0f} MB"
        )
        for name in args.models:
            t0 = time.perf_counter()
            model = model_class(name)().fit(snap)
            fit_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            model.save(home / "plain" / name)  # the model's own files only: the reference
            plain_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            save_model(model, name, root=gen.models_dir, snapshot_id=snap.snapshot_id)
            save_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            cheap = artifacts.model_status(gen, name)
            cheap_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            deep = artifacts.model_status(gen, name, deep=True)
            deep_s = time.perf_counter() - t0
            assert cheap.ok and deep.ok, (cheap, deep)
            print(
                f"{name:12s} fit {fit_s:7.2f} s (reference)  plain save {plain_s:6.2f} s  "
                f"save {save_s:6.2f} s  "
                f"check {cheap_s * 1000:6.1f} ms  verify {deep_s:6.2f} s  "
                f"{_du(gen.model_dir(name)) / 2**20:,.0f} MB"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
