"""The ranker's features: what is known of each candidate of a query (:data:`FEATURES`), and the
content scores they include."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from segue.models.hybrid.state import HybridState
from segue.models.rows import sum_rows
from segue.models.title import NameMatches

FEATURES = (
    "knn",
    "knn_rank",
    "knn_ratio",
    "knn_mean",
    "uknn",
    "uknn_rank",
    "uknn_ratio",
    "als",
    "als_rank",
    "als_gap",
    "title",
    "title_rank",
    "title_ratio",
    "artist_share",
    "album_share",
    "artist_rank",
    "popularity",
    "n_seeds",
    "has_title",
    "pseudo_seeds",
    "title_keys",
    "content",
    "content_rank",
    "content_gap",
    "title_best",
    "title_count",
    "name_artist",
    "name_album",
    "name_track",
)
#: Column of each feature in a candidate feature matrix.
COLUMN = {name: i for i, name in enumerate(FEATURES)}


@dataclass
class Batch:
    """Candidates and features of a batch of queries."""

    candidates: list[np.ndarray]  # int64 track indices per query
    features: list[np.ndarray]  # float32 (len(candidates[r]), len(FEATURES)) per query
    rows: list[int] = field(default_factory=list)  # training: the playlist row of each query


def lookup(cols: np.ndarray, vals: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """``vals`` at ``wanted`` where ``cols`` (sorted) holds them, else 0."""
    out = np.zeros(wanted.size, dtype=np.float32)
    if cols.size:
        pos = np.minimum(np.searchsorted(cols, wanted), cols.size - 1)
        hit = cols[pos] == wanted
        out[hit] = vals[pos[hit]]
    return out


def ranks_desc(columns: np.ndarray) -> np.ndarray:
    """1-based rank of each value within its column, highest first, ties by position
    (float32, the shape of ``columns``): every column of a 2-D array in one sort."""
    order = np.argsort(-columns, axis=0, kind="stable")
    ranks = np.empty(columns.shape, dtype=np.float32)
    steps = np.arange(1, columns.shape[0] + 1, dtype=np.float32)[:, None]
    np.put_along_axis(ranks, order, np.broadcast_to(steps, columns.shape), axis=0)
    return ranks


class HybridFeatures(HybridState):
    """Writes the ranker's features of a query's candidates."""

    def _content_matrix(self) -> None:
        """What scoring candidates by content needs: the content model's feature matrix (float32
        CSR (n_tracks, n_features)), its blocks and their normalised weights."""
        features = self.content_.features_
        self._content_x = features.matrix
        self._genre_cols = features.blocks["genres"]
        self._content_blocks = [
            (cols, float(self.content_.weights_[block]))
            for block, cols in features.blocks.items()
            if cols.stop > cols.start and self.content_.weights_[block] > 0
        ]

    def _content_query(self, seeds: np.ndarray) -> np.ndarray:
        """float32 (n_features,): the seeds' playlist vector, per block scaled so that a
        track's dot product with it is the content model's score (weighted cosines)."""
        query = np.zeros(self._content_x.shape[1], dtype=np.float32)
        if seeds.size == 0:
            return query
        summed = sum_rows(self._content_x, seeds)
        for cols, weight in self._content_blocks:
            part = summed[cols]
            scale = (
                float(np.linalg.norm(part))
                if self.content_.aggregate_ == "sum"
                else float(seeds.size)
            )
            if scale > 0:
                query[cols] = part * np.float32(weight / scale)
        return query

    def _fill_features(
        self,
        x: np.ndarray,
        cands: np.ndarray,
        *,
        knn: tuple[np.ndarray, np.ndarray],
        uknn: tuple[np.ndarray, np.ndarray],
        title: tuple[np.ndarray, np.ndarray],
        als: np.ndarray | None,
        artist: tuple[np.ndarray, np.ndarray],
        album: tuple[np.ndarray, np.ndarray],
        content: np.ndarray,
        n_effective: int,
        n_seeds: int,
        has_title: bool,
        pseudo: bool,
        title_keys: float,
        title_best: float,
        title_count: tuple[np.ndarray, np.ndarray],
        names: NameMatches,
    ) -> None:
        """Write the :data:`FEATURES` of ``cands`` (int64 (m,)) into ``x`` (float32 (m, F)).

        The generators' scores come as sorted sparse rows ``(columns, values)``; ``als`` is the
        query's ALS user vector (float32 (factors,), None without one); ranks of all scored
        columns are taken in one sort.
        """
        c = COLUMN
        kc, kv = knn
        uc, uv = uknn
        tc, tv = title
        knn_val = lookup(kc, kv, cands)
        uknn_val = lookup(uc, uv, cands)
        title_val = lookup(tc, tv, cands)
        als_val = (
            self.als_.item_factors_[cands] @ als
            if als is not None
            else np.zeros(cands.size, dtype=np.float32)
        )
        artist_share = lookup(artist[0], artist[1], self.artist_codes_[cands])
        artist_share[self.artist_codes_[cands] < 0] = 0.0
        album_share = lookup(album[0], album[1], self.album_codes_[cands])
        album_share[self.album_codes_[cands] < 0] = 0.0
        popularity = self.log_counts_[cands]
        content = np.asarray(content, dtype=np.float32)
        x[:, c["knn"]] = knn_val
        x[:, c["knn_ratio"]] = knn_val / kv.max() if kv.size else 0.0
        x[:, c["knn_mean"]] = knn_val / max(n_effective, 1)
        x[:, c["uknn"]] = uknn_val
        x[:, c["uknn_ratio"]] = uknn_val / uv.max() if uv.size else 0.0
        x[:, c["als"]] = als_val
        x[:, c["als_gap"]] = als_val - als_val.max()
        x[:, c["title"]] = title_val
        x[:, c["title_ratio"]] = title_val / tv.max() if tv.size else 0.0
        x[:, c["artist_share"]] = artist_share
        x[:, c["album_share"]] = album_share
        x[:, c["popularity"]] = popularity
        x[:, c["n_seeds"]] = n_seeds
        x[:, c["has_title"]] = float(has_title)
        x[:, c["pseudo_seeds"]] = float(pseudo)
        x[:, c["title_keys"]] = title_keys
        x[:, c["content"]] = content
        x[:, c["content_gap"]] = content - content.max()
        x[:, c["title_best"]] = title_best
        x[:, c["title_count"]] = lookup(title_count[0], title_count[1], cands)
        for field_name in ("artist", "album", "track"):
            x[:, c[f"name_{field_name}"]] = lookup(
                names.tracks[field_name], names.coverage[field_name], cands
            )
        ranked = np.column_stack(
            [knn_val, uknn_val, als_val, title_val, artist_share + 1e-3 * popularity, content]
        )
        ranks = ranks_desc(ranked)
        for i, name in enumerate(
            ("knn_rank", "uknn_rank", "als_rank", "title_rank", "artist_rank", "content_rank")
        ):
            x[:, c[name]] = ranks[:, i]
