"""The state the parts of the hybrid share: its parameters and what it learns."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import scipy.sparse as sp

from segue.models.als import ALSRecommender
from segue.models.base import Recommender
from segue.models.content import Model1, Model2
from segue.models.itemknn import (
    ItemKNNRecommender,
    TrackNames,
)
from segue.models.title import NameIndex, TitleRecommender


class HybridState(Recommender):
    """The parameters and learned state every part of the hybrid reads (annotations only: the
    values are set by ``__init__``, ``fit`` and ``load`` of :class:`HybridRecommender`)."""

    candidates: int
    content_candidates: int
    popular: int
    pseudo_seeds: int
    name_candidates: int
    name_seeds: int
    playlist_neighbors: int
    ranker_playlists: int
    folds: int
    title_share: float
    negatives: int
    objective: str
    min_ranker_playlists: int
    refit_max_rows: int
    n_estimators: int
    learning_rate: float
    num_leaves: int
    knn: dict[str, Any] | None
    als: dict[str, Any] | None
    title: dict[str, Any] | None
    content: dict[str, Any] | None
    random_state: int
    num_threads: int
    select: bool
    progress: bool

    knn_: ItemKNNRecommender
    als_: ALSRecommender
    title_: TitleRecommender
    content_: Model1
    #: The tuned content model answering queries with seeds alone, when chosen at fit.
    content_alone_: Model1 | None = None
    content_chosen_: dict[str, Any] | None
    #: Model 2 with its tuned settings, answering queries with seeds alone when chosen at fit
    #: (measured only when no ranker can be trained).
    model2_alone_: Model2 | None = None
    model2_chosen_: dict[str, Any] | None = None
    ranker_: Any
    title_ranker_: Any
    prior_: np.ndarray
    order_: np.ndarray
    log_counts_: np.ndarray
    artist_codes_: np.ndarray
    album_codes_: np.ndarray
    artist_tracks_: sp.csr_matrix
    names_: TrackNames
    name_index_: NameIndex
    playlists_: sp.csr_matrix
    playlists_t_: sp.csr_matrix
    playlist_norms_: np.ndarray
    train_rows_: np.ndarray
    mode_: dict[str, str]
    selection_: dict[str, Any]
    #: Per thread, the last single query's answer (see ``_ranked_one``).
    _kept: threading.local | None = None
    _content_x: sp.csr_matrix
    _genre_cols: Any
    _content_blocks: list[tuple[Any, float]]
