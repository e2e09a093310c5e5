"""Running the HTTP API with uvicorn.

One process answers every request. With ``workers`` > 1 (on POSIX) it hands recommendations
to that many compute processes behind one queue (:mod:`segue.wire.pool`): the models compute mostly
under the GIL, so more processes, not more threads, use more cores. Elsewhere, uvicorn's own
worker processes are used (one queue per process).

The application served is the API shell's (:data:`API_APP`), which sits above this layer and
imports it: it is named here as uvicorn names an app, and loaded by that name, never imported.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from segue.core.home import HOME_ENV, Home


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket listening on ``host:port`` (OSError naming them if it cannot)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    return sock


#: uvicorn settings that bound what one connection may cost: h11 keeps at most this many
#: bytes of an incomplete request head (httptools keeps any amount), and an idle
#: keep-alive connection is closed after a few seconds.
UVICORN_LIMITS: dict[str, Any] = {
    "http": "h11",
    "h11_max_incomplete_event_size": 16 * 1024,
    "timeout_keep_alive": 5,
}


#: The API application factory, named as uvicorn names an app (``module:callable``; uvicorn's
#: own workers load :func:`create_served_app` the same way).
API_APP = "segue.api.app:create_app"


def create_served_app(
    workers: int = 1, allow_growth: bool = False, home: Home | None = None
) -> Any:
    """The API app of a serving process on ``home``, computing on ``workers`` processes (1: in
    this one). ``allow_growth``: unknown tracks and playlist links may be looked up on Spotify
    and added to the catalog (rate-limited); off, the API never calls out nor writes the
    catalog. Without ``home`` (uvicorn's own workers, started afresh), the home is the one
    ``SEGUE_HOME`` names, as for any segue started without ``--home``.

    BLAS is limited to one thread for the process's life: each computing thread or process
    runs one query at a time (see ``segue.core.threads``).
    """
    from uvicorn.importer import import_from_string

    from segue.core.threads import pin_single_thread_blas
    from segue.wire.pool import ComputePool

    create_app = import_from_string(API_APP)

    home = home or Home.resolve(None)
    pin_single_thread_blas()
    if workers <= 1:
        return create_app(home=home, allow_growth=allow_growth)
    pool = ComputePool(home, workers, allow_growth=allow_growth)
    pool.launch()  # before the server starts: a worker that cannot start is one clear error
    return create_app(home=home, compute=pool, allow_growth=allow_growth)


def serve(
    host: str,
    port: int,
    *,
    home: Home,
    workers: int = 1,
    allow_growth: bool = False,
    say: Callable[[str], None] = print,
) -> None:
    """Run the API on ``home`` until interrupted, computing on ``workers`` processes."""
    import uvicorn

    from segue.wire import pool

    sock = bind(host, port)  # first: a taken port is reported before anything loads
    try:
        if workers > 1 and not pool.supported():
            sock.close()
            _uvicorn_workers(home, host, port, workers, allow_growth)
            return
        if workers > 1:
            say(f"starting {workers} compute workers")
        app = create_served_app(workers, allow_growth, home=home)
        config = uvicorn.Config(app, log_level="warning", access_log=False, **UVICORN_LIMITS)
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()


def create_growing_app() -> Any:
    """:func:`create_served_app` allowing growth (for uvicorn's own workers)."""
    return create_served_app(1, allow_growth=True)


def _uvicorn_workers(
    home: Home, host: str, port: int, workers: int, allow_growth: bool = False
) -> None:
    import os

    import uvicorn

    os.environ[HOME_ENV] = str(home.root)  # uvicorn's workers start afresh: they read it

    uvicorn.run(
        "segue.wire.serving:create_growing_app"
        if allow_growth
        else "segue.wire.serving:create_served_app",
        **UVICORN_LIMITS,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )
