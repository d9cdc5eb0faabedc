"""Time chunks of a long take, and where they run: here, or as Dask tasks.

The heavy stages (2D pose, OpenKin's batch IK) cut a long take into contiguous chunks of
frames. The chunks are part of the algorithm, not of how it runs: a serial run solves the
same chunks, one after the other, as a cluster does in parallel, so the outputs are the same
bytes however the run is spread. A chunk keeps the frames ``[keep, stop_keep)`` and
processes ``[start, stop)`` around them (an overlap where the algorithm looks at
neighbouring frames; see :func:`plan`).

:func:`run_tasks` runs one function per chunk:

- on the Dask client made current with :func:`use_client` (``openkin run --workers N`` or
  ``--scheduler ADDRESS``, see :mod:`openkin.cluster`);
- from inside a Dask task (a trial of ``openkin batch`` on a cluster): as tasks of the same
  cluster, the trial's task leaving its worker's slot while it waits (``worker_client``);
- otherwise in this process, one after the other.

Each task runs with one BLAS/OpenMP thread (as ``openkin batch`` runs its trials), here too,
so that no result depends on how many cores the process that ran it had.
"""
from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Iterator

log = logging.getLogger(__name__)

RETRIES = 1  # a task whose worker died runs once more (chunks here, batch trials in openkin.cluster)

_CLIENT: contextvars.ContextVar[Any] = contextvars.ContextVar("openkin_chunk_client", default=None)


@dataclass(frozen=True)
class Chunk:
    """Frames ``[start, stop)`` processed, of which ``[keep, stop_keep)`` are kept."""

    start: int
    keep: int
    stop_keep: int
    stop: int

    @property
    def lead(self) -> int:
        """Processed frames before the first kept one."""
        return self.keep - self.start

    @property
    def kept(self) -> slice:
        """The kept frames, as a slice of the chunk's processed frames."""
        return slice(self.keep - self.start, self.stop_keep - self.start)


def plan(n: int, size: int, overlap: int = 0, align: int = 1, first: int = 0) -> list[Chunk]:
    """Chunks of about ``size`` kept frames covering frames ``[first, first + n)``: ``n // size`` of
    them (at least one), their boundaries rounded down to a multiple of ``align`` frames from
    ``first``; each processes ``overlap`` frames more on both sides (within the take)."""
    count = max(1, n // max(1, size))
    bounds = [first + (round(i * n / count) // align) * align for i in range(count)] + [first + n]
    out = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        if b > a:
            out.append(Chunk(max(first, a - overlap), a, b, min(first + n, b + overlap)))
    return out


@contextlib.contextmanager
def use_client(client) -> Iterator[None]:
    """Within the block, :func:`run_tasks` submits to the Dask ``client`` (None: in this process)."""
    token = _CLIENT.set(client)
    try:
        yield
    finally:
        _CLIENT.reset(token)


def _in_dask_task() -> bool:
    if "distributed" not in sys.modules:
        return False
    from distributed import get_worker

    try:
        get_worker()
    except ValueError:
        return False
    return True


def where() -> str:
    """Where :func:`run_tasks` would run chunks now: 'client', 'worker' (inside a Dask task) or 'here'."""
    return "client" if _CLIENT.get() is not None else "worker" if _in_dask_task() else "here"


def run_tasks(fn: Callable, items: list[tuple], name: str) -> list:
    """``[fn(*item) for item in items]`` in order, as Dask tasks when a cluster is at hand (see the
    module doc). A task's exception is raised here (after its retry, for a dead worker)."""
    how = where()
    if how == "here" or len(items) <= 1:
        return [one_thread(fn, *item) for item in items]
    if how == "client":
        return _on(_CLIENT.get(), fn, items, name)
    from distributed import worker_client

    with worker_client() as client:
        return _on(client, fn, items, name)


def _on(client, fn: Callable, items: list[tuple], name: str) -> list:
    tag = uuid.uuid4().hex[:8]
    futures = [client.submit(one_thread, fn, *item, key=f"openkin-{name}-{i}-{tag}", pure=False, retries=RETRIES)
               for i, item in enumerate(items)]
    log.info("%s: %d chunk task(s) on Dask", name, len(futures))
    return client.gather(futures)


def one_thread(fn: Callable, *args):
    """``fn(*args)`` with one BLAS/OpenMP thread."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return fn(*args)
