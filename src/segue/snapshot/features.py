"""The content feature matrix: what a track *is*, as named, weighted blocks of one sparse matrix.

:func:`build_content_features` turns a :class:`segue.snapshot.arrays.Snapshot` into a
:class:`ContentFeatures`: a float32 CSR matrix of shape (n_tracks, n_features) whose columns fall
into four named blocks, each L2-normalised per row so that the dot product of two rows within a
block is their cosine similarity:

* ``genres`` - TF-IDF over the genres of the track's artist, each genre one term ("dance pop"
  stays one term): what scikit-learn's ``TfidfVectorizer(max_features=n_genres)`` gives with one
  document per track, computed with its ``TfidfTransformer`` from the artist x genre matrix.
  Where the artist has no genres the track's *crowd tags* stand in: the words of the titles of
  the playlists holding the track (``crowd_tag_mode="missing"``; ``"all"`` adds them for every
  track). Genres and tags share one vocabulary, so the tag "rock" meets the genre "rock".
* ``audio`` - the audio features that at least one track has, scaled to [0, 1] by
  ``MinMaxScaler``; unknown values are imputed with the column median and the ``audio:missing``
  column holds the fraction of features that were imputed (1.0 = no audio facts at all). A track
  is never dropped for missing audio features. Features that no track has are left out (they
  carry no information); when no track has any, the block is the flag column alone.
* ``popularity`` - one-hot buckets of ``popularity // popularity_width`` (0-100 scale). Where
  Spotify's popularity is unknown, the catalog's own popularity is used: the percentile of the
  track's ``playlist_count`` (0-100).
* ``era`` - one-hot buckets of ``release_year // era_width`` (50 = the original project's
  buckets); ``era:unknown`` where the year is unknown.

Duplicates (same title, case- and space-insensitive, and same artist, but different track ids,
e.g. a single and its album version) stay separate rows, since playlists name one or the other,
but they *share facts*: unknown audio features are filled from the song's other versions, the
era is that of the earliest known release (a 2011 remaster of a 1975 song belongs to the 1970s),
unknown popularity takes the best known version's, and crowd tags are pooled over the versions.
``duplicate_group`` (int64, one id per song) lets models collapse versions at recommend time.

Saved without pickle: ``content_features/`` (one ``.npy`` per array, mapped read-only when
loaded: :mod:`segue.core.mapped`) + ``content_features.json`` (blocks, weights, parameters).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from segue.core import mapped
from segue.core.errors import NotFittedError
from segue.core.records import AUDIO_FEATURES
from segue.snapshot.derived import crowd_tags

if TYPE_CHECKING:
    from segue.snapshot.arrays import Snapshot

#: Block names in column order.
BLOCKS = ("genres", "audio", "popularity", "era")

#: ``genre_source`` codes: where a track's ``genres`` block came from.
SOURCE_NONE, SOURCE_GENRES, SOURCE_TAGS, SOURCE_BOTH = 0, 1, 2, 3

CrowdTagMode = Literal["missing", "all", "none"]

FEATURES_FORMAT_VERSION = 2
FEATURES_ARRAYS = "content_features"


@dataclass
class ContentFeatures:
    """A content feature matrix with named blocks.

    * ``matrix``: float32 CSR of shape (n_tracks, n_features); rows L2-normalised per block
      (a block of a row is all zeros only when the track has no term of that block).
    * ``blocks``: block name -> column slice of ``matrix``, in :data:`BLOCKS` order.
    * ``feature_names``: one name per column, ``"<block>:<term>"``.
    * ``weights``: block name -> default weight (models may override).
    * ``duplicate_group``: int64 (n_tracks,), equal for versions of one song.
    * ``genre_source``: int8 (n_tracks,), :data:`SOURCE_NONE`/``GENRES``/``TAGS``/``BOTH``.
    * ``params``: the parameters the matrix was built with.
    """

    matrix: sp.csr_matrix
    blocks: dict[str, slice]
    feature_names: list[str]
    weights: dict[str, float]
    duplicate_group: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    genre_source: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int8))
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = self.matrix.shape[0]
        if self.duplicate_group.size == 0 and n:
            self.duplicate_group = np.arange(n, dtype=np.int64)
        if self.genre_source.size == 0 and n:
            self.genre_source = np.zeros(n, dtype=np.int8)
        if len(self.feature_names) != self.matrix.shape[1]:
            raise ValueError(
                f"feature_names has {len(self.feature_names)} names for {self.matrix.shape[1]} columns"
            )
        unknown = set(self.weights) - set(self.blocks)
        if unknown:
            raise ValueError(
                f"weights name unknown block(s) {sorted(unknown)}; blocks are {list(self.blocks)}"
            )

    @property
    def n_tracks(self) -> int:
        return int(self.matrix.shape[0])

    def block(self, name: str) -> sp.csr_matrix:
        """The columns of block ``name``: float32 CSR (n_tracks, block width)."""
        try:
            cols = self.blocks[name]
        except KeyError:
            raise ValueError(
                f"unknown block {name!r}; expected one of {list(self.blocks)}"
            ) from None
        return self.matrix[:, cols].tocsr()

    def block_names(self, name: str) -> list[str]:
        """Terms of block ``name`` without the ``"<block>:"`` prefix."""
        cols = self.blocks[name]
        return [f.split(":", 1)[1] for f in self.feature_names[cols]]

    def weighted_matrix(self, weights: Mapping[str, float] | None = None) -> sp.csr_matrix:
        """``matrix`` with each block's columns multiplied by its weight (float32 CSR)."""
        w = {**self.weights, **(weights or {})}
        scale = np.ones(self.matrix.shape[1], dtype=np.float32)
        for name, cols in self.blocks.items():
            scale[cols] = w.get(name, 1.0)
        return sp.csr_matrix(self.matrix @ sp.diags(scale, format="csr"), dtype=np.float32)

    @property
    def nbytes(self) -> int:
        """Bytes held by the sparse matrix's three arrays."""
        m = self.matrix
        return int(m.data.nbytes + m.indices.nbytes + m.indptr.nbytes)

    # persistence -------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        """Write ``content_features/`` (arrays) + ``content_features.json`` into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        m = self.matrix
        mapped.write_arrays(
            directory / FEATURES_ARRAYS,
            {
                "data": m.data,
                "indices": m.indices,
                "indptr": m.indptr,
                "shape": np.asarray(m.shape, dtype=np.int64),
                "feature_names": np.asarray(self.feature_names, dtype=str),
                "duplicate_group": self.duplicate_group,
                "genre_source": self.genre_source,
            },
        )
        meta = {
            "format_version": FEATURES_FORMAT_VERSION,
            "blocks": {k: [v.start, v.stop] for k, v in self.blocks.items()},
            "weights": self.weights,
            "params": self.params,
        }
        (directory / "content_features.json").write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, directory: Path) -> ContentFeatures:
        directory = Path(directory)
        meta_path = directory / "content_features.json"
        if not meta_path.exists():
            raise NotFittedError(
                f"no content features in {directory}: expected content_features.json"
            )
        meta = json.loads(meta_path.read_text())
        if meta.get("format_version") != FEATURES_FORMAT_VERSION:
            raise NotFittedError(
                f"content features in {directory} have format {meta.get('format_version')}, "
                f"this segue reads {FEATURES_FORMAT_VERSION}: rebuild them"
            )
        z = mapped.read_arrays(directory / FEATURES_ARRAYS)
        shape = tuple(int(x) for x in z["shape"])
        matrix = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=shape)
        names = [str(x) for x in z["feature_names"]]
        dup = np.asarray(z["duplicate_group"], dtype=np.int64)
        source = np.asarray(z["genre_source"], dtype=np.int8)
        return cls(
            matrix=matrix,
            blocks={k: slice(int(a), int(b)) for k, (a, b) in meta["blocks"].items()},
            feature_names=names,
            weights={k: float(v) for k, v in meta["weights"].items()},
            duplicate_group=dup,
            genre_source=source,
            params=meta.get("params", {}),
        )


