"""Load benchmark of the HTTP API: requests/s, p50, p99 and errors at 1, 8 and 64 clients.

Starts ``segue serve`` (uvicorn) on 127.0.0.1 in a subprocess on the demo catalog (built on
first use) or on a built home given with ``--home``, then measures with an aiohttp client
session (httpx spends several times more CPU per request, and this client shares the
server's cores):

* ``GET /health`` - the reference: the cost of the server and client alone;
* ``POST /recommend`` - a 10-track playlist of the catalog (a different one per request,
  cycling), ``n`` = 10, the default model unless ``--model`` says otherwise.

Two kinds of load, both bounded (a fixed number of requests or seconds per step):

* **closed loop** (``--clients``, default 1, 8, 64): each client sends its next request as soon
  as the last one is answered. This measures capacity (the most requests/s the server gives).
  Its latency is not a service level: with C clients always waiting, mean latency is C over the
  throughput (Little's law), so 64 clients at 200 requests/s wait 320 ms by construction.
* **open loop** (``--rate``, default 200 requests/s, from ``--open-clients`` = 64 connections):
  requests arrive at random (Poisson) times at the given rate whether or not earlier ones are
  answered, as they do from many independent users. Latency is measured from each request's
  scheduled arrival, so time spent waiting for a free connection counts (no coordinated
  omission). This gives the latency the server holds at that load; if the server cannot keep
  up, the queue and the latencies grow and the step says so.

The load generator runs on the same machine as the server, so on a small machine both share
the cores: the figures are a floor. ``--profile`` also profiles the recommend path in-process
(no HTTP) and prints where the time goes.

    python benchmarks/serve.py                      # demo catalog, default model
    python benchmarks/serve.py --workers 2          # two compute processes (segue.wire.pool)
    python benchmarks/serve.py --home ~/segue --model itemknn --requests 300
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import numpy as np
import orjson


@dataclass
class Step:
    endpoint: str
    clients: int
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    offered: float | None = None  # open loop: the arrival rate asked for (requests/s)
    server_cpu_ms: float = float("nan")  # CPU time of the server processes per request
    client_cpu_ms: float = float("nan")  # CPU time of this load generator per request

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def quantile(self, q: float) -> float:
        return float(np.quantile(self.latencies_ms, q)) if self.latencies_ms else float("nan")


def server_cpu_seconds(proc: subprocess.Popen[bytes]) -> float:
    """User + system CPU seconds of the server process and its workers so far."""
    import psutil

    try:
        root = psutil.Process(proc.pid)
        total = 0.0
        for p in [root, *root.children(recursive=True)]:
            t = p.cpu_times()
            total += t.user + t.system
        return total
    except psutil.Error:
        return float("nan")


def measured(proc: subprocess.Popen[bytes], step: Coroutine[Any, Any, Step]) -> Step:
    """Run ``step`` and record the server's CPU time per request it answered."""
    before, client_before = server_cpu_seconds(proc), time.process_time()
    result = asyncio.run(step)
    spent = server_cpu_seconds(proc) - before
    client = time.process_time() - client_before
    if result.requests:
        result.server_cpu_ms = 1000.0 * spent / result.requests
        result.client_cpu_ms = 1000.0 * client / result.requests
    return result


