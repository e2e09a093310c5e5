"""Normal clients' latency with hostile requests mixed in, beside a clean run of the same load.

Starts ``segue serve`` (uvicorn) on 127.0.0.1 on a built home (default: the demo catalog, built
on first use) and runs, for ``--seconds`` each:

1. **clean**: normal clients only - an open loop of ``POST /recommend`` with a 10-track
   playlist of the catalog, ``--rate`` requests/s from ``--clients`` connections (Poisson
   arrivals; latency from each request's scheduled arrival, as in ``benchmarks/serve.py``);
2. **hostile**: the same normal load, and beside it ``--attackers`` clients sending hostile
   requests back to back (a closed loop: as many as the server will take): a thousand distinct
   unknown names, the most distinct names allowed (each an unknown name searched word by word
   with suggestions), a thousand unknown track ids, every path trick of ``tests/test_api_hostile.py``
   in one request, playlist links, malformed and non-UTF-8 bodies.

It prints p50/p99 of the normal clients in both runs and their ratio (the target: p99 with
hostile traffic within 2x of the clean run), what the hostile requests got, and the time one
request with 1,000 distinct unknown names takes (``--src`` serves another source tree, e.g. an
older checkout, to compare).

    python benchmarks/hostile.py                         # demo catalog, default model
    python benchmarks/hostile.py --model itemknn --rate 20 --seconds 20
    python benchmarks/hostile.py --src /path/to/old/src  # the same figures for older code
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import aiohttp
import httpx
import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve import (  # a sibling script, not a package
    JSON,
    _session,
    free_port,
    playlists,
    prepare_home,
    run_open_step,
    wait_ready,
)


def hostile_bodies(home: Path, model: str) -> list[tuple[str, bytes]]:
    """(kind, raw body) of each hostile request."""
    from segue.service.engine import MAX_NAME_LOOKUPS

    def body(**fields: object) -> bytes:
        return orjson.dumps({"model": model, **fields})

    tricks = [
        f"{home}/catalog.duckdb/",
        "/etc/passwd.txt/",
        "/etc/hostname.json/.",
        "x.txt//",
        "../../../etc/passwd.csv",
        "~/.bashrc.m3u",
        "file:///etc/passwd",
        "C:\\secrets\\a.txt",
    ]
    return [
        ("1000 distinct unknown names", body(seeds=[f"love {i}" for i in range(1000)])),
        (
            f"{MAX_NAME_LOOKUPS} distinct unknown names",
            body(seeds=[f"zqx{i} wvk{i} unknown{i}" for i in range(MAX_NAME_LOOKUPS)]),
        ),
        (
            "1000 unknown track ids",
            body(seeds=[f"spotify:track:{i:022d}" for i in range(1000)]),
        ),
        ("path tricks", body(seeds=tricks)),
        ("playlist links", body(seeds=[f"spotify:playlist:{i:022d}" for i in range(5)])),
        ("malformed JSON", b'{"seeds": ["x", '),
        ("not UTF-8", b'{"seeds": ["\xff\xfe"]}'),
        ("coerced types", b'{"seeds": ["x"], "n": "10", "explain": "yes"}'),
    ]


async def attack(
    base: str, clients: int, seconds: float, bodies: list[tuple[str, bytes]]
) -> tuple[Counter[tuple[str, int]], dict[str, list[float]]]:
    """``clients`` clients sending hostile requests back to back for ``seconds``."""
    statuses: Counter[tuple[str, int]] = Counter()
    times: dict[str, list[float]] = {}
    async with _session(base, clients) as session:
        deadline = time.perf_counter() + seconds

        async def one_client(offset: int) -> None:
            k = offset
            while time.perf_counter() < deadline:
                kind, raw = bodies[k % len(bodies)]
                k += 1
                t0 = time.perf_counter()
                try:
                    async with session.post("/recommend", data=raw, headers=JSON) as r:
                        await r.read()
                        status = r.status
                except (aiohttp.ClientError, TimeoutError):
                    status = 0
                times.setdefault(kind, []).append((time.perf_counter() - t0) * 1000.0)
                statuses[(kind, status)] += 1

        await asyncio.gather(*(one_client(i) for i in range(clients)))
    return statuses, times


async def mixed(
    base: str,
    args: argparse.Namespace,
    normal: list[bytes],
    hostile: list[tuple[str, bytes]],
) -> tuple[object, Counter[tuple[str, int]], dict[str, list[float]]]:
    attack_task = asyncio.create_task(attack(base, args.attackers, args.seconds, hostile))
    step = await run_open_step(
        base, "/recommend", args.clients, args.rate, args.seconds, normal, args.seed
    )
    statuses, times = await attack_task
    return step, statuses, times


def one_request_seconds(base: str, raw: bytes) -> tuple[int, float]:
    t0 = time.perf_counter()
    r = httpx.post(f"{base}/recommend", content=raw, headers=JSON, timeout=600)
    return r.status_code, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", type=Path, help="A built segue home (default: the demo).")
    parser.add_argument("--model", default="hybrid")
    parser.add_argument("--rate", type=float, default=20.0, help="Normal requests/s.")
    parser.add_argument("--clients", type=int, default=16, help="Normal connections.")
    parser.add_argument("--attackers", type=int, default=2, help="Hostile connections.")
    parser.add_argument("--seconds", type=float, default=20.0, help="Length of each run.")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--src", type=Path, help="Serve this source tree instead of this one.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--single-only", action="store_true", help="Only time the single hostile requests."
    )
    args = parser.parse_args()

    home = prepare_home(args.home)
    normal = [
        orjson.dumps({"seeds": seeds, "n": 10, "model": args.model})
        for seeds in playlists(home, 200, 10, args.seed)
    ]
    hostile = hostile_bodies(home, args.model)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "SEGUE_HOME": str(home)}
    if args.src is not None:
        env["PYTHONPATH"] = str(args.src.resolve())
    cmd = [sys.executable, "-m", "segue", "--home", str(home), "serve", "--port", str(port)]
    if args.workers > 1:
        cmd += ["--workers", str(args.workers)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_ready(base, proc)
        for raw in normal[:5]:  # warm up (the name index, the model's caches)
            httpx.post(f"{base}/recommend", content=raw, headers=JSON, timeout=60)
        status, took = one_request_seconds(base, hostile[0][1])
        print(f"one request with 1,000 distinct unknown names: {status} in {took:.2f} s")
        status, took = one_request_seconds(base, hostile[1][1])
        print(f"one request with {hostile[1][0]}: {status} in {took:.2f} s")
        if args.single_only:
            return
        clean = asyncio.run(
            run_open_step(
                base, "/recommend", args.clients, args.rate, args.seconds, normal, args.seed
            )
        )
        step, statuses, times = asyncio.run(mixed(base, args, normal, hostile))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def line(name: str, s: object) -> float:
        p50, p99 = s.quantile(0.5), s.quantile(0.99)  # type: ignore[attr-defined]
        print(
            f"{name:<26} {s.requests:>6} req  {s.rate:>7.1f} req/s  "  # type: ignore[attr-defined]
            f"p50 {p50:>8.1f} ms  p99 {p99:>8.1f} ms  errors {s.errors}"  # type: ignore[attr-defined]
        )
        return float(p99)

    print(
        f"\nnormal clients: {args.rate:g} req/s from {args.clients} connections, model "
        f"{args.model}, {args.workers} compute process(es), {args.seconds:g} s per run"
    )
    clean_p99 = line("clean run", clean)
    mixed_p99 = line(f"with {args.attackers} hostile clients", step)
    print(f"p99 with hostile traffic / clean p99: {mixed_p99 / clean_p99:.2f}x (target <= 2x)")
    print("\nhostile requests (kind, status: count, median ms):")
    for kind, _ in hostile:
        got = {st: n for (k, st), n in statuses.items() if k == kind}
        med = float(np.median(times[kind])) if times.get(kind) else float("nan")
        print(f"  {kind:<28} {got}  median {med:.1f} ms")


if __name__ == "__main__":
    main()
