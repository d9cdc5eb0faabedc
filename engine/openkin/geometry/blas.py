"""BLAS thread limit for the geometry kernels (see :class:`_SingleThreadBlas`)."""
from __future__ import annotations

import functools
import threading


class _SingleThreadBlas:
    """Limit BLAS to one thread while the kernels run (``threadpoolctl``, if installed).

    Chosen for speed: the kernels multiply thin matrices ((3C × 4)(4 × N), (10 × 4C)(4C × N));
    OpenBLAS splits them over its threads, which then spin-wait on a busy machine: measured
    on 2 shared cores, whole-person reconstruction ran at 13k frames/s (and 2× the CPU time)
    with OpenBLAS threads, 23-31k with one. Re-entrant and cheap when nested (a counter), so
    inner kernels can use it too; without threadpoolctl BLAS keeps its threads."""

    def __init__(self):
        self.depth = 0
        self.controller = None
        self.ctx = None
        self.lock = threading.Lock()  # worker threads (robust blocks) enter it too

    def __enter__(self):
        with self.lock:
            self.depth += 1
            if self.depth == 1:
                try:
                    if self.controller is None:
                        from threadpoolctl import ThreadpoolController

                        self.controller = ThreadpoolController()
                    self.ctx = self.controller.limit(limits=1, user_api="blas")
                except ImportError:
                    self.ctx = None
        return self

    def __exit__(self, *exc):
        with self.lock:
            self.depth -= 1
            if self.depth == 0 and self.ctx is not None:
                self.ctx.restore_original_limits()
                self.ctx = None
        return False


single_thread_blas = _SingleThreadBlas()


def blas_single(fn):
    """Decorator: run ``fn`` under :data:`single_thread_blas`."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with single_thread_blas:
            return fn(*args, **kwargs)

    return wrapper
