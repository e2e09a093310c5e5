"""Model variants: a built model refitted on the served snapshot with a few parameters changed.

A variant is named ``model1@n_genres=20`` (several: ``model1@n_genres=20,aggregate=mean``) or
given as a model name and its parameters: ``segue recommend --param n_genres=20``, the API's
``params`` object, the web app's number-of-genres slider. :func:`parse` is the one place that
reads and checks both forms.

What a variant may change, and what it costs: only the parameters of :data:`VARIANT_PARAMETERS`,
each with its type and bounds, and only for a model whose class takes that parameter. They are
the feature settings of the content models (Model 1 and Model 2), whose refit on the served
snapshot builds one sparse feature matrix: a few seconds on a large catalog, no tuning (the
settings the built model chose at fit are kept for everything the variant does not change), and
never bigger than the same model built with every genre term of the catalog. A collaborative
model's refit (minutes to hours at full scale, memory that grows with its factors or neighbours)
is not a variant: it is ``segue fit``'s. The service keeps a few fitted variants (an LRU) and
fits one at a time.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from segue.models.registry import MODELS, model_class

#: Parameters one variant may set at most (the API refuses a bigger ``params`` object).
MAX_VARIANT_PARAMS = 5
#: Longest text value of a parameter.
MAX_VALUE_CHARS = 40
#: Fitted variants a service keeps (least recently used dropped first).
MAX_VARIANTS = 4

Value = int | str


@dataclass(frozen=True)
class Parameter:
    """A parameter a variant may change: an integer from ``low`` to ``high``, or one of
    ``choices``."""

    name: str
    meaning: str
    low: int | None = None
    high: int | None = None
    choices: tuple[str, ...] = ()

    def expected(self) -> str:
        """What the parameter takes, for a message."""
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        return f"an integer from {self.low} to {self.high}"

    def check(self, value: object, model: str) -> Value:
        """``value`` if the parameter takes it (its JSON type too: no conversion), else a
        ``ValueError`` naming the parameter and what it takes."""
        ok = (
            isinstance(value, str) and value in self.choices
            if self.choices
            else isinstance(value, int)
            and not isinstance(value, bool)
            and self.low is not None
            and self.high is not None
            and self.low <= value <= self.high
        )
        if not ok:
            shown = repr(value) if not isinstance(value, str) else repr(value[:MAX_VALUE_CHARS])
            raise ValueError(
                f"parameter {self.name!r} of model {model!r}: expected {self.expected()}, "
                f"got {shown}"
            )
        return value  # type: ignore[return-value]

    def read(self, text: str, model: str) -> Value:
        """The value written as ``text`` (a command-line option, a variant's name)."""
        text = text.strip()
        if not self.choices and text.lstrip("-").isdigit() and len(text) <= 12:
            return self.check(int(text), model)
        return self.check(text, model)


#: The content models' feature settings (see :class:`segue.models.content.ContentRecommender`).
CONTENT_PARAMETERS: tuple[Parameter, ...] = (
    Parameter("n_genres", "genre terms the features keep, the most frequent first", 1, 10_000),
    Parameter("era_width", "years per era bucket", 1, 100),
    Parameter("popularity_width", "popularity points per bucket", 1, 100),
    Parameter(
        "aggregate",
        "'sum': cosine to the summed playlist vector; 'mean': mean of per-seed cosines",
        choices=("sum", "mean"),
    ),
    Parameter(
        "crowd_tags",
        "playlist-title words as tags: for every track, only where genres are missing, or none",
        choices=("all", "missing", "none"),
    ),
)
#: Per model, the parameters a variant may change.
VARIANT_PARAMETERS: dict[str, tuple[Parameter, ...]] = {
    "model1": CONTENT_PARAMETERS,
    "model2": CONTENT_PARAMETERS,
}


@dataclass(frozen=True)
class Variant:
    """A model and the parameters changed (in the order they are declared; none: the built
    model itself)."""

    model: str
    params: tuple[tuple[str, Value], ...] = ()

    @property
    def name(self) -> str:
        """``model1`` or ``model1@n_genres=20,aggregate=mean``: what a recommendation says it
        came from."""
        if not self.params:
            return self.model
        return self.model + "@" + ",".join(f"{k}={v}" for k, v in self.params)

    def as_dict(self) -> dict[str, Value]:
        return dict(self.params)


@dataclass(frozen=True)
class GenreSetting:
    """The ``n_genres`` of a built content model: ``current`` (None = every genre) and the
    size of its genre vocabulary, the most a person can ask for."""

    current: int | None
    vocabulary: int

    @property
    def effective(self) -> int:
        return self.vocabulary if self.current is None else min(self.current, self.vocabulary)


def summary() -> str:
    """What variants may change, in one line: ``model1, model2: n_genres (an integer from 1
    to 10000); ...``."""
    by_params: dict[tuple[Parameter, ...], list[str]] = {}
    for model, params in VARIANT_PARAMETERS.items():
        by_params.setdefault(params, []).append(model)
    return "; ".join(
        ", ".join(models) + ": " + ", ".join(f"{p.name} ({p.expected()})" for p in params)
        for params, models in by_params.items()
    )


def parameters(model: str) -> tuple[Parameter, ...]:
    """The parameters a variant of ``model`` may change: those declared for it that its class
    takes (``ValueError`` for an unknown model)."""
    cls = model_class(model)
    taken = inspect.signature(cls).parameters
    return tuple(p for p in VARIANT_PARAMETERS.get(model, ()) if p.name in taken)


def assignments(texts: Iterable[str]) -> dict[str, str]:
    """``NAME=VALUE`` texts (``--param n_genres=20``, repeatable) as a mapping; ``ValueError``
    for a text without ``=`` or a name given twice."""
    out: dict[str, str] = {}
    for text in texts:
        name, sep, value = text.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"parameter {text!r}: expected NAME=VALUE, e.g. n_genres=20")
        if name in out:
            raise ValueError(f"parameter {name!r} is given twice")
        out[name] = value
    return out


