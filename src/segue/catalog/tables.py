"""Track and artist facts from feature tables (CSV, CSV.gz, Parquet) keyed by Spotify id.

Columns are found by name, case-insensitively, under the names public tables use (Kaggle,
TidyTuesday, the original segue pipeline's outputs; see :data:`ALIASES`). A table with a track
id column gives tracks (names, artists, album, release date, popularity, duration), audio
features and the genres/popularity of their artists; a table with only an artist id column
gives artists. What a table says is stored honestly:

* ``Track_pop``/``Artist_pop`` of the original pipeline's processed schema are popularity // 5
  and ``Track_release_date`` is year // 50: buckets that cannot be turned back into values, so
  they are reported and not stored.
* ``unknown`` in a genre column means the artist has no genres (stored as ``[]``), an empty cell
  means nothing is known (NULL).
* ``playlist_genre``/``playlist_subgenre`` labels become genre tags of the artists of the rows
  when the table has no genre column.

Messy inputs are handled and counted rather than fatal: repeated header lines (an append bug
of the seed artist table) are skipped, rows with a malformed id are skipped and reported with
their line numbers, unless no row at all is usable.
"""

from __future__ import annotations

import ast
import csv
import gzip
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from segue.core.errors import InputFileError
from segue.core.ids import Kind, is_spotify_id, try_parse
from segue.core.records import AUDIO_FEATURES, ArtistFacts, ArtistRef, AudioFeatures, TrackFacts
from segue.core.text import normalise_name

if TYPE_CHECKING:
    from segue.catalog import Catalog
    from segue.catalog.facts import FactsResult

# Column names (lower case) per field, in order of preference.
ALIASES: dict[str, tuple[str, ...]] = {
    "track_id": ("track_id", "track_uri", "track uri", "spotify_id", "spotify id", "id", "uri"),
    "artist_id": (
        "artist_id",
        "artist_uri",
        "artists_id",
        "artist_ids",
        "id_artists",
        "artist uri(s)",
        "artist ids",
    ),
    "artist_name": (
        "artist_name",
        "track_artist",
        "artist",
        "artists",
        "artist name(s)",
        "artist_names",
    ),
    "track_name": ("track_name", "track name", "name"),
    "album_id": ("album_id", "album_uri", "track_album_id", "album uri"),
    "album_name": ("album_name", "track_album_name", "album", "album name"),
    "track_popularity": ("track_popularity", "popularity", "track_pop"),
    "artist_popularity": ("artist_popularity", "artist_pop"),
    "release": (
        "track_album_release_date",
        "release_date",
        "album_release_date",
        "album release date",
        "release date",
        "year",
        "track_release_date",
    ),
    "genres": ("artist_genres", "genres", "artist genres"),
    "duration_ms": ("duration_ms", "track duration (ms)", "duration (ms)", "duration"),
}
LABEL_COLUMNS = ("playlist_genre", "playlist_subgenre")
FEATURE_ALIASES = {f: (f, f.replace("_", " ")) for f in AUDIO_FEATURES}
# Names the original pipeline gave to its bucketed columns (popularity // 5, year // 50).
BUCKETED_POPULARITY_HEADERS = ("Track_pop", "Artist_pop")
MAX_LITERAL_CHARS = 10_000
SHOWN_BAD_LINES = 5
_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")


# ----------------------------------------------------------------------------------------
# value parsers


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, float) and math.isnan(value)


def _clean_genre(text: str) -> str:
    return " ".join(text.split())


def genre_style(values: Sequence[Any]) -> str:
    """How a genre column writes its lists: 'underscore' for the seed pipeline's space-separated
    genres with ``_`` inside a genre (``"album_rock glam_rock"``), else 'auto' (per cell)."""
    underscore = False
    for value in values:
        if _missing(value) or not isinstance(value, str):
            continue
        text = value.strip()
        if text.startswith("[") or "," in text:
            return "auto"
        if "_" in text:
            underscore = True
    return "underscore" if underscore else "auto"


