"""The learned ranker: training queries cut from the catalog's playlists, LightGBM training, the
measuring of the ranker against its parts at fit, and the scoring of candidates."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from segue.models.base import Recommender, as_seed_array, fit_phase
from segue.models.content import query_ndcg
from segue.models.hybrid.candidates import CandidateGenerators
from segue.models.hybrid.features import COLUMN, FEATURES, Batch
from segue.models.topn import merge_top_n

log = logging.getLogger(__name__)

#: Fixed blend used when there are too few playlists to train the ranker.
BLEND = {
    "knn_ratio": 1.0,
    "uknn_ratio": 0.5,
    "als_rank": -0.002,
    "title_ratio": 0.5,
    "artist_share": 0.3,
    "content": 0.3,
}
#: Seed counts of the challenge categories; training queries are cut the same ways.
SEED_COUNTS = (0, 1, 5, 10, 25, 100)
#: Fewer cut playlists than this: no validation at fit (the blend, generators on all data).
MIN_SELECT_PLAYLISTS = 20
#: Recommendations per held-out query when the hybrid measures itself against its parts.
SELECT_N = 500
#: What a kind of query (with seeds / a title only) may be answered by: the learned ranker,
#: the fixed blend, or one generator alone.
SEEDED_CHOICES = ("ranker", "blend", "content", "model2", "knn", "als")
TITLE_CHOICES = ("ranker", "blend", "title")
#: A generator alone or the blend replaces the ranker only when better by more than this
#: (validation NDCG; the ranker's wins elsewhere are worth a tie).
SELECT_MARGIN = 0.002
#: Answers that tune fewer settings, in the order the one-standard-error rule prefers them to
#: the answer that measured best: Model 2 (equal weights) to the genre-led content model,
#: whose block weights were searched on the same held-out playlists.
SIMPLER = {"content": "model2"}


class RankedCandidates(CandidateGenerators):
    """Trains the rankers and scores a query's candidates with them (or the blend)."""

    def _say(self, message: str) -> None:
        if self.progress:
            log.info("hybrid: %s", message)

    def _training_queries(
        self, snapshot: Any, matrix: sp.csr_matrix, rng: np.random.Generator
    ) -> tuple[list[np.ndarray], list[str | None], sp.csr_matrix] | None:
        """Cut training playlists like challenge playlists: seeds, titles and hidden tracks."""
        lengths = np.diff(matrix.indptr)
        names = snapshot.playlists["name"].tolist() if len(snapshot.playlists) else []
        eligible = np.flatnonzero(lengths >= 11)
        if eligible.size < min(max(self.min_ranker_playlists, 1), MIN_SELECT_PLAYLISTS):
            return None
        chosen = np.sort(
            rng.choice(eligible, size=min(self.ranker_playlists, eligible.size), replace=False)
        )
        seeds: list[np.ndarray] = []
        titles: list[str | None] = []
        hide_rows: list[np.ndarray] = []
        hide_cols: list[np.ndarray] = []
        query_rows: list[int] = []
        for row in chosen:
            tracks = matrix.indices[matrix.indptr[row] : matrix.indptr[row + 1]]
            name = (
                names[row]
                if row < len(names) and isinstance(names[row], str) and names[row].strip()
                else None
            )
            feasible = [k for k in SEED_COUNTS[1:] if tracks.size - k >= max(10, k / 2)]
            if name and (not feasible or rng.random() < self.title_share):
                k = 0
            elif feasible:
                k = int(rng.choice(feasible))
            else:
                continue
            perm = rng.permutation(tracks)
            seeds.append(np.sort(perm[:k]).astype(np.int64))
            titles.append(name if (k == 0 or rng.random() < 0.8) else None)
            hide_rows.append(np.full(tracks.size - k, row))
            hide_cols.append(perm[k:])
            query_rows.append(int(row))
        if len(seeds) < min(max(self.min_ranker_playlists, 1), MIN_SELECT_PLAYLISTS):
            return None
        rows = np.concatenate(hide_rows)
        cols = np.concatenate(hide_cols)
        hidden = sp.csr_matrix(
            (np.ones(rows.size, dtype=np.float32), (rows, cols)), shape=matrix.shape
        )
        self.train_rows_ = np.asarray(query_rows, dtype=np.int64)
        return seeds, titles, hidden

    def _train_ranker(
        self,
        batch: Batch,
        hidden: sp.csr_matrix,
        rng: np.random.Generator,
        *,
        seeded: bool,
        min_groups: int,
    ) -> Any:
        """A booster for the queries with seeds (``seeded``) or for those without."""
        import lightgbm as lgb

        feats: list[np.ndarray] = []
        labels: list[np.ndarray] = []
        groups: list[int] = []
        n_seeds = FEATURES.index("n_seeds")
        for r, (cands, x) in enumerate(zip(batch.candidates, batch.features, strict=True)):
            if cands.size == 0 or (x[0, n_seeds] > 0) != seeded:
                continue
            row = batch.rows[r]
            held = hidden.indices[hidden.indptr[row] : hidden.indptr[row + 1]]
            y = np.isin(cands, held).astype(np.float32)
            if cands.size == 0 or not y.any():
                continue
            if self.negatives and cands.size - int(y.sum()) > self.negatives:
                # All hits, and a random sample of the misses: lambdarank's cost grows with
                # the square of a query's size, and the misses are mostly alike.
                neg = np.flatnonzero(y == 0)
                keep = np.sort(
                    np.concatenate(
                        [np.flatnonzero(y), rng.choice(neg, self.negatives, replace=False)]
                    )
                )
                x, y = x[keep], y[keep]
            feats.append(x)
            labels.append(y)
            groups.append(y.size)
        if len(groups) < max(min_groups, 1):
            return None
        ranker = lgb.LGBMRanker(
            objective=self.objective,
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=20,
            subsample=0.8,
            subsample_freq=1,
            colsample_bytree=0.9,
            random_state=self.random_state,
            # One thread: the ranker's data is bounded (ranker_playlists queries) whatever the
            # catalog's size, and OpenMP's spin-waiting makes multi-threaded boosting many times
            # slower on a busy 2-core machine (64 s against 10 s for the demo catalog).
            n_jobs=1,
            deterministic=True,
            force_row_wise=True,
            verbose=-1,
        )
        ranker.fit(np.vstack(feats), np.concatenate(labels), group=groups)
        return ranker.booster_

    # candidates and features ---------------------------------------------------------------

    def _fit_rankers(self, batch: Batch, hidden: sp.csr_matrix, rng: np.random.Generator) -> None:
        fit_phase("ranker")
        self.ranker_ = self._train_ranker(
            batch, hidden, rng, seeded=True, min_groups=self.min_ranker_playlists // 2
        )
        # Queries without seeds (a title only) differ in kind: their own, smaller ranker.
        self.title_ranker_ = self._train_ranker(
            batch, hidden, rng, seeded=False, min_groups=max(self.min_ranker_playlists // 4, 10)
        )

    def _alone(
        self,
        offset: int,
        members: np.ndarray,
        measured: np.ndarray,
        seeds: list[np.ndarray],
        titles: list[str | None],
        out: dict[str, dict[int, np.ndarray]],
    ) -> None:
        """Each generator's own top :data:`SELECT_N` for the measured queries among ``members``
        (query numbers), keyed by batch position (``offset`` + position in ``members``)."""
        picked = [(offset + j, int(i)) for j, i in enumerate(members.tolist()) if measured[i]]
        seeded = [(b, i) for b, i in picked if seeds[i].size]
        seedless = [(b, i) for b, i in picked if not seeds[i].size]
        gens: dict[str, Recommender] = {
            "content": self.content_alone_ or self.content_,
            "knn": self.knn_,
            "als": self.als_,
        }
        if self.model2_alone_ is not None:
            gens["model2"] = self.model2_alone_
        for name, gen in gens.items():
            if seeded:
                ids, _ = gen.recommend_batch([seeds[i] for _, i in seeded], SELECT_N)
                out.setdefault(name, {}).update(zip([b for b, _ in seeded], ids, strict=True))
        if seedless:
            ids, _ = self.title_.recommend_batch(
                [seeds[i] for _, i in seedless],
                SELECT_N,
                titles=[titles[i] for _, i in seedless],
            )
            out.setdefault("title", {}).update(zip([b for b, _ in seedless], ids, strict=True))

    def _choose(
        self,
        batch: Batch,
        measured: np.ndarray,
        seeds: list[np.ndarray],
        hidden: sp.csr_matrix,
        alone: dict[str, dict[int, np.ndarray]],
    ) -> None:
        """Measure the ranker, the blend and each generator alone on the measured queries; set
        ``mode_`` per kind of query to the best (the ranker unless beaten by SELECT_MARGIN)."""
        report: dict[str, Any] = {}
        for kind, choices in (("seeded", SEEDED_CHOICES), ("title", TITLE_CHOICES)):
            members = [
                i
                for i in np.flatnonzero(measured).tolist()
                if (seeds[i].size > 0) == (kind == "seeded")
            ]
            if not members:
                continue
            held = [
                hidden.indices[hidden.indptr[batch.rows[i]] : hidden.indptr[batch.rows[i] + 1]]
                for i in members
            ]
            ndcg: dict[str, float] = {}
            per_query: dict[str, np.ndarray] = {}
            for choice in choices:
                if choice in ("ranker", "blend"):
                    no_ranker = self.ranker_ is None and (
                        kind == "seeded" or self.title_ranker_ is None
                    )
                    if choice == "ranker" and no_ranker:
                        continue
                    self.mode_[kind] = choice
                    sub = Batch(
                        [batch.candidates[i] for i in members], [batch.features[i] for i in members]
                    )
                    values = self._score_batch(sub)
                    ids = np.full((len(members), SELECT_N), -1, dtype=np.int64)
                    for r, i in enumerate(members):
                        got, _ = merge_top_n(
                            sub.candidates[r],
                            values[r],
                            self.prior_,
                            self.order_,
                            SELECT_N,
                            np.unique(seeds[i]),
                        )
                        ids[r, : got.size] = got
                else:
                    rows = alone.get(choice, {})
                    if not all(i in rows for i in members):
                        continue
                    ids = np.vstack([rows[i] for i in members])
                per_query[choice] = query_ndcg(ids, held)
                ndcg[choice] = float(per_query[choice].mean())
            ranker_score = ndcg.get("ranker", -1.0)
            best = max(ndcg, key=lambda c: ndcg[c])
            if "ranker" in ndcg and ndcg[best] <= ranker_score + SELECT_MARGIN:
                best = "ranker"
            why = ""
            simpler = SIMPLER.get(best)
            if simpler in per_query:
                # The one-standard-error rule: the best of many settings searched on these
                # playlists measures higher than it will serve, so a simpler answer within one
                # standard error of it (of the paired difference, query by query) is kept.
                diff = per_query[best] - per_query[simpler]
                se = float(diff.std(ddof=1) / np.sqrt(diff.size)) if diff.size > 1 else 0.0
                if float(diff.mean()) <= se:
                    why = f" (within one standard error, {se:.4f}, of {best})"
                    best = simpler
            self.mode_[kind] = best
            report[kind] = {
                "queries": len(members),
                "ndcg": {k: round(v, 4) for k, v in ndcg.items()},
                "chosen": best,
                "why": why,
            }
        parts = []
        for kind, r in report.items():
            figures = ", ".join(f"{k} {v:.4f}" for k, v in r["ndcg"].items())
            parts.append(f"{kind} queries ({r['queries']}): {r['chosen']}{r['why']} [{figures}]")
        self.selection_ = {
            "how": "measured on held-out training playlists: " + "; ".join(parts),
            **report,
        }
        self._say(self.selection_["how"])

    def _score_batch(self, batch: Batch) -> list[np.ndarray]:
        """Final candidate scores, all above the popularity prior (>= 1)."""
        out: list[np.ndarray] = []
        for x in batch.features:
            if x.shape[0] == 0:
                out.append(np.empty(0, dtype=np.float32))
                continue
            ranker = self._ranker_for(x)
            if ranker is not None:
                raw = np.asarray(ranker.predict(x, num_threads=1), dtype=np.float64)
            else:
                cols = {name: x[:, COLUMN[name]] for name in BLEND}
                raw = sum(
                    (w * cols[name].astype(np.float64) for name, w in BLEND.items()),
                    np.zeros(x.shape[0]),
                )
            out.append((1.0 + raw - raw.min()).astype(np.float32))
        return out

    def _ranker_for(self, x: np.ndarray) -> Any:
        """The booster for a query's feature matrix (None: the blend)."""
        seedless = bool(x.shape[0]) and x[0, COLUMN["n_seeds"]] == 0
        mode = getattr(self, "mode_", None) or {}
        if mode.get("title" if seedless else "seeded", "ranker") == "blend":
            return None
        if seedless and self.title_ranker_ is not None:
            return self.title_ranker_
        return self.ranker_

    # the interface -------------------------------------------------------------------------

    def _ranked(
        self,
        seed_lists: Sequence[Any],
        titles: Sequence[str | None] | None,
    ) -> tuple[list[np.ndarray], Batch, list[np.ndarray]]:
        self._check_fitted()
        seeds = [as_seed_array(s, self.n_tracks) for s in seed_lists]
        if titles is None:
            titles = [None] * len(seeds)
        elif len(titles) != len(seeds):
            raise ValueError(
                f"titles must have one entry per seed list: {len(titles)} != {len(seeds)}"
            )
        batch = self._batch(seeds, titles)
        return seeds, batch, self._score_batch(batch)

    def _ranked_one(self, seeds: Any, title: str | None) -> tuple[np.ndarray, ...]:
        """One query: ``(seeds int64, candidates int64 (m,), features float32 (m, F), scores
        float32 (m,))``.

        Each thread keeps its last query's answer, keyed by the seeds and the title, so
        explaining the tracks just recommended does not run the pipeline again. Per thread, so
        that concurrent requests of a threaded server (one ``recommend`` then one
        ``explain_many`` per request) do not evict each other's answer.
        """
        self._check_fitted()
        seed_arr = as_seed_array(seeds, self.n_tracks)
        key = (seed_arr.tobytes(), title)
        kept = self._kept
        if kept is None:
            kept = self._kept = threading.local()
        last = getattr(kept, "last", None)
        if last is not None and last[0] == key:
            return last[1]  # type: ignore[no-any-return]
        seed_list, batch, values = self._ranked([seed_arr], [title])
        answer = (seed_list[0], batch.candidates[0], batch.features[0], values[0])
        kept.last = (key, answer)
        return answer

    def _generator_for(self, seeds: np.ndarray) -> Recommender | None:
        """The generator that answers this kind of query alone (``mode_``), or None."""
        mode = getattr(self, "mode_", None) or {}
        name = mode.get("seeded" if seeds.size else "title", "ranker")
        gens: dict[str, Recommender | None] = {
            "content": getattr(self, "content_alone_", None) or self.content_,
            "model2": getattr(self, "model2_alone_", None),
            "knn": self.knn_,
            "als": self.als_,
            "title": self.title_,
        }
        return gens.get(name)
