"""Title model: tracks of training playlists whose names match the query's name.

For playlists that have a name and few or no tracks (challenge category 1). Titles are first
normalised the way playlist names vary in the MPD ("Chill Vibes", "chill vibes!!", "chilllll
vibes", "Work Out" / "workout", "Summer 2k17" / "summer 2017", "Café" / "cafe"), then reduced
to a *key* without spaces or doubled letters so those variants meet.

Each distinct key ``k`` keeps ``counts[k, t]``, the number of training playlists with that key
holding track ``t``. A query's key is matched against all keys by TF-IDF cosine over character
n-grams (an exact key match has similarity 1; a near one, "summer vibes 2017" for "summer
vibes", less), and the track score is

    score_t = sum_{k in nearest keys} sim_k ** power * counts[k, t] / (size_k + shrink)

with ``size_k`` the number of playlists of key ``k``; a tiny popularity prior breaks ties and
is the whole score when no key matches.

Many playlists are named after an artist, an album or a song ("Kevin Gates", "Divergent",
"Hey Brother"): :class:`NameIndex` finds the catalog tracks whose artist, album or track name is
the title or a phrase of it, for the hybrid's candidates and ranker features.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp

from segue.core.text import cut_name_tails, name_key, name_key_column, name_words, title_key
from segue.models.itemknn import (
    PriorRankedRecommender,
    check_interactions,
    check_state_tracks,
    csr_arrays,
    csr_from_arrays,
    popularity_prior,
)
from segue.models.params import Constraints, Interval
from segue.models.topn import prior_order


def _hash_keys(keys: Sequence[str] | np.ndarray) -> np.ndarray:
    """uint64 hashes of keys (BLAKE2b, 8 bytes), the same in every process: about 1 us a key,
    where pandas' ``hash_array`` costs 0.3 ms a call, too much per query."""
    return np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(k.encode(), digest_size=8).digest(), "little")
            for k in keys
        ),
        dtype=np.uint64,
        count=len(keys),
    )


@dataclass
class NameMatches:
    """Name matches of one title: per field (``artist``, ``album``, ``track``) the matched
    tracks (int64, sorted) and each one's *coverage*, the share of the title's key that the
    matching name spells (1.0: the whole title is the name)."""

    tracks: dict[str, np.ndarray]
    coverage: dict[str, np.ndarray]
    #: per field, the matched tracks best first (coverage, then popularity), for candidates
    best: dict[str, np.ndarray]


