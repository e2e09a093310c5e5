"""`segue fit` is all-or-nothing: the new snapshot and models are built beside the set in use
and switched in one step, so a fit killed, interrupted or failing anywhere leaves the previous
models answering as before; damaged artifacts are named with the command that rebuilds them;
a home with nothing to fit is refused."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from starlette.exceptions import StarletteDeprecationWarning
from typer.testing import CliRunner

from segue.catalog import Catalog
from segue.catalog.ingest import ingest_paths
from segue.cli import app
from segue.cli._registry import register_all
from segue.core import artifacts
from segue.fitting.build import build
from segue.service.engine import Service
from tests.conftest import make_playlists, write_slice

with warnings.catch_warnings():
    # Starlette asks for the httpx2 package in its TestClient; httpx works the same here.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

register_all(app)
runner = CliRunner()
MODELS = ("popularity", "itemknn")
QUIET: dict[str, Any] = {"log": lambda m: None}


def _ingest(home: Path, path: Path) -> None:
    with Catalog.open(home / "catalog.duckdb") as cat:
        ingest_paths(cat, [path], progress=False)


def _answers(home: Path, seeds: list[str]) -> dict[str, list[str]]:
    """What each model of ``MODELS`` recommends for ``seeds`` in ``home``."""
    service = Service(home, grow=False)
    return {
        m: [t.uri for t in service.recommend(seeds, n=8, model=m, explain=False).tracks]
        for m in MODELS
    }


def _cli(home: Path, *args: str) -> Any:
    return runner.invoke(app, ["--home", str(home), *args])


def _pointer(home: Path) -> str | None:
    path = home / "artifacts" / artifacts.POINTER
    return json.loads(path.read_text())["generation"] if path.exists() else None


def _sets(home: Path) -> list[str]:
    gens = home / "artifacts" / artifacts.GENERATIONS
    return sorted(p.name for p in gens.iterdir()) if gens.is_dir() else []


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A home fitted on one slice, with a second slice ingested since (so a new fit changes
    the snapshot), and what its models answered before."""
    root = tmp_path_factory.mktemp("fit")
    home = root / "home"
    first = make_playlists(120, seed=3)
    write_slice(root / "a" / "mpd.slice.0-119.json", first)
    write_slice(
        root / "b" / "mpd.slice.1000-1119.json", make_playlists(120, seed=4, start_pid=1000)
    )
    _ingest(home, root / "a")
    build(MODELS, home=home, **QUIET)
    seeds = [t["track_uri"] for t in first[0]["tracks"][:3]]
    answers = _answers(home, seeds)
    _ingest(home, root / "b")
    return {"home": home, "seeds": seeds, "answers": answers, "root": root}


@pytest.fixture
def home(base: dict[str, Any], tmp_path: Path) -> Path:
    copy = tmp_path / "home"
    shutil.copytree(base["home"], copy)
    return copy


# switching ------------------------------------------------------------------------------------
def test_a_fit_switches_to_a_whole_new_set_and_cleans_up(base: dict[str, Any], home: Path) -> None:
    before = _pointer(home)
    assert before is not None and _sets(home) == [before]
    build(MODELS, home=home, **QUIET)
    after = _pointer(home)
    assert after != before and _sets(home) == sorted([before, after])  # one previous kept
    snap_id = artifacts.snapshot_id_of(artifacts.current(home))
    for name in MODELS:
        manifest = json.loads(
            (artifacts.current(home).model_dir(name) / artifacts.MANIFEST).read_text()
        )
        assert manifest["snapshot_id"] == snap_id  # each model records its snapshot
    build(MODELS, home=home, **QUIET)
    assert before not in _sets(home) and len(_sets(home)) == 2


def test_fitting_one_model_keeps_the_others_when_the_catalog_is_unchanged(
    base: dict[str, Any], home: Path
) -> None:
    build(MODELS, home=home, **QUIET)
    gen = artifacts.current(home)
    said: list[str] = []
    build(["random"], home=home, log=said.append)
    new = artifacts.current(home)
    assert new.id != gen.id and set(new.built_models()) == {*MODELS, "random"}
    assert any("kept itemknn, popularity" in m for m in said)
    # carried as they were: the same files
    for name in MODELS:
        arrays = sorted(p.name for p in (gen.model_dir(name) / "arrays").iterdir())
        assert arrays and sorted(p.name for p in (new.model_dir(name) / "arrays").iterdir()) == (
            arrays
        )
        for file in arrays:
            assert (new.model_dir(name) / "arrays" / file).read_bytes() == (
                gen.model_dir(name) / "arrays" / file
            ).read_bytes()


def test_fitting_one_model_after_the_catalog_changed_refits_the_others(
    base: dict[str, Any], home: Path
) -> None:
    said: list[str] = []
    build(["random"], home=home, log=said.append)
    gen = artifacts.current(home)
    assert set(gen.built_models()) == {*MODELS, "random"}
    assert any(m.startswith("also fitting itemknn, popularity: fitted on an earlier") for m in said)
    assert all(artifacts.model_status(gen, n).ok for n in gen.built_models())
    Service(home).recommend(base["seeds"], model="itemknn")


def test_fit_only_leaves_the_others_out_and_says_they_are_stale(
    base: dict[str, Any], home: Path
) -> None:
    result = _cli(home, "fit", "-q", "--model", "random", "--only")
    assert result.exit_code == 0, result.output
    command = f"segue --home {home} fit --model itemknn --model popularity"
    assert (
        f"left out itemknn, popularity (fitted on the previous snapshot): rebuild with `{command}`"
        in result.stderr
    )
    lines = _cli(home, "models").stdout.splitlines()
    stale = next(line for line in lines if line.startswith("itemknn"))
    assert "stale: fitted on an earlier snapshot" in stale
    assert f"`segue --home {home} fit --model itemknn`" in stale
    assert next(line for line in lines if line.startswith("random")).endswith("ready")
    # never served from the other snapshot: refused with the same reason
    failed = _cli(home, "recommend", *base["seeds"], "--model", "itemknn")
    assert failed.exit_code == 1 and "not built" in failed.stderr
    # a full fit brings them back
    build(["random"], home=home, **QUIET)
    assert set(artifacts.current(home).built_models()) == {*MODELS, "random"}


def test_a_failing_model_switches_nothing(base: dict[str, Any], home: Path) -> None:
    before = _pointer(home)
    result = _cli(home, "fit", "-q", "--model", "popularity", "--model", "hybrid")
    # hybrid needs more than this tiny home has? Either way: all or nothing.
    if result.exit_code == 0:
        assert _pointer(home) != before
        return
    assert "nothing was switched" in result.stderr and "Traceback" not in result.output
    assert _pointer(home) == before
    assert _answers(home, base["seeds"]) == base["answers"]


# killed ---------------------------------------------------------------------------------------
_CHILD = """
import os, sys, time
import numpy as np
from segue.core import artifacts, mapped
from segue.fitting import build as build_module
point = sys.argv[1]

def pause():
    print(point, flush=True)
    time.sleep(120)

def wrap(owner, name, before=True, nth=1):
    real = getattr(owner, name)
    calls = []
    def wrapper(*args, **kwargs):
        calls.append(1)
        if before and len(calls) == nth:
            pause()
        got = real(*args, **kwargs)
        if not before and len(calls) == nth:
            pause()
        return got
    setattr(owner, name, wrapper)

if point == "snapshot written, not listed":
    wrap(artifacts, "sync_and_describe", nth=1)
elif point == "model written, not listed":
    wrap(artifacts, "sync_and_describe", nth=2)
elif point == "fitting":
    wrap(build_module, "save_model", nth=2)
elif point == "array half written":
    real_write = mapped.write_array
    def write_array(path, array):
        real_write(path, array)
        size = os.path.getsize(path)
        with open(path, "r+b") as fh:
            fh.truncate(size // 2)
        pause()
    mapped.write_array = write_array
elif point == "set renamed, pointer not switched":
    wrap(artifacts, "switch")
elif point == "switched, not cleaned up":
    wrap(artifacts, "remove_old_generations", nth=2)  # the first: at the start
from segue.cli import main
sys.argv = ["segue", "--home", sys.argv[2], "fit", "-q", *sys.argv[3:]]
main()
"""

POINTS = (
    "snapshot written, not listed",
    "model written, not listed",
    "fitting",
    "array half written",
    "set renamed, pointer not switched",
    "switched, not cleaned up",
)


