"""A fake Spotify Web API (and a ReccoBeats-style audio-feature service) on 127.0.0.1.

A real HTTP server in a thread, answering in the Web API's JSON shapes:

* ``POST /api/token`` — client-credentials grant, HTTP Basic auth checked, ``expires_in`` 3600;
* ``GET /v1/tracks?ids=`` (50 max), ``/v1/tracks/{id}``, ``/v1/artists?ids=`` (50),
  ``/v1/artists/{id}``, ``/v1/audio-features?ids=`` (100), ``/v1/audio-features/{id}``;
* ``GET /v1/playlists/{id}``, ``/v1/playlists/{id}/items`` (entries under ``item``) and
  ``/v1/playlists/{id}/tracks`` (entries under ``track``), paged with absolute ``next`` links;
* ``GET /v1/recommendations?seed_tracks=&limit=`` (1 to 5 seeds, limit 1..100, default 20;
  ``{"tracks": [...], "seeds": [...]}``; what it answers is :attr:`World.recommend`);
* ``GET /recco/v1/audio-features?ids=`` (40 max; unknown ids omitted, each item names its Spotify
  id in ``href``) and ``/recco/v1/track/{id}/audio-features``.

Failure modes are rules per endpoint (:meth:`FakeSpotify.fail`): an HTTP status (401, 403, 404,
429 with ``Retry-After``, 500, 503), malformed JSON, slow answers, dropped connections. Every
request is recorded (:attr:`FakeSpotify.requests`) with the ids it asked for and when, so tests
can assert that no id was asked twice and how long the client waited.

Use::

    with FakeSpotify(make_world(120, seed=3)) as fake:
        fake.fail("tracks", status=403)
        monkeypatch.setenv(...)  # or: for k, v in fake.env().items(): monkeypatch.setenv(k, v)
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import random
import socket
import string
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

CLIENT_ID = "fakeclientid0123456789abcdef0123"
CLIENT_SECRET = "fakeSECRET-7f3a9c1e5b2d4f6a8c0e-never-log-me"
BASIC_HEADER = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()

FEATURES = (
    "danceability",
    "energy",
    "key",
    "loudness",
    "mode",
    "speechiness",
    "acousticness",
    "instrumentalness",
    "liveness",
    "valence",
    "tempo",
    "time_signature",
)
_B62 = string.digits + string.ascii_letters

# Endpoint names used by rules and records.
ENDPOINTS = (
    "token",
    "tracks",
    "track",
    "artists",
    "artist",
    "audio-features",
    "audio-feature",
    "playlist",
    "playlist-items",
    "playlist-tracks",
    "recommendations",
    "recco-batch",
    "recco-single",
)


def make_id(rng: random.Random) -> str:
    """A random 22-character base62 id."""
    return "".join(rng.choice(_B62) for _ in range(22))


@dataclass
class World:
    """What the fake knows: Web API objects by id, playlists, recommendations."""

    tracks: dict[str, dict[str, Any]] = field(default_factory=dict)
    artists: dict[str, dict[str, Any]] = field(default_factory=dict)
    audio_features: dict[str, dict[str, Any]] = field(default_factory=dict)
    playlists: dict[str, dict[str, Any]] = field(
        default_factory=dict
    )  # id -> {"name", "track_ids"}
    recommendations: list[str] = field(default_factory=list)  # track ids answered, best first
    #: Spotify's own judgement: ``rule(seed_ids)`` gives the track ids to answer, best first
    #: (the fake drops the seeds and cuts at ``limit``). None answers :attr:`recommendations`.
    recommend: Callable[[list[str]], list[str]] | None = None

    def track_ids(self) -> list[str]:
        return list(self.tracks)


def track_object(
    track_id: str,
    name: str,
    artists: list[tuple[str, str]],
    album_id: str,
    album_name: str,
    release_date: str,
    popularity: int,
    duration_ms: int,
) -> dict[str, Any]:
    """A track object in the Web API's shape (full form)."""
    precision = {4: "year", 7: "month"}.get(len(release_date), "day")
    simple_artists = [
        {
            "external_urls": {"spotify": f"https://open.spotify.com/artist/{aid}"},
            "href": f"https://api.spotify.com/v1/artists/{aid}",
            "id": aid,
            "name": aname,
            "type": "artist",
            "uri": f"spotify:artist:{aid}",
        }
        for aid, aname in artists
    ]
    return {
        "album": {
            "album_type": "album",
            "total_tracks": 10,
            "available_markets": ["DE", "US"],
            "external_urls": {"spotify": f"https://open.spotify.com/album/{album_id}"},
            "href": f"https://api.spotify.com/v1/albums/{album_id}",
            "id": album_id,
            "images": [],
            "name": album_name,
            "release_date": release_date,
            "release_date_precision": precision,
            "type": "album",
            "uri": f"spotify:album:{album_id}",
            "artists": simple_artists[:1],
        },
        "artists": simple_artists,
        "available_markets": ["DE", "US"],
        "disc_number": 1,
        "duration_ms": duration_ms,
        "explicit": False,
        "external_ids": {"isrc": "USXXX0000000"},
        "external_urls": {"spotify": f"https://open.spotify.com/track/{track_id}"},
        "href": f"https://api.spotify.com/v1/tracks/{track_id}",
        "id": track_id,
        "is_local": False,
        "name": name,
        "popularity": popularity,
        "preview_url": None,
        "track_number": 1,
        "type": "track",
        "uri": f"spotify:track:{track_id}",
    }


