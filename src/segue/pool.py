"""Compute processes behind one API process: how ``segue serve --workers N`` uses N cores.

The models compute mostly under the GIL, so one process computes on about one core. With
``--workers N`` one API process (uvicorn, one event loop) answers every request and hands each
``POST /recommend`` to whichever of N compute processes is free, in arrival order: one queue
for all of them, as in a bank with one line for all its counters.

Worker processes that each accept their own connections (uvicorn's ``--workers``, or one
SO_REUSEPORT socket per worker) make one queue per worker instead: a keep-alive connection
stays with the worker that accepted it, the kernel spreads a few dozen connections unevenly,
and a worker holding more than its share queues while another idles. Measured with
``benchmarks/serve.py`` at 200 requests/s from 64 connections on two cores, that made the
99th percentile swing between 0.1 and 2.5 s from run to run with the same CPU per request.

Written here rather than with ``concurrent.futures.ProcessPoolExecutor``, which passes each
call through two helper threads and pickle: here the event loop itself writes a request to a
free worker's socket and reads its answer, with length-prefixed frames over a socket pair.

Frames: a 4-byte big-endian length, then the payload. A request is the JSON of the
``Service.recommend`` arguments; an answer is a 2-byte HTTP status and the JSON body the API
returns. A worker computes one request at a time; it exits when its socket closes (the API
process stopped, even by SIGKILL). A worker that dies is replaced, and the request it held is
answered 503.

POSIX only (the worker inherits its socket through ``pass_fds``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import struct
import subprocess
import sys
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger("segue.pool")

_LENGTH = struct.Struct("!I")
_STATUS = struct.Struct("!H")
_READY = b"ready"
#: Seconds a worker may take to load the snapshot and the default model.
START_TIMEOUT = float(os.environ.get("SEGUE_WORKER_START_TIMEOUT", "900"))


class PoolUnavailable(RuntimeError):
    """No compute worker can take the request (they stopped and could not be restarted)."""


def supported() -> bool:
    """True where workers can inherit their socket (POSIX)."""
    return os.name == "posix"


# the worker side ----------------------------------------------------------------------------
def _send(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(_LENGTH.pack(len(payload)) + payload)


def _recv_exact(sock: socket.socket, size: int) -> bytes | None:
    buf = bytearray(size)
    view = memoryview(buf)
    got = 0
    while got < size:
        n = sock.recv_into(view[got:])
        if n == 0:
            return None
        got += n
    return bytes(buf)


def _recv(sock: socket.socket) -> bytes | None:
    head = _recv_exact(sock, _LENGTH.size)
    if head is None:
        return None
    (size,) = _LENGTH.unpack(head)
    return _recv_exact(sock, size) if size else b""


def answer(service: Any, payload: bytes) -> tuple[int, bytes]:
    """Status and JSON body of one request, as the API answers it in process."""
    from segue.api import RecommendResponse, error_reply
    from segue.service import Filters

    try:
        req = orjson.loads(payload)
        rec = service.recommend(
            req["seeds"],
            n=req["n"],
            model=req["model"],
            title=req["title"],
            filters=Filters(**req["filters"]),
            explain=req["explain"],
        )
        return 200, orjson.dumps(RecommendResponse.plain(rec))
    except Exception as exc:
        status, body = error_reply(exc)
        if status == 500 or isinstance(exc, ImportError):
            log.error("recommend failed in a compute worker", exc_info=exc)
        return status, orjson.dumps(body)


def worker_main(fd: int, home: str) -> None:
    """A compute worker: load the service, then answer requests from socket ``fd`` until it
    closes."""
    # Ctrl+C reaches the whole process group: the API process stops the workers by closing
    # their sockets, after finishing the requests they hold.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="segue worker: %(message)s")
    from segue.models.content import pin_single_thread_blas
    from segue.models.registry import DEFAULT_MODEL
    from segue.service import Service

    pin_single_thread_blas()
    sock = socket.socket(fileno=fd)
    service = Service(Path(home))
    try:  # load now, so the first request is not the slow one
        service.snapshot  # noqa: B018
        service.model(DEFAULT_MODEL)
    except Exception:  # not built yet: requests say so, as in process
        pass
    try:
        _send(sock, _READY)
        while (payload := _recv(sock)) is not None:
            status, body = answer(service, payload)
            _send(sock, _STATUS.pack(status) + body)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the API process is gone: nothing to answer


# the API side -------------------------------------------------------------------------------
#: Requests sent to one worker at a time: the one it computes and the next, already in its
#: socket when it finishes (else it would wait for this process's event loop to be scheduled
#: between two requests, which on busy cores cost a quarter of the workers' time).
DEPTH = 2
_LOST = (503, orjson.dumps({"detail": "the compute worker stopped while answering: try again"}))


@dataclass
class _Worker:
    proc: subprocess.Popen[bytes]
    sock: socket.socket
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    #: answers awaited from this worker, oldest first (it answers in order)
    pending: deque[asyncio.Future[tuple[int, bytes]]] = field(default_factory=deque)
    listener: asyncio.Task[None] | None = None


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    (size,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
    return await reader.readexactly(size)


class ComputePool:
    """``size`` compute processes on ``home`` and the queue in front of them.

    A request goes to the worker with the fewest requests in hand, when one has fewer than
    :data:`DEPTH`; else it waits its turn here (first come, first served).

    :meth:`launch` starts the processes and waits until each has loaded its models (before the
    server starts, so a failure is one clear error); :meth:`attach` and :meth:`close` run
    inside the server's event loop (the API's lifespan).
    """

    def __init__(self, home: Path, size: int) -> None:
        if size < 1:
            raise ValueError(f"a compute pool needs at least one worker, got {size}")
        self.home = Path(home)
        self.size = size
        self._workers: list[_Worker] = []
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._starting = 0
        self._attached = False
        self._closing = False

    @property
    def running(self) -> int:
        """Workers alive."""
        return len(self._workers)

    def _spawn(self) -> _Worker:
        parent, child = socket.socketpair()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "segue.pool", str(child.fileno()), str(self.home)],
                pass_fds=[child.fileno()],
            )
        finally:
            child.close()
        return _Worker(proc, parent)

    @staticmethod
    def _not_started(worker: _Worker, said: bytes | None) -> PoolUnavailable:
        worker.sock.close()
        try:
            code = worker.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.proc.kill()
            code = worker.proc.wait()
        if said is None:
            return PoolUnavailable(
                f"a compute worker did not start (it exited with code {code}): see the "
                "messages above"
            )
        return PoolUnavailable(f"a compute worker said {said[:40]!r} instead of ready")

    def launch(self) -> None:
        """Start every worker and wait until each is ready; raises :class:`PoolUnavailable`
        (with every worker stopped) if one cannot start."""
        spawned = [self._spawn() for _ in range(self.size)]
        failure: PoolUnavailable | None = None
        for worker in spawned:
            worker.sock.settimeout(START_TIMEOUT)
            try:
                said = _recv(worker.sock)
            except OSError:  # including the timeout
                said = None
            if said != _READY:
                failure = failure or self._not_started(worker, said)
                continue
            worker.sock.settimeout(None)
            self._workers.append(worker)
        if failure is not None:
            for worker in self._workers:
                worker.sock.close()
                worker.proc.wait()
            self._workers = []
            raise failure

    async def attach(self) -> None:
        """Serve requests from the running event loop (call once; launches the workers first
        if :meth:`launch` was not called)."""
        if not self._workers:
            await asyncio.to_thread(self.launch)
        for worker in self._workers:
            await self._connect(worker)
        self._attached = True

    async def _connect(self, worker: _Worker) -> None:
        worker.reader, worker.writer = await asyncio.open_unix_connection(sock=worker.sock)
        worker.listener = asyncio.get_running_loop().create_task(self._listen(worker))

    def _free_worker(self) -> _Worker | None:
        live = [w for w in self._workers if len(w.pending) < DEPTH]
        return min(live, key=lambda w: len(w.pending)) if live else None

    async def recommend(self, request: dict[str, Any]) -> tuple[int, bytes]:
        """Status and JSON body for one recommend request (``Service.recommend``'s arguments,
        filters as a dict)."""
        if not self._attached or self._closing:
            raise PoolUnavailable("the compute workers are not running")
        payload = orjson.dumps(request)
        loop = asyncio.get_running_loop()
        woken = False  # woken in turn: first in line, ahead of every request still waiting
        while True:
            if not self._workers and not self._starting:
                raise PoolUnavailable("no compute worker is running: see the server's log")
            worker = self._free_worker() if woken or not self._waiting else None
            if worker is not None:
                break
            turn: asyncio.Future[None] = loop.create_future()
            # a request woken whose worker was taken meanwhile waits again at the front
            if woken:
                self._waiting.appendleft(turn)
            else:
                self._waiting.append(turn)
            try:
                await turn
            except asyncio.CancelledError:
                if turn in self._waiting:
                    self._waiting.remove(turn)
                else:
                    self._wake()  # pass on the turn this request was given
                raise
            woken = True
        answer: asyncio.Future[tuple[int, bytes]] = loop.create_future()
        worker.pending.append(answer)
        assert worker.writer is not None
        worker.writer.write(_LENGTH.pack(len(payload)) + payload)
        # A cancelled request (client gone) leaves its future in ``pending``: the listener
        # still reads its answer, so the next request on this worker gets its own.
        return await answer

    def _wake(self) -> None:
        """Give the first waiting request its turn, if a worker can take it."""
        while self._waiting and self._free_worker() is not None:
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                return

    async def _listen(self, worker: _Worker) -> None:
        """Read the worker's answers and hand them to the requests, oldest first."""
        assert worker.reader is not None
        try:
            while True:
                reply = await _read_frame(worker.reader)
                answer = worker.pending.popleft()
                (status,) = _STATUS.unpack(reply[: _STATUS.size])
                if not answer.done():
                    answer.set_result((status, reply[_STATUS.size :]))
                self._wake()
        except (asyncio.IncompleteReadError, ConnectionError):
            await self._lost(worker)

    async def _lost(self, worker: _Worker) -> None:
        """Answer the dead worker's requests 503, forget it and start another in its place."""
        if worker in self._workers:
            self._workers.remove(worker)
        while worker.pending:
            answer = worker.pending.popleft()
            if not answer.done():
                answer.set_result(_LOST)
        await self._stop(worker)
        if self._closing:
            return
        log.error(
            "a compute worker stopped (exit code %s): starting another", worker.proc.returncode
        )
        self._starting += 1
        asyncio.get_running_loop().create_task(self._replace())

    async def _replace(self) -> None:
        worker = self._spawn()
        try:
            reader, writer = await asyncio.open_unix_connection(sock=worker.sock)
            worker.writer = writer
            said: bytes | None = await asyncio.wait_for(_read_frame(reader), START_TIMEOUT)
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            said = None
        finally:
            self._starting -= 1
        if said != _READY or self._closing:
            await self._stop(worker)
            if said != _READY:
                log.error("%s", self._not_started(worker, said))
            self._fail_waiting_if_none_left()
            return
        worker.reader = reader
        worker.listener = asyncio.get_running_loop().create_task(self._listen(worker))
        self._workers.append(worker)
        self._wake()

    def _fail_waiting_if_none_left(self) -> None:
        if not self._workers and not self._starting:
            while self._waiting:  # they see no worker left and raise PoolUnavailable
                turn = self._waiting.popleft()
                if not turn.done():
                    turn.set_result(None)

    @staticmethod
    async def _stop(worker: _Worker, timeout: float = 10.0) -> None:
        # the worker sees the end of its socket and exits
        if worker.writer is not None:
            worker.writer.close()
        else:
            worker.sock.close()
        try:
            await asyncio.wait_for(asyncio.to_thread(worker.proc.wait), timeout)
        except TimeoutError:
            worker.proc.kill()
            await asyncio.to_thread(worker.proc.wait)

    async def close(self) -> None:
        """Stop every worker (after the server has finished its requests)."""
        self._closing = True
        workers, self._workers = self._workers, []
        for worker in workers:
            if worker.listener is not None:
                worker.listener.cancel()
        await asyncio.gather(*(self._stop(w) for w in workers))


if __name__ == "__main__":
    worker_main(int(sys.argv[1]), sys.argv[2])
