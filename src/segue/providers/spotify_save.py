"""Saving recommendations as a playlist in the user's own Spotify account.

Acting for a user needs the user's consent: Authorization Code with PKCE through spotipy's
:class:`~spotipy.oauth2.SpotifyPKCE` (no client secret involved), scopes
``playlist-modify-private playlist-modify-public``, a loopback redirect URI registered in the
app's dashboard (``SEGUE_SPOTIFY_REDIRECT_URI``, default ``http://127.0.0.1:8888/callback``).

* :func:`login` prints the authorization URL (and opens a browser when there is one); the user
  pastes back the URL the browser was redirected to, which works on a headless machine too.
  The token (with its refresh token, the user's secret) is cached in segue's home with
  owner-only permissions and refreshed by spotipy when it expires.
* :func:`logout` deletes it (Spotify has no revocation endpoint for PKCE tokens: removing the
  app at https://www.spotify.com/account/apps/ revokes it on Spotify's side).
* :func:`save_playlist` creates the playlist with ``POST /me/playlists`` and adds the tracks
  with ``POST /playlists/{id}/items``, 100 per request (the 2026 endpoints), falling back to
  ``POST /users/{user_id}/playlists`` and ``POST /playlists/{id}/tracks`` where the new ones are
  not there (404/405). A 403 means the account is not on the app's allow-list (development-mode
  apps allow 5 users) or did not grant the scopes: the message says what to do.

Requests go through the shared :class:`~segue.providers.base.Retrier` (429, 5xx, one token
refresh on 401). Tokens never appear in messages or logs: spotipy's debug lines that would show
the code, verifier or refresh token are filtered (:class:`_RedactOAuth`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from spotipy.cache_handler import CacheHandler
from spotipy.oauth2 import SpotifyOauthError, SpotifyPKCE

from segue.core import ids as spotify_ids
from segue.core.config import NetworkSettings
from segue.core.errors import SegueError
from segue.core.home import TOKEN_FILE as HOME_TOKEN_FILE
from segue.core.home import Home
from segue.providers.base import ProviderError, Retrier, RetryPolicy
from segue.providers.credentials import require_credentials
from segue.providers.spotify import _error_from_response, _transport_error

SCOPES = "playlist-modify-private playlist-modify-public"
TOKEN_FILE = HOME_TOKEN_FILE
REDIRECT_ENV = "SEGUE_SPOTIFY_REDIRECT_URI"
AUTHORIZE_ENV = "SEGUE_SPOTIFY_AUTHORIZE_URL"
DEFAULT_REDIRECT = "http://127.0.0.1:8888/callback"
DEFAULT_AUTHORIZE = "https://accounts.spotify.com/authorize"
ITEMS_PER_REQUEST = 100
APPS_PAGE = "https://www.spotify.com/account/apps/"

CREATE = "POST /me/playlists"
CREATE_OLD = "POST /users/{user_id}/playlists"
ME = "GET /me"
ADD = "POST /playlists/{id}/items"
ADD_OLD = "POST /playlists/{id}/tracks"


class NeedsLogin(SegueError):
    """No usable user authorization: the message says to run ``segue login``."""


class SaveRefused(SegueError):
    """Spotify refused to create the playlist or add to it; the message says why and what to do."""


def token_path(home: Home | None = None) -> Path:
    """Where the user authorization of ``home`` is kept (default: the home segue uses without
    ``--home``)."""
    return (home or Home.resolve(None)).token


_SECRET_FIELD = re.compile(
    r"('(?:code|code_verifier|refresh_token|access_token)':\s*')[^']*(')", re.IGNORECASE
)


class _RedactOAuth(logging.Filter):
    """spotipy logs token request bodies at DEBUG: hide the code, verifier and tokens."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _SECRET_FIELD.search(message):
            record.msg = _SECRET_FIELD.sub(r"\1***\2", message)
            record.args = None
        return True


logging.getLogger("spotipy.oauth2").addFilter(_RedactOAuth())


