"""Built artifacts of a home: the snapshot and the fitted models, switched as one set.

Layout under ``HOME/artifacts``::

    current.json                 {"generation": "<id>"}: the set in use (replaced in one step)
    generations/<id>/            one complete set
        generation.json          snapshot id, models, stale models, when it was built
        snapshot/                Snapshot.save (its manifest.json lists its files)
        models/<name>/           a model's own files + manifest.json (snapshot id, files)
    generations/.building-<id>/  a set being built by ``segue fit`` (never read)
    fit.lock                     held by a running ``segue fit``

``segue fit`` builds a new generation beside the one in use, writes every file to disk
(fsync), renames the folder into place and then replaces ``current.json`` (write a temporary
file, fsync, ``os.replace``): that replacement is the one step that switches. Killed before it,
the previous set is still the one in use; after it, the new one is. Folders no pointer names
are removed by the next fit.

A home without ``current.json`` (made by an older segue, or written directly by tools and
tests) keeps its set in ``artifacts/snapshot`` and ``artifacts/models``: it is read as it is.

Each file written is listed in its folder's ``manifest.json`` with its size and CRC-32, so a
damaged set is found cheaply (sizes: a truncated or missing file) or thoroughly (checksums),
and every problem is reported as one line naming the file and the command that rebuilds it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segue.core.errors import NotFittedError, SegueError
from segue.core.home import ARTIFACTS_DIR as ARTIFACTS
from segue.core.home import Home

POINTER = "current.json"
GENERATIONS = "generations"
BUILDING = ".building-"
MANIFEST = "manifest.json"
GENERATION_MANIFEST = "generation.json"
LOCK = "fit.lock"
#: Keep the set in use before the last switch (the pointer names it): a server started before
#: the last fit keeps its snapshot in memory and can still load a model of its set.
KEEP_PREVIOUS = True


class ArtifactError(NotFittedError):
    """A built artifact is damaged, missing a file, or inconsistent with the snapshot."""


class FitBusyError(SegueError):
    """Another ``segue fit`` is building artifacts in this home."""


# paths and commands -----------------------------------------------------------------------
def artifacts_root(home: Path) -> Path:
    return Path(home) / ARTIFACTS


def home_of(path: Path) -> Path | None:
    """The home holding an artifact path (the parent of its ``artifacts`` folder), if any."""
    for parent in Path(path).parents:
        if parent.name == ARTIFACTS:
            return parent.parent
    return None


def home_option(home: Home | Path | None) -> str:
    """``--home HOME `` for a command about ``home``, or ``""`` when ``segue`` without it
    would use the same home (``SEGUE_HOME`` or the platform default)."""
    return "" if home is None else Home.of(home).option()


def fit_command(home: Path | None, models: list[str] | tuple[str, ...] = ()) -> str:
    """The command that rebuilds ``models`` (all when empty) of ``home``, as a user types it."""
    return f"segue {home_option(home)}fit" + "".join(f" --model {name}" for name in models)


def shown(path: Path, home: Path | None) -> str:
    """``path`` as messages show it: relative to the home when inside it."""
    if home is not None:
        with contextlib.suppress(ValueError):
            return str(Path(path).relative_to(home))
    return str(path)


# files: write, sync, describe, verify -----------------------------------------------------
def _fsync_dir(path: Path) -> None:
    # Directories can be opened and synced on POSIX only; elsewhere rename is what we have.
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _crc32(fh: Any) -> str:
    # CRC-32 finds damage (cut, changed or zeroed bytes) at about three times the speed of
    # SHA-256 here; nothing in a home needs a hash that resists forgery.
    value = 0
    for chunk in iter(lambda: fh.read(1 << 22), b""):
        value = zlib.crc32(chunk, value)
    return f"{value:08x}"


def sync_and_describe(directory: Path, *, skip: tuple[str, ...] = (MANIFEST,)) -> dict[str, Any]:
    """Flush every file under ``directory`` to disk and return ``{relative path: {"size",
    "crc32"}}`` (the file is read once for the checksum). Folders are synced too."""
    directory = Path(directory)
    files: dict[str, Any] = {}
    for root, dirs, names in os.walk(directory):
        dirs.sort()
        for name in sorted(names):
            path = Path(root) / name
            rel = path.relative_to(directory).as_posix()
            if rel in skip:
                continue
            with open(path, "rb+") as fh:
                os.fsync(fh.fileno())
                crc = _crc32(fh)
                size = fh.tell()
            files[rel] = {"size": size, "crc32": crc}
        _fsync_dir(Path(root))
    return files


def write_json(path: Path, data: Any) -> None:
    """Write JSON to ``path`` in one step: a temporary file, fsync, rename, sync the folder."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, default=str)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def read_json(path: Path, what: str, rebuild: str, home: Path | None) -> dict[str, Any]:
    """The JSON object in ``path``; a missing, unreadable or cut file is an ArtifactError
    naming it and the command that rebuilds it."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(
            f"{what} is missing its file {shown(path, home)}: rebuild it with `{rebuild}`"
        ) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ArtifactError(
            f"{what} is damaged: {shown(path, home)} is not readable JSON ({_short(exc)}): "
            f"rebuild it with `{rebuild}`"
        ) from None
    if not isinstance(data, dict):
        raise ArtifactError(
            f"{what} is damaged: {shown(path, home)} is not a JSON object: rebuild it with `{rebuild}`"
        )
    return data


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


def file_problem(directory: Path, files: dict[str, Any], *, deep: bool = False) -> str | None:
    """The first problem with the files a manifest lists: missing, another size (cut short),
    or (``deep``) another checksum. ``None`` when all match."""
    if not isinstance(files, dict):
        return f"{MANIFEST} has no file list"
    for rel, want in files.items():
        path = Path(directory) / rel
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return f"{rel} is missing"
        except OSError as exc:
            return f"{rel} cannot be read ({_short(exc)})"
        try:
            expected = int(want["size"])
        except (KeyError, TypeError, ValueError):
            return f"{MANIFEST} lists {rel} without its size"
        if size != expected:
            cut = "cut short" if 0 <= size < expected else "of another size"
            return f"{rel} is {cut} ({size:,} bytes, {expected:,} written)"
    if deep:
        for rel, want in files.items():
            if "crc32" not in want:  # listed without a checksum this segue knows: size only
                continue
            with open(Path(directory) / rel, "rb") as fh:
                crc = _crc32(fh)
            if crc != want["crc32"]:
                return f"{rel} does not match its checksum (changed after it was written)"
    return None


# generations ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Generation:
    """One set of artifacts: ``root`` holds ``snapshot/`` and ``models/``.

    ``id`` is ``None`` for a home without ``current.json`` (the set sits in ``artifacts/``).
    """

    home: Path
    root: Path
    id: str | None
    info: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def snapshot_dir(self) -> Path:
        return self.root / "snapshot"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    def model_dir(self, name: str) -> Path:
        return self.models_dir / name

    @property
    def exists(self) -> bool:
        return self.id is None or self.root.is_dir()

    def built_models(self) -> list[str]:
        """Names of the model folders in this set (built, whether loadable or not)."""
        if not self.models_dir.is_dir():
            return []
        return sorted(
            p.name
            for p in self.models_dir.iterdir()
            if p.is_dir() and not p.name.startswith(".") and (p / "model.json").exists()
        )

    @property
    def stale(self) -> dict[str, str]:
        """Models left out of this set because their snapshot changed (name -> why)."""
        got = self.info.get("stale") or {}
        return {str(k): str(v) for k, v in got.items()} if isinstance(got, dict) else {}

    def describe(self) -> str:
        """A short description for messages: when it was built and its models."""
        names = self.built_models()
        when = self.info.get("created_at")
        head = f"the set built {when}" if when else "the set in use"
        return f"{head} ({', '.join(names) if names else 'no models'})"


def current(home: Path) -> Generation:
    """The set of artifacts in use in ``home`` (raises ArtifactError when the pointer is
    damaged or names a set that is gone)."""
    home = Path(home)
    root = artifacts_root(home)
    pointer = root / POINTER
    if not pointer.exists():
        return Generation(home=home, root=root, id=None)
    rebuild = fit_command(home)
    data = read_json(pointer, "the artifacts pointer", rebuild, home)
    gen_id = data.get("generation")
    if not isinstance(gen_id, str) or not gen_id or "/" in gen_id or gen_id.startswith("."):
        raise ArtifactError(
            f"the artifacts pointer {shown(pointer, home)} names no set: rebuild with `{rebuild}`"
        )
    gen_root = root / GENERATIONS / gen_id
    if not gen_root.is_dir():
        raise ArtifactError(
            f"the artifacts pointer {shown(pointer, home)} names {gen_id}, which is gone: "
            f"rebuild with `{rebuild}`"
        )
    info = read_json(gen_root / GENERATION_MANIFEST, "the set of artifacts", rebuild, home)
    return Generation(home=home, root=gen_root, id=gen_id, info=info)


def current_or_none(home: Path) -> Generation | None:
    try:
        return current(home)
    except ArtifactError:
        return None


# status -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Status:
    """Whether an artifact is there (``built``) and usable (``ok``), and why not."""

    built: bool
    ok: bool
    reason: str = ""


def snapshot_status(gen: Generation, *, deep: bool = False) -> Status:
    """Cheap check of the snapshot: manifest readable, every file there at its size
    (``deep``: and its checksum)."""
    rebuild = fit_command(gen.home)
    manifest_path = gen.snapshot_dir / MANIFEST
    if not manifest_path.exists():
        return Status(False, False, f"no snapshot yet: run `{rebuild}`")
    try:
        manifest = read_json(manifest_path, "the snapshot", rebuild, gen.home)
    except ArtifactError as exc:
        return Status(True, False, str(exc))
    files = manifest.get("files")
    if files is None:  # written by an older segue: nothing listed to check
        return Status(True, True)
    problem = file_problem(gen.snapshot_dir, files, deep=deep)
    if problem:
        return Status(
            True,
            False,
            f"the snapshot is damaged: {shown(gen.snapshot_dir, gen.home)}/{problem}: "
            f"rebuild it with `{rebuild}`",
        )
    return Status(True, True)


def snapshot_id_of(gen: Generation) -> str | None:
    with contextlib.suppress(OSError, ValueError):
        data = json.loads((gen.snapshot_dir / MANIFEST).read_text(encoding="utf-8"))
        if isinstance(data, dict) and isinstance(data.get("snapshot_id"), str):
            return str(data["snapshot_id"])
    return None


def model_status(gen: Generation, name: str, *, deep: bool = False) -> Status:
    """Cheap check of model ``name`` in ``gen``: built, its manifest readable, its files there
    at their sizes (``deep``: checksums), fitted on this set's snapshot."""
    rebuild = fit_command(gen.home, [name])
    directory = gen.model_dir(name)
    if not (directory / "model.json").exists():
        why = gen.stale.get(name)
        if why:
            return Status(False, False, f"{why}: run `{rebuild}`")
        return Status(False, False, "")
    snap = snapshot_status(gen, deep=deep)
    if not snap.ok:
        return Status(True, False, snap.reason)
    manifest_path = directory / MANIFEST
    if not manifest_path.exists():
        if gen.id is not None:  # every model of a generation has one
            return Status(
                True,
                False,
                f"model {name!r} is missing its file {shown(manifest_path, gen.home)}: "
                f"rebuild it with `{rebuild}`",
            )
        return Status(True, True)  # an older layout: nothing listed to check
    try:
        manifest = read_json(manifest_path, f"model {name!r}", rebuild, gen.home)
    except ArtifactError as exc:
        return Status(True, False, str(exc))
    problem = file_problem(directory, manifest.get("files", {}), deep=deep)
    if problem:
        return Status(
            True,
            False,
            f"model {name!r} is damaged: {shown(directory, gen.home)}/{problem}: "
            f"rebuild it with `{rebuild}`",
        )
    fitted_on = manifest.get("snapshot_id")
    snap_id = snapshot_id_of(gen)
    if fitted_on and snap_id and fitted_on != snap_id:
        return Status(
            True,
            False,
            f"model {name!r} was fitted on another snapshot than the one beside it: "
            f"rebuild it with `{rebuild}`",
        )
    return Status(True, True)


