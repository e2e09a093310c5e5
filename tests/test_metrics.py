"""RecSys Challenge 2018 metrics on hand-computed cases."""

from __future__ import annotations

import math

import pytest

from segue.evaluation.formats import check_recommendations
from segue.evaluation.score import (
    CLICKS_NONE,
    aggregate,
    clicks,
    missing_playlist_scores,
    ndcg,
    r_precision,
    score_playlist,
)

FILLER = [f"x{i}" for i in range(600)]


def ranked(*head: str, length: int = 500) -> list[str]:
    """``head`` then non-relevant filler up to ``length`` tracks."""
    return [*head, *FILLER[: length - len(head)]]


# R-precision ------------------------------------------------------------------------------


def test_r_precision_counts_track_hits_in_the_first_g() -> None:
    held = ["a", "b", "c", "d"]
    # top 4 = a, x0, x1, b -> 2 hits; c at rank 5 is past |G| and does not count
    recs = ["a", "x0", "x1", "b", "c"]
    assert r_precision(recs, held) == pytest.approx(0.5)


def test_r_precision_perfect_and_order_free() -> None:
    held = ["a", "b", "c"]
    assert r_precision(["c", "a", "b", "x0"], held) == 1.0


def test_r_precision_uses_distinct_held_out_tracks() -> None:
    # a playlist holding "a" twice still has |G| = 2
    assert r_precision(["a", "b"], ["a", "b", "a"]) == 1.0


def test_artist_credit_once_per_artist() -> None:
    held = ["g1", "g2", "g3", "g4"]
    held_artists = ["A", "B", "A", "C"]
    recs = ["g1", "r1", "r2", "r3", "r4"]
    rec_artists = ["A", "A", "A", "B", "C"]
    # 1 track hit; misses r1, r2 (artist A, counted once) and r3 (B); r4 (C) is rank 5 > |G|
    got = r_precision(recs, held, held_out_artists=held_artists, recommended_artists=rec_artists)
    assert got == pytest.approx((1 + 0.25 * 2) / 4)


def test_artist_credit_only_from_tracks_that_missed() -> None:
    held = ["g1", "g2"]
    held_artists = ["A", "B"]
    # g1 matches (its artist A earns nothing extra); x is by D, not a held-out artist
    assert r_precision(
        ["g1", "x"], held, held_out_artists=held_artists, recommended_artists=["A", "D"]
    ) == pytest.approx(0.5)
    # y by B missed as a track but its artist is held out: +0.25
    assert r_precision(
        ["g1", "y"], held, held_out_artists=held_artists, recommended_artists=["A", "B"]
    ) == pytest.approx((1 + 0.25) / 2)


def test_artist_credit_with_mappings_and_unknown_artists() -> None:
    held = ["g1", "g2"]
    held_map = {"g1": "A", "g2": None}
    rec_map = {"y": "A", "z": None}
    assert r_precision(
        ["y", "z"], held, held_out_artists=held_map, recommended_artists=rec_map
    ) == pytest.approx(0.25 / 2)
    # None never matches None
    assert r_precision(["z"], ["g2"], held_out_artists=held_map, recommended_artists=rec_map) == 0.0


def test_r_precision_artist_arguments_come_in_pairs() -> None:
    with pytest.raises(TypeError, match="give both held_out_artists and recommended_artists"):
        r_precision(["a"], ["a"], held_out_artists=["A"])


def test_r_precision_artist_sequence_too_short() -> None:
    with pytest.raises(ValueError, match="expected 2 entries, got 1"):
        r_precision(["a", "b"], ["a", "c"], held_out_artists=["A", "C"], recommended_artists=["A"])


def test_empty_held_out_is_refused() -> None:
    for metric in (r_precision, ndcg, clicks):
        with pytest.raises(ValueError, match="held_out is empty"):
            metric(["a"], [])


# NDCG -------------------------------------------------------------------------------------


def test_ndcg_perfect_ranking_is_one() -> None:
    held = ["a", "b", "c"]
    assert ndcg(ranked("a", "b", "c"), held) == pytest.approx(1.0)
    assert ndcg(ranked("c", "b", "a"), held) == pytest.approx(1.0)