def _fit_child(home: Path, point: str) -> subprocess.Popen[bytes]:
    models = [a for m in MODELS for a in ("--model", m)]
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, point, str(home), *models],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _check_after_kill(base: dict[str, Any], home: Path, before: str) -> bool:
    """The home holds the whole old set or the whole new set, and says so truthfully;
    the next fit removes what the killed one left. True when the old set is in use."""
    now = _pointer(home)
    verify = _cli(home, "models", "--verify")
    assert verify.exit_code == 0, verify.output
    assert "Traceback" not in verify.output
    for name in MODELS:
        assert f"{name:<11} ready" in verify.stdout
    if now == before:
        assert _answers(home, base["seeds"]) == base["answers"]
    else:  # switched: the new set, whole and consistent
        gen = artifacts.current(home)
        assert gen.id == now and all(artifacts.model_status(gen, n, deep=True).ok for n in MODELS)
        _answers(home, base["seeds"])
    build(MODELS, home=home, **QUIET)
    left = [n for n in os.listdir(home / "artifacts" / "generations") if n.startswith(".")]
    # kept: the set in use and the one before it; a set never switched to is gone
    assert left == [] and _sets(home) == sorted({now, _pointer(home)})
    assert not list((home / "artifacts").glob(".*.tmp"))
    return now == before


@pytest.mark.parametrize("point", POINTS)
def test_fit_killed_at_each_step_keeps_a_whole_set(
    base: dict[str, Any], home: Path, point: str
) -> None:
    before = _pointer(home)
    assert before is not None
    with _fit_child(home, point) as proc:
        assert proc.stdout is not None
        said = proc.stdout.readline().decode().strip()
        assert said == point, proc.communicate(timeout=60)[1].decode()[-2000:]
        proc.kill()  # SIGKILL: no cleanup
        proc.communicate(timeout=60)
    kept_old = _check_after_kill(base, home, before)
    assert kept_old == (point != "switched, not cleaned up")


