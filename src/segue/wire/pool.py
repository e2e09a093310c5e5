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
import time
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from segue.core.home import Home

log = logging.getLogger("segue.wire.pool")

_LENGTH = struct.Struct("!I")
_STATUS = struct.Struct("!H")
_READY = b"ready"
#: Seconds a worker may take to load the snapshot and the default model.
START_TIMEOUT = float(os.environ.get("SEGUE_WORKER_START_TIMEOUT", "900"))
#: Seconds a worker may spend on one request before it is stopped (and replaced): a request
#: stuck there would otherwise hold the one behind it, and a graceful shutdown, for ever.
REQUEST_TIMEOUT = float(os.environ.get("SEGUE_REQUEST_TIMEOUT", "120"))


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
    from segue.service.engine import Filters
    from segue.wire.replies import RecommendResponse, error_reply

    try:
        req = orjson.loads(payload)
        rec = service.recommend(
            req["seeds"],
            n=req["n"],
            model=req["model"],
            title=req["title"],
            filters=Filters(**req["filters"]),
            explain=req["explain"],
            params=req.get("params"),
        )
        return 200, orjson.dumps(RecommendResponse.plain(rec))
    except Exception as exc:
        status, body = error_reply(exc)
        if status == 500:
            log.error("recommend failed in a compute worker", exc_info=exc)
        return status, orjson.dumps(body)


def worker_main(fd: int, home: Home, allow_growth: bool = False) -> None:
    """A compute worker: load the service on ``home``, then answer requests from socket ``fd``
    until it closes."""
    logging.basicConfig(level=logging.WARNING, format="segue worker: %(message)s")
    from segue.core.threads import pin_single_thread_blas
    from segue.models.registry import DEFAULT_MODEL
    from segue.service.engine import service_for_api

    pin_single_thread_blas()
    sock = socket.socket(fileno=fd)
    sock.set_inheritable(False)  # a process this one starts must not keep the API's end open
    service = service_for_api(home, allow_growth=allow_growth)
    try:  # load now, so the first request is not the slow one
        service.snapshot  # noqa: B018
        service.warm()
        service.model(DEFAULT_MODEL)
    except Exception:  # not built yet: requests say so, as in process
        pass
    # Loaded: from now on the API process stops this worker by closing its socket, once the
    # requests in hand are answered. Ctrl+C and a SIGTERM to the whole process group (a service
    # manager's default) reach the workers too; they must not cut those requests short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
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
#: Seconds between attempts to start a worker in place of one that died.
RESTART_DELAYS = (0.0, 1.0, 5.0, 30.0)
_LOST = (503, orjson.dumps({"detail": "the compute worker stopped while answering: try again"}))


def _timed_out() -> tuple[int, bytes]:
    detail = f"the request took longer than {REQUEST_TIMEOUT:g} s: its compute worker was stopped"
    return 503, orjson.dumps({"detail": detail})


Answer = asyncio.Future[tuple[int, bytes]]


@dataclass
class _Worker:
    proc: subprocess.Popen[bytes]
    sock: socket.socket
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    #: requests sent to this worker, oldest first (it answers in order): payload and answer
    pending: deque[tuple[bytes, Answer]] = field(default_factory=deque)
    listener: asyncio.Task[None] | None = None
    #: when the worker started on its oldest request (time.monotonic())
    busy_since: float = 0.0
    timed_out: bool = False


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    (size,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
    return await reader.readexactly(size)


class ComputePool:
    """``size`` compute processes on ``home`` and the queue in front of them.

    Requests queue here in arrival order; the first goes to the worker with the fewest requests
    in hand whenever one has fewer than :data:`DEPTH`. Everything that changes the queue or a
    worker's requests runs in the event loop without awaiting in between, so the order on a
    worker's socket is the order of its ``pending`` answers.

    :meth:`launch` starts the processes and waits until each has loaded its models (before the
    server starts, so a failure is one clear error); :meth:`attach` and :meth:`close` run
    inside the server's event loop (the API's lifespan).
    """

    def __init__(self, home: Home | Path, size: int, *, allow_growth: bool = False) -> None:
        if size < 1:
            raise ValueError(f"a compute pool needs at least one worker, got {size}")
        self.home = Home.of(home)
        self.allow_growth = allow_growth
        self.size = size
        self._workers: list[_Worker] = []
        self._queue: deque[tuple[bytes, Answer]] = deque()
        #: answers of the heavy requests not answered yet
        self._heavy: set[Answer] = set()
        self._starting = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._watcher: asyncio.Task[None] | None = None
        self._attached = False
        self._closing = False
        #: workers that died, until :meth:`close` (their stop task may be cancelled before it
        #: runs, and a process must not outlive the pool)
        self._dead: list[_Worker] = []

    @property
    def running(self) -> int:
        """Workers alive."""
        return len(self._workers)

    @property
    def ready(self) -> bool:
        """True while a worker runs or one is starting (requests are then answered)."""
        return bool(self._workers or self._starting)

    def _spawn(self) -> _Worker:
        parent, child = socket.socketpair()
        try:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "segue.wire.pool",
                    str(child.fileno()),
                    str(self.home.root),
                    *(["--allow-growth"] if self.allow_growth else []),
                ],
                pass_fds=[child.fileno()],
            )
        except BaseException:
            parent.close()
            raise
        finally:
            child.close()
        return _Worker(proc, parent)

    @staticmethod
    def _not_started(worker: _Worker, said: bytes | None) -> PoolUnavailable:
        """Stop a worker that did not become ready; the error saying why."""
        worker.sock.close()
        running = worker.proc.poll() is None
        if running:
            worker.proc.kill()
        code = worker.proc.wait()
        if said is not None:
            return PoolUnavailable(f"a compute worker said {said[:40]!r} instead of ready")
        if running:
            return PoolUnavailable(
                f"a compute worker was not ready within {START_TIMEOUT:g} s "
                "(SEGUE_WORKER_START_TIMEOUT)"
            )
        return PoolUnavailable(
            f"a compute worker did not start (it exited with code {code}): see the messages above"
        )

    def _handshake(self, worker: _Worker, timeout: float) -> PoolUnavailable | None:
        """Wait (blocking) until ``worker`` says it is ready; None, or the error saying why not
        (the worker stopped)."""
        worker.sock.settimeout(max(timeout, 0.001))
        try:
            said = _recv(worker.sock)
        except OSError:  # including the timeout
            said = None
        if said != _READY:
            return self._not_started(worker, said)
        worker.sock.settimeout(None)
        return None

    def launch(self) -> None:
        """Start every worker and wait until each is ready; raises :class:`PoolUnavailable`
        (with every worker stopped) if one cannot start."""
        spawned: list[_Worker] = []
        try:
            spawned.extend(self._spawn() for _ in range(self.size))
            deadline = time.monotonic() + START_TIMEOUT
            failures: list[PoolUnavailable] = []
            for worker in spawned:
                failure = self._handshake(worker, deadline - time.monotonic())
                if failure is not None:
                    failures.append(failure)
                else:
                    self._workers.append(worker)
        except BaseException:  # interrupted (Ctrl+C while loading): stop what was started
            for worker in spawned:
                worker.sock.close()
                if worker.proc.poll() is None:
                    worker.proc.kill()
                worker.proc.wait()
            self._workers = []
            raise
        if failures:
            for worker in self._workers:
                worker.sock.close()
                worker.proc.wait()
            self._workers = []
            raise failures[0]

    async def attach(self) -> None:
        """Serve requests from the running event loop (call once; launches the workers first
        if :meth:`launch` was not called)."""
        if not self._workers:
            await asyncio.to_thread(self.launch)
        for worker in self._workers:
            await self._connect(worker)
        self._attached = True
        self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        """Stop a worker that has spent more than :data:`REQUEST_TIMEOUT` on one request (its
        listener then answers 503 and a replacement starts)."""
        while not self._closing:
            await asyncio.sleep(min(1.0, REQUEST_TIMEOUT / 4))
            now = time.monotonic()
            for worker in self._workers:
                stuck = worker.pending and now - worker.busy_since > REQUEST_TIMEOUT
                if stuck and not worker.timed_out:
                    log.error(
                        "a compute worker spent over %g s on one request: stopping it",
                        REQUEST_TIMEOUT,
                    )
                    worker.timed_out = True
                    worker.proc.kill()

    async def _connect(self, worker: _Worker) -> None:
        worker.reader, worker.writer = await asyncio.open_unix_connection(sock=worker.sock)
        worker.listener = asyncio.get_running_loop().create_task(self._listen(worker))

    async def recommend(self, request: dict[str, Any], *, heavy: bool = False) -> tuple[int, bytes]:
        """Status and JSON body for one recommend request (``Service.recommend``'s arguments,
        filters as a dict). A ``heavy`` request (one that looks names up) computes alone on
        its worker: no other request is sent to that worker until it is answered, so none
        waits behind it while another worker could take it (the caller keeps heavy requests
        to fewer than the workers)."""
        if not self._attached or self._closing:
            raise PoolUnavailable("the compute workers are not running")
        if not self.ready:
            raise PoolUnavailable("no compute worker is running: see the server's log")
        entry = (orjson.dumps(request), asyncio.get_running_loop().create_future())
        if heavy:
            self._heavy.add(entry[1])
            entry[1].add_done_callback(self._heavy.discard)
        self._queue.append(entry)
        self._dispatch()
        try:
            return await entry[1]
        except asyncio.CancelledError:
            # Still queued: it leaves the queue. Already sent: the listener reads its answer
            # and drops it, so the next request on that worker gets its own.
            if entry in self._queue:
                self._queue.remove(entry)
            raise

    def _dispatch(self) -> None:
        """Send queued requests, oldest first, while a worker has room. A heavy request goes
        only to an idle worker and nothing follows it there until it is answered; requests
        behind a heavy one that cannot be sent yet go ahead of it."""
        index = 0
        while index < len(self._queue):
            payload, answer = self._queue[index]
            if answer.done():  # cancelled while queued
                del self._queue[index]
                continue
            heavy = answer in self._heavy
            live = [
                w
                for w in self._workers
                if len(w.pending) < DEPTH
                and not any(a in self._heavy for _, a in w.pending)
                and not (heavy and w.pending)
            ]
            if not live:
                if not any(len(w.pending) < DEPTH for w in self._workers):
                    return  # every worker is full
                index += 1  # this one waits for an idle worker; a later one may fit
                continue
            worker = min(live, key=lambda w: len(w.pending))
            del self._queue[index]
            assert worker.writer is not None
            if not worker.pending:
                worker.busy_since = time.monotonic()
            worker.pending.append((payload, answer))
            worker.writer.write(_LENGTH.pack(len(payload)) + payload)

    async def _listen(self, worker: _Worker) -> None:
        """Read the worker's answers and hand them to the requests, oldest first."""
        assert worker.reader is not None
        try:
            while True:
                reply = await _read_frame(worker.reader)
                _, answer = worker.pending.popleft()
                worker.busy_since = time.monotonic()
                (status,) = _STATUS.unpack(reply[: _STATUS.size])
                if not answer.done():
                    answer.set_result((status, reply[_STATUS.size :]))
                self._dispatch()
        except (asyncio.IncompleteReadError, ConnectionError):
            self._lost(worker)

    def _lost(self, worker: _Worker) -> None:
        """A worker died: the request it was computing is answered 503 (it may be what killed
        it), the ones it had not started go back to the front of the queue (recommending only
        reads), and another worker starts in its place."""
        if worker in self._workers:
            self._workers.remove(worker)
        self._dead.append(worker)
        if worker.pending:
            _, computing = worker.pending.popleft()
            if not computing.done():
                computing.set_result(_timed_out() if worker.timed_out else _LOST)
            self._queue.extendleft(reversed(worker.pending))
            worker.pending.clear()
        self._background(self._stop_dead(worker))
        if self._closing:
            return
        log.error("a compute worker stopped (exit code %s): starting another", worker.proc.poll())
        self._starting += 1
        self._background(self._replace())
        self._dispatch()

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` as a task this pool keeps a reference to until it ends."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _replace(self) -> None:
        """Start a worker in place of a dead one, trying again after :data:`RESTART_DELAYS`."""
        try:
            for delay in RESTART_DELAYS:
                await asyncio.sleep(delay)
                if self._closing:
                    return
                worker = await self._start_one()
                if worker is not None:
                    if self._closing:
                        await self._stop(worker)
                        return
                    self._workers.append(worker)
                    self._dispatch()
                    return
            log.error("no compute worker could be started in place of one that stopped")
        finally:
            self._starting -= 1
            if not self.ready:
                self._fail_queued()

    async def _start_one(self) -> _Worker | None:
        try:
            worker = self._spawn()
        except OSError as exc:  # no file descriptors or memory left for a process
            log.error("cannot start a compute worker: %s", exc)
            return None
        try:
            failure = await asyncio.to_thread(self._handshake, worker, START_TIMEOUT)
        except asyncio.CancelledError:  # the pool is closing: this worker stops too
            worker.proc.kill()
            await asyncio.to_thread(worker.proc.wait)
            worker.sock.close()
            raise
        if failure is not None:
            log.error("%s", failure)
            return None
        try:
            await self._connect(worker)
        except asyncio.CancelledError:  # closing while connecting: this worker stops too
            worker.proc.kill()
            await asyncio.to_thread(worker.proc.wait)
            worker.sock.close()
            raise
        return worker

    def _fail_queued(self) -> None:
        """No worker runs or starts: the queued requests are answered 503 at once."""
        while self._queue:
            _, answer = self._queue.popleft()
            if not answer.done():
                answer.set_exception(
                    PoolUnavailable("no compute worker is running: see the server's log")
                )

    async def _stop_dead(self, worker: _Worker) -> None:
        await self._stop(worker)
        if worker in self._dead:
            self._dead.remove(worker)

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
        except asyncio.CancelledError:  # the pool is closing: no waiting past the loop
            worker.proc.kill()
            worker.proc.wait()
            raise

    async def close(self) -> None:
        """Stop every worker (after the server has finished its requests)."""
        self._closing = True
        if self._watcher is not None:
            self._watcher.cancel()
        workers, self._workers = self._workers, []
        for worker in workers:
            if worker.listener is not None:
                worker.listener.cancel()
        await asyncio.gather(*(self._stop(w) for w in workers))
        # Replacements still starting (or waiting to) stop too, and every stopped worker's
        # process is waited for before the loop ends.
        background = list(self._tasks)
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        for worker in self._dead:  # a stop task cancelled before it ran left these
            if worker.writer is not None:
                worker.writer.close()
            worker.sock.close()
            if worker.proc.poll() is None:
                worker.proc.kill()
            await asyncio.to_thread(worker.proc.wait)
        self._dead.clear()
        self._fail_queued()


if __name__ == "__main__":
    # The worker's home is built once, here, from its argv.
    worker_main(int(sys.argv[1]), Home(Path(sys.argv[2])), "--allow-growth" in sys.argv[3:])
