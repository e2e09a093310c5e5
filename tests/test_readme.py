"""The README tells the truth: its set-up commands are what CI runs, and every `segue` command
it shows exists with the options it uses (the commands themselves are run by other tests and
by the tour test below)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from segue.cli import app
from segue.cli._registry import register_all

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
register_all(app)


def code_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", README, flags=re.S)


def segue_commands() -> list[list[str]]:
    out = []
    for block in code_blocks():
        for line in block.splitlines():
            line = line.split("  #", 1)[0].strip()
            if "segue " not in line or line.startswith("#"):
                continue
            # Take the segue invocation out of a chain such as `pip install . && segue demo`.
            part = next(p for p in line.split("&&") if p.strip().startswith("segue"))
            out.append(shlex.split(part)[1:])
    return out


def test_readme_opens_with_exactly_two_setup_commands() -> None:
    first = code_blocks()[0]
    commands = [ln for ln in first.splitlines() if ln.strip()]
    assert len(commands) == 2
    assert "segue demo" in commands[0]
    test_command = commands[1].split("  #", 1)[0].strip()
    assert "pytest" in test_command
    ci = (REPO / ".ci" / "run").read_text()
    assert test_command in ci, "CI must run the README's test command verbatim"


def _resolve(args: list[str]) -> tuple[Any, list[str]]:
    command: Any = typer.main.get_command(app)
    rest = list(args)
    while rest and rest[0] == "--home":
        rest = rest[2:]
    while hasattr(command, "list_commands") and rest and not rest[0].startswith("-"):
        sub = command.get_command(type(command).context_class(command), rest[0])
        assert sub is not None, f"README names an unknown command: segue {' '.join(args)}"
        command, rest = sub, rest[1:]
    return command, rest


@pytest.mark.parametrize("args", segue_commands(), ids=lambda a: " ".join(a)[:60])
def test_every_readme_command_exists_with_its_options(args: list[str]) -> None:
    command, rest = _resolve(args)
    known = {
        opt
        for p in command.params
        for opt in getattr(p, "opts", []) + getattr(p, "secondary_opts", [])
    }
    for token in rest:
        if token.startswith("-") and token not in {"-", "--"}:
            name = token.split("=", 1)[0]
            assert name in known, (
                f"`segue {' '.join(args)}`: {name} is not an option of that command"
            )


def test_the_tour_commands_are_all_covered() -> None:
    """Commands of the README that the test suite runs for real somewhere."""
    names = {_resolve(a)[0].name for a in segue_commands()}
    assert {
        "demo",
        "recommend",
        "ingest",
        "stats",
        "fit",
        "import-features",
        "fetch",
        "import-playlist",
        "models",
        "make",
        "evaluate",
        "run",
        "score",
        "serve",
        "app",
    } <= names


@pytest.mark.slow
def test_demo_recommend_commands_of_the_readme(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from segue import config

    monkeypatch.setenv("SEGUE_HOME", str(tmp_path))
    config.set_home(None)
    runner = CliRunner()
    demo_lines = [a for a in segue_commands() if a and a[0] == "recommend" and "--demo" in a]
    assert len(demo_lines) >= 3
    for args in demo_lines:
        result = runner.invoke(app, args)
        assert result.exit_code == 0, f"segue {' '.join(args)}\n{result.output}"
        assert result.stdout.strip(), f"segue {' '.join(args)} printed nothing"
    config.set_home(None)
