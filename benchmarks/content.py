"""Content models at MPD scale: latency of a 100-track playlist to top-500, and memory.

Usage::

    python benchmarks/content.py                       # 200,000 and 2,262,292 tracks
    python benchmarks/content.py --sizes 200000 --queries 50 --reference-queries 50

A catalog of generated tracks (artists with Zipf-distributed genres from a 6,000-genre
vocabulary, 30 % of artists without genres but with crowd tags from a 20,000-word vocabulary,
12 audio features with 10 % of tracks unknown, popularity with 5 % unknown, release years with
3 % unknown, 2 % duplicate versions) goes through the real feature builder. Each query is a
playlist of 100 tracks drawn from a few genres.

Measured in the same run, beside segue:

* **reference** - the original project's approach: the features in a pandas DataFrame (TF-IDF
  with ``max_features=3``, scaled audio, one-hot popularity/artist popularity/era columns),
  the playlist's rows dropped from a copy of the table, scikit-learn's ``cosine_similarity``
  over the whole table for the three similarities, then ``sort_values``. Its top-50 is checked
  against segue's :class:`~segue.models.content.OriginalScoring`.
* **sklearn blocks** - scikit-learn ``cosine_similarity`` per block over segue's sparse feature
  matrix and a full ``argsort``: checks :class:`~segue.models.content.Model2`'s top-50.

At 2,262,292 tracks the reference runs on fewer queries (``--reference-queries-large``), said in
the table. Timings are wall-clock on whatever machine runs this; nothing here is asserted.
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import psutil
from sklearn.metrics.pairwise import cosine_similarity

from segue.core.records import AUDIO_FEATURES
from segue.models.base import Recommender
from segue.models.content import Model1, Model2, OriginalScoring
from segue.snapshot.arrays import Snapshot
from segue.snapshot.features import build_content_features

MPD_TRACKS = 2_262_292
MPD_ARTISTS = 295_860
PLAYLIST = 100
TOP = 500
CHECK = 50


# ---------------------------------------------------------------------------------------------
# generated catalog
# ---------------------------------------------------------------------------------------------


def zipf_choice(
    rng: np.random.Generator, vocab: int, size: int, exponent: float = 1.1
) -> np.ndarray:
    weights = 1.0 / np.arange(1, vocab + 1) ** exponent
    return rng.choice(vocab, size=size, p=weights / weights.sum())


def generate(n_tracks: int, seed: int = 0) -> Snapshot:
    rng = np.random.default_rng(seed)
    n_artists = max(10, round(n_tracks * MPD_ARTISTS / MPD_TRACKS))
    # artists: 70 % with 1-8 genres, 30 % none (their tracks get crowd tags)
    with_genres = rng.random(n_artists) < 0.7
    n_terms = np.where(
        with_genres, np.clip(rng.poisson(3.0, n_artists), 1, 8), rng.integers(4, 11, n_artists)
    )
    genre_ids = zipf_choice(rng, 6_000, int(n_terms.sum()))
    tag_ids = zipf_choice(rng, 20_000, int(n_terms.sum()))
    genres: list[list[str]] = []
    pos = 0
    for a in range(n_artists):
        k = int(n_terms[a])
        genres.append([f"genre {g}" for g in genre_ids[pos : pos + k]] if with_genres[a] else [])
        pos += k
    artists = pd.DataFrame(
        {
            "artist_key": np.arange(n_artists),
            "name": [f"artist {a}" for a in range(n_artists)],
            "genres": genres,
            "popularity": np.where(
                rng.random(n_artists) < 0.9, rng.integers(0, 101, n_artists), np.nan
            ),
        }
    )
    # tracks: heavy-tailed tracks per artist
    artist_of = np.minimum(
        (rng.pareto(1.2, n_tracks) * n_artists / 20).astype(np.int64), n_artists - 1
    )
    artist_of = rng.permutation(n_artists)[artist_of]
    names = np.asarray([f"song {i}" for i in range(n_tracks)], dtype=object)
    dup = np.flatnonzero(rng.random(n_tracks) < 0.02)
    dup = dup[dup > 0]
    names[dup] = names[dup - 1]
    artist_of[dup] = artist_of[dup - 1]
    year = np.clip(2020 - rng.gamma(1.5, 9.0, n_tracks), 1940, 2020).round()
    tracks = pd.DataFrame(
        {
            "track_id": [f"{i:022d}" for i in range(n_tracks)],
            "name": names,
            "artist_key": artist_of,
            "release_year": np.where(rng.random(n_tracks) < 0.03, np.nan, year),
            "popularity": np.where(
                rng.random(n_tracks) < 0.05, np.nan, rng.beta(2, 5, n_tracks) * 100
            ),
            "playlist_count": np.minimum(rng.zipf(1.6, n_tracks), 50_000).astype(np.int32),
        }
    )
    audio_known = rng.random(n_tracks) >= 0.10
    for col in AUDIO_FEATURES:
        values = rng.random(n_tracks).astype(np.float32)
        tracks[col] = np.where(audio_known, values, np.nan)
    snapshot = Snapshot.from_frames(tracks, artists, pd.DataFrame({"name": []}))
    # crowd tags stand in as the genre-less artists' terms (no playlists are generated)
    tagged = ~with_genres
    pos = 0
    tag_lists: list[list[str]] = []
    for a in range(n_artists):
        k = int(n_terms[a])
        tag_lists.append([f"tag {t}" for t in tag_ids[pos : pos + k]] if tagged[a] else genres[a])
        pos += k
    snapshot.artists["genres"] = tag_lists
    return snapshot


def playlists(snapshot: Snapshot, count: int, seed: int) -> list[np.ndarray]:
    """``count`` playlists of 100 tracks, each drawn from the artists of a few genres."""
    rng = np.random.default_rng(seed)
    genres = snapshot.track_genres()
    by_term: dict[str, list[int]] = {}
    for i, terms in enumerate(genres[: min(len(genres), 400_000)]):
        for t in terms[:2]:
            by_term.setdefault(t, []).append(i)
    common = [t for t, members in by_term.items() if len(members) >= 200]
    out = []
    for _ in range(count):
        picked = rng.choice(len(common), size=3, replace=False)
        pool = np.unique(np.concatenate([by_term[common[p]] for p in picked]))
        out.append(np.sort(rng.choice(pool, size=PLAYLIST, replace=False)).astype(np.int64))
    return out


# ---------------------------------------------------------------------------------------------
# references
# ---------------------------------------------------------------------------------------------


def original_dataframe(model: OriginalScoring) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """The original's feature table: one dense float64 column per feature."""
    cols: dict[str, np.ndarray] = {}
    for j, name in enumerate(model.genre_names_):
        cols[f"genre|{name}"] = model.genres_[:, j].astype(np.float64)
    for j in range(model.audio_.shape[1]):
        cols[f"audio|{j}"] = model.audio_[:, j].astype(np.float64)
    onehot: dict[str, np.ndarray] = {}
    for prefix, codes in (
        ("tpop", model._code_tp),
        ("apop", model._code_ap),
        ("era", model._code_era),
    ):
        for value in np.unique(codes):
            if value == model._lookup_size - 1:
                continue  # unknown: no column
            onehot[f"{prefix}|{value}"] = (codes == value).astype(np.float64)
    frame = pd.DataFrame({**cols, **onehot})
    groups = {
        "genres": [c for c in frame.columns if c.startswith("genre|")],
        "pop_era": list(onehot),
        "all": list(frame.columns),
    }
    return frame, groups


