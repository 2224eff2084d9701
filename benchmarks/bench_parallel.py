"""A region of one chunk on a 2-worker LocalCluster: both workers busy (asv).

A 256 px month (4 bands x 64 days, one 256 px chunk, the default chunk of a cube) used to
be one inference task, run by one worker whatever the cluster. The engine now shares the
tiles of a chunk among a few tasks per worker thread of the current client
(:func:`firesmoke.inference.engine.task_grid`, ``tasks="auto"``).

The model is a small 3-D CNN (4 -> 8 -> 1 channels, 3x3x3 kernels): cheap, but not free,
so that the tiles' forward passes dominate, as BA-Net's do. The input chunk is generated
on a worker (as a cube chunk is read there), and the burned-area reduction runs in the
tasks.

* ``time_one_worker``: ``LocalCluster(n_workers=1, threads_per_worker=1)``, one task
  per chunk (as before the split);
* ``time_two_workers``: ``n_workers=2``, same threads per worker, ``tasks="auto"``;
* ``track_ratio``: two workers / one worker, measured once in ``setup_cache``
  (target <= 0.6; the month has 9 tiles, so the busier worker runs at least 5: 0.56 is
  the floor);
* ``track_tasks``: inference tasks of the month on two workers.

Run ``python benchmarks/bench_parallel.py`` for a plain printout.
"""

from __future__ import annotations

import functools
import time

import numpy as np

SIZE, DAYS, CHUNK = 256, 64, 256


def _conv_net():
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv3d(4, 8, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv3d(8, 1, 3, padding=1)).eval()


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
        ) -> tuple[float, int, np.ndarray]:
    """Best wall time of computing the month on ``n_workers`` (after one warm-up run),
    the number of inference tasks and the result."""
    from firesmoke.inference.cluster import dask_client

    with dask_client(n_workers=n_workers, threads_per_worker=1, memory_limit="3GiB") as client:
        lazy = month(tasks)
        n_tasks = len({k for k in lazy.__dask_graph__() if "engine-tiles" in str(k)})
        out = client.compute(lazy).result()  # warm: models built, allocator tuned
        best = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            out = client.compute(lazy).result()
            best = min(best, time.perf_counter() - t0)
    return best, n_tasks, out


def figures() -> dict:
    t1, n1, a = run(1, tasks=None)
    t2, n2, b = run(2)
    np.testing.assert_array_equal(a, b)
    return {"one_s": t1, "two_s": t2, "ratio": t2 / t1, "tasks_one": n1, "tasks_two": n2}


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

    def track_tasks(self, fig: dict) -> float:
        return fig["tasks_two"]

    track_tasks.unit = "tasks"


def main() -> None:
    fig = figures()
    print(f"256 px month, small conv: 1 worker {fig['one_s']:.2f} s ({fig['tasks_one']} task), "
          f"2 workers {fig['two_s']:.2f} s ({fig['tasks_two']} tasks), "
          f"ratio {fig['ratio']:.2f}")


if __name__ == "__main__":
    main()
