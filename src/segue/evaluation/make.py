"""Making a challenge: MPD playlists split into training slices, a challenge set and its truth.

:func:`make_challenge` reads MPD slices (files, folders, globs, ``.tar.gz`` archives), picks
``per_category`` playlists for each of the ten categories (:data:`segue.evaluation.formats.
CATEGORIES`), keeps their first or random seeds, and writes the other playlists unchanged as
training slices, the seeds as an official-format ``challenge_set.json`` and the held-out tracks
as ``truth.json`` (the files are written by :mod:`segue.evaluation.formats`).

A playlist is eligible for a category only if it keeps at least max(10, k/2) held-out tracks
after its k seeds. Held-out tracks are the distinct tracks after the seeds that are not
themselves seeds (a playlist may hold a track twice, and a seed can never be recommended).
"""

from __future__ import annotations

import contextlib
import math
import sys
import tarfile
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from segue.core.errors import InputFileError
from segue.evaluation.formats import (
    CATEGORIES,
    Category,
    seed_track,
    track_uri,
    write_challenge_set,
    write_slice,
    write_truth,
)
from segue.formats.mpd import (
    ARTIST_PREFIX,
    columns_from_playlists,
    expand_paths,
    iter_playlists,
)

#: Playlists per training slice file.
SLICE_SIZE = 1000


def progress_bar(items: Sequence[Any], desc: str, unit: str, progress: bool) -> Iterable[Any]:
    """A progress bar on stderr; off when asked, or when stderr is not a terminal."""
    return tqdm(items, desc=desc, unit=unit, disable=None if progress else True, file=sys.stderr)


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
    for path in progress_bar(files, "reading slices", "file", progress):
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
        for path in progress_bar(files, "writing train", "file", progress):
            for pl in iter_playlists(path):
                if pl["pid"] in by_pid:
                    raw[pl["pid"]] = pl
                    continue
                buffer.append(pl)
                if len(buffer) == SLICE_SIZE:
                    write_slice(train_dir, buffer, n_train)
                    n_train += len(buffer)
                    n_files += 1
                    buffer = []
        if buffer:
            write_slice(train_dir, buffer, n_train)
            n_train += len(buffer)
            n_files += 1
    artist_keys, track_artist = _artist_keys(pool)
    track_ids = list(pool.track_index)
    challenge, truth_playlists = _challenge_docs(picks, raw, track_ids, pool)
    sources = ", ".join(str(p) for p in slice_paths)
    write_challenge_set(
        out / "challenge_set.json",
        challenge,
        f"segue challenge set: {per_category} playlists in each of 10 categories, "
        f"seed {seed}, from {sources}",
    )
    write_truth(
        out / "truth.json",
        seed=seed,
        per_category=per_category,
        playlists=truth_playlists,
        artists=artist_keys,
        track_artist=dict(zip(track_ids, track_artist.tolist(), strict=True)),
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
                "tracks": [seed_track(tracks[p], p) for p in pick.seed_positions],
            }
        )
        challenge.append(entry)
        truth[str(pick.pid)] = {
            "category": pick.category.number,
            "seeds": [tracks[p]["track_uri"] for p in pick.seed_positions],
            "holdouts": [track_uri(track_ids[t]) for t in pick.held_out],
            "holdout_artist_uris": [
                ARTIST_PREFIX + a if (a := pool.track_artist_uri[t]) is not None else None
                for t in pick.held_out
            ],
            "holdout_artist_names": [pool.track_artist_name[t] for t in pick.held_out],
        }
    return challenge, truth