def parse(model: str, params: Mapping[str, Any] | None = None, *, text: bool = False) -> Variant:
    """The variant of ``model`` (a name, or a variant's name ``model1@n_genres=20``) with
    ``params`` changed. ``text``: the values of ``params`` are written as text (the command
    line) and read as their parameter's type; else each must have that type already (JSON).

    ``ValueError`` for an unknown model, a model without variants, a parameter the model's
    variants cannot change, a value out of its bounds or of the wrong type, or a parameter
    given twice; each message names the parameter and what is expected.
    """
    base, sep, spec = model.partition("@")
    if base not in MODELS:
        raise ValueError(f"unknown model {base!r}; expected one of: {', '.join(MODELS)}")
    given: list[tuple[str, Any, bool]] = []  # name, value, written as text
    if sep:
        if not spec:
            raise ValueError(f"model variant {model!r}: expected e.g. 'model1@n_genres=20'")
        given.extend((k, v, True) for k, v in assignments(spec.split(",")).items())
    given.extend((str(k), v, text) for k, v in (params or {}).items())
    if not given:
        return Variant(base)
    if len(given) > MAX_VARIANT_PARAMS:
        raise ValueError(
            f"too many parameters: {len(given)}, at most {MAX_VARIANT_PARAMS} per variant"
        )
    allowed = {p.name: p for p in parameters(base)}
    if not allowed:
        raise ValueError(
            f"model {base!r} has no variants: its parameters are set when it is fitted "
            f"(`segue fit`); models with variants: {', '.join(VARIANT_PARAMETERS)}"
        )
    values: dict[str, Value] = {}
    for name, value, as_text in given:
        param = allowed.get(name)
        if param is None:
            raise ValueError(
                f"model {base!r} has no parameter {name[:MAX_VALUE_CHARS]!r} a variant can "
                f"change; expected one of: {', '.join(allowed)}"
            )
        if name in values:
            raise ValueError(f"parameter {name!r} is given twice")
        values[name] = param.read(str(value), base) if as_text else param.check(value, base)
    # the model's own declared constraints too (a ParameterError, a ValueError), so a variant
    # is refused here rather than when the service fits it
    model_class(base).check_params(values)
    return Variant(base, tuple((n, values[n]) for n in allowed if n in values))


__all__ = [
    "CONTENT_PARAMETERS",
    "MAX_VARIANTS",
    "MAX_VARIANT_PARAMS",
    "VARIANT_PARAMETERS",
    "GenreSetting",
    "Parameter",
    "Variant",
    "assignments",
    "parameters",
    "parse",
    "summary",
]
