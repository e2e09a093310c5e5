"""A tiny built home (snapshot + itemknn model) for the API, web app and browser tests, and a
real ``segue serve`` over one (:func:`serving`).

Four genre clusters of ten tracks by two artists each; every playlist draws from one cluster,
so collaborative models recommend within the seed's cluster. Everything is seeded.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import string
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from segue.models.registry import fit_model
from segue.snapshot.arrays import Snapshot

_B62 = string.digits + string.ascii_letters
CLUSTERS = ("chill", "rock", "rap", "country")
TRACKS_PER_CLUSTER = 10
#: The model the tests serve: a real, fast one.
MODEL = "itemknn"


def _ids(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(_B62) for _ in range(22)) for _ in range(n)]


def tiny_snapshot(seed: int = 7) -> Snapshot:
    rng = np.random.default_rng(seed)
    n_tracks = len(CLUSTERS) * TRACKS_PER_CLUSTER
    track_ids = _ids(n_tracks, seed)
    artist_ids = _ids(2 * len(CLUSTERS), seed + 1)
    cluster = np.repeat(np.arange(len(CLUSTERS)), TRACKS_PER_CLUSTER)
    artist_key = cluster * 2 + (np.arange(n_tracks) % 2)
    tracks = pd.DataFrame(
        {
            "track_id": track_ids,
            "name": [f"{CLUSTERS[c].title()} Song {i}" for i, c in enumerate(cluster)],
            "artist_key": artist_key,
            "artist_name": [f"{CLUSTERS[k // 2].title()} Artist {k % 2}" for k in artist_key],
            "album_name": [f"Album {i // 5}" for i in range(n_tracks)],
            "release_year": 1980 + (np.arange(n_tracks) % 40),
            "popularity": rng.integers(0, 100, n_tracks).astype(float),
            "danceability": 0.2 + 0.2 * cluster + rng.uniform(0, 0.1, n_tracks),
            "energy": rng.uniform(0, 1, n_tracks),
            "valence": rng.uniform(0, 1, n_tracks),
            "acousticness": rng.uniform(0, 1, n_tracks),
            "tempo": rng.uniform(70, 170, n_tracks),
            "loudness": rng.uniform(-20, -3, n_tracks),
        }
    )
    artists = pd.DataFrame(
        {
            "artist_key": np.arange(2 * len(CLUSTERS)),
            "artist_id": artist_ids,
            "name": [
                f"{CLUSTERS[k // 2].title()} Artist {k % 2}" for k in range(2 * len(CLUSTERS))
            ],
            "genres": [[CLUSTERS[k // 2]] for k in range(2 * len(CLUSTERS))],
        }
    )
    names, p_idx, t_idx = [], [], []
    for p in range(48):
        c = p % len(CLUSTERS)
        names.append(f"{CLUSTERS[c]} mix {p}")
        chosen = rng.choice(TRACKS_PER_CLUSTER, size=6, replace=False) + c * TRACKS_PER_CLUSTER
        p_idx.extend([p] * len(chosen))
        t_idx.extend(chosen.tolist())
    playlists = pd.DataFrame({"pid": np.arange(len(names)), "name": names})
    return Snapshot.from_frames(
        tracks, artists, playlists, rows=(np.asarray(p_idx), np.asarray(t_idx))
    )


def build_home(home: Path, models: tuple[str, ...] = (MODEL,)) -> Snapshot:
    """Save the tiny snapshot and fit ``models`` under ``home/artifacts``."""
    snap = tiny_snapshot()
    snap.save(home / "artifacts" / "snapshot")
    for name in models:
        params: dict[str, Any] = {"neighbors": 20, "num_threads": 1} if name == "itemknn" else {}
        fit_model(name, snap, root=home / "artifacts" / "models", **params)
    return snap


def free_port() -> int:
    """A TCP port of 127.0.0.1 free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(root: Path) -> dict[str, str]:
    """The environment of a server with no Spotify credentials and no segue settings anywhere
    (its HOME is ``root``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPOTIPY", "SEGUE_"))}
    env["HOME"] = str(root)
    return env


@contextlib.contextmanager
def serving(home: Path, root: Path, *, cwd: Path | None = None) -> Iterator[str]:
    """``segue --home HOME serve`` in a subprocess on a free port, with :func:`clean_env`
    (``root``) and ``cwd``: its base URL once ``/health`` answers. Stopped on exit (SIGTERM,
    then SIGKILL after 15 s)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "segue", "--home", str(home), "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=clean_env(root),
        cwd=cwd,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(proc, base)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def wait_healthy(proc: subprocess.Popen[bytes], base: str) -> None:
    """Wait (90 s at most) until the server ``proc`` at ``base`` answers ``/health`` with 200;
    fails with its stderr if it exits first."""
    deadline = time.monotonic() + 90
    while True:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < deadline, "the server did not start"
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
