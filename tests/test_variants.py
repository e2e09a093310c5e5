"""Model variants (segue.service.variants): one parser and checker for the name form
(``model1@n_genres=2``) and the parameter form (CLI ``--param``, the API's ``params``), real
content models refitted on a tiny built home, and the API's answers to bad parameters."""

from __future__ import annotations

import asyncio
import inspect
import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.exceptions import StarletteDeprecationWarning

from segue.api.app import create_app
from segue.models.registry import fit_model, model_class
from segue.service import variants
from segue.service.engine import Service, service_for_api
from segue.snapshot.arrays import Snapshot
from segue.wire import pool
from tests._serving_home import build_home

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

SEED = "Rock Artist 0"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Snapshot]:
    """The tiny home with Model 1 built (3 of the catalog's 4 genres, no tuning)."""
    home = tmp_path_factory.mktemp("variants") / "home"
    snap = build_home(home)
    fit_model("model1", snap, root=home / "artifacts" / "models", n_genres=3, tune=False)
    return home, snap


@pytest.fixture
def service(built: tuple[Path, Snapshot]) -> Service:
    return Service(built[0], grow=False, max_variants=2)


@pytest.fixture(scope="module")
def client(built: tuple[Path, Snapshot]) -> Iterator[TestClient]:
    with TestClient(create_app(service_for_api(built[0]))) as c:
        yield c


# the parser ---------------------------------------------------------------------------------
def test_every_declared_parameter_is_one_its_model_takes() -> None:
    for model, params in variants.VARIANT_PARAMETERS.items():
        taken = inspect.signature(model_class(model)).parameters
        for p in params:
            assert p.name in taken, (model, p.name)
            assert taken[p.name].kind is inspect.Parameter.KEYWORD_ONLY
        assert variants.parameters(model) == params


def test_names_and_parameters_give_one_canonical_variant() -> None:
    a = variants.parse("model1@aggregate=mean,n_genres=20")
    b = variants.parse("model1", {"n_genres": 20, "aggregate": "mean"})
    c = variants.parse("model1", {"n_genres": "20", "aggregate": "mean"}, text=True)
    d = variants.parse("model1@n_genres=20", {"aggregate": "mean"})
    assert a == b == c == d
    assert a.name == "model1@n_genres=20,aggregate=mean"
    assert a.as_dict() == {"n_genres": 20, "aggregate": "mean"}
    plain = variants.parse("itemknn")
    assert (
        plain.name == "itemknn"
        and plain.params == ()
        and variants.parse("model1", {}).name == ("model1")
    )


@pytest.mark.parametrize(
    ("model", "params", "text", "said"),
    [
        ("model9", None, False, "unknown model 'model9'"),
        ("itemknn", {"neighbors": 5}, False, "model 'itemknn' has no variants"),
        ("itemknn@neighbors=5", None, False, "model 'itemknn' has no variants"),
        ("model1", {"colour": 5}, False, "model 'model1' has no parameter 'colour'"),
        ("model1", {"tune": 1}, False, "no parameter 'tune' a variant can change"),
        ("model1", {"n_genres": 0}, False, "'n_genres' of model 'model1': expected an integer"),
        ("model1", {"n_genres": 10_001}, False, "expected an integer from 1 to 10000, got 10001"),
        ("model1", {"n_genres": "20"}, False, "'n_genres' of model 'model1': expected an integer"),
        ("model1", {"n_genres": True}, False, "expected an integer from 1 to 10000, got True"),
        ("model1", {"n_genres": 2.0}, False, "expected an integer from 1 to 10000, got 2.0"),
        ("model1", {"n_genres": "x"}, True, "expected an integer from 1 to 10000, got 'x'"),
        ("model1", {"aggregate": "max"}, False, "'aggregate' of model 'model1': expected one of"),
        ("model1@n_genres=2", {"n_genres": 3}, False, "parameter 'n_genres' is given twice"),
        ("model1@n_genres", None, False, "expected NAME=VALUE"),
        ("model1@", None, False, "expected e.g. 'model1@n_genres=20'"),
        (
            "model2",
            {
                "n_genres": 1,
                "era_width": 1,
                "popularity_width": 1,
                "aggregate": "sum",
                "x": 1,
                "y": 2,
            },
            False,
            "too many parameters: 6, at most 5",
        ),
    ],
)
def test_bad_variants_are_refused_naming_the_parameter(
    model: str, params: dict[str, Any] | None, text: bool, said: str
) -> None:
    with pytest.raises(ValueError) as raised:
        variants.parse(model, params, text=text)
    assert said in str(raised.value)


def test_assignments_of_the_command_line() -> None:
    assert variants.assignments(["n_genres=20", " aggregate = mean"]) == {
        "n_genres": "20",
        "aggregate": " mean",
    }
    for bad, said in ((["n_genres"], "expected NAME=VALUE"), (["a=1", "a=2"], "given twice")):
        with pytest.raises(ValueError, match=said):
            variants.assignments(bad)


# the service --------------------------------------------------------------------------------
def test_a_variant_is_the_model_refitted_with_the_parameter_and_kept(service: Service) -> None:
    built = service.model("model1")
    # the terms of its genre block: the 3 it kept
    assert service.genre_setting("model1") == variants.GenreSetting(current=3, vocabulary=3)
    assert service.genre_setting("itemknn") is None
    # the built model's own setting is the built model, not a refit
    assert service.model("model1", {"n_genres": 3}) is built
    two = service.model("model1", {"n_genres": 2})
    assert two is not built and two.n_genres == 2 and two.tune is False
    assert service.model("model1@n_genres=2") is two  # kept: one fit per variant
    # the same model fitted by hand with that setting recommends the same
    by_hand = model_class("model1")(**{**built.get_params(), "n_genres": 2}).fit(service.snapshot)
    seeds = service.resolve([SEED]).indices
    got = two.recommend(seeds, 10)
    want = by_hand.recommend(seeds, 10)
    assert got[0].tolist() == want[0].tolist()
    assert got[1].tolist() == pytest.approx(want[1].tolist())


