"""RecSys Challenge 2018 metrics: R-precision with artist credit, NDCG and Recommended Songs Clicks.

Pure functions over sequences of track ids (any hashable: bare ids or URIs, as long as the
recommended and held-out lists use the same form). ``G`` is the set of distinct held-out tracks,
``R`` the recommended tracks in rank order (the challenge asks for 500).

* R-precision = (|G ∩ R[1:|G|]| + 0.25 · A) / |G|, where ``A`` counts the distinct artists of the
  held-out tracks that appear among the first |G| recommended tracks that did not match a
  held-out track (each artist once per playlist).
* NDCG = DCG / IDCG with DCG = Σ rel_i / log2(i + 1) over the first 500 ranks, and IDCG the DCG of
  an ideal ranking of min(|G|, 500) relevant tracks.
* Clicks = floor((rank of the first relevant track − 1) / 10), 51 when none of the first 500 is
  relevant. Lower is better.

A recommended track that appears twice counts once (its first rank); submissions with
duplicates are refused earlier by :func:`segue.evaluation.formats.check_recommendations`.

:func:`score_submission` scores a submission file against ``truth.json``: every playlist
with these metrics, then the means overall and per category (:func:`aggregate`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from segue.core.errors import InputFileError
from segue.evaluation.formats import N_RECOMMENDATIONS, load_truth, read_submission

log = logging.getLogger(__name__)

#: Credit of an artist match relative to a track match.
ARTIST_CREDIT = 0.25
#: Tracks shown per refresh of the Spotify app's "Recommended Songs".
CLICK_PAGE = 10
#: Clicks charged when none of the recommended tracks is relevant.
CLICKS_NONE = 51

METRICS = ("r_precision", "ndcg", "clicks")

ArtistLookup = Sequence[Hashable | None] | Mapping[Any, Hashable | None]


def _held_out_set(held_out: Sequence[Hashable], metric: str) -> set[Hashable]:
    relevant = set(held_out)
    if not relevant:
        raise ValueError(
            f"{metric}: held_out is empty; a challenge playlist needs at least one held-out track"
        )
    return relevant


def _artists_of(
    tracks: Sequence[Hashable], artists: ArtistLookup, what: str
) -> list[Hashable | None]:
    """Artist of each track, from a sequence aligned with ``tracks`` or a track -> artist mapping."""
    if isinstance(artists, Mapping):
        return [artists.get(t) for t in tracks]
    if isinstance(artists, str | bytes):
        raise TypeError(
            f"{what} must be a sequence aligned with the tracks or a mapping, got a string"
        )
    if len(artists) < len(tracks):
        raise ValueError(
            f"{what} must give one artist per track: expected {len(tracks)} entries, got {len(artists)}"
        )
    return list(artists[: len(tracks)])


def r_precision(
    recommended: Sequence[Hashable],
    held_out: Sequence[Hashable],
    *,
    held_out_artists: ArtistLookup | None = None,
    recommended_artists: ArtistLookup | None = None,
) -> float:
    """R-precision in [0, 1] with the challenge's artist partial credit.

    ``held_out_artists``: artist of each held-out track (a sequence aligned with ``held_out`` or
    a track -> artist mapping); ``recommended_artists`` likewise for ``recommended``. Artists are
    any hashable key (URI, or name where the URI is unknown); ``None`` means unknown and never
    matches. Without both, no artist credit is given.
    """
    if (held_out_artists is None) != (recommended_artists is None):
        raise TypeError(
            "r_precision: give both held_out_artists and recommended_artists for artist credit, or neither"
        )
    relevant = _held_out_set(held_out, "r_precision")
    size = len(relevant)
    top = list(recommended[:size])
    track_hits = len(relevant.intersection(top))
    artist_hits = 0
    if held_out_artists is not None and recommended_artists is not None:
        wanted = {
            a for a in _artists_of(held_out, held_out_artists, "held_out_artists") if a is not None
        }
        top_artists = _artists_of(top, recommended_artists, "recommended_artists")
        # only the top-|G| recommendations that are not themselves held-out tracks earn artist credit
        credited = {
            a for t, a in zip(top, top_artists, strict=True) if a is not None and t not in relevant
        }
        artist_hits = len(wanted & credited)
    return (track_hits + ARTIST_CREDIT * artist_hits) / size


def _dcg(ranks: Iterable[int]) -> float:
    return sum(1.0 / math.log2(rank + 1) for rank in ranks)


def ndcg(
    recommended: Sequence[Hashable],
    held_out: Sequence[Hashable],
    *,
    max_rank: int = N_RECOMMENDATIONS,
) -> float:
    """NDCG in [0, 1] over the first ``max_rank`` recommendations, binary relevance.

    IDCG is the DCG of min(|G|, max_rank) relevant tracks at ranks 1, 2, ... (the evaluator of
    the 2018 winning team; the rules' variant with IDCG over |G ∩ R| inflates scores).
    """
    relevant = _held_out_set(held_out, "ndcg")
    seen: set[Hashable] = set()
    hit_ranks: list[int] = []
    for rank, track in enumerate(recommended[:max_rank], start=1):
        if track in relevant and track not in seen:
            seen.add(track)
            hit_ranks.append(rank)
    if not hit_ranks:
        return 0.0
    ideal = _dcg(range(1, min(len(relevant), max_rank) + 1))
    return _dcg(hit_ranks) / ideal


def clicks(
    recommended: Sequence[Hashable],
    held_out: Sequence[Hashable],
    *,
    max_rank: int = N_RECOMMENDATIONS,
) -> int:
    """Refreshes of 10 tracks before the first relevant one: floor((rank − 1) / 10), 51 if none."""
    relevant = _held_out_set(held_out, "clicks")
    for rank, track in enumerate(recommended[:max_rank], start=1):
        if track in relevant:
            return (rank - 1) // CLICK_PAGE
    return CLICKS_NONE


def score_playlist(
    recommended: Sequence[Hashable],
    held_out: Sequence[Hashable],
    *,
    held_out_artists: ArtistLookup | None = None,
    recommended_artists: ArtistLookup | None = None,
) -> dict[str, float]:
    """The three metrics of one playlist: ``{"r_precision", "ndcg", "clicks"}`` as floats."""
    return {
        "r_precision": r_precision(
            recommended,
            held_out,
            held_out_artists=held_out_artists,
            recommended_artists=recommended_artists,
        ),
        "ndcg": ndcg(recommended, held_out),
        "clicks": float(clicks(recommended, held_out)),
    }


def missing_playlist_scores() -> dict[str, float]:
    """Scores of a playlist without recommendations: nothing relevant was found."""
    return {"r_precision": 0.0, "ndcg": 0.0, "clicks": float(CLICKS_NONE)}


def aggregate(
    scored: Iterable[tuple[Hashable, Mapping[str, float]]],
) -> dict[str, Any]:
    """Means over all playlists and per category.

    ``scored``: ``(category, scores)`` pairs, scores as from :func:`score_playlist`. Returns
    ``{"overall": {metric: mean}, "per_category": {category: {metric: mean}},
    "n_playlists": int, "n_per_category": {category: int}}``; categories sorted.
    """
    totals: dict[Hashable, dict[str, float]] = {}
    counts: dict[Hashable, int] = {}
    overall = dict.fromkeys(METRICS, 0.0)
    n = 0
    for category, scores in scored:
        missing = [m for m in METRICS if m not in scores]
        if missing:
            raise ValueError(
                f"aggregate: scores of a playlist lack {missing}; got keys {sorted(scores)}"
            )
        bucket = totals.setdefault(category, dict.fromkeys(METRICS, 0.0))
        counts[category] = counts.get(category, 0) + 1
        for m in METRICS:
            bucket[m] += float(scores[m])
            overall[m] += float(scores[m])
        n += 1
    if n == 0:
        raise ValueError("aggregate: no scored playlists")
    order = sorted(totals, key=lambda c: (str(type(c)), c))  # type: ignore[arg-type]
    return {
        "overall": {m: overall[m] / n for m in METRICS},
        "per_category": {c: {m: totals[c][m] / counts[c] for m in METRICS} for c in order},
        "n_playlists": n,
        "n_per_category": {c: counts[c] for c in order},
    }


def score_submission(
    submission_path: str | Path,
    truth_path: str | Path,
) -> dict[str, Any]:
    """Score a submission file against ``truth.json``.

    Returns ``{"overall": {"r_precision", "ndcg", "clicks"}, "per_category": {1..10: {...}},
    "n_playlists", "n_per_category", "n_missing", "team", "submission", "truth"}``. A challenge
    playlist without a line scores R-precision 0, NDCG 0 and 51 clicks, with one warning logged
    for all of them. A line for a pid the truth does not know, or one that
    recommends a seed, is an :class:`InputFileError`.
    """
    truth = load_truth(truth_path)
    sub = read_submission(submission_path, seeds=truth.seeds)
    for pid, number in sub.line_of.items():
        if pid not in truth.category:
            raise InputFileError(
                sub.path, f"line {number}", f"pid {pid} is not in the challenge set of {truth.path}"
            )
    scored: list[tuple[int, dict[str, float]]] = []
    missing: list[int] = []
    for pid, category in truth.category.items():
        recs = sub.recommendations.get(pid)
        if recs is None:
            missing.append(pid)
            scored.append((category, missing_playlist_scores()))
            continue
        held = truth.holdouts[pid]
        top_artists = [truth.artist_of(u) for u in recs[: len(set(held))]]
        scored.append(
            (
                category,
                score_playlist(
                    recs,
                    held,
                    held_out_artists=truth.holdout_artists[pid],
                    recommended_artists=top_artists,
                ),
            )
        )
    if missing:
        shown = ", ".join(str(p) for p in sorted(missing)[:5]) + (
            ", ..." if len(missing) > 5 else ""
        )
        log.warning(
            "%s: %d of %d challenge playlists have no recommendations and score 0 (51 clicks): "
            "pid %s",
            sub.path,
            len(missing),
            len(truth.category),
            shown,
        )
    result = aggregate(scored)
    result.update(
        {"n_missing": len(missing), "team": sub.team, "submission": sub.path, "truth": truth.path}
    )
    return result