# ---------------------------------------------------------------------------------------------
# building blocks
# ---------------------------------------------------------------------------------------------


def duplicate_groups(tracks: pd.DataFrame) -> np.ndarray:
    """int64 (n_tracks,): one id per (normalised title, artist); untitled tracks stand alone."""
    titles = tracks["name"].astype("string").str.casefold().str.split().str.join(" ").fillna("")
    keys = pd.DataFrame(
        {"artist": tracks["artist_key"].to_numpy(dtype=np.int64), "title": titles.to_numpy()}
    )
    untitled = (keys["title"] == "").to_numpy()
    # an untitled track gets a title no real one can have: its own position
    keys.loc[untitled, "title"] = [f"\x1e{i}" for i in np.flatnonzero(untitled)]
    codes = keys.groupby(["artist", "title"], sort=False).ngroup().to_numpy()
    return codes.astype(np.int64)


def _crowd_tag_pairs(
    snapshot: Snapshot, top_k: int, groups: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Crowd tags as parallel arrays: track index (int64, ascending) and tag (object str),
    most frequent first within a track."""
    n = snapshot.n_tracks
    none = (np.empty(0, dtype=np.int64), np.empty(0, dtype=object))
    if top_k <= 0 or n == 0:
        return none
    tags = crowd_tags(snapshot, top_k)
    if groups is not None and groups.size == n and int(groups.max()) + 1 < n:
        pooled: dict[int, list[str]] = {}
        for g, own in zip(groups.tolist(), tags, strict=True):
            bucket = pooled.setdefault(g, [])
            bucket.extend(t for t in own if t not in bucket)
        tags = [pooled[g][:top_k] for g in groups.tolist()]
    lengths = np.fromiter((len(t) for t in tags), dtype=np.int64, count=n)
    words = np.asarray([w for own in tags for w in own], dtype=object)
    return np.repeat(np.arange(n, dtype=np.int64), lengths), words


def pooled_crowd_tags(
    snapshot: Snapshot, *, top_k: int = 10, groups: np.ndarray | None = None
) -> list[list[str]]:
    """The crowd tags of :func:`segue.snapshot.derived.crowd_tags` (list aligned with
    ``snapshot.tracks``, most frequent first), pooled over the versions of a song when
    ``groups`` (see :func:`duplicate_groups`) is given: every version gets the same tags, those
    of its versions in track order without repeats, at most ``top_k``.
    """
    rows, words = _crowd_tag_pairs(snapshot, top_k, groups)
    out: list[list[str]] = [[] for _ in range(snapshot.n_tracks)]
    if rows.size:
        cuts = np.flatnonzero(np.diff(rows)) + 1
        for row, chunk in zip(rows[np.r_[0, cuts]].tolist(), np.split(words, cuts), strict=True):
            out[row] = [str(w) for w in chunk]
    return out


def _clean_terms(genres: object) -> list[str]:
    """Distinct, lower-cased, stripped genre names (empty for None or an empty list)."""
    if isinstance(genres, str):
        items: list[object] = [genres]
    elif isinstance(genres, Iterable):
        items = list(genres)
    else:
        items = []
    return list(dict.fromkeys(g.strip().lower() for g in items if isinstance(g, str) and g.strip()))


def _binary(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    m = sp.csr_matrix((np.ones(rows.size, dtype=np.float32), (rows, cols)), shape=shape)
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


def _genre_block(
    snapshot: Snapshot,
    *,
    n_genres: int | None,
    crowd_tag_mode: CrowdTagMode,
    tag_top_k: int,
    groups: np.ndarray,
    tag_pairs: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[sp.csr_matrix, list[str], np.ndarray]:
    """TF-IDF of each track's terms (artist genres, plus crowd tags as the mode says).

    Equal to ``TfidfVectorizer(analyzer=<terms of the track>, max_features=n_genres)`` over
    one document per track (tested), but built from the artist x genre matrix: documents are
    assembled with sparse row indexing and weighted by scikit-learn's ``TfidfTransformer``, so
    millions of tracks need no per-track Python loop.
    """
    from sklearn.feature_extraction.text import TfidfTransformer

    n = snapshot.n_tracks
    artist_terms = [_clean_terms(g) for g in snapshot.artists["genres"].tolist()]
    a_lengths = np.fromiter((len(t) for t in artist_terms), dtype=np.int64, count=len(artist_terms))
    a_rows = np.repeat(np.arange(len(artist_terms), dtype=np.int64), a_lengths)
    a_words = np.asarray([w for terms in artist_terms for w in terms], dtype=object)
    if crowd_tag_mode != "none":
        t_rows, t_words = tag_pairs or _crowd_tag_pairs(snapshot, tag_top_k, groups)
        t_words = np.asarray([str(w).strip().lower() for w in t_words], dtype=object)
    else:
        t_rows, t_words = np.empty(0, dtype=np.int64), np.empty(0, dtype=object)
    vocab = (
        np.unique(np.concatenate([a_words, t_words]))
        if a_words.size + t_words.size
        else np.empty(0, object)
    )
    lookup = pd.Index(vocab)
    width = vocab.size
    by_artist = _binary(a_rows, lookup.get_indexer(a_words), (len(artist_terms) + 1, width))
    artist_pos = snapshot.artists.index.get_indexer(pd.Index(snapshot.tracks["artist_key"]))
    artist_pos[artist_pos < 0] = len(
        artist_terms
    )  # an artist missing from the table: the empty row
    genres = by_artist[artist_pos]
    has_genres = np.diff(genres.indptr) > 0
    tags = _binary(t_rows, lookup.get_indexer(t_words), (n, width))
    if crowd_tag_mode == "missing":
        tags = sp.csr_matrix(sp.diags((~has_genres).astype(np.float32)) @ tags)
        tags.eliminate_zeros()
    terms = genres + tags
    terms.data[:] = 1.0
    frequency = np.asarray(terms.sum(axis=0)).ravel().round().astype(np.int64)
    keep = np.flatnonzero(frequency > 0)  # e.g. tags of tracks that have genres, mode "missing"
    if n_genres is not None and keep.size > n_genres:
        # scikit-learn's own rule: the max_features terms most frequent over the corpus
        keep = np.sort(keep[(-frequency[keep]).argsort()[:n_genres]])
    if keep.size < width:
        terms, genres, tags, vocab = terms[:, keep], genres[:, keep], tags[:, keep], vocab[keep]
    source = np.full(n, SOURCE_NONE, dtype=np.int8)
    with_genres, with_tags = np.diff(genres.indptr) > 0, np.diff(tags.indptr) > 0
    source[with_genres] = SOURCE_GENRES
    source[with_tags & ~with_genres] = SOURCE_TAGS
    source[with_tags & with_genres] = SOURCE_BOTH
    if vocab.size == 0 or terms.nnz == 0:
        return sp.csr_matrix((n, 0), dtype=np.float32), [], source
    block = TfidfTransformer(norm="l2").fit_transform(terms.astype(np.float32))
    return sp.csr_matrix(block, dtype=np.float32), [str(v) for v in vocab], source


def _group_fill(
    values: pd.DataFrame, groups: np.ndarray, how: Literal["mean", "min", "max"]
) -> pd.DataFrame:
    """Fill NaN cells from the other versions of the same song (``how``: mean, min, max)."""
    if not values.isna().to_numpy().any():
        return values
    filled = values.groupby(groups).transform(how)
    return values.fillna(filled)


def _audio_block(tracks: pd.DataFrame, groups: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Dense float32 (n_tracks, k + 1): scaled, imputed audio features and the missing fraction."""
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import MinMaxScaler

    present = [c for c in AUDIO_FEATURES if c in tracks.columns and tracks[c].notna().any()]
    n = len(tracks)
    if not present:
        return np.ones((n, 1), dtype=np.float32), ["missing"]
    raw = _group_fill(tracks[present].astype("float64"), groups, "mean")
    missing_fraction = raw.isna().to_numpy().mean(axis=1)
    scaled = MinMaxScaler().fit_transform(raw.to_numpy())  # NaN kept, ignored in fit
    imputed = SimpleImputer(strategy="median").fit_transform(scaled)
    block = np.column_stack([imputed, missing_fraction]).astype(np.float32)
    return block, [*present, "missing"]


def playlist_count_percentile(playlist_count: np.ndarray) -> np.ndarray:
    """Percentile (0-100, float32) of each track's playlist count among all tracks (ties averaged)."""
    counts = pd.Series(np.asarray(playlist_count, dtype=np.float64))
    if counts.empty:
        return np.empty(0, dtype=np.float32)
    return (counts.rank(method="average", pct=True) * 100.0).to_numpy(dtype=np.float32)


def bucket_label(bucket: int, width: int, *, decade_style: bool) -> str:
    lo = bucket * width
    if width == 1:
        return str(lo)
    if decade_style and width == 10:
        return f"{lo}s"
    return f"{lo}-{lo + width - 1}"


def _onehot(codes: np.ndarray, width: int) -> sp.csr_matrix:
    n = codes.size
    return sp.csr_matrix(
        (np.ones(n, dtype=np.float32), (np.arange(n), codes)), shape=(n, width), dtype=np.float32
    )


def _popularity_block(
    tracks: pd.DataFrame, groups: np.ndarray, width: int
) -> tuple[sp.csr_matrix, list[str]]:
    spotify = _group_fill(tracks[["popularity"]].astype("float64"), groups, "max")[
        "popularity"
    ].to_numpy()
    fallback = playlist_count_percentile(tracks["playlist_count"].fillna(0).to_numpy())
    pop = np.where(np.isnan(spotify), fallback, spotify)
    pop = np.clip(pop, 0.0, 100.0)
    n_buckets = 100 // width + 1
    codes = np.minimum((pop // width).astype(np.int64), n_buckets - 1)
    names = [
        bucket_label(b, width, decade_style=False) if b * width < 100 else "100"
        for b in range(n_buckets)
    ]
    return _onehot(codes, n_buckets), names


def _era_block(
    tracks: pd.DataFrame, groups: np.ndarray, width: int
) -> tuple[sp.csr_matrix, list[str]]:
    years = tracks["release_year"].astype("float64")
    # the earliest known release of the song, over all its versions
    earliest = years.groupby(groups).transform("min").to_numpy()
    known = ~np.isnan(earliest)
    if known.any():
        buckets = np.full(len(years), -1, dtype=np.int64)
        buckets[known] = (earliest[known] // width).astype(np.int64)
        lo, hi = int(buckets[known].min()), int(buckets[known].max())
    else:
        buckets = np.full(len(years), -1, dtype=np.int64)
        lo, hi = 0, -1
    n_known = hi - lo + 1
    codes = np.where(known, buckets - lo, n_known)
    names = [bucket_label(b, width, decade_style=True) for b in range(lo, hi + 1)] + ["unknown"]
    return _onehot(codes, n_known + 1), names


def _l2_rows(block: sp.csr_matrix) -> sp.csr_matrix:
    from sklearn.preprocessing import normalize

    return normalize(block, norm="l2", axis=1, copy=True).astype(np.float32)


@dataclass
class BlockMemo:
    """Blocks kept between builds of one catalog's features that differ in a few settings (the
    content search builds dozens): ``tracks`` holds what depends on the tracks and the
    interactions (duplicate groups, crowd tags, audio, popularity and era blocks) and may be
    shared by views of one catalog that differ only in their artists' genres; ``genres`` the
    genre blocks of one view."""

    tracks: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    genres: dict[tuple[Any, ...], Any] = field(default_factory=dict)


def _memo(store: dict[tuple[Any, ...], Any] | None, key: tuple[Any, ...], make: Any) -> Any:
    if store is None:
        return make()
    if key not in store:
        store[key] = make()
    return store[key]


def build_content_features(
    snapshot: Snapshot,
    *,
    n_genres: int | None = None,
    era_width: int = 50,
    popularity_width: int = 5,
    crowd_tag_mode: CrowdTagMode = "missing",
    tag_top_k: int = 10,
    weights: Mapping[str, float] | None = None,
    memo: BlockMemo | None = None,
) -> ContentFeatures:
    """The content feature matrix of every track of ``snapshot`` (see the module docstring).

    ``n_genres``: TF-IDF ``max_features`` (None = every term; the original project used 3).
    ``era_width``: years per era bucket (50 = the original's ``year // 50``).
    ``popularity_width``: popularity points per bucket (5 = the original's ``popularity // 5``).
    ``crowd_tag_mode``: crowd tags for tracks whose artist has no genres (``"missing"``), for
    every track (``"all"``), or never (``"none"``); ``tag_top_k`` tags per track.
    ``weights``: default block weights stored with the matrix (1.0 for unnamed blocks).
    ``memo``: blocks built earlier for the same tracks (and, for genres, the same view), used
    again; the caller keeps one per catalog view it builds for more than once.
    """
    if n_genres is not None and (not isinstance(n_genres, int) or n_genres < 1):
        raise ValueError(f"n_genres must be a positive int or None, got {n_genres!r}")
    for label, width in (("era_width", era_width), ("popularity_width", popularity_width)):
        if not isinstance(width, int) or width < 1:
            raise ValueError(f"{label} must be a positive int, got {width!r}")
    if crowd_tag_mode not in ("missing", "all", "none"):
        raise ValueError(
            f"crowd_tag_mode must be 'missing', 'all' or 'none', got {crowd_tag_mode!r}"
        )
    if tag_top_k < 0:
        raise ValueError(f"tag_top_k must be >= 0, got {tag_top_k}")
    tracks = snapshot.tracks
    own = memo.tracks if memo is not None else None
    view = memo.genres if memo is not None else None
    groups = _memo(own, ("groups",), lambda: duplicate_groups(tracks))

    def genre_part() -> tuple[sp.csr_matrix, list[str], np.ndarray]:
        pairs = None
        if crowd_tag_mode != "none":
            pairs = _memo(
                own, ("tags", tag_top_k), lambda: _crowd_tag_pairs(snapshot, tag_top_k, groups)
            )
        block, names, source = _genre_block(
            snapshot,
            n_genres=n_genres,
            crowd_tag_mode=crowd_tag_mode,
            tag_top_k=tag_top_k,
            groups=groups,
            tag_pairs=pairs,
        )
        return (_l2_rows(block) if block.shape[1] else block), names, source

    def audio_part() -> tuple[sp.csr_matrix, list[str]]:
        dense, names = _audio_block(tracks, groups)
        return _l2_rows(sp.csr_matrix(dense)), names

    genre_block, genre_names, source = _memo(
        view, ("genres", n_genres, crowd_tag_mode, tag_top_k), genre_part
    )
    parts = {
        "genres": (genre_block, genre_names),
        "audio": _memo(own, ("audio",), audio_part),
        "popularity": _memo(
            own,
            ("popularity", popularity_width),
            lambda: _popularity_block(tracks, groups, popularity_width),
        ),
        "era": _memo(own, ("era", era_width), lambda: _era_block(tracks, groups, era_width)),
    }
    blocks: dict[str, slice] = {}
    names: list[str] = []
    start = 0
    for block_name in BLOCKS:
        part, part_names = parts[block_name]
        blocks[block_name] = slice(start, start + part.shape[1])
        names.extend(f"{block_name}:{t}" for t in part_names)
        start += part.shape[1]
    matrix = sp.hstack([parts[b][0] for b in BLOCKS], format="csr", dtype=np.float32)
    matrix.sort_indices()
    w: dict[str, float] = dict.fromkeys(BLOCKS, 1.0)
    for key, value in (weights or {}).items():
        if key not in w:
            raise ValueError(f"weights name unknown block {key!r}; blocks are {list(BLOCKS)}")
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"weight of block {key!r} must be finite and >= 0, got {value}")
        w[key] = float(value)
    return ContentFeatures(
        matrix=matrix,
        blocks=blocks,
        feature_names=names,
        weights=w,
        duplicate_group=groups,
        genre_source=source,
        params={
            "n_genres": n_genres,
            "era_width": era_width,
            "popularity_width": popularity_width,
            "crowd_tag_mode": crowd_tag_mode,
            "tag_top_k": tag_top_k,
        },
    )


__all__ = [
    "BLOCKS",
    "BlockMemo",
    "ContentFeatures",
    "build_content_features",
    "duplicate_groups",
    "playlist_count_percentile",
    "pooled_crowd_tags",
]
