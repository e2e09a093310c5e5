"""The RecSys Challenge 2018 protocol on any MPD-format playlists.

* :func:`make_challenge` splits MPD slices into training slices, an official-format
  ``challenge_set.json`` and a ``truth.json`` with the held-out tracks.
* :func:`write_submission` / :func:`read_submission` write and read the official submission CSV.
* :func:`run_challenge` continues every challenge playlist with a ``recommend_fn`` and writes a
  submission; :func:`score_submission` scores a submission file against ``truth.json``.

The ten categories (EVALUATION.md): title and 0 seeds; title and the first 1, 5 seeds; no title
and the first 5; title and the first 10; no title and the first 10; title and the first 25;
title and 25 random; title and the first 100; title and 100 random. A playlist is eligible for a
category only if it keeps at least max(10, k/2) held-out tracks after its k seeds. Held-out
tracks are the distinct tracks after the seeds that are not themselves seeds (a playlist may hold
a track twice, and a seed can never be recommended).

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

import contextlib
import gzip
import io
import math
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import orjson
from tqdm import tqdm

from segue.core.errors import InputFileError
from segue.core.ids import is_spotify_id
from segue.evaluation import metrics
from segue.formats.mpd import (
    ARTIST_PREFIX,
    TRACK_PREFIX,
    columns_from_playlists,
    expand_paths,
    iter_playlists,
    parse_json,
    read_bytes,
)

TRUTH_FORMAT = "segue-challenge-truth"
TRUTH_VERSION = 1
SLICE_SIZE = 1000
DEFAULT_TEAM = "segue"
DEFAULT_EMAIL = "segue@example.org"

#: ``recommend_fn(seed_track_ids, title, n=500) -> track ids``: bare 22-character ids, best first.
RecommendFn = Callable[..., Sequence[str]]


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


def _bar(items: Sequence[Any], desc: str, unit: str, progress: bool) -> Iterable[Any]:
    """A progress bar on stderr; off when asked, or when stderr is not a terminal."""
    return tqdm(items, desc=desc, unit=unit, disable=None if progress else True, file=sys.stderr)


def _bare(uri: str) -> str:
    return uri[len(TRACK_PREFIX) :] if uri.startswith(TRACK_PREFIX) else uri


def _uri(bare: str) -> str:
    return TRACK_PREFIX + bare


# ------------------------------------------------------------------------------------------
# splitting
# ------------------------------------------------------------------------------------------


def split_tracks(
    tracks: Sequence[Any], category: Category, rng: np.random.Generator | None = None
) -> tuple[list[int], list[Any]]:
    """Seed positions and held-out tracks of one playlist for one category.

    ``tracks``: the playlist's track keys in playlist order (ids or indices; repeats allowed).
    Returns ``(seed_positions, held_out)``: sorted 0-based positions of the seed rows, and the
    distinct tracks of the other rows that are not seeds, in playlist order. Random categories
    draw their positions from ``rng`` (required for them).
    """
    n = len(tracks)
    k = min(category.seeds, n)
    if category.random:
        if rng is None:
            raise TypeError(f"category {category.number} draws random seeds: pass an rng")
        positions = sorted(int(p) for p in rng.choice(n, size=k, replace=False))
    else:
        positions = list(range(k))
    seed_rows = set(positions)
    seed_tracks = {tracks[p] for p in positions}
    held: dict[Any, None] = {}
    for pos, track in enumerate(tracks):
        if pos not in seed_rows and track not in seed_tracks:
            held.setdefault(track, None)
    return positions, list(held)


@dataclass
class _Pool:
    """Pass-one facts of every input playlist, parallel lists indexed by playlist order."""

    pids: list[int] = field(default_factory=list)
    titled: list[bool] = field(default_factory=list)
    tracks: list[np.ndarray] = field(default_factory=list)
    file_of_pid: dict[int, str] = field(default_factory=dict)
    track_index: dict[str, int] = field(default_factory=dict)
    track_artist_uri: list[str | None] = field(default_factory=list)
    track_artist_name: list[str] = field(default_factory=list)


@dataclass
class _Pick:
    pid: int
    category: Category
    seed_positions: list[int]
    held_out: list[int]  # track indices of the pool


@dataclass
class ChallengeSummary:
    """What :func:`make_challenge` wrote."""

    out_dir: Path
    n_input_files: int
    n_input_playlists: int
    n_train_playlists: int
    n_train_files: int
    n_tracks: int
    per_category: dict[int, int]
    held_out_per_category: dict[int, float]
    seed: int

    def lines(self) -> list[str]:
        """A human-readable summary, one line per string."""
        out = [
            f"read {self.n_input_playlists:,} playlists ({self.n_tracks:,} distinct tracks) "
            f"from {self.n_input_files:,} files",
            f"train: {self.n_train_playlists:,} playlists in {self.n_train_files:,} slice file(s) "
            f"under {self.out_dir / 'train'}",
            f"challenge set: {sum(self.per_category.values()):,} playlists "
            f"in {self.out_dir / 'challenge_set.json'} (seed {self.seed})",
        ]
        for c in CATEGORIES:
            out.append(
                f"  category {c.number:>2} ({c.describe()}): {self.per_category.get(c.number, 0)} "
                f"playlists, {self.held_out_per_category.get(c.number, 0.0):.1f} held-out tracks "
                "on average"
            )
        out.append(f"truth: {self.out_dir / 'truth.json'}")
        return out


@contextlib.contextmanager
def _input_files(slice_paths: Sequence[str | Path]) -> Iterator[list[Path]]:
    """Slice files named by the inputs; ``.tar.gz``/``.tgz`` archives are unpacked to a temp dir."""
    specs = [str(p) for p in slice_paths]
    if not specs:
        raise ValueError("make_challenge: no input given; expected MPD slice files or folders")
    with contextlib.ExitStack() as stack:
        files: list[Path] = []
        for path in expand_paths(specs):
            if path.name.endswith((".tar.gz", ".tgz")):
                tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="segue-mpd-")))
                try:
                    with tarfile.open(path, "r:gz") as archive:
                        members = [
                            m
                            for m in archive.getmembers()
                            if m.isfile() and m.name.endswith((".json", ".json.gz"))
                        ]
                        # "data" refuses absolute paths, links out of the folder and devices
                        archive.extractall(tmp, members=members, filter="data")
                except (tarfile.TarError, OSError, EOFError) as exc:
                    raise InputFileError(
                        str(path), None, f"cannot unpack the archive: {exc}"
                    ) from exc
                found = sorted(tmp / m.name for m in members)
                if not found:
                    raise InputFileError(str(path), None, "the archive holds no .json slice file")
                files.extend(found)
            else:
                files.append(path)
        yield files


def _read_pool(files: Sequence[Path], progress: bool) -> _Pool:
    pool = _Pool()
    for path in _bar(files, "reading slices", "file", progress):
        playlists = list(iter_playlists(path))
        # validation and id parsing are the reader's (the same rules as ingest)
        cols = columns_from_playlists(str(path), "", playlists, require_name=False)
        rows = cols.rows
        new_ids: list[int] = []
        for tid, aid, aname in zip(
            rows.column("track_id").to_pylist(),
            rows.column("artist_id").to_pylist(),
            rows.column("artist_name").to_pylist(),
            strict=True,
        ):
            idx = pool.track_index.get(tid)
            if idx is None:
                idx = len(pool.track_artist_uri)
                pool.track_index[tid] = idx
                pool.track_artist_uri.append(aid)
                pool.track_artist_name.append(aname)
            elif pool.track_artist_uri[idx] is None and aid is not None:
                pool.track_artist_uri[idx] = aid
            new_ids.append(idx)
        row_ids = np.asarray(new_ids, dtype=np.int64)
        # rows come in playlist order, each playlist's tracks in file order
        row_pids = rows.column("pid").to_numpy()
        pids = cols.playlists.column("pid").to_pylist()
        names = cols.playlists.column("name").to_pylist()
        start = 0
        for pl, pid, name in zip(playlists, pids, names, strict=True):
            other = pool.file_of_pid.get(pid)
            if other is not None:
                raise InputFileError(
                    str(path),
                    f"pid {pid}",
                    f"pid {pid} already appears in {other}; pids must be unique",
                )
            pool.file_of_pid[pid] = str(path)
            n = len(pl["tracks"])
            if n and not (row_pids[start : start + n] == pid).all():
                raise RuntimeError(f"{path}: rows of pid {pid} are not where the reader put them")
            pool.pids.append(pid)
            pool.titled.append(bool(name and name.strip()))
            pool.tracks.append(row_ids[start : start + n])
            start += n
    return pool


def _pick(pool: _Pool, per_category: int, seed: int) -> list[_Pick]:
    """Choose ``per_category`` playlists per category, most demanding category first."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(pool.pids))
    used = np.zeros(len(pool.pids), dtype=bool)
    picks: list[_Pick] = []
    # categories needing the longest playlists choose first, so short ones are left for the rest
    for category in sorted(
        CATEGORIES, key=lambda c: (-c.seeds, not c.random, not c.title, c.number)
    ):
        need = category.seeds + category.min_held_out
        chosen: list[_Pick] = []
        for row in order:
            if len(chosen) == per_category:
                break
            if (
                used[row]
                or len(pool.tracks[row]) < need
                or (category.title and not pool.titled[row])
            ):
                continue
            tracks = pool.tracks[row].tolist()
            positions, held = split_tracks(tracks, category, rng)
            if len(held) < category.min_held_out:
                continue
            used[row] = True
            chosen.append(_Pick(pool.pids[row], category, positions, held))
        if len(chosen) < per_category:
            title = " and a title" if category.title else ""
            raise ValueError(
                f"category {category.number} ({category.describe()}) needs {per_category} playlist(s) "
                f"with at least {math.ceil(category.min_held_out)} distinct held-out tracks after "
                f"{category.seeds} seeds{title}, but only {len(chosen)} of the "
                f"{len(pool.pids):,} input playlists are left that qualify: lower per_category"
            )
        picks.extend(chosen)
    picks.sort(key=lambda p: p.category.number)
    return picks


