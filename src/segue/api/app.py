"""The HTTP API (FastAPI): a thin shell over :class:`segue.service.engine.Service`.

``create_app()`` builds the application; ``segue serve`` runs it with uvicorn. One service is
created per application (in the lifespan) and its loaded snapshot and models are reused by
every request. Recommendations are computed on a few threads (:data:`COMPUTE_THREADS`), or,
with ``segue serve --workers N``, by N compute processes behind one queue (``segue.wire.pool``).

Errors never carry a stack trace or a server path: invalid requests give 422 naming the field,
a ``ValueError`` from the service gives 422 (404 for an unknown track id) with its message, a
model or snapshot not built yet gives 503, anything else 500 with a generic message. The
response records and the error replies are the wire layer's (:mod:`segue.wire.replies`), so a
compute worker answers exactly as this process does.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import anyio
import anyio.to_thread
import orjson
from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.exceptions import HTTPException as StarletteHTTPException

from segue import __version__
from segue.core.home import Home
from segue.models.registry import DEFAULT_MODEL
from segue.service import variants
from segue.service.engine import (
    MAX_NAME_LOOKUPS,
    MAX_PLAYLIST_LINKS,
    MAX_RESULTS,
    MAX_SEEDS,
    Filters,
    Service,
    TrackRecord,
    service_for_api,
)
from segue.service.variants import MAX_VALUE_CHARS, MAX_VARIANT_PARAMS
from segue.wire.pool import ComputePool, PoolUnavailable
from segue.wire.replies import (
    ERROR_REPLIES,
    ErrorOut,
    RecommendResponse,
    error_reply,
    public_message,
    public_text,
)

log = logging.getLogger("segue.api.app")

MAX_SEARCH_RESULTS = 100
#: Threads that compute recommendations at once, per worker process (more workers, not more
#: threads, use more cores: the models run mostly under the GIL).
COMPUTE_THREADS = 2
#: Threads that look names up, apart from the others: a flood of requests with names waits
#: here and leaves the compute threads to requests of references.
NAME_THREADS = 1
Reference = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
ArtistName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
#: A model parameter's name and value in a request: a short identifier; an integer or a short
#: text (which parameters, and their bounds, the service decides: segue.service.variants).
ParamName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
ParamValue = (
    Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]
    | Annotated[str, StringConstraints(max_length=MAX_VALUE_CHARS)]
)


# request and response bodies ----------------------------------------------------------------
class RecommendRequest(BaseModel):
    """What to continue and how. Unknown fields are refused, so a typo is not ignored, and
    values must have their JSON type (``"n": "10"``, ``"n": true`` and ``"explain": "yes"``
    are refused, not converted)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    seeds: list[Reference] = Field(
        default_factory=list,
        max_length=MAX_SEEDS,
        description="Tracks, artists or playlists: Spotify links, URIs or bare track ids, a catalog "
        f"playlist name, or a track or artist name (at most {MAX_NAME_LOOKUPS} distinct names "
        f"and {MAX_PLAYLIST_LINKS} playlist links; duplicates count once). Never a file: text "
        "that names one is refused.",
        examples=[["spotify:track:6rqhFgbbKwnb9MLmUQDhG6", "Daft Punk"]],
    )
    n: int = Field(10, ge=1, le=MAX_RESULTS, description="Number of tracks to return.")
    model: str = Field(
        DEFAULT_MODEL, min_length=1, max_length=50, description="Model name (see GET /models)."
    )
    params: dict[ParamName, ParamValue] = Field(
        default_factory=dict,
        max_length=MAX_VARIANT_PARAMS,
        description="A variant of the model: parameters changed for this request, refitting "
        "the model on the served snapshot (kept for the next requests). Only the content "
        f"models' feature settings may change: {variants.summary()}. Anything else is refused "
        "(422 naming the parameter).",
        examples=[{"n_genres": 20}],
    )
    title: str | None = Field(
        None, max_length=300, description="Playlist title; enough on its own."
    )
    exclude_artists: list[ArtistName] = Field(default_factory=list, max_length=1000)
    year_min: int | None = Field(None, ge=0, le=3000)
    year_max: int | None = Field(None, ge=0, le=3000)
    popularity_min: float | None = Field(None, ge=0, le=100)
    popularity_max: float | None = Field(None, ge=0, le=100)
    max_per_artist: int | None = Field(None, ge=1, le=MAX_RESULTS)
    allow_versions: bool = Field(
        False, description="Keep several versions of one song (same title and main artist)."
    )
    explain: bool = Field(True, description="Explain each track (slower on large catalogs).")


