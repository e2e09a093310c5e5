"""The challenge's files: challenge set, truth and submission, read, written and validated.

* ``challenge_set.json``: the official RecSys Challenge 2018 format (:func:`write_challenge_set`,
  :func:`load_challenge_set`); its playlists are checked by the one MPD playlist validator
  (:func:`segue.formats.mpd.check_playlist`) with the challenge's rules.
* ``truth.json``: segue's own file of held-out tracks (:func:`write_truth`, :func:`load_truth`).
* submissions: the official CSV, ``team_info,<team>,<email>`` then ``pid,uri_1,...,uri_500``
  (:func:`write_submission`, :func:`read_submission`), refused when a line repeats a track,
  holds a seed or has the wrong length (:func:`check_recommendations`).
* training slices: MPD slice files (:func:`write_slice`), and the challenge seeds as one slice
  (:func:`write_seed_slice`).

The ten categories (EVALUATION.md) are defined here, since the challenge set and the truth
record them: title and 0 seeds; title and the first 1, 5 seeds; no title and the first 5; title
and the first 10; no title and the first 10; title and the first 25; title and 25 random; title
and the first 100; title and 100 random.

``truth.json`` layout::

    {"format": "segue-challenge-truth", "version": 1, "seed": int, "per_category": int,
     "categories": {"1": {"title": bool, "seeds": int, "random": bool}, ...},
     "playlists": {"<pid>": {"category": int, "seeds": [uri, ...], "holdouts": [uri, ...],
                             "holdout_artist_uris": [uri | null, ...],
                             "holdout_artist_names": [str, ...]}},
     "artists": [artist key, ...],
     "track_artist": {"<bare track id>": index into "artists", ...}}

``track_artist`` covers every track of the input, so the artist credit of R-precision works for
recommended tracks that are not held out. An artist key is ``spotify:artist:<id>``; a track
without an artist URI takes the URI of the one artist of that name when there is exactly one,
else ``name:<artist name>`` (artists are matched by name where the URI is unknown).
"""

from __future__ import annotations

import gzip
import io
import time
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from segue.core.errors import InputFileError
from segue.core.ids import is_spotify_id
from segue.formats.mpd import (
    CHALLENGE_RULES,
    TRACK_PREFIX,
    PlaylistChecker,
    parse_json,
    read_bytes,
)

TRUTH_FORMAT = "segue-challenge-truth"
TRUTH_VERSION = 1
DEFAULT_TEAM = "segue"
DEFAULT_EMAIL = "segue@example.org"
#: Tracks asked for each challenge playlist.
N_RECOMMENDATIONS = 500


@dataclass(frozen=True)
class Category:
    """One of the ten challenge categories."""

    number: int
    title: bool
    seeds: int
    random: bool

    @property
    def min_held_out(self) -> float:
        """Fewest held-out tracks a playlist must keep: max(10, k/2)."""
        return max(10.0, self.seeds / 2)

    def describe(self) -> str:
        title = "title" if self.title else "no title"
        if self.seeds == 0:
            return f"{title}, no seed tracks"
        how = "random" if self.random else "first"
        return f"{title}, {how} {self.seeds} seed track{'s' if self.seeds > 1 else ''}"


CATEGORIES: tuple[Category, ...] = (
    Category(1, True, 0, False),
    Category(2, True, 1, False),
    Category(3, True, 5, False),
    Category(4, False, 5, False),
    Category(5, True, 10, False),
    Category(6, False, 10, False),
    Category(7, True, 25, False),
    Category(8, True, 25, True),
    Category(9, True, 100, False),
    Category(10, True, 100, True),
)
CATEGORY_BY_NUMBER = {c.number: c for c in CATEGORIES}


def bare_id(uri: str) -> str:
    """The bare id of a ``spotify:track:`` URI (anything else unchanged)."""
    return uri[len(TRACK_PREFIX) :] if uri.startswith(TRACK_PREFIX) else uri


def track_uri(bare: str) -> str:
    """The ``spotify:track:`` URI of a bare id."""
    return TRACK_PREFIX + bare


def _dump(path: Path, doc: Any) -> None:
    path.write_bytes(orjson.dumps(doc))


def slice_name(first: int, n: int) -> str:
    """The file name of a training slice holding playlists ``first`` to ``first + n - 1``."""
    return f"mpd.slice.{first}-{first + n - 1}.json"