def parse_genres(value: Any, style: str = "auto") -> list[str] | None:
    """A genre cell as a list of genres; ``None`` when the cell says nothing.

    Accepted: a Python-list string ``"['permanent wave', 'pop']"`` (read with
    ``ast.literal_eval``, which evaluates literals only), a JSON-style list, a comma-separated
    string, a list, ``unknown`` (known to have none -> ``[]``), a single genre (``"dance pop"``),
    and with ``style="underscore"`` (or a cell holding ``_``) the seed pipeline's form:
    space-separated with ``_`` inside a genre (``"album_rock glam_rock"`` ->
    ``['album rock', 'glam rock']``).
    """
    if _missing(value):
        return None
    if isinstance(value, (list, tuple)) or hasattr(value, "tolist"):
        items = value.tolist() if hasattr(value, "tolist") else list(value)
        return list(
            dict.fromkeys(g for g in (_clean_genre(str(x)) for x in items if not _missing(x)) if g)
        )
    text = str(value).strip()
    if text.casefold() in {"unknown", "[]", "none"}:
        return []
    items_text: list[str]
    if text.startswith("[") and text.endswith("]"):
        parsed: Any = None
        if len(text) <= MAX_LITERAL_CHARS:
            try:
                parsed = ast.literal_eval(text)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                parsed = None
        if isinstance(parsed, (list, tuple)):
            items_text = [str(x) for x in parsed if isinstance(x, (str, int, float))]
        else:
            # Not a literal (e.g. unquoted items): split the inside on commas.
            items_text = [p.strip().strip("'\"") for p in text[1:-1].split(",")]
    elif "," in text:
        items_text = text.split(",")
    elif style == "underscore" or "_" in text:
        items_text = [t.replace("_", " ") for t in text.split()]
    else:
        items_text = [text]
    return list(dict.fromkeys(g for g in (_clean_genre(x) for x in items_text) if g))


def _parse_list(value: Any) -> list[str]:
    """A cell naming one or several artists: a single value or a Python/JSON list string."""
    if _missing(value):
        return []
    if isinstance(value, (list, tuple)) or hasattr(value, "tolist"):
        items = value.tolist() if hasattr(value, "tolist") else list(value)
        return [str(x).strip() for x in items if not _missing(x)]
    text = str(value).strip()
    if text.startswith("[") and text.endswith("]") and len(text) <= MAX_LITERAL_CHARS:
        try:
            parsed = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            parsed = None
        if isinstance(parsed, (list, tuple)):
            return [str(x).strip() for x in parsed if isinstance(x, str) and x.strip()]
    return [text]


def _parse_ref(value: Any, kind: Kind) -> str | None:
    if _missing(value):
        return None
    text = str(value).strip()
    if is_spotify_id(text):
        return text
    ref = try_parse(text, kind)
    return ref.id if ref is not None else None


def _parse_artist_ids(value: Any) -> list[str | None] | None:
    """Artist ids of a cell (list string, comma-separated or one); None if any is malformed."""
    items = _parse_list(value)
    if len(items) == 1 and "," in items[0]:
        items = [p.strip() for p in items[0].split(",")]
    out: list[str | None] = []
    for item in items:
        parsed = _parse_ref(item, Kind.ARTIST)
        if parsed is None:
            return None
        out.append(parsed)
    return out


def _number(value: Any) -> float | None:
    if _missing(value):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) or math.isinf(out) else out


def _popularity(value: Any) -> int | None:
    num = _number(value)
    if num is None or not 0 <= num <= 100:
        return None
    return round(num)


def _release_date(value: Any) -> str | None:
    """``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD`` from a date or a year cell; None otherwise."""
    if _missing(value):
        return None
    text = str(value).strip()
    num = _number(text)
    if num is not None and num.is_integer():
        text = str(int(num))
    if not _DATE.fullmatch(text):
        return None
    if not 1000 <= int(text[:4]) <= 2100:
        return None
    return text


def _year(value: Any) -> int | None:
    date = _release_date(value)
    return int(date[:4]) if date else None


# ----------------------------------------------------------------------------------------
# reading


@dataclass
class FeatureTable:
    """One table read into records, with what was skipped and why.

    ``kind`` is 'tracks' (a track id column) or 'artists' (only an artist id column).
    """

    path: str
    kind: str
    rows: int  # data rows read, repeated headers excluded
    tracks: list[TrackFacts] = field(default_factory=list)
    artists: list[ArtistFacts] = field(default_factory=list)
    audio_features: list[AudioFeatures] = field(default_factory=list)
    repeated_headers: int = 0
    bad_id_lines: list[int] = field(default_factory=list)  # all of them
    columns: dict[str, str] = field(default_factory=dict)  # field -> column used
    notes: list[str] = field(default_factory=list)

    @property
    def bad_ids(self) -> int:
        return len(self.bad_id_lines)


