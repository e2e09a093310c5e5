"""The service: from a person's input to explained recommendations, as plain records.

CLI, HTTP API and web app are thin shells over :class:`Service`. It turns inputs (track,
artist or playlist references, files, demo playlist names, free-text searches) into seed
indices of the snapshot, grows the catalog with unknown tracks when it can, calls a model,
applies filters (seeds out, max tracks per artist, excluded artists, year and popularity
ranges) and explains each result.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from segue.core import artifacts, ids
from segue.core.errors import NotFittedError, SegueError
from segue.core.home import Home
from segue.core.records import AUDIO_FEATURES
from segue.models.registry import DEFAULT_MODEL, MODELS, load_model, model_class
from segue.service import variants
from segue.service.variants import MAX_VARIANTS
from segue.snapshot.arrays import Snapshot

if TYPE_CHECKING:
    from segue.catalog.fetch import GrowReport
    from segue.models.base import Recommender

#: Seeds per request, after duplicates are dropped.
MAX_SEEDS = 1000
MAX_RESULTS = 500
#: Distinct free-text names looked up per request (each may search the whole catalog).
MAX_NAME_LOOKUPS = 20
#: Longest text looked up as a name (a search query's length too): a longer one is refused
#: without a look-up, whose cost grows with the words in it.
MAX_NAME_CHARS = 300
#: Spotify playlist links read per request (each may take a hundred calls to Spotify).
MAX_PLAYLIST_LINKS = 5
#: Seconds one request may spend looking names up; names left then are reported unknown.
NAME_BUDGET_SECONDS = 5.0
#: Unknown tracks a server looks up on Spotify per minute when growing the catalog.
GROWTH_PER_MINUTE = 100


#: Why a seed with a NUL character is refused (no reference, name or title holds one).
NUL_SEED = "no track, artist or playlist reference or name holds one; remove it"


class RateLimit:
    """A token bucket: ``per_minute`` units a minute, at most that many at once.

    Written here because it is a dozen lines shared by threads of one process; a rate
    limiting library would add a dependency for no more than this.
    """

    def __init__(self, per_minute: float) -> None:
        self.per_minute = float(per_minute)
        self._tokens = float(per_minute)
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def take(self, wanted: int) -> int:
        """How many of ``wanted`` units may be spent now (they are spent)."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(
                self.per_minute, self._tokens + (now - self._stamp) * self.per_minute / 60.0
            )
            self._stamp = now
            granted = min(int(self._tokens), max(wanted, 0))
            self._tokens -= granted
            return granted


@dataclass
class Filters:
    """Constraints on the returned tracks. ``None`` means no constraint."""

    exclude_artists: list[str] = field(default_factory=list)
    year_min: int | None = None
    year_max: int | None = None
    popularity_min: float | None = None
    popularity_max: float | None = None
    max_per_artist: int | None = None
    #: Keep several versions of one song (same normalised title and main artist); off: one.
    allow_versions: bool = False

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
    """One track as every shell shows it: the API's JSON object of a track is this record's
    fields in this order (FastAPI and orjson serialise the dataclass as it is)."""

    uri: str
    id: str
    url: str
    name: str
    artists: list[str]
    album: str | None
    year: int | None
    popularity: float | None
    score: float | None = None
    explanation: str | None = None

    @classmethod
    def of(
        cls,
        track_id: str,
        *,
        name: str,
        artists: list[str],
        album: str | None,
        year: int | None,
        popularity: float | None,
        score: float | None = None,
        explanation: str | None = None,
    ) -> TrackRecord:
        """The record of catalog track ``track_id`` (its URI and link follow from the id)."""
        return cls(
            uri=ids.track_uri(track_id),
            id=track_id,
            url=f"https://open.spotify.com/track/{track_id}",
            name=name,
            artists=artists,
            album=album,
            year=year,
            popularity=popularity,
            score=score,
            explanation=explanation,
        )

    def to_dict(self) -> dict[str, Any]:
        """The track as the command line's JSON output gives it: every field but ``url``,
        which follows from the id."""
        out = asdict(self)
        del out["url"]
        return out


