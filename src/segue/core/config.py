"""Settings read from the environment: network base URLs and limits, so tests can point the
clients at servers on 127.0.0.1.

Where segue keeps its catalog and artifacts is not a setting of the process: it is a
:class:`segue.core.home.Home` value, built once by whatever starts segue and passed on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class NetworkSettings:
    spotify_api_base: str
    spotify_token_url: str
    audio_features_base: str | None
    max_retry_after: float
    timeout: float

    @classmethod
    def from_env(cls) -> NetworkSettings:
        return cls(
            spotify_api_base=os.environ.get(
                "SEGUE_SPOTIFY_API_BASE", "https://api.spotify.com/v1/"
            ),
            spotify_token_url=os.environ.get(
                "SEGUE_SPOTIFY_TOKEN_URL", "https://accounts.spotify.com/api/token"
            ),
            audio_features_base=os.environ.get("SEGUE_AUDIO_FEATURES_BASE") or None,
            max_retry_after=float(os.environ.get("SEGUE_MAX_RETRY_AFTER", "60")),
            timeout=float(os.environ.get("SEGUE_HTTP_TIMEOUT", "10")),
        )