def _artist_keys(pool: _Pool) -> tuple[list[str], np.ndarray]:
    """Artist key table and the artist index of every pool track (see the module docstring)."""
    uris_by_name: dict[str, set[str]] = {}
    for aid, name in zip(pool.track_artist_uri, pool.track_artist_name, strict=True):
        if aid is not None:
            uris_by_name.setdefault(name, set()).add(aid)
    keys: dict[str, int] = {}
    per_track = np.empty(len(pool.track_artist_uri), dtype=np.int64)
    for i, (aid, name) in enumerate(
        zip(pool.track_artist_uri, pool.track_artist_name, strict=True)
    ):
        if aid is None:
            named = uris_by_name.get(name)
            aid = next(iter(named)) if named is not None and len(named) == 1 else None
        key = ARTIST_PREFIX + aid if aid is not None else "name:" + name
        per_track[i] = keys.setdefault(key, len(keys))
    return list(keys), per_track


def _dump(path: Path, doc: Any) -> None:
    path.write_bytes(orjson.dumps(doc))


def _slice_doc(playlists: list[dict[str, Any]], first: int) -> dict[str, Any]:
    span = f"{first}-{first + len(playlists) - 1}"
    info = {"generated_on": time.strftime("%Y-%m-%d %H:%M:%S"), "slice": span, "version": "v1"}
    return {"info": info, "playlists": playlists}


