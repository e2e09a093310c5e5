"""Explanations of the hybrid's recommendations, in words that name tracks, artists and genres."""

from __future__ import annotations

import numpy as np

from segue.models.base import as_seed_array
from segue.models.hybrid.features import FEATURES
from segue.models.hybrid.ranker import RankedCandidates
from segue.models.itemknn import (
    join_words,
)
from segue.models.rows import entries, row_positions, sum_rows


class Explanations(RankedCandidates):
    """Says why each recommended track scored, from the features of its query's run."""

    def explain(self, seeds: np.ndarray, track: int, *, title: str | None = None) -> str:
        return self.explain_many(seeds, np.asarray([track]), title=title)[0]

    def explain_many(
        self, seeds: np.ndarray, tracks: np.ndarray, *, title: str | None = None
    ) -> list[str]:
        """Why each of ``tracks`` scored, in words that name tracks, artists and genres.

        Uses the candidates and features of the query's pipeline run (the one ``recommend``
        just made for the same seeds and title, else a new one).
        """
        self._check_fitted()
        wanted = np.asarray(tracks, dtype=np.int64).ravel()
        bad = wanted[(wanted < 0) | (wanted >= self.n_tracks)]
        if bad.size:
            raise IndexError(f"track index {int(bad[0])} out of range [0, {self.n_tracks})")
        alone = self._generator_for(as_seed_array(seeds, self.n_tracks))
        if alone is not None:
            why = f"{alone.name} alone (it beat the ranker on held-out playlists at fit)"
            return [f"{text} ({why})" for text in alone.explain_many(seeds, wanted, title=title)]
        seed_arr, cands, x, _ = self._ranked_one(seeds, title)
        real = np.unique(seed_arr)
        how = "ranked by the learned ranker" if self._ranker_for(x) is not None else "blended"
        pos = np.minimum(np.searchsorted(cands, wanted), max(cands.size - 1, 0))
        found = (cands[pos] == wanted) if cands.size else np.zeros(wanted.size, dtype=bool)
        rows = x[pos[found]] if cands.size else x[:0]
        feats = np.zeros((wanted.size, len(FEATURES)), dtype=np.float32)
        feats[found] = rows
        with_seeds = real.size > 0
        # seeds that share playlists with each track, strongest first (rows of the seeds only)
        contrib = entries(self.knn_.similarity_, real, wanted)
        shared = self._shared_terms(real, wanted) if with_seeds else [[] for _ in wanted]
        # the (at most two) seeds sharing most playlists with each track, named in one lookup
        best: list[np.ndarray] = []
        for j in range(wanted.size):
            col = contrib[:, j] if with_seeds else np.zeros(0, dtype=np.float32)
            order = np.lexsort((real, -col))[: min(int((col > 0).sum()), 2)]
            best.append(real[order])
        labels = iter(self.names_.describe(np.concatenate([*best, np.empty(0, np.int64)])))
        named = [join_words([next(labels) for _ in b]) for b in best]
        artists = self.names_.artists(wanted)
        out: list[str] = []
        for j in range(wanted.size):
            if not found[j]:
                out.append("not among the candidates of any generator: ranked by popularity")
                continue
            f = dict(zip(FEATURES, feats[j].tolist(), strict=True))
            reasons = []
            if f["knn"] > 0:
                reasons.append(
                    f"often in playlists with {named[j]} from your seeds"
                    if named[j]
                    else f"often in playlists with the best tracks named like {title!r}"
                )
            if f["uknn"] > 0:
                reasons.append(f"in playlists like this one (rank {int(f['uknn_rank'])})")
            if f["als"] != 0:
                reasons.append(f"fits the seeds' taste profile (ALS rank {int(f['als_rank'])})")
            if f["title"] > 0:
                reasons.append(f"in playlists named like {title!r}")
            if f["name_artist"] > 0:
                reasons.append(
                    f"by {artists[j]}, named in the title"
                    if artists[j]
                    else "its artist is named in the title"
                )
            if f["name_album"] > 0:
                reasons.append("from an album the title names")
            if f["name_track"] > 0:
                reasons.append("a song the title names")
            if f["artist_share"] > 0:
                reasons.append(
                    f"by {artists[j]}, like {f['artist_share']:.0%} of your seeds"
                    if artists[j]
                    else f"{f['artist_share']:.0%} of the seeds are by the same artist"
                )
            if shared[j]:
                reasons.append(
                    f"shares genres/tags with your seeds: {join_words(shared[j])} "
                    f"(content rank {int(f['content_rank'])})"
                )
            if not reasons:
                reasons.append("popular in many playlists")
            out.append(f"{'; '.join(reasons)} ({how})")
        return out

    def _shared_terms(
        self, seeds: np.ndarray, tracks: np.ndarray, limit: int = 3
    ) -> list[list[str]]:
        """Genres or tags each of ``tracks`` shares with ``seeds``, strongest first."""
        features = self.content_.features_
        cols = features.blocks["genres"]
        if cols.stop == cols.start:
            return [[] for _ in tracks.tolist()]
        x = self._content_x
        summed = sum_rows(x, seeds)[cols]
        # every entry of the tracks' rows at once: (owner row, term, strength), then the
        # strongest three per row (ties by term)
        pos = row_positions(x.indptr, tracks)
        owner = np.repeat(np.arange(tracks.size), x.indptr[tracks + 1] - x.indptr[tracks])
        terms = x.indices[pos].astype(np.int64) - cols.start
        inside = (terms >= 0) & (terms < cols.stop - cols.start)
        owner, terms = owner[inside], terms[inside]
        strength = x.data[pos][inside] * summed[terms]
        keep = strength > 0
        owner, terms, strength = owner[keep], terms[keep], strength[keep]
        order = np.lexsort((terms, -strength, owner))
        owner, terms = owner[order], terms[order]
        first = np.searchsorted(owner, np.arange(tracks.size))
        rank = np.arange(owner.size) - first[owner]
        out: list[list[str]] = [[] for _ in range(tracks.size)]
        names = features.feature_names
        for row, term in zip(
            owner[rank < limit].tolist(), terms[rank < limit].tolist(), strict=True
        ):
            out[row].append(names[cols.start + term].split(":", 1)[1])
        return out

    # persistence ---------------------------------------------------------------------------
