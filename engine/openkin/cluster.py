"""Dask distributed for ``openkin batch``: where the tasks run, and collecting them as they end.

Three ways to run a list of tasks (:func:`client_for`):

- in this process, one after the other (neither ``workers`` nor ``scheduler``): no Dask;
- ``workers=N``: a ``LocalCluster`` of N worker *processes* with one thread each, started
  here and closed at the end (forked from one server that imported OpenKin's stages once,
  :data:`WORKER_PRELOAD`);
- ``scheduler="tcp://host:8786"``: an existing scheduler whose workers a lab started on its
  machines (``dask scheduler``, ``dask worker tcp://host:8786``); the session folder must be
  on storage every worker sees at the same path.

Every task is submitted with ``retries=1``: a task whose worker dies (or that raises
something other than the result it returns) runs once more, then is reported
(:func:`collect` gives its exception). The local cluster's scheduler counts a worker's death
against a task once (``allowed-failures = 1``); a lab's scheduler has its own setting (see
docs/batch.md).
"""
from __future__ import annotations

import contextlib
import logging
import time
from typing import Any, Callable, Iterator

from .chunks import RETRIES  # one retry policy for trials and chunks (a dead worker's task runs once more)
from .errors import OpenKinError

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10
ALLOWED_FAILURES = 1  # deaths of a task's worker before the scheduler gives up on the task (local cluster)


@contextlib.contextmanager
def client_for(workers: int | None = None, scheduler: str | None = None) -> Iterator[Any]:
    """A ``distributed.Client`` for ``workers`` local processes or the ``scheduler`` at an address;
    None (run in this process) when neither is given. Closed (and the local cluster stopped) on exit."""
    if workers and scheduler:
        raise OpenKinError("--workers and --scheduler both given",
                           fix="give --workers N for processes on this machine, or --scheduler ADDRESS "
                               "for a cluster's scheduler, not both")
    if not workers and not scheduler:
        yield None
        return
    _require_distributed()
    if scheduler:
        with _remote_client(scheduler) as client:
            yield client
        return
    if workers < 1:
        raise OpenKinError(f"--workers {workers}: needs at least 1", fix="e.g. --workers 2")
    with _local_client(workers) as client:
        yield client


def _require_distributed() -> None:
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise OpenKinError("--workers and --scheduler need Dask distributed, which is not installed",
                           fix="pip install 'openkin[cluster]' (or run without them: trials one after the other)") from None


@contextlib.contextmanager
def _remote_client(address: str) -> Iterator[Any]:
    from distributed import Client

    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as e:
        raise OpenKinError(f"cannot reach the Dask scheduler at {address} ({e})",
                           fix="start one with `dask scheduler` and workers with `dask worker "
                               f"{address}`, or check the address and the firewall") from None
    with client:
        n = len(client.scheduler_info().get("workers", {}))
        log.info("Dask scheduler %s: %d worker(s)", address, n)
        if n == 0:
            log.warning("the scheduler %s has no worker yet: tasks wait until one connects", address)
        yield client


# Imported once by the local cluster's fork server, which forks the worker processes: every worker
# starts with them loaded (copy-on-write) instead of importing them itself (spawn: ~3 s CPU each).
# Imports only: no thread is started (onnxruntime sessions and OpenCV's pool start later, in a worker).
WORKER_PRELOAD = ("distributed", "numpy", "scipy.optimize", "scipy.signal", "scipy.interpolate", "cv2",
                  "onnxruntime", "opensim", "openkin.batch", "openkin.pipeline", "openkin.pose",
                  "openkin.pose.offline", "openkin.synchronization", "openkin.association", "openkin.triangulation",
                  "openkin.filtering.stage", "openkin.augmentation", "openkin.kinematics",
                  "openkin.kinematics.solver", "openkin.kinematics.chunked")


def _start_method() -> str:
    """'forkserver' (its preload set to :data:`WORKER_PRELOAD`) where the platform has it, else 'spawn'."""
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return "spawn"
    import dask
    from distributed.utils import get_mp_context

    with dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"}):
        get_mp_context()  # distributed's own preload, set once; ours replaces it (it holds distributed's)
    multiprocessing.get_context("forkserver").set_forkserver_preload(list(WORKER_PRELOAD))
    return "forkserver"


@contextlib.contextmanager
def _local_client(workers: int) -> Iterator[Any]:
    import dask
    from distributed import Client, LocalCluster

    with dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES,
                          "distributed.worker.multiprocessing-method": _start_method()}):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.WARNING)
        try:
            with Client(cluster) as client:
                log.info("Dask LocalCluster: %d worker processes, 1 thread each", workers)
                yield client
        finally:
            _close(cluster)


def _close(cluster) -> None:
    """Close a LocalCluster. distributed can fail here while a nanny is restarting a worker that
    died (AssertionError "can only join a started process", seen in CI after a killed worker);
    the results are in by then: try again once the restart has had time, then only warn."""
    for attempt in range(2):
        try:
            cluster.close()
            return
        except Exception as exc:  # distributed's shutdown race: not the run's failure
            if attempt:
                log.warning("Dask LocalCluster did not close cleanly (%s: %s)", type(exc).__name__, exc)
            else:
                time.sleep(1.0)


def submit(client, fn: Callable, items: list[tuple], keys: list[str]) -> list[Any]:
    """One task ``fn(*item)`` per item, named ``keys[i]``, retried once (:data:`RETRIES`)."""
    return [client.submit(fn, *item, key=key, pure=False, retries=RETRIES) for item, key in zip(items, keys)]


def collect(futures: list[Any], on_done: Callable[[int, Any, BaseException | None], None],
            on_tick: Callable[[], None] | None = None, tick_s: float = 1.0) -> None:
    """Wait for ``futures``; call ``on_done(index, result, exception)`` as each ends (exception None
    on success: a dead worker's task gives ``KilledWorker``), ``on_tick()`` every ``tick_s`` seconds."""
    from distributed import wait

    index = {f.key: i for i, f in enumerate(futures)}
    pending = set(futures)
    while pending:
        try:
            done, _ = wait(list(pending), timeout=tick_s, return_when="FIRST_COMPLETED")
        except TimeoutError:
            done = set()
        for fut in sorted(done, key=lambda f: index[f.key]):
            pending.discard(fut)
            if fut.status == "finished":
                on_done(index[fut.key], fut.result(), None)
            else:
                on_done(index[fut.key], None, _exception(fut))
        if on_tick is not None:
            on_tick()


def _exception(fut) -> BaseException:
    """The exception of a failed or cancelled future (a cancelled one: the scheduler or cluster went away)."""
    if fut.status == "cancelled":
        return RuntimeError("task cancelled (the scheduler or its workers went away)")
    try:
        return fut.exception()
    except BaseException as e:  # noqa: BLE001 - the future's own failure to report is the error to show
        return e


def describe_failure(exc: BaseException) -> str:
    """A summary line for a task that did not return: a worker that died (after its retry), or an error."""
    name = type(exc).__name__
    if name == "KilledWorker":
        return ("the worker running this trial died (out of memory, killed or crashed), also on its retry; "
                "see the worker's log")
    return f"{name}: {exc}"
