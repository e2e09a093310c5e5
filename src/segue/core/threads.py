"""BLAS threads: one per query, or one for the whole process of a server.

One query is a memory-bound product over millions of rows: a second BLAS thread gains little
when a core is free and, on a busy machine, OpenBLAS threads spin-waiting for a core made one
product 50x slower in measurements. Models compute a query inside :func:`single_thread_blas`;
batches keep all threads. A server computing one query per thread calls
:func:`pin_single_thread_blas` once (``segue.wire.serving``, ``segue.wire.pool``).
"""

from __future__ import annotations

import contextlib
from typing import Any

_BLAS_CONTROLLER: Any = None
_BLAS_PINNED = False


def single_thread_blas() -> Any:
    """Context manager limiting BLAS to one thread (threadpoolctl, a scikit-learn dependency);
    nothing to do once the process is pinned."""
    if _BLAS_PINNED:
        return contextlib.nullcontext()
    return _blas_controller().limit(limits=1, user_api="blas")


def _blas_controller() -> Any:
    global _BLAS_CONTROLLER
    if _BLAS_CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _BLAS_CONTROLLER = ThreadpoolController()
    return _BLAS_CONTROLLER


def pin_single_thread_blas() -> None:
    """Limit BLAS to one thread for the rest of the process (a server computing one query per
    thread): :func:`single_thread_blas` then costs nothing. Limiting per query costs about
    0.1 ms each time (threadpoolctl sets and restores every BLAS library's thread count), and
    with several threads computing at once their limits and restores interleave anyway."""
    global _BLAS_PINNED
    _blas_controller().limit(limits=1, user_api="blas")
    _BLAS_PINNED = True


__all__ = ["pin_single_thread_blas", "single_thread_blas"]
