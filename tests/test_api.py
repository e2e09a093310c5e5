"""The HTTP API over a tiny built home: TestClient for the contract, one real uvicorn server."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.exceptions import StarletteDeprecationWarning

from segue.api.app import create_app
from segue.core.errors import CatalogError
from segue.service.engine import Service, TrackRecord
from segue.snapshot.arrays import Snapshot
from segue.wire import pool
from segue.wire.replies import RecommendResponse, public_message, public_text
from tests._serving_home import MODEL, build_home, free_port, wait_healthy

with warnings.catch_warnings():
    # Starlette asks for the httpx2 package in its TestClient; httpx works the same here.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Snapshot]:
    home = tmp_path_factory.mktemp("api") / "home"
    return home, build_home(home)


@pytest.fixture(scope="module")
def client(built: tuple[Path, Snapshot]) -> Iterator[TestClient]:
    app = create_app(Service(built[0], grow=False))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def snap(built: tuple[Path, Snapshot]) -> Snapshot:
    return built[1]


def assert_clean(response: httpx.Response, home: Path | None = None) -> None:
    """An error body never shows a stack trace or a server path."""
    body = response.text
    for leak in ("Traceback", "/work", ".py", "/tmp", 'File "'):
        assert leak not in body, f"{leak!r} leaked in {body!r}"
    if home is not None:
        assert str(home) not in body


def ids_of(snap: Snapshot, prefix: str) -> list[str]:
    return snap.tracks.loc[snap.tracks["name"].str.startswith(prefix), "track_id"].tolist()


# health, models, docs -------------------------------------------------------------------------
def test_health_reports_the_loaded_snapshot(client: TestClient) -> None:
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert (body["tracks"], body["playlists"]) == (40, 48)


def test_models_say_which_are_usable_and_why_not(client: TestClient) -> None:
    r = client.get("/models")
    assert r.status_code == 200
    models = {m["name"]: m for m in r.json()}
    assert models[MODEL]["available"] and models[MODEL]["built"]
    assert models["hybrid"]["default"] and not models["hybrid"]["available"]
    assert "segue fit" in models["hybrid"]["reason"]
    assert not models["spotify"]["available"] and models["spotify"]["reason"]


def test_openapi_docs_are_served(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert {"/recommend", "/tracks/search", "/tracks/{track}", "/models", "/health"} <= set(
        spec["paths"]
    )
    body = spec["components"]["schemas"]["RecommendRequest"]["properties"]
    assert body["n"]["maximum"] == 500 and body["seeds"]["maxItems"] == 1000


# recommend ------------------------------------------------------------------------------------
def test_recommend_a_playlist_of_track_links(client: TestClient, snap: Snapshot) -> None:
    seeds = [f"https://open.spotify.com/track/{t}?si=x" for t in ids_of(snap, "Rock")[:4]]
    r = client.post("/recommend", json={"seeds": seeds, "n": 5, "model": MODEL})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == MODEL and len(body["tracks"]) == 5
    seed_uris = {f"spotify:track:{s.split('/')[-1].split('?')[0]}" for s in seeds}
    assert {s["uri"] for s in body["seeds"]} == seed_uris
    for t in body["tracks"]:
        assert t["uri"] not in seed_uris
        assert t["name"].startswith("Rock")  # the tiny catalog's playlists never mix clusters
        assert t["artists"] and t["explanation"] and isinstance(t["score"], float)
        assert t["url"] == f"https://open.spotify.com/track/{t['id']}"
    scores = [t["score"] for t in body["tracks"]]
    assert scores == sorted(scores, reverse=True)
    # built without the response model, the body still is one, field for field
    assert set(body) == set(RecommendResponse.model_fields)
    fields = [f.name for f in dataclasses.fields(TrackRecord)]
    assert all(list(t) == fields for t in body["tracks"] + body["seeds"])
    assert RecommendResponse.model_validate(body).model_dump() == body


def test_recommend_by_artist_name_and_playlist_name(client: TestClient) -> None:
    r = client.post("/recommend", json={"seeds": ["Rap Artist 1"], "n": 3, "model": MODEL})
    assert r.status_code == 200
    assert all(t["name"].startswith("Rap") for t in r.json()["tracks"])
    r = client.post(
        "/recommend", json={"seeds": ["country mix 3"], "n": 3, "model": MODEL, "explain": False}
    )
    assert r.status_code == 200
    body = r.json()
    assert body["title"] == "country mix 3"
    assert all(t["explanation"] is None for t in body["tracks"])


def test_filters_are_applied(client: TestClient, snap: Snapshot) -> None:
    seeds = ids_of(snap, "Chill")[:2]
    r = client.post(
        "/recommend",
        json={
            "seeds": seeds,
            "n": 10,
            "model": MODEL,
            "max_per_artist": 1,
            "exclude_artists": ["Rock Artist 0"],
        },
    )
    assert r.status_code == 200
    tracks = r.json()["tracks"]
    artists = [t["artists"][0] for t in tracks]
    assert len(artists) == len(set(artists)) and "Rock Artist 0" not in artists
    r = client.post(
        "/recommend",
        json={"seeds": seeds, "n": 20, "model": MODEL, "year_min": 1990, "year_max": 1999},
    )
    assert r.status_code == 200
    assert r.json()["tracks"] and all(1990 <= t["year"] <= 1999 for t in r.json()["tracks"])


def test_unknown_inputs_are_reported_not_fatal(client: TestClient, snap: Snapshot) -> None:
    seeds = [*ids_of(snap, "Chill")[:2], "0000000000000000000000", "no such song anywhere"]
    r = client.post("/recommend", json={"seeds": seeds, "n": 3, "model": MODEL})
    assert r.status_code == 200
    body = r.json()
    assert (
        "spotify:track:0000000000000000000000" in body["unknown"]
        or "0000000000000000000000" in body["unknown"]
    )
    assert "no such song anywhere" in body["unknown"]
    assert body["messages"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"seeds": ["x"], "n": 0}, "n"),
        ({"seeds": ["x"], "n": 501}, "n"),
        ({"seeds": ["x"], "n": "ten"}, "n"),
        ({"seeds": ["x"] * 1001}, "seeds"),
        ({"seeds": "spotify:track:6rqhFgbbKwnb9MLmUQDhG6"}, "seeds"),
        ({"seeds": [""]}, "seeds.0"),
        ({"seeds": ["x"], "popularity_min": 101}, "popularity_min"),
        ({"seeds": ["x"], "max_per_artist": 0}, "max_per_artist"),
        ({"seeds": ["x"], "colour": "blue"}, "colour"),
    ],
)
def test_invalid_requests_get_422_naming_the_field(
    client: TestClient, payload: dict, field: str
) -> None:
    r = client.post("/recommend", json=payload)
    assert r.status_code == 422
    body = r.json()
    assert field in {e["field"] for e in body["errors"]}
    assert field in body["detail"]
    assert_clean(r)


def test_a_body_that_is_not_json_gets_422(client: TestClient) -> None:
    r = client.post(
        "/recommend", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422
    assert_clean(r)


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        ({"seeds": ["https://open.spotify.com/track/short"]}, "not a Spotify reference"),
        ({"seeds": ["nothing like this exists"]}, "no seed track found"),
        ({"seeds": ["Rock Artist 0"], "model": "nope"}, "unknown model"),
        ({"seeds": ["Rock Artist 0"], "year_min": 2000, "year_max": 1990}, "year range is empty"),
        ({"seeds": ["/etc/passwd.csv"]}, "cannot be files"),
        ({"seeds": ["../../work/x.json"]}, "cannot be files"),
    ],
)
def test_bad_values_get_422_with_a_plain_message(
    client: TestClient, built: tuple[Path, Snapshot], payload: dict, words: str
) -> None:
    r = client.post("/recommend", json={"model": MODEL, **payload})
    assert r.status_code == 422, r.text
    assert words in r.json()["detail"]
    assert_clean(r, built[0])


def test_a_model_not_built_gets_503_without_paths(
    built: tuple[Path, Snapshot], tmp_path: Path
) -> None:
    home = tmp_path / "home"
    built[1].save(home / "artifacts" / "snapshot")  # a snapshot, no model
    with TestClient(create_app(Service(home, grow=False)), raise_server_exceptions=False) as c:
        r = c.post("/recommend", json={"seeds": ["Rock Artist 0"], "model": MODEL})
        assert r.status_code == 503
        assert "not built" in r.json()["detail"]
        assert_clean(r, home)
        r = c.post("/recommend", json={"seeds": ["Rock Artist 0"]})  # the default model
        assert r.status_code == 503
        assert_clean(r, home)


def test_no_snapshot_gets_503_and_health_says_not_ready(tmp_path: Path) -> None:
    home = tmp_path / "empty"
    with TestClient(create_app(Service(home, grow=False)), raise_server_exceptions=False) as c:
        health = c.get("/health")
        assert health.status_code == 200 and health.json()["status"] == "not ready"
        for r in (
            c.post("/recommend", json={"seeds": ["x"], "model": MODEL}),
            c.get("/tracks/search", params={"q": "x"}),
        ):
            assert r.status_code == 503
            assert "`segue --home <path> fit`" in r.json()["detail"]
            assert_clean(r, home)


def test_unexpected_errors_get_a_generic_500(
    client: TestClient, built: tuple[Path, Snapshot], monkeypatch: pytest.MonkeyPatch
) -> None:
    service = client.app.state.service  # type: ignore[attr-defined]

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"secret failure in {built[0]}/artifacts/models/x.py line 3")

    monkeypatch.setattr(service, "recommend", boom)
    r = client.post("/recommend", json={"seeds": ["Rock Artist 0"], "model": MODEL})
    assert r.status_code == 500
    assert r.json() == {"detail": "internal server error"}
    assert_clean(r, built[0])

    def catalog_down(*args: object, **kwargs: object) -> None:
        raise CatalogError(f"cannot open {built[0]}/catalog.duckdb: locked")

    monkeypatch.setattr(service, "recommend", catalog_down)
    r = client.post("/recommend", json={"seeds": ["Rock Artist 0"], "model": MODEL})
    assert r.status_code == 500
    assert "locked" in r.json()["detail"] and "<path>" in r.json()["detail"]
    assert_clean(r, built[0])


def test_public_message_hides_paths_but_keeps_links() -> None:
    exc = ValueError(
        "no snapshot in /srv/segue/home/artifacts: see https://open.spotify.com/track/abc and ~/x.py"
    )
    msg = public_message(exc)
    assert "/srv" not in msg and "x.py" not in msg
    assert "https://open.spotify.com/track/abc" in msg
    assert public_message(ValueError("C:\\Users\\me\\file.csv is bad")) == "<path> is bad"


def test_public_text_keeps_a_seeds_own_brackets_and_the_colon_after_a_path() -> None:
    assert public_text("unknown: [/]: no name") == "unknown: [/]: no name"
    assert public_text("unknown: [bold red]x[/]: no name") == "unknown: [bold red]x[/]: no name"
    assert public_text("no snapshot in /srv/h/artifacts: run `segue fit`") == (
        "no snapshot in <path>: run `segue fit`"
    )


# tracks -------------------------------------------------------------------------------------------
def test_search_tracks(client: TestClient) -> None:
    r = client.get("/tracks/search", params={"q": "ROCK artist", "limit": 3})
    assert r.status_code == 200
    hits = r.json()
    assert len(hits) == 3 and all(h["artists"][0].startswith("Rock Artist") for h in hits)
    assert [
        h["name"] for h in client.get("/tracks/search", params={"q": "rap song 25"}).json()
    ] == ["Rap Song 25"]
    assert client.get("/tracks/search", params={"q": "zzzz"}).json() == []
    for params in ({"q": ""}, {"q": "rock", "limit": 0}, {"q": "rock", "limit": 101}, {}):
        r = client.get("/tracks/search", params=params)
        assert r.status_code == 422
        assert_clean(r)
    r = client.get("/tracks/search", params={"q": "   "})
    assert r.status_code == 422 and "empty" in r.json()["detail"]


def test_get_track_by_id_uri_or_link(client: TestClient, snap: Snapshot) -> None:
    tid = snap.tracks["track_id"].iloc[3]
    for ref in (tid, f"spotify:track:{tid}"):
        r = client.get(f"/tracks/{ref}")
        assert r.status_code == 200
        assert r.json()["id"] == tid and r.json()["name"] == snap.tracks["name"].iloc[3]
    r = client.get("/tracks/0000000000000000000000")
    assert r.status_code == 404 and "not in the snapshot" in r.json()["detail"]
    assert_clean(r)
    r = client.get("/tracks/not-an-id")
    assert r.status_code == 422 and "not a Spotify reference" in r.json()["detail"]
    assert_clean(r)


def test_the_service_and_its_models_are_loaded_once(
    built: tuple[Path, Snapshot], monkeypatch: pytest.MonkeyPatch
) -> None:
    import segue.service.engine as service_module

    loads: list[str] = []
    real = service_module.load_model

    def counting(name: str, *args: object, **kwargs: object) -> object:
        loads.append(name)
        return real(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(service_module, "load_model", counting)
    service = Service(built[0], grow=False)
    with TestClient(create_app(service)) as c:
        assert c.app.state.service is service  # type: ignore[attr-defined]
        for _ in range(3):
            assert (
                c.post(
                    "/recommend", json={"seeds": ["Rock Artist 0"], "n": 2, "model": MODEL}
                ).status_code
                == 200
            )
    assert loads.count(MODEL) == 1


# a real server --------------------------------------------------------------------------------
def test_a_real_uvicorn_server_answers_concurrent_requests(built: tuple[Path, Snapshot]) -> None:
    import uvicorn

    app = create_app(Service(built[0], grow=False))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            assert thread.is_alive(), "uvicorn stopped while starting"
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        base = f"http://127.0.0.1:{port}"

        async def load() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=base, timeout=20) as c:
                calls = [
                    c.post("/recommend", json={"seeds": ["Chill Artist 1"], "n": 4, "model": MODEL})
                    for _ in range(8)
                ]
                calls.append(c.get("/health"))
                calls.append(c.post("/recommend", json={"seeds": ["x"], "n": 0}))
                return await asyncio.gather(*calls)

        responses = asyncio.run(load())
        assert [r.status_code for r in responses] == [200] * 9 + [422]
        first = json.dumps(responses[0].json()["tracks"])
        assert all(json.dumps(r.json()["tracks"]) == first for r in responses[1:8])
        assert_clean(responses[-1])
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert not thread.is_alive()


def test_serve_command_is_registered() -> None:
    from typer.testing import CliRunner

    from segue.cli import _registry, app

    _registry.register_all(app)
    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0
    assert "--port" in result.output and "--demo" in result.output
    result = CliRunner().invoke(app, ["serve", "--port", "0"])
    assert result.exit_code == 2


def _start_server(
    home: Path, port: int, *extra: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "segue", "--home", str(home), "serve", "--port", str(port)]
    return subprocess.Popen(
        [*command, *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )


@pytest.mark.skipif(not pool.supported(), reason="compute workers inherit their socket on POSIX")
def test_serve_workers_compute_in_their_own_processes_and_stop_together(
    built: tuple[Path, Snapshot], client: TestClient
) -> None:
    import psutil

    port = free_port()
    proc = _start_server(built[0], port, "--workers", "2")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(proc, base)
        workers = psutil.Process(proc.pid).children()
        assert len(workers) == 2
        bodies = [
            {"seeds": ["Rock Artist 0"], "n": 3, "model": MODEL},
            {"seeds": ids_of(built[1], "Chill")[:3], "n": 5, "model": MODEL, "year_min": 1990},
            {"seeds": ["Rock Artist 0"], "n": 3, "model": MODEL, "max_per_artist": 1},
            {"seeds": ["no such thing"], "model": MODEL},  # 422 from the service
            {"seeds": ["Rock Artist 0"], "model": "hybrid"},  # 503: not built
            {"seeds": ["Rock Artist 0"], "year_min": 2000, "year_max": 1990, "model": MODEL},
        ]
        with httpx.Client(base_url=base, timeout=30) as c:
            for body in bodies * 3:
                got = c.post("/recommend", json=body)
                want = client.post("/recommend", json=body)
                # the same status and body as computing in the API process
                assert (got.status_code, got.json()) == (want.status_code, want.json())
                assert_clean(got, built[0])
        cpu = [w.cpu_times().user for w in workers]
        assert all(t > 0 for t in cpu)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        stderr = proc.stderr.read().decode() if proc.stderr else ""
        if proc.stderr:
            proc.stderr.close()
    # uvicorn shuts down gracefully, then ends by the signal it was sent
    assert code in (0, -signal.SIGTERM), stderr
    assert "Traceback" not in stderr
    assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)


@pytest.mark.skipif(not pool.supported(), reason="compute workers inherit their socket on POSIX")
def test_a_compute_worker_that_dies_is_replaced(built: tuple[Path, Snapshot]) -> None:
    import psutil

    port = free_port()
    proc = _start_server(built[0], port, "--workers", "2")
    base = f"http://127.0.0.1:{port}"
    body = {"seeds": ["Rock Artist 0"], "n": 3, "model": MODEL}
    try:
        wait_healthy(proc, base)
        first = psutil.Process(proc.pid).children()
        first[0].kill()
        deadline = time.monotonic() + 10
        while first[0].is_running() and first[0].status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the worker did not die"
            time.sleep(0.05)
        statuses = []
        with httpx.Client(base_url=base, timeout=60) as c:
            for _ in range(10):
                statuses.append(c.post("/recommend", json=body).status_code)
        # nothing in flight when it died: every request is answered by a live worker
        assert statuses == [200] * 10
        deadline = time.monotonic() + 60
        while len(psutil.Process(proc.pid).children()) != 2:
            assert time.monotonic() < deadline, "no replacement worker"
            time.sleep(0.2)
        now = psutil.Process(proc.pid).children()
        assert first[1] in now and first[0] not in now
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        if proc.stderr:
            proc.stderr.close()


@pytest.mark.skipif(not pool.supported(), reason="compute workers inherit their socket on POSIX")
def test_workers_that_cannot_start_stop_the_server_with_one_message(
    built: tuple[Path, Snapshot],
) -> None:
    import os

    env = {**os.environ, "SEGUE_WORKER_START_TIMEOUT": "0.001"}
    command = [sys.executable, "-m", "segue", "--home", str(built[0]), "serve"]
    done = subprocess.run(
        [*command, "--port", str(free_port()), "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 1
    assert "error: a compute worker was not ready within 0.001 s" in done.stderr
    assert "SEGUE_WORKER_START_TIMEOUT" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_cancelled_request_does_not_leave_its_answer_to_the_next(
    built: tuple[Path, Snapshot], client: TestClient
) -> None:
    """The pool in process: a request cancelled while its worker computes (a client that went
    away) must not hand its answer to the next request on that worker."""
    if not pool.supported():
        pytest.skip("compute workers inherit their socket on POSIX")

    def request(seeds: list[str], n: int) -> dict[str, object]:
        return {
            "seeds": seeds,
            "n": n,
            "model": MODEL,
            "title": None,
            "filters": {},
            "explain": True,
        }

    async def scenario() -> list[tuple[int, dict[str, object]]]:
        compute = pool.ComputePool(built[0], 1)
        await compute.attach()
        try:
            first = asyncio.ensure_future(compute.recommend(request(["Rock Artist 0"], 2)))
            await asyncio.sleep(0)  # sent to the only worker
            first.cancel()
            answers = []
            for seeds, n in ((["Chill Artist 0"], 4), (["Rap Artist 1"], 3)):
                status, body = await compute.recommend(request(seeds, n))
                answers.append((status, json.loads(body)))
            return answers
        finally:
            await compute.close()

    answers = asyncio.run(scenario())
    for (status, body), (seeds, n) in zip(
        answers, ((["Chill Artist 0"], 4), (["Rap Artist 1"], 3)), strict=True
    ):
        want = client.post("/recommend", json={"seeds": seeds, "n": n, "model": MODEL})
        assert (status, body) == (want.status_code, want.json())


def _pool_request(seeds: list[str], n: int) -> dict[str, object]:
    return {"seeds": seeds, "n": n, "model": MODEL, "title": None, "filters": {}, "explain": True}


def _want(client: TestClient, seeds: list[str], n: int) -> tuple[int, object]:
    r = client.post("/recommend", json={"seeds": seeds, "n": n, "model": MODEL})
    return r.status_code, r.json()


def test_a_request_looking_names_up_computes_alone_on_its_worker(
    built: tuple[Path, Snapshot], client: TestClient
) -> None:
    """A heavy request goes to an idle worker and nothing is queued behind it there: the
    requests after it go to the other worker (or wait), each still answered its own."""
    if not pool.supported():
        pytest.skip("compute workers inherit their socket on POSIX")
    heavy_ask = (["Rock Artist 0", "Rock Artst 1"], 2)
    asks = [(["Chill Artist 0"], n) for n in range(1, 4)]

    async def scenario() -> tuple[list[int], int, list[tuple[int, object]]]:
        compute = pool.ComputePool(built[0], 2)
        await compute.attach()
        try:
            heavy = asyncio.ensure_future(compute.recommend(_pool_request(*heavy_ask), heavy=True))
            normal = [
                asyncio.ensure_future(compute.recommend(_pool_request(s, n))) for s, n in asks
            ]
            await asyncio.sleep(0)  # each request queued and dispatched
            holding = [
                len(w.pending)
                for w in compute._workers
                if any(a in compute._heavy for _, a in w.pending)
            ]
            others = [
                len(w.pending)
                for w in compute._workers
                if not any(a in compute._heavy for _, a in w.pending)
            ]
            answers = await asyncio.gather(heavy, *normal)
            return (
                holding + others,
                len(compute._queue),
                [(status, json.loads(body)) for status, body in answers],
            )
        finally:
            await compute.close()

    pending, queued_after, answers = asyncio.run(scenario())
    assert pending == [1, pool.DEPTH]  # the heavy one alone; the other worker full
    assert queued_after == 0
    assert answers == [_want(client, *heavy_ask)] + [_want(client, s, n) for s, n in asks]


def test_the_pool_answers_in_arrival_order_each_request_its_own(
    built: tuple[Path, Snapshot], client: TestClient
) -> None:
    if not pool.supported():
        pytest.skip("compute workers inherit their socket on POSIX")
    asks = [(["Rock Artist 0"], n) for n in range(1, 5)] + [(["Chill Artist 1"], 2)] * 3

    async def scenario() -> tuple[list[int], list[tuple[int, object]]]:
        compute = pool.ComputePool(built[0], 1)
        await compute.attach()
        done: list[int] = []
        try:
            tasks = [
                asyncio.ensure_future(compute.recommend(_pool_request(seeds, n)))
                for seeds, n in asks
            ]
            for i, task in enumerate(tasks):
                task.add_done_callback(lambda _, i=i: done.append(i))
            answers = await asyncio.gather(*tasks)
            return done, [(status, json.loads(body)) for status, body in answers]
        finally:
            await compute.close()

    done, answers = asyncio.run(scenario())
    assert done == list(range(len(asks)))  # one worker: first come, first served
    assert answers == [_want(client, seeds, n) for seeds, n in asks]


def test_when_no_worker_can_be_started_again_requests_fail_at_once(
    built: tuple[Path, Snapshot], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker dies and no process can be started in its place (here: every spawn fails as
    when no file descriptor is left): the waiting request gets PoolUnavailable (503), after
    every retry, instead of waiting for ever."""
    if not pool.supported():
        pytest.skip("compute workers inherit their socket on POSIX")
    monkeypatch.setattr(pool, "RESTART_DELAYS", (0.0, 0.0))
    attempts: list[int] = []

    def no_process() -> None:
        attempts.append(1)
        raise OSError(24, "Too many open files")

    async def scenario() -> tuple[BaseException | None, bool]:
        compute = pool.ComputePool(built[0], 1)
        await compute.attach()
        try:
            monkeypatch.setattr(compute, "_spawn", no_process)
            (worker,) = compute._workers
            worker.proc.kill()
            while compute.running:  # the pool sees the death and tries to start another
                await asyncio.sleep(0.01)
            try:
                await asyncio.wait_for(compute.recommend(_pool_request(["Rock Artist 0"], 2)), 30)
            except pool.PoolUnavailable as exc:
                return exc, compute.ready
            return None, compute.ready
        finally:
            await compute.close()

    error, ready = asyncio.run(scenario())
    assert error is not None and "no compute worker is running" in str(error)
    assert not ready and len(attempts) == 2