class ModelOut(BaseModel):
    name: str
    default: bool
    built: bool
    available: bool
    reason: str


class Health(BaseModel):
    status: str = Field(description="'ok' when recommendations can be served, else 'not ready'.")
    version: str
    tracks: int | None = None
    playlists: int | None = None
    workers: int | None = Field(
        default=None, description="Compute processes running (with `segue serve --workers N`)."
    )
    detail: str | None = None


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "The body cannot be read (not UTF-8)"},
    408: {"model": ErrorOut, "description": "The body did not arrive in time"},
    431: {"model": ErrorOut, "description": "Request headers too large"},
    422: {"model": ErrorOut, "description": "Invalid request, or nothing usable in it"},
    503: {"model": ErrorOut, "description": "Snapshot or model not built yet"},
    500: {"model": ErrorOut, "description": "Unexpected server error"},
}


# bounded requests ---------------------------------------------------------------------------
#: Bytes of request headers accepted (names and values); more gets 431.
MAX_HEADER_BYTES = 16 * 1024
#: Seconds a request's body may take to arrive, from its first byte read; longer gets 408.
BODY_TIMEOUT = 10.0


class _BodyTooSlow(Exception):
    pass


class BoundedRequests:
    """ASGI middleware: refuses headers over :data:`MAX_HEADER_BYTES` (431) and a body that
    takes longer than :data:`BODY_TIMEOUT` seconds to arrive (408), so a slow client cannot
    hold a connection and a request slot for ever.

    (uvicorn bounds a header section only while it is incomplete, with h11, and has no body
    timeout: this is the part it leaves.)"""

    def __init__(
        self,
        app: Any,
        *,
        max_header_bytes: int = MAX_HEADER_BYTES,
        body_timeout: float = BODY_TIMEOUT,
    ) -> None:
        self.app = app
        self.max_header_bytes = max_header_bytes
        self.body_timeout = body_timeout

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        size = sum(len(k) + len(v) for k, v in scope.get("headers", ()))
        if size > self.max_header_bytes:
            await self._reply(
                send, 431, f"request headers too large: at most {self.max_header_bytes} bytes"
            )
            return
        deadline: float | None = None
        started = timed_out = False

        async def bounded_receive() -> Any:
            nonlocal deadline, timed_out
            now = anyio.current_time()
            if deadline is None:
                deadline = now + self.body_timeout
            try:
                with anyio.fail_after(max(deadline - now, 0.0)):
                    return await receive()
            except TimeoutError:
                timed_out = True
                raise _BodyTooSlow from None

        async def watched_send(message: Any) -> None:
            # The app may turn the failed read into an answer of its own (FastAPI answers 400
            # "error parsing the body"): a body that timed out is answered 408 instead.
            nonlocal started
            if timed_out:
                if not started and message["type"] == "http.response.start":
                    started = True
                    await self._reply(send, 408, self._too_slow(), close=True)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, bounded_receive, watched_send)
        except _BodyTooSlow:
            if not started:
                await self._reply(send, 408, self._too_slow(), close=True)

    def _too_slow(self) -> str:
        return f"the request body did not arrive within {self.body_timeout:g} s"

    @staticmethod
    async def _reply(send: Any, status: int, detail: str, *, close: bool = False) -> None:
        headers = [(b"content-type", b"application/json")]
        if close:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": orjson.dumps({"detail": detail})})


# the application ----------------------------------------------------------------------------
def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def _error(e: dict[str, Any]) -> dict[str, str]:
    """One validation error as ``field`` and ``message``. Malformed JSON names the body (its
    location holds a byte offset, not a field) and says where it broke."""
    if e.get("type") == "json_invalid":
        loc = tuple(e.get("loc", ()))
        at = f" at byte {loc[-1]}" if loc and isinstance(loc[-1], int) else ""
        why = (e.get("ctx") or {}).get("error")
        return {"field": "body", "message": f"not valid JSON{at}" + (f": {why}" if why else "")}
    return {
        "field": _field(tuple(e.get("loc", ()))),
        "message": str(e.get("msg", "invalid value")),
    }