class OwnerOnlyCache(CacheHandler):  # type: ignore[misc]
    """spotipy's token cache as a JSON file readable by its owner only (mode 0600)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def get_cached_token(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return None  # unreadable: as if absent; a new login rewrites it
        return data if isinstance(data, dict) else None

    def save_token_to_cache(self, token_info: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(token_info, fh)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)


def redirect_uri() -> str:
    return os.environ.get(REDIRECT_ENV, "").strip() or DEFAULT_REDIRECT


def auth_manager(
    credentials_path: str | None = None,
    *,
    settings: NetworkSettings | None = None,
    home: Home | None = None,
) -> SpotifyPKCE:
    """spotipy's PKCE manager for this app (client id from the usual credentials), pointed at
    the configured accounts URLs, caching in :func:`token_path` of ``home``."""
    settings = settings or NetworkSettings.from_env()
    creds = require_credentials(credentials_path, home=home)
    auth = SpotifyPKCE(
        client_id=creds.client_id,
        redirect_uri=redirect_uri(),
        scope=SCOPES,
        cache_handler=OwnerOnlyCache(token_path(home)),
        open_browser=False,
        requests_timeout=settings.timeout,
    )
    # Class attributes in spotipy; set on the instance to point this manager (only) elsewhere.
    auth.OAUTH_TOKEN_URL = settings.spotify_token_url
    auth.OAUTH_AUTHORIZE_URL = os.environ.get(AUTHORIZE_ENV, "").strip() or DEFAULT_AUTHORIZE
    return auth


def login(
    ask: Callable[[str], str],
    say: Callable[[str], None],
    *,
    credentials_path: str | None = None,
    open_browser: bool = False,
    auth: SpotifyPKCE | None = None,
    home: Home | None = None,
) -> None:
    """Ask the user to authorize segue and cache the token.

    ``say`` shows the authorization URL, ``ask`` returns the URL the browser landed on (pasted).
    Raises :class:`NeedsLogin` when the answer is not a redirect with a code, the state does not
    match, or Spotify refuses the code.
    """
    auth = auth or auth_manager(credentials_path, home=home)
    state = secrets.token_urlsafe(16)
    url = auth.get_authorize_url(state=state)
    say(
        "Open this URL, log in to Spotify and allow segue to create playlists; the browser then "
        f"goes to {redirect_uri()}… (the page may fail to load: that is fine).\n{url}"
    )
    if open_browser:
        import webbrowser

        with contextlib.suppress(webbrowser.Error):
            webbrowser.open(url)
    pasted = ask("Paste the whole URL the browser was sent to").strip()
    try:
        got_state, code = SpotifyPKCE.parse_auth_response_url(pasted)
    except SpotifyOauthError as exc:
        raise NeedsLogin(
            f"Spotify did not authorize segue ({exc.error}); run `segue login` again"
        ) from None
    if not code:
        raise NeedsLogin(
            "that is not the redirect URL: it should start with "
            f"{redirect_uri()}?code=… ; run `segue login` again"
        )
    if got_state != state:
        raise NeedsLogin("the pasted URL belongs to another login attempt; run `segue login` again")
    try:
        auth.get_access_token(code, check_cache=False)
    except SpotifyOauthError as exc:
        raise NeedsLogin(
            f"Spotify refused the authorization code ({exc.error}); run `segue login` again"
        ) from None
    except requests.RequestException as exc:
        raise NeedsLogin(
            f"could not reach Spotify to finish the login ({type(exc).__name__})"
        ) from None


def logout(home: Home | None = None) -> bool:
    """Delete the cached user token. True when there was one."""
    path = token_path(home)
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def logged_in(home: Home | None = None) -> bool:
    return OwnerOnlyCache(token_path(home)).get_cached_token() is not None


@dataclass(frozen=True, slots=True)
class SavedPlaylist:
    playlist_id: str
    url: str
    added: int
    name: str


class _UserClient:
    """Bearer-token requests to the Web API for the logged-in user."""

    def __init__(
        self,
        auth: SpotifyPKCE,
        *,
        settings: NetworkSettings,
        policy: RetryPolicy,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.auth = auth
        self.base = settings.spotify_api_base.rstrip("/")
        self.policy = policy
        self.retrier = (
            Retrier(policy, "spotify") if sleep is None else Retrier(policy, "spotify", sleep=sleep)
        )
        self.session = requests.Session()
        cached = auth.cache_handler.get_cached_token()
        if not cached or "refresh_token" not in cached:
            raise NeedsLogin(
                "segue is not authorized to create playlists in your Spotify account: run "
                "`segue login` first"
            )
        self._token = self._valid_token()

    def _valid_token(self) -> str:
        # validate_token (not get_access_token, which would fall back to an interactive login
        # that blocks a web app): refreshes an expired token, None when the scopes are missing.
        try:
            info = self.auth.validate_token(self.auth.cache_handler.get_cached_token())
            if info is None:
                raise NeedsLogin(
                    "the saved Spotify login does not allow creating playlists (scopes "
                    f"{SCOPES}); run `segue login` again"
                )
            return str(info["access_token"])
        except SpotifyOauthError as exc:
            raise NeedsLogin(
                f"the saved Spotify login no longer works ({exc.error}: it may have been revoked); "
                "run `segue login` again"
            ) from None
        except requests.RequestException as exc:
            raise SaveRefused(f"could not reach Spotify ({type(exc).__name__})") from None

    def _refresh(self) -> None:
        cached = self.auth.cache_handler.get_cached_token() or {}
        try:
            info = self.auth.refresh_access_token(cached.get("refresh_token"))
        except SpotifyOauthError as exc:
            raise NeedsLogin(
                f"the saved Spotify login no longer works ({exc.error}); run `segue login` again"
            ) from None
        self._token = str(info["access_token"])

    def _once(self, method: str, path: str, label: str, body: dict[str, Any] | None) -> Any:
        try:
            response = self.session.request(
                method,
                f"{self.base}/{path}",
                json=body,
                headers={"Authorization": f"Bearer {self._token}", "Accept": "application/json"},
                timeout=self.policy.timeout,
            )
        except requests.RequestException as exc:
            raise _transport_error(exc, label) from None
        if response.status_code >= 400:
            raise _error_from_response(response, label)
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError:
            raise ProviderError(
                "spotify", label, "the answer is not valid JSON", error_kind="malformed"
            ) from None

    def call(self, method: str, path: str, label: str, body: dict[str, Any] | None = None) -> Any:
        return self.retrier.call(
            lambda: self._once(method, path, label, body), refresh=self._refresh
        )


def _refused(exc: ProviderError) -> SaveRefused:
    if exc.status == 403:
        return SaveRefused(
            f"Spotify refused ({exc.endpoint}: {exc.problem}). A development-mode app acts only "
            "for the users on its allow-list (at most 5): add this account under 'User "
            "Management' at https://developer.spotify.com/dashboard, then run `segue login` "
            "again so it grants the playlist scopes"
        )
    if exc.status == 401:
        return SaveRefused(f"Spotify refused the login ({exc.problem}); run `segue login` again")
    return SaveRefused(f"could not save the playlist: {exc}")


def save_playlist(
    name: str,
    track_ids: Sequence[str],
    *,
    description: str = "Recommended by segue",
    public: bool = False,
    credentials_path: str | None = None,
    auth: SpotifyPKCE | None = None,
    settings: NetworkSettings | None = None,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] | None = None,
    home: Home | None = None,
) -> SavedPlaylist:
    """Create playlist ``name`` in the logged-in user's account holding ``track_ids`` in order.

    Raises :class:`NeedsLogin` (run ``segue login``), :class:`SaveRefused` (what Spotify said
    and what to do), :class:`ValueError` for an empty name or a malformed id.
    """
    if not name or not name.strip():
        raise ValueError('the playlist needs a name, e.g. --save-playlist "Sunday mix"')
    uris = []
    for tid in track_ids:
        if not spotify_ids.is_spotify_id(tid):
            raise ValueError(f"not a Spotify track id: {tid!r}; expected 22 base62 characters")
        uris.append(f"spotify:track:{tid}")
    settings = settings or NetworkSettings.from_env()
    policy = policy or RetryPolicy.from_env(settings)
    auth = auth or auth_manager(credentials_path, settings=settings, home=home)
    client = _UserClient(auth, settings=settings, policy=policy, sleep=sleep)
    body = {"name": name.strip(), "public": public, "description": description}
    try:
        try:
            playlist = client.call("POST", "me/playlists", CREATE, body)
        except ProviderError as exc:
            if exc.status not in (404, 405):
                raise
            me = client.call("GET", "me", ME)
            user = me.get("id") if isinstance(me, dict) else None
            if not isinstance(user, str):
                raise SaveRefused(
                    "Spotify did not say who the logged-in user is (GET /me)"
                ) from None
            playlist = client.call("POST", f"users/{user}/playlists", CREATE_OLD, body)
        if not isinstance(playlist, dict) or not isinstance(playlist.get("id"), str):
            raise SaveRefused("Spotify created no playlist (the answer has no id)")
    except ProviderError as exc:
        raise _refused(exc) from None
    pid = playlist["id"]
    urls = playlist.get("external_urls")
    url = (urls.get("spotify") if isinstance(urls, dict) else None) or (
        f"https://open.spotify.com/playlist/{pid}"
    )
    added = 0
    new_path = True
    try:
        for start in range(0, len(uris), ITEMS_PER_REQUEST):
            chunk = uris[start : start + ITEMS_PER_REQUEST]
            if new_path:
                try:
                    client.call("POST", f"playlists/{pid}/items", ADD, {"uris": chunk})
                except ProviderError as exc:
                    if exc.status not in (404, 405):
                        raise
                    new_path = False
            if not new_path:
                client.call("POST", f"playlists/{pid}/tracks", ADD_OLD, {"uris": chunk})
            added += len(chunk)
    except (ProviderError, NeedsLogin) as exc:
        reason = _refused(exc) if isinstance(exc, ProviderError) else exc
        raise SaveRefused(
            f"playlist {url} was created but holds only {added} of {len(uris)} tracks: {reason}"
        ) from None
    return SavedPlaylist(pid, url, added, name.strip())
