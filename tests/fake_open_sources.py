"""Fake MusicBrainz, Last.fm and Deezer services on 127.0.0.1, answering in their documented JSON.

One real HTTP server in a thread, three services under path prefixes:

* ``/mb/ws/2`` — MusicBrainz WS/2 with ``fmt=json``: ``/recording?query=`` and ``/artist?query=``
  (Lucene searches: ``{"created", "count", "offset", "recordings"|"artists": [... "score" ...]}``),
  ``/artist/{mbid}?inc=genres+tags`` (``genres``/``tags`` as ``{"name", "count"}``),
  ``/isrc/{isrc}`` (``{"isrc", "recordings": [...]}``); unknown ids answer 404
  ``{"error": "Not Found", "help": …}``. With ``mb_enforce_rate`` it answers **503** (as
  musicbrainz.org does) to a request less than a second after the previous one.
* ``/lastfm/2.0/`` — ``?method=artist.getTopTags|track.getTopTags&api_key=…&format=json``:
  ``{"toptags": {"tag": [{"count", "name", "url"}], "@attr": {"artist"}}}``; errors as
  ``{"error": <code>, "message": …}``: 10 for a wrong key, 6 for an unknown artist or track.
* ``/deezer`` — ``/search?q=artist:"…" track:"…"`` (``{"data": [track…], "total", "next"}``),
  ``/track/{id}``, ``/track/isrc:{isrc}`` (full tracks with ``isrc``, ``bpm``,
  ``release_date``), ``/album/{id}`` (``genres.data[].name``); errors **inside HTTP 200** as
  ``{"error": {"type", "message", "code"}}`` (800: no data, 4: quota).

Failures are injected per service (:meth:`FakeOpenSources.fail`): an HTTP status, a Last.fm
error code, a Deezer error object in a 200, a malformed body, a slow answer (past the client's
timeout). Every request is recorded with its service, path, query and arrival time.
"""

from __future__ import annotations

import json
import re
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fake_spotify import World, artist_object, make_id, track_object

LASTFM_KEY = "lfmKEY-3b9e0c1d7a5f-never-print-me"


@dataclass
class Song:
    """One recording as the services know it, and how the catalog (the MPD) names it."""

    artist: str  # as the services credit it
    title: str  # as MusicBrainz titles it
    duration_ms: int
    released: str
    isrc: str
    mb_genres: list[tuple[str, int]]
    lastfm_tags: list[tuple[str, int]]
    deezer_genres: list[str]
    catalog_artist: str | None = None  # how the MPD spells the artist, when it differs
    catalog_title: str | None = None
    deezer_title: str | None = None
    deezer_artist: str | None = None
    mbid: str = ""
    artist_mbid: str = ""
    deezer_id: int = 0
    deezer_album: int = 0
    deezer_artist_id: int = 0


