"""Pinned results of the demo: what every model answers to 200 fixed queries, and its
challenge-style evaluation figures, so a change meant to keep behaviour can show it does.

Usage::

    python scripts/make_pins.py            # write tests/data/pins/{queries,expected}.json
    python scripts/make_pins.py --check    # compare with them: every difference, exit 1 on any
    python scripts/make_pins.py --new-queries   # choose the queries again before writing
    python scripts/make_pins.py --check --home PATH   # a demo home built already (no build)

The demo home is built in a temporary folder the way ``segue demo`` builds it (the bundled
catalog, then :func:`segue.fitting.build.build` of the default models). The queries are read
from ``queries.json`` (chosen once from the demo's playlists with a fixed seed and kept):

* 200 queries through :class:`segue.service.Service` (the command line's path): seed tracks
  of a demo playlist (1, 5 or 25 of them, some with the playlist's title), a title only, an
  artist's name, and free text (track names, a playlist's name). Each model's answer is the
  top 20 track ids in order, or the kind of error it raised.
* A small challenge on the demo's playlists (categories 1, 2, 3, 4, 5 and 7 of the RecSys
  Challenge 2018; seeds and held-out tracks drawn from each playlist): each built model's 500
  recommendations through :func:`segue.evaluation.run.recommend_fn_for` (the evaluation's
  path, with its popularity fallback), scored by :mod:`segue.evaluation.score` (R-precision,
  NDCG, clicks; overall and per category, rounded to 6 decimals). The models have seen these
  playlists whole at fit, so the figures are in-sample: they pin behaviour, they do not
  measure quality.

``tests/test_pins.py`` makes the same comparison in the test suite.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PINS = REPO / "tests" / "data" / "pins"
QUERIES = PINS / "queries.json"
EXPECTED = PINS / "expected.json"

#: The models pinned: every model the demo builds.
MODELS = ("popularity", "itemknn", "als", "title", "model1", "model2", "hybrid")
#: Tracks asked for each query.
N = 20
#: The seed of the queries' choice.
SEED = 0
#: Queries of each kind (200 in all).
KINDS = {
    "seeds-1": 40,
    "seeds-5": 30,
    "seeds-5-title": 20,
    "seeds-25": 25,
    "title": 25,
    "artist": 25,
    "text-track": 20,
    "text-playlist": 15,
}
#: Challenge categories evaluated: (number, title given, seeds), and playlists per category.
CATEGORIES = ((1, True, 0), (2, True, 1), (3, True, 5), (4, False, 5), (5, True, 10), (7, True, 25))
PER_CATEGORY = 12
#: Figures are rounded to this many decimals.
DECIMALS = 6


# ---------------------------------------------------------------------------------------------
# the demo home
# ---------------------------------------------------------------------------------------------


def build_demo_home(home: Path, *, log: Callable[[str], None] | None = None) -> Path:
    """The demo catalog and its snapshot and default models, built in ``home`` as ``segue demo``
    builds them (without switching this process's home). Returns ``home``."""
    from segue.catalog.bundled import ensure_demo_catalog
    from segue.fitting.build import build

    home.mkdir(parents=True, exist_ok=True)
    ensure_demo_catalog(home)
    build(home=home, log=log or (lambda message: None))
    return home


def _snapshot(home: Path) -> Any:
    from segue.core import artifacts
    from segue.snapshot.arrays import Snapshot

    return Snapshot.load(artifacts.current(home).snapshot_dir)


# ---------------------------------------------------------------------------------------------
# choosing the queries (once; they are kept in queries.json)
# ---------------------------------------------------------------------------------------------


def choose_queries(snap: Any, seed: int = SEED) -> dict[str, Any]:
    """The 200 service queries and the evaluation's playlists, drawn from the demo snapshot."""
    rng = np.random.default_rng(seed)
    matrix = snap.interactions.tocsr()
    sizes = np.diff(matrix.indptr)
    track_ids = snap.tracks["track_id"].to_numpy()
    names = snap.playlists["name"].to_numpy()

    def tracks_of(row: int) -> np.ndarray:
        return np.asarray(matrix.indices[matrix.indptr[row] : matrix.indptr[row + 1]])

    def playlist(min_tracks: int) -> int:
        return int(rng.choice(np.flatnonzero(sizes >= min_tracks)))

    def seed_ids(row: int, k: int) -> list[str]:
        picked = rng.choice(tracks_of(row), size=k, replace=False)
        return [f"spotify:track:{track_ids[i]}" for i in picked]

    queries: list[dict[str, Any]] = []

    def add(kind: str, inputs: list[str], title: str | None) -> None:
        queries.append(
            {"id": f"q{len(queries):03d}", "kind": kind, "inputs": inputs, "title": title}
        )

    for kind, count in KINDS.items():
        for _ in range(count):
            if kind.startswith("seeds-"):
                k = int(kind.split("-")[1])
                row = playlist(k + 1)
                add(kind, seed_ids(row, k), str(names[row]) if kind.endswith("title") else None)
            elif kind == "title":
                add(kind, [], str(names[playlist(1)]))
            elif kind == "artist":
                track = int(rng.choice(tracks_of(playlist(1))))
                add(kind, [str(snap.tracks["artist_name"].iloc[track])], None)
            elif kind == "text-track":
                track = int(rng.choice(tracks_of(playlist(1))))
                add(kind, [str(snap.tracks["name"].iloc[track])], None)
            else:
                add(kind, [str(names[playlist(1)])], None)
    challenge: list[dict[str, Any]] = []
    used: set[int] = set()
    for number, titled, k in CATEGORIES:
        for _ in range(PER_CATEGORY):
            pool = np.flatnonzero(sizes >= k + 10)
            row = int(rng.choice(np.setdiff1d(pool, sorted(used))))
            used.add(row)
            order = rng.permutation(tracks_of(row))
            challenge.append(
                {
                    "pid": int(snap.playlists["pid"].iloc[row]),
                    "category": number,
                    "title": str(names[row]) if titled else None,
                    "seeds": [str(track_ids[i]) for i in order[:k]],
                    "held_out": [str(track_ids[i]) for i in order[k:]],
                }
            )
    return {
        "about": "chosen by scripts/make_pins.py from the demo snapshot (seed "
        f"{seed}); see its docstring",
        "n": N,
        "queries": queries,
        "challenge": challenge,
    }


# ---------------------------------------------------------------------------------------------
# answering them
# ---------------------------------------------------------------------------------------------


def answer_queries(
    home: Path, queries: Sequence[Mapping[str, Any]], models: Sequence[str], n: int = N
) -> dict[str, dict[str, Any]]:
    """``{model: {query id: [track ids] or {"error": kind}}}`` through the service."""
    from segue.core.errors import SegueError
    from segue.service.engine import Service

    # No growth, no network, and no time limit on looking names up: the same answer whatever
    # the machine's load.
    service = Service(home, grow=False, outbound=False, name_budget=None)
    out: dict[str, dict[str, Any]] = {}
    for model in models:
        answers: dict[str, Any] = {}
        for query in queries:
            try:
                rec = service.recommend(
                    list(query["inputs"]), n=n, model=model, title=query["title"], explain=False
                )
            except (ValueError, LookupError, SegueError) as exc:
                answers[query["id"]] = {"error": type(exc).__name__}
                continue
            answers[query["id"]] = [t.id for t in rec.tracks]
        out[model] = answers
    return out


def evaluate_models(
    home: Path, challenge: Sequence[Mapping[str, Any]], models: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """``{model: {"overall": {metric: value}, "per_category": {category: {metric: value}}}}``."""
    from segue.core import artifacts
    from segue.evaluation.formats import N_RECOMMENDATIONS
    from segue.evaluation.run import recommend_fn_for
    from segue.evaluation.score import aggregate, score_playlist
    from segue.models.registry import load_model

    snap = _snapshot(home)
    generation = artifacts.current(home)
    artist_of = dict(
        zip(snap.tracks["track_id"].tolist(), snap.tracks["artist_key"].tolist(), strict=True)
    )
    out: dict[str, dict[str, Any]] = {}
    for model_name in models:
        model = load_model(model_name, snap, root=generation.models_dir)
        recommend, fallback = recommend_fn_for(model, snap)
        scored = []
        for case in challenge:
            seeds = list(case["seeds"])
            # as segue.evaluation.run.run_challenge: seeds and repeats dropped, the popularity
            # fallback completes a short list
            chosen = dict.fromkeys(
                t for t in recommend(seeds, case["title"], N_RECOMMENDATIONS) if t not in seeds
            )
            for track in fallback:
                if len(chosen) >= N_RECOMMENDATIONS:
                    break
                if track not in seeds:
                    chosen.setdefault(track)
            recs = list(chosen)[:N_RECOMMENDATIONS]
            held = list(case["held_out"])
            scored.append(
                (
                    int(case["category"]),
                    score_playlist(
                        recs,
                        held,
                        held_out_artists=[artist_of.get(t) for t in held],
                        recommended_artists=[artist_of.get(t) for t in recs[: len(set(held))]],
                    ),
                )
            )
        figures = aggregate(scored)
        out[model_name] = {
            "overall": {m: round(v, DECIMALS) for m, v in figures["overall"].items()},
            "per_category": {
                str(c): {m: round(v, DECIMALS) for m, v in scores.items()}
                for c, scores in figures["per_category"].items()
            },
        }
    return out


def compute(
    home: Path, pinned: Mapping[str, Any], models: Sequence[str] = MODELS
) -> dict[str, Any]:
    """What the built demo in ``home`` answers to the pinned queries and challenge."""
    return {
        "models": list(models),
        "recommendations": answer_queries(home, pinned["queries"], models, int(pinned["n"])),
        "evaluation": evaluate_models(home, pinned["challenge"], models),
    }


# ---------------------------------------------------------------------------------------------
# comparing
# ---------------------------------------------------------------------------------------------


def differences(expected: Mapping[str, Any], got: Mapping[str, Any]) -> list[str]:
    """One line per difference between pinned and computed results (none: the same)."""
    lines: list[str] = []
    if list(expected["models"]) != list(got["models"]):
        lines.append(f"models: pinned {expected['models']}, got {got['models']}")
    for model in expected["models"]:
        want = expected["recommendations"].get(model, {})
        have = got["recommendations"].get(model, {})
        for qid in sorted(set(want) | set(have)):
            a, b = want.get(qid), have.get(qid)
            if a != b:
                lines.append(f"{model} {qid}: {_describe(a, b)}")
        want_eval = expected["evaluation"].get(model, {})
        have_eval = got["evaluation"].get(model, {})
        for path, a, b in _leaves("", want_eval, have_eval):
            if a != b:
                lines.append(f"{model} evaluation {path}: pinned {a}, got {b}")
    return lines


def _describe(want: Any, have: Any) -> str:
    if isinstance(want, list) and isinstance(have, list):
        first = next(
            (i for i, (x, y) in enumerate(zip(want, have, strict=False)) if x != y),
            min(len(want), len(have)),
        )
        return (
            f"first differs at rank {first + 1} of {len(want)} pinned / {len(have)} got "
            f"(pinned {want[first : first + 3]}, got {have[first : first + 3]})"
        )
    return f"pinned {want!r}, got {have!r}"


def _leaves(prefix: str, want: Any, have: Any) -> list[tuple[str, Any, Any]]:
    if isinstance(want, dict) or isinstance(have, dict):
        want = want if isinstance(want, dict) else {}
        have = have if isinstance(have, dict) else {}
        out: list[tuple[str, Any, Any]] = []
        for key in sorted(set(want) | set(have)):
            out += _leaves(f"{prefix}.{key}" if prefix else key, want.get(key), have.get(key))
        return out
    return [(prefix, want, have)]


def _write(path: Path, doc: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    parser.add_argument(
        "--new-queries", action="store_true", help="choose the queries again (then write both)"
    )
    parser.add_argument(
        "--home",
        type=Path,
        help="a demo home built already by this script's build (default: build one in a "
        "temporary folder); kept as it is",
    )
    args = parser.parse_args(argv)
    if args.check and args.new_queries:
        parser.error("--check compares with the kept queries: not with --new-queries")
    with tempfile.TemporaryDirectory(prefix="segue-pins-") as tmp:
        if args.home is not None:
            home = args.home
        else:
            home = build_demo_home(
                Path(tmp) / "demo", log=lambda m: print(f"build: {m}", file=sys.stderr)
            )
        if args.new_queries or not QUERIES.exists():
            if args.check:
                print(f"error: {QUERIES} is missing: run without --check first", file=sys.stderr)
                return 2
            pinned = choose_queries(_snapshot(home))
            _write(QUERIES, pinned)
        else:
            pinned = json.loads(QUERIES.read_text(encoding="utf-8"))
        got = compute(home, pinned)
    if args.check:
        expected = json.loads(EXPECTED.read_text(encoding="utf-8"))
        lines = differences(expected, got)
        for line in lines:
            print(line)
        if lines:
            print(f"{len(lines)} difference(s) from {EXPECTED}", file=sys.stderr)
            return 1
        print(f"the same as {EXPECTED}", file=sys.stderr)
        return 0
    _write(EXPECTED, got)
    n_queries = len(pinned["queries"])
    print(f"wrote {EXPECTED} ({n_queries} queries x {len(got['models'])} models)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
