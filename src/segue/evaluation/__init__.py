"""The RecSys Challenge 2018 protocol on any MPD-format playlists, one module per step.

* :mod:`~segue.evaluation.formats`: the challenge's files, read, written and validated: the
  official ``challenge_set.json`` (its playlists checked by the one MPD playlist validator,
  :func:`segue.formats.mpd.check_playlist`), ``truth.json`` and the official submission CSV;
  the ten categories; the challenge seeds as a training slice.
* :mod:`~segue.evaluation.make`: the split, MPD slices into training slices, a challenge set
  and its truth (``segue challenge make``).
* :mod:`~segue.evaluation.score`: the metrics (R-precision with artist credit, NDCG, clicks),
  their means overall and per category, and a submission file scored against ``truth.json``
  (``segue challenge score``).
* :mod:`~segue.evaluation.report`: the comparison of models, as a Markdown table, JSON and a
  chart.
* :mod:`~segue.evaluation.run`: a model continuing every challenge playlist with 500 tracks
  (``segue challenge run``), and the whole evaluation in a temporary home: ingest, fit, run,
  score, report (``segue evaluate``).

Imports point down that list: formats ← make, score ← report ← run. Models, the catalog and
snapshots are imported lazily by :mod:`~segue.evaluation.run`; importing this package stays
cheap.
"""

from __future__ import annotations

from segue.evaluation.formats import (
    CATEGORIES,
    N_RECOMMENDATIONS,
    Category,
    ChallengePlaylist,
    Submission,
    check_recommendations,
    load_challenge_set,
    load_truth,
    read_submission,
    write_submission,
)
from segue.evaluation.make import ChallengeSummary, make_challenge
from segue.evaluation.run import RunSummary, evaluate, run_challenge
from segue.evaluation.score import (
    aggregate,
    clicks,
    ndcg,
    r_precision,
    score_playlist,
    score_submission,
)

__all__ = [
    "CATEGORIES",
    "N_RECOMMENDATIONS",
    "Category",
    "ChallengePlaylist",
    "ChallengeSummary",
    "RunSummary",
    "Submission",
    "aggregate",
    "check_recommendations",
    "clicks",
    "evaluate",
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
