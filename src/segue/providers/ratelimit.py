"""A per-provider request limiter: at most ``requests`` requests in any ``per`` seconds.

Open sources publish their limits as counts over windows (MusicBrainz: 1 request per second;
Last.fm: about 5 per second; Deezer: 50 per 5 seconds) and answer an excess with 503, error 29 or
a quota error. :class:`RateLimiter` keeps the times at which the last ``requests`` requests
*ended* and makes the next one wait until the oldest of them is ``per`` seconds old. Counting
from the end of a request (not its start) means the server, which sees each request before it
ends, never sees more than ``requests`` of them in any window of ``per`` seconds, whatever the
network's jitter.

Written here because the libraries that do this (``ratelimit``, ``limits``, ``pyrate-limiter``)
count request starts, cannot take an injected clock for tests, or bring a storage backend.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field


@dataclass
class RateLimiter:
    """At most ``requests`` requests in any window of ``per`` seconds (thread-safe)."""

    requests: int
    per: float
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    waited: float = 0.0
    _ends: deque[float] = field(default_factory=deque, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.requests, int) or self.requests < 1:
            raise ValueError(f"requests must be an int >= 1, got {self.requests!r}")
        if not self.per > 0:
            raise ValueError(f"per must be a number of seconds > 0, got {self.per!r}")

    @classmethod
    def parse(cls, text: str, *, what: str = "rate limit") -> RateLimiter:
        """From ``"N/S"`` (N requests per S seconds), e.g. ``"50/5"``; ``"N"`` means per second."""
        raw = text.strip()
        count, _, seconds = raw.partition("/")
        try:
            n = int(count)
            per = float(seconds) if seconds else 1.0
            return cls(n, per)
        except ValueError:
            raise ValueError(
                f"{what} must look like N/SECONDS (e.g. 50/5: 50 requests per 5 s), got {text!r}"
            ) from None

    @classmethod
    def from_env(cls, env_name: str, default: tuple[int, float]) -> RateLimiter:
        """``default`` unless ``env_name`` is set (for a local mirror without the public limit)."""
        raw = os.environ.get(env_name, "").strip()
        if raw:
            return cls.parse(raw, what=env_name)
        return cls(*default)

    def describe(self) -> str:
        return f"{self.requests} request(s) per {self.per:g} s"

    def _wait_turn(self) -> None:
        while len(self._ends) >= self.requests:
            wait = self._ends[0] + self.per - self.clock()
            if wait <= 0:
                self._ends.popleft()
                continue
            self.waited += wait
            self.sleep(wait)

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Wait for a turn, run the request inside, and count it as ended when the block ends
        (whether it answered, failed or timed out: the server may have seen it either way)."""
        with self._lock:
            self._wait_turn()
            try:
                yield
            finally:
                self._ends.append(self.clock())
                while len(self._ends) > self.requests:
                    self._ends.popleft()