def test_uvicorn_workers_elsewhere_get_the_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Where the pool cannot run, uvicorn's workers start afresh: the home goes through the
    environment."""
    import uvicorn

    from segue.core.home import Home
    from segue.wire import serving

    seen: dict[str, object] = {}

    def run(app: str, **kwargs: object) -> None:
        import os

        seen.update(kwargs, app=app, home=os.environ.get("SEGUE_HOME"))

    monkeypatch.setattr(uvicorn, "run", run)
    monkeypatch.setenv("SEGUE_HOME", str(tmp_path / "elsewhere"))  # restored after the test
    serving._uvicorn_workers(Home(tmp_path / "home"), "127.0.0.1", 8123, 3)
    assert seen["home"] == str(tmp_path / "home")
    assert seen["app"] == "segue.wire.serving:create_served_app" and seen["workers"] == 3


def test_a_dead_workers_unstarted_requests_go_to_its_replacement(
    built: tuple[Path, Snapshot], client: TestClient
) -> None:
    """The request a worker was computing when it died gets 503 (it may be what killed it);
    the ones it had not started are answered by the worker started in its place."""
    if not pool.supported():
        pytest.skip("compute workers inherit their socket on POSIX")
    asks = [(["Rock Artist 0"], n) for n in range(1, 5)]

    async def scenario() -> tuple[list[tuple[int, object]], int, bool]:
        compute = pool.ComputePool(built[0], 1)
        await compute.attach()
        try:
            (worker,) = compute._workers
            worker.proc.kill()
            worker.proc.wait()
            # sent before the pool has noticed: they sit in the dead worker's socket
            answers = await asyncio.gather(
                *(compute.recommend(_pool_request(seeds, n)) for seeds, n in asks)
            )
            return (
                [(status, json.loads(body)) for status, body in answers],
                compute.running,
                compute._workers[0].proc.pid != worker.proc.pid,
            )
        finally:
            await compute.close()

    answers, running, replaced = asyncio.run(scenario())
    assert answers[0][0] == 503 and "stopped while answering" in str(answers[0][1])
    assert answers[1:] == [_want(client, seeds, n) for seeds, n in asks[1:]]
    assert running == 1 and replaced


def test_a_worker_stuck_on_a_request_is_stopped_and_replaced(
    built: tuple[Path, Snapshot], client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that does not answer within the request time limit (here: frozen with
    SIGSTOP) is stopped; its request gets 503 saying so, the next goes to its replacement."""
    if not pool.supported():
        pytest.skip("compute workers inherit their socket on POSIX")
    monkeypatch.setattr(pool, "REQUEST_TIMEOUT", 1.0)
    asks = [(["Rock Artist 0"], 2), (["Chill Artist 0"], 3)]

    async def scenario() -> list[tuple[int, object]]:
        compute = pool.ComputePool(built[0], 1)
        await compute.attach()
        try:
            (worker,) = compute._workers
            worker.proc.send_signal(signal.SIGSTOP)
            answers = await asyncio.wait_for(
                asyncio.gather(*(compute.recommend(_pool_request(s, n)) for s, n in asks)), 60
            )
            assert compute.running == 1 and compute._workers[0] is not worker
            return [(status, json.loads(body)) for status, body in answers]
        finally:
            await compute.close()

    answers = asyncio.run(scenario())
    assert answers[0] == (
        503,
        {"detail": "the request took longer than 1 s: its compute worker was stopped"},
    )
    assert answers[1] == _want(client, *asks[1])