def _seed_track(track: dict[str, Any], pos: int) -> dict[str, Any]:
    """A seed in MPD track form, with ``pos`` (the reduced schema lacks it)."""
    out = {"pos": pos}
    out.update({k: v for k, v in track.items() if k != "pos"})
    return out


def make_challenge(
    slice_paths: Sequence[str | Path],
    out_dir: str | Path,
    *,
    per_category: int = 100,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = True,
) -> ChallengeSummary:
    """Split MPD slices into training slices, a challenge set and its truth.

    ``slice_paths``: files, folders, glob patterns (as :func:`segue.formats.mpd.expand_paths`) or
    ``.tar.gz`` archives of slices; full or reduced MPD schema. Writes
    ``out_dir/train/mpd.slice.<a>-<b>.json`` (the other playlists, unchanged, 1,000 per file),
    ``out_dir/challenge_set.json`` (official format) and ``out_dir/truth.json``. The choice is
    deterministic for a given input and ``seed``. Raises ``ValueError`` when a category cannot
    be filled and :class:`InputFileError` for unreadable input.
    """
    if isinstance(per_category, bool) or not isinstance(per_category, int) or per_category < 1:
        raise ValueError(f"per_category must be a positive integer, got {per_category!r}")
    out = Path(out_dir)
    train_dir = out / "train"
    stale = [out / "challenge_set.json", out / "truth.json"]
    if train_dir.exists():
        stale.extend(sorted(train_dir.glob("mpd.slice.*.json")))
    existing = [p for p in stale if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"{out} already holds a challenge ({existing[0].name} and {len(existing) - 1} more "
            "files): choose another folder or overwrite"
        )
    with _input_files(slice_paths) as files:
        pool = _read_pool(files, progress)
        picks = _pick(pool, per_category, seed)
        by_pid = {p.pid: p for p in picks}
        for path in existing:
            path.unlink()
        train_dir.mkdir(parents=True, exist_ok=True)
        raw: dict[int, dict[str, Any]] = {}
        buffer: list[dict[str, Any]] = []
        n_train = 0
        n_files = 0
        for path in _bar(files, "writing train", "file", progress):
            for pl in iter_playlists(path):
                if pl["pid"] in by_pid:
                    raw[pl["pid"]] = pl
                    continue
                buffer.append(pl)
                if len(buffer) == SLICE_SIZE:
                    _write_slice(train_dir, buffer, n_train)
                    n_train += len(buffer)
                    n_files += 1
                    buffer = []
        if buffer:
            _write_slice(train_dir, buffer, n_train)
            n_train += len(buffer)
            n_files += 1
    artist_keys, track_artist = _artist_keys(pool)
    track_ids = list(pool.track_index)
    challenge, truth_playlists = _challenge_docs(picks, raw, track_ids, pool)
    sources = ", ".join(str(p) for p in slice_paths)
    _dump(
        out / "challenge_set.json",
        {
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "version": "v1",
            "name": "challenge_set",
            "description": (
                f"segue challenge set: {per_category} playlists in each of 10 categories, "
                f"seed {seed}, from {sources}"
            ),
            "playlists": challenge,
        },
    )
    _dump(
        out / "truth.json",
        {
            "format": TRUTH_FORMAT,
            "version": TRUTH_VERSION,
            "seed": seed,
            "per_category": per_category,
            "categories": {
                str(c.number): {"title": c.title, "seeds": c.seeds, "random": c.random}
                for c in CATEGORIES
            },
            "playlists": truth_playlists,
            "artists": artist_keys,
            "track_artist": dict(zip(track_ids, track_artist.tolist(), strict=True)),
        },
    )
    held = {c.number: [len(p.held_out) for p in picks if p.category is c] for c in CATEGORIES}
    return ChallengeSummary(
        out_dir=out,
        n_input_files=len(files),
        n_input_playlists=len(pool.pids),
        n_train_playlists=n_train,
        n_train_files=n_files,
        n_tracks=len(track_ids),
        per_category={c: len(v) for c, v in held.items()},
        held_out_per_category={c: float(np.mean(v)) if v else 0.0 for c, v in held.items()},
        seed=seed,
    )