def reference_original(
    frame: pd.DataFrame, groups: dict[str, list[str]], seeds: np.ndarray, k: int
) -> np.ndarray:
    """The original approach: sum the playlist, drop it, three cosine_similarity calls, sort."""
    playlist_vector = frame.iloc[seeds].sum(axis=0)
    rest = frame.drop(frame.index[seeds])
    sims = pd.DataFrame(index=rest.index)
    for key, cols in groups.items():
        sims[key] = cosine_similarity(
            rest[cols].to_numpy(), playlist_vector[cols].to_numpy().reshape(1, -1)
        )[:, 0]
    sims["track"] = rest.index
    ranked = sims.sort_values(
        ["genres", "pop_era", "all", "track"], ascending=[False, False, False, True]
    )
    return ranked["track"].to_numpy()[:k]


def reference_blocks(model: Model2, seeds: np.ndarray, k: int) -> np.ndarray:
    """Weighted per-block cosine_similarity over segue's sparse matrix, then a full sort."""
    f = model.features_
    total = np.zeros(f.n_tracks)
    for block, cols in f.blocks.items():
        x = f.matrix[:, cols]
        q = np.asarray(x[seeds].sum(axis=0))
        total += model.weights_[block] * cosine_similarity(x, q).ravel()
    total[seeds] = -np.inf
    return np.argsort(-total, kind="stable")[:k]


# ---------------------------------------------------------------------------------------------
# measuring
# ---------------------------------------------------------------------------------------------