@pytest.mark.skipif(not pool.supported(), reason="compute workers inherit their socket on POSIX")
def test_sigterm_to_the_process_group_stops_the_server_without_restarting_workers(
    built: tuple[Path, Snapshot],
) -> None:
    """A service manager stops a whole process group: the workers wait for their socket to
    close instead of dying under the API process (which would start others)."""
    import os

    import psutil

    port = free_port()
    command = [sys.executable, "-m", "segue", "--home", str(built[0]), "serve"]
    proc = subprocess.Popen(
        [*command, "--port", str(port), "--workers", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(proc, base)
        assert httpx.get(f"{base}/health", timeout=5).json()["workers"] == 2
        workers = psutil.Process(proc.pid).children()
        os.killpg(proc.pid, signal.SIGTERM)
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        stderr = proc.stderr.read().decode() if proc.stderr else ""
        if proc.stderr:
            proc.stderr.close()
    assert code in (0, -signal.SIGTERM), stderr
    assert "starting another" not in stderr and "Traceback" not in stderr
    assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)


def test_serve_says_when_the_port_is_taken(built: tuple[Path, Snapshot]) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = [sys.executable, "-m", "segue", "--home", str(built[0]), "serve"]
        for workers in ("1", "2"):
            done = subprocess.run(
                [*command, "--port", str(port), "--workers", workers],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 1
            assert f"port {port} on 127.0.0.1 is already in use" in done.stderr
            assert "--port" in done.stderr
            assert "Traceback" not in done.stderr


def test_messages_in_a_response_show_no_server_path() -> None:
    from segue.service.engine import Recommendation

    rec = Recommendation(
        model=MODEL,
        tracks=[],
        seeds=[],
        title=None,
        unknown=[],
        messages=["3 track(s) not in the catalog (cannot open catalog /srv/segue/catalog.duckdb)"],
    )
    (message,) = RecommendResponse.plain(rec)["messages"]
    assert message == "3 track(s) not in the catalog (cannot open catalog <path>)"


def _child_pids() -> set[int]:
    """This process's children, from /proc."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid():
                pids.add(int(entry.name))
    return pids


@pytest.mark.parametrize("delays", [(0.0,), (5.0,)])
def test_closing_stops_a_replacement_still_starting_or_waiting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, delays: tuple[float, ...]
) -> None:
    """Closed while a dead worker's replacement is starting, or waiting for its next try,
    the pool returns at once and leaves no worker process behind."""
    if not pool.supported() or not Path("/proc").is_dir():
        pytest.skip("compute workers inherit their socket on POSIX; children read from /proc")
    monkeypatch.setattr(pool, "RESTART_DELAYS", delays)
    before = _child_pids()

    async def scenario() -> tuple[float, int]:
        compute = pool.ComputePool(tmp_path, 1)  # no model: workers start, requests fail
        await compute.attach()
        compute._workers[0].proc.kill()
        deadline = time.monotonic() + 10
        while compute.running and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        began = time.monotonic()
        await compute.close()
        return time.monotonic() - began, len(compute._tasks)

    took, tasks = asyncio.run(scenario())
    assert tasks == 0 and took < 4.0
    assert _child_pids() <= before


@pytest.mark.parametrize(
    "seed", ["Ed\x00Sheeran", "\x00", "spotify:track:6rqhFgbbKwnb9MLmUQDhG6\x00"]
)
def test_a_seed_with_a_nul_is_refused_as_an_invalid_character(
    client: TestClient, seed: str
) -> None:
    r = client.post("/recommend", json={"seeds": ["x", seed]})
    assert r.status_code == 422, r.text
    assert "seeds.1 holds an invalid character (NUL)" in r.json()["detail"]
    assert "file" not in r.json()["detail"]