def test_ndcg_hand_computed() -> None:
    held = ["a", "b", "c"]
    # hits at ranks 2 and 4
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg(["x0", "a", "x1", "b"], held) == pytest.approx(dcg / idcg)
    assert ndcg(["x0", "a", "x1", "b"], held) == pytest.approx(0.498189, abs=1e-6)


def test_ndcg_ideal_is_over_all_held_out_not_only_found() -> None:
    held = [f"g{i}" for i in range(10)]
    # one hit at rank 1: the rules' variant (IDCG over |G ∩ R|) would give 1.0
    idcg = sum(1 / math.log2(i + 1) for i in range(1, 11))
    assert ndcg(ranked("g0"), held) == pytest.approx(1 / idcg)
    assert ndcg(ranked("g0"), held) < 0.25


def test_ndcg_ideal_capped_at_500() -> None:
    held = [f"g{i}" for i in range(600)]
    assert ndcg(held[:500], held) == pytest.approx(1.0)
    # ranks beyond 500 are ignored
    assert ndcg([*FILLER[:500], "g0"], held) == 0.0


def test_ndcg_counts_a_repeated_track_once() -> None:
    assert ndcg(["a", "a", "a"], ["a"]) == pytest.approx(1.0)


def test_ndcg_nothing_relevant_is_zero() -> None:
    assert ndcg(ranked(), ["a"]) == 0.0


# clicks -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rank", "expected"), [(1, 0), (10, 0), (11, 1), (20, 1), (21, 2), (500, 49)]
)
def test_clicks_pages_of_ten(rank: int, expected: int) -> None:
    recs = ranked()
    recs[rank - 1] = "a"
    assert clicks(recs, ["a", "b"]) == expected


def test_clicks_51_when_nothing_hits() -> None:
    assert clicks(ranked(), ["a"]) == CLICKS_NONE == 51
    # a hit at rank 501 is outside the 500
    assert clicks([*FILLER[:500], "a"], ["a"]) == 51


# score_playlist, aggregate, checks --------------------------------------------------------


def test_score_playlist_perfect() -> None:
    held = ["a", "b"]
    got = score_playlist(
        ranked("a", "b"), held, held_out_artists=["A", "B"], recommended_artists=["A", "B"]
    )
    assert got == {"r_precision": 1.0, "ndcg": pytest.approx(1.0), "clicks": 0.0}
    assert all(isinstance(v, float) for v in got.values())


def test_score_playlist_miss() -> None:
    assert score_playlist(ranked(), ["a"]) == missing_playlist_scores()


def test_aggregate_overall_and_per_category() -> None:
    scored = [
        (1, {"r_precision": 1.0, "ndcg": 1.0, "clicks": 0.0}),
        (1, {"r_precision": 0.0, "ndcg": 0.0, "clicks": 51.0}),
        (2, {"r_precision": 0.5, "ndcg": 0.25, "clicks": 3.0}),
    ]
    got = aggregate(scored)
    assert got["overall"] == pytest.approx({"r_precision": 0.5, "ndcg": 1.25 / 3, "clicks": 18.0})
    assert got["per_category"][1] == pytest.approx(
        {"r_precision": 0.5, "ndcg": 0.5, "clicks": 25.5}
    )
    assert got["per_category"][2] == {"r_precision": 0.5, "ndcg": 0.25, "clicks": 3.0}
    assert list(got["per_category"]) == [1, 2]
    assert got["n_playlists"] == 3
    assert got["n_per_category"] == {1: 2, 2: 1}


def test_aggregate_refuses_nothing_and_partial_scores() -> None:
    with pytest.raises(ValueError, match="no scored playlists"):
        aggregate([])
    with pytest.raises(ValueError, match=r"lack \['clicks'\]"):
        aggregate([(1, {"r_precision": 1.0, "ndcg": 1.0})])


def test_check_recommendations() -> None:
    check_recommendations(["a", "b"], ["s"], expected=2)
    with pytest.raises(ValueError, match=r"^expected 3 recommended tracks, got 2$"):
        check_recommendations(["a", "b"], expected=3)
    with pytest.raises(ValueError, match=r"^track b appears twice \(positions 2 and 4\)$"):
        check_recommendations(["a", "b", "c", "b"], expected=None)
    with pytest.raises(ValueError, match=r"^track s at position 3 is a seed of the playlist$"):
        check_recommendations(["a", "b", "s"], ["s"], expected=None)
