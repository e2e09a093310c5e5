"""What genres fetched from an open source are worth to the content models, on the demo's table.

Usage::

    python benchmarks/genre_sources.py                  # 150 test playlists, 5 seeds, seed 0
    python benchmarks/genre_sources.py --n-test 100 --k 10 --seed 3

The protocol is ``scripts/eval_content.py``'s (the TidyTuesday table the demo catalog is built
from, 471 real playlists; test playlists with at least 20 tracks, ``k`` seeds each, the rest
held out; NDCG and R-precision over 500 recommendations). Genres are varied, nothing else:

* **none** — no artist genres at all: what a new Spotify app gets in 2026 (development mode:
  empty ``genres``). Crowd tags (playlist title words) still stand in, as in segue.
* **replay** — the artists' genres as a source answers them: a Last.fm-shaped replay server on
  127.0.0.1 answers ``artist.getTopTags`` for each artist with the genre labels of the
  *training* playlists it appears in (weights 0-100 relative to its most frequent label, as
  Last.fm gives them); ``segue``'s own fetch path (``run_fetch`` with the Last.fm provider,
  artists matched by name, at most 6 tags of weight >= 10 kept) puts them in a real catalog,
  and the model reads them back from it.
* **direct** — the same training labels put straight on the artists (every label, no source,
  no filtering): the reference the replay is compared with.

The replay measures the way genres travel (HTTP, matching, tag filtering, catalog), not how
many artists MusicBrainz or Last.fm actually know: that needs the network.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "src"))

from eval_content import (  # noqa: E402
    DEFAULT_CSV,
    build_snapshot,
    evaluate,
    load_table,
    make_queries,
    make_splits,
)
from segue.catalog import Catalog  # noqa: E402
from segue.catalog.fetch import run_fetch  # noqa: E402
from segue.core.records import ArtistRef, TrackFacts  # noqa: E402
from segue.core.text import normalise_name  # noqa: E402
from segue.models.content import Model1, Model2  # noqa: E402
from segue.providers.base import RetryPolicy  # noqa: E402
from segue.providers.lastfm import LastfmProvider  # noqa: E402
from segue.providers.ratelimit import RateLimiter  # noqa: E402

REPLAY_KEY = "replay-key"


def replay_server(tags: dict[str, list[tuple[str, int]]]) -> ThreadingHTTPServer:
    """A Last.fm ``artist.getTopTags`` replay keyed by normalised artist name."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out at once: no 40 ms ACK stalls

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            q = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
            name = q.get("artist", "")
            found = tags.get(normalise_name(name))
            if q.get("api_key") != REPLAY_KEY:
                body: dict[str, Any] = {"error": 10, "message": "Invalid API key"}
            elif found is None:
                body = {"error": 6, "message": "The artist you supplied could not be found"}
            else:
                body = {
                    "toptags": {
                        "tag": [{"count": c, "name": t, "url": ""} for t, c in found],
                        "@attr": {"artist": name},
                    }
                }
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class ReplayLastfm(LastfmProvider):
    """Last.fm provider with large batches: the replay is local and unlimited."""

    batch_sizes = {"artist_facts": 500}  # noqa: RUF012


def training_tags(table: Any, train: np.ndarray) -> dict[str, list[tuple[str, int]]]:
    """Per normalised artist name, its training labels with Last.fm-style weights."""
    counts: dict[str, Counter[str]] = {}
    artist_of = table.tracks["artist_name"].to_numpy()
    for p in train:
        labels = table.playlists["labels"].iloc[p]
        for name in set(artist_of[table.members[p]].tolist()):
            counts.setdefault(normalise_name(name), Counter()).update(labels)
    out = {}
    for norm, c in counts.items():
        top = max(c.values())
        out[norm] = [(t, max(1, round(100 * n / top))) for t, n in c.most_common()]
    return out


def fetch_genres_through_replay(
    table: Any, train: np.ndarray, workdir: Path
) -> tuple[dict[str, list[str]], dict[str, Any]]:
    """Genres per normalised artist name, as segue's fetch path stores them from the replay."""
    tags = training_tags(table, train)
    server = replay_server(tags)
    base = f"http://127.0.0.1:{server.server_address[1]}/2.0/"
    path = workdir / "catalog.duckdb"
    started = time.perf_counter()
    with Catalog.open(path) as catalog:
        records = [
            TrackFacts(r.track_id, name=str(r.name), artists=[ArtistRef(str(r.artist_name))],
                       source="table")
            for r in table.tracks.itertuples()
            if isinstance(r.name, str)
        ]  # fmt: skip
        catalog.upsert_tracks(records)
        provider = ReplayLastfm(
            REPLAY_KEY,
            base,
            policy=RetryPolicy(attempts=2, backoff_base=0.01, backoff_cap=0.05, timeout=10),
            limiter=RateLimiter(100_000, 1.0),
        )
        report = run_fetch(
            catalog,
            [provider],
            kinds=("artist_facts",),
            progress=False,
            log_path=workdir / "fetch-errors.log",
        )
        provider.close()
        rows = catalog.con.execute(
            "SELECT norm_name, genres FROM artists WHERE genres IS NOT NULL"
        ).fetchall()
    server.shutdown()
    server.server_close()
    tally = report.tallies[("lastfm", "artist_facts")]
    info = {
        "artists asked": tally.asked,
        "artists with genres": tally.found,
        "seconds": round(time.perf_counter() - started, 1),
        "complete": report.complete,
    }
    return {norm: list(g) for norm, g in rows}, info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--n-test", type=int, default=150)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    table = load_table(args.csv)
    splits = make_splits(table, seed=args.seed, n_test=args.n_test, n_validation=0)
    train = np.sort(np.r_[splits["rest"], splits["validation"]])
    queries = make_queries(table, splits["test"], args.k, args.seed)
    direct = build_snapshot(table, train, queries)  # genres from training labels, all of them

    with tempfile.TemporaryDirectory() as tmp:
        fetched, info = fetch_genres_through_replay(table, train, Path(tmp))
    print(
        f"replay fetch: {info['artists asked']:,} artists asked, {info['artists with genres']:,} "
        f"given genres, {info['seconds']} s, complete={info['complete']}"
    )
    none = build_snapshot(table, train, queries)
    none.artists["genres"] = [[] for _ in range(len(none.artists))]
    replay = build_snapshot(table, train, queries)
    replay.artists["genres"] = [
        fetched.get(normalise_name(str(n)), []) for n in replay.artists["name"]
    ]
    with_genres = sum(1 for g in replay.artists["genres"] if len(g))
    print(
        f"{len(queries)} test playlists, {args.k} seeds each, {len(table.artists):,} artists "
        f"({with_genres:,} with replayed genres), seed {args.seed}"
    )
    print("| model | genres | NDCG | R-precision |\n| --- | --- | ---: | ---: |")
    for model in (Model1, Model2):
        for label, snap in (("none", none), ("replay", replay), ("direct", direct)):
            fitted = model().fit(snap)
            r = evaluate(fitted, snap, queries, table)
            print(f"| {model.name} | {label} | {r['ndcg']:.4f} | {r['r_precision']:.4f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