def write_slice(folder: Path, playlists: list[dict[str, Any]], first: int) -> None:
    """Write ``playlists`` (MPD form, unchanged) as the slice file :func:`slice_name` names."""
    span = f"{first}-{first + len(playlists) - 1}"
    info = {"generated_on": time.strftime("%Y-%m-%d %H:%M:%S"), "slice": span, "version": "v1"}
    _dump(folder / slice_name(first, len(playlists)), {"info": info, "playlists": playlists})


def seed_track(track: dict[str, Any], pos: int) -> dict[str, Any]:
    """A seed in MPD track form, with ``pos`` (the reduced schema lacks it)."""
    out = {"pos": pos}
    out.update({k: v for k, v in track.items() if k != "pos"})
    return out


def write_challenge_set(path: Path, playlists: list[dict[str, Any]], description: str) -> None:
    """Write an official-format ``challenge_set.json`` of ``playlists`` (already in its form)."""
    _dump(
        path,
        {
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "version": "v1",
            "name": "challenge_set",
            "description": description,
            "playlists": playlists,
        },
    )


def write_truth(
    path: Path,
    *,
    seed: int,
    per_category: int,
    playlists: dict[str, Any],
    artists: list[str],
    track_artist: dict[str, int],
) -> None:
    """Write ``truth.json`` (the layout in the module docstring)."""
    _dump(
        path,
        {
            "format": TRUTH_FORMAT,
            "version": TRUTH_VERSION,
            "seed": seed,
            "per_category": per_category,
            "categories": {
                str(c.number): {"title": c.title, "seeds": c.seeds, "random": c.random}
                for c in CATEGORIES
            },
            "playlists": playlists,
            "artists": artists,
            "track_artist": track_artist,
        },
    )


# ------------------------------------------------------------------------------------------
# challenge set and truth
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChallengePlaylist:
    """One playlist of a challenge set: ``seeds`` are bare track ids in the file's order."""

    pid: int
    name: str | None
    seeds: list[str]
    num_tracks: int | None
    num_holdouts: int | None


def load_challenge_set(path: str | Path) -> list[ChallengePlaylist]:
    """The playlists of an official-format ``challenge_set.json``, each checked by the one MPD
    playlist validator with the challenge's rules (:data:`segue.formats.mpd.CHALLENGE_RULES`:
    a pid; a name and tracks only where the category gives them; seeds need a ``track_uri``)."""
    spath = str(path)
    doc = _load_json(Path(path))
    playlists = doc.get("playlists") if isinstance(doc, dict) else None
    if not isinstance(playlists, list):
        raise InputFileError(spath, "top level", "expected an object with a 'playlists' list")
    out: list[ChallengePlaylist] = []
    checker = PlaylistChecker(spath, CHALLENGE_RULES)
    for i, pl in enumerate(playlists):
        one = checker.playlist(pl, i)
        assert one.pid is not None  # the challenge rules require it
        pid, name = one.pid, one.name
        seeds = [bare_id(tr["track_uri"]) for tr in one.tracks]
        num_tracks = pl.get("num_tracks")
        num_holdouts = pl.get("num_holdouts")
        out.append(
            ChallengePlaylist(
                pid=pid,
                name=name if name else None,
                seeds=seeds,
                num_tracks=num_tracks if isinstance(num_tracks, int) else None,
                num_holdouts=num_holdouts if isinstance(num_holdouts, int) else None,
            )
        )
    return out


def _load_json(path: Path) -> Any:
    return parse_json(str(path), read_bytes(path))


@dataclass
class Truth:
    """``truth.json`` loaded: per pid the category, seeds, held-out URIs and artist keys."""

    path: str
    category: dict[int, int]
    seeds: dict[int, list[str]]
    holdouts: dict[int, list[str]]
    holdout_artists: dict[int, list[str | None]]
    artists: list[str]
    track_artist: dict[str, int]

    def artist_of(self, uri: str) -> str | None:
        idx = self.track_artist.get(bare_id(uri))
        return self.artists[idx] if idx is not None else None