@dataclass
class ImportReport:
    """What :func:`import_feature_table` did to the catalog."""

    table: FeatureTable
    result: FactsResult

    def summary(self) -> str:
        t, r = self.table, self.result
        parts = [
            f"{Path(t.path).name}: {t.rows:,} {'track' if t.kind == 'tracks' else 'artist'} rows"
        ]
        if t.kind == "tracks":
            parts.append(f"tracks {r.tracks_new:,} new, {r.tracks_updated:,} updated")
            if r.tracks_skipped:
                parts.append(
                    f"{r.tracks_skipped:,} unknown tracks without name or artist not added"
                )
        parts.append(f"artists {r.artists_new:,} new, {r.artists_updated:,} updated")
        if t.kind == "tracks":
            parts.append(f"audio features for {r.audio_features:,} tracks")
        skipped = []
        if t.repeated_headers:
            skipped.append(f"{t.repeated_headers:,} repeated header lines")
        if t.bad_ids:
            shown = ", ".join(str(n) for n in t.bad_id_lines[:SHOWN_BAD_LINES])
            more = ", ..." if t.bad_ids > SHOWN_BAD_LINES else ""
            skipped.append(f"{t.bad_ids:,} rows with a malformed id (lines {shown}{more})")
        if skipped:
            parts.append("skipped " + " and ".join(skipped))
        return "; ".join(parts)


def _read_frame(path: Path) -> tuple[pd.DataFrame, bool]:
    """All columns as str (None for empty/NA cells), and whether rows map to CSV lines."""
    name = path.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            import pyarrow.parquet as pq

            frame = pq.read_table(path).to_pandas()
            return frame.astype(object).where(frame.notna(), None), False
        raw = path.read_bytes()
    except OSError as exc:
        raise InputFileError(str(path), None, f"cannot read: {exc.strerror or exc}") from exc
    except Exception as exc:  # pyarrow raises its own types for a damaged Parquet file
        raise InputFileError(str(path), None, f"not a readable Parquet file: {exc}") from exc
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise InputFileError(str(path), None, f"damaged gzip data: {exc}") from exc
    if raw[:4] == b"PAR1":
        raise InputFileError(str(path), None, "this is a Parquet file: name it .parquet")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputFileError(
            str(path), f"byte {exc.start}", "not UTF-8 text: expected a CSV or Parquet file"
        ) from None
    if not text.strip():
        raise InputFileError(str(path), None, "the file is empty")
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            dtype=str,
            keep_default_na=False,
            na_values=["", "NA"],
            quoting=csv.QUOTE_MINIMAL,
        )
    except (pd.errors.ParserError, ValueError) as exc:
        raise InputFileError(str(path), None, f"not a readable CSV table: {exc}") from None
    return frame.astype(object).where(frame.notna(), None), True


def _find(columns: dict[str, str], names: Sequence[str]) -> str | None:
    for name in names:
        if name in columns:
            return columns[name]
    return None


