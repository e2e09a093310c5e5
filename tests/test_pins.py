"""The demo's answers, pinned: every built model's recommendations for 200 fixed queries and its
challenge-style evaluation figures are those in ``tests/data/pins`` (written by
``scripts/make_pins.py``; see its docstring for what the queries are).

A change meant to keep behaviour (a refactor) must keep these; a change meant to alter results
writes them again with ``python scripts/make_pins.py`` and says why in its commit.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from scripts.make_pins import EXPECTED, KINDS, MODELS, QUERIES, compute, differences

#: Differing queries shown in a failure message.
SHOWN = 25


@pytest.fixture(scope="module")
def pinned() -> dict[str, Any]:
    return json.loads(QUERIES.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def expected() -> dict[str, Any]:
    return json.loads(EXPECTED.read_text(encoding="utf-8"))


def test_the_pins_cover_200_queries_of_every_kind_and_every_demo_model(
    pinned: dict[str, Any], expected: dict[str, Any]
) -> None:
    queries = pinned["queries"]
    assert len(queries) == 200 == sum(KINDS.values())
    assert {q["kind"] for q in queries} == set(KINDS)
    assert expected["models"] == list(MODELS)
    for model in MODELS:
        answers = expected["recommendations"][model]
        assert set(answers) == {q["id"] for q in queries}
        # most queries are answered with tracks: the pins are not a list of errors
        assert sum(isinstance(a, list) and len(a) > 0 for a in answers.values()) >= 100, model
        assert set(expected["evaluation"][model]["overall"]) == {"r_precision", "ndcg", "clicks"}


def test_a_changed_answer_or_figure_is_reported(expected: dict[str, Any]) -> None:
    changed = copy.deepcopy(expected)
    answer = next(a for a in changed["recommendations"]["hybrid"].values() if len(a) > 1)
    answer[0], answer[1] = answer[1], answer[0]
    changed["evaluation"]["model1"]["overall"]["ndcg"] += 1e-6
    lines = differences(expected, changed)
    assert len(lines) == 2
    assert lines[0].startswith("model1 evaluation overall.ndcg: pinned ")
    assert lines[1].startswith("hybrid q") and "first differs at rank 1 " in lines[1]
    assert differences(expected, copy.deepcopy(expected)) == []


def test_the_demo_answers_as_pinned(
    built_demo: Path, pinned: dict[str, Any], expected: dict[str, Any]
) -> None:
    got = compute(built_demo, pinned)
    lines = differences(expected, got)
    assert not lines, (
        f"{len(lines)} difference(s) from {EXPECTED} (first {min(len(lines), SHOWN)}; "
        "`python scripts/make_pins.py --check` lists them all):\n" + "\n".join(lines[:SHOWN])
    )
