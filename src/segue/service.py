"""The service: from a person's input to explained recommendations, as plain records.

CLI, HTTP API and web app are thin shells over :class:`Service`. It turns inputs (track,
artist or playlist references, files, demo playlist names, free-text searches) into seed
indices of the snapshot, grows the catalog with unknown tracks when it can, calls a model,
applies filters (seeds out, max tracks per artist, excluded artists, year and popularity
ranges) and explains each result.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from segue import artifacts, config, ids
from segue.errors import NotFittedError, SegueError
from segue.models.registry import DEFAULT_MODEL, MODELS, load_model
from segue.snapshot import AUDIO_FEATURES, Snapshot

if TYPE_CHECKING:
    from segue.fetch import GrowReport

MAX_SEEDS = 1000
MAX_RESULTS = 500


@dataclass
class Filters:
    """Constraints on the returned tracks. ``None`` means no constraint."""

    exclude_artists: list[str] = field(default_factory=list)
    year_min: int | None = None
    year_max: int | None = None
    popularity_min: float | None = None
    popularity_max: float | None = None
    max_per_artist: int | None = None

    def validate(self) -> None:
        if (
            self.year_min is not None
            and self.year_max is not None
            and self.year_min > self.year_max
        ):
            raise ValueError(
                f"year range is empty: year_min {self.year_min} > year_max {self.year_max}"
            )
        if (
            self.popularity_min is not None
            and self.popularity_max is not None
            and self.popularity_min > self.popularity_max
        ):
            raise ValueError(
                f"popularity range is empty: popularity_min {self.popularity_min} > popularity_max {self.popularity_max}"
            )
        if self.max_per_artist is not None and self.max_per_artist < 1:
            raise ValueError(f"max_per_artist must be at least 1, got {self.max_per_artist}")


@dataclass
class TrackRecord:
    uri: str
    id: str
    name: str
    artists: list[str]
    album: str | None
    year: int | None
    popularity: float | None
    score: float | None = None
    explanation: str | None = None

    @property
    def url(self) -> str:
        return f"https://open.spotify.com/track/{self.id}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Seeds:
    indices: np.ndarray
    title: str | None
    unknown: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)


@dataclass
class Recommendation:
    model: str
    tracks: list[TrackRecord]
    seeds: list[TrackRecord]
    title: str | None
    unknown: list[str]
    messages: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "title": self.title,
            "tracks": [t.to_dict() for t in self.tracks],
            "seeds": [t.to_dict() for t in self.seeds],
            "unknown": self.unknown,
            "messages": self.messages,
        }


def _nan_to_none(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float):  # also numpy's float64; the common case, without pandas
        return None if value != value else value
    if isinstance(value, str | int):
        return value
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        return value
    return value


class Service:
    """Recommendations over one home folder (catalog + built snapshot and models)."""

    def __init__(
        self, home: Path | None = None, *, grow: bool = True, allow_files: bool = True
    ) -> None:
        """``allow_files=False`` refuses inputs naming local files (for servers: a client must
        not make the server read its own files)."""
        self.home = home
        self.grow = grow
        self.allow_files = allow_files
        self._snapshot: Snapshot | None = None
        self._models: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._generation: artifacts.Generation | None = None

    # artifacts ----------------------------------------------------------------------------
    def generation(self) -> artifacts.Generation:
        """The set of artifacts this service serves: the one in use when it loaded its
        snapshot (models are then loaded from that same set), else the one in use now."""
        if self._generation is not None:
            return self._generation
        root = self.home if self.home is not None else config.home()
        return artifacts.current(root)

    def _dir(self, sub: str) -> Path:
        return self.generation().root / sub

    @property
    def loaded(self) -> bool:
        """True once the snapshot is in memory."""
        return self._snapshot is not None

    @property
    def snapshot(self) -> Snapshot:
        snap = self._snapshot
        if snap is not None:  # loaded: no lock needed to read it
            return snap
        with self._lock:
            if self._snapshot is None:
                generation = self.generation()
                self._snapshot = Snapshot.load(generation.snapshot_dir)
                self._generation = generation
            return self._snapshot

    def model(self, name: str) -> Any:
        if name not in MODELS:
            raise ValueError(f"unknown model {name!r}; expected one of: {', '.join(MODELS)}")
        snap = self.snapshot
        with self._lock:
            if name not in self._models:
                generation = self.generation()
                if not generation.exists:
                    raise NotFittedError(
                        f"model {name!r} is not loaded and the set of models this server "
                        "started with was rebuilt since: restart the server to serve the new set"
                    )
                self._models[name] = load_model(name, snap, root=generation.models_dir)
            return self._models[name]

    def load_problem(self, name: str) -> str | None:
        """Why model ``name`` does not load here (one line), or ``None`` when it loads."""
        try:
            self.model(name)
        except (SegueError, ValueError, OSError) as exc:
            return str(exc)
        return None

    def models(self, *, deep: bool = False) -> list[dict[str, Any]]:
        """Every model with whether it is built here and usable, and why not: manifests, files
        and their sizes are checked (``deep``: checksums too), and that each model was fitted
        on the snapshot beside it."""
        try:
            generation: artifacts.Generation | None = self.generation()
            broken = ""
        except NotFittedError as exc:  # the pointer to the set in use is damaged
            generation, broken = None, str(exc)
        if generation is not None and not generation.exists:  # replaced since it was loaded
            generation, broken = (
                None,
                (
                    "the set of models this server loaded was rebuilt since: restart the server "
                    "to serve the new set"
                ),
            )
        out = []
        for name in MODELS:
            if name in self._models:  # loaded: served from memory whatever is on disk now
                status = artifacts.Status(True, True)
            elif generation is not None:
                status = artifacts.model_status(generation, name, deep=deep)
            else:
                status = artifacts.Status(True, False, broken)
            built = status.built
            available, reason = status.ok, status.reason
            if name == "spotify":
                try:
                    from segue.models.spotify import SpotifyRecommender

                    available, reason = SpotifyRecommender.available()
                except ImportError:
                    available, reason = False, "the Spotify model is not installed"
            elif not built and not reason:
                available, reason = False, f"not built yet: run `segue fit --model {name}`"
            out.append(
                {
                    "name": name,
                    "default": name == DEFAULT_MODEL,
                    "built": built,
                    "available": available,
                    "reason": reason,
                }
            )
        return out

    # records ------------------------------------------------------------------------------
    def _columns(self) -> dict[str, np.ndarray]:
        """The track columns records are made from, as numpy arrays (a row lookup in a
        DataFrame costs far more than indexing arrays, and records are made per request)."""
        snap = self.snapshot
        cols = getattr(snap, "_record_columns", None)
        if cols is None:
            t = snap.tracks
            cols = {
                k: t[k].to_numpy()
                for k in (
                    "track_id",
                    "name",
                    "artist_name",
                    "album_name",
                    "release_year",
                    "popularity",
                )
            }
            snap._record_columns = cols  # type: ignore[attr-defined]
        return cols

    def records(
        self,
        indices: Sequence[int] | np.ndarray,
        scores: Sequence[float] | None = None,
        explanations: Sequence[str | None] | None = None,
    ) -> list[TrackRecord]:
        """:meth:`record` of many tracks, each column read once."""
        c = self._columns()
        idx = np.asarray(indices, dtype=np.int64)
        cols = {k: v[idx].tolist() for k, v in c.items()}
        n = idx.size
        score_list: list[float | None] = [None] * n if scores is None else list(scores)
        why_list: list[str | None] = [None] * n if explanations is None else list(explanations)
        out = []
        for j in range(n):
            track_id = cols["track_id"][j]
            year = _nan_to_none(cols["release_year"][j])
            pop = _nan_to_none(cols["popularity"][j])
            artist = cols["artist_name"][j]
            score = score_list[j]
            out.append(
                TrackRecord(
                    uri=ids.track_uri(track_id),
                    id=track_id,
                    name=cols["name"][j] or "",
                    artists=[artist] if artist else [],
                    album=_nan_to_none(cols["album_name"][j]),
                    year=int(year) if year is not None else None,
                    popularity=float(pop) if pop is not None else None,
                    score=None if score is None else float(score),
                    explanation=why_list[j],
                )
            )
        return out

    def record(
        self, index: int, score: float | None = None, explanation: str | None = None
    ) -> TrackRecord:
        return self.records([int(index)], None if score is None else [score], [explanation])[0]

    def get_track(self, ref: str) -> TrackRecord:
        track_id = ids.track_id(ref)
        return self.record(self.snapshot.track_index(track_id))

    def search_tracks(self, query: str, limit: int = 10) -> list[TrackRecord]:
        """Tracks whose name or artist contains every word of ``query`` (case-insensitive),
        most-played first."""
        words = [w for w in query.casefold().split() if w]
        if not words:
            raise ValueError("search query is empty: give a track or artist name")
        tracks = self.snapshot.tracks
        text = self._search_text()
        mask = np.ones(len(tracks), dtype=bool)
        for w in words:
            mask &= text.str.contains(w, regex=False).to_numpy()
        hits = np.flatnonzero(mask)
        if hits.size == 0:
            return []
        counts = tracks["playlist_count"].to_numpy()[hits]
        order = hits[np.lexsort((hits, -counts))][:limit]
        return self.records(order)

    def _search_text(self) -> pd.Series:
        snap = self.snapshot
        cached = getattr(snap, "_search_text", None)
        if cached is None:
            cached = (
                snap.tracks["name"].fillna("") + " \u2014 " + snap.tracks["artist_name"].fillna("")
            ).str.casefold()
            snap._search_text = cached  # type: ignore[attr-defined]
        return cached

    # seeds --------------------------------------------------------------------------------
    def resolve(self, inputs: list[str], *, title: str | None = None) -> Seeds:
        """Turn each input into seed tracks.

        An input is a track/artist/playlist reference (link, URI, bare id = track), a path to
        an Exportify CSV / MPD JSON / list of links, the name of a playlist in the catalog, or
        free text searched among track and artist names.
        """
        if len(inputs) > MAX_SEEDS:
            raise ValueError(f"too many seeds: {len(inputs)}, at most {MAX_SEEDS}")
        snap = self.snapshot
        seeds: list[int] = []
        unknown: list[str] = []
        messages: list[str] = []
        for raw in inputs:
            text = raw.strip()
            if not text:
                continue
            ref = ids.try_parse(text, default_kind=ids.Kind.TRACK)
            if ref is not None:
                got, unk, msg, name = self._resolve_ref(ref)
                seeds.extend(got)
                unknown.extend(unk)
                messages.extend(msg)
                title = title or name
                continue
            path = Path(text).expanduser()
            if len(text) < 4096 and path.suffix.lower() in {".csv", ".json", ".txt", ".m3u"}:
                if not self.allow_files:
                    raise ValueError(
                        f"{text!r} names a file; give track, artist or playlist references or names"
                    )
                if not path.is_file():
                    raise ValueError(f"{text!r}: no such file")
                got, unk, msg, name = self._resolve_file(path)
                seeds.extend(got)
                unknown.extend(unk)
                messages.extend(msg)
                title = title or name
                continue
            if text.startswith(("http://", "https://", "spotify:")):
                # Looks like a reference but is not one: say so rather than searching for it.
                ids.parse(text, default_kind=ids.Kind.TRACK)
            got_pl = self._playlist_by_name(text)
            if got_pl is not None:
                seeds.extend(got_pl.tolist())
                title = title or text
                messages.append(f"seeded with the catalog playlist {text!r} ({len(got_pl)} tracks)")
                continue
            artist_hits = self._artist_by_name(text)
            if artist_hits.size:
                seeds.extend(artist_hits.tolist())
                messages.append(f"seeded with {len(artist_hits)} track(s) by {text!r}")
                continue
            found = self.search_tracks(text, limit=1)
            if found:
                seeds.append(snap.track_index(found[0].id))
                messages.append(f"{text!r}: using {found[0].name} by {', '.join(found[0].artists)}")
                continue
            unknown.append(text)
            messages.append(f"{text!r}: no track, artist or playlist of that name in the catalog")
        uniq = list(dict.fromkeys(seeds))
        return Seeds(np.asarray(uniq, dtype=np.int64), title, unknown, messages)

    def _resolve_ref(
        self, ref: ids.SpotifyRef
    ) -> tuple[list[int], list[str], list[str], str | None]:
        snap = self.snapshot
        if ref.kind is ids.Kind.TRACK:
            got, unknown = snap.known_indices([ref.id])
            msgs = self._grow(unknown)
            return got.tolist(), unknown, msgs, None
        if ref.kind is ids.Kind.ARTIST:
            match = snap.artists.index[snap.artists["artist_id"] == ref.id]
            if len(match) == 0:
                return [], [ref.uri], [f"artist {ref.uri} is not in the catalog"], None
            idx = snap.artist_track_indices(int(match[0]))
            return (
                idx.tolist(),
                [],
                [f"seeded with {len(idx)} track(s) by {snap.artists.loc[match[0], 'name']}"],
                None,
            )
        if ref.kind is ids.Kind.PLAYLIST:
            try:
                from segue.fetch import fetch_playlist_tracks

                name, facts = fetch_playlist_tracks(ref.uri)
            except ImportError:
                return (
                    [],
                    [ref.uri],
                    ["reading Spotify playlists is not available in this installation"],
                    None,
                )
            except SegueError as exc:
                return [], [ref.uri], [f"{ref.uri}: {exc}"], None
            track_ids = [f.track_id for f in facts]
            got, unknown = snap.known_indices(track_ids)
            msgs = [f"playlist {name or ref.uri}: {len(track_ids)} tracks, {len(got)} known"]
            msgs.extend(self._grow(unknown))
            return got.tolist(), unknown, msgs, name
        return (
            [],
            [ref.uri],
            [f"{ref.uri}: albums are not accepted as seeds; give its tracks"],
            None,
        )

    def _resolve_file(self, path: Path) -> tuple[list[int], list[str], list[str], str | None]:
        from segue.inputs import read_playlist_file

        playlist = read_playlist_file(path)
        got, unknown = self.snapshot.known_indices(playlist.track_ids)
        msgs = [f"{path.name}: {len(playlist.track_ids)} tracks, {len(got)} known"]
        msgs.extend(self._grow(unknown, getattr(playlist, "tracks", None)))
        return got.tolist(), unknown, msgs, playlist.name

    def _grow_catalog(self, unknown: list[str], facts: Any = None) -> GrowReport | str:
        """Add ``unknown`` track ids to the catalog (with ``facts`` the input gave about them):
        the :class:`segue.fetch.GrowReport`, or a string saying why nothing could be done."""
        try:
            from segue.catalog import Catalog
            from segue.fetch import grow_catalog
        except ImportError:
            return "growing it is not installed"
        root = self.home if self.home is not None else config.home()
        try:
            with Catalog.open(root / "catalog.duckdb", wait=5) as catalog:
                if facts:
                    known = {f.track_id for f in facts}
                    catalog.upsert_tracks(
                        [f for f in facts if f.track_id in set(unknown) and f.track_id in known]
                    )
                return grow_catalog(catalog, unknown)
        except SegueError as exc:
            return str(exc)

    def _grow(self, unknown: list[str], facts: Any = None) -> list[str]:
        """Add unknown tracks to the catalog so later snapshots can recommend them."""
        if not unknown or not self.grow:
            return [f"{len(unknown)} track(s) not in the catalog"] if unknown else []
        report = self._grow_catalog(unknown, facts)
        if isinstance(report, str):
            return [f"{len(unknown)} track(s) not in the catalog ({report})"]
        return [report.message] if getattr(report, "message", None) else []

    def _playlist_by_name(self, text: str) -> np.ndarray | None:
        snap = self.snapshot
        names = snap.playlists["name"].fillna("").str.casefold()
        match = np.flatnonzero((names == text.casefold()).to_numpy())
        if match.size == 0:
            return None
        row = snap.interactions[int(match[0])]
        return np.asarray(row.indices, dtype=np.int64)

    def _artist_by_name(self, text: str) -> np.ndarray:
        snap = self.snapshot
        names = snap.artists["name"].fillna("").str.casefold()
        keys = snap.artists.index[(names == text.casefold()).to_numpy()]
        if len(keys) == 0:
            return np.empty(0, dtype=np.int64)
        return np.flatnonzero(np.isin(snap.tracks["artist_key"].to_numpy(), np.asarray(keys)))

    # recommend ----------------------------------------------------------------------------
    def recommend(
        self,
        inputs: list[str],
        *,
        n: int = 10,
        model: str = DEFAULT_MODEL,
        title: str | None = None,
        filters: Filters | None = None,
        explain: bool = True,
    ) -> Recommendation:
        if not 1 <= n <= MAX_RESULTS:
            raise ValueError(f"n must be between 1 and {MAX_RESULTS}, got {n}")
        filters = filters or Filters()
        filters.validate()
        seeds = self.resolve(inputs, title=title)
        if seeds.indices.size == 0 and not seeds.title:
            raise ValueError(
                "no seed track found in the catalog"
                + (f" (unknown: {', '.join(seeds.unknown[:5])})" if seeds.unknown else "")
                + "; give tracks, an artist or a playlist the catalog knows, or a playlist title"
            )
        try:
            recommender = self.model(model)
        except NotFittedError:
            raise
        snap = self.snapshot
        mask = self._filter_mask(filters)
        exclude = None if mask is None else np.flatnonzero(~mask)
        want = n if not filters.max_per_artist else n * 6 + 50
        want = min(want, snap.n_tracks)
        idx, scores = recommender.recommend(seeds.indices, want, title=seeds.title, exclude=exclude)
        # Tracks a model found outside the snapshot (Spotify's own recommendations), read at once
        # on this thread: the model keeps each thread's last call apart.
        outside = list(getattr(recommender, "last_unknown_", None) or [])
        if filters.max_per_artist:
            idx, scores = self._cap_per_artist(idx, scores, filters.max_per_artist)
        idx, scores = idx[:n], scores[:n]
        whys: list[str | None] = (
            list(recommender.explain_many(seeds.indices, idx, title=seeds.title))
            if explain
            else [None] * len(idx)
        )
        records = self.records(idx, scores.tolist(), whys)
        messages = list(seeds.messages)
        if len(records) < n:
            messages.append(f"only {len(records)} track(s) pass the filters")
        messages.extend(self._grow_recommended(model, outside))
        return Recommendation(
            model=model,
            tracks=records,
            seeds=self.records(seeds.indices[:50]),
            title=seeds.title,
            unknown=seeds.unknown,
            messages=messages,
        )

    def _grow_recommended(self, model: str, unknown: list[str]) -> list[str]:
        """Add tracks ``model`` recommended from outside the snapshot to the catalog (a later
        ``segue fit`` can then recommend them) and say what became of them. Never raises for
        network trouble, missing credentials or a busy catalog: the message says so."""
        if not unknown:
            return []
        who = "Spotify" if model == "spotify" else f"model {model!r}"
        head = f"{who} also recommended {len(unknown)} track(s) this catalog does not have"
        if not self.grow:
            return [f"{head}: they are not in the catalog (growing the catalog is off)"]
        report = self._grow_catalog(unknown)
        if isinstance(report, str):
            return [f"{head}: they are not in the catalog ({report})"]
        later = "after the next `segue fit`"
        if not report.unknown:
            return [f"{head}: added to the catalog; they can be recommended {later}"]
        if report.added:
            return [
                f"{head}: {len(report.added)} added to the catalog (they can be recommended "
                f"{later}), {len(report.unknown)} not ({report.message})"
            ]
        return [f"{head}: they are not in the catalog ({report.message})"]

    def _filter_mask(self, f: Filters) -> np.ndarray | None:
        tracks = self.snapshot.tracks
        mask = np.ones(len(tracks), dtype=bool)
        touched = False
        if f.exclude_artists:
            names = {a.casefold() for a in f.exclude_artists}
            refs = {r.id for a in f.exclude_artists if (r := ids.try_parse(a, ids.Kind.ARTIST))}
            art = self.snapshot.artists
            keys = art.index[
                (
                    art["name"].fillna("").str.casefold().isin(names) | art["artist_id"].isin(refs)
                ).to_numpy()
            ]
            mask &= ~np.isin(tracks["artist_key"].to_numpy(), np.asarray(keys))
            touched = True
        year = tracks["release_year"].to_numpy()
        if f.year_min is not None:
            mask &= year >= f.year_min
            touched = True
        if f.year_max is not None:
            mask &= year <= f.year_max
            touched = True
        if f.popularity_min is not None or f.popularity_max is not None:
            pop = tracks["popularity"].to_numpy()
            if np.isnan(pop).all():
                # No Spotify popularity in this catalog: use the catalog's own, as a percentile.
                counts = tracks["playlist_count"].to_numpy()
                pop = 100.0 * (
                    np.argsort(np.argsort(counts, kind="stable"), kind="stable")
                    / max(len(counts) - 1, 1)
                )
            if f.popularity_min is not None:
                mask &= pop >= f.popularity_min
            if f.popularity_max is not None:
                mask &= pop <= f.popularity_max
            touched = True
        return mask if touched else None

    def _cap_per_artist(
        self, idx: np.ndarray, scores: np.ndarray, cap: int
    ) -> tuple[np.ndarray, np.ndarray]:
        artists = self.snapshot.track_artist_keys()[idx]
        seen: dict[int, int] = {}
        keep = []
        for pos, a in enumerate(artists.tolist()):
            seen[a] = seen.get(a, 0) + 1
            if seen[a] <= cap:
                keep.append(pos)
        k = np.asarray(keep, dtype=np.int64)
        return idx[k], scores[k]

    def feature_profile(self, indices: np.ndarray) -> dict[str, float]:
        """Mean audio features and year of some tracks (for the app's comparison chart)."""
        tracks = self.snapshot.tracks.iloc[np.asarray(indices, dtype=np.int64)]
        cols = [c for c in (*AUDIO_FEATURES, "release_year", "popularity") if c in tracks]
        means = tracks[cols].mean(numeric_only=True)
        return {str(k): float(v) for k, v in means.items() if not pd.isna(v)}