def create_app(
    service: Service | None = None,
    *,
    home: Home | None = None,
    compute: ComputePool | None = None,
    allow_growth: bool = False,
) -> FastAPI:
    """The API over ``service`` (default: :func:`service_for_api` on ``home``, growing the
    catalog only with ``allow_growth``; without ``home``, the one ``SEGUE_HOME`` or the
    platform default names).

    With ``compute``, recommendations are computed by that pool's worker processes
    (``segue serve --workers N``) and this process loads no model.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc = (
            service
            if service is not None
            else service_for_api(home or Home.resolve(None), allow_growth=allow_growth)
        )
        if svc.allow_files:
            raise ValueError("the API must not read files named in requests (allow_files=False)")
        app.state.service = svc
        app.state.compute = compute
        app.state.not_ready = None
        try:
            # Load the snapshot and default model now, so the first request is not the slow one.
            svc.snapshot  # noqa: B018
            if compute is None:
                svc.warm()
                svc.model(DEFAULT_MODEL)
        except Exception as exc:  # not built yet: requests say so; /health reports it
            app.state.not_ready = public_message(exc)
            log.warning("segue API starting without a ready default model: %s", public_message(exc))
        if compute is not None:
            await compute.attach()
        try:
            yield
        finally:
            if compute is not None:
                await compute.close()

    # The docs pages load Swagger UI and ReDoc from this server, not a CDN: /docs works offline.
    app = FastAPIOffline(
        title="segue",
        version=__version__,
        summary="Continue a playlist with tracks that fit.",
        lifespan=lifespan,
    )

    app.add_middleware(BoundedRequests)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [_error(e) for e in exc.errors()]
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return JSONResponse(
            status_code=422, content={"detail": f"invalid request: {summary}", "errors": errors}
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        detail = str(exc.detail)
        if exc.status_code == 400 and "parsing the body" in detail:
            # FastAPI says this of a body that is not UTF-8 and of JSON nested too deep for
            # Python's parser (RecursionError); a malformed body is a 422 instead.
            detail = (
                "the request body cannot be read: send JSON encoded as UTF-8, "
                "not nested hundreds of levels deep"
            )
        return JSONResponse(
            status_code=exc.status_code, content={"detail": detail}, headers=exc.headers
        )

    for exc_class in ERROR_REPLIES:

        @app.exception_handler(exc_class)
        async def service_error(request: Request, exc: Exception) -> JSONResponse:
            status, body = error_reply(exc)
            if status == 500:
                log.error("%s on %s", type(exc).__name__, request.url.path, exc_info=exc)
            return JSONResponse(status_code=status, content=body)

    def compute_limiter(request: Request, lane: str = "compute") -> anyio.CapacityLimiter:
        """The threads a request computes on: ``compute`` (:data:`COMPUTE_THREADS`) for
        requests of references only, ``names`` (:data:`NAME_THREADS`) for requests that look
        names up, so those never hold up the others however many arrive."""
        key = f"{lane}_limiter"
        limiter = getattr(request.app.state, key, None)
        if limiter is None:  # created on first use, inside the server's event loop
            size = NAME_THREADS if lane == "names" else COMPUTE_THREADS
            limiter = anyio.CapacityLimiter(size)
            setattr(request.app.state, key, limiter)
        return limiter  # type: ignore[no-any-return]

    def pool_names_gate(request: Request, pool: ComputePool) -> anyio.CapacityLimiter:
        gate = getattr(request.app.state, "pool_names_gate", None)
        if gate is None:  # created on first use, inside the server's event loop
            gate = anyio.CapacityLimiter(max(1, pool.size - 1))
            request.app.state.pool_names_gate = gate
        return gate  # type: ignore[no-any-return]

    def svc(request: Request) -> Service:
        return request.app.state.service  # type: ignore[no-any-return]

    @app.post("/recommend", response_model=RecommendResponse, responses=_ERRORS, tags=["recommend"])
    async def recommend(body: RecommendRequest, request: Request) -> Response:
        """Tracks that continue the seeds (and/or the title), best first, each explained."""
        _refuse_paths(body.seeds)
        # the caps and the variant are checked here, before the request waits for a compute
        # thread
        plan = svc(request).plan(body.seeds)
        variant = variants.parse(body.model, body.params)
        filters = Filters(
            exclude_artists=list(body.exclude_artists),
            year_min=body.year_min,
            year_max=body.year_max,
            popularity_min=body.popularity_min,
            popularity_max=body.popularity_max,
            max_per_artist=body.max_per_artist,
            allow_versions=body.allow_versions,
        )
        title = body.title.strip() if body.title and body.title.strip() else None
        pool: ComputePool | None = request.app.state.compute
        # Requests that look names up or ask for a variant (which may need a refit) take the
        # slow lane, so they never hold up requests of references to built models.
        lane = "names" if plan.distinct_names or variant.params else "compute"
        if pool is not None:
            ask = {
                "seeds": list(body.seeds),
                "n": body.n,
                "model": variant.model,
                "params": variant.as_dict(),
                "title": title,
                "filters": dataclasses.asdict(filters),
                "explain": body.explain,
            }
            try:
                if lane == "names":
                    # at most all workers but one look names up at once: one stays free
                    # for requests of references
                    async with pool_names_gate(request, pool):
                        status, answer = await pool.recommend(ask, heavy=True)
                else:
                    status, answer = await pool.recommend(ask)
            except PoolUnavailable as exc:
                status, answer = 503, orjson.dumps({"detail": str(exc)})
            return Response(answer, status_code=status, media_type="application/json")
        call = functools.partial(
            svc(request).recommend,
            list(body.seeds),
            n=body.n,
            model=variant.model,
            title=title,
            filters=filters,
            explain=body.explain,
            params=variant.as_dict(),
        )
        # Computing requests take turns on a few threads (COMPUTE_THREADS) rather than on the
        # threadpool's forty: the work is CPU-bound under the GIL, and forty threads taking
        # turns cost half as much CPU again as the work itself, while waiting requests queue
        # in arrival order here.
        rec = await anyio.to_thread.run_sync(call, limiter=compute_limiter(request, lane))
        # Serialised here with orjson: the records are typed by the service, and validating
        # them again through the response model costs more than the rest of the request
        # handling (the schema in the OpenAPI document is still RecommendResponse).
        return Response(orjson.dumps(RecommendResponse.plain(rec)), media_type="application/json")

    @app.get("/tracks/search", response_model=list[TrackRecord], responses=_ERRORS, tags=["tracks"])
    def search_tracks(
        request: Request,
        q: Annotated[
            str, Query(min_length=1, max_length=300, description="Words of a track or artist name.")
        ],
        limit: Annotated[int, Query(ge=1, le=MAX_SEARCH_RESULTS)] = 10,
    ) -> list[TrackRecord]:
        """Catalog tracks whose name or artist holds every word of ``q``, most played first."""
        return svc(request).search_tracks(q, limit=limit)

    @app.get(
        "/tracks/{track}",
        response_model=TrackRecord,
        responses={**_ERRORS, 404: {"model": ErrorOut, "description": "Track not in the catalog"}},
        tags=["tracks"],
    )
    def get_track(
        request: Request,
        track: Annotated[str, Path(max_length=300, description="Track id, URI or link.")],
    ) -> TrackRecord | JSONResponse:
        """One catalog track by Spotify id, URI or link."""
        from segue.core import ids

        track_id = ids.track_id(track)  # malformed: ValueError -> 422
        try:
            return svc(request).get_track(track_id)
        except ValueError as exc:
            return JSONResponse(status_code=404, content={"detail": public_message(exc)})

    @app.get("/models", response_model=list[ModelOut], tags=["models"])
    def models(request: Request) -> list[ModelOut]:
        """Every model, whether it is built here and usable, and why not."""
        # reasons name the rebuild command, whose --home is a server path
        return [
            ModelOut(**{**m, "reason": public_text(m["reason"])}) for m in svc(request).models()
        ]

    @app.get("/health", response_model=Health, tags=["health"])
    async def health(request: Request) -> Health:
        """Cheap liveness and readiness check (never loads anything)."""
        s: Service = request.app.state.service
        snap = s.snapshot if s.loaded else None
        # why loading failed at start (a damaged or missing artifact, named), if it did
        why = getattr(request.app.state, "not_ready", None)
        if snap is None:
            return Health(
                status="not ready",
                version=__version__,
                detail=why or "no snapshot loaded: run `segue fit`",
            )
        pool: ComputePool | None = request.app.state.compute
        if pool is not None and not pool.ready:
            return Health(
                status="not ready",
                version=__version__,
                workers=0,
                detail="no compute worker is running: see the server's log",
            )
        return Health(
            status="ok",
            version=__version__,
            tracks=snap.n_tracks,
            playlists=snap.n_playlists,
            workers=None if pool is None else pool.running,
            detail=why,
        )

    return app


def _refuse_paths(seeds: list[str]) -> None:
    """Refuse seeds that name files (:func:`segue.service.inputs.names_a_file`, decided from the text
    alone): the API never reads a server file, and its answer tells nothing about which exist."""
    from segue.service.engine import NUL_SEED
    from segue.service.inputs import names_a_file

    for position, text in enumerate(seeds):
        if "\x00" in text:
            raise ValueError(f"seeds.{position} holds an invalid character (NUL): {NUL_SEED}")
        if names_a_file(text):
            raise ValueError(
                f"seeds.{position} names a file: seeds cannot be files on the server; "
                "send track, artist or playlist references or names"
            )


__all__ = ["RecommendRequest", "create_app"]
