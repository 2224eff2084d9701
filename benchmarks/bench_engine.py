"""Overhead of the inference engine itself (asv): a model that costs nothing.

The model is an ``nn.Module`` returning zeros of the right shape, so what is timed is the
engine: moving blocks to the device, NaN fill and normalisation, cutting tiles, blending
and the burned-area reduction. Beside it, the same work as a plain numpy loop over the
same tiles (zero-padded region, one tile at a time: normalise, "forward", accumulate,
then divide and reduce), the way a script without an engine does it.

* ``time_engine``: :func:`firesmoke.inference.model.predict_array` over a dask array in 256 px
  chunks (threads scheduler) with the :class:`~firesmoke.burned.rules.BurnedWindow` reduction
  on the device (``cpu`` here);
* ``time_numpy_loop``: the plain loop;
* ``track_ratio``: engine / loop seconds, measured once in ``setup_cache`` (target: about
  1 or less);
* ``time_engine_band_stack`` / ``time_engine_bands``: the input given as four separate
  band arrays (as a cube holds them), stacked by dask (``da.stack``, what
  ``burned.window_input`` does) or handed to the engine as a list, which stacks them in
  its device buffer (what ``predict_burned`` does since 2026-12-05): one host copy of the
  window less;
* ``track_tiles_per_plan_tile``: forward tiles per tile of the plan (1.0: each tile once).

Run ``python benchmarks/bench_engine.py`` for a plain printout.
"""

from __future__ import annotations

import time

import numpy as np

SIZE, DAYS, TILE, STEP, CHUNK = 612, 32, 128, 100, 256
MEAN = np.array([0.2349, 0.3548, 0.1128, 0.0016], np.float32)
STD = np.array([0.1879, 0.1660, 0.0547, 0.0776], np.float32)


def _zero_net():
    import torch

    class Zeros(torch.nn.Module):
        def forward(self, x):
            return torch.zeros((x.shape[0], 1, *x.shape[2:]), dtype=x.dtype, device=x.device)

    return Zeros()


def _input() -> np.ndarray:
    rng = np.random.default_rng(0)
    x = rng.random((4, DAYS, SIZE, SIZE), dtype=np.float32)
    x[:, 5:9] = np.nan  # missing days
    return x


def engine_pass(x: np.ndarray | list[np.ndarray], scheduler: str = "threads",
                bands: str = "stacked") -> np.ndarray:
    """The engine over ``x``: one array (``bands="stacked"``), or a list of band arrays
    stacked by dask (``"dask-stack"``) or handed over as a list (``"list"``)."""
    import dask
    import dask.array as da

    from firesmoke.burned.rules import BurnedWindow
    from firesmoke.inference.model import TileModel, predict_array
    from firesmoke.models.normalization import BANET

    model = TileModel(builders=(_zero_net,), key="bench-zeros", normalization=BANET,
                      activation=None)
    red = BurnedWindow(tuple(range(1, DAYS + 1)), 0.5)
    if bands == "stacked":
        arr = da.from_array(x, chunks=(4, DAYS, CHUNK, CHUNK), name=False)  # no hashing
    else:
        arr = [da.from_array(b, chunks=(DAYS, CHUNK, CHUNK), name=False) for b in x]
        if bands == "dask-stack":
            arr = da.stack(arr)
    out = predict_array(arr, model, tile=TILE, step=STEP, batch_size=1, device="cpu",
                        reduce=red)
    with dask.config.set(scheduler=scheduler):
        return out.compute()