@dataclass
class SeedInput:
    """How one input was read: what it was taken as (``found``) and the seed tracks it gave,
    or why it gave none (``reason``) and near names (``suggestions``)."""

    input: str
    found: str | None = None
    tracks: int = 0
    reason: str | None = None
    suggestions: list[str] = field(default_factory=list)
    total: int | None = None  # tracks a playlist holds, known to the catalog or not

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def why(self) -> str:
        """Why the input gave no seed track, with the near names."""
        hint = (
            "; did you mean " + " or ".join(repr(s) for s in self.suggestions) + "?"
            if self.suggestions
            else ""
        )
        return f"{self.reason}{hint}"

    def message(self) -> str:
        """One line for a person."""
        if self.reason is None and self.total is not None:
            return f"{self.input!r}: using {self.found}: {self.total} tracks, {self.tracks} known"
        if self.reason is None:
            return f"{self.input!r}: using {self.found} ({self.tracks} track(s))"
        return f"{self.input!r}: {self.why()}"


@dataclass
class SeedPlan:
    """Inputs sorted, before any lookup: distinct texts in order, references, files (input
    and path), free-text names, and the distinct normalised names among them."""

    texts: list[str]
    refs: list[tuple[str, ids.SpotifyRef]]
    paths: list[tuple[str, Path]]
    names: list[str]
    distinct_names: list[str]


@dataclass
class Seeds:
    indices: np.ndarray
    title: str | None
    unknown: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    inputs: list[SeedInput] = field(default_factory=list)


@dataclass
class Recommendation:
    model: str
    tracks: list[TrackRecord]
    seeds: list[TrackRecord]
    title: str | None
    unknown: list[str]
    messages: list[str]
    inputs: list[SeedInput] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "title": self.title,
            "tracks": [t.to_dict() for t in self.tracks],
            "seeds": [t.to_dict() for t in self.seeds],
            "unknown": self.unknown,
            "messages": self.messages,
            "inputs": [i.to_dict() for i in self.inputs],
        }


