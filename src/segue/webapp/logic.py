"""What the web app does with its widgets' values, as plain functions over :class:`Service`.

The Streamlit script (``app.py``) only lays out widgets and calls these; everything here is
testable without Streamlit: turning the form into a service call, results into a table, a
chart's data and export files, and the catalog's log into tables.
"""

from __future__ import annotations

import re
import shlex
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from segue.core import ids
from segue.core.errors import SegueError
from segue.core.home import Home
from segue.models.registry import DEFAULT_MODEL, MODELS
from segue.service.engine import MAX_RESULTS, MAX_SEEDS, Filters, Recommendation, Service

#: Short labels, in the order the app lists models (a long label is cut off in the sidebar);
#: models not named here follow under their own name.
MODEL_LABELS: dict[str, str] = {
    "hybrid": "Hybrid (default)",
    "model1": "Model 1: content",
    "model2": "Model 2: content",
    "itemknn": "Co-occurrence",
    "als": "ALS",
    "rp3beta": "RP3beta",
    "title": "Title",
    "popularity": "Most popular",
    "spotify": "Spotify",
    "original": "Original scoring",
    "random": "Random",
}
#: What each model does, shown under the model choice.
MODEL_DESCRIPTIONS: dict[str, str] = {
    "hybrid": "Collaborative, content and title models, re-ranked together.",
    "model1": "Tracks whose genres, sound, era and popularity resemble yours; genres weigh most.",
    "model2": "Tracks whose genres, sound, era and popularity resemble yours, weighed equally.",
    "itemknn": "Tracks that share playlists with yours (item-item co-occurrence).",
    "als": "Tracks close to yours in a learned taste space (ALS matrix factorisation).",
    "rp3beta": "Tracks a short walk away through shared playlists, less common ones lifted.",
    "title": "Tracks from playlists named like your title.",
    "popularity": "The catalog's most-played tracks (a baseline).",
    "spotify": "Spotify's own recommendations (needs credentials with access).",
    "original": "The original project's content scoring (for reference).",
    "random": "Random tracks (a baseline).",
}
#: Accepted upload types (Exportify CSV, MPD JSON, a list of links).
UPLOAD_TYPES = ("csv", "json", "txt", "m3u")
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
#: Spotify players embedded per result list; the rest are listed as text.
MAX_EMBEDS = 25

_FILE_SUFFIXES = tuple(f".{t}" for t in UPLOAD_TYPES)
_REF_TOKEN = re.compile(r"(https?://\S+|spotify:\S+)")


# models -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelOption:
    name: str
    label: str
    available: bool
    reason: str
    default: bool


def model_options(service: Service) -> list[ModelOption]:
    """Every model the service knows, in display order, with whether it can be used here."""
    info = {m["name"]: m for m in service.models()}
    order = [n for n in MODEL_LABELS if n in info] + [n for n in info if n not in MODEL_LABELS]
    return [
        ModelOption(
            name=n,
            label=MODEL_LABELS.get(n) or n,
            available=bool(info[n]["available"]),
            reason=command_for_home(str(info[n]["reason"] or ""), service.home.root),
            default=bool(info[n]["default"]),
        )
        for n in order
    ]


def default_model_index(options: Sequence[ModelOption]) -> int:
    """The default model if usable, else the first usable one, else 0."""
    for i, o in enumerate(options):
        if o.default and o.available:
            return i
    for i, o in enumerate(options):
        if o.available:
            return i
    return 0


def option_label(option: ModelOption) -> str:
    return option.label if option.available else f"{option.label} (off)"


def command_for_home(text: str, home: Home | Path) -> str:
    """``text`` with each `segue …` command it suggests aimed at ``home`` (`segue --home …`)
    when ``home`` is not the default one: the app's hints must act on the home it shows, and
    the person's shell knows nothing of the ``SEGUE_HOME`` the app was started with."""
    from segue.core.home import default_root

    try:
        default = default_root().resolve()
        if Path(home).resolve() == default:
            return text
    except OSError:
        pass
    flag = f"--home {shlex.quote(str(home))}"
    return re.sub(r"`segue (?!--home)(?!demo\b)", f"`segue {flag} ", text)


# the form -----------------------------------------------------------------------------------
@dataclass
class Upload:
    name: str
    data: bytes