def check_model_files(directory: Path, name: str, snapshot_id: str | None) -> None:
    """Before loading model ``name`` from ``directory``: its manifest readable, its files there
    at their sizes, and fitted on the snapshot ``snapshot_id``. Raises ArtifactError."""
    directory = Path(directory)
    home = home_of(directory)
    rebuild = fit_command(home, [name])
    manifest_path = directory / MANIFEST
    if not manifest_path.exists():
        return  # an older layout or a tool's direct save: nothing listed to check
    manifest = read_json(manifest_path, f"model {name!r}", rebuild, home)
    problem = file_problem(directory, manifest.get("files", {}))
    if problem:
        raise ArtifactError(
            f"model {name!r} is damaged: {shown(directory, home)}/{problem}: "
            f"rebuild it with `{rebuild}`"
        )
    fitted_on = manifest.get("snapshot_id")
    if fitted_on and snapshot_id and fitted_on != snapshot_id:
        raise ArtifactError(
            f"model {name!r} in {shown(directory, home)} was fitted on another snapshot "
            f"({str(fitted_on)[:12]}) than the one loaded ({snapshot_id[:12]}): "
            f"rebuild it with `{rebuild}`"
        )


def damaged_file(directory: Path) -> str | None:
    """After a load failed: the first file of ``directory`` that does not match its manifest
    (checksums included), or ``None``."""
    with contextlib.suppress(OSError, ValueError):
        manifest = json.loads((Path(directory) / MANIFEST).read_text(encoding="utf-8"))
        return file_problem(Path(directory), manifest.get("files", {}), deep=True)
    return None