def load_truth(path: str | Path) -> Truth:
    """Read and check a ``truth.json`` written by :func:`make_challenge`."""
    spath = str(path)
    doc = _load_json(Path(path))
    if not isinstance(doc, dict) or doc.get("format") != TRUTH_FORMAT:
        raise InputFileError(
            spath,
            "top level",
            f"expected a truth file of format {TRUTH_FORMAT!r} (from `challenge make`)",
        )
    if doc.get("version") != TRUTH_VERSION:
        raise InputFileError(
            spath, "version", f"expected version {TRUTH_VERSION}, got {doc.get('version')!r}"
        )
    artists = doc.get("artists", [])
    track_artist = doc.get("track_artist", {})
    playlists = doc.get("playlists")
    if not isinstance(playlists, dict):
        raise InputFileError(spath, "playlists", "expected an object keyed by pid")
    truth = Truth(spath, {}, {}, {}, {}, list(artists), dict(track_artist))
    for key, entry in playlists.items():
        try:
            pid = int(key)
            category = int(entry["category"])
            holdouts = [str(u) for u in entry["holdouts"]]
            seeds = [str(u) for u in entry.get("seeds", [])]
            uris = entry.get("holdout_artist_uris") or [None] * len(holdouts)
            names = entry.get("holdout_artist_names") or [None] * len(holdouts)
        except (KeyError, TypeError, ValueError) as exc:
            raise InputFileError(
                spath, f"playlists[{key!r}]", f"malformed entry: {exc!r}"
            ) from None
        if category not in CATEGORY_BY_NUMBER:
            raise InputFileError(
                spath, f"playlists[{key!r}]", f"category must be 1-10, got {category}"
            )
        if not holdouts:
            raise InputFileError(spath, f"playlists[{key!r}]", "no held-out tracks")
        truth.category[pid] = category
        truth.seeds[pid] = seeds
        truth.holdouts[pid] = holdouts
        keys: list[str | None] = []
        for uri, aid, name in zip(holdouts, uris, names, strict=False):
            key = truth.artist_of(uri)
            if key is None:
                key = aid if aid else (f"name:{name}" if name else None)
            keys.append(key)
        truth.holdout_artists[pid] = keys
    return truth


@dataclass
class Submission:
    """A submission file read: ``recommendations`` maps pid to track URIs in rank order."""

    path: str
    team: str
    email: str
    track: str | None  # 2018's "main" or "creative"; None for the newer header
    recommendations: dict[int, list[str]]
    line_of: dict[int, int]


def check_recommendations(
    recommended: Sequence[Hashable],
    seeds: Iterable[Hashable] = (),
    *,
    expected: int | None = N_RECOMMENDATIONS,
) -> None:
    """Refuse recommendations that repeat a track, contain a seed, or have the wrong length.

    The idea of LightFM's ``check_intersections``: what the model was given must never be
    counted as found. Raises ``ValueError`` naming the first offending track and its position
    (1-based).
    """
    if expected is not None and len(recommended) != expected:
        raise ValueError(f"expected {expected} recommended tracks, got {len(recommended)}")
    first: dict[Hashable, int] = {}
    for position, track in enumerate(recommended, start=1):
        if track in first:
            raise ValueError(
                f"track {track} appears twice (positions {first[track]} and {position})"
            )
        first[track] = position
    seed_set = set(seeds)
    for track, position in first.items():
        if track in seed_set:
            raise ValueError(f"track {track} at position {position} is a seed of the playlist")


def _line_problem(
    pid: int,
    uris: Sequence[str],
    seeds: Iterable[str] | None,
    expected_tracks: int,
) -> str | None:
    """What is wrong with one playlist's recommendations, or None."""
    if len(uris) != expected_tracks:
        return f"pid {pid}: expected {expected_tracks} track URIs, got {len(uris)}"
    for i, uri in enumerate(uris, start=1):
        if not (uri.startswith(TRACK_PREFIX) and is_spotify_id(uri[len(TRACK_PREFIX) :])):
            return (
                f"pid {pid}: item {i} is not a track URI like 'spotify:track:<22 base62 chars>': "
                f"{uri!r}"
            )
    try:
        check_recommendations(uris, seeds or (), expected=None)
    except ValueError as exc:
        return f"pid {pid}: {exc}"
    return None


def write_submission(
    path: str | Path,
    team: str,
    email: str,
    recs: Mapping[int, Sequence[str]],
    *,
    seeds: Mapping[int, Iterable[str]] | None = None,
    expected_tracks: int = N_RECOMMENDATIONS,
) -> Path:
    """Write an official submission: ``team_info,<team>,<email>``, then ``pid,uri_1,...,uri_500``.

    ``recs`` maps pid to ``spotify:track:`` URIs in rank order, ``seeds`` (optional) pid to the
    seed URIs that must not appear. Gzipped when ``path`` ends with ``.gz``. Raises
    ``ValueError`` naming the pid and the problem; nothing is written then.
    """
    for what, value in (("team", team), ("email", email)):
        if not isinstance(value, str) or not value.strip() or any(c in value for c in ",\r\n"):
            raise ValueError(
                f"{what} must be a non-empty text without commas or newlines, got {value!r}"
            )
    lines = [f"team_info,{team},{email}"]
    for pid, uris in recs.items():
        uri_list = list(uris)
        problem = _line_problem(pid, uri_list, seeds.get(pid) if seeds else None, expected_tracks)
        if problem is not None:
            raise ValueError(f"cannot write submission {path}: {problem}")
        lines.append(",".join([str(pid), *uri_list]))
    text = "\n".join(lines) + "\n"
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".writing")
    if out.name.endswith(".gz"):
        buffer = io.BytesIO()
        # mtime=0: the same recommendations give the same bytes
        with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz:
            gz.write(text.encode("utf-8"))
        tmp.write_bytes(buffer.getvalue())
    else:
        tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return out


