"""Dependencies are plain imports, and library code never prints.

Every dependency in pyproject.toml is required, so a failed import is a bug to see, never a
part "not available in this installation": the one import guard in segue is pyspark's (the
``spark`` extra), in :func:`segue.spark.require_pyspark`. Library modules (everything but the
shells: the CLI, the web app and the API) log or return their messages; the shells decide how
to show them.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "segue"

#: The one place allowed to catch a failed import, and the function it is in.
IMPORT_GUARD = ("spark/__init__.py", "require_pyspark")

#: The shells, which show messages to people: they may print.
SHELLS = ("cli/", "webapp/", "api/", "__main__.py")

#: Library modules that write to a stream themselves, and why.
WRITES_ALLOWED = {
    "catalog/ingest.py": "the ingest progress bar (rich) draws on stderr while the ingest runs",
    "catalog/fetch.py": (
        "the fetch progress bar (rich) draws on the console its caller passes (stderr by "
        "default), and the fetch's notices go to that console between its lines"
    ),
    "evaluation/make.py": "the evaluation progress bars (tqdm) draw on stderr",
    "wire/export.py": (
        "the table format is drawn by a rich Console into an io.StringIO and returned as "
        "text; it never reaches a stream"
    ),
}


def modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        yield rel, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def caught_names(handler: ast.ExceptHandler) -> set[str]:
    kinds = handler.type
    items = kinds.elts if isinstance(kinds, ast.Tuple) else [kinds] if kinds else []
    return {
        node.id if isinstance(node, ast.Name) else node.attr
        for node in items
        if isinstance(node, ast.Name | ast.Attribute)
    }


def import_guards(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """(line, enclosing function) of every handler catching ImportError or ModuleNotFoundError."""
    stack: list[tuple[ast.AST, str]] = [(tree, "")]
    while stack:
        node, func = stack.pop()
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, ast.FunctionDef) else func
            if isinstance(child, ast.ExceptHandler) and caught_names(child) & {
                "ImportError",
                "ModuleNotFoundError",
            }:
                yield child.lineno, inner
            stack.append((child, inner))


def stream_writes(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """(line, what) of every print call, use of sys.stdout/sys.stderr and rich Console made."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in ("print", "Console"):
                yield node.lineno, f"{node.func.id}()"
        elif (
            isinstance(node, ast.Attribute)
            and node.attr in ("stdout", "stderr")
            and isinstance(node.value, ast.Name)
            and node.value.id == "sys"
        ):
            yield node.lineno, f"sys.{node.attr}"


def test_no_import_fallbacks_outside_the_pyspark_guard() -> None:
    found = [
        f"{rel}:{line} (in {func or 'module'})"
        for rel, tree in modules()
        for line, func in import_guards(tree)
        if (rel, func) != IMPORT_GUARD
    ]
    assert found == [], "a failed import must surface as an error, not a fallback: " + ", ".join(
        found
    )


def test_the_pyspark_guard_is_there() -> None:
    path, func = IMPORT_GUARD
    tree = ast.parse((SRC / path).read_text(encoding="utf-8"))
    assert [f for _, f in import_guards(tree)] == [func]


def test_library_modules_do_not_print() -> None:
    found = [
        f"{rel}:{line} {what}"
        for rel, tree in modules()
        if not rel.startswith(SHELLS) and rel not in WRITES_ALLOWED
        for line, what in stream_writes(tree)
    ]
    assert found == [], "library modules log or return messages: " + ", ".join(found)


def test_the_allow_list_names_modules_that_still_write() -> None:
    trees = dict(modules())
    stale = [rel for rel in WRITES_ALLOWED if not list(stream_writes(trees[rel]))]
    assert stale == []


def test_the_scans_see_what_they_look_for() -> None:
    code = (
        "import sys\n"
        "def f():\n"
        "    try:\n"
        "        import x\n"
        "    except (ValueError, ImportError):\n"
        "        print('no x', file=sys.stderr)\n"
    )
    tree = ast.parse(code)
    assert list(import_guards(tree)) == [(5, "f")]
    assert sorted(stream_writes(tree)) == [(6, "print()"), (6, "sys.stderr")]


def test_a_missing_module_other_than_pyspark_is_not_taken_for_the_missing_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from segue.spark import SparkUnavailable, require_pyspark

    real_import = __import__

    def failing(name: str, *args: object, **kwargs: object) -> object:
        if name == "pyspark":
            raise ModuleNotFoundError("No module named 'py4j'", name="py4j")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr("builtins.__import__", failing)
    with pytest.raises(ModuleNotFoundError, match="py4j"):
        require_pyspark()
    monkeypatch.setattr("builtins.__import__", real_import)
    monkeypatch.setitem(sys.modules, "pyspark", None)
    with pytest.raises(SparkUnavailable, match=r"pip install 'segue\[spark\]'"):
        require_pyspark()


#: Standard-library HTTP clients: import-linter names external packages only, so these are
#: checked here (urllib.parse, which only splits strings, is fine anywhere).
HTTP_CLIENTS = ("urllib.request", "http.client")


def http_client_imports(tree: ast.Module) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            if any(name == c or name.startswith(c + ".") for c in HTTP_CLIENTS):
                yield node.lineno, name


def test_standard_library_http_clients_only_in_providers() -> None:
    found = [
        f"{rel}:{line} {name}"
        for rel, tree in modules()
        if not rel.startswith("providers/")
        for line, name in http_client_imports(tree)
    ]
    assert found == [], "only segue.providers talks to other services: " + ", ".join(found)


def test_the_http_client_scan_sees_an_import() -> None:
    tree = ast.parse(
        "import urllib.request\nfrom http import client\nfrom urllib.parse import quote"
    )
    assert [name for _, name in http_client_imports(tree)] == ["urllib.request", "http.client"]
