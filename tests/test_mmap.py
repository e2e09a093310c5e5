"""Model arrays and the snapshot's matrix on disk as .npy files, mapped read-only on load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from segue.core import mapped
from segue.core.artifacts import ArtifactError
from segue.models.registry import load_model, save_model
from segue.snapshot.arrays import Snapshot
from tests.test_itemknn import cluster_snapshot

MODELS = ("popularity", "itemknn", "als")


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A saved snapshot and its fitted models: (snapshot folder, models folder)."""
    from segue.models.registry import model_class

    root = tmp_path_factory.mktemp("mapped")
    snap = cluster_snapshot()
    snap.save(root / "snapshot")
    for name in MODELS:
        save_model(model_class(name)().fit(snap), name, root=root / "models")
    return root / "snapshot", root / "models"


def _answers(models: Path, snap: Snapshot) -> dict[str, list[list[int]]]:
    out = {}
    for name in MODELS:
        model = load_model(name, snap, root=models)
        out[name] = [model.recommend(np.array(s), 10)[0].tolist() for s in ([0, 1, 2], [25], [])]
    return out


def test_arrays_load_mapped_and_read_only(
    saved: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(mapped.ENV, raising=False)
    snap = Snapshot.load(saved[0])
    m = snap.interactions
    assert all(mapped.is_mapped(a) for a in (m.data, m.indices, m.indptr))
    with pytest.raises(ValueError, match="read-only"):
        m.data[0] = 2.0
    knn = load_model("itemknn", snap, root=saved[1])
    sim = knn.similarity_  # type: ignore[attr-defined]
    assert mapped.is_mapped(sim.data) and mapped.is_mapped(knn.prior_)  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="read-only"):
        knn.prior_[0] = 1.0  # type: ignore[attr-defined]


def test_copy_mode_reads_into_memory_and_answers_the_same(
    saved: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(mapped.ENV, raising=False)
    mapped_snap = Snapshot.load(saved[0])
    mapped_answers = _answers(saved[1], mapped_snap)
    monkeypatch.setenv(mapped.ENV, "copy")
    snap = Snapshot.load(saved[0])
    assert not mapped.is_mapped(snap.interactions.data)
    snap.interactions.data[0] = snap.interactions.data[0]  # its own memory: writable
    assert _answers(saved[1], snap) == mapped_answers
    # and the same as the models before they were saved
    fresh = cluster_snapshot()
    from segue.models.registry import model_class

    for name in MODELS:
        model = model_class(name)().fit(fresh)
        got = [model.recommend(np.array(s), 10)[0].tolist() for s in ([0, 1, 2], [25], [])]
        assert got == mapped_answers[name]


def test_an_unknown_arrays_mode_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(mapped.ENV, "shared")
    with pytest.raises(mapped.ArraysModeError, match="SEGUE_ARRAYS must be `map` or `copy`"):
        mapped.mode()


def test_a_model_of_the_older_format_is_refused_with_the_rebuild_command(
    saved: tuple[Path, Path], tmp_path: Path
) -> None:
    import shutil

    models = tmp_path / "models"
    shutil.copytree(saved[1], models)
    meta_path = models / "itemknn" / "model.json"
    meta = json.loads(meta_path.read_text())
    del meta["format_version"]  # as an older segue wrote it (its arrays in state.npz)
    meta_path.write_text(json.dumps(meta))
    (models / "itemknn" / "manifest.json").unlink()
    with pytest.raises(ArtifactError) as info:
        load_model("itemknn", Snapshot.load(saved[0]), root=models)
    text = str(info.value)
    assert "older format" in text and "reads format 2" in text and "segue" in text
    assert "fit`" in text and "Traceback" not in text


def test_empty_and_text_arrays_round_trip(tmp_path: Path) -> None:
    arrays = {"empty": np.empty(0, dtype=np.float32), "names": np.asarray(["a", "bc"])}
    mapped.write_arrays(tmp_path, arrays)
    back = mapped.read_arrays(tmp_path, "map")
    assert back["empty"].shape == (0,) and back["names"].tolist() == ["a", "bc"]
    assert not list(tmp_path.glob(".*.tmp"))  # written in place by rename
    with pytest.raises(TypeError, match="without pickle"):
        mapped.write_array(tmp_path / "x.npy", np.asarray([object()]))