@pytest.mark.parametrize("delay", [0.5, 1.2, 2.0, 2.8, 3.6, 5.0])
def test_fit_killed_after_varied_delays_keeps_a_whole_set(
    base: dict[str, Any], home: Path, delay: float
) -> None:
    before = _pointer(home)
    assert before is not None
    models = [a for m in MODELS for a in ("--model", m)]
    with subprocess.Popen(
        [sys.executable, "-m", "segue", "--home", str(home), "fit", "-q", *models],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as proc:
        time.sleep(delay)
        proc.kill()
        proc.communicate(timeout=60)
    _check_after_kill(base, home, before)


# interrupted ----------------------------------------------------------------------------------
def test_ctrl_c_during_fit_keeps_the_models_in_use_and_says_so(
    base: dict[str, Any], home: Path
) -> None:
    before = _pointer(home)
    with _fit_child(home, "fitting") as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().decode().strip() == "fitting"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    text = err.decode()
    assert proc.returncode == 130, text
    assert "Traceback" not in text
    lines = text.strip().splitlines()
    assert lines[-1].startswith("fit interrupted: nothing was switched; the models in use are kept")
    assert "itemknn, popularity" in lines[-1]
    assert f"`segue --home {home} fit --model popularity --model itemknn`" in lines[-1]
    assert _pointer(home) == before
    assert [n for n in os.listdir(home / "artifacts" / "generations") if n.startswith(".")] == []
    assert _answers(home, base["seeds"]) == base["answers"]


# damaged --------------------------------------------------------------------------------------
def _damage(home: Path, how: str) -> str:
    """Damage one file of the set in use; returns the file's name as messages show it."""
    gen = artifacts.current(home)
    targets = {
        "cut similarity_data.npy": gen.model_dir("itemknn") / "arrays" / "similarity_data.npy",
        "cut model manifest": gen.model_dir("itemknn") / artifacts.MANIFEST,
        "missing model.json": gen.model_dir("itemknn") / "model.json",
        "changed similarity_indices.npy": (
            gen.model_dir("itemknn") / "arrays" / "similarity_indices.npy"
        ),
        "cut tracks.arrow": gen.snapshot_dir / "tracks.arrow",
        "cut snapshot manifest": gen.snapshot_dir / artifacts.MANIFEST,
    }
    path = targets[how]
    if how.startswith("cut"):
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif how.startswith("missing"):
        path.unlink()
    else:  # same size, other bytes: in the array's header, so that loading it fails too (a
        # changed byte among an array's values is found by checksums: `segue models --verify`)
        data = bytearray(path.read_bytes())
        data[12 if path.suffix == ".npy" else len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    return path.name


@pytest.mark.parametrize(
    "how",
    [
        "cut similarity_data.npy",
        "cut model manifest",
        "changed similarity_indices.npy",
        "cut tracks.arrow",
        "cut snapshot manifest",
    ],
)
def test_a_damaged_artifact_is_named_with_its_rebuild_command_everywhere(
    base: dict[str, Any], home: Path, how: str
) -> None:
    from segue.api.app import create_app

    name = _damage(home, how)
    snapshot = "snapshot" in how or "tracks" in how
    command = f"segue --home {home} fit" + ("" if snapshot else " --model itemknn")
    deep = how.startswith("changed")
    # segue models: cheap checks find cut and missing files; --verify finds changed bytes
    result = _cli(home, "models", *(["--verify"] if deep else []))
    line = next(x for x in result.stdout.splitlines() if x.startswith("itemknn"))
    assert name in line and f"`{command}`" in line and "unavailable" in line, line
    if not snapshot:
        assert next(x for x in result.stdout.splitlines() if x.startswith("popularity")).endswith(
            "ready"
        )
    # recommend: one line naming the file, no traceback
    rec = _cli(home, "recommend", *base["seeds"], "--model", "itemknn")
    assert rec.exit_code == 1 and "Traceback" not in rec.output
    assert rec.stderr.count("\n") == 1 and name in rec.stderr and command in rec.stderr
    # the API: /models says why, /recommend answers 503 with the file's name, /health too
    with TestClient(create_app(Service(home, grow=False, allow_files=False))) as client:
        models = {m["name"]: m for m in client.get("/models").json()}
        if not deep:
            assert not models["itemknn"]["available"] and name in models["itemknn"]["reason"]
        reply = client.post("/recommend", json={"seeds": base["seeds"], "model": "itemknn"})
        assert reply.status_code == 503 and name in reply.json()["detail"]
        health = client.get("/health").json()
        if snapshot:
            assert health["status"] == "not ready" and name in health["detail"]
    # the app shows the reason beside the model
    if not deep:
        from segue.webapp import logic

        option = next(o for o in logic.model_options(Service(home)) if o.name == "itemknn")
        assert not option.available and name in option.reason


def test_a_missing_model_file_is_named(base: dict[str, Any], home: Path) -> None:
    gen = artifacts.current(home)
    (gen.model_dir("itemknn") / "arrays" / "prior.npy").unlink()
    line = next(x for x in _cli(home, "models").stdout.splitlines() if x.startswith("itemknn"))
    assert (
        "arrays/prior.npy is missing" in line and f"segue --home {home} fit --model itemknn" in line
    )


def test_a_model_of_another_snapshot_is_refused(base: dict[str, Any], home: Path) -> None:
    """A model folder from another set (a mixed set) is never served."""
    old = artifacts.current(home)
    build(["popularity"], home=home, only=True, **QUIET)
    new = artifacts.current(home)
    shutil.copytree(old.model_dir("itemknn"), new.model_dir("itemknn"))
    line = next(x for x in _cli(home, "models").stdout.splitlines() if x.startswith("itemknn"))
    assert "fitted on another snapshot" in line
    rec = _cli(home, "recommend", *base["seeds"], "--model", "itemknn")
    assert rec.exit_code == 1 and "fitted on another snapshot" in rec.stderr


def test_a_damaged_pointer_is_named(base: dict[str, Any], home: Path) -> None:
    (home / "artifacts" / artifacts.POINTER).write_text('{"generation": ')
    out = _cli(home, "models").stdout
    assert "current.json is not readable JSON" in out and f"segue --home {home} fit" in out
    # the next fit repairs it
    build(MODELS, home=home, **QUIET)
    assert "itemknn     ready" in _cli(home, "models").stdout


# nothing to fit -------------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["hybrid", "random", "popularity"])
def test_fit_on_an_empty_home_refuses_in_one_line(tmp_path: Path, model: str) -> None:
    home = tmp_path / "empty"
    result = _cli(home, "fit", "--model", model)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert f"segue --home {home} ingest" in result.stderr and "--demo" in result.stderr
    assert not (home / "artifacts").exists()


def test_recommend_on_an_empty_home_names_ingest_before_fit(tmp_path: Path) -> None:
    # `segue fit` alone would only refuse there: the hint starts from the first step.
    home = tmp_path / "empty"
    result = _cli(home, "recommend", "Taylor Swift")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"segue --home {home} ingest PATH..." in result.stderr
    assert f"segue --home {home} fit" in result.stderr and "--demo" in result.stderr
    assert result.stderr.index("ingest") < result.stderr.index(" fit")


def test_fit_on_a_catalog_without_tracks_refuses(tmp_path: Path) -> None:
    home = tmp_path / "h"
    Catalog.open(home / "catalog.duckdb").close()
    result = _cli(home, "fit", "--model", "random")
    assert result.exit_code == 1 and "has no tracks" in result.stderr
    assert "ingest" in result.stderr and _pointer(home) is None


def test_a_home_of_an_older_layout_is_read_and_replaced_by_the_next_fit(tmp_path: Path) -> None:
    from tests._serving_home import MODEL, build_home

    home = tmp_path / "old"
    build_home(home)
    assert artifacts.current(home).id is None
    assert f"{MODEL:<11}" in _cli(home, "models").stdout
    write_slice(tmp_path / "s" / "mpd.slice.0-59.json", make_playlists(60, seed=9))
    _ingest(home, tmp_path / "s")
    build(["popularity"], home=home, **QUIET)
    assert not (home / "artifacts" / "snapshot").exists()
    assert not (home / "artifacts" / "models").exists()
    assert artifacts.current(home).id is not None


def test_two_fits_at_once_are_refused(base: dict[str, Any], home: Path) -> None:
    with artifacts.fit_lock(home):
        result = _cli(home, "fit", "--model", "random")
    assert result.exit_code == 1 and "another `segue fit` is building" in result.stderr


# progress -------------------------------------------------------------------------------------
def test_the_hybrid_reports_its_phases() -> None:
    from segue.models.base import reporting_phases
    from segue.models.hybrid import HybridRecommender
    from tests._serving_home import tiny_snapshot

    phases: list[str] = []
    with reporting_phases(phases.append):
        HybridRecommender(min_ranker_playlists=4, ranker_playlists=40).fit(tiny_snapshot())
    assert phases[0] == "popularity and names"
    assert any(p.endswith("item-item") for p in phases) and any(p.endswith("ALS") for p in phases)


def test_fit_shows_each_step_on_a_terminal(base: dict[str, Any], home: Path) -> None:
    import io

    from rich.console import Console

    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100)
    said: list[str] = []
    build(MODELS, home=home, log=said.append, console=console)
    shown = screen.getvalue()
    assert "snapshot: reading the catalog" in shown or "fitting itemknn" in shown
    assert said[0].startswith("snapshot: ") and said[-1].startswith("fitted itemknn")
    assert np.isfinite(len(said))


def test_a_server_keeps_serving_the_set_it_loaded_while_fits_switch(
    base: dict[str, Any], home: Path
) -> None:
    service = Service(home, grow=False)
    before = [t.uri for t in service.recommend(base["seeds"], n=8, model="popularity").tracks]
    assert before == base["answers"]["popularity"]
    build(MODELS, home=home, **QUIET)  # the catalog changed: a new set with more tracks
    # the loaded set still answers, and a model not loaded yet comes from the same set
    assert [
        t.uri for t in service.recommend(base["seeds"], n=8, model="popularity").tracks
    ] == before
    assert [t.uri for t in service.recommend(base["seeds"], n=8, model="itemknn").tracks] == base[
        "answers"
    ]["itemknn"]
    build(MODELS, home=home, **QUIET)
    build(["random"], home=home, **QUIET)  # the set it loaded is removed now
    info = {m["name"]: m for m in service.models()}
    assert info["itemknn"]["available"] and info["popularity"]["available"]
    assert "restart the server" in info["random"]["reason"]
    with pytest.raises(Exception, match="restart the server"):
        service.model("random")


def test_a_manifest_edited_by_hand_is_reported_not_raised(base: dict[str, Any], home: Path) -> None:
    path = artifacts.current(home).model_dir("itemknn") / artifacts.MANIFEST
    manifest = json.loads(path.read_text())
    manifest["files"]["arrays/prior.npy"] = {"size": "many"}
    path.write_text(json.dumps(manifest))
    line = next(x for x in _cli(home, "models").stdout.splitlines() if x.startswith("itemknn"))
    assert "lists arrays/prior.npy without its size" in line
    size = (path.parent / "arrays" / "prior.npy").stat().st_size
    manifest["files"]["arrays/prior.npy"] = {"size": size}
    path.write_text(json.dumps(manifest))  # no checksum listed: the size is checked alone
    assert _cli(home, "models", "--verify").exit_code == 0