def read_submission(
    path: str | Path,
    *,
    seeds: Mapping[int, Iterable[str]] | None = None,
    expected_tracks: int = N_RECOMMENDATIONS,
) -> Submission:
    """Read a submission CSV (plain or gzip), either header form, skipping ``#`` comments.

    Raises :class:`InputFileError` with the file, the line and the problem for a missing or
    malformed ``team_info`` line, a pid that is not an integer or repeats, a wrong number of
    tracks, something that is not a track URI, a repeated track or (with ``seeds``) a seed.
    """
    spath = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise InputFileError(spath, None, f"cannot read: {exc.strerror or exc}") from exc
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise InputFileError(spath, None, f"damaged gzip data: {exc}") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputFileError(spath, f"byte {exc.start}", "the file is not UTF-8 text") from None
    header: tuple[str, str, str | None] | None = None
    header_line = 0
    recs: dict[int, list[str]] = {}
    line_of: dict[int, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        fields = [f.strip() for f in stripped.split(",")]
        where = f"line {number}"
        if header is None:
            header = _parse_header(spath, where, fields, stripped)
            header_line = number
            continue
        if fields[0] == "team_info":
            raise InputFileError(
                spath, where, f"team_info appears again (first on line {header_line})"
            )
        try:
            pid = int(fields[0])
        except ValueError:
            raise InputFileError(
                spath, where, f"expected a playlist id (an integer) first, got {fields[0]!r}"
            ) from None
        if pid in recs:
            raise InputFileError(
                spath, where, f"pid {pid} appears again (first on line {line_of[pid]})"
            )
        uris = fields[1:]
        problem = _line_problem(pid, uris, seeds.get(pid) if seeds else None, expected_tracks)
        if problem is not None:
            raise InputFileError(spath, where, problem)
        recs[pid] = uris
        line_of[pid] = number
    if header is None:
        raise InputFileError(
            spath, None, "no 'team_info,<team name>,<email>' line: the file holds no submission"
        )
    team, email, track = header
    return Submission(spath, team, email, track, recs, line_of)


def _parse_header(
    path: str, where: str, fields: list[str], line: str
) -> tuple[str, str, str | None]:
    shown = line if len(line) <= 60 else line[:57] + "..."
    if fields[0] != "team_info":
        raise InputFileError(
            path,
            where,
            f"expected 'team_info,<team name>,<email>' before any playlist, got {shown!r}",
        )
    if len(fields) == 3 and all(fields[1:]):
        return fields[1], fields[2], None
    if len(fields) == 4 and fields[1] in ("main", "creative") and all(fields[2:]):
        return fields[2], fields[3], fields[1]
    raise InputFileError(
        path,
        where,
        "expected 'team_info,<team name>,<email>' (or 2018's 'team_info,main,<team name>,<email>'), "
        f"got {shown!r}",
    )


# ------------------------------------------------------------------------------------------
# the challenge seeds as training input
# ------------------------------------------------------------------------------------------


def write_seed_slice(challenge_set: Path, out_path: Path) -> int:
    """The challenge playlists with their seed tracks only, as one MPD slice; returns its size.

    Playlists without seeds (category 1) carry nothing to learn and are left out; a playlist
    without a title gets an empty name (the slice format requires one).
    """
    doc = _load_json(challenge_set)
    load_challenge_set(challenge_set)  # validates the file and says where it is wrong
    playlists = []
    for pl in doc["playlists"]:
        tracks = pl.get("tracks") or []
        if not tracks:
            continue
        playlists.append(
            {
                "name": pl.get("name") or "",
                "pid": pl["pid"],
                "num_tracks": len(tracks),
                "tracks": tracks,
            }
        )
    info = {"slice": "challenge-seeds", "version": "v1"}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(orjson.dumps({"info": info, "playlists": playlists}))
    return len(playlists)