@dataclass
class AppRequest:
    """The recommend form's values, as the widgets give them."""

    text: str = ""
    picked: list[str] = field(default_factory=list)
    upload: Upload | None = None
    title: str = ""
    model: str = DEFAULT_MODEL
    n: int = 10
    max_per_artist: int = 0
    n_genres: int | None = None
    exclude_artists: str = ""
    year_range: tuple[int, int] | None = None
    popularity_range: tuple[float, float] | None = None


def split_inputs(text: str) -> list[str]:
    """The lines of the text area, one input each.

    A line holding several links (as pasted from some players, separated by spaces) gives
    each link; any other line (a song, an artist or a playlist name) is kept whole, so names
    with commas or spaces survive.
    """
    out: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        refs = _REF_TOKEN.findall(line)
        if len(refs) > 1 and _REF_TOKEN.sub("", line).strip(" ,;\t") == "":
            out.extend(r.rstrip(",;") for r in refs)
        else:
            out.append(line)
    return out


def check_typed_inputs(inputs: Sequence[str]) -> None:
    """Refuse server file paths typed as inputs: files come in through the upload widget.

    The service reads a path it is given, which is right on the command line but not for
    text typed into a web page that may be served to others.
    """
    from segue.service.inputs import names_a_file

    for text in inputs:
        if names_a_file(text):
            raise ValueError(
                f"{text!r} looks like a file path: upload the file instead of typing its path"
            )


def safe_upload_name(name: str) -> str:
    """A plain file name for an uploaded file (no folders), keeping its suffix."""
    base = Path(name.replace("\\", "/")).name
    stem = re.sub(r"[^\w.\- ]+", "_", Path(base).stem).strip(" .") or "playlist"
    suffix = Path(base).suffix.lower()
    if suffix not in _FILE_SUFFIXES:
        raise ValueError(f"{base!r}: expected a file ending in {', '.join(_FILE_SUFFIXES)}")
    return stem[:80] + suffix


def parse_artist_list(text: str) -> list[str]:
    """Artists to exclude: one per line or separated by semicolons (names may hold commas)."""
    parts = re.split(r"[;\n]", text)
    return [p.strip() for p in parts if p.strip()]


def build_filters(req: AppRequest, bounds: CatalogBounds | None = None) -> Filters:
    """Filters from the form; a range left at the catalog's full extent is no constraint."""
    year_min = year_max = None
    if req.year_range is not None:
        lo, hi = int(req.year_range[0]), int(req.year_range[1])
        if bounds is None or bounds.years is None or (lo, hi) != bounds.years:
            year_min, year_max = lo, hi
    pop_min = pop_max = None
    if req.popularity_range is not None:
        plo, phi = float(req.popularity_range[0]), float(req.popularity_range[1])
        if (plo, phi) != (0.0, 100.0):
            pop_min, pop_max = plo, phi
    filters = Filters(
        exclude_artists=parse_artist_list(req.exclude_artists),
        year_min=year_min,
        year_max=year_max,
        popularity_min=pop_min,
        popularity_max=pop_max,
        max_per_artist=req.max_per_artist or None,
    )
    filters.validate()
    return filters


