"""Parameter constraints (segue.models.params): declared once per model, checked by the base
class before every fit, refused with one ParameterError naming the parameter, the value and
what was expected."""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np
import pytest

from segue.models.base import Recommender
from segue.models.params import (
    Constraints,
    InstanceOf,
    Interval,
    Options,
    ParameterError,
    check_params,
    expected,
)
from segue.models.registry import MODELS, model_class


def test_interval_bounds_and_kinds() -> None:
    positive = Interval(int, 1, None)
    assert positive.accepts(1) and positive.accepts(np.int64(7))
    assert not positive.accepts(0) and not positive.accepts(2.0) and not positive.accepts(True)
    unit = Interval(float, 0, 1)
    assert unit.accepts(0) and unit.accepts(1.0) and unit.accepts(np.float32(0.5))
    assert not unit.accepts(1.01) and not unit.accepts(float("nan")) and not unit.accepts("0.5")
    open_left = Interval(float, 0, None, closed="neither")
    assert not open_left.accepts(0) and open_left.accepts(1e-9)
    assert Interval(int, 1, 5, closed="left").accepts(4) and not Interval(
        int, 1, 5, closed="left"
    ).accepts(5)


def test_descriptions_say_what_is_expected() -> None:
    assert expected([Interval(int, 1, None), None]) == "an integer >= 1 or None"
    assert expected([Interval(float, 0, 1)]) == "a number in [0, 1]"
    assert expected([Interval(float, 0, None, closed="neither")]) == "a number > 0"
    assert expected([Options("sum", "mean")]) == "one of 'sum', 'mean'"
    assert expected([InstanceOf(dict), None]) == "a dict or None"


def test_options_compare_types_too() -> None:
    assert Options(1, 2).accepts(1) and not Options(1, 2).accepts(True)
    assert not Options("sum").accepts("SUM")


def test_the_error_names_parameter_value_and_expectation() -> None:
    constraints: Constraints = {"neighbors": [Interval(int, 1, None)]}
    with pytest.raises(ParameterError) as caught:
        check_params("itemknn", constraints, {"neighbors": 0, "other": object()})
    assert str(caught.value) == (
        "parameter 'neighbors' of model 'itemknn' must be an integer >= 1, got 0"
    )
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, TypeError)
    check_params("itemknn", constraints, {"undeclared": -5})  # not declared: not checked


class Declared(Recommender):
    """A model that declares one parameter and writes no check of its own."""

    name = "declared"
    _parameter_constraints: ClassVar[Constraints] = {"depth": [Interval(int, 1, 3)]}
    fits: ClassVar[int] = 0

    def __init__(self, *, depth: int = 2) -> None:
        self.depth = depth

    def fit(self, snapshot: Any) -> Self:
        Declared.fits += 1
        self.n_ = 4
        self.fitted_ = True
        return self

    @property
    def n_tracks(self) -> int:
        return self.n_

    def _score(self, seeds: np.ndarray, *, title: str | None) -> np.ndarray:
        return np.arange(self.n_, dtype=np.float32)


def test_the_base_checks_before_every_fit() -> None:
    before = Declared.fits
    with pytest.raises(ParameterError, match=r"'depth' of model 'declared' .* got 9"):
        Declared(depth=9).fit(None)
    assert Declared.fits == before, "fit never ran with a refused parameter"
    model = Declared().fit(None)
    model.depth = 0  # changed after construction: the next fit still refuses it
    with pytest.raises(ParameterError, match="got 0"):
        model.fit(None)
    with pytest.raises(ParameterError, match="'depth'"):
        Declared.check_params({"depth": "deep"})
    Declared.check_params({"depth": 3})


@pytest.mark.parametrize(
    ("model", "params", "name"),
    [
        ("itemknn", {"neighbors": 0}, "neighbors"),
        ("itemknn", {"alpha": 1.5}, "alpha"),
        ("als", {"factors": 0}, "factors"),
        ("als", {"alpha": 0}, "alpha"),
        ("title", {"min_similarity": 2.0}, "min_similarity"),
        ("model1", {"aggregate": "max"}, "aggregate"),
        ("model1", {"max_per_artist": 0}, "max_per_artist"),
        ("hybrid", {"candidates": 0}, "candidates"),
        ("hybrid", {"title_share": 1.5}, "title_share"),
        ("hybrid", {"als": [1, 2]}, "als"),
        ("hybrid", {"objective": "ndcg"}, "objective"),
        ("random", {"random_state": -1}, "random_state"),
        ("spotify", {"max_seeds": 6}, "max_seeds"),
    ],
)
def test_every_model_refuses_its_declared_parameters(
    model: str, params: dict[str, Any], name: str
) -> None:
    cls = model_class(model)
    assert name in cls._parameter_constraints
    with pytest.raises(ParameterError, match=f"parameter '{name}' of model '{cls.name}'"):
        cls.check_params(params)
    with pytest.raises(ParameterError, match=f"'{name}'"):
        cls(**params).fit(None)  # refused before the snapshot is looked at


def test_every_model_accepts_its_defaults() -> None:
    for model in MODELS:
        cls = model_class(model)
        cls()._validate_params()


def test_a_variant_is_checked_against_the_model_constraints(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from segue.service import variants

    content = model_class("model1")
    tighter = {**content._parameter_constraints, "n_genres": [Interval(int, 1, 10)]}
    monkeypatch.setattr(content, "_parameter_constraints", tighter)
    assert variants.parse("model1@n_genres=10").as_dict() == {"n_genres": 10}
    with pytest.raises(ParameterError, match=r"parameter 'n_genres' of model 'model1'.*got 20"):
        variants.parse("model1", {"n_genres": 20})
