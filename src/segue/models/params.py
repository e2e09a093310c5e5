"""Parameter constraints, declared once per model and checked by the base class.

A model declares what each of its constructor parameters takes, in the manner of
scikit-learn's ``_parameter_constraints``::

    _parameter_constraints = {
        "neighbors": [Interval(int, 1, None)],
        "alpha": [Interval(float, 0, 1)],
        "aggregate": [Options("sum", "mean")],
        "max_per_artist": [Interval(int, 1, None), None],
    }

A value is accepted when it meets any one constraint of its list (``None`` in the list accepts
``None``). :meth:`segue.models.base.Recommender.fit` checks every declared parameter before
fitting, and :meth:`~segue.models.base.Recommender.check_params` checks a mapping of them (a
model variant's) before a model is built. A refused value raises :class:`ParameterError`, whose
message names the parameter, the value and what was expected. Parameters a model does not
declare are not checked.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal


class ParameterError(ValueError, TypeError):
    """A model parameter outside its declared constraints.

    A ValueError (the value is wrong) and, like scikit-learn's ``InvalidParameterError``, a
    TypeError too, so code catching either for a parameter of the wrong type still does.
    """


class Constraint:
    """What one parameter may take: :meth:`accepts` a value, :meth:`describe` it in words."""

    def accepts(self, value: Any) -> bool:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class Interval(Constraint):
    """A number of ``kind`` (``int``: integers; ``float``: any real number, integers too) from
    ``low`` to ``high`` (None: unbounded). ``closed`` says which bounds are included. Booleans
    are not numbers here, and NaN is in no interval."""

    kind: type[int] | type[float]
    low: float | None
    high: float | None
    closed: Literal["both", "left", "right", "neither"] = "both"

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool):
            return False
        number = numbers.Integral if self.kind is int else numbers.Real
        if not isinstance(value, number):
            return False
        value = float(value)
        if math.isnan(value):
            return False
        if self.low is not None:
            if self.closed in ("both", "left") and not value >= self.low:
                return False
            if self.closed in ("right", "neither") and not value > self.low:
                return False
        if self.high is not None:
            if self.closed in ("both", "right") and not value <= self.high:
                return False
            if self.closed in ("left", "neither") and not value < self.high:
                return False
        return True

    def describe(self) -> str:
        what = "an integer" if self.kind is int else "a number"
        left_in = self.closed in ("both", "left")
        right_in = self.closed in ("both", "right")
        if self.low is not None and self.high is not None:
            return (
                f"{what} in {'[' if left_in else '('}{_num(self.low)}, "
                f"{_num(self.high)}{']' if right_in else ')'}"
            )
        if self.low is not None:
            return f"{what} {'>=' if left_in else '>'} {_num(self.low)}"
        if self.high is not None:
            return f"{what} {'<=' if right_in else '<'} {_num(self.high)}"
        return what


@dataclass(frozen=True, init=False)
class Options(Constraint):
    """One of a few values (compared with ``==``, of the same type: ``1`` is not ``True``)."""

    values: tuple[Any, ...]

    def __init__(self, *values: Any) -> None:
        object.__setattr__(self, "values", values)

    def accepts(self, value: Any) -> bool:
        return any(type(value) is type(v) and value == v for v in self.values)

    def describe(self) -> str:
        shown = [repr(v) for v in self.values]
        if len(shown) == 1:
            return shown[0]
        return "one of " + ", ".join(shown)


@dataclass(frozen=True, init=False)
class InstanceOf(Constraint):
    """An instance of one of ``types``."""

    types: tuple[type, ...]

    def __init__(self, *types: type) -> None:
        object.__setattr__(self, "types", types)

    def accepts(self, value: Any) -> bool:
        return isinstance(value, self.types)

    def describe(self) -> str:
        names = {dict: "a dict", bool: "a bool", str: "a string"}
        return " or ".join(names.get(t, f"a {t.__name__}") for t in self.types)


#: What a model declares: parameter name -> the constraints any one of which accepts a value
#: (``None`` in the list accepts None).
Constraints = Mapping[str, Sequence[Constraint | None]]


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def expected(allowed: Sequence[Constraint | None]) -> str:
    """What a list of constraints accepts, in words: ``an integer >= 1 or None``."""
    parts = [c.describe() if c is not None else "None" for c in allowed]
    return " or ".join(parts)


def check_value(model: str, name: str, value: Any, allowed: Sequence[Constraint | None]) -> None:
    """Raise :class:`ParameterError` unless one of ``allowed`` accepts ``value``."""
    for constraint in allowed:
        if constraint is None:
            if value is None:
                return
        elif constraint.accepts(value):
            return
    raise ParameterError(
        f"parameter {name!r} of model {model!r} must be {expected(allowed)}, got {value!r}"
    )


def check_params(model: str, constraints: Constraints, params: Mapping[str, Any]) -> None:
    """Check each of ``params`` that ``constraints`` declares, in declaration order."""
    for name, allowed in constraints.items():
        if name in params:
            check_value(model, name, params[name], allowed)


__all__ = [
    "Constraint",
    "Constraints",
    "InstanceOf",
    "Interval",
    "Options",
    "ParameterError",
    "check_params",
    "check_value",
    "expected",
]