JSON = {"content-type": "application/json"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare_home(home: Path | None) -> Path:
    """The home to serve: ``home`` as given, else the demo home (built when missing)."""
    if home is not None:
        from segue.core.artifacts import current

        if not (current(home).snapshot_dir / "manifest.json").exists():
            sys.exit(f"error: no built snapshot under {home}: run `segue --home {home} fit` first")
        return home
    from segue.core.home import Home
    from segue.fitting.demo import ensure_demo_ready

    return ensure_demo_ready(Home.resolve(None), log=lambda m: print(m, file=sys.stderr)).root


def playlists(home: Path, count: int, length: int, seed: int) -> list[list[str]]:
    """``count`` seed lists of ``length`` track URIs, each from one catalog playlist."""
    from segue.core.artifacts import current
    from segue.snapshot.arrays import Snapshot

    snap = Snapshot.load(current(home).snapshot_dir)
    rng = np.random.default_rng(seed)
    m = snap.interactions
    sizes = np.diff(m.indptr)
    rows = np.flatnonzero(sizes >= length)
    if rows.size == 0:
        sys.exit(f"error: no playlist with {length} tracks in this catalog")
    chosen = rng.choice(rows, size=min(count, rows.size), replace=False)
    ids = snap.tracks["track_id"].to_numpy()
    out = []
    for p in chosen:
        cols = m.indices[m.indptr[p] : m.indptr[p + 1]]
        out.append([f"spotify:track:{ids[c]}" for c in cols[:length]])
    return out


def start_server(home: Path, port: int, workers: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SEGUE_HOME": str(home)}
    cmd = [sys.executable, "-m", "segue", "--home", str(home), "serve", "--port", str(port)]
    if workers > 1:
        cmd += ["--workers", str(workers)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_ready(base: str, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            sys.exit(f"error: the server exited with {proc.returncode}:\n{err}")
        try:
            r = httpx.get(f"{base}/health", timeout=2)
            if r.status_code == 200 and r.json().get("status") == "ok":
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    sys.exit("error: the server did not become ready")


def _session(base: str, clients: int) -> aiohttp.ClientSession:
    """A client session keeping at most ``clients`` connections to the server alive; requests
    beyond that wait for a free connection, in order."""
    connector = aiohttp.TCPConnector(limit=clients, limit_per_host=clients)
    timeout = aiohttp.ClientTimeout(total=60)
    return aiohttp.ClientSession(base_url=base, connector=connector, timeout=timeout)


async def send(session: aiohttp.ClientSession, endpoint: str, body: bytes) -> bool:
    """One request (``body`` already JSON); True when it was answered with 200."""
    try:
        if endpoint == "/health":
            async with session.get("/health") as r:
                await r.read()
                return r.status == 200
        async with session.post(endpoint, data=body, headers=JSON) as r:
            await r.read()
            return r.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


async def open_connections(session: aiohttp.ClientSession, clients: int) -> None:
    """Open the session's connections before the clock starts."""
    await asyncio.gather(*(send(session, "/health", b"") for _ in range(clients)))


async def run_step(
    base: str, endpoint: str, clients: int, total: int, cap: float, bodies: list[bytes]
) -> Step:
    """Closed loop: ``total`` requests from ``clients`` concurrent clients, each sending its
    next request when its last one is answered; stops early after ``cap`` s."""
    latencies: list[float] = []
    errors = 0
    issued = 0
    async with _session(base, clients) as session:
        await open_connections(session, clients)
        start = time.perf_counter()
        deadline = start + cap

        async def worker() -> None:
            nonlocal issued, errors
            while issued < total and time.perf_counter() < deadline:
                k = issued
                issued += 1
                t0 = time.perf_counter()
                ok = await send(session, endpoint, bodies[k % len(bodies)])
                latencies.append((time.perf_counter() - t0) * 1000.0)
                if not ok:
                    errors += 1

        await asyncio.gather(*(worker() for _ in range(clients)))
        seconds = time.perf_counter() - start
    return Step(endpoint, clients, len(latencies), errors, seconds, latencies)


async def run_open_step(
    base: str,
    endpoint: str,
    clients: int,
    rate: float,
    seconds: float,
    bodies: list[bytes],
    seed: int,
) -> Step:
    """Open loop: ``clients`` independent clients, each with its own keep-alive connection and
    Poisson arrivals, ``rate`` requests per second in all, for ``seconds``. A client's request
    that arrives while its previous one is unanswered waits for the connection; latency counts
    from the scheduled arrival, not from when the request could be sent."""
    # A Poisson process with exactly rate x seconds arrivals (sorted uniform times), each
    # arrival dealt to a client at random: independent Poisson processes of rate / clients.
    rng = np.random.default_rng(seed)
    arrivals = np.sort(rng.uniform(0.0, seconds, size=round(rate * seconds)))
    owner = rng.integers(0, clients, size=arrivals.size)
    latencies: list[float] = []
    errors = 0
    sessions = [_session(base, 1) for _ in range(clients)]
    try:
        await asyncio.gather(*(open_connections(s, 1) for s in sessions))

        async def one(k: int, due: float) -> None:
            nonlocal errors
            ok = await send(sessions[owner[k]], endpoint, bodies[k % len(bodies)])
            latencies.append((time.perf_counter() - due) * 1000.0)
            if not ok:
                errors += 1

        start = time.perf_counter()
        tasks = []
        for k, at in enumerate(arrivals.tolist()):
            due = start + at
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(k, due)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    finally:
        await asyncio.gather(*(s.close() for s in sessions))
    return Step(endpoint, clients, len(latencies), errors, elapsed, latencies, offered=rate)


def profile(home: Path, bodies: list[dict[str, object]], model: str, repeat: int) -> None:
    """Profile ``Service.recommend`` in-process and print the top functions by own+callee time."""
    import cProfile
    import pstats

    from segue.service.engine import Service

    service = Service(home, grow=False)
    first = bodies[0]
    service.recommend(first["seeds"], n=10, model=model)  # type: ignore[arg-type]
    times = []
    prof = cProfile.Profile()
    for k in range(repeat):
        body = bodies[k % len(bodies)]
        t0 = time.perf_counter()
        prof.enable()
        service.recommend(body["seeds"], n=10, model=model)  # type: ignore[arg-type]
        prof.disable()
        times.append((time.perf_counter() - t0) * 1000)
    t_noexp = []
    for k in range(repeat):
        body = bodies[k % len(bodies)]
        t0 = time.perf_counter()
        service.recommend(body["seeds"], n=10, model=model, explain=False)  # type: ignore[arg-type]
        t_noexp.append((time.perf_counter() - t0) * 1000)
    print(
        f"\nin-process Service.recommend ({model}, 10 seeds, n=10): median {statistics.median(times):.2f} ms "
        f"(profiled), without explanations {statistics.median(t_noexp):.2f} ms"
    )
    stats = pstats.Stats(prof)
    stats.sort_stats("cumulative").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", type=Path, help="A built segue home (default: the demo catalog).")
    parser.add_argument(
        "--model", default=None, help="Model to ask for (default: the service's default)."
    )
    parser.add_argument(
        "--requests", type=int, default=400, help="Requests per step (default 400)."
    )
    parser.add_argument(
        "--cap", type=float, default=20.0, help="Seconds at most per step (default 20)."
    )
    parser.add_argument(
        "--clients", default="1,8,64", help="Closed-loop concurrency levels (default 1,8,64)."
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=200.0,
        help="Open-loop arrival rate in requests/s (default 200; 0 skips the open-loop step).",
    )
    parser.add_argument(
        "--open-clients", type=int, default=64, help="Open-loop connections (default 64)."
    )
    parser.add_argument(
        "--duration", type=float, default=10.0, help="Open-loop seconds (default 10)."
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="segue serve --workers: compute processes (default 1).",
    )
    parser.add_argument("--no-explain", action="store_true", help="Ask for no explanations.")
    parser.add_argument(
        "--profile", action="store_true", help="Also profile the recommend path in-process."
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from segue.models.registry import DEFAULT_MODEL

    model = args.model or DEFAULT_MODEL
    home = prepare_home(args.home)
    bodies: list[dict[str, object]] = [
        {"seeds": seeds, "n": 10, "model": model, "explain": not args.no_explain}
        for seeds in playlists(home, 200, 10, args.seed)
    ]
    levels = [int(x) for x in args.clients.split(",") if x.strip()]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_server(home, port, args.workers)
    steps: list[Step] = []
    try:
        wait_ready(base, proc)
        payloads = [orjson.dumps(b) for b in bodies]
        check = httpx.post(f"{base}/recommend", json=bodies[0], timeout=60)
        if check.status_code != 200:
            sys.exit(f"error: POST /recommend answered {check.status_code}: {check.text}")
        for clients in levels:
            for endpoint in ("/health", "/recommend"):
                asyncio.run(
                    run_step(base, endpoint, clients, min(50, args.requests), 5.0, payloads)
                )  # warm-up
                step = measured(
                    proc,
                    run_step(base, endpoint, clients, args.requests, args.cap, payloads),
                )
                steps.append(step)
                print(
                    f"  {endpoint:<11} clients {clients:>3}: {step.requests} requests in {step.seconds:.1f} s",
                    file=sys.stderr,
                )
        if args.rate > 0:
            for endpoint in ("/health", "/recommend"):
                asyncio.run(
                    run_open_step(base, endpoint, args.open_clients, args.rate, 2.0, payloads, 99)
                )  # warm-up
                step = measured(
                    proc,
                    run_open_step(
                        base,
                        endpoint,
                        args.open_clients,
                        args.rate,
                        args.duration,
                        payloads,
                        args.seed,
                    ),
                )
                steps.append(step)
                print(
                    f"  {endpoint:<11} open loop {args.rate:g}/s: {step.requests} requests "
                    f"in {step.seconds:.1f} s",
                    file=sys.stderr,
                )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    print(
        f"\nsegue serve on {home.name or home} ({args.workers} worker(s)), model {model}, "
        f"10-track playlists, n=10, explain={not args.no_explain}, {os.cpu_count()} cores shared with the client"
    )
    header = (
        f"{'endpoint':<16}{'load':>14}{'clients':>8}{'requests':>10}{'errors':>8}{'req/s':>10}"
        f"{'p50 ms':>10}{'p99 ms':>10}{'server CPU':>11}{'client CPU':>11}"
    )
    print(header)
    print("-" * len(header))
    # server/client CPU: CPU milliseconds per request of the server processes / of this client
    for s in steps:
        name = "GET /health" if s.endpoint == "/health" else "POST /recommend"
        load = "closed" if s.offered is None else f"open {s.offered:g}/s"
        print(
            f"{name:<16}{load:>14}{s.clients:>8}{s.requests:>10}{s.errors:>8}{s.rate:>10.1f}"
            f"{s.quantile(0.5):>10.1f}{s.quantile(0.99):>10.1f}{s.server_cpu_ms:>11.2f}{s.client_cpu_ms:>11.2f}"
        )
    print(
        "server CPU / client CPU: CPU milliseconds per request of the server processes / of this client"
    )
    recommend = [s for s in steps if s.endpoint == "/recommend"]
    closed = [s for s in recommend if s.offered is None]
    opened = [s for s in recommend if s.offered is not None]
    if closed and opened:
        capacity = max(s.rate for s in closed)
        o = opened[-1]
        errors = sum(s.errors for s in steps)
        met = errors == 0 and capacity >= o.offered and o.quantile(0.99) <= 100.0  # type: ignore[operator]
        print(
            f"target: capacity {capacity:.1f} requests/s (best closed loop) >= {o.offered:g}, "
            f"p99 {o.quantile(0.99):.1f} ms <= 100 at {o.offered:g} requests/s over {o.clients} "
            f"connections, errors {errors} = 0: {'met' if met else 'not met'}"
        )
    if args.profile:
        profile(home, bodies, model, 50)


if __name__ == "__main__":
    main()