def _genre_vocabulary(model: Recommender, snapshot: Snapshot) -> int:
    """Genre terms in a fitted model's features (a content model's TF-IDF block), else distinct
    catalog genres."""
    terms = model.genre_terms()
    if terms is not None:
        return terms
    return len({g for gs in snapshot.artists["genres"] for g in gs})


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
    """Recommendations over one home folder (catalog + built snapshot and models).

    ``home``: a :class:`segue.core.home.Home` (a path is taken as its root); every file the
    service reads or writes is in it."""

    def __init__(
        self,
        home: Home | str | os.PathLike[str],
        *,
        grow: bool = True,
        allow_files: bool = False,
        outbound: bool = True,
        growth_per_minute: float | None = None,
        max_names: int = MAX_NAME_LOOKUPS,
        name_budget: float | None = NAME_BUDGET_SECONDS,
        max_variants: int = MAX_VARIANTS,
    ) -> None:
        """``grow``: add unknown tracks to the catalog (looking them up on Spotify), at most
        ``growth_per_minute`` a minute when given. ``allow_files``: read a text input that
        names a file (:func:`segue.service.inputs.names_a_file`); only the command line, where a
        person names their own files, turns it on. ``outbound``: read Spotify playlist links
        from Spotify. ``max_names``: distinct free-text names per request; ``name_budget``:
        seconds a request may spend looking them up. ``max_variants``: fitted model variants
        kept (:mod:`segue.service.variants`)."""
        self.home = Home.of(home)
        self.grow = grow
        self.allow_files = allow_files
        self.outbound = outbound
        self.growth = RateLimit(growth_per_minute) if growth_per_minute else None
        self.max_names = max_names
        self.name_budget = name_budget
        self._snapshot: Snapshot | None = None
        self._models: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._generation: artifacts.Generation | None = None
        self.max_variants = max_variants
        self._variants: OrderedDict[str, Any] = OrderedDict()
        self._variant_lock = threading.Lock()
        self._providers: dict[str, Any] = {}
        self._provider_lock = threading.Lock()

    # artifacts ----------------------------------------------------------------------------
    def generation(self) -> artifacts.Generation:
        """The set of artifacts this service serves: the one in use when it loaded its
        snapshot (models are then loaded from that same set), else the one in use now."""
        if self._generation is not None:
            return self._generation
        return self.home.generation()

    def chosen_settings(self, name: str) -> str | None:
        """What model ``name`` chose at fit (its saved ``model.json``), as one line; None
        when it chose nothing or is not built."""
        import json

        from segue.models.content import settings_line

        try:
            generation = self.generation()
            meta = json.loads((generation.model_dir(name) / "model.json").read_text())
        except (OSError, ValueError, SegueError):
            return None
        chosen = meta.get("chosen") if isinstance(meta, dict) else None
        if not isinstance(chosen, dict):
            return None
        if "summary" in chosen:
            content = chosen.get("content")
            extra = f"; content: {settings_line(content)}" if isinstance(content, dict) else ""
            return f"chose {chosen['summary']}{extra}"
        try:
            return f"chose {settings_line(chosen)}"
        except (KeyError, TypeError, ValueError):
            return None

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

    def model(self, name: str, params: Mapping[str, Any] | None = None) -> Any:
        """Model ``name`` as built, or a variant of it: ``params`` changed, or a variant's
        name such as ``model1@n_genres=20`` (:func:`segue.service.variants.parse` says which
        are accepted; ``ValueError`` otherwise)."""
        variant = variants.parse(name, params)
        if variant.params:
            return self._variant(variant)
        return self._built(variant.model)

    def _built(self, name: str) -> Any:
        snap = self.snapshot
        with self._lock:
            if name not in self._models:
                generation = self.generation()
                if not generation.exists:
                    raise NotFittedError(
                        f"model {name!r} is not loaded and the set of models this server "
                        "started with was rebuilt since: restart the server to serve the new set"
                    )
                self._models[name] = load_model(
                    name, snap, root=generation.models_dir, provider_status=self._provider_status
                )
            return self._models[name]

    def genre_setting(self, model: str) -> variants.GenreSetting | None:
        """The ``n_genres`` of built model ``model`` and its genre vocabulary, or None when a
        variant of it cannot choose the number of genres."""
        if "n_genres" not in {p.name for p in variants.parameters(model)}:
            return None
        built = self._built(model)
        current = built.get_params().get("n_genres")
        vocabulary = _genre_vocabulary(built, self.snapshot)
        if vocabulary < 2:
            return None
        return variants.GenreSetting(
            current=int(current) if current is not None else None, vocabulary=vocabulary
        )

    def _variant(self, variant: variants.Variant) -> Any:
        """``variant`` fitted on the served snapshot, kept in a small LRU (``max_variants``);
        the built model itself when the variant changes nothing it uses."""
        built = self._built(variant.model)
        params = {**built.variant_params()}  # e.g. the settings it chose at fit, not a new search
        changed = variant.as_dict()
        if "n_genres" in changed and params.get("n_genres") is None:
            # the built model keeps every genre: asking for as many or more changes nothing
            setting = self.genre_setting(variant.model)
            if setting is not None and int(changed["n_genres"]) >= setting.vocabulary:
                del changed["n_genres"]
        if all(params.get(k) == v for k, v in changed.items()):
            return built
        key = variant.name
        with self._variant_lock:
            cached = self._variants.get(key)
            if cached is not None:
                self._variants.move_to_end(key)
                return cached
            fitted = model_class(variant.model)(**{**params, **changed}).fit(self.snapshot)
            self._variants[key] = fitted
            while len(self._variants) > self.max_variants:
                self._variants.popitem(last=False)
            return fitted

    def _provider_status(self, kind: str) -> tuple[bool, str]:
        """Whether a provider of ``kind`` can be had from this home and answers."""
        from segue.providers import for_models

        return for_models.available(kind, home=self.home)

    def _attach(self, model: Recommender) -> None:
        """Give ``model`` the provider it asks at query time, when it needs one and has none
        yet: one per kind for this service, built from this home's credentials on first use
        (a :class:`~segue.providers.credentials.CredentialsError` saying what is needed when
        there are none; asked again on the next request)."""
        kind = model.needs_provider
        if kind is None or model.attached:
            return
        with self._provider_lock:
            if model.attached:
                return
            provider = self._providers.get(kind)
            if provider is None:
                from segue.providers import for_models

                provider = self._providers[kind] = for_models.build(kind, home=self.home)
            model.attach(provider)

    def warm(self) -> None:
        """Build what the first request would otherwise wait for (the name index)."""
        from segue.service.names import NameIndex

        NameIndex.of(self.snapshot)

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
            kind = model_class(name).needs_provider
            if kind is not None:
                available, reason = self._provider_status(kind)
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
    def _columns(self) -> dict[str, Any]:
        """The track columns records are made from, as arrays (a row lookup in a DataFrame
        costs far more than indexing arrays, and records are made per request): numpy arrays,
        and the string columns together as one Arrow table under ``"strings"`` (Arrow-backed:
        ``to_numpy`` would make a Python string of every track, hundreds of MB per process at
        full MPD scale; one ``take`` of the table costs less than one per column)."""
        snap = self.snapshot
        cols = getattr(snap, "_record_columns", None)
        if cols is None:
            t = snap.tracks
            names = ("track_id", "name", "artist_name", "album_name", "release_year", "popularity")
            strings = [k for k in names if isinstance(t[k].dtype, pd.StringDtype)]
            cols = {k: t[k].to_numpy() for k in names if k not in strings}
            # __arrow_array__ hands over the column's own Arrow data, without a copy.
            if strings:
                cols["strings"] = pa.table(
                    {k: t[k].array.__arrow_array__() for k in strings}  # type: ignore[attr-defined]
                )
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
        cols = {k: v[idx].tolist() for k, v in c.items() if k != "strings"}
        if "strings" in c:
            cols.update(c["strings"].take(idx).to_pydict())
        n = idx.size
        score_list: list[float | None] = [None] * n if scores is None else list(scores)
        why_list: list[str | None] = [None] * n if explanations is None else list(explanations)
        out = []
        for j in range(n):
            track_id = cols["track_id"][j]
            year = _nan_to_none(cols["release_year"][j])
            pop = _nan_to_none(cols["popularity"][j])
            # a missing string comes back as None, pd.NA or NaN (which is truthy) by column type
            artist = _nan_to_none(cols["artist_name"][j])
            score = score_list[j]
            out.append(
                TrackRecord.of(
                    track_id,
                    name=_nan_to_none(cols["name"][j]) or "",
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
    def plan(self, inputs: Sequence[str], *, files: Sequence[Path] = ()) -> SeedPlan:
        """Sort inputs into references, files and names, and check the per-request caps
        (``ValueError`` naming the cap), without looking anything up: cheap enough to run
        before a request is queued (the API sends requests with names to their own lane)."""
        from segue.core.text import normalise_typed
        from segue.service.inputs import file_path, names_a_file

        texts = list(dict.fromkeys(t.strip() for t in inputs if t and t.strip()))
        if len(texts) + len(files) > MAX_SEEDS:
            raise ValueError(f"too many seeds: {len(texts) + len(files)}, at most {MAX_SEEDS}")
        refs: list[tuple[str, ids.SpotifyRef]] = []
        paths: list[tuple[str, Path]] = [(str(p.name), Path(p)) for p in files]
        names: list[str] = []
        for text in texts:
            if "\x00" in text:
                raise ValueError(f"{text!r} holds an invalid character (NUL): {NUL_SEED}")
            ref = ids.try_parse(text, default_kind=ids.Kind.TRACK)
            if ref is not None:
                refs.append((text, ref))
            elif names_a_file(text):
                if not self.allow_files:
                    raise ValueError(
                        f"{text!r} names a file: files cannot be seeds here; give track, "
                        "artist or playlist references or names"
                    )
                paths.append((text, file_path(text)))
            elif text.lower().startswith(("http://", "https://", "spotify:")):
                # Looks like a reference but is not one: say so rather than searching for it.
                ids.parse(text, default_kind=ids.Kind.TRACK)
            else:
                names.append(text)
        distinct = list(dict.fromkeys(normalise_typed(n) for n in names))
        if len(distinct) > self.max_names:
            raise ValueError(
                f"too many names to look up: {len(distinct)} distinct names, at most "
                f"{self.max_names} per request (links, URIs and ids are not limited this way)"
            )
        playlist_links = {r.id for _, r in refs if r.kind is ids.Kind.PLAYLIST}
        if len(playlist_links) > MAX_PLAYLIST_LINKS:
            raise ValueError(
                f"too many playlist links: {len(playlist_links)}, at most "
                f"{MAX_PLAYLIST_LINKS} per request"
            )
        return SeedPlan(texts, refs, paths, names, distinct)

    def resolve(
        self,
        inputs: list[str],
        *,
        title: str | None = None,
        files: Sequence[Path] = (),
    ) -> Seeds:
        """Turn each input into seed tracks.

        An input is a track/artist/playlist reference (link, URI, bare id = track), the path of
        an Exportify CSV / MPD JSON / list of links (only with ``allow_files``, decided by
        :func:`segue.service.inputs.names_a_file`), the name of a playlist in the catalog, or a track
        or artist name. ``files`` are playlist files a shell hands over itself (the web app's
        upload), read whatever ``allow_files`` says.

        Duplicates count once. More than :data:`MAX_SEEDS` seeds, more distinct names than
        ``max_names`` or more playlist links than :data:`MAX_PLAYLIST_LINKS` raise
        ``ValueError`` before any work; names are looked up together, within ``name_budget``
        seconds.
        """
        from segue.core.text import normalise_typed
        from segue.service.names import NameIndex, NameMatch, NoMatch

        plan = self.plan(inputs, files=files)
        texts, refs, paths, names = plan.texts, plan.refs, plan.paths, plan.names
        distinct = plan.distinct_names
        for _, path in paths:
            if not path.is_file():
                what = "not a regular file" if path.exists() else "no such file"
                raise ValueError(f"{str(path)!r}: {what}")

        snap = self.snapshot
        results: dict[str, SeedInput] = {}
        seeds: dict[str, list[int]] = {}
        messages: list[str] = []
        unknown: list[str] = []
        grow_ids: list[str] = []
        grow_facts: list[Any] = []

        # references: every track id in one lookup
        track_refs = [(t, r) for t, r in refs if r.kind is ids.Kind.TRACK]
        found = snap.lookup([r.id for _, r in track_refs]).tolist()
        missing_set = {r.id for (_, r), i in zip(track_refs, found, strict=True) if i < 0}
        known_refs = [(t, i) for (t, _), i in zip(track_refs, found, strict=True) if i >= 0]
        records = self.records([row for _, row in known_refs])
        for (text, row), record in zip(known_refs, records, strict=True):
            seeds[text] = [row]
            who = f" by {', '.join(record.artists)}" if record.artists else ""
            results[text] = SeedInput(text, f"the track {record.name!r}{who}", 1)
        for text, ref in track_refs:
            if ref.id in missing_set:
                results[text] = SeedInput(text, reason="track not in the catalog")
                unknown.append(text)
                grow_ids.append(ref.id)
        for text, ref in refs:
            if ref.kind is ids.Kind.TRACK:
                continue
            result, rows, name, facts = self._resolve_ref(text, ref)
            results[text] = result
            seeds[text] = rows
            title = title or name
            if result.reason is not None:
                unknown.append(text)
            if facts is not None:
                _, new = snap.known_indices([f.track_id for f in facts])
                grow_ids.extend(new)
        for text, path in paths:
            result, rows, name, new, facts = self._resolve_file(text, path)
            results[text] = result
            seeds[text] = rows
            if result.reason is not None:
                unknown.append(text)
            title = title or name
            grow_ids.extend(new)
            grow_facts.extend(facts)

        # names: all at once
        if names:
            deadline = time.monotonic() + self.name_budget if self.name_budget is not None else None
            short = [d for d in distinct if len(d) <= MAX_NAME_CHARS]
            found = NameIndex.of(snap).lookup(short, deadline=deadline) if short else {}
            for text in names:
                match = found.get(normalise_typed(text)) or NoMatch(
                    "nothing to look up: a name needs letters or digits"
                    if len(text.strip()) <= MAX_NAME_CHARS
                    else f"too long for a name (at most {MAX_NAME_CHARS} characters)"
                )
                if isinstance(match, NameMatch):
                    seeds[text] = match.indices.tolist()
                    results[text] = SeedInput(text, match.label, int(match.indices.size))
                    if match.kind == "playlist":
                        title = title or text
                else:
                    results[text] = SeedInput(
                        text, reason=match.reason, suggestions=match.suggestions
                    )
                    unknown.append(text)

        ordered = [results[t] for t in (*texts, *(p[0] for p in paths[: len(files)]))]
        ordered = [results[t] for t in dict.fromkeys(r.input for r in ordered)]
        # a track link found says nothing new (its record is in ``inputs``); every other
        # input says what it was taken as, or why it gave nothing
        plain = {t for t, r in refs if r.kind is ids.Kind.TRACK and t in seeds}
        messages.extend(r.message() for r in ordered if r.input not in plain)
        messages.extend(self._grow(list(dict.fromkeys(grow_ids)), grow_facts or None))
        uniq = list(dict.fromkeys(i for t in (*texts, *results) for i in seeds.get(t, [])))
        return Seeds(np.asarray(uniq, dtype=np.int64), title, unknown, messages, ordered)

    def _resolve_ref(
        self, text: str, ref: ids.SpotifyRef
    ) -> tuple[SeedInput, list[int], str | None, list[Any] | None]:
        """An artist, playlist or album reference: what it gave, its seed rows, the playlist's
        name, and the facts of a playlist's tracks (for the catalog's growth)."""
        snap = self.snapshot
        if ref.kind is ids.Kind.ARTIST:
            match = snap.artists.index[snap.artists["artist_id"] == ref.id]
            if len(match) == 0:
                return SeedInput(text, reason="artist not in the catalog"), [], None, None
            idx = snap.artist_track_indices(int(match[0]))
            name = snap.artists.loc[match[0], "name"]
            return SeedInput(text, f"the artist {name}", int(idx.size)), idx.tolist(), None, None
        if ref.kind is ids.Kind.PLAYLIST:
            if not self.outbound:
                return (
                    SeedInput(
                        text,
                        reason="a Spotify playlist link: this server does not read playlists "
                        "from Spotify (its operator can turn it on with "
                        "`segue serve --allow-growth`)",
                    ),
                    [],
                    None,
                    None,
                )
            from segue.catalog.fetch import fetch_playlist_tracks

            try:
                name, facts = fetch_playlist_tracks(ref.uri)
            except (SegueError, ValueError) as exc:
                reason = f"a Spotify playlist link that cannot be read: {exc}"
                return SeedInput(text, reason=reason), [], None, None
            got, _ = snap.known_indices([f.track_id for f in facts])
            label = f"the Spotify playlist {name or ref.uri!r}"
            found = SeedInput(text, label, int(got.size), total=len(facts))
            return found, got.tolist(), name, facts
        return (
            SeedInput(text, reason="albums are not accepted as seeds; give its tracks"),
            [],
            None,
            None,
        )

    def _resolve_file(
        self, text: str, path: Path
    ) -> tuple[SeedInput, list[int], str | None, list[str], list[Any]]:
        """A playlist file: what it gave, its seed rows, its name, the ids the catalog lacks
        and the facts the file gives about them."""
        from segue.service.inputs import read_playlist_file

        playlist = read_playlist_file(path)
        got, unknown = self.snapshot.known_indices(playlist.track_ids)
        label = f"the playlist file {path.name}"
        facts = list(getattr(playlist, "tracks", None) or [])
        result = SeedInput(text, label, int(got.size), total=len(playlist.track_ids))
        if got.size == 0:
            result.reason = (
                f"none of the {len(playlist.track_ids)} tracks of {path.name} is in the catalog"
            )
        return result, got.tolist(), playlist.name, unknown, facts

    def _grow_catalog(self, unknown: list[str], facts: Any = None) -> GrowReport | str:
        """Add ``unknown`` track ids to the catalog (with ``facts`` the input gave about them):
        the :class:`segue.catalog.fetch.GrowReport`, or a string saying why nothing could be done."""
        from segue.catalog import Catalog
        from segue.catalog.fetch import grow_catalog

        try:
            with Catalog.open(self.home.catalog, wait=5) as catalog:
                if facts:
                    wanted = set(unknown)
                    catalog.upsert_tracks([f for f in facts if f.track_id in wanted])
                return grow_catalog(catalog, unknown, home=self.home)
        except SegueError as exc:
            return str(exc)

    def _grow_limited(self, unknown: list[str]) -> tuple[list[str], str | None]:
        """The part of ``unknown`` this server may look up now, and what is said of the rest."""
        if self.growth is None:
            return unknown, None
        granted = self.growth.take(len(unknown))
        if granted == len(unknown):
            return unknown, None
        rest = len(unknown) - granted
        return unknown[:granted], (
            f"{rest} track(s) not looked up: this server looks up at most "
            f"{self.growth.per_minute:g} unknown tracks a minute"
        )

    def _grow(self, unknown: list[str], facts: Any = None) -> list[str]:
        """Add unknown tracks to the catalog so later snapshots can recommend them."""
        if not unknown:
            return []
        if not self.grow:
            return [f"{len(unknown)} track(s) not in the catalog"]
        unknown, limited = self._grow_limited(unknown)
        out = [limited] if limited else []
        if not unknown:
            return out
        report = self._grow_catalog(unknown, facts)
        if isinstance(report, str):
            return [f"{len(unknown)} track(s) not in the catalog ({report})", *out]
        return ([report.message] if getattr(report, "message", None) else []) + out

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
        files: Sequence[Path] = (),
        params: Mapping[str, Any] | None = None,
    ) -> Recommendation:
        """Tracks that continue ``inputs`` (see :meth:`resolve`; ``files``: playlist files the
        shell hands over itself), best first, filtered and explained, by ``model`` or a variant
        of it (``params``, or a variant's name: :mod:`segue.service.variants`)."""
        if not 1 <= n <= MAX_RESULTS:
            raise ValueError(f"n must be between 1 and {MAX_RESULTS}, got {n}")
        filters = filters or Filters()
        filters.validate()
        variant = variants.parse(model, params)
        seeds = self.resolve(inputs, title=title, files=files)
        if seeds.indices.size == 0 and not seeds.title:
            why = [i for i in seeds.inputs if i.reason is not None]
            shown = "; ".join(f"{i.input}: {i.why()}" for i in why[:5])
            raise ValueError(
                "no seed track found in the catalog"
                + (f" (unknown: {shown})" if why else "")
                + "; give tracks, an artist or a playlist the catalog knows, or a playlist title"
            )
        recommender = self._variant(variant) if variant.params else self._built(variant.model)
        self._attach(recommender)
        snap = self.snapshot
        mask = self._filter_mask(filters)
        exclude = None if mask is None else np.flatnonzero(~mask)
        want = n if not filters.max_per_artist else n * 6 + 50
        if not filters.allow_versions:
            want = max(want, n * 2 + 20)  # room for the versions dropped below
        want = min(want, snap.n_tracks)
        idx, scores = recommender.recommend(seeds.indices, want, title=seeds.title, exclude=exclude)
        # Tracks a model found outside the snapshot (Spotify's own recommendations), read at once
        # on this thread: the model keeps each thread's last call apart.
        outside = recommender.last_unknown_
        if not filters.allow_versions:
            from segue.snapshot.versions import drop_versions

            idx, scores = drop_versions(idx, scores, snap.song_keys(), seeds.indices)
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
        messages.extend(self._grow_recommended(variant.model, outside))
        return Recommendation(
            model=variant.name,
            tracks=records,
            seeds=self.records(seeds.indices[:50]),
            title=seeds.title,
            unknown=seeds.unknown,
            messages=messages,
            inputs=seeds.inputs,
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
        unknown, limited = self._grow_limited(unknown)
        if not unknown:
            return [f"{head}: they are not in the catalog ({limited})"]
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


def service_for_api(home: Home | str | os.PathLike[str], *, allow_growth: bool = False) -> Service:
    """The service an API process runs: it never reads a file named in a request and, unless
    the operator allows growth (``segue serve --allow-growth``), never calls Spotify for a
    seed nor writes to the catalog; with growth, at most
    :data:`segue.service.engine.GROWTH_PER_MINUTE` unknown tracks are looked up a minute."""
    return Service(
        home,
        grow=allow_growth,
        outbound=allow_growth,
        allow_files=False,
        growth_per_minute=GROWTH_PER_MINUTE if allow_growth else None,
    )