def songs() -> list[Song]:
    """Real-looking names: featurings, remasters, accents, a karaoke decoy, a remix that is not
    the original, and one artist none of the services know."""
    return [
        Song(
            "Beyoncé feat. JAY‐Z",
            "Crazy in Love",
            236133,
            "2003-05-18",
            "USSM10301897",
            [("r&b", 9), ("pop", 6), ("contemporary r&b", 4)],
            [("rnb", 100), ("pop", 81), ("female vocalists", 55), ("seen live", 12)],
            ["R&B", "Pop"],
            catalog_artist="Beyoncé",
            catalog_title="Crazy In Love (feat. Jay-Z)",
            deezer_title="Crazy In Love (feat. Jay-Z)",
            deezer_artist="Beyoncé",
        ),
        Song(
            "The Beatles",
            "Here Comes the Sun",
            185733,
            "1969-09-26",
            "GBAYE0601690",
            [("rock", 12), ("pop rock", 7), ("psychedelic rock", 3)],
            [("classic rock", 100), ("rock", 90), ("60s", 70), ("british", 40)],
            ["Rock", "Pop"],
            catalog_title="Here Comes The Sun - Remastered 2009",
            deezer_title="Here Comes The Sun (Remastered 2009)",
        ),
        Song(
            "Sigur Rós",
            "Hoppípolla",
            268000,
            "2005-09-12",
            "GBBKS0500126",
            [("post-rock", 8), ("ambient", 3)],
            [("post-rock", 100), ("icelandic", 72), ("ambient", 50)],
            ["Alternative"],
            deezer_title="Hoppipolla",
            deezer_artist="Sigur Ros",
        ),
        Song(
            "Daft Punk",
            "Harder, Better, Faster, Stronger",
            224000,
            "2001-03-12",
            "GBDUW0000059",
            [("house", 10), ("french house", 8), ("electronic", 5)],
            [("electronic", 100), ("house", 66), ("french", 40)],
            ["Dance", "Electro"],
        ),
        Song(
            "Queen",
            "Bohemian Rhapsody",
            354320,
            "1975-10-31",
            "GBUM71029604",
            [("rock", 15), ("progressive rock", 6)],
            [("classic rock", 100), ("rock", 95)],
            ["Rock"],
            catalog_title="Bohemian Rhapsody - Remastered 2011",
        ),
        Song(
            "Robyn",
            "Dancing On My Own",
            288000,
            "2010-06-01",
            "SEWKZ1000028",
            [("electropop", 9), ("synth-pop", 5)],
            [("electropop", 100), ("swedish", 60), ("dance", 50)],
            ["Pop"],
            # The services know only a remix by this name: a different recording.
            deezer_title="Dancing On My Own (Calvin Harris Remix)",
        ),
        Song(
            "Mø",
            "Final Song",
            235000,
            "2016-05-13",
            "GBARL1600462",
            [("electropop", 4)],
            [("electronic", 100), ("danish", 80)],
            ["Pop"],
            catalog_artist="MØ",
        ),
    ]


#: An artist in the catalog whom no service knows.
UNKNOWN = ("Totally Unknown Garage Band", "Nobody Heard This", 201000)


def fold(text: str) -> str:
    bare = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    bare = bare.replace("ø", "o").replace("Ø", "O")
    return " ".join(re.sub(r"[^\w\s]", " ", bare.casefold()).split())


def primary(credit: str) -> str:
    return re.split(r"\s+(?:feat\.?|ft\.?|&)\s+", credit)[0]


def catalog_world(seed: int = 5) -> tuple[World, dict[str, Song]]:
    """A Spotify world (for an MPD slice) of the songs as the catalog names them, plus the
    unknown band; returns the world and ``{track_id: song}``."""
    import random

    rng = random.Random(seed)
    world = World()
    by_track: dict[str, Song] = {}
    items = [
        (s.catalog_artist or primary(s.artist), s.catalog_title or s.title, s.duration_ms, s)
        for s in songs()
    ]
    items.append((UNKNOWN[0], UNKNOWN[1], UNKNOWN[2], None))
    for artist, title, duration, song in items:
        aid, tid = make_id(rng), make_id(rng)
        world.artists[aid] = artist_object(aid, artist, [], 50)
        world.tracks[tid] = track_object(
            tid, title, [(aid, artist)], make_id(rng), f"{title} (album)", "2000", 50, duration
        )
        if song is not None:
            by_track[tid] = song
    return world, by_track


@dataclass
class Rule:
    """A failure: ``service`` ("mb", "lastfm", "deezer"), ``mode`` "status" (HTTP ``status``),
    "lastfm" (Last.fm ``code`` in a 200... or ``status``), "deezer" (error object with ``code``
    in a 200), "malformed" (not JSON), "slow" (wait ``delay`` s first). ``times`` requests
    (None: all), after letting ``skip`` through; ``path`` limits it to paths containing it."""

    service: str
    mode: str = "status"
    status: int = 503
    code: int = 0
    times: int | None = None
    skip: int = 0
    delay: float = 0.0
    path: str = ""
    hits: int = 0


@dataclass
class Seen:
    service: str
    path: str
    query: dict[str, list[str]]
    at: float
    status: int = 200


