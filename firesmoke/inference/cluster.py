"""Dask clusters for inference: one helper for every entry point, CPU or one worker per GPU.

:func:`dask_client` gives a ``distributed.Client`` on an existing scheduler (``address``)
or on a new local cluster:

* CPU: a ``LocalCluster`` (default one worker process per 2 cores, 2 threads each) whose
  workers keep freed memory (:func:`firesmoke.inference.runtime.inference_worker_env`);
* GPUs (``gpus=N``): one worker process per GPU, each pinned to its device with
  ``CUDA_VISIBLE_DEVICES`` and advertising the resource ``GPU=1``; with
  ``dask_cuda`` installed, its ``LocalCUDACluster`` is used instead. Models are built once
  per worker process (:class:`firesmoke.inference.model.TileModel` caches them), so each GPU
  holds one copy.

With an existing scheduler, start the workers yourself, e.g. ``dask cuda worker
tcp://host:8786`` (dask_cuda) or ``CUDA_VISIBLE_DEVICES=0 dask worker tcp://host:8786
--nworkers 1 --nthreads 2 --resources GPU=1`` once per GPU (see docs/guide/gpus-and-clusters.md).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

from firesmoke.errors import InputError
from firesmoke.inference.runtime import inference_worker_env

__all__ = ["close_cluster", "current_client", "dask_client", "default_torch_threads", "task_target", "visible_gpus"]

log = logging.getLogger(__name__)


def visible_gpus() -> int:
    """Number of CUDA GPUs this process sees (0 without torch or CUDA)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def default_torch_threads(n_workers: int, threads_per_worker: int) -> int:
    """Intra-op torch threads per worker thread: the cores shared among all worker threads."""
    return max(1, (os.cpu_count() or 1) // max(1, n_workers * threads_per_worker))


def current_client() -> Any | None:
    """The ``distributed.Client`` that ``compute()`` would use now, or None (none is made;
    :func:`firesmoke.store.progress.current_client`)."""
    from firesmoke.store.progress import (  # deferred: dask, xarray (~0.75 s); the CLI imports this module
        current_client as _current,
    )

    return _current()


TASKS_PER_THREAD = 2
"""Inference tasks per worker thread that :func:`task_target` aims for: more than one so a
worker that finishes early takes the next task instead of idling behind a long one."""


def task_target(client: Any | None = None) -> int:
    """How many inference tasks keep ``client``'s workers busy (default: the current client).

    ``TASKS_PER_THREAD`` per worker thread (a GPU worker runs its block slots in its
    threads); 1 without a client (the threads scheduler, whose CPU forwards already use
    every core through torch's own threads) or with an asynchronous one.
    ``FIRESMOKE_INFERENCE_TASKS`` overrides it.
    """
    env = os.environ.get("FIRESMOKE_INFERENCE_TASKS", "").strip()
    if env:
        try:
            return max(1, int(env))
        except ValueError as exc:
            raise InputError(f"FIRESMOKE_INFERENCE_TASKS must be an integer, got {env!r}",
                             field="FIRESMOKE_INFERENCE_TASKS") from exc
    client = client if client is not None else current_client()
    if client is None or getattr(client, "asynchronous", False):
        return 1
    try:
        threads = sum(client.nthreads().values())
    except (OSError, TimeoutError) as exc:  # a scheduler that went away: no split
        log.debug("cannot count the workers' threads (%s)", exc)
        return 1
    return max(1, TASKS_PER_THREAD * threads)


def _gpu_ids(gpus: int) -> list[str]:
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [s.strip() for s in env.split(",") if s.strip()] if env else []
    if not ids:
        ids = [str(i) for i in range(visible_gpus())]
    if gpus > len(ids):
        raise InputError(f"{gpus} GPU workers asked for but only {len(ids)} GPU(s) visible",
                         field="gpus")
    return ids[:gpus]


def _gpu_cluster(gpus: int, threads_per_worker: int, memory_limit: str | int) -> Any:
    ids = _gpu_ids(gpus)
    try:
        from dask_cuda import LocalCUDACluster
    except ImportError:
        LocalCUDACluster = None
    if LocalCUDACluster is not None:
        return LocalCUDACluster(CUDA_VISIBLE_DEVICES=",".join(ids), n_workers=len(ids),
                                threads_per_worker=threads_per_worker,
                                memory_limit=memory_limit, dashboard_address=":0",
                                resources={"GPU": 1})
    from distributed import Nanny, Scheduler, SpecCluster

    workers = {
        f"gpu-{gid}": {"cls": Nanny, "options": {
            "nthreads": threads_per_worker, "memory_limit": memory_limit,
            "resources": {"GPU": 1},
            # the worker sees one GPU, as cuda:0 (set before the process starts)
            "env": {"CUDA_VISIBLE_DEVICES": gid}}}
        for gid in ids
    }
    scheduler = {"cls": Scheduler, "options": {"dashboard_address": ":0"}}
    return SpecCluster(workers=workers, scheduler=scheduler)


@contextlib.contextmanager
def dask_client(
    address: str | None = None,
    n_workers: int | None = None,
    threads_per_worker: int | None = None,
    memory_limit: str | int = "auto",
    processes: bool = True,
    gpus: int | None = 0,
    timeout: str = "30s",
    close_timeout: float = 30.0,
) -> Iterator[Any]:
    """A ``distributed.Client`` on ``address`` or on a new local cluster (closed on exit).

    The dashboard of a local cluster is on a free port (``client.dashboard_link``, logged
    at INFO); it needs ``bokeh`` (``pip install firesmoke[dashboard]``).

    Parameters
    ----------
    address
        An existing scheduler (nothing else is used then).
    n_workers, threads_per_worker, memory_limit, processes
        The local CPU cluster (defaults: one worker per 2 cores, 2 threads each; GPU
        workers: 2 threads so a block's read overlaps the previous block's compute).
    gpus
        ``0``: CPU workers; ``N``: one worker per GPU (the first N visible); ``None``:
        every visible GPU, or CPU workers when there is none.
    timeout, close_timeout
        Connecting to ``address``; seconds a local worker process is given to exit on
        close (:func:`close_cluster`) before it is killed.

    Raises
    ------
    firesmoke.errors.InputError
        The scheduler cannot be reached, or more GPUs are asked for than visible.
    """
    from distributed import Client, LocalCluster

    if address:
        try:
            client = Client(address, timeout=timeout)
        except OSError as exc:
            raise InputError(f"cannot reach the Dask scheduler at {address} ({exc})",
                             field="scheduler") from exc
        with client:
            yield client
        return
    n_gpu = visible_gpus() if gpus is None else int(gpus)
    if n_gpu < 0:
        raise InputError(f"gpus must be >= 0, got {gpus}", field="gpus")
    with inference_worker_env():  # workers keep freed memory (firesmoke.inference.runtime)
        if n_gpu:
            cluster = _gpu_cluster(n_gpu, threads_per_worker or 2, memory_limit)
        else:
            n = n_workers or max(1, (os.cpu_count() or 2) // 2)
            cluster = LocalCluster(n_workers=n, threads_per_worker=threads_per_worker or 2,
                                   processes=processes, memory_limit=memory_limit,
                                   dashboard_address=":0")
    try:
        client = Client(cluster)
    except BaseException:
        close_cluster(cluster, None, close_timeout)
        raise
    log.info("started %s (dashboard %s)", cluster, client.dashboard_link)
    try:
        yield client
    finally:
        close_cluster(cluster, client, close_timeout)


async def _close_workers(workers: list[Any], timeout: float) -> None:
    import asyncio

    await asyncio.gather(*(w.close(timeout=timeout) for w in workers), return_exceptions=True)


def close_cluster(cluster: Any, client: Any | None, timeout: float = 30.0) -> None:
    """Close ``client``, then ``cluster``'s workers (each given ``timeout`` s to exit), then
    the cluster.

    ``LocalCluster.close()`` gives a worker process 4 s to exit before killing it (with a
    "Worker process still alive after 4.0 seconds, killing" warning); a worker that ran
    torch models takes about 2 s to tear its interpreter down on an idle 2-core VM and
    more when the machine is busy. Closing the workers first, with a longer timeout, lets
    them exit on their own.
    """
    if client is not None:
        with contextlib.suppress(Exception):
            client.close(timeout=timeout)
    workers = list(getattr(cluster, "workers", {}).values())
    if workers:
        try:
            cluster.sync(_close_workers, workers, timeout)
        except Exception as exc:  # the cluster's close below still runs
            log.debug("closing the workers: %s", exc)
    cluster.close(timeout=timeout)