class NameIndex:
    """Catalog tracks by the normalised names of their artist, album and track.

    A title is split into words (lower case, no accents or punctuation); every run of up to
    ``max_words`` consecutive words whose :func:`name_key` has at least ``min_chars``
    characters is looked up among the keys of artist names, album names and track names
    (version tags such as " - Remastered" or "(feat. ...)" cut off). Each field holds, per
    distinct key, its tracks by popularity, at most ``per_name`` of them. Keys are stored as
    64-bit hashes: 2.26M tracks cost about 50 MB per field, built with vectorised string
    methods over the distinct names. Built from the snapshot,
    ``NameIndex(snapshot.tracks, popularity)``, and saved with the model that uses it
    (:meth:`state_arrays`, :meth:`from_state`): building it for the full MPD takes about 25 s.
    A snapshot without the name columns gives an index that matches nothing. A lookup costs
    about 0.05 ms for a short title.
    """

    FIELDS = (
        ("artist", "artist_name", False),
        ("album", "album_name", True),
        ("track", "name", True),
    )

    def __init__(
        self,
        tracks: pd.DataFrame | None,
        popularity: np.ndarray,
        *,
        per_name: int = 200,
        min_chars: int = 3,
        max_words: int = 8,
    ) -> None:
        self.per_name = per_name
        self.min_chars = min_chars
        self.max_words = max_words
        self.n_tracks = int(popularity.shape[0])
        self.hashes: dict[str, np.ndarray] = {}
        self.starts: dict[str, np.ndarray] = {}
        self.members: dict[str, np.ndarray] = {}
        for field_name, column, cut_tail in self.FIELDS:
            values = None
            if tracks is not None and column in tracks.columns and len(tracks) == self.n_tracks:
                values = tracks[column]
            self._build(field_name, values, popularity, cut_tail)

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The index as arrays (``<field>__hashes``/``__starts``/``__members`` and ``params``)."""
        arrays = {
            "params": np.asarray(
                [self.per_name, self.min_chars, self.max_words, self.n_tracks], dtype=np.int64
            )
        }
        for field_name, _, _ in self.FIELDS:
            arrays[f"{field_name}__hashes"] = self.hashes[field_name]
            arrays[f"{field_name}__starts"] = self.starts[field_name]
            arrays[f"{field_name}__members"] = self.members[field_name]
        return arrays

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray]) -> NameIndex:
        """The index :meth:`state_arrays` gave, without building it again."""
        index = cls.__new__(cls)
        index.per_name, index.min_chars, index.max_words, index.n_tracks = (
            int(v) for v in arrays["params"]
        )
        index.hashes, index.starts, index.members = {}, {}, {}
        for field_name, _, _ in cls.FIELDS:
            index.hashes[field_name] = np.asarray(arrays[f"{field_name}__hashes"], np.uint64)
            index.starts[field_name] = np.asarray(arrays[f"{field_name}__starts"], np.int64)
            index.members[field_name] = np.asarray(arrays[f"{field_name}__members"], np.int64)
        return index

    def _build(
        self, field_name: str, values: pd.Series | None, popularity: np.ndarray, cut_tail: bool
    ) -> None:
        empty = np.empty(0, dtype=np.uint64)
        self.hashes[field_name] = empty
        self.starts[field_name] = np.zeros(1, dtype=np.int64)
        self.members[field_name] = np.empty(0, dtype=np.int64)
        if values is None:
            return
        codes, uniques = pd.factorize(pd.Series(values).reset_index(drop=True))
        if len(uniques) == 0:
            return
        names = pd.Series(np.asarray(uniques, dtype=object))
        if cut_tail:
            names = cut_name_tails(names)
        keys = name_key_column(names)
        ok = (keys.str.len() >= self.min_chars).to_numpy()
        key_hash = _hash_keys(keys.to_numpy())
        rows = np.flatnonzero((codes >= 0) & ok[np.maximum(codes, 0)])
        hashed = key_hash[codes[rows]]
        order = np.lexsort((rows, -popularity[rows], hashed))
        rows, hashed = rows[order], hashed[order]
        uniq, first, counts = np.unique(hashed, return_index=True, return_counts=True)
        # keep the `per_name` most popular tracks of each name
        rank = np.arange(rows.size) - np.repeat(first, counts)
        keep = rank < self.per_name
        kept_counts = np.minimum(counts, self.per_name)
        self.hashes[field_name] = uniq
        self.starts[field_name] = np.concatenate([[0], np.cumsum(kept_counts)]).astype(np.int64)
        self.members[field_name] = rows[keep].astype(np.int64)

    def phrases(self, title: str | None) -> tuple[list[str], int]:
        """The keys of the title's word runs (longest first) and the length of the whole key."""
        if not title or not isinstance(title, str):
            return [], 0
        words = name_words(title)
        whole = len(name_key("".join(words)))
        out: list[str] = []
        for size in range(min(len(words), self.max_words), 0, -1):
            for start in range(len(words) - size + 1):
                key = name_key(" ".join(words[start : start + size]))
                if len(key) >= self.min_chars:
                    out.append(key)
        return out, whole

    def match(self, title: str | None) -> NameMatches:
        """The tracks whose artist, album or track name is the title or a phrase of it."""
        phrases, whole = self.phrases(title)
        tracks: dict[str, np.ndarray] = {}
        coverage: dict[str, np.ndarray] = {}
        best: dict[str, np.ndarray] = {}
        hashed = _hash_keys(phrases) if phrases else np.empty(0, dtype=np.uint64)
        share = np.asarray([len(p) / max(whole, 1) for p in phrases], dtype=np.float32)
        for field_name, _, _ in self.FIELDS:
            known = self.hashes[field_name]
            got_t: list[np.ndarray] = []
            got_c: list[np.ndarray] = []
            if known.size and hashed.size:
                pos = np.minimum(np.searchsorted(known, hashed), known.size - 1)
                for i in np.flatnonzero(known[pos] == hashed):
                    lo, hi = self.starts[field_name][pos[i]], self.starts[field_name][pos[i] + 1]
                    got_t.append(self.members[field_name][lo:hi])
                    got_c.append(np.full(hi - lo, share[i], dtype=np.float32))
            if got_t:
                t_all, c_all = np.concatenate(got_t), np.concatenate(got_c)
                # best coverage first, then the index's popularity order; one entry per track
                order = np.argsort(-c_all, kind="stable")
                t_all, c_all = t_all[order], c_all[order]
                uniq, first = np.unique(t_all, return_index=True)
                tracks[field_name], coverage[field_name] = uniq, c_all[first]
                best[field_name] = t_all[np.sort(first)]
            else:
                tracks[field_name] = np.empty(0, dtype=np.int64)
                coverage[field_name] = np.empty(0, dtype=np.float32)
                best[field_name] = np.empty(0, dtype=np.int64)
        return NameMatches(tracks, coverage, best)