def read_feature_table(path: str | Path, *, source: str | None = None) -> FeatureTable:
    """Read one CSV/CSV.gz/Parquet feature table into records (no catalog involved).

    Raises :class:`InputFileError` (a ``ValueError``) naming the file when it cannot be read,
    has no Spotify id column, or no row has a valid id.
    """
    path = Path(path)
    spath = str(path)
    frame, csv_lines = _read_frame(path)
    src = source or re.sub(r"\.(csv|csv\.gz|parquet|pq|gz)$", "", path.name, flags=re.IGNORECASE)
    lower: dict[str, str] = {}
    for column in frame.columns:
        lower.setdefault(str(column).strip().lower(), column)
    found = {key: _find(lower, names) for key, names in ALIASES.items()}
    kind = "tracks"
    if found["track_id"] is None:
        if (
            found["artist_id"] is None
            and "0" in lower
            and (found["genres"] or found["artist_popularity"])
        ):
            # A pandas Series written with its default name: the seed artist table's bare ids.
            found["artist_id"] = lower["0"]
        if found["artist_id"] is None:
            raise InputFileError(
                spath,
                "header",
                f"no Spotify id column: expected a track id column ({', '.join(ALIASES['track_id'])}) "
                f"or an artist id column ({', '.join(ALIASES['artist_id'])}); found {list(map(str, frame.columns))}",
            )
        kind = "artists"
    table = FeatureTable(
        spath, kind, 0, columns={k: str(v) for k, v in found.items() if v is not None}
    )

    # Repeated header lines: every cell equals its column's name.
    if len(frame):
        is_header = pd.Series(True, index=frame.index)
        for column in frame.columns:
            is_header &= (
                frame[column].astype(str).str.strip().str.lower() == str(column).strip().lower()
            )
        table.repeated_headers = int(is_header.sum())
        line_of = (frame.index.to_numpy() + 2) if csv_lines else (frame.index.to_numpy() + 1)
        frame = frame[~is_header.to_numpy()]
        line_of = line_of[~is_header.to_numpy()]
    else:
        line_of = frame.index.to_numpy()
    table.rows = len(frame)
    where = "line" if csv_lines else "row"
    if table.rows == 0:
        raise InputFileError(spath, None, "the table has no data rows")

    def col(key: str) -> list[Any]:
        name = found.get(key)
        return frame[name].tolist() if name is not None else [None] * table.rows

    def numbers(name: str | None) -> list[float | None]:
        """A column as floats, None where empty or not a number (vectorised: tables are big)."""
        if name is None:
            return [None] * table.rows
        values = pd.to_numeric(frame[name], errors="coerce").astype("float64")
        values = values.where(np.isfinite(values.to_numpy()))
        return [None if v != v else v for v in values.tolist()]  # v != v: NaN

    # Bucketed columns of the original pipeline's processed schema.
    release_values = col("release")
    release_bucketed = False
    if found["release"] is not None:
        parsed = [_number(v) for v in release_values if not _missing(v)]
        nums = [n for n in parsed if n is not None]
        if nums and len(nums) == len(parsed) and all(n < 1000 for n in nums):
            release_bucketed = True
            table.notes.append(
                f"column {found['release']!r} holds year // 50 buckets ({int(min(nums))}-{int(max(nums))}), "
                "not years: not stored (a bucket cannot be turned back into a year)"
            )
            release_values = [None] * table.rows
    # A bare ``year`` column may be the year of a chart or playlist rather than of the release:
    # it gives a year that a real release date replaces later, never a release date.
    year_only = found["release"] is not None and str(found["release"]).strip().lower() == "year"
    pops: dict[str, list[Any]] = {}
    for key in ("track_popularity", "artist_popularity"):
        name = found[key]
        pop_values: list[Any] = numbers(name)
        if name is not None:
            pop_nums = [n for n in pop_values if n is not None]
            if (
                pop_nums
                and max(pop_nums) <= 20
                and (name in BUCKETED_POPULARITY_HEADERS or release_bucketed)
            ):
                table.notes.append(
                    f"column {name!r} holds popularity // 5 buckets (0-20): not stored "
                    "(a bucket cannot be turned back into a popularity)"
                )
                pop_values = [None] * table.rows
        pops[key] = pop_values

    genres_values = col("genres")
    style = genre_style(genres_values)
    labels = (
        [frame[lower[c]].tolist() for c in LABEL_COLUMNS if c in lower]
        if found["genres"] is None
        else []
    )
    if labels:
        table.notes.append(
            f"no genre column: {' and '.join(c for c in LABEL_COLUMNS if c in lower)} labels stored as artist genres"
        )

    artists: dict[tuple[str, str], ArtistFacts] = {}
    label_sets: dict[tuple[str, str], dict[str, None]] = {}

    def add_artist(
        artist_id: str | None,
        name: str,
        genres: list[str] | None,
        pop: int | None,
        row_labels: list[str],
    ) -> None:
        key = ("id", artist_id) if artist_id else ("name", normalise_name(name))
        if not key[1]:
            return
        rec = artists.get(key)
        if rec is None:
            rec = artists[key] = ArtistFacts(artist_id, name, None, None, src)
        if not rec.name and name:
            rec.name = name
        if rec.genres is None and genres is not None:
            rec.genres = genres
        if rec.popularity is None and pop is not None:
            rec.popularity = pop
        if row_labels:
            label_sets.setdefault(key, {}).update(dict.fromkeys(row_labels))

    if kind == "artists":
        for i, (raw_id, name, genres, pop) in enumerate(
            zip(
                col("artist_id"),
                col("artist_name"),
                genres_values,
                pops["artist_popularity"],
                strict=True,
            )
        ):
            artist_id = _parse_ref(raw_id, Kind.ARTIST)
            if artist_id is None:
                table.bad_id_lines.append(int(line_of[i]))
                continue
            add_artist(
                artist_id,
                "" if _missing(name) else str(name).strip(),
                parse_genres(genres, style),
                _popularity(pop),
                [],
            )
    else:
        feature_cols = {f: _find(lower, names) for f, names in FEATURE_ALIASES.items()}
        feature_cols = {f: c for f, c in feature_cols.items() if c is not None}
        feature_values = {f: numbers(c) for f, c in feature_cols.items()}
        bad_artist_ids = 0
        columns = zip(
            col("track_id"),
            col("track_name"),
            col("artist_id"),
            col("artist_name"),
            col("album_id"),
            col("album_name"),
            release_values,
            pops["track_popularity"],
            pops["artist_popularity"],
            genres_values,
            numbers(found["duration_ms"]),
            strict=True,
        )
        for i, (
            raw_id,
            tname,
            raw_aids,
            raw_anames,
            raw_album,
            album,
            release,
            tpop,
            apop,
            genres,
            duration,
        ) in enumerate(columns):
            track_id = _parse_ref(raw_id, Kind.TRACK)
            if track_id is None:
                table.bad_id_lines.append(int(line_of[i]))
                continue
            names = _parse_list(raw_anames)
            aids = _parse_artist_ids(raw_aids) if not _missing(raw_aids) else []
            if aids is None:
                bad_artist_ids += 1
                aids = []
            if aids and names and len(aids) != len(names):
                # Names and ids do not pair up (a name with a comma?): trust the ids' count.
                names = names[:1] if len(aids) == 1 else []
            n = max(len(aids), len(names))
            refs = [
                ArtistRef(names[j] if j < len(names) else "", aids[j] if j < len(aids) else None)
                for j in range(n)
            ]
            dur = duration
            table.tracks.append(
                TrackFacts(
                    track_id=track_id,
                    name=None if _missing(tname) else str(tname),
                    artists=refs if not _missing(tname) else [],
                    album_id=_parse_ref(raw_album, Kind.ALBUM),
                    album_name=None if _missing(album) else str(album),
                    release_date=None if year_only else _release_date(release),
                    year=_year(release) if year_only else None,
                    popularity=_popularity(tpop),
                    duration_ms=int(dur) if dur is not None and 0 <= dur < 2**31 else None,
                    source=src,
                )
            )
            features: dict[str, float] = {}
            for f, vals in feature_values.items():
                value = vals[i]
                if value is not None:
                    features[f] = value
            if features:
                table.audio_features.append(AudioFeatures(track_id, features, src))
            if refs:
                primary = refs[0]
                row_labels = [str(lab[i]).strip() for lab in labels if not _missing(lab[i])]
                add_artist(
                    primary.artist_id,
                    primary.name,
                    parse_genres(genres, style),
                    _popularity(apop),
                    row_labels,
                )
        if bad_artist_ids:
            table.notes.append(
                f"{bad_artist_ids:,} rows had a malformed artist id (artist taken by name)"
            )
    table.artists = [
        a for a in artists.values() if a.genres is not None or a.popularity is not None
    ]
    # Playlist labels stand in for genres only where the catalog knows none.
    for artist_key, tags in label_sets.items():
        rec = artists[artist_key]
        table.artists.append(
            ArtistFacts(rec.artist_id, rec.name, list(tags), None, src, overwrite=False)
        )
    if table.bad_ids == table.rows:
        shown = ", ".join(str(n) for n in table.bad_id_lines[:SHOWN_BAD_LINES])
        id_col = found["track_id"] or found["artist_id"]
        raise InputFileError(
            spath,
            f"{where}s {shown}",
            f"no row has a valid Spotify id in column {id_col!r} "
            "(expected a 22-character id, a spotify: URI or an open.spotify.com link)",
        )
    return table


def import_feature_table(
    catalog: Catalog, path: str | Path, *, source: str | None = None
) -> ImportReport:
    """Read one table and write it to the catalog in one transaction (all or nothing)."""
    table = read_feature_table(path, source=source)
    result = catalog.upsert_facts(
        tracks=table.tracks, artists=table.artists, audio_features=table.audio_features
    )
    return ImportReport(table, result)


__all__ = [
    "ALIASES",
    "FeatureTable",
    "ImportReport",
    "genre_style",
    "import_feature_table",
    "parse_genres",
    "read_feature_table",
]
