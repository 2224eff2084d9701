"""Process-level tuning for CPU inference: keep freed memory instead of re-faulting it.

A BA-Net forward pass on a 128 px x 64-day tile allocates and frees about 1.5 GB of
activations. With glibc's defaults, every allocation above the mmap threshold is a fresh
``mmap`` that the kernel fills page by page (4 KiB page faults, zeroed) and every free an
``munmap``: on a 2-core VM about half of a CPU forward pass is spent in the kernel doing
this. Telling glibc to serve large blocks from its heap and not to give freed memory back
(``M_MMAP_MAX = 0``, a high ``M_TRIM_THRESHOLD``, one arena so that worker threads share
that heap) removes the faults: the same memory is reused from one tile to the next. The
price is that the process keeps its peak heap resident until it exits, which is what a
dedicated inference worker wants.

Two ways to apply it:

* :func:`tune_allocator` changes the settings of the *running* process (``mallopt``);
  :class:`firesmoke.inference.model.TileModel` calls it when it first builds CPU models in a
  process. The arena limit only affects threads that have not allocated yet.
* :func:`worker_environment` gives the same settings as environment variables, for
  processes about to be started (Dask workers: firesmoke's own ``LocalCluster`` s put
  them in ``distributed.nanny.pre-spawn-environ``; see :func:`inference_worker_env`).

Set ``FIRESMOKE_MALLOC_TUNING=0`` to leave the allocator alone. Nothing happens on
platforms without glibc.

The settings help threads that allocate from glibc's main arena. A thread that had its
own arena before the tuning (e.g. a thread of Dask's threads scheduler in a process
where some other thread allocated before firesmoke: the arena limit is fixed then) gets
no benefit, and its large blocks take a slow path: CPU forwards there measured 1.6x
slower than in the main thread (2026-12-05, 2-core VM) and 1.26x slower than with
``MALLOC_ARENA_MAX=1`` (2026-12-06, busy 2-core VM; ``benchmarks/bench_parallel.py``).
``MALLOC_ARENA_MAX=1`` in the environment *before Python starts* avoids it, as do the
synchronous scheduler and firesmoke's own Dask workers. The ``firesmoke`` command
restarts itself with the settings (:func:`reexec_with_worker_environment`), so
:func:`warn_thread_arena` speaks (once per process) only where the user must act: their
own process or workers.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import sys
import threading
from collections.abc import Iterator

__all__ = [
    "inference_worker_env",
    "reexec_with_worker_environment",
    "tune_allocator",
    "tuning_enabled",
    "warn_thread_arena",
    "worker_environment",
]

log = logging.getLogger(__name__)

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
# glibc defaults, restored by tune_allocator(False)
_DEFAULT_TRIM_THRESHOLD = 128 * 1024
_DEFAULT_MMAP_MAX = 65536
# mallopt takes an int: the largest trim threshold it can set (2 GiB)
_KEEP_TRIM_THRESHOLD = 2**31 - 1

_LOCK = threading.Lock()
_STATE = {"tuned": False}
_LIBC: ctypes.CDLL | None = None


def tuning_enabled() -> bool:
    """False when ``FIRESMOKE_MALLOC_TUNING`` is ``0``/``false``/``no``/``off``."""
    value = os.environ.get("FIRESMOKE_MALLOC_TUNING", "1").strip().lower()
    return value not in ("0", "false", "no", "off")


def _glibc() -> ctypes.CDLL | None:
    global _LIBC
    if _LIBC is None and sys.platform.startswith("linux"):
        name = ctypes.util.find_library("c") or "libc.so.6"
        try:
            libc = ctypes.CDLL(name)
            libc.gnu_get_libc_version.restype = ctypes.c_char_p
            libc.gnu_get_libc_version()  # musl and others lack it
            libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
            libc.mallopt.restype = ctypes.c_int
            libc.malloc_trim.argtypes = (ctypes.c_size_t,)
            libc.malloc_trim.restype = ctypes.c_int
        except (OSError, AttributeError):
            return None
        _LIBC = libc
    return _LIBC


def tune_allocator(enable: bool = True) -> bool:
    """Keep freed memory in this process (``enable``) or restore glibc's defaults.

    Parameters
    ----------
    enable
        ``True``: serve large blocks from the heap, keep freed memory, one arena for
        threads that allocate from now on. ``False``: back to the default mmap and trim
        behaviour (the arena limit stays) and return free memory to the system.

    Returns
    -------
    bool
        Whether the process's allocator is tuned after the call (``False`` on non-glibc
        platforms, or when ``FIRESMOKE_MALLOC_TUNING=0`` and ``enable`` is true).
    """
    libc = _glibc()
    with _LOCK:
        if libc is None:
            return False
        if enable:
            if not tuning_enabled():
                return _STATE["tuned"]
            if not _STATE["tuned"]:
                ok = (libc.mallopt(_M_MMAP_MAX, 0) == 1
                      and libc.mallopt(_M_TRIM_THRESHOLD, _KEEP_TRIM_THRESHOLD) == 1)
                libc.mallopt(_M_ARENA_MAX, 1)
                _STATE["tuned"] = ok
                log.info("allocator %s: large blocks from the heap, freed memory kept "
                         "(FIRESMOKE_MALLOC_TUNING=0 disables)", "tuned" if ok else "not tuned")
        elif _STATE["tuned"]:
            libc.mallopt(_M_MMAP_MAX, _DEFAULT_MMAP_MAX)
            libc.mallopt(_M_TRIM_THRESHOLD, _DEFAULT_TRIM_THRESHOLD)
            libc.malloc_trim(0)
            _STATE["tuned"] = False
            log.info("allocator back to glibc defaults")
        return _STATE["tuned"]


def warn_thread_arena() -> bool:
    """Log once per process when CPU models run in a non-main thread whose malloc arena
    the tuning cannot reach (see the module docstring); return whether it logged."""
    with _LOCK:
        if _STATE.get("arena_warned") or not _STATE["tuned"]:
            return False
        if threading.current_thread() is threading.main_thread():
            return False
        if os.environ.get("MALLOC_ARENA_MAX", "").strip() == "1":
            return False
        _STATE["arena_warned"] = True
    log.warning(
        "CPU models run in a thread (e.g. of dask's threads scheduler or of a Dask worker "
        "started without firesmoke) whose malloc arena firesmoke's allocator tuning may not "
        "reach: CPU forwards can be slower there (1.3-1.6x measured on 2-core VMs). Start the "
        "process with MALLOC_ARENA_MAX=1 (Dask workers: the variables of "
        "firesmoke.inference.runtime.worker_environment()), compute with "
        "scheduler='synchronous', or use firesmoke.inference.cluster.dask_client(); see "
        "docs/clusters.md.")
    return True


def worker_environment() -> dict[str, str]:
    """Environment variables with the same settings, for a process about to start.

    Empty when ``FIRESMOKE_MALLOC_TUNING=0`` or not on Linux. ``MALLOC_TRIM_THRESHOLD_``
    here replaces Dask's default of 64 KiB (which returns memory eagerly) for the workers
    that firesmoke starts itself.
    """
    if not (tuning_enabled() and sys.platform.startswith("linux")):
        return {}
    return {
        "MALLOC_ARENA_MAX": "1",
        "MALLOC_MMAP_MAX_": "0",
        "MALLOC_TRIM_THRESHOLD_": str(2**62),
    }


REEXEC_GUARD = "FIRESMOKE_ALLOCATOR_REEXEC"
"""Set in the environment of a process that :func:`reexec_with_worker_environment` started."""


def reexec_with_worker_environment() -> bool:
    """Run this program again, once, with :func:`worker_environment` in its environment.

    glibc reads ``MALLOC_ARENA_MAX`` and the other ``MALLOC_*`` variables when the process
    starts, so a program that will run CPU models in threads (the ``firesmoke`` command:
    the threads scheduler of ``demo``/``predict``) gets them by re-executing itself
    before any thread exists. Nothing happens (returns False) when
    ``FIRESMOKE_MALLOC_TUNING=0``, off Linux, when ``MALLOC_ARENA_MAX`` is already set
    (the user's choice is kept) or in the process started by a previous call
    (:data:`REEXEC_GUARD`). Otherwise it does not return (``os.execve``); if the exec
    fails, it logs why and returns False.
    """
    env = worker_environment()
    if not env or os.environ.get(REEXEC_GUARD) or "MALLOC_ARENA_MAX" in os.environ:
        return False
    argv = list(getattr(sys, "orig_argv", []) or [])
    if not argv or not sys.executable:
        return False
    new_env = {**env, **os.environ, REEXEC_GUARD: "1"}  # the user's own values win
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    try:
        os.execve(sys.executable, argv, new_env)
    except OSError as exc:  # pragma: no cover - exec refused (e.g. a seccomp sandbox)
        log.info("could not restart with the allocator settings (%s); continuing", exc)
    return False


@contextlib.contextmanager
def inference_worker_env() -> Iterator[dict[str, str]]:
    """Within the block, Dask nannies started here spawn workers with the tuned allocator.

    Wrap the creation of a ``distributed.LocalCluster`` (the variables must be set before
    the worker process starts, hence ``distributed.nanny.pre-spawn-environ``). A nanny
    prefers a variable already in ``os.environ`` to its configuration, and every nanny
    writes its pre-spawn variables into ``os.environ`` (Dask's 64 KiB trim threshold
    stays there after any earlier cluster), so the variables are also set in
    ``os.environ`` for the duration of the block, then restored.
    """
    import dask

    env = worker_environment()
    if not env:
        yield env
        return
    current = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {})
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        with dask.config.set({"distributed.nanny.pre-spawn-environ": {**current, **env}}):
            yield env
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