def latencies(fn: Callable[[np.ndarray], Any], queries: list[np.ndarray]) -> np.ndarray:
    fn(queries[0])  # warm-up: first-touch page faults, lazy imports
    out = []
    for q in queries:
        started = time.perf_counter()
        fn(q)
        out.append(time.perf_counter() - started)
    return np.asarray(out) * 1000.0


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def bench(n_tracks: int, n_queries: int, n_reference: int, seed: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    snapshot = generate(n_tracks, seed)
    t_gen = time.perf_counter() - t0
    queries = playlists(snapshot, n_queries, seed + 1)

    t0 = time.perf_counter()
    features = build_content_features(snapshot, era_width=10, crowd_tag_mode="none")
    t_features = time.perf_counter() - t0
    artist_keys = snapshot.track_artist_keys()
    m = features.matrix
    print(
        f"[{n_tracks:,} tracks] generated in {t_gen:.1f} s, features in {t_features:.1f} s: "
        f"{m.shape[1]:,} columns, {m.nnz / m.shape[0]:.1f} non-zeros per track, "
        f"{features.nbytes / 2**20:.0f} MiB (CSR); RSS {rss_mb():.0f} MiB"
    )
    model1 = Model1().fit_features(features, artist_keys)
    model2 = Model2().fit_features(features, artist_keys)
    plain2 = Model2(collapse_duplicates=False).fit_features(features, artist_keys)
    t0 = time.perf_counter()
    original = OriginalScoring().fit(snapshot)
    t_original = time.perf_counter() - t0

    segue_models: list[tuple[str, Recommender]] = [
        ("segue Model1", model1),
        ("segue Model2", model2),
        ("segue OriginalScoring", original),
    ]
    for label, model in segue_models:
        ms = latencies(functools.partial(model.recommend, n=TOP), queries)
        rows.append({"tracks": n_tracks, "method": label, "queries": len(ms), "ms": ms})

    # check Model2 against scikit-learn per block (first few queries)
    checks = queries[: min(5, len(queries))]
    same_blocks = sum(
        np.array_equal(plain2.recommend(q, CHECK)[0], reference_blocks(plain2, q, CHECK))
        for q in checks
    )
    ms_blocks = latencies(lambda q: reference_blocks(plain2, q, TOP), checks)
    rows.append(
        {
            "tracks": n_tracks,
            "method": "sklearn blocks (segue features)",
            "queries": len(ms_blocks),
            "ms": ms_blocks,
            "check": f"Model2 top-{CHECK} identical on {same_blocks}/{len(checks)}",
        }
    )

    frame, groups = original_dataframe(original)
    frame_mb = frame.memory_usage(deep=True).sum() / 2**20
    ref_queries = queries[:n_reference]
    ms_ref = latencies(lambda q: reference_original(frame, groups, q, TOP), ref_queries)
    same = sum(
        np.array_equal(original.recommend(q, CHECK)[0], reference_original(frame, groups, q, CHECK))
        for q in ref_queries[: min(10, len(ref_queries))]
    )
    rows.append(
        {
            "tracks": n_tracks,
            "method": "reference: pandas + cosine_similarity",
            "queries": len(ms_ref),
            "ms": ms_ref,
            "check": f"OriginalScoring top-{CHECK} identical on {same}/{min(10, len(ref_queries))}",
        }
    )
    model_mb = model1.nbytes / 2**20
    print(
        f"[{n_tracks:,} tracks] memory: feature matrix {features.nbytes / 2**20:.0f} MiB, Model1 state "
        f"{model_mb:.0f} MiB (matrix + scoring structures), reference DataFrame {frame_mb:.0f} MiB "
        f"(max_features=3); OriginalScoring fit {t_original:.1f} s; RSS {rss_mb():.0f} MiB"
    )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="content model latency and memory")
    parser.add_argument("--sizes", type=int, nargs="+", default=[200_000, MPD_TRACKS])
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--reference-queries", type=int, default=50, help="at sizes below 1M")
    parser.add_argument(
        "--reference-queries-large", type=int, default=3, help="at sizes of 1M and more"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rows: list[dict[str, Any]] = []
    for size in args.sizes:
        n_ref = args.reference_queries if size < 1_000_000 else args.reference_queries_large
        rows.extend(bench(size, args.queries, n_ref, args.seed))
    print()
    print("| tracks | method | queries | p50 ms | p99 ms | x faster than reference (p50) | check |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | --- |")
    for size in args.sizes:
        group = [r for r in rows if r["tracks"] == size]
        ref = next(r for r in group if r["method"].startswith("reference"))
        ref_p50 = float(np.percentile(ref["ms"], 50))
        for r in group:
            p50, p99 = np.percentile(r["ms"], 50), np.percentile(r["ms"], 99)
            speedup = "" if r is ref else f"{ref_p50 / p50:,.0f}x"
            print(
                f"| {size:,} | {r['method']} | {r['queries']} | {p50:,.1f} | {p99:,.1f} | {speedup} | {r.get('check', '')} |"
            )
    print()
    print("Top-500 of one 100-track playlist; p99 over few queries is close to the maximum.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
