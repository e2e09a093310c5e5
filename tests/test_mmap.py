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
    # the orders derived from the priors are saved too, so processes share them
    pop = load_model("popularity", snap, root=saved[1])
    assert mapped.is_mapped(knn.order_) and mapped.is_mapped(pop._ranking)  # type: ignore[attr-defined]


def test_a_model_saved_without_its_order_derives_it(
    saved: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    monkeypatch.delenv(mapped.ENV, raising=False)
    snap = Snapshot.load(saved[0])
    want = _answers(saved[1], snap)
    models = tmp_path / "models"
    shutil.copytree(saved[1], models)
    for name, key in (("itemknn", "order"), ("popularity", "ranking")):
        (models / name / "arrays" / f"{key}.npy").unlink()
        (models / name / "manifest.json").unlink()  # as a model saved before it was listed
    knn = load_model("itemknn", snap, root=models)
    assert not mapped.is_mapped(knn.order_)  # type: ignore[attr-defined]
    assert _answers(models, snap) == want


def test_track_ids_are_looked_up_in_the_saved_mapped_keys(
    saved: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    monkeypatch.delenv(mapped.ENV, raising=False)
    snap = Snapshot.load(saved[0])
    keys, order = snap._positions()
    assert mapped.is_mapped(keys) and mapped.is_mapped(order)
    ids = snap.tracks["track_id"].tolist()
    asked = [ids[7], "nope", ids[0], ids[-1], ids[7] + "x"]
    want = [7, -1, 0, len(ids) - 1, -1]
    assert snap.lookup(asked).tolist() == want
    # a snapshot saved before the keys were: they are derived again, with the same answers
    older = tmp_path / "snapshot"
    shutil.copytree(saved[0], older)
    shutil.rmtree(older / "track_keys")
    manifest = json.loads((older / "manifest.json").read_text())
    manifest["files"] = {
        k: v for k, v in manifest["files"].items() if not k.startswith("track_keys/")
    }
    (older / "manifest.json").write_text(json.dumps(manifest))
    again = Snapshot.load(older)
    assert again.lookup(asked).tolist() == want
    assert not mapped.is_mapped(again._positions()[0])


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


def _mapped_from(address: int, path: Path) -> bool:
    """True when ``address`` lies in a mapping of the file ``path`` (``/proc/self/maps``)."""
    real = str(path.resolve())
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5] == real:
            start, end = (int(x, 16) for x in fields[0].split("-"))
            if start <= address < end:
                return True
    return False


def test_snapshot_tables_are_mapped_from_their_files_and_equal_to_the_saved_ones(
    saved: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from segue.snapshot.arrays import content_id

    monkeypatch.delenv(mapped.ENV, raising=False)
    snap = Snapshot.load(saved[0])
    fresh = cluster_snapshot()
    assert snap.tracks.equals(fresh.tracks) and snap.playlists.equals(fresh.playlists)
    assert snap.tracks.dtypes.equals(fresh.tracks.dtypes)
    assert content_id(snap) == content_id(fresh)
    tracks = saved[0] / f"tracks{mapped.TABLE_SUFFIX}"
    for column in ("popularity", "danceability", "playlist_count"):
        values = snap.tracks[column].to_numpy()
        assert _mapped_from(values.ctypes.data, tracks), column
        assert not values.flags.writeable
    ids = snap.tracks["track_id"].array._pa_array.chunk(0)  # type: ignore[attr-defined]
    assert _mapped_from(ids.buffers()[2].address, tracks)  # the strings' bytes
    names = snap.playlists["name"].array._pa_array.chunk(0)  # type: ignore[attr-defined]
    assert _mapped_from(names.buffers()[2].address, saved[0] / "playlists.arrow")
    # a new column or a changed value is the frame's own, never a write into the file
    changed = snap.tracks.copy(deep=False)
    changed.loc[0, "playlist_count"] = -1
    assert snap.tracks.loc[0, "playlist_count"] == fresh.tracks.loc[0, "playlist_count"] > 0
    assert changed.loc[0, "playlist_count"] == -1
    # the song keys come saved and mapped, equal to what the tracks give
    from segue.snapshot.versions import song_keys

    assert np.array_equal(snap.song_keys(), song_keys(fresh.tracks))
    assert mapped.is_mapped(snap.song_keys()) and not mapped.is_mapped(fresh.song_keys())
    # the normalised names too: mapped from names/, equal to what the tables give
    saved_names, computed = snap.names(), fresh.names()
    assert saved_names.titles.equals(computed.titles)
    assert saved_names.text.equals(computed.text)
    assert saved_names.artists.equals(computed.artists)
    assert saved_names.playlists.equals(computed.playlists)
    names_file = saved[0] / "names" / "tracks.arrow"  # (the offsets: these titles are short)
    assert _mapped_from(saved_names.text.buffers()[1].address, names_file)
    title_chunk = saved_names.titles.array._pa_array.chunk(0)  # type: ignore[attr-defined]
    assert _mapped_from(title_chunk.buffers()[1].address, names_file)
    # SEGUE_ARRAYS=copy: the same tables in the process's own memory
    monkeypatch.setenv(mapped.ENV, "copy")
    copied = Snapshot.load(saved[0])
    assert copied.tracks.equals(fresh.tracks)
    values = copied.tracks["popularity"].to_numpy()
    assert not _mapped_from(values.ctypes.data, tracks)
