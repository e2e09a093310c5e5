"""The RecSys Challenge 2018 protocol: metrics, challenge sets, submissions, reports.

Heavy pieces (models, catalog) are imported lazily by :mod:`segue.evaluation.runner` and
:mod:`segue.evaluation.pipeline`; importing this package stays cheap.
"""

from __future__ import annotations

from segue.evaluation.challenge import (
    CATEGORIES,
    Category,
    ChallengePlaylist,
    ChallengeSummary,
    RunSummary,
    Submission,
    load_challenge_set,
    load_truth,
    make_challenge,
    read_submission,
    run_challenge,
    score_submission,
    write_submission,
)
from segue.evaluation.metrics import (
    aggregate,
    check_recommendations,
    clicks,
    ndcg,
    r_precision,
    score_playlist,
)

__all__ = [
    "CATEGORIES",
    "Category",
    "ChallengePlaylist",
    "ChallengeSummary",
    "RunSummary",
    "Submission",
    "aggregate",
    "check_recommendations",
    "clicks",
    "load_challenge_set",
    "load_truth",
    "make_challenge",
    "ndcg",
    "r_precision",
    "read_submission",
    "run_challenge",
    "score_playlist",
    "score_submission",
    "write_submission",
]