def artist_object(artist_id: str, name: str, genres: list[str], popularity: int) -> dict[str, Any]:
    return {
        "external_urls": {"spotify": f"https://open.spotify.com/artist/{artist_id}"},
        "followers": {"href": None, "total": 1000},
        "genres": genres,
        "href": f"https://api.spotify.com/v1/artists/{artist_id}",
        "id": artist_id,
        "images": [],
        "name": name,
        "popularity": popularity,
        "type": "artist",
        "uri": f"spotify:artist:{artist_id}",
    }


def audio_features_object(track_id: str, rng: random.Random) -> dict[str, Any]:
    return {
        "acousticness": round(rng.random(), 3),
        "analysis_url": f"https://api.spotify.com/v1/audio-analysis/{track_id}",
        "danceability": round(rng.random(), 3),
        "duration_ms": 200000,
        "energy": round(rng.random(), 3),
        "id": track_id,
        "instrumentalness": round(rng.random(), 3),
        "key": rng.randrange(12),
        "liveness": round(rng.random(), 3),
        "loudness": round(-rng.random() * 20, 3),
        "mode": rng.randrange(2),
        "speechiness": round(rng.random(), 3),
        "tempo": round(60 + rng.random() * 120, 3),
        "time_signature": 4,
        "track_href": f"https://api.spotify.com/v1/tracks/{track_id}",
        "type": "audio_features",
        "uri": f"spotify:track:{track_id}",
        "valence": round(rng.random(), 3),
    }