def test_a_tuned_model_s_variant_starts_from_the_settings_it_chose(built) -> None:
    """A variant of a model that tuned at fit keeps what it chose (no new search); a model
    with no settings of its own starts from its parameters, and one with no genre block says
    so (the service then counts the catalog's genres)."""
    _, snap = built
    tuned = model_class("model1")(n_genres=3, tune=True).fit(snap)
    params = tuned.variant_params()
    assert params["tune"] is False and params["n_genres"] == 3
    for key in ("weights", "aggregate", "era_width", "popularity_width", "crowd_tags"):
        assert params[key] == tuned.chosen_[key]
    assert tuned.genre_terms() == 3
    assert model_class("model1")(tune=False).fit(snap).variant_params()["tune"] is False
    plain = model_class("popularity")().fit(snap)
    assert plain.variant_params() == plain.get_params() and plain.genre_terms() is None


def test_variants_kept_are_bounded(service: Service) -> None:
    first = service.model("model1", {"n_genres": 1})
    service.model("model1", {"n_genres": 2})
    assert service.model("model1", {"n_genres": 1}) is first
    service.model("model1", {"aggregate": "mean"})
    service.model("model1", {"n_genres": 2, "aggregate": "mean"})  # max_variants=2: 1 dropped
    assert len(service._variants) == 2
    assert service.model("model1", {"n_genres": 1}) is not first


def test_recommend_names_the_variant_it_used(service: Service) -> None:
    rec = service.recommend([SEED], n=5, model="model1", params={"n_genres": 2})
    base = service.recommend([SEED], n=5, model="model1")
    assert rec.model == "model1@n_genres=2" and base.model == "model1"
    assert len(rec.tracks) == 5
    assert service.recommend([SEED], n=5, model="model1@n_genres=2").model == rec.model
    with pytest.raises(ValueError, match="'n_genres' of model 'model1'"):
        service.recommend([SEED], n=5, model="model1", params={"n_genres": -1})


# the API ------------------------------------------------------------------------------------
def test_api_recommends_with_a_variant(client: TestClient, service: Service) -> None:
    r = client.post(
        "/recommend", json={"seeds": [SEED], "n": 5, "model": "model1", "params": {"n_genres": 2}}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    want = service.recommend([SEED], n=5, model="model1", params={"n_genres": 2})
    assert body["model"] == "model1@n_genres=2"
    assert [t["id"] for t in body["tracks"]] == [t.id for t in want.tracks]


@pytest.mark.parametrize(
    ("params", "said"),
    [
        ({"n_genres": 0}, "parameter 'n_genres' of model 'model1': expected an integer"),
        ({"n_genres": "2"}, "parameter 'n_genres' of model 'model1': expected an integer"),
        ({"colour": 1}, "model 'model1' has no parameter 'colour'"),
        ({"n_genres": True}, "params.n_genres"),  # strict JSON types: a bool is not a number
        ({"n_genres": 2.5}, "params.n_genres"),
        ({"n_genres": [2]}, "params.n_genres"),
        ({"Bad Key": 1}, "params.Bad Key"),
        ({"n_genres": "x" * 41}, "params.n_genres"),
        ({f"k{i}": 1 for i in range(6)}, "params"),
    ],
)
def test_api_refuses_bad_params_with_422_naming_the_parameter(
    client: TestClient, params: dict[str, Any], said: str
) -> None:
    r = client.post("/recommend", json={"seeds": [SEED], "model": "model1", "params": params})
    assert r.status_code == 422, r.text
    assert said in r.json()["detail"], r.json()


def test_api_refuses_params_for_a_model_without_variants(client: TestClient) -> None:
    r = client.post(
        "/recommend", json={"seeds": [SEED], "model": "itemknn", "params": {"n_genres": 2}}
    )
    assert r.status_code == 422 and "model 'itemknn' has no variants" in r.json()["detail"]


def test_a_compute_worker_serves_the_same_variant(
    built: tuple[Path, Snapshot], client: TestClient
) -> None:
    if not pool.supported():
        pytest.skip("compute workers inherit their socket on POSIX")
    ask = {"seeds": [SEED], "n": 4, "model": "model1", "params": {"n_genres": 2}}

    async def scenario() -> tuple[int, Any]:
        compute = pool.ComputePool(built[0], 1)
        await compute.attach()
        try:
            status, body = await compute.recommend(
                {"title": None, "filters": {}, "explain": True, **ask}, heavy=True
            )
            return status, json.loads(body)
        finally:
            await compute.close()

    status, body = asyncio.run(scenario())
    assert status == 200, body
    assert body == client.post("/recommend", json=ask).json()


def test_the_api_schema_says_what_a_variant_may_change(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()["components"]["schemas"]["RecommendRequest"]
    params = schema["properties"]["params"]
    assert params["maxProperties"] == variants.MAX_VARIANT_PARAMS
    for declared in variants.VARIANT_PARAMETERS.values():
        for p in declared:
            assert f"{p.name} ({p.expected()})" in params["description"]