def numpy_loop(x: np.ndarray) -> np.ndarray:
    """The same work, one tile at a time over the zero-padded region (numpy)."""
    from firesmoke.inference.tiling import TilePlan

    plan = TilePlan(SIZE, SIZE, tile=TILE, step=STEP)
    ph, pw = plan.padded_shape
    padded = np.zeros((4, DAYS, ph, pw), np.float32)
    padded[..., :SIZE, :SIZE] = x
    acc = np.zeros((1, DAYS, ph, pw))
    cnt = np.zeros((ph, pw))
    for r in plan.rows:
        for c in plan.cols:
            t = np.nan_to_num(padded[None, :, :, r : r + TILE, c : c + TILE], nan=0.0)
            t = (t - MEAN[None, :, None, None, None]) / STD[None, :, None, None, None]
            out = np.zeros((1, 1, *t.shape[2:]), np.float32)  # the model
            acc[:, :, r : r + TILE, c : c + TILE] += out[0]
            cnt[r : r + TILE, c : c + TILE] += 1
    p = (acc / cnt)[0, :, :SIZE, :SIZE].astype(np.float32)
    conf = np.minimum(p.sum(0), 1)
    date = np.where(conf < 0.5, 0, 1 + p.argmax(0)).astype(np.float32)
    return np.stack([conf, date])


def figures() -> dict:
    from firesmoke.inference.tiling import TilePlan

    x = _input()
    engine_pass(x)  # warm up (model build, allocator)
    t0 = time.perf_counter()
    a = engine_pass(x)
    t_engine = time.perf_counter() - t0
    t0 = time.perf_counter()
    b = numpy_loop(x)
    t_loop = time.perf_counter() - t0
    np.testing.assert_allclose(a, b, atol=1e-6)
    plan_tiles = len(TilePlan(SIZE, SIZE, tile=TILE, step=STEP))
    return {"engine_s": t_engine, "loop_s": t_loop, "ratio": t_engine / t_loop,
            "plan_tiles": plan_tiles}


class EngineOverhead:
    timeout = 600
    number = 1
    repeat = 3

    def setup_cache(self) -> dict:
        return figures()

    def setup(self, fig: dict) -> None:
        self.x = _input()
        self.bands = [b.copy() for b in self.x]
        engine_pass(self.x)

    def time_engine(self, fig: dict) -> None:
        engine_pass(self.x)

    def time_engine_band_stack(self, fig: dict) -> None:
        engine_pass(self.bands, bands="dask-stack")

    def time_engine_bands(self, fig: dict) -> None:
        engine_pass(self.bands, bands="list")

    def time_numpy_loop(self, fig: dict) -> None:
        numpy_loop(self.x)

    def track_ratio(self, fig: dict) -> float:
        return fig["ratio"]

    track_ratio.unit = "engine / loop"


class TilesPerPlan:
    """Forward tiles per plan tile with 256 and 512 px chunks (1.0 = each tile once)."""

    params = (256, 512)
    param_names = ("chunk",)

    def track_tiles_per_plan_tile(self, chunk: int) -> float:
        import threading

        import dask
        import dask.array as da

        from firesmoke.inference.model import predict_array
        from firesmoke.inference.tiling import TilePlan

        n = [0]
        lock = threading.Lock()

        def model(batch):
            with lock:
                n[0] += len(batch)
            return batch[:, :1]

        a = np.zeros((1, 1024, 1024), np.float32)
        out = predict_array(da.from_array(a, chunks=(1, chunk, chunk)), model, batch_size=32,
                            device="cpu")
        with dask.config.set(scheduler="threads"):
            out.compute()
        return n[0] / len(TilePlan(1024, 1024))

    track_tiles_per_plan_tile.unit = "tiles / plan tile"


def main() -> None:
    fig = figures()
    print(f"engine {fig['engine_s']:.2f} s, numpy loop {fig['loop_s']:.2f} s, "
          f"ratio {fig['ratio']:.2f} ({SIZE} px, {DAYS} days, {CHUNK} px chunks, zero model)")
    bands = [b.copy() for b in _input()]
    for how in ("dask-stack", "list", "dask-stack", "list"):
        t0 = time.perf_counter()
        engine_pass(bands, bands=how)
        print(f"engine, 4 band arrays, {how}: {time.perf_counter() - t0:.2f} s")
    tp = TilesPerPlan()
    for chunk in TilesPerPlan.params:
        print(f"tiles per plan tile, {chunk} px chunks: {tp.track_tiles_per_plan_tile(chunk):.2f}")


if __name__ == "__main__":
    main()