def _write_slice(train_dir: Path, playlists: list[dict[str, Any]], first: int) -> None:
    name = f"mpd.slice.{first}-{first + len(playlists) - 1}.json"
    _dump(train_dir / name, _slice_doc(playlists, first))


def _challenge_docs(
    picks: list[_Pick], raw: dict[int, dict[str, Any]], track_ids: list[str], pool: _Pool
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    challenge: list[dict[str, Any]] = []
    truth: dict[str, Any] = {}
    for pick in picks:
        pl = raw[pick.pid]
        tracks = pl["tracks"]
        entry: dict[str, Any] = {}
        if pick.category.title:
            entry["name"] = pl["name"]
        entry.update(
            {
                "pid": pick.pid,
                "num_tracks": len(tracks),
                "num_samples": len(pick.seed_positions),
                "num_holdouts": len(tracks) - len(pick.seed_positions),
                "tracks": [_seed_track(tracks[p], p) for p in pick.seed_positions],
            }
        )
        challenge.append(entry)
        truth[str(pick.pid)] = {
            "category": pick.category.number,
            "seeds": [tracks[p]["track_uri"] for p in pick.seed_positions],
            "holdouts": [_uri(track_ids[t]) for t in pick.held_out],
            "holdout_artist_uris": [
                ARTIST_PREFIX + a if (a := pool.track_artist_uri[t]) is not None else None
                for t in pick.held_out
            ],
            "holdout_artist_names": [pool.track_artist_name[t] for t in pick.held_out],
        }
    return challenge, truth


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
    """The playlists of an official-format ``challenge_set.json`` (validated)."""
    spath = str(path)
    doc = _load_json(Path(path))
    playlists = doc.get("playlists") if isinstance(doc, dict) else None
    if not isinstance(playlists, list):
        raise InputFileError(spath, "top level", "expected an object with a 'playlists' list")
    out: list[ChallengePlaylist] = []
    seen: set[int] = set()
    for i, pl in enumerate(playlists):
        where = f"playlists[{i}]"
        if not isinstance(pl, dict):
            raise InputFileError(
                spath, where, f"expected a playlist object, got {type(pl).__name__}"
            )
        pid = pl.get("pid")
        if not isinstance(pid, int) or isinstance(pid, bool):
            raise InputFileError(spath, where, f"'pid' must be an integer, got {pid!r}")
        if pid in seen:
            raise InputFileError(spath, where, f"pid {pid} appears twice")
        seen.add(pid)
        name = pl.get("name")
        if name is not None and not isinstance(name, str):
            raise InputFileError(spath, where, f"'name' must be a string, got {name!r}")
        tracks = pl.get("tracks", [])
        if not isinstance(tracks, list):
            raise InputFileError(
                spath, where, f"'tracks' must be a list, got {type(tracks).__name__}"
            )
        seeds: list[str] = []
        for j, tr in enumerate(tracks):
            uri = tr.get("track_uri") if isinstance(tr, dict) else None
            bare = _bare(uri) if isinstance(uri, str) else ""
            if not is_spotify_id(bare):
                raise InputFileError(
                    spath,
                    f"{where}.tracks[{j}] (pid {pid})",
                    f"'track_uri' must be like 'spotify:track:<22 base62 chars>', got {uri!r}",
                )
            seeds.append(bare)
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
        idx = self.track_artist.get(_bare(uri))
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


# ------------------------------------------------------------------------------------------
# submissions
# ------------------------------------------------------------------------------------------


@dataclass
class Submission:
    """A submission file read: ``recommendations`` maps pid to track URIs in rank order."""

    path: str
    team: str
    email: str
    track: str | None  # 2018's "main" or "creative"; None for the newer header
    recommendations: dict[int, list[str]]
    line_of: dict[int, int]


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
        metrics.check_recommendations(uris, seeds or (), expected=None)
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
    expected_tracks: int = metrics.N_RECOMMENDATIONS,
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
    expected_tracks: int = metrics.N_RECOMMENDATIONS,
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
# running and scoring
# ------------------------------------------------------------------------------------------


@dataclass
class RunSummary:
    """What :func:`run_challenge` did."""

    path: Path
    n_playlists: int
    n_filled: int  # playlists completed from the fallback
    n_fallback_tracks: int
    n_dropped: int  # seeds and repeats the model returned, left out

    def line(self) -> str:
        return (
            f"wrote {self.path}: {self.n_playlists:,} playlists; {self.n_filled:,} completed from "
            f"the popularity fallback ({self.n_fallback_tracks:,} tracks); {self.n_dropped:,} "
            "seeds or repeats dropped"
        )


def _bare_track(value: Any, pid: int) -> str:
    if isinstance(value, str):
        bare = _bare(value)
        if is_spotify_id(bare):
            return bare
    raise ValueError(
        f"recommend_fn returned {value!r} for pid {pid}: expected a 22-character track id "
        "(or a spotify:track: URI)"
    )


def run_challenge(
    challenge_set_path: str | Path,
    out_path: str | Path,
    recommend_fn: RecommendFn,
    *,
    fallback: Sequence[str] = (),
    team: str = DEFAULT_TEAM,
    email: str = DEFAULT_EMAIL,
    n: int = metrics.N_RECOMMENDATIONS,
    progress: bool = True,
) -> RunSummary:
    """Continue every playlist of a challenge set and write the submission.

    ``recommend_fn(seed_track_ids, title, n=500)`` gets the bare seed ids (file order) and the
    title (None where not given) and returns bare track ids, best first. Seeds and repeats it
    returns are dropped; short lists are completed from ``fallback`` (bare ids, e.g. the most
    popular tracks), never repeating a seed. Raises ``ValueError`` when even the fallback cannot
    give ``n`` tracks.
    """
    playlists = load_challenge_set(challenge_set_path)
    recs: dict[int, list[str]] = {}
    seeds_of: dict[int, list[str]] = {}
    fallback_ids = [_bare_track(t, -1) for t in fallback]
    n_filled = n_fallback = n_dropped = 0
    for pl in _bar(playlists, "recommending", "playlist", progress):
        got = recommend_fn(list(pl.seeds), pl.name, n=n)
        seeds = set(pl.seeds)
        chosen: dict[str, None] = {}
        for value in got:
            bare = _bare_track(value, pl.pid)
            if bare in seeds or bare in chosen:
                n_dropped += 1
                continue
            chosen[bare] = None
            if len(chosen) == n:
                break
        from_model = len(chosen)
        if len(chosen) < n:
            n_filled += 1
            for bare in fallback_ids:
                if bare not in seeds and bare not in chosen:
                    chosen[bare] = None
                    n_fallback += 1
                    if len(chosen) == n:
                        break
        if len(chosen) < n:
            raise ValueError(
                f"pid {pl.pid}: the model gave {from_model} usable tracks and the fallback "
                f"({len(fallback_ids)} tracks) completes them to {len(chosen)} of {n}; "
                "give a longer fallback"
            )
        recs[pl.pid] = [_uri(t) for t in chosen]
        seeds_of[pl.pid] = [_uri(t) for t in pl.seeds]
    path = write_submission(out_path, team, email, recs, seeds=seeds_of, expected_tracks=n)
    return RunSummary(path, len(playlists), n_filled, n_fallback, n_dropped)


def score_submission(
    submission_path: str | Path,
    truth_path: str | Path,
    *,
    warnings: TextIO | None = None,
) -> dict[str, Any]:
    """Score a submission file against ``truth.json``.

    Returns ``{"overall": {"r_precision", "ndcg", "clicks"}, "per_category": {1..10: {...}},
    "n_playlists", "n_per_category", "n_missing", "team", "submission", "truth"}``. A challenge
    playlist without a line scores R-precision 0, NDCG 0 and 51 clicks, with one warning line
    on stderr (or ``warnings``). A line for a pid the truth does not know, or one that
    recommends a seed, is an :class:`InputFileError`.
    """
    truth = load_truth(truth_path)
    sub = read_submission(submission_path, seeds=truth.seeds)
    for pid, number in sub.line_of.items():
        if pid not in truth.category:
            raise InputFileError(
                sub.path, f"line {number}", f"pid {pid} is not in the challenge set of {truth.path}"
            )
    scored: list[tuple[int, dict[str, float]]] = []
    missing: list[int] = []
    for pid, category in truth.category.items():
        recs = sub.recommendations.get(pid)
        if recs is None:
            missing.append(pid)
            scored.append((category, metrics.missing_playlist_scores()))
            continue
        held = truth.holdouts[pid]
        top_artists = [truth.artist_of(u) for u in recs[: len(set(held))]]
        scored.append(
            (
                category,
                metrics.score_playlist(
                    recs,
                    held,
                    held_out_artists=truth.holdout_artists[pid],
                    recommended_artists=top_artists,
                ),
            )
        )
    if missing:
        shown = ", ".join(str(p) for p in sorted(missing)[:5]) + (
            ", ..." if len(missing) > 5 else ""
        )
        print(
            f"warning: {sub.path}: {len(missing)} of {len(truth.category)} challenge playlists have "
            f"no recommendations and score 0 (51 clicks): pid {shown}",
            file=warnings if warnings is not None else sys.stderr,
        )
    result = metrics.aggregate(scored)
    result.update(
        {"n_missing": len(missing), "team": sub.team, "submission": sub.path, "truth": truth.path}
    )
    return result
