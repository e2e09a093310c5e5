"""Credentials and tokens out of every error text: :func:`redact`.

Kept apart from :mod:`segue.providers.base` (which re-exports it, and whose
:class:`~segue.providers.base.ProviderError` applies it to every message) because the CLI's
consoles use it too and must not load the provider stack (pandas) to print a line.

Two passes, written by hand because no maintained library does this for free text (log
scrubbers work on structured records): every secret *value* registered by the code that holds it
(:func:`register_secret`: the client id and secret, their Basic header, each access token
received) is replaced wherever it appears, then *patterns* catch what was never registered: an
``Authorization`` header, ``Bearer``/``Basic`` credentials, ``client_secret=``/``access_token``/
``refresh_token``/``api_key``/``password`` in query, form, YAML or JSON form, ``key=``/``token=``
query values, JWTs and ``user:password@`` in URLs.
"""

from __future__ import annotations

import re
import threading

#: What a secret is replaced with (not ``[...]``: that would read as Rich markup).
MASK = "<redacted>"
#: Shorter values are not registered: replacing them everywhere would mangle ordinary text.
MIN_SECRET_LENGTH = 8

_secrets: set[str] = set()
_lock = threading.Lock()

# Names whose value is a secret whether written ``name=value``, ``name: value`` or as JSON.
_STRONG = (
    r"client[_-]?secret|client[_-]?id|access[_-]?token|refresh[_-]?token|id[_-]?token|"
    r"api[_-]?key|apikey|x-api-key|private[_-]?key|password|passwd|secret[_-]?key"
)
# Names too common in prose to redact after a colon; redacted in ``name=value`` form only.
_WEAK = r"key|token|secret|sig|signature|auth|code|session"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization: Bearer abc / "Authorization": "Basic abc" / authorization=abc
    (
        re.compile(
            r"""(?P<head>\bauthorization["']?\s*[:=]\s*["']?(?:(?:bearer|basic|token|digest)\s+)?)"""
            r"""(?P<value>(?=[^\s"'&,;]*\w)[^\s"'&,;]+)""",
            re.IGNORECASE,
        ),
        rf"\g<head>{MASK}",
    ),
    # Bearer abc / Basic abc anywhere else
    (
        re.compile(r"(?P<head>\b(?:bearer|basic)\s+)(?P<value>[A-Za-z0-9._~+/=-]{6,})", re.I),
        rf"\g<head>{MASK}",
    ),
    # client_secret=abc, "access_token": "abc", api_key: abc
    (
        re.compile(
            rf"""(?P<head>["']?\b(?:{_STRONG})["']?\s*[:=]\s*["']?)(?P<value>(?=[^\s"'&,;}}\]]*\w)[^\s"'&,;}}\]]+)""",
            re.IGNORECASE,
        ),
        rf"\g<head>{MASK}",
    ),
    # key=abc, token=abc (query and form values)
    (
        re.compile(
            rf"(?P<head>\b(?:{_WEAK})=)(?P<value>(?=[^\s\"'&,;]*\w)[^\s\"'&,;]+)", re.IGNORECASE
        ),
        rf"\g<head>{MASK}",
    ),
    # JSON Web Tokens
    (
        re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),
        MASK,
    ),
    # https://user:password@host
    (
        re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://)(?P<value>[^/\s:@]+:[^/\s@]+)@", re.I),
        rf"\g<head>{MASK}@",
    ),
)


def register_secret(*values: str | None) -> None:
    """Remember these values as secrets: :func:`redact` hides them wherever they appear."""
    with _lock:
        for value in values:
            if isinstance(value, str) and len(value.strip()) >= MIN_SECRET_LENGTH:
                _secrets.add(value.strip())


def redact(text: object) -> str:
    """``text`` with every registered secret and every credential-looking value masked."""
    out = str(text)
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        if secret in out:
            out = out.replace(secret, MASK)
    for pattern, replacement in _PATTERNS:
        out = pattern.sub(replacement, out)
    return out


__all__ = ["MASK", "redact", "register_secret"]
