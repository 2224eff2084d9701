"""A region of one chunk on a 2-worker LocalCluster: both workers busy (asv).

A 256 px month (4 bands x 64 days, one 256 px chunk, the default chunk of a cube) used to
be one inference task, run by one worker whatever the cluster. The engine now shares the
tiles of a chunk among a few tasks per worker thread of the current client
(:func:`firesmoke.inference.engine.task_grid`, ``tasks="auto"``).

The model is a small 3-D CNN (4 -> 16 -> 16 -> 1 channels, 3x3x3 kernels; about 1 s a
tile on one core): cheap, but not free, so that the tiles' forward passes dominate, as
BA-Net's do. The input chunk is generated
on a worker (as a cube chunk is read there), and the burned-area reduction runs in the
tasks.

* ``time_one_worker``: ``LocalCluster(n_workers=1, threads_per_worker=1)``, one task
  per chunk (as before the split);
* ``time_two_workers``: ``n_workers=2``, same threads per worker, ``tasks="auto"``;
* ``track_ratio``: two workers / one worker, measured once in ``setup_cache``
  (target <= 0.6; the month has 9 tiles, so the busier worker runs at least 5: 0.56 is
  the floor);
* ``track_busiest_worker_share``: the busiest worker's share of the inference tasks'
  compute time on two workers (1.0: one worker did everything, as before the split;
  5/9 = 0.56 ideal): a figure that holds on a shared machine, where wall times do not;
* ``track_tasks``: inference tasks of the month on two workers.

``ThreadArenas`` times the shipped BA-Net on the same month with the local threads and
synchronous schedulers, with and without ``MALLOC_ARENA_MAX=1`` (fresh processes).

Run ``python benchmarks/bench_parallel.py [--arenas]`` for a plain printout.
"""

from __future__ import annotations

import functools
import sys
import time

import numpy as np

SIZE, DAYS, CHUNK = 256, 64, 256