@dataclass
class FakeOpenSources:
    songs: list[Song] = field(default_factory=songs)
    lastfm_key: str = LASTFM_KEY
    mb_enforce_rate: bool = False
    rules: list[Rule] = field(default_factory=list)
    requests: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        for i, s in enumerate(self.songs):
            s.mbid = s.mbid or f"0000{i:04d}-1111-4222-8333-{i:012d}"
            s.artist_mbid = s.artist_mbid or f"aaaa{i:04d}-1111-4222-8333-{i:012d}"
            s.deezer_id = s.deezer_id or 3135500 + i
            s.deezer_album = s.deezer_album or 302100 + i
            s.deezer_artist_id = s.deezer_artist_id or 27 + i
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._last_mb: float | None = None

    # lifecycle ------------------------------------------------------------------------------
    def __enter__(self) -> FakeOpenSources:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def base(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def mb_base(self) -> str:
        return f"{self.base}/mb/ws/2"

    @property
    def lastfm_base(self) -> str:
        return f"{self.base}/lastfm/2.0/"

    @property
    def deezer_base(self) -> str:
        return f"{self.base}/deezer"

    def env(self) -> dict[str, str]:
        return {
            "SEGUE_MUSICBRAINZ_BASE": self.mb_base,
            "SEGUE_LASTFM_BASE": self.lastfm_base,
            "SEGUE_DEEZER_BASE": self.deezer_base,
            "LASTFM_API_KEY": self.lastfm_key,
            # Fast for tests that are not about the rate limit itself.
            "SEGUE_MUSICBRAINZ_RATE": "1000/1",
            "SEGUE_LASTFM_RATE": "1000/1",
            "SEGUE_DEEZER_RATE": "1000/1",
        }

    def fail(self, service: str, **kwargs: Any) -> Rule:
        rule = Rule(service, **kwargs)
        self.rules.append(rule)
        return rule

    def seen(self, service: str) -> list[Seen]:
        return [r for r in self.requests if r.service == service]

    def _rule(self, service: str, path: str) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.service != service or rule.path not in path:
                    continue
                if rule.times is not None and rule.hits >= rule.skip + rule.times:
                    continue
                rule.hits += 1
                if rule.hits <= rule.skip:
                    return None
                return rule
        return None

    # answers in each service's shapes ------------------------------------------------------
    def mb_recording(self, s: Song, score: int) -> dict[str, Any]:
        credits = []
        parts = re.split(r"(\s+feat\.\s+)", s.artist)
        for k in range(0, len(parts), 2):
            name = parts[k]
            credits.append(
                {
                    "name": name,
                    "joinphrase": parts[k + 1] if k + 1 < len(parts) else "",
                    "artist": {"id": s.artist_mbid, "name": name, "sort-name": name},
                }
            )
        return {
            "id": s.mbid,
            "score": score,
            "title": s.title,
            "length": s.duration_ms,
            "video": None,
            "artist-credit": credits,
            "first-release-date": s.released,
            "isrcs": [s.isrc],
            "releases": [
                {
                    "id": f"rel-{s.mbid}",
                    "title": f"{s.title}",
                    "status": "Official",
                    "date": s.released,
                }
            ],
        }

    def mb(self, path: str, q: dict[str, list[str]]) -> tuple[int, Any]:
        now = time.monotonic()
        with self._lock:
            too_soon = self._last_mb is not None and now - self._last_mb < 1.0
            self._last_mb = now
        if self.mb_enforce_rate and too_soon:
            return 503, {
                "error": "Your requests are exceeding the allowable rate limit. "
                "Please see http://wiki.musicbrainz.org/XMLWebService for more information."
            }
        created = "2026-12-04T12:00:00.000Z"
        query = q.get("query", [""])[0]
        phrases = [fold(p) for p in re.findall(r'"((?:[^"\\]|\\.)*)"', query)]
        words = {w for p in phrases for w in p.split()}
        if path == "/recording":
            hits = [s for s in self.songs if words & set(fold(s.title + " " + s.artist).split())]
            recs = [self.mb_recording(s, 100 - 10 * i) for i, s in enumerate(hits)]
            return 200, {"created": created, "count": len(recs), "offset": 0, "recordings": recs}
        if path == "/artist":
            hits = [s for s in self.songs if words & set(fold(primary(s.artist)).split())]
            seen: dict[str, Any] = {}
            for i, s in enumerate(hits):
                name = primary(s.artist)
                seen.setdefault(
                    s.artist_mbid,
                    {
                        "id": s.artist_mbid,
                        "type": "Person",
                        "score": 100 - 10 * i,
                        "name": name,
                        "sort-name": name,
                        "country": "XE",
                        "tags": [{"count": c, "name": n} for n, c in s.mb_genres],
                    },
                )
            return 200, {
                "created": created,
                "count": len(seen),
                "offset": 0,
                "artists": list(seen.values()),
            }
        m = re.fullmatch(r"/artist/([0-9a-f-]+)", path)
        if m:
            for s in self.songs:
                if s.artist_mbid == m.group(1):
                    name = primary(s.artist)
                    return 200, {
                        "id": s.artist_mbid,
                        "name": name,
                        "sort-name": name,
                        "type": "Person",
                        "genres": [
                            {"id": f"g-{n}", "name": n, "count": c, "disambiguation": ""}
                            for n, c in s.mb_genres
                        ],
                        "tags": [{"name": n, "count": c} for n, c in s.mb_genres],
                    }
            return 404, {
                "error": "Not Found",
                "help": "For usage, please see: https://musicbrainz.org/development/mmd",
            }
        m = re.fullmatch(r"/isrc/([A-Z0-9]+)", path)
        if m:
            recs = [self.mb_recording(s, 100) for s in self.songs if s.isrc == m.group(1)]
            if not recs:
                return 404, {
                    "error": "Not Found",
                    "help": "For usage, please see: https://musicbrainz.org/development/mmd",
                }
            for r in recs:
                r.pop("score", None)
            return 200, {"isrc": m.group(1), "recordings": recs}
        return 400, {"error": "Invalid resource", "help": "…"}

    def lastfm(self, q: dict[str, list[str]]) -> tuple[int, Any]:
        if q.get("api_key", [""])[0] != self.lastfm_key:
            return 403, {
                "error": 10,
                "message": "Invalid API key - You must be granted a valid key by last.fm",
            }
        method = q.get("method", [""])[0]
        artist = fold(q.get("artist", [""])[0])
        by_artist = [s for s in self.songs if fold(primary(s.artist)) == artist]
        if method == "artist.getTopTags":
            if not by_artist:
                return 200, {"error": 6, "message": "The artist you supplied could not be found"}
            s = by_artist[0]
            return 200, {
                "toptags": {
                    "tag": [
                        {
                            "count": c,
                            "name": n,
                            "url": f"https://www.last.fm/tag/{n.replace(' ', '+')}",
                        }
                        for n, c in s.lastfm_tags
                    ],
                    "@attr": {"artist": primary(s.artist)},
                }
            }
        if method == "track.getTopTags":
            title = fold(q.get("track", [""])[0])
            hits = [s for s in by_artist if fold(s.title) == title]
            if not hits:
                return 200, {"error": 6, "message": "Track not found"}
            s = hits[0]
            return 200, {
                "toptags": {
                    "tag": [{"count": c, "name": n, "url": ""} for n, c in s.lastfm_tags],
                    "@attr": {"artist": primary(s.artist), "track": s.title},
                }
            }
        return 200, {
            "error": 3,
            "message": "Invalid Method - No method with that name in this package",
        }

    def deezer_track(self, s: Song, full: bool) -> dict[str, Any]:
        title = s.deezer_title or s.title
        artist = s.deezer_artist or primary(s.artist)
        item: dict[str, Any] = {
            "id": s.deezer_id,
            "readable": True,
            "title": title,
            "title_short": title,
            "title_version": "",
            "link": f"https://www.deezer.com/track/{s.deezer_id}",
            "duration": s.duration_ms // 1000,
            "rank": 800000,
            "explicit_lyrics": False,
            "preview": "",
            "md5_image": "",
            "artist": {"id": s.deezer_artist_id, "name": artist, "type": "artist"},
            "album": {"id": s.deezer_album, "title": f"{title} (album)", "type": "album"},
            "type": "track",
        }
        if full:
            item.update(
                {
                    "isrc": s.isrc,
                    "release_date": s.released,
                    "bpm": 120.5,
                    "gain": -8.1,
                    "track_position": 1,
                    "disk_number": 1,
                    "available_countries": ["FR"],
                    "contributors": [item["artist"]],
                }
            )
            item["album"]["release_date"] = s.released
        return item

    def deezer(self, path: str, q: dict[str, list[str]]) -> tuple[int, Any]:
        no_data = {"error": {"type": "DataException", "message": "no data", "code": 800}}
        if path == "/search":
            query = q.get("q", [""])[0]
            words = {w for p in re.findall(r'"([^"]*)"', query) for w in fold(p).split()}
            hits = []
            for s in self.songs:
                names = fold((s.deezer_title or s.title) + " " + (s.deezer_artist or s.artist))
                if words and words <= set(names.split()) | {"feat", "jay", "z"}:
                    hits.append(s)
            data = [self.deezer_track(s, False) for s in hits]
            if any(fold(w) == "queen" for w in words):  # a karaoke cover ranks first
                decoy = self.deezer_track(next(s for s in self.songs if s.artist == "Queen"), False)
                decoy.update(
                    {
                        "id": 999,
                        "title": "Bohemian Rhapsody (Karaoke Version)",
                        "duration": 360,
                        "artist": {"id": 998, "name": "Ameritz Karaoke", "type": "artist"},
                    }
                )
                data.insert(0, decoy)
            return 200, {"data": data, "total": len(data)}
        m = re.fullmatch(r"/track/isrc:([A-Z0-9]+)", path)
        if m:
            hits = [s for s in self.songs if s.isrc == m.group(1)]
            return 200, self.deezer_track(hits[0], True) if hits else no_data
        m = re.fullmatch(r"/track/(\d+)", path)
        if m:
            hits = [s for s in self.songs if s.deezer_id == int(m.group(1))]
            return 200, self.deezer_track(hits[0], True) if hits else no_data
        m = re.fullmatch(r"/album/(\d+)", path)
        if m:
            for s in self.songs:
                if s.deezer_album == int(m.group(1)):
                    return 200, {
                        "id": s.deezer_album,
                        "title": f"{s.title} (album)",
                        "upc": "0000",
                        "genre_id": 132,
                        "genres": {
                            "data": [
                                {"id": 100 + k, "name": g, "picture": "", "type": "genre"}
                                for k, g in enumerate(s.deezer_genres)
                            ]
                        },
                        "release_date": s.released,
                        "type": "album",
                    }
            return 200, no_data
        return 200, {"error": {"type": "MethodException", "message": "Unknown method", "code": 501}}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOpenSources
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # no 40 ms stall between headers and body

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        fake = self.fake
        parts = urlsplit(self.path)
        q = parse_qs(parts.query)
        path = parts.path
        if path.startswith("/mb/ws/2"):
            service, sub = "mb", path[len("/mb/ws/2") :]
        elif path.startswith("/lastfm/2.0"):
            service, sub = "lastfm", ""
        elif path.startswith("/deezer"):
            service, sub = "deezer", path[len("/deezer") :]
        else:
            self._send(404, {"error": "no such service"})
            return
        seen = Seen(service, sub, q, time.monotonic())
        with fake._lock:
            fake.requests.append(seen)
        rule = fake._rule(service, sub + "?" + parts.query)
        if rule is not None:
            if rule.mode == "slow":
                time.sleep(rule.delay)
            elif rule.mode == "malformed":
                seen.status = 200
                self._send_raw(200, b'{"recordings": [ {"id": "trunc')
                return
            elif rule.mode == "status":
                seen.status = rule.status
                self._send(rule.status, {"error": "Service unavailable"})
                return
            elif rule.mode == "lastfm":
                seen.status = rule.status
                self._send(
                    rule.status,
                    {
                        "error": rule.code,
                        "message": "Rate Limit Exceeded" if rule.code == 29 else "Invalid API key",
                    },
                )
                return
            elif rule.mode == "deezer":
                self._send(
                    200,
                    {
                        "error": {
                            "type": "Exception",
                            "message": "Quota limit exceeded",
                            "code": rule.code,
                        }
                    },
                )
                return
        if service == "mb":
            status, body = fake.mb(sub, q)
        elif service == "lastfm":
            status, body = fake.lastfm(q)
        else:
            status, body = fake.deezer(sub, q)
        seen.status = status
        self._send(status, body)

    def _send(self, status: int, body: Any) -> None:
        self._send_raw(status, json.dumps(body).encode())

    def _send_raw(self, status: int, data: bytes) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