def make_world(
    n_tracks: int = 60,
    *,
    n_artists: int | None = None,
    seed: int = 0,
    n_playlists: int = 1,
    playlist_length: int = 120,
) -> World:
    """A deterministic world of ``n_tracks`` tracks by ``n_artists`` artists, with audio features,
    ``n_playlists`` playlists (tracks drawn with repetition allowed) and a recommendation list."""
    rng = random.Random(seed)
    n_artists = n_artists or max(1, n_tracks // 3)
    genres_pool = [
        "indie rock",
        "dream pop",
        "trip hop",
        "neo soul",
        "dance pop",
        "ambient",
        "garage rock",
    ]
    world = World()
    artist_ids = [make_id(rng) for _ in range(n_artists)]
    for k, aid in enumerate(artist_ids):
        world.artists[aid] = artist_object(
            aid, f"Artist {k}", rng.sample(genres_pool, rng.randrange(0, 3)), rng.randrange(101)
        )
    for k in range(n_tracks):
        tid = make_id(rng)
        aid = artist_ids[k % n_artists]
        album_id = make_id(rng)
        year = 1960 + rng.randrange(60)
        release = rng.choice(
            [
                f"{year}",
                f"{year}-0{rng.randrange(1, 10)}",
                f"{year}-0{rng.randrange(1, 10)}-1{rng.randrange(10)}",
            ]
        )
        world.tracks[tid] = track_object(
            tid,
            f"Track {k}",
            [(aid, world.artists[aid]["name"])],
            album_id,
            f"Album {k}",
            release,
            rng.randrange(101),
            150000 + rng.randrange(100000),
        )
        world.audio_features[tid] = audio_features_object(tid, rng)
    ids = list(world.tracks)
    for _ in range(n_playlists):
        pid = make_id(rng)
        world.playlists[pid] = {
            "name": f"Playlist {pid[:4]}",
            "track_ids": [rng.choice(ids) for _ in range(min(playlist_length, 10 * len(ids)))],
        }
    world.recommendations = rng.sample(ids, min(20, len(ids)))
    return world


def numbered_id(i: int) -> str:
    """The 22-character id spelling ``i`` with leading zeros (the ids of numbered test tracks)."""
    return f"{i:022d}"


def parity_world(n_tracks: int, *, seed: int = 0) -> World:
    """Tracks ``numbered_id(0)``..``numbered_id(n_tracks - 1)`` whose recommendations follow the
    parity of the numbers: seeds mostly even (a tie: the first seed decides) get every even
    track, odd ones every odd track, best first in one fixed shuffled order; seeds that are not
    numbered get every track. This rule stands for Spotify's own judgement; a snapshot knowing
    fewer tracks sees unknown ones answered."""
    rng = random.Random(seed)
    world = World()
    artists = [(make_id(rng), "Even Band"), (make_id(rng), "Odd Band")]
    for aid, name in artists:
        genres = ["dance pop"] if name.startswith("Even") else ["death metal"]
        world.artists[aid] = artist_object(aid, name, genres, 50)
    for i in range(n_tracks):
        tid = numbered_id(i)
        world.tracks[tid] = track_object(
            tid,
            f"song {i}",
            [artists[i % 2]],
            make_id(rng),
            f"album {i}",
            "2012-01-01" if i % 2 == 0 else "1991-01-01",
            rng.randrange(101),
            150000 + rng.randrange(100000),
        )
        world.audio_features[tid] = audio_features_object(tid, rng)
    order = list(world.tracks)
    rng.shuffle(order)
    world.recommendations = order

    def same_parity(seed_ids: list[str]) -> list[str]:
        numbers = [int(s) for s in seed_ids if s.isdigit()]
        if not numbers:  # seeds this world does not number (e.g. a probe): every track
            return order
        odd = sum(n % 2 for n in numbers)
        even = len(numbers) - odd
        parity = numbers[0] % 2 if odd == even else int(odd > even)
        return [t for t in order if int(t) % 2 == parity]

    world.recommend = same_parity
    return world


@dataclass
class Rule:
    """A failure to inject. ``endpoint`` among :data:`ENDPOINTS` or "*" (all but the token).

    ``mode``: "status" (answer ``status`` with an error body and ``retry_after``), "malformed"
    (200 with a body that is not JSON), "slow" (wait ``delay`` s, then answer normally), "drop"
    (close the connection without answering). ``times``: how many requests it hits (None =
    all); ``skip``: matching requests to let through first; ``ids``: only requests asking about
    one of these ids.
    """

    endpoint: str
    mode: str = "status"
    status: int = 500
    retry_after: float | str | None = None
    times: int | None = None
    skip: int = 0
    delay: float = 0.0
    ids: frozenset[str] | None = None
    reason: str | None = None
    hits: int = 0


@dataclass
class Recorded:
    method: str
    path: str
    endpoint: str
    query: dict[str, list[str]]
    ids: list[str]
    at: float  # time.monotonic() when the request arrived
    status: int | None = None  # None: dropped
    authorization: str | None = None


class FakeSpotify:
    """The server. ``world``: what it knows. ``remove_fields``: drop ``popularity`` from tracks and
    ``popularity``/``followers`` from artists, as for 2026 development-mode apps."""

    def __init__(
        self,
        world: World | None = None,
        *,
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
        remove_fields: bool = False,
        echo_secrets: bool = False,
    ) -> None:
        self.world = world or make_world()
        #: Error answers quote what the client sent (its Authorization header, the client id and
        #: secret, the access token), as careless servers do: segue must never repeat them.
        self.echo_secrets = echo_secrets
        #: Where ``next`` links point (default: this server), to test links to another host.
        self.link_base: str | None = None
        self.client_id = client_id
        self.client_secret = client_secret
        self.remove_fields = remove_fields
        self.rules: list[Rule] = []
        self.requests: list[Recorded] = []
        self.tokens: set[str] = set()
        self.tokens_issued = 0
        self.tokens_seen: list[str] = []  # every token issued, expired ones too
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle ------------------------------------------------------------------------------
    def start(self) -> FakeSpotify:
        handler = type("Handler", (_Handler,), {"fake": self})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        server.block_on_close = False
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeSpotify:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the fake server is not running")
        return int(self._server.server_address[1])

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        return f"{self.base}/v1/"

    @property
    def token_url(self) -> str:
        return f"{self.base}/api/token"

    @property
    def audio_base(self) -> str:
        return f"{self.base}/recco/v1"

    def env(self, *, credentials: bool = True, audio: bool = True) -> dict[str, str]:
        """Environment variables pointing segue at this server."""
        out = {"SEGUE_SPOTIFY_API_BASE": self.api_base, "SEGUE_SPOTIFY_TOKEN_URL": self.token_url}
        if audio:
            out["SEGUE_AUDIO_FEATURES_BASE"] = self.audio_base
        if credentials:
            out["SPOTIPY_CLIENT_ID"] = self.client_id
            out["SPOTIPY_CLIENT_SECRET"] = self.client_secret
        return out

    # failures ------------------------------------------------------------------------------
    def fail(
        self,
        endpoint: str,
        *,
        mode: str = "status",
        status: int = 500,
        retry_after: float | str | None = None,
        times: int | None = None,
        skip: int = 0,
        delay: float = 0.0,
        ids: list[str] | None = None,
        reason: str | None = None,
    ) -> Rule:
        if endpoint != "*" and endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; expected one of {ENDPOINTS} or '*'")
        if mode not in ("status", "malformed", "slow", "drop"):
            raise ValueError(f"unknown mode {mode!r}")
        rule = Rule(
            endpoint,
            mode,
            status,
            retry_after,
            times,
            skip,
            delay,
            frozenset(ids) if ids is not None else None,
            reason,
        )
        with self._lock:
            self.rules.append(rule)
        return rule

    def dev_mode_2026(self) -> None:
        """Answer like a 2026 development-mode app: batch lookups, audio features and
        recommendations 403, no popularity fields."""
        for endpoint in ("tracks", "artists", "audio-features", "audio-feature", "recommendations"):
            self.fail(endpoint, status=403)
        self.remove_fields = True

    def clear_failures(self) -> None:
        with self._lock:
            self.rules.clear()

    def expire_tokens(self) -> None:
        """Every token issued so far stops working (the next API call answers 401)."""
        with self._lock:
            self.tokens.clear()

    # records -------------------------------------------------------------------------------
    def requests_to(self, *endpoints: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.endpoint in endpoints]

    def asked_ids(self, *endpoints: str, answered_only: bool = True) -> list[str]:
        """Ids asked on these endpoints, in order, repeated when asked again. ``answered_only``:
        count only requests that got a 200 (a failed request asked nothing)."""
        out: list[str] = []
        for r in self.requests_to(*endpoints):
            if not answered_only or r.status == 200:
                out.extend(r.ids)
        return out

    def gaps(self, *endpoints: str) -> list[float]:
        """Seconds between consecutive requests to these endpoints."""
        times = [r.at for r in self.requests_to(*endpoints)]
        return [b - a for a, b in itertools.pairwise(times)]

    # internals -----------------------------------------------------------------------------
    def _match(self, endpoint: str, ids: list[str]) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.endpoint != endpoint and not (rule.endpoint == "*" and endpoint != "token"):
                    continue
                if rule.ids is not None and not rule.ids.intersection(ids):
                    continue
                if rule.skip > 0:
                    rule.skip -= 1
                    continue
                if rule.times is not None and rule.hits >= rule.times:
                    continue
                rule.hits += 1
                return rule
        return None

    def _echo(self, body: Any, authorization: str | None) -> Any:
        """``body`` (an error answer) with the credentials the client sent quoted in its message."""
        sent = authorization or ""
        bare = sent.split(" ", 1)[-1] if sent else ""
        client_id, secret, token = self.client_id, self.client_secret, bare
        if sent.startswith("Basic "):  # the token endpoint: quote the id and secret sent
            with contextlib.suppress(ValueError):
                client_id, _, secret = base64.b64decode(bare).decode().partition(":")
            token = ""
        echo = (
            f"; you sent Authorization: {sent}; raw credential {bare}; "
            f"client_id={client_id}&client_secret={secret}; {secret}; access token {token}"
        )
        body = json.loads(json.dumps(body))
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            error["message"] = str(error.get("message", "")) + echo
        elif isinstance(body, dict):
            body["error_description"] = str(body.get("error_description", "")) + echo
        return body

    def _issue_token(self) -> str:
        token = uuid.uuid4().hex
        with self._lock:
            self.tokens.add(token)
            self.tokens_issued += 1
            self.tokens_seen.append(token)
        return token

    def _track(self, tid: str) -> dict[str, Any] | None:
        obj = self.world.tracks.get(tid)
        if obj is None:
            return None
        obj = json.loads(json.dumps(obj))
        if self.remove_fields:
            obj.pop("popularity", None)
            obj.pop("available_markets", None)
            obj["album"].pop("available_markets", None)
        return obj

    def _artist(self, aid: str) -> dict[str, Any] | None:
        obj = self.world.artists.get(aid)
        if obj is None:
            return None
        obj = dict(obj)
        if self.remove_fields:
            obj.pop("popularity", None)
            obj.pop("followers", None)
        return obj


def _error(status: int, message: str, reason: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": {"status": status, "message": message}}
    if reason:
        body["error"]["reason"] = reason
    return body


def _valid(i: str) -> bool:
    return len(i) == 22 and all(c in _B62 for c in i)


class _Handler(BaseHTTPRequestHandler):
    fake: FakeSpotify
    server_version = "FakeSpotify/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # routing -------------------------------------------------------------------------------
    def _route(
        self, method: str, path: str, query: dict[str, list[str]]
    ) -> tuple[str, list[str], list[str]]:
        """(endpoint, path parts after the prefix, ids asked)."""
        parts = [p for p in path.split("/") if p]
        ids_param = [i for v in query.get("ids", []) for i in v.split(",") if i]
        if method == "POST" and parts == ["api", "token"]:
            return "token", parts, []
        if parts[:1] == ["recco"] and parts[1:3] == ["v1", "audio-features"] and len(parts) == 3:
            return "recco-batch", parts, ids_param
        if (
            parts[:1] == ["recco"]
            and len(parts) == 5
            and parts[2] == "track"
            and parts[4] == "audio-features"
        ):
            return "recco-single", parts, [parts[3]]
        if parts[:1] != ["v1"] or len(parts) < 2:
            return "unknown", parts, []
        rest = parts[1:]
        kind = rest[0]
        if kind in ("tracks", "artists", "audio-features"):
            if len(rest) == 1:
                return kind, parts, ids_param
            single = {"tracks": "track", "artists": "artist", "audio-features": "audio-feature"}[
                kind
            ]
            return single, parts, [rest[1]]
        if kind == "playlists" and len(rest) == 2:
            return "playlist", parts, []
        if kind == "playlists" and len(rest) == 3 and rest[2] in ("items", "tracks"):
            return f"playlist-{rest[2]}", parts, []
        if kind == "recommendations":
            seeds = [i for v in query.get("seed_tracks", []) for i in v.split(",") if i]
            return "recommendations", parts, seeds
        return "unknown", parts, []

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        fake = self.fake
        split = urlsplit(self.path)
        query = parse_qs(split.query)
        endpoint, parts, ids = self._route(method, split.path, query)
        record = Recorded(
            method,
            split.path,
            endpoint,
            query,
            ids,
            time.monotonic(),
            authorization=self.headers.get("Authorization"),
        )
        with fake._lock:
            fake.requests.append(record)
        body_len = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(body_len) if body_len else b""
        try:
            rule = fake._match(endpoint, ids)
            if rule is not None:
                if rule.mode == "drop":
                    record.status = None
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if rule.mode == "slow":
                    fake._stopping.wait(rule.delay)
                elif rule.mode == "malformed":
                    self._send(record, 200, b'{"tracks": [{"id": "abc", "name": ', raw=True)
                    return
                else:
                    headers = {}
                    if rule.retry_after is not None:
                        headers["Retry-After"] = str(rule.retry_after)
                    message = {
                        401: "The access token expired",
                        403: "Forbidden",
                        404: "Resource not found",
                        429: "API rate limit exceeded",
                        500: "Server error",
                        503: "Service unavailable",
                    }
                    self._send(
                        record,
                        rule.status,
                        _error(rule.status, message.get(rule.status, "Error"), rule.reason),
                        headers=headers,
                    )
                    return
            self._answer(record, method, endpoint, parts, query, ids, raw_body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _send(
        self,
        record: Recorded,
        status: int,
        body: Any,
        *,
        raw: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        if not raw and status >= 400 and self.fake.echo_secrets:
            body = self.fake._echo(body, self.headers.get("Authorization"))
        data = body if raw else json.dumps(body).encode()
        record.status = status
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _authorised(self, record: Recorded) -> bool:
        auth = self.headers.get("Authorization") or ""
        token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else None
        with self.fake._lock:
            ok = token is not None and token in self.fake.tokens
        if not ok:
            self._send(
                record,
                401,
                _error(401, "The access token expired" if token else "No token provided"),
            )
        return ok

    def _answer(
        self,
        record: Recorded,
        method: str,
        endpoint: str,
        parts: list[str],
        query: dict[str, list[str]],
        ids: list[str],
        raw_body: bytes,
    ) -> None:
        fake = self.fake
        world = fake.world
        if endpoint == "token":
            form = parse_qs(raw_body.decode())
            auth = self.headers.get("Authorization") or ""
            expected = (
                "Basic "
                + base64.b64encode(f"{fake.client_id}:{fake.client_secret}".encode()).decode()
            )
            if auth != expected:
                self._send(
                    record, 400, {"error": "invalid_client", "error_description": "Invalid client"}
                )
            elif form.get("grant_type") != ["client_credentials"]:
                self._send(
                    record,
                    400,
                    {"error": "unsupported_grant_type", "error_description": "grant_type"},
                )
            else:
                self._send(
                    record,
                    200,
                    {
                        "access_token": fake._issue_token(),
                        "token_type": "Bearer",
                        "expires_in": 3600,
                    },
                )
            return
        if endpoint == "unknown":
            self._send(record, 404, _error(404, "Service not found"))
            return
        if endpoint == "recco-batch":
            if len(ids) > 40:
                self._send(record, 400, {"error": "Too many ids", "status": 400})
                return
            content = []
            for tid in ids:
                feats = world.audio_features.get(tid)
                if feats is not None:
                    item = {k: feats[k] for k in FEATURES if k in feats and k != "time_signature"}
                    item.update(
                        {
                            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, tid)),
                            "href": f"https://open.spotify.com/track/{tid}",
                        }
                    )
                    content.append(item)
            self._send(record, 200, {"content": content})
            return
        if endpoint == "recco-single":
            feats = world.audio_features.get(ids[0])
            if feats is None:
                self._send(record, 404, {"error": "Not Found", "status": 404})
            else:
                self._send(record, 200, {k: feats[k] for k in FEATURES if k in feats})
            return
        if not self._authorised(record):
            return
        if endpoint in ("tracks", "artists", "audio-features"):
            limit = 100 if endpoint == "audio-features" else 50
            if not ids:
                self._send(record, 400, _error(400, "invalid request: no ids"))
                return
            if len(ids) > limit:
                self._send(record, 400, _error(400, "Too many ids requested"))
                return
            if not all(_valid(i) for i in ids):
                self._send(record, 400, _error(400, "invalid id"))
                return
            if endpoint == "tracks":
                self._send(record, 200, {"tracks": [fake._track(i) for i in ids]})
            elif endpoint == "artists":
                self._send(record, 200, {"artists": [fake._artist(i) for i in ids]})
            else:
                self._send(
                    record, 200, {"audio_features": [world.audio_features.get(i) for i in ids]}
                )
            return
        if endpoint in ("track", "artist", "audio-feature"):
            one = ids[0]
            if not _valid(one):
                self._send(record, 400, _error(400, "Invalid base62 id"))
                return
            lookups: dict[str, Callable[[str], dict[str, Any] | None]] = {
                "track": fake._track,
                "artist": fake._artist,
                "audio-feature": world.audio_features.get,
            }
            obj = lookups[endpoint](one)
            if obj is None:
                self._send(record, 404, _error(404, "Resource not found"))
            else:
                self._send(record, 200, obj)
            return
        if endpoint.startswith("playlist"):
            pid = parts[2]
            playlist = world.playlists.get(pid)
            if playlist is None:
                self._send(record, 404, _error(404, "Resource not found"))
                return
            if endpoint == "playlist":
                self._send(
                    record,
                    200,
                    {
                        "id": pid,
                        "name": playlist["name"],
                        "public": True,
                        "owner": {"id": "someone", "display_name": "Someone"},
                    },
                )
                return
            offset = int(query.get("offset", ["0"])[0])
            limit = min(50, int(query.get("limit", ["20"])[0]))
            track_ids = playlist["track_ids"]
            key = "item" if endpoint == "playlist-items" else "track"
            items = [
                {
                    "added_at": "2026-01-01T00:00:00Z",
                    "added_by": None,
                    "is_local": False,
                    key: fake._track(t),
                }
                for t in track_ids[offset : offset + limit]
            ]
            nxt = None
            if offset + limit < len(track_ids):
                nxt = f"{fake.link_base or fake.base}/v1/playlists/{pid}/{parts[3]}?" + urlencode(
                    {"offset": offset + limit, "limit": limit}
                )
            self._send(
                record,
                200,
                {
                    "href": f"{fake.base}{self.path}",
                    "items": items,
                    "limit": limit,
                    "next": nxt,
                    "offset": offset,
                    "previous": None,
                    "total": len(track_ids),
                },
            )
            return
        if endpoint == "recommendations":
            if not ids or len(ids) > 5:
                self._send(record, 400, _error(400, "1 to 5 seeds required"))
                return
            if not all(_valid(i) for i in ids):
                self._send(record, 400, _error(400, "invalid request"))
                return
            raw_limit = query.get("limit", ["20"])[0]
            if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 100:
                self._send(record, 400, _error(400, "Invalid limit"))
                return
            limit = int(raw_limit)
            pool = world.recommend(ids) if world.recommend else world.recommendations
            chosen = [t for t in dict.fromkeys(pool) if t not in ids and t in world.tracks]
            chosen = chosen[:limit]
            seeds = [
                {
                    "afterFilteringSize": len(pool),
                    "afterRelinkingSize": len(pool),
                    "href": f"https://api.spotify.com/v1/tracks/{s}",
                    "id": s,
                    "initialPoolSize": 250,
                    "type": "TRACK",
                }
                for s in ids
            ]
            self._send(record, 200, {"seeds": seeds, "tracks": [fake._track(t) for t in chosen]})
            return
        self._send(record, 404, _error(404, "Service not found"))


def write_mpd_slice(
    world: World,
    path: Path,
    *,
    track_ids: list[str] | None = None,
    n_playlists: int = 4,
    seed: int = 0,
) -> Path:
    """An MPD-format slice whose playlists hold ``track_ids`` (default: every track of ``world``),
    with names, artists and albums as the MPD has them (no release dates, no popularity)."""
    rng = random.Random(seed)
    ids = list(track_ids if track_ids is not None else world.tracks)
    playlists = []
    for pid in range(n_playlists):
        chosen = ids[pid::n_playlists] or ids[:1]
        rng.shuffle(chosen)
        rows = []
        for pos, tid in enumerate(chosen):
            t = world.tracks[tid]
            rows.append(
                {
                    "pos": pos,
                    "artist_name": t["artists"][0]["name"],
                    "track_uri": f"spotify:track:{tid}",
                    "artist_uri": f"spotify:artist:{t['artists'][0]['id']}",
                    "track_name": t["name"],
                    "album_uri": f"spotify:album:{t['album']['id']}",
                    "duration_ms": t["duration_ms"],
                    "album_name": t["album"]["name"],
                }
            )
        playlists.append(
            {
                "name": f"mix {pid}",
                "collaborative": "false",
                "pid": pid,
                "modified_at": 1500000000,
                "num_tracks": len(rows),
                "num_albums": len(rows),
                "num_followers": 1,
                "num_edits": 1,
                "duration_ms": sum(r["duration_ms"] for r in rows),
                "num_artists": len(rows),
                "tracks": rows,
            }
        )
    doc = {
        "info": {"generated_on": "2017-12-03", "slice": f"0-{n_playlists - 1}", "version": "v1"},
        "playlists": playlists,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


# -- segue clients pointed at the fake, with short timeouts and backoff ----------------------

CAP = 1.0  # the Retry-After cap used in tests (seconds)
TIMEOUT = 2.0  # client timeout in tests (seconds): generous, a loaded CI machine answers late
SHORT_TIMEOUT = 0.3  # for the tests about timeouts: a "slow" answer waits longer than this


def fast_policy(**overrides: Any) -> Any:
    """A retry policy with short waits: 3 tries, 10 ms backoff base, 1 s Retry-After cap.

    Tests about timeouts pass ``timeout=SHORT_TIMEOUT``; the others keep a timeout long enough
    that a busy machine never turns one answer into a retry (and a request count off by one).
    """
    from segue.providers.base import RetryPolicy

    params: dict[str, Any] = dict(
        attempts=3, backoff_base=0.01, backoff_cap=0.05, max_retry_after=CAP, timeout=TIMEOUT
    )
    params.update(overrides)
    return RetryPolicy(**params)


def settings_for(fake: FakeSpotify) -> Any:
    from segue.core.config import NetworkSettings

    return NetworkSettings(fake.api_base, fake.token_url, fake.audio_base, CAP, TIMEOUT)


def provider_for(fake: FakeSpotify, *, secret: str | None = None, **kwargs: Any) -> Any:
    """A SpotifyProvider talking to ``fake``."""
    from segue.providers.credentials import Credentials
    from segue.providers.spotify import SpotifyProvider

    kwargs.setdefault("policy", fast_policy())
    creds = Credentials(fake.client_id, secret if secret is not None else fake.client_secret)
    return SpotifyProvider(creds, settings=settings_for(fake), **kwargs)


def env_for(fake: FakeSpotify, **kwargs: Any) -> dict[str, str]:
    """``fake.env()`` plus fast retry settings, for subprocesses and CLI runs."""
    env = fake.env(**kwargs)
    env.update(
        SEGUE_MAX_RETRY_AFTER=str(CAP),
        SEGUE_HTTP_TIMEOUT=str(TIMEOUT),
        SEGUE_HTTP_ATTEMPTS="3",
        SEGUE_BACKOFF_BASE="0.01",
        SEGUE_BACKOFF_CAP="0.05",
    )
    return env


def without_credentials(monkeypatch: Any, tmp_path: Path) -> None:
    """No Spotify credentials anywhere segue looks (environment, Spotify.yaml, home)."""
    for name in ("SPOTIPY_CLIENT_ID", "SPOTIPY_CLIENT_SECRET", "SEGUE_SPOTIFY_YAML"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("SEGUE_HOME", str(tmp_path / "home"))
