"""Running the HTTP API with uvicorn, in one process or several.

Several worker processes are what let the API use several cores (the models compute mostly
under the GIL). uvicorn's own ``--workers`` shares one listening socket between them, and the
kernel hands each new connection to whichever worker accepts first: on a busy server one
worker often takes most connections and, since a keep-alive connection stays with its worker,
most of the load, while the other idles (measured with ``benchmarks/serve.py``: 10.8 against
4.3 CPU-seconds in a 10-second run). On Linux each worker here binds its own socket with
``SO_REUSEPORT`` instead, and the kernel spreads connections evenly over the sockets by a hash
of their addresses. Elsewhere uvicorn's workers are used.

uvicorn has no option for a socket per worker; :func:`serve` hands it sockets made here.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

#: Hidden option of ``segue serve``: run one worker on a socket bound with SO_REUSEPORT.
WORKER_FLAG = "--reuse-port-worker"


def reuse_port_balances() -> bool:
    """True where SO_REUSEPORT spreads connections over the sockets sharing a port (Linux)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def bind(host: str, port: int, *, reuse_port: bool, listen: bool = True) -> socket.socket:
    """A TCP socket bound to ``host:port``, listening unless ``listen`` is False."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    if listen:
        sock.listen(2048)
    return sock


def serve(host: str, port: int, *, reuse_port: bool = False) -> None:
    """Run the API in this process until interrupted."""
    import uvicorn

    from segue.api import create_app

    config = uvicorn.Config(create_app(), log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    sock = bind(host, port, reuse_port=reuse_port)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


def serve_workers(
    host: str, port: int, workers: int, *, home: Path, say: Callable[[str], None]
) -> int:
    """Run ``workers`` API processes on ``host:port`` until interrupted; returns an exit code.

    On Linux each worker is a ``segue serve`` process with its own SO_REUSEPORT socket,
    supervised here: an interrupt or SIGTERM stops them all, and if one exits the others are
    stopped too. Elsewhere, uvicorn's multi-process mode.
    """
    if not reuse_port_balances():
        import uvicorn

        os.environ["SEGUE_HOME"] = str(home)
        uvicorn.run(
            "segue.api:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
            access_log=False,
        )
        return 0
    # Fail here, with one message, if the port is taken by a socket without SO_REUSEPORT (a
    # socket that only binds: one that listened could take a connection and drop it).
    bind(host, port, reuse_port=True, listen=False).close()
    env = {**os.environ, "SEGUE_HOME": str(home)}
    command = [sys.executable, "-m", "segue", "--home", str(home), "serve"]
    command += ["--host", host, "--port", str(port), WORKER_FLAG]
    children = [subprocess.Popen(command, env=env) for _ in range(workers)]
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    code = 0
    try:
        while not stopping:
            exited = [c for c in children if c.poll() is not None]
            if exited:
                code = exited[0].returncode or 1
                say(f"a worker exited with code {exited[0].returncode}: stopping the others")
                break
            time.sleep(0.2)
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for child in children:
            try:
                child.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code
