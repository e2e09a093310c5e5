"""Facts the catalog itself gives, offline and always available.

* **popularity** of a track: the number of playlists holding it (the MPD has 1M playlists, so
  this is a finer popularity than Spotify's 0-100 for the tracks people put in playlists);
  of an artist: the number of distinct playlists holding one of their tracks.
* **crowd tags** of a track: the words of the titles of the playlists holding it (titles
  normalised as the MPD statistics do, stop words removed), the most frequent ``top_k`` first.

These are derived values and are never written into the catalog's Spotify ``popularity``
columns. The snapshot forms (arrays aligned with ``snapshot.tracks``) are what models use; the
catalog forms (:func:`catalog_popularity`) read the same counts with SQL.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from segue.core.text import normalise_mpd_title
from segue.snapshot.arrays import Snapshot

if TYPE_CHECKING:
    from segue.catalog import Catalog

# Words that say nothing about the music in a playlist title, on top of English stop words.
TITLE_STOP_WORDS = frozenset(
    {
        "playlist",
        "playlists",
        "song",
        "songs",
        "music",
        "mix",
        "track",
        "tracks",
        "spotify",
        "vol",
        "pt",
        "part",
    }
)
_TOKEN = r"(?u)\b\w\w+\b"
# Tracks per block when crossing playlists with title words: bounds memory on the full MPD.
BLOCK_TRACKS = 200_000


def stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS) | TITLE_STOP_WORDS


def _binary(matrix: sp.spmatrix) -> sp.csr_matrix:
    out = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    out.sum_duplicates()
    out.data[:] = 1.0
    return out


# ----------------------------------------------------------------------------------------
# popularity


def track_popularity(snapshot: Snapshot) -> np.ndarray:
    """int32 array (n_tracks,): playlists holding each track."""
    held = _binary(snapshot.interactions)
    return np.diff(held.tocsc().indptr).astype(np.int32)


def artist_popularity(snapshot: Snapshot) -> pd.Series:
    """int32 Series indexed by ``artist_key`` (every artist of ``snapshot.artists``): distinct
    playlists holding at least one track whose primary artist it is."""
    keys = snapshot.track_artist_keys()
    index = snapshot.artists.index.to_numpy()
    if keys.size == 0 or index.size == 0:
        return pd.Series(
            np.zeros(index.size, dtype=np.int32), index=snapshot.artists.index, name="playlists"
        )
    uniq, col = np.unique(keys, return_inverse=True)
    track_to_artist = sp.csr_matrix(
        (np.ones(keys.size, dtype=np.float32), (np.arange(keys.size), col)),
        shape=(keys.size, uniq.size),
    )
    playlist_artist = _binary(_binary(snapshot.interactions) @ track_to_artist)
    counts = np.diff(playlist_artist.tocsc().indptr).astype(np.int32)
    series = pd.Series(counts, index=uniq)
    return (
        series.reindex(index, fill_value=0)
        .astype(np.int32)
        .rename("playlists")
        .rename_axis("artist_key")
    )


def catalog_popularity(catalog: Catalog) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The same counts read from the catalog with SQL.

    Returns ``(tracks, artists)``: ``tracks`` has ``track_id``, ``playlists`` (every track,
    by id); ``artists`` has ``artist_key``, ``artist_id``, ``playlists`` (every artist).
    """
    return catalog.track_playlist_counts().to_pandas(), catalog.artist_playlist_counts().to_pandas()


# ----------------------------------------------------------------------------------------
# genres made from playlist labels

#: Column of ``snapshot.playlists``: the labels (list of str) a playlist gave as genres to the
#: artists of its tracks, in catalogs whose artists have no genres of their own (a table's
#: ``playlist_genre``/``playlist_subgenre``). Absent when genres come from elsewhere.
GENRE_LABELS = "genre_labels"


def has_playlist_labels(snapshot: Snapshot) -> bool:
    """Whether some artist genres of ``snapshot`` were made from its playlists' labels."""
    column = snapshot.playlists.get(GENRE_LABELS)
    return column is not None and any(_labels(v) for v in column.tolist())


def _labels(value: object) -> list[str]:
    if value is None or isinstance(value, str | bytes):
        return [value] if isinstance(value, str) and value else []
    if isinstance(value, Iterable):
        return [str(v) for v in value if isinstance(v, str) and v]
    return []


def without_titles(snapshot: Snapshot, rows: Sequence[int] | np.ndarray) -> Snapshot:
    """``snapshot`` with the playlists at ``rows`` untitled (a shallow copy; nothing else
    changes). Validation needs it for crowd tags: a query playlist is not one of the catalog's,
    so its seeds must not carry the words of its own title."""
    rows = np.unique(np.asarray(rows, dtype=np.int64))
    if rows.size == 0 or "name" not in snapshot.playlists.columns:
        return snapshot
    playlists = snapshot.playlists.copy(deep=False)
    names = playlists["name"].to_numpy(dtype=object, copy=True)
    names[rows[rows < names.size]] = None
    playlists["name"] = names
    out = copy.copy(snapshot)
    out.playlists = playlists
    return out


def without_playlist_labels(snapshot: Snapshot, rows: Sequence[int] | np.ndarray) -> Snapshot:
    """``snapshot`` as if the playlists at ``rows`` had given no labels: artist genres that
    only those playlists' labels gave are dropped (a shallow copy; nothing else changes).

    Validation on a catalog's own playlists needs it where genres are made from playlist
    labels: a held-out playlist's label names the genre of every artist it holds, hidden
    tracks included, so scoring it with its own label measures the label, not the model.
    An artist's genres that are no playlist's label stay (they came from elsewhere).
    """
    rows = np.unique(np.asarray(rows, dtype=np.int64))
    if rows.size == 0 or not has_playlist_labels(snapshot):
        return snapshot
    labels = [_labels(v) for v in snapshot.playlists[GENRE_LABELS].tolist()]
    vocab = sorted({g for row in labels for g in row})
    code = {g: i for i, g in enumerate(vocab)}
    label_rows = np.repeat(np.arange(len(labels)), [len(row) for row in labels])
    playlist_labels = sp.csr_matrix(
        (
            np.ones(label_rows.size, dtype=np.float32),
            (label_rows, [code[g] for row in labels for g in row]),
        ),
        shape=(snapshot.n_playlists, len(vocab)),
    )
    keys = snapshot.track_artist_keys()
    artist_keys, artist_col = np.unique(keys, return_inverse=True)
    track_artist = sp.csr_matrix(
        (np.ones(keys.size, dtype=np.float32), (np.arange(keys.size), artist_col)),
        shape=(keys.size, artist_keys.size),
    )
    # artist x playlist: the playlists holding one of the artist's tracks
    artist_playlists = _binary(sp.csr_matrix(track_artist.T @ _binary(snapshot.interactions).T))
    given = sp.csr_matrix(artist_playlists @ playlist_labels)
    keep_rows = np.ones(snapshot.n_playlists, dtype=np.float32)
    keep_rows[rows[rows < snapshot.n_playlists]] = 0.0
    kept = sp.csr_matrix(artist_playlists @ sp.diags(keep_rows) @ playlist_labels)
    kept.eliminate_zeros()
    words = np.asarray(vocab, dtype=object)

    def terms(matrix: sp.csr_matrix, i: int) -> set[str]:
        return set(words[matrix.indices[matrix.indptr[i] : matrix.indptr[i + 1]]].tolist())

    position = {int(k): i for i, k in enumerate(artist_keys.tolist())}
    artists = snapshot.artists.copy()
    genres = artists["genres"].tolist()
    for i, key in enumerate(artists.index.tolist()):
        at = position.get(int(key))
        if at is None or given.indptr[at + 1] == given.indptr[at]:
            continue
        gave, keep = terms(given, at), terms(kept, at)
        genres[i] = [g for g in _labels(genres[i]) if g not in gave or g in keep]
    artists["genres"] = genres
    out = copy.copy(snapshot)
    out.artists = artists
    return out


def with_interactions(snapshot: Snapshot, matrix: sp.csr_matrix) -> Snapshot:
    """A shallow copy of ``snapshot`` holding ``matrix`` (same shape) as its playlists, with
    the tracks' ``playlist_count`` counted on it: validation that hides tracks from playlists
    must not leave them the counts of the playlists they were hidden from (the popularity
    block reads them where Spotify's popularity is unknown). Names and song keys, which do
    not depend on the playlists, are kept rather than computed again."""
    if matrix.shape != snapshot.interactions.shape:
        raise ValueError(
            f"matrix must have the snapshot's shape {snapshot.interactions.shape}, got {matrix.shape}"
        )
    out = copy.copy(snapshot)
    out.interactions = matrix
    out._transposed = None
    if "playlist_count" in snapshot.tracks.columns:
        tracks = snapshot.tracks.copy(deep=False)
        tracks["playlist_count"] = track_popularity(out)
        out.tracks = tracks
        if snapshot._songs is not None and snapshot._songs[0] is snapshot.tracks:
            out._songs = (tracks, snapshot._songs[1])
        if snapshot._names is not None and snapshot._names[0][0] is snapshot.tracks:
            out._names = ((tracks, *snapshot._names[0][1:]), snapshot._names[1])
    return out


