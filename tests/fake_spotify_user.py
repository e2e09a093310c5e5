"""A fake Spotify accounts service and the user-side Web API on 127.0.0.1, for saving playlists.

* ``POST /api/token`` — ``grant_type=authorization_code`` with PKCE (the ``code_verifier``'s
  SHA-256, base64url without padding, must equal the ``code_challenge`` the code was issued
  for; the ``redirect_uri`` must match) and ``grant_type=refresh_token``; answers
  ``{"access_token", "token_type": "Bearer", "expires_in": 3600, "refresh_token", "scope"}`` or
  400 ``{"error": "invalid_grant", "error_description": …}``;
* :meth:`FakeSpotifyUser.approve` plays the user at ``/authorize``: it checks the query and
  returns the URL the browser would be redirected to (``redirect_uri?code=…&state=…``);
* ``GET /v1/me``; ``POST /v1/me/playlists`` (2026) and ``POST /v1/users/{id}/playlists``
  (older) create a playlist (201, a playlist object); ``POST /v1/playlists/{id}/items`` (2026)
  and ``POST /v1/playlists/{id}/tracks`` (older) add at most 100 ``uris`` (201,
  ``{"snapshot_id"}``). With ``old_api`` the 2026 paths answer 404.
* A user not on the app's allow-list gets 403 ``{"error": {"status": 403, "message": "Check
  settings on developer.spotify.com/dashboard, the user may not be registered."}}``; an expired
  or unknown token 401.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

CLIENT_ID = "fakeclientid0123456789abcdef0123"
NOT_REGISTERED = (
    "Check settings on developer.spotify.com/dashboard, the user may not be registered."
)


@dataclass
class FakeSpotifyUser:
    allow_list: set[str] = field(default_factory=lambda: {"alice"})
    old_api: bool = False
    client_id: str = CLIENT_ID
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    access: dict[str, str] = field(default_factory=dict)  # token -> user
    refresh: dict[str, str] = field(default_factory=dict)
    playlists: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, int]] = field(default_factory=list)  # method, path, status
    token_bodies: list[dict[str, str]] = field(default_factory=list)

    def __enter__(self) -> FakeSpotifyUser:
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def env(self) -> dict[str, str]:
        return {
            "SEGUE_SPOTIFY_API_BASE": f"{self.base}/v1/",
            "SEGUE_SPOTIFY_TOKEN_URL": f"{self.base}/api/token",
            "SEGUE_SPOTIFY_AUTHORIZE_URL": f"{self.base}/authorize",
            "SPOTIPY_CLIENT_ID": self.client_id,
            "SPOTIPY_CLIENT_SECRET": "not-used-by-pkce",
        }

    def approve(self, authorize_url: str, user: str = "alice") -> str:
        """What the browser lands on after ``user`` allows the app at ``authorize_url``."""
        parts = urlsplit(authorize_url)
        assert parts.path.endswith("/authorize"), authorize_url
        q = {k: v[0] for k, v in parse_qs(parts.query).items()}
        assert q["client_id"] == self.client_id
        assert q["response_type"] == "code"
        assert q["code_challenge_method"] == "S256"
        assert set(q["scope"].split()) >= {"playlist-modify-private", "playlist-modify-public"}
        code = secrets.token_urlsafe(12)
        self.codes[code] = {
            "challenge": q["code_challenge"],
            "redirect_uri": q["redirect_uri"],
            "user": user,
            "scope": q["scope"],
        }
        return f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q.get('state', '')})}"

    def expire_tokens(self) -> None:
        self.access.clear()

    def _issue(self, user: str, scope: str) -> dict[str, Any]:
        token, refresh = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        self.access[token] = user
        self.refresh[refresh] = user
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": 3600,
            "refresh_token": refresh,
            "scope": scope,
        }

    def token(self, form: dict[str, str]) -> tuple[int, Any]:
        self.token_bodies.append(form)
        bad = {"error": "invalid_grant", "error_description": "Invalid authorization code"}
        if form.get("client_id") != self.client_id:
            return 400, {"error": "invalid_client", "error_description": "Invalid client"}
        if form.get("grant_type") == "authorization_code":
            entry = self.codes.pop(form.get("code", ""), None)
            if entry is None or entry["redirect_uri"] != form.get("redirect_uri"):
                return 400, bad
            digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
            if base64.urlsafe_b64encode(digest).decode().rstrip("=") != entry["challenge"]:
                return 400, {
                    "error": "invalid_grant",
                    "error_description": "code_verifier was incorrect",
                }
            return 200, self._issue(entry["user"], entry["scope"])
        if form.get("grant_type") == "refresh_token":
            user = self.refresh.get(form.get("refresh_token", ""))
            if user is None:
                return 400, {"error": "invalid_grant", "error_description": "Refresh token revoked"}
            token = secrets.token_urlsafe(16)
            self.access[token] = user
            return 200, {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": 3600,
                "scope": "playlist-modify-private playlist-modify-public",
            }
        return 400, {"error": "unsupported_grant_type"}

    def api(self, method: str, path: str, user: str, body: Any) -> tuple[int, Any]:
        def error(status: int, message: str) -> tuple[int, Any]:
            return status, {"error": {"status": status, "message": message}}

        if user not in self.allow_list:
            return error(403, NOT_REGISTERED)
        parts = path.strip("/").split("/")
        if method == "GET" and parts == ["me"]:
            return 200, {
                "id": user,
                "display_name": user.title(),
                "type": "user",
                "uri": f"spotify:user:{user}",
            }
        create = (parts == ["me", "playlists"] and not self.old_api) or (
            len(parts) == 3 and parts[0] == "users" and parts[2] == "playlists"
        )
        if method == "POST" and create:
            if len(parts) == 3 and parts[1] != user:
                return error(403, "You cannot create a playlist for another user")
            if not isinstance(body, dict) or not body.get("name"):
                return error(400, "Missing required field: name")
            pid = base64.b32encode(secrets.token_bytes(14)).decode().lower()[:22]
            pid = "".join(c if c.isalnum() else "a" for c in pid).ljust(22, "a")
            self.playlists[pid] = {
                "name": body["name"],
                "public": body.get("public", True),
                "description": body.get("description"),
                "owner": user,
                "uris": [],
            }
            return 201, {
                "id": pid,
                "name": body["name"],
                "type": "playlist",
                "uri": f"spotify:playlist:{pid}",
                "external_urls": {"spotify": f"https://open.spotify.com/playlist/{pid}"},
                "owner": {"id": user},
                "public": body.get("public", True),
                "tracks": {"total": 0},
            }
        if method == "POST" and len(parts) == 3 and parts[0] == "playlists":
            if (parts[2] == "items" and self.old_api) or parts[2] not in ("items", "tracks"):
                return error(404, "Service not found")
            playlist = self.playlists.get(parts[1])
            if playlist is None:
                return error(404, "Resource not found")
            if playlist["owner"] != user:
                return error(403, "Forbidden")
            uris = body.get("uris") if isinstance(body, dict) else None
            if not isinstance(uris, list) or not 1 <= len(uris) <= 100:
                return error(400, "You can add a maximum of 100 tracks per request.")
            playlist["uris"].extend(uris)
            return 201, {"snapshot_id": secrets.token_urlsafe(8)}
        return error(404, "Service not found")


class _Handler(BaseHTTPRequestHandler):
    fake: FakeSpotifyUser
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # no 40 ms stall between headers and body

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self, method: str) -> None:
        fake = self.fake
        path = urlsplit(self.path).path
        raw = self._body()
        with fake._lock:
            if method == "POST" and path == "/api/token":
                form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                status, body = fake.token(form)
            elif path.startswith("/v1/"):
                auth = self.headers.get("Authorization", "")
                user = fake.access.get(auth.removeprefix("Bearer ").strip())
                if user is None:
                    status, body = (
                        401,
                        {"error": {"status": 401, "message": "The access token expired"}},
                    )
                else:
                    try:
                        payload = json.loads(raw) if raw else None
                    except ValueError:
                        payload = None
                    status, body = fake.api(method, path[len("/v1") :], user, payload)
            else:
                status, body = 404, {"error": "not found"}
            fake.requests.append((method, path, status))
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")