def _conv_net():
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv3d(4, 16, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv3d(16, 16, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv3d(16, 1, 3, padding=1)).eval()


def _model():
    from firesmoke.inference.model import TileModel
    from firesmoke.models.normalization import BANET

    return TileModel(builders=(functools.partial(_conv_net),), key="bench-parallel-conv",
                     normalization=BANET)


def month(tasks: str | int | None = "auto") -> object:
    """The lazy ``(2, 256, 256)`` product (confidence, burn date) of a random month."""
    import dask.array as da

    from firesmoke.burned.rules import BurnedWindow
    from firesmoke.inference.model import predict_array

    x = da.random.default_rng(0).random((4, DAYS, SIZE, SIZE), dtype=np.float32,
                                        chunks=(4, DAYS, CHUNK, CHUNK))
    red = BurnedWindow(tuple(range(1, DAYS + 1)), 0.5)
    return predict_array(x, _model(), tile=128, step=100, batch_size=1, device="cpu",
                         reduce=red, tasks=tasks)


def run(n_workers: int, repeat: int = 2, tasks: str | int | None = "auto",
        ) -> tuple[float, int, np.ndarray, float, float]:
    """Best wall time of computing the month on ``n_workers`` (after one warm-up run),
    the number of inference tasks, the result, and the share of the inference tasks'
    compute time spent on the busiest worker (last run; 1.0 = one worker did it all) and
    that compute time summed over the workers."""
    from distributed import get_task_stream

    from firesmoke.inference.cluster import dask_client

    with dask_client(n_workers=n_workers, threads_per_worker=1, memory_limit="3GiB") as client:
        lazy = month(tasks)
        n_tasks = len({k for k in lazy.__dask_graph__() if "engine-tiles" in str(k)})
        out = client.compute(lazy).result()  # warm: models built, allocator tuned
        best = float("inf")
        for _ in range(repeat):
            with get_task_stream(client) as stream:
                t0 = time.perf_counter()
                out = client.compute(lazy).result()
                best = min(best, time.perf_counter() - t0)
    busy: dict[str, float] = {}
    for t in stream.data:
        if "engine-tiles" in str(t["key"]):
            for ss in t["startstops"]:
                if ss["action"] == "compute":
                    busy[t["worker"]] = busy.get(t["worker"], 0.0) + ss["stop"] - ss["start"]
    total = sum(busy.values())
    share = max(busy.values()) / total if busy else 1.0
    return best, n_tasks, out, share, total


def figures() -> dict:
    t1, n1, a, _, busy1 = run(1, tasks=None)
    t2, n2, b, share, busy2 = run(2)
    np.testing.assert_array_equal(a, b)
    return {"one_s": t1, "two_s": t2, "ratio": t2 / t1, "tasks_one": n1, "tasks_two": n2,
            "busiest_share": share, "busy_one_s": busy1, "busy_two_s": busy2}


class TwoWorkers:
    timeout = 900
    number = 1
    repeat = 1

    def setup_cache(self) -> dict:
        return figures()

    def time_one_worker(self, fig: dict) -> None:
        run(1, repeat=1, tasks=None)

    def time_two_workers(self, fig: dict) -> None:
        run(2, repeat=1)

    def track_ratio(self, fig: dict) -> float:
        return fig["ratio"]

    track_ratio.unit = "two workers / one"

    def track_busiest_worker_share(self, fig: dict) -> float:
        return fig["busiest_share"]

    track_busiest_worker_share.unit = "busiest worker / all (0.56 ideal)"

    def track_tasks(self, fig: dict) -> float:
        return fig["tasks_two"]

    track_tasks.unit = "tasks"


# ------------------------------------------------------------------ threads vs synchronous
_ARENA_CHILD = """
import sys, time
import dask
sys.path.insert(0, {bench!r})
from bench_parallel import banet_month
lazy = banet_month()
with dask.config.set(scheduler={scheduler!r}):
    lazy.compute()  # warm: model built, allocator tuned
    t0 = time.perf_counter()
    lazy.compute()
print(time.perf_counter() - t0)
"""


def banet_month() -> object:
    """A 256 px month through the shipped BA-Net weights (CPU), lazy ``(2, 256, 256)``."""
    import dask.array as da

    from firesmoke.burned.rules import BurnedWindow
    from firesmoke.inference.model import TileModel, keep_days, predict_array

    x = da.random.default_rng(0).random((4, DAYS, SIZE, SIZE), dtype=np.float32,
                                        chunks=(4, DAYS, CHUNK, CHUNK))
    model = keep_days(TileModel.from_weights("banet_synthetic"), slice(16, 48))
    red = BurnedWindow(tuple(range(1, 33)), 0.5)
    return predict_array(x, model, tile=128, step=100, device="cpu", reduce=red, tasks=None)


def arena_run(scheduler: str, arena_max: str | None) -> float:
    """Warm wall time of :func:`banet_month` in a fresh process (``MALLOC_ARENA_MAX`` set
    to ``arena_max`` before Python starts, or unset), on the local ``scheduler``."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.pop("FIRESMOKE_REEXEC", None)
    if arena_max is not None:
        env["MALLOC_ARENA_MAX"] = arena_max
    code = _ARENA_CHILD.format(bench=str(Path(__file__).parent), scheduler=scheduler)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True, timeout=900)
    return float(out.stdout.split()[-1])


def arena_figures() -> dict:
    return {f"{sched}_{'arena1' if a else 'default'}_s": arena_run(sched, a)
            for sched in ("threads", "synchronous") for a in (None, "1")}


class ThreadArenas:
    """The CPU BA-Net month on the threads vs synchronous scheduler, with glibc's default
    arenas or ``MALLOC_ARENA_MAX=1`` set before Python starts (the figure behind the
    warning of :func:`firesmoke.inference.runtime.warn_thread_arena`)."""

    timeout = 1800
    number = 1
    repeat = 1

    def setup_cache(self) -> dict:
        return arena_figures()

    def track_threads_over_sync_default(self, fig: dict) -> float:
        return fig["threads_default_s"] / fig["synchronous_default_s"]

    def track_threads_over_sync_arena1(self, fig: dict) -> float:
        return fig["threads_arena1_s"] / fig["synchronous_arena1_s"]

    track_threads_over_sync_default.unit = "threads / synchronous"
    track_threads_over_sync_arena1.unit = "threads / synchronous"


def main() -> None:
    fig = figures()
    print(f"256 px month, small conv: 1 worker {fig['one_s']:.2f} s ({fig['tasks_one']} task), "
          f"2 workers {fig['two_s']:.2f} s ({fig['tasks_two']} tasks), "
          f"ratio {fig['ratio']:.2f}, busiest worker's share of the inference "
          f"{fig['busiest_share']:.2f}; inference compute summed over workers "
          f"{fig['busy_one_s']:.2f} s / {fig['busy_two_s']:.2f} s")
    if "--arenas" in sys.argv:
        for k, v in arena_figures().items():
            print(f"BA-Net 256 px month, {k}: {v:.2f}")


if __name__ == "__main__":
    main()