def _vectorizer() -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    # Character n-grams of the padded key: robust to spelling variants and word splits.
    return TfidfVectorizer(
        analyzer="char", ngram_range=(2, 4), lowercase=False, sublinear_tf=True, dtype=np.float32
    )


class TitleRecommender(PriorRankedRecommender):
    """Tracks of training playlists with the same or a similar (normalised) name.

    Parameters: ``neighbors`` number of nearest keys used; ``min_similarity`` cosine below
    which a key is ignored; ``power`` exponent of the similarity; ``shrink`` added to a key's
    playlist count; ``emoji`` keeps emojis as tokens (else strips them).

    Learned: ``keys_`` str array (n_keys,); ``key_tracks_`` float32 CSR (n_keys, n_tracks) of
    ``counts / (size + shrink)``; ``key_sizes_`` int64 (n_keys,); ``prior_`` float32 (n_tracks,).
    """

    name = "title"
    _parameter_constraints: ClassVar[Constraints] = {
        "neighbors": [Interval(int, 1, None)],
        "min_similarity": [Interval(float, 0, 1)],
        "power": [Interval(float, 0, None, closed="neither")],
        "shrink": [Interval(float, 0, None)],
    }
    needs_title = True

    def __init__(
        self,
        *,
        neighbors: int = 30,
        min_similarity: float = 0.5,
        power: float = 2.0,
        shrink: float = 5.0,
        emoji: bool = True,
    ) -> None:
        self.neighbors = neighbors
        self.min_similarity = min_similarity
        self.power = power
        self.shrink = shrink
        self.emoji = emoji

    def fit(self, snapshot: Any) -> Self:
        matrix = check_interactions(snapshot, self.name)
        names = snapshot.playlists["name"].tolist() if len(snapshot.playlists) else []
        if len(names) != matrix.shape[0]:
            raise ValueError(
                f"title.fit: the snapshot has {len(names)} playlist names for {matrix.shape[0]} rows"
            )
        keys = [title_key(n if isinstance(n, str) else None, emoji=self.emoji) for n in names]
        uniq, inverse = np.unique(np.asarray(keys, dtype=str), return_inverse=True)
        named = uniq != ""
        rows = np.flatnonzero(named[inverse])
        remap = np.cumsum(named) - 1
        grouping = sp.csr_matrix(
            (np.ones(rows.size, dtype=np.float32), (remap[inverse[rows]], rows)),
            shape=(int(named.sum()), matrix.shape[0]),
        )
        self.keys_ = uniq[named]
        self.key_sizes_ = np.bincount(remap[inverse[rows]], minlength=self.keys_.size).astype(
            np.int64
        )
        counts = sp.csr_matrix(grouping @ matrix, dtype=np.float32)
        self.key_tracks_ = self._normalise(counts, self.key_sizes_)
        self.prior_ = popularity_prior(matrix)
        self._index()
        self.fitted_ = True
        return self

    def _normalise(self, counts: sp.csr_matrix, sizes: np.ndarray) -> sp.csr_matrix:
        scale = (1.0 / (sizes + self.shrink + 1e-9)).astype(np.float32)
        out = sp.csr_matrix(sp.diags(scale) @ counts, dtype=np.float32)
        out.sort_indices()
        return out

    def _index(self) -> None:
        self.order_ = prior_order(self.prior_)
        self.vectorizer_ = None
        self.key_vectors_ = None
        if self.keys_.size:
            self.vectorizer_ = _vectorizer()
            self.key_vectors_ = self.vectorizer_.fit_transform(
                [f" {k} " for k in self.keys_]
            ).T.tocsr()

    @property
    def n_tracks(self) -> int:
        self._check_fitted()
        return int(self.prior_.shape[0])

    # scoring -------------------------------------------------------------------------------
    def key_weights(self, titles: Sequence[str | None]) -> sp.csr_matrix:
        """float32 CSR (len(titles), n_keys): ``sim ** power`` of each query's nearest keys."""
        self._check_fitted()
        n_keys = int(self.keys_.size)
        queries = [title_key(t, emoji=self.emoji) for t in titles]
        if not queries or n_keys == 0 or self.vectorizer_ is None or self.key_vectors_ is None:
            return sp.csr_matrix((len(queries), n_keys), dtype=np.float32)
        vectors = self.vectorizer_.transform([f" {q} " if q else "" for q in queries])
        sims = sp.csr_matrix(vectors @ self.key_vectors_, dtype=np.float32)
        indptr = [0]
        indices: list[np.ndarray] = []
        data: list[np.ndarray] = []
        for r, query in enumerate(queries):
            lo, hi = sims.indptr[r], sims.indptr[r + 1]
            cols, vals = sims.indices[lo:hi], sims.data[lo:hi].copy()
            exact = np.searchsorted(self.keys_, query) if query else -1
            if query and exact < n_keys and self.keys_[exact] == query:
                vals[cols == exact] = 1.0  # float rounding must not demote the exact key
            keep = vals >= self.min_similarity
            cols, vals = cols[keep], vals[keep]
            if cols.size > self.neighbors:
                pick = np.lexsort((cols, -vals))[: self.neighbors]
                cols, vals = cols[pick], vals[pick]
            indices.append(cols)
            data.append(np.minimum(vals, 1.0) ** self.power)
            indptr.append(indptr[-1] + cols.size)
        return sp.csr_matrix(
            (
                np.concatenate(data) if data else np.empty(0, np.float32),
                np.concatenate(indices) if indices else np.empty(0, np.int32),
                np.asarray(indptr),
            ),
            shape=(len(queries), n_keys),
        )

    def raw_scores(self, titles: Sequence[str | None]) -> sp.csr_matrix:
        """float32 CSR (len(titles), n_tracks) of title scores, no prior."""
        weights = self.key_weights(titles)
        return sp.csr_matrix(weights @ self.key_tracks_, dtype=np.float32)

    def _raw(self, seed_lists: Sequence[np.ndarray], titles: Sequence[str | None]) -> sp.csr_matrix:
        return self.raw_scores(titles)

    def explain(self, seeds: np.ndarray, track: int, *, title: str | None = None) -> str:
        self._check_fitted()
        if not 0 <= track < self.n_tracks:
            raise IndexError(f"track index {track} out of range [0, {self.n_tracks})")
        weights = self.key_weights([title])
        keys = weights.indices
        if keys.size == 0:
            return "no training playlist has a similar name: ranked by popularity"
        held = self.key_tracks_[keys, track].toarray().ravel() > 0
        if not held.any():
            return "not in playlists with a similar name: ranked by popularity"
        names = ", ".join(repr(str(k)) for k in self.keys_[keys[held]][:3])
        return f"in playlists named like {title!r} ({names})"

    # persistence ---------------------------------------------------------------------------
    def _state_arrays(self) -> dict[str, np.ndarray]:
        self._check_fitted()
        return {
            **csr_arrays("key_tracks", self.key_tracks_),
            "keys": self.keys_.astype(str),
            "key_sizes": self.key_sizes_,
            "prior": self.prior_,
        }

    def _load_state(self, arrays: dict[str, np.ndarray], snapshot: Any) -> None:
        if "keys" not in arrays or "prior" not in arrays:
            raise ValueError(
                "saved title model has no state: refit it with `segue fit --model title`"
            )
        self.prior_ = np.asarray(arrays["prior"], dtype=np.float32)
        check_state_tracks(self.name, self.prior_.shape[0], snapshot)
        self.keys_ = np.asarray(arrays["keys"], dtype=str)
        self.key_sizes_ = np.asarray(arrays["key_sizes"], dtype=np.int64)
        self.key_tracks_ = csr_from_arrays("key_tracks", arrays)
        self._index()
        self.fitted_ = True