# ----------------------------------------------------------------------------------------
# crowd tags


def title_words(names: list[str | None]) -> tuple[sp.csr_matrix, np.ndarray]:
    """Binary float32 CSR (n_playlists, n_words) of the words of each title, and the words
    (object array, sorted). Titles are normalised as the MPD statistics do; stop words and
    one-character tokens are dropped."""
    from sklearn.feature_extraction.text import CountVectorizer

    docs = [normalise_mpd_title(n) if isinstance(n, str) else "" for n in names]
    vectorizer = CountVectorizer(
        binary=True,
        lowercase=False,
        token_pattern=_TOKEN,
        stop_words=sorted(stop_words()),
        dtype=np.float32,
    )
    try:
        matrix = vectorizer.fit_transform(docs)
    except ValueError:  # empty vocabulary: no title has a usable word
        return sp.csr_matrix((len(docs), 0), dtype=np.float32), np.empty(0, dtype=object)
    return sp.csr_matrix(matrix), np.asarray(vectorizer.get_feature_names_out(), dtype=object)


def _top_k(counts: sp.csr_matrix, top_k: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of the ``top_k`` largest entries of each row, by count then column."""
    counts.sort_indices()
    rows = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
    order = np.lexsort((counts.indices, -counts.data, rows))
    rank = np.arange(order.size) - counts.indptr[rows[order]]
    keep = order[rank < top_k]
    return rows[keep], counts.indices[keep]


def crowd_tags(snapshot: Snapshot, top_k: int = 10, *, min_playlists: int = 1) -> list[list[str]]:
    """Crowd tags of each track: list aligned with ``snapshot.tracks`` (row ``i`` = track ``i``).

    Each entry holds up to ``top_k`` words of the titles of the playlists holding the track,
    most playlists first (ties alphabetically); a word must come from at least
    ``min_playlists`` playlists. Tracks in no titled playlist get ``[]``.
    """
    if not isinstance(top_k, int) or top_k < 0:
        raise ValueError(f"top_k must be a non-negative int, got {top_k!r}")
    n = snapshot.n_tracks
    out: list[list[str]] = [[] for _ in range(n)]
    if top_k == 0 or n == 0:
        return out
    words, vocab = title_words(snapshot.playlists["name"].tolist())
    if vocab.size == 0:
        return out
    held = _binary(snapshot.interactions).tocsc()
    for start in range(0, n, BLOCK_TRACKS):
        stop = min(start + BLOCK_TRACKS, n)
        counts = sp.csr_matrix(held[:, start:stop].T @ words)
        if min_playlists > 1:
            counts.data[counts.data < min_playlists] = 0
            counts.eliminate_zeros()
        rows, cols = _top_k(counts, top_k)
        if rows.size == 0:
            continue
        cuts = np.flatnonzero(np.diff(rows)) + 1
        for row, chunk in zip(
            rows[np.r_[0, cuts]].tolist(), np.split(vocab[cols], cuts), strict=True
        ):
            out[start + row] = chunk.tolist()
    return out


def track_facts_frame(snapshot: Snapshot, top_k: int = 10) -> pd.DataFrame:
    """One row per snapshot track (same order): ``track_id``, ``playlists`` (int32),
    ``artist_playlists`` (int32: playlists holding the primary artist), ``crowd_tags`` (list)."""
    artist_counts = artist_popularity(snapshot)
    keys = snapshot.track_artist_keys()
    return pd.DataFrame(
        {
            "track_id": snapshot.tracks["track_id"].to_numpy(),
            "playlists": track_popularity(snapshot),
            "artist_playlists": artist_counts.reindex(keys, fill_value=0).to_numpy(np.int32),
            "crowd_tags": crowd_tags(snapshot, top_k),
        }
    )


def normalise_title_words(title: str) -> list[str]:
    """The crowd-tag words of one title (for matching a user's playlist title to tags)."""
    stops = stop_words()
    return [w for w in re.findall(_TOKEN, normalise_mpd_title(title)) if w not in stops]


__all__ = [
    "GENRE_LABELS",
    "TITLE_STOP_WORDS",
    "artist_popularity",
    "catalog_popularity",
    "crowd_tags",
    "has_playlist_labels",
    "normalise_title_words",
    "title_words",
    "track_facts_frame",
    "track_popularity",
    "with_interactions",
    "without_playlist_labels",
    "without_titles",
]
