"""The default model: candidates from several generators, re-ranked by a learned ranker.

Two stages, as the RecSys Challenge 2018 winners built theirs:

1. **Candidates.** For each query the union of the top ``candidates`` tracks of item-kNN
   (:mod:`segue.models.itemknn`), ALS (:mod:`segue.models.als`), the title model
   (:mod:`segue.models.title`), a playlist-kNN (the tracks of the training playlists whose
   track sets are most like the seeds) and a same-artist generator, the top
   ``content_candidates`` tracks of the content model (:class:`segue.models.content.Model1`:
   genres and crowd tags, era, popularity, audio), plus the most popular tracks. Content and
   same-artist candidates reach tracks that share no playlist with anything (a track added to
   the catalog by a feature table or from Spotify). A query without seeds but with a title
   borrows the title model's best tracks as *pseudo-seeds*, and takes as candidates the
   tracks of the artists, albums and songs its title names
   (:class:`segue.models.title.NameIndex`: "Kevin Gates", "best of kevin gates", "Hey
   Brother"); the best tracks of an artist or album that is the whole title join the
   pseudo-seeds (of a song too when no training playlist has a similar name).
2. **Ranking.** A LightGBM ranker (``LGBMRanker``; objective ``rank_xendcg`` by default,
   ``lambdarank`` on request) scores each candidate from features: every generator's score,
   its rank among the candidates and its ratio to the best, the content similarity of the
   candidate to the seeds and its rank, track popularity, number of seeds, title given or
   not, share of seeds by the same artist/album, how well the title matched (the similarity
   of the nearest training title and, for title-only queries, the similarity-weighted number
   of such playlists holding the candidate) and the share of the title spelled by the
   candidate's artist, album or song name. Queries without seeds get a ranker of their own
   (their features mean other things).

The rankers are trained inside :meth:`HybridRecommender.fit` without outside labels: up to
``ranker_playlists`` training playlists are cut like challenge playlists (0-100 random seeds,
title given or not), their other tracks are hidden from the generators, and a candidate is a
hit when it is one of the hidden tracks. On small catalogs this runs in ``folds`` (3) rounds,
each hiding a third of the cut playlists, and the generators are then refitted on all data; on
large ones (more than ``refit_max_rows`` rows) one round hides the tails of a few thousand
playlists for good, which saves a second fit at no visible cost. The content model is fitted
with the other generators on the masked data (its crowd tags come from playlist titles, so a
hidden track must not carry the title of the playlist it was hidden from). With too few
playlists to learn from (fewer than ``min_ranker_playlists``) a fixed blend of the normalised
generator scores replaces the ranker.

**Measured against its parts.** The content generator's settings are chosen first, on the
whole catalog (:func:`segue.models.content.tune_content`). Then every fourth cut playlist is
kept out of the ranker's first training; on those, the ranker, the fixed blend and each
generator alone (content, item-kNN and ALS for queries with seeds; the title model for
title-only ones), all fitted without the hidden tracks, recommend 500 tracks and are scored by
NDCG. Each kind of query is answered by the best (``mode_``): the ranker unless another beats
it by more than :data:`SELECT_MARGIN`; the ranker is then trained again on all cut playlists.
Too few playlists for a ranker (under ``min_ranker_playlists``) and every cut playlist is
measured, the blend against the generators. What was chosen, with the figures, is printed at
fit (stderr), saved in ``model.json`` and returned by :meth:`HybridRecommender.describe_settings`.
``select=False`` skips the measuring (the ranker, or the blend, as before).

Serving: one query runs the candidate pipeline once; each thread keeps its last query's
candidates, features and scores (keyed by its seeds and title), so ``explain_many`` right
after ``recommend`` - what :class:`segue.service.engine.Service` does - reuses them. Explanations
name the seed tracks, artists and genres behind a recommendation. BLAS runs on one
thread inside the pipeline: its products are per query and small, and on a busy 2-core
machine a second BLAS thread only spin-waits.


The parts, each a layer of :class:`HybridRecommender` over the one below it:
:mod:`~segue.models.hybrid.state` (parameters and learned state),
:mod:`~segue.models.hybrid.features` (the ranker's features),
:mod:`~segue.models.hybrid.candidates` (the generators and each query's candidates),
:mod:`~segue.models.hybrid.ranker` (LightGBM training, measuring, scoring),
:mod:`~segue.models.hybrid.explain` (explanations) and
:mod:`~segue.models.hybrid.recommender` (the class: ``fit``, queries, persistence).
"""

from segue.models.hybrid.candidates import ALS_DEFAULTS, CONTENT_DEFAULTS, KNN_DEFAULTS
from segue.models.hybrid.features import COLUMN, FEATURES
from segue.models.hybrid.ranker import BLEND, SELECT_MARGIN, SELECT_N
from segue.models.hybrid.recommender import HybridRecommender
from segue.models.itemknn import csr_arrays, csr_from_arrays

__all__ = [
    "ALS_DEFAULTS",
    "BLEND",
    "COLUMN",
    "CONTENT_DEFAULTS",
    "FEATURES",
    "KNN_DEFAULTS",
    "SELECT_MARGIN",
    "SELECT_N",
    "HybridRecommender",
    "csr_arrays",
    "csr_from_arrays",
]