def recommend(service: Service, req: AppRequest, *, workdir: Path | None = None) -> Recommendation:
    """Run the form through the service.

    Raises ``ValueError`` with a message for the person (bad input, nothing found) and
    :class:`segue.core.errors.SegueError` when the catalog or model is not usable.
    """
    if not 1 <= req.n <= MAX_RESULTS:
        raise ValueError(f"number of results must be between 1 and {MAX_RESULTS}, got {req.n}")
    typed = split_inputs(req.text)
    check_typed_inputs(typed)
    inputs = typed + [ids.track_uri(t) for t in req.picked]
    if len(inputs) > MAX_SEEDS:
        raise ValueError(f"too many inputs: {len(inputs)}, at most {MAX_SEEDS}")
    title = req.title.strip() or None
    filters = build_filters(req, catalog_bounds(service))
    if not inputs and req.upload is None and not title:
        raise ValueError(
            "nothing to start from: paste a playlist, track or artist link or name, upload a "
            "playlist file, pick tracks from the search, or give a playlist title"
        )
    # the number of genres, when the person chose one, makes a variant of the model
    params = {"n_genres": int(req.n_genres)} if req.n_genres is not None else None
    model = req.model
    if req.upload is None:
        return service.recommend(
            inputs, n=req.n, model=model, title=title, filters=filters, params=params
        )
    if len(req.upload.data) > MAX_UPLOAD_BYTES:
        raise ValueError(
            f"{req.upload.name!r} is too large: at most {MAX_UPLOAD_BYTES // (1024 * 1024)} MB"
        )
    shown = safe_upload_name(req.upload.name)
    clean = clean_upload(req.upload.data, shown)
    # The service reads playlist files by path (and grows the catalog from their facts), so
    # the upload is written to a private temporary folder. A CSV or a list of links carries no
    # playlist name, and the service would take the file's name as the title: the file is
    # named "_" + suffix, whose stem gives no name (an MPD JSON playlist keeps its own).
    stored = "_" + Path(shown).suffix
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        path = Path(tmp) / stored

        def plain(text: str) -> str:
            """A message about the stored file, naming the upload instead (no server path)."""
            text = text.replace(str(path), shown).replace(tmp, "")
            return re.sub(rf"(?<![\w.]){re.escape(stored)}(?![\w])", shown, text)

        path.write_bytes(clean.data)
        try:
            rec = service.recommend(
                inputs,
                n=req.n,
                model=model,
                title=title,
                filters=filters,
                files=[path],
                params=params,
            )
        except (ValueError, SegueError) as exc:
            message = str(exc)
            if tmp in message or stored in message:
                raise ValueError(plain(message)) from None
            raise
    rec.messages = [plain(m) for m in rec.messages] + [
        f"{shown}, {line}: left out ({problem}); the rest of the file is used"
        for line, problem in clean.dropped
    ]
    return rec


@dataclass
class CleanUpload:
    """An uploaded playlist file with its unreadable lines blanked, and what they were."""

    data: bytes
    dropped: list[tuple[str, str]]  # ("line 3", problem)


#: Bad lines an upload may have before it is refused whole (it is probably not a playlist).
MAX_BAD_LINES = 50


def clean_upload(data: bytes, shown: str) -> CleanUpload:
    """``data`` with each line the playlist readers refuse (a bad link, a malformed id in a CSV
    row) blanked, so one bad line does not reject the whole list.

    Blanking (not deleting) keeps the other lines' numbers, and both readers skip blank lines.
    Raises ``ValueError`` naming the upload ``shown`` (never a server path) for a file that
    cannot be read at all, or that has more than :data:`MAX_BAD_LINES` bad lines.
    """
    from segue.core.errors import InputFileError
    from segue.service.inputs import read_playlist_file

    dropped: list[tuple[str, str]] = []
    while True:
        try:
            read_playlist_file(data)
            return CleanUpload(data, dropped)
        except InputFileError as exc:
            where = f" at {exc.position}" if exc.position else ""
            refused = ValueError(f"{shown}{where}: {exc.problem}")
            line = re.match(r"line (\d+)\b", exc.position or "")
            if line is None or len(dropped) >= MAX_BAD_LINES:
                raise refused from None
            number = int(line.group(1))
            try:
                lines = data.decode("utf-8-sig").splitlines(keepends=True)
            except UnicodeDecodeError:
                raise refused from None
            if not 1 <= number <= len(lines) or not lines[number - 1].strip():
                raise refused from None
            is_header = number == 1 and not dropped and "," in lines[0]
            if is_header:
                raise refused from None
            lines[number - 1] = "\n"
            dropped.append((f"line {number}", exc.problem))
            data = "".join(lines).encode("utf-8")


# the catalog --------------------------------------------------------------------------------
@dataclass(frozen=True)
class CatalogBounds:
    """Ranges for the filter sliders."""

    years: tuple[int, int] | None
    n_tracks: int
    n_playlists: int


