from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from segue.catalog import Catalog
from segue.catalog.ingest import ingest_paths
from segue.core.errors import NotFittedError
from segue.snapshot.arrays import Snapshot
from segue.snapshot.from_catalog import build_snapshot
from tests.conftest import make_playlists, write_slice

REFERENCE = Path(__file__).parent / "data" / "snapshot-v2"
#: A snapshot saved by a segue of format 1 (its matrix in one ``interactions.npz``).
OLD_FORMAT = Path(__file__).parent / "data" / "snapshot-v1"


def test_build_from_catalog_matches_the_rows(tmp_path: Path) -> None:
    pls = make_playlists(12, seed=3)
    with Catalog.open(tmp_path / "c.duckdb") as cat:
        ingest_paths(cat, [write_slice(tmp_path / "s.json", pls)], progress=False)
        snap = build_snapshot(cat)
    assert snap.n_playlists == 12
    assert list(snap.playlists["pid"]) == sorted(p["pid"] for p in pls)
    assert list(snap.tracks["track_id"]) == sorted(snap.tracks["track_id"])
    for p_idx, pl in enumerate(sorted(pls, key=lambda p: p["pid"])):
        got = {snap.tracks["track_id"][i] for i in snap.interactions[p_idx].indices}
        assert got == {t["track_uri"].rsplit(":", 1)[1] for t in pl["tracks"]}
    assert snap.interactions.dtype == np.float32
    counts = np.asarray(snap.interactions.sum(axis=0)).ravel()
    assert (snap.tracks["playlist_count"].to_numpy() == counts).all()
    idx, unknown = snap.known_indices(
        [snap.tracks["track_id"][3], "Z" * 22, snap.tracks["track_id"][3]]
    )
    assert idx.tolist() == [3] and unknown == ["Z" * 22]


def test_save_load_round_trip(tmp_path: Path) -> None:
    snap = Snapshot.load(REFERENCE)
    snap.save(tmp_path / "s")
    again = Snapshot.load(tmp_path / "s")
    assert (again.interactions != snap.interactions).nnz == 0
    assert again.tracks.equals(snap.tracks)
    assert again.artists["genres"].tolist() == snap.artists["genres"].tolist()
    assert not list((tmp_path / "s").glob("*.pkl"))


def test_reference_artifact_still_loads() -> None:
    """A saved snapshot of format 2: a change of the on-disk format must fail here."""
    snap = Snapshot.load(REFERENCE)
    manifest = json.loads((REFERENCE / "manifest.json").read_text())
    assert manifest["format_version"] == 2
    assert snap.interactions.shape == (3, 5) and snap.interactions.nnz == 7
    assert snap.tracks["name"].tolist() == ["a", "b", "c", "d", "e"]
    assert snap.artists.loc[1, "genres"] == ["indie pop", "dream pop"]
    assert snap.track_index("t" * 21 + "2") == 2


def test_snapshot_of_the_older_format_is_refused_with_the_command_that_rebuilds_it() -> None:
    with pytest.raises(NotFittedError) as info:
        Snapshot.load(OLD_FORMAT)
    text = str(info.value)
    assert "format 1" in text and "reads format 2" in text and "`segue fit`" in text


def test_missing_snapshot_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(NotFittedError, match="run `segue fit`"):
        Snapshot.load(tmp_path)


def test_missing_snapshot_names_the_home_in_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shlex

    monkeypatch.delenv("SEGUE_HOME", raising=False)
    home = tmp_path / "my home"
    with pytest.raises(NotFittedError) as info:
        Snapshot.load(home / "artifacts" / "snapshot")
    assert f"`segue --home {shlex.quote(str(home))} fit`" in str(info.value)
    assert "--demo" in str(info.value)