# building a generation --------------------------------------------------------------------
@contextlib.contextmanager
def fit_lock(home: Path) -> Iterator[None]:
    """Hold this home's fit lock (released by the OS if the process dies)."""
    from filelock import FileLock, Timeout

    root = artifacts_root(home)
    root.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(root / LOCK))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise FitBusyError(
            f"another `segue fit` is building in {home}: wait for it to finish"
        ) from None
    try:
        yield
    finally:
        lock.release()


def new_generation_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


def remove_leftovers(home: Path) -> list[str]:
    """Remove what a killed fit left (``.building-*`` folders, temporary pointer files) and
    sets no pointer names beyond the kept previous ones. Call with the fit lock held.
    Returns the names removed."""
    root = artifacts_root(home)
    gens = root / GENERATIONS
    removed: list[str] = []
    for tmp in root.glob(f".{POINTER}.*.tmp"):
        tmp.unlink(missing_ok=True)
        removed.append(tmp.name)
    if not gens.is_dir():
        return removed
    for path in gens.iterdir():
        if path.name.startswith(BUILDING) or path.name.startswith(".removing-"):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    removed += remove_old_generations(home)
    return removed


def remove_old_generations(home: Path, keep_previous: bool = KEEP_PREVIOUS) -> list[str]:
    """Remove every set but the one the pointer names and (``keep_previous``) the one in use
    before it, which the pointer names too: a set built by a fit killed before its switch was
    never in use and goes. Without a pointer nothing is removed (the home's set is in
    ``artifacts/``)."""
    root = artifacts_root(home)
    gens = root / GENERATIONS
    in_use = current_or_none(home)
    if in_use is None or in_use.id is None or not gens.is_dir():
        return []
    keep = {in_use.id}
    previous = _pointer_previous(home)
    if keep_previous and previous:
        keep.add(previous)
    removed = []
    for path in sorted(gens.iterdir()):
        if path.is_dir() and not path.name.startswith(".") and path.name not in keep:
            _remove_tree(path)
            removed.append(path.name)
    # the layout of a home built before generations: no longer read once a pointer exists
    for legacy in (root / "snapshot", root / "models"):
        if legacy.is_dir():
            _remove_tree(legacy)
            removed.append(legacy.name)
    return removed