def catalog_bounds(service: Service) -> CatalogBounds:
    snap = service.snapshot
    cached = getattr(snap, "_app_bounds", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    years = snap.tracks["release_year"].to_numpy(dtype=np.float64)
    years = years[np.isfinite(years)]
    span = (int(years.min()), int(years.max())) if years.size else None
    bounds = CatalogBounds(years=span, n_tracks=snap.n_tracks, n_playlists=snap.n_playlists)
    snap._app_bounds = bounds  # type: ignore[attr-defined]
    return bounds


def search_options(service: Service, query: str, limit: int = 20) -> dict[str, str]:
    """Track id -> label ("Song — Artist (year)") for a search box; empty for an empty query."""
    if not query.strip():
        return {}
    return {
        t.id: track_label(t.name, t.artists, t.year)
        for t in service.search_tracks(query, limit=limit)
    }


def track_label(name: str, artists: Sequence[str], year: int | None) -> str:
    who = ", ".join(artists) or "unknown artist"
    return f"{name} — {who}" + (f" ({year})" if year else "")


# results ------------------------------------------------------------------------------------
def results_frame(rec: Recommendation, reasons: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per recommended track: rank, track, artists, album, year, popularity, score,
    the reason in words (when ``reasons`` are given), the models' own detail and a link."""
    rows = [
        {
            "#": i,
            "track": t.name,
            "artists": ", ".join(t.artists),
            "album": t.album or "",
            "year": t.year,
            "popularity": t.popularity,
            "score": t.score,
            "reason": reasons[i - 1] if reasons is not None and i <= len(reasons) else "",
            "why": t.explanation or "",
            "link": t.url,
        }
        for i, t in enumerate(rec.tracks, 1)
    ]
    columns = ["#", "track", "artists", "album", "year", "popularity", "score"]
    columns += ["reason"] if reasons is not None else []
    columns += ["why", "link"]
    return pd.DataFrame(rows, columns=columns)


# why each track: sentences for a listener --------------------------------------------------
#: Interaction matrices up to this many rows keep a column-major copy for the explanations
#: (at full MPD scale the copy would cost half a gigabyte: columns are sliced per request).
_CSC_CACHE_MAX_NNZ = 5_000_000


def _playlist_columns(service: Service, columns: np.ndarray) -> Any:
    """The playlists x ``columns`` part of the catalog's playlist matrix, as 0/1 CSC."""
    import scipy.sparse as sp

    snap = service.snapshot
    matrix = snap.interactions
    if matrix.nnz <= _CSC_CACHE_MAX_NNZ:
        csc = getattr(snap, "_app_csc", None)
        if csc is None:
            csc = sp.csc_matrix(matrix)
            snap._app_csc = csc  # type: ignore[attr-defined]
        part = csc[:, columns]
    else:
        part = sp.csc_matrix(matrix[:, columns])
    part = part.astype(np.float32)
    part.data[:] = 1.0
    return part


def _quoted(names: Sequence[str]) -> str:
    items = [f"“{n}”" for n in names]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _of_yours(count: int, total: int) -> str:
    if total == 1:
        return "your track"
    return "one of your tracks" if count == 1 else f"{count} of your tracks"


def listener_reasons(service: Service, rec: Recommendation, *, limit: int = 2) -> list[str]:
    """Why each recommended track fits, as one sentence a listener understands.

    Made from the catalog (not the model's scores, which the technical detail keeps): the seed
    tracks it is most often played with, an artist it shares with them, the genres it shares,
    playlists named like the title. The two strongest reasons are kept.
    """
    snap = service.snapshot
    seeds = np.asarray([snap.track_index(t.id) for t in rec.seeds], dtype=np.int64)
    recs = np.asarray([snap.track_index(t.id) for t in rec.tracks], dtype=np.int64)
    if recs.size == 0:
        return []
    columns = _playlist_columns(service, np.concatenate([seeds, recs]))
    together = (columns[:, : seeds.size].T @ columns[:, seeds.size :]).toarray()  # seeds x recs
    artist_keys = snap.track_artist_keys()
    seed_artists = artist_keys[seeds]
    names = snap.tracks["name"].to_numpy()
    artist_names = snap.tracks["artist_name"].to_numpy()
    one_artist = seeds.size > 1 and np.unique(seed_artists).size == 1
    genre_of = dict(zip(snap.artists.index.tolist(), snap.artists["genres"].tolist(), strict=True))
    seed_genres: dict[str, int] = {}
    for key in seed_artists.tolist():
        for g in genre_of.get(key) or []:
            seed_genres[g] = seed_genres.get(g, 0) + 1
    title_words = [w for w in re.findall(r"\w+", (rec.title or "").casefold()) if len(w) > 2]
    playlist_names = (
        snap.playlists["name"].fillna("").str.casefold().to_numpy() if title_words else None
    )
    out = []
    for j, track in enumerate(recs.tolist()):
        reasons: list[str] = []
        shared = together[:, j]
        partner_names: list[str] = []  # distinct names: a remix can share its original's
        for p in seeds[np.lexsort((seeds, -shared))][: int((shared > 0).sum())].tolist():
            if str(names[p]) not in partner_names:
                partner_names.append(str(names[p]))
            if len(partner_names) == 2:
                break
        if partner_names:
            named = _quoted(partner_names)
            if one_artist:
                where = f" by {artist_names[seeds[0]]}"
            elif seeds.size > 1:
                where = " from your playlist"
            else:
                where = ""
            reasons.append(f"often played with {named}{where}")
        same = int((seed_artists == artist_keys[track]).sum())
        if same:
            reasons.append(
                f"another song by {artist_names[track]}"
                if one_artist
                else f"same artist as {_of_yours(same, seeds.size)}"
            )
        if playlist_names is not None:
            rows = columns[:, seeds.size + j].indices
            need = max(1, -(-2 * len(title_words) // 3))  # two thirds of the title's words
            if any(
                sum(w in n.split() for w in title_words) >= need for n in playlist_names[rows][:200]
            ):
                reasons.append(f"in playlists named like “{rec.title}”")
        genres = [g for g in genre_of.get(int(artist_keys[track])) or [] if g in seed_genres]
        if genres and len(reasons) < limit:
            genres.sort(key=lambda g: -seed_genres[g])
            noun = "genre" if len(genres) == 1 else "genres"
            reasons.append(f"same {noun} as your tracks: {' and '.join(genres[:2])}")
        if not reasons:
            reasons.append(
                "a close match for your tracks' sound and era"
                if seeds.size
                else "popular in this catalog's playlists"
            )
        sentence = "; ".join(reasons[:limit])
        out.append(sentence[0].upper() + sentence[1:] + ".")
    return out


def model_caption(model: str) -> str:
    """“Model: Hybrid”, or “Model: Model 1: content (n_genres=20)” for a variant."""
    base, _, spec = model.partition("@")
    label = MODEL_LABELS.get(base, base).removesuffix(" (default)")
    return f"Model: {label}" + (f" ({spec})" if spec else "")


def seed_summary(rec: Recommendation, limit: int = 3) -> str:
    """Which tracks the recommendations started from, e.g. “Started from 1 track: “Yellow” by
    Coldplay.”, so a link or a search pick is confirmed by name."""
    if not rec.seeds:
        return f"Started from the title “{rec.title}” only." if rec.title else ""
    shown = [f"“{t.name}” by {', '.join(t.artists) or 'unknown artist'}" for t in rec.seeds]
    more = len(rec.seeds) - limit
    listed = ", ".join(shown[:limit]) + (f" and {more} more" if more > 0 else "")
    count = f"{len(rec.seeds)}{'+' if len(rec.seeds) >= 50 else ''}"
    noun = "track" if len(rec.seeds) == 1 else "tracks"
    return f"Started from {count} {noun}: {listed}."


def embed_url(track_id: str) -> str:
    """Spotify's embeddable player for a track (needs the network in the browser)."""
    if not ids.is_spotify_id(track_id):
        raise ValueError(f"not a Spotify track id: {track_id!r}")
    return f"https://open.spotify.com/embed/track/{track_id}"


#: Feature -> (low, high) used to put every axis of the profile chart on 0..1.
_PROFILE_SCALE: dict[str, tuple[float, float]] = {
    "danceability": (0.0, 1.0),
    "energy": (0.0, 1.0),
    "valence": (0.0, 1.0),
    "acousticness": (0.0, 1.0),
    "instrumentalness": (0.0, 1.0),
    "speechiness": (0.0, 1.0),
    "liveness": (0.0, 1.0),
    "tempo": (50.0, 200.0),
    "loudness": (-30.0, 0.0),
    "popularity": (0.0, 100.0),
}


def profile_frame(service: Service, rec: Recommendation) -> pd.DataFrame:
    """Mean features of the input and of the recommendations, side by side.

    Columns ``feature``, ``input``, ``recommended`` (raw means) and ``input_scaled``,
    ``recommended_scaled`` (each feature on 0..1: fixed ranges for audio features, the
    catalog's span for the year). Features unknown for either side are left out; the frame
    is empty when the catalog has no features.
    """
    snap = service.snapshot
    seed_idx, _ = snap.known_indices([t.id for t in rec.seeds])
    rec_idx, _ = snap.known_indices([t.id for t in rec.tracks])
    if seed_idx.size == 0 or rec_idx.size == 0:
        return pd.DataFrame(
            columns=["feature", "input", "recommended", "input_scaled", "recommended_scaled"]
        )
    left = service.feature_profile(seed_idx)
    right = service.feature_profile(rec_idx)
    scale = dict(_PROFILE_SCALE)
    bounds = catalog_bounds(service)
    if bounds.years is not None and bounds.years[1] > bounds.years[0]:
        scale["release_year"] = (float(bounds.years[0]), float(bounds.years[1]))
    rows = []
    for feature, (lo, hi) in scale.items():
        if feature in left and feature in right:
            a, b = left[feature], right[feature]
            rows.append(
                {
                    "feature": feature.replace("_", " "),
                    "input": a,
                    "recommended": b,
                    "input_scaled": float(np.clip((a - lo) / (hi - lo), 0.0, 1.0)),
                    "recommended_scaled": float(np.clip((b - lo) / (hi - lo), 0.0, 1.0)),
                }
            )
    return pd.DataFrame(
        rows, columns=["feature", "input", "recommended", "input_scaled", "recommended_scaled"]
    )


def profile_figure(frame: pd.DataFrame) -> Any:
    """A plotly radar chart of :func:`profile_frame` (input vs recommendations)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    theta = [*frame["feature"].tolist(), frame["feature"].iloc[0]] if len(frame) else []
    colours = {"input": "#1f77b4", "recommended": "#ff7f0e"}
    for column, name in (("input_scaled", "input"), ("recommended_scaled", "recommended")):
        values = frame[column].tolist()
        raw = frame[name].tolist()
        fig.add_trace(
            go.Scatterpolar(
                r=[*values, values[0]] if values else [],
                theta=theta,
                name=name,
                fill="toself",
                opacity=0.55,
                line={"color": colours[name]},
                customdata=[*raw, raw[0]] if raw else [],
                hovertemplate="%{theta}: %{customdata:.3g}<extra>" + name + "</extra>",
            )
        )
    fig.update_layout(
        polar={"radialaxis": {"visible": True, "range": [0, 1]}},
        margin={"l": 40, "r": 40, "t": 30, "b": 30},
        height=420,
        legend={"orientation": "h"},
    )
    return fig


@dataclass(frozen=True)
class Export:
    label: str
    data: str
    file_name: str
    mime: str


def exports(rec: Recommendation) -> list[Export]:
    """The recommendations as CSV, M3U and JSON downloads (the CLI's own formats)."""
    from segue.wire.export import OutputFormat, render

    stem = slug(rec.title or "segue") + "-" + rec.model.partition("@")[0]
    return [
        Export("CSV", render(rec, OutputFormat.csv), f"{stem}.csv", "text/csv"),
        Export("M3U", render(rec, OutputFormat.m3u), f"{stem}.m3u", "audio/x-mpegurl"),
        Export("JSON", render(rec, OutputFormat.json), f"{stem}.json", "application/json"),
    ]


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.casefold()).strip("-")[:60] or "segue"


# the log page -------------------------------------------------------------------------------
@dataclass
class CatalogLog:
    fetches: pd.DataFrame
    added: pd.DataFrame
    message: str = ""


def catalog_log(home: Home | Path, limit: int = 200) -> CatalogLog:
    """The catalog's fetch log and the tracks added to it, newest first.

    Opens the catalog read-only and briefly; a catalog that is missing or busy gives empty
    tables and a message instead of an error.
    """
    empty = pd.DataFrame()
    path = Home.of(home).catalog
    if not path.exists():
        return CatalogLog(
            empty, empty, "no catalog here yet: run `segue demo` or `segue ingest` first"
        )
    from segue.catalog import Catalog
    from segue.core.errors import SegueError

    try:
        with Catalog.open(path, read_only=True, wait=2.0) as catalog:
            reader = getattr(catalog, "fetch_log_rows", None)
            fetches = _frame(reader(limit)) if reader is not None else empty
            added_reader = getattr(catalog, "added_tracks", None)
            added = _frame(added_reader(limit)) if added_reader is not None else empty
    except SegueError as exc:
        return CatalogLog(empty, empty, f"the catalog cannot be read right now: {exc}")
    if added.empty and not fetches.empty and {"kind", "status"} <= set(fetches.columns):
        # Without a query of its own, the log's successful track lookups stand for the additions.
        done = fetches["kind"].isin(["tracks", "track_facts"]) & (fetches["status"] == "ok")
        added = fetches[done].reset_index(drop=True)
    message = "" if reader is not None else "this version of the catalog keeps no fetch log"
    origin = demo_origin(path)
    if origin is not None:
        # The demo's own tracks came with segue, not from the web: only later additions count.
        if not added.empty and "source" in added.columns:
            added = added[added["source"] != origin.source].reset_index(drop=True)
        message = " ".join(m for m in (origin.text, message) if m)
    return CatalogLog(fetches, added, message)


@dataclass(frozen=True)
class DemoOrigin:
    source: str
    text: str


def demo_origin(catalog_path: Path) -> DemoOrigin | None:
    """Where the demo catalog's tracks come from, or None for a catalog that is not the demo."""
    from segue.catalog.bundled import DEMO_SOURCE, demo_info
    from segue.core.errors import SegueError

    try:
        info = demo_info(catalog_path)
    except (SegueError, OSError):
        return None
    if info is None:
        return None
    tracks = info.get("tracks")
    playlists = info.get("playlists")
    counted = (
        f"{tracks:,} tracks and {playlists:,} playlists"
        if isinstance(tracks, int) and isinstance(playlists, int)
        else "tracks and playlists"
    )
    return DemoOrigin(
        DEMO_SOURCE,
        f"This is the demo catalog: its {counted} come from the TidyTuesday Spotify songs "
        "table (2020-01-21, made with the spotifyr package from Spotify's Web API), bundled "
        "with segue. Nothing was fetched from the web to build it.",
    )


def _frame(rows: Any) -> pd.DataFrame:
    if isinstance(rows, pd.DataFrame):
        return rows
    if hasattr(rows, "to_pandas"):
        return rows.to_pandas()  # type: ignore[no-any-return]
    out = pd.DataFrame(list(rows))
    for col in out.columns:
        if out[col].map(lambda v: isinstance(v, list | tuple | np.ndarray)).any():
            out[col] = out[col].map(lambda v: ", ".join(map(str, v)) if v is not None else "")
    return out


def about_facts(service: Service) -> dict[str, Any]:
    """What the About page states about the catalog in use."""
    from segue import __version__

    snap = service.snapshot
    manifest = snap.manifest
    return {
        "version": __version__,
        "tracks": f"{snap.n_tracks:,}",
        "playlists": f"{snap.n_playlists:,}",
        "playlist rows": f"{int(snap.interactions.nnz):,}",
        "artists": f"{len(snap.artists):,}",
        "snapshot built": manifest.get("created_at", "unknown"),
        "models": ", ".join(
            n for n in MODELS if n in {o.name for o in model_options(service) if o.available}
        ),
    }


def save_to_spotify(rec: Recommendation, name: str, home: Home | None = None) -> str:
    """Create Spotify playlist ``name`` with the recommended tracks in the user's account.

    Needs a ``segue login`` done beforehand (the web app cannot take the pasted redirect).
    Returns a one-line result; raises :class:`~segue.core.errors.SegueError` / :class:`ValueError`
    whose message says what to do (log in, be added to the app's allow-list, …).
    """
    from segue.providers.spotify_save import save_playlist

    saved = save_playlist(name, [t.id for t in rec.tracks], home=home)
    return f"Saved {saved.added} tracks to “{saved.name}”: {saved.url}"


def catalog_sources(home: Home | Path) -> dict[str, str]:
    """Which sources filled the catalog: tracks by source, artists with genres by source.
    Empty when the catalog is missing or busy (the About page then leaves the section out)."""
    from segue.catalog import Catalog
    from segue.catalog.matching import genres_by_source
    from segue.core.errors import SegueError

    path = Home.of(home).catalog
    if not path.exists():
        return {}
    try:
        with Catalog.open(path, read_only=True, wait=2.0) as catalog:
            tracks = catalog.con.execute(
                "SELECT coalesce(source, 'unknown'), count(*) FROM tracks GROUP BY ALL ORDER BY 2 DESC"
            ).fetchall()
            genres = genres_by_source(catalog)
    except SegueError:
        return {}

    def join(pairs: Any) -> str:
        return ", ".join(f"{k} {int(v):,}" for k, v in pairs) or "none"

    return {
        "tracks from": join(tracks),
        "artist genres from": join(sorted(genres.items(), key=lambda kv: -kv[1])),
    }


def chosen_settings(service: Service) -> dict[str, str]:
    """What each built model chose at fit (from its saved ``model.json``), by model name."""
    out: dict[str, str] = {}
    for name in ("hybrid", "model1", "model2"):
        text = service.chosen_settings(name)
        if text:
            out[name] = text
    return out