def _pointer_previous(home: Path) -> str | None:
    with contextlib.suppress(OSError, ValueError):
        data = json.loads((artifacts_root(home) / POINTER).read_text(encoding="utf-8"))
        got = data.get("previous") if isinstance(data, dict) else None
        return got if isinstance(got, str) and got and "/" not in got else None
    return None


def _remove_tree(path: Path) -> None:
    """Rename first, so a folder half removed when the process dies is never read as a set."""
    doomed = path.with_name(f".removing-{path.name}-{secrets.token_hex(3)}")
    try:
        path.rename(doomed)
    except OSError:
        doomed = path
    shutil.rmtree(doomed, ignore_errors=True)


class GenerationBuilder:
    """A new set under construction in ``generations/.building-<id>``: fill ``root``, then
    :meth:`commit` switches to it in one step. Leaving the ``with`` block without a commit
    removes it."""

    def __init__(self, home: Path) -> None:
        self.home = Path(home)
        self.id = new_generation_id()
        self.final = artifacts_root(self.home) / GENERATIONS / self.id
        self.root = self.final.with_name(BUILDING + self.id)
        self.committed = False

    @property
    def snapshot_dir(self) -> Path:
        return self.root / "snapshot"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    def __enter__(self) -> GenerationBuilder:
        self.models_dir.mkdir(parents=True)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.committed:
            return
        shutil.rmtree(self.root, ignore_errors=True)
        # interrupted between the rename and the end of the switch: gone only if the
        # pointer does not name it yet
        with contextlib.suppress(OSError, ValueError):
            named = json.loads((artifacts_root(self.home) / POINTER).read_text(encoding="utf-8"))
            if isinstance(named, dict) and named.get("generation") == self.id:
                return
        shutil.rmtree(self.final, ignore_errors=True)

    def carry(self, source: Path, name: str) -> None:
        """Put model ``name`` of an earlier set (fitted on the same snapshot) into this one:
        hard links where the file system allows (files are never changed once written)."""
        target = self.models_dir / name

        def link(src: str, dst: str) -> None:
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)

        shutil.copytree(source, target, copy_function=link)

    def commit(self, info: dict[str, Any]) -> Generation:
        """Write ``generation.json``, sync, move the folder into place and switch the pointer.
        The pointer's replacement is the one step that switches."""
        info = {
            "generation": self.id,
            "created_at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            **info,
        }
        write_json(self.root / GENERATION_MANIFEST, info)
        _fsync_dir(self.root)
        _fsync_dir(self.models_dir)
        os.rename(self.root, self.final)
        _fsync_dir(self.final.parent)
        in_use = current_or_none(self.home)
        switch(self.home, self.id, previous=in_use.id if in_use is not None else None)
        self.committed = True
        return Generation(home=self.home, root=self.final, id=self.id, info=info)


def switch(home: Path, generation_id: str, *, previous: str | None = None) -> None:
    """Point ``home`` at generation ``generation_id`` (one atomic replace of the pointer),
    naming the set in use before it (kept until the next switch)."""
    data: dict[str, Any] = {"generation": generation_id}
    if previous:
        data["previous"] = previous
    write_json(artifacts_root(home) / POINTER, data)


__all__ = [
    "ArtifactError",
    "FitBusyError",
    "Generation",
    "GenerationBuilder",
    "Status",
    "current",
    "fit_command",
    "model_status",
    "snapshot_status",
]
