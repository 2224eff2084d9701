"""The region-month section of ``gpu_bench.py``: the reference-style loop beside the engine.

The synthetic cube is generated **once, before any timing** (numpy RNG, about 7 s of one
core for 1024 px x 64 days x 4 bands), then:

* the reference-style loop and the threads-scheduler rows read it from memory (the loop
  from one numpy array, ``predict_burned`` from the same arrays chunked by dask, no
  copies);
* the LocalCluster row reads it from ``.npy`` files through memory maps, block by block
  inside the worker (the page cache serves them: a local-disk read without a decoder),
  so no pixels cross processes.

The run of 2026-12-04 generated the cube *inside* the timed dask graph for every
``predict_burned`` row, so their wall times (and GPU busy fractions) included the
generation while the reference loop's did not; the row "cube generated inside the graph"
repeats that set-up for comparison. Two rows split the engine's own cost: the host read
of the window input alone, and the whole engine with a model that costs nothing.
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._banet_bench import random_banet, reference_loop
from benchmarks._gpu_common import BusySampler, Report, _peak_gib, _peak_reset, _sync

MONTH = ("2020-08-01", "2020-08-31")
N_MODELS = 3
BANDS = ("red", "nir", "mir", "frp")


def _block_values(var: int, y0: int, y1: int, x0: int, x1: int, nt: int, seed: int = 11):
    """Deterministic synthetic reflectances / FRP of one block (a function of its place)."""
    rng = np.random.default_rng([seed, var, y0, x0])
    shape = (nt, y1 - y0, x1 - x0)
    if var == 3:  # FRP: mostly zero, a few fires
        v = np.where(rng.random(shape) < 0.002, rng.uniform(1, 50, shape), 0.0)
    else:
        v = rng.uniform(0.02, 0.5, shape)
    v = v.astype(np.float32)
    v[rng.random(shape) < 0.05] = np.nan  # clouds / gaps
    return v


def _chunks(size: int, chunk: int) -> tuple[int, ...]:
    return tuple(min(chunk, size - s) for s in range(0, size, chunk))


def _coords(size: int, days) -> dict[str, Any]:
    """Time and the pixel centres of a ``size`` px region at 0.01 deg, with its CRS (a
    product needs a georeferenced cube)."""
    from firesmoke.grid import Region

    grid = Region.from_shape("BENCH", -7.605, 41.605, 0.01, size, size).coords_dataset()
    return {"time": days, "y": grid["y"].values, "x": grid["x"].values,
            "spatial_ref": grid["spatial_ref"]}


def _cube(size: int, days, chunk: int):
    """The whole cube in memory (numpy), block by block as the lazy variants make it."""
    import xarray as xr

    nt = len(days)
    data = {}
    for i, b in enumerate(BANDS):
        arr = np.empty((nt, size, size), np.float32)
        for y0 in range(0, size, chunk):
            for x0 in range(0, size, chunk):
                y1, x1 = min(y0 + chunk, size), min(x0 + chunk, size)
                arr[:, y0:y1, x0:x1] = _block_values(i, y0, y1, x0, x1, nt)
        data[b] = (("time", "y", "x"), arr)
    return xr.Dataset(data, coords=_coords(size, days))


def _generated_block(i: int, nt: int, block_info=None) -> np.ndarray:
    (_, _), (y0, y1), (x0, x1) = block_info[None]["array-location"]
    return _block_values(i, y0, y1, x0, x1, nt)


def _npy_block(path: str, block_info=None) -> np.ndarray:
    (_, _), (y0, y1), (x0, x1) = block_info[None]["array-location"]
    return np.array(np.load(path, mmap_mode="r")[:, y0:y1, x0:x1])


def _lazy_cube(size: int, days, chunk: int, source: str | Path | None = None):
    """A dask-backed cube whose blocks are generated in the graph (``source=None``) or read
    from ``source/<band>.npy`` through a memory map."""
    import dask.array as da
    import xarray as xr

    nt = len(days)
    chunks = ((nt,), _chunks(size, chunk), _chunks(size, chunk))
    data = {}
    for i, b in enumerate(BANDS):
        if source is None:
            arr = da.map_blocks(_generated_block, i, nt, dtype=np.float32, chunks=chunks)
        else:
            arr = da.map_blocks(_npy_block, str(Path(source) / f"{b}.npy"), dtype=np.float32,
                                chunks=chunks)
        data[b] = (("time", "y", "x"), arr)
    return xr.Dataset(data, coords=_coords(size, days))


def _zero_banet():
    """A BA-Net stand-in that costs nothing: zeros of the output shape (engine overhead)."""
    import torch

    class Zeros(torch.nn.Module):
        def forward(self, x):
            return torch.zeros((x.shape[0], 1, *x.shape[2:]), dtype=x.dtype, device=x.device)

    return Zeros()


def section_region_month(rep: Report, device: str, quick: bool) -> None:
    """Region-month rows (see the module docstring)."""
    from firesmoke.burned.periods import monthly_windows
    from firesmoke.models.precision import no_tf32
    from firesmoke.models.weights import save_weights

    size, tile, step, chunk = (48, 32, 25, 32) if quick else (1024, 128, 100, 512)
    n_models = 2 if quick else N_MODELS
    (window,) = monthly_windows(*MONTH)
    work = Path(tempfile.mkdtemp(prefix="gpu_bench_"))
    has_dask = importlib.util.find_spec("dask") is not None
    has_distributed = importlib.util.find_spec("distributed") is not None
    res: dict[str, Any] = {}
    try:
        with rep.section("region_month_setup", f"region-month {size} px x {n_models} models") as s:
            paths = []
            for i in range(n_models):
                paths.append(str(work / f"banet{i}.pt"))
                save_weights(random_banet(i), paths[-1])
            t0 = time.perf_counter()
            cube = _cube(size, window.days, chunk)
            x = np.stack([cube[b].values for b in BANDS])
            s.update(size_px=size, tile=tile, step=step, chunk_px=chunk, models=n_models,
                     window=[str(window.start), str(window.end)], days=int(x.shape[1]),
                     cube_seconds=time.perf_counter() - t0)
            rep.row("cube generated (not timed below)", f"{x.shape} in {s['cube_seconds']:.1f} s")
        with rep.section("region_month_reference", "reference-style loop (b1, fp32, TF32 off)") as s:
            # the first tile of each model includes cuDNN set-up, as it would for a user
            _peak_reset(device)
            with no_tf32(), BusySampler(device) as busy:
                t0 = time.perf_counter()
                ref_conf, ref_date = reference_loop(x, paths, window, device, tile, step)
                _sync(device)
                sec = time.perf_counter() - t0
            res["reference"] = sec
            s.update(seconds=sec, gpu_busy=busy.fraction, peak_gib=_peak_gib(device))
            rep.row("reference-style loop", sec, "s")
            rep.row("  GPU busy (NVML mean)", busy.fraction)
        if not has_dask:
            rep.note("dask is not installed: predict_burned rows skipped (see the docstring "
                     "for carrying dask/distributed as wheels)")
            return
        import dask

        from firesmoke.burned.predict import predict_burned, window_bands
        from firesmoke.inference.model import TileModel
        from firesmoke.models.banet_fast import prepare_for_inference
        from firesmoke.models.normalization import BANET

        mem_cube = cube.chunk({"time": -1, "y": chunk, "x": chunk})
        runs = 1 if quick else 2

        def firesmoke_run(name: str, title: str, model: TileModel, data, client=None,
                          n_runs: int = runs, compare: bool = True, **kw: Any) -> None:
            with rep.section(name, title) as s:
                _peak_reset(device)
                secs = []
                for _ in range(n_runs):  # the first of two builds the models (cuDNN set-up)
                    with BusySampler(device) as busy:
                        t0 = time.perf_counter()
                        ds = predict_burned(data, model, *MONTH, mode="monthly", tile=tile,
                                            step=step, blend="mean", device=device, **kw)
                        ds = client.compute(ds).result() if client is not None else ds.compute()
                        _sync(device)
                        secs.append(time.perf_counter() - t0)
                conf = ds["confidence"].values[0]
                date = ds["burn_date"].values[0]
                sec = secs[-1]
                s.update(seconds=sec, seconds_first_run=secs[0], runs=n_runs,
                         speedup=res["reference"] / sec if "reference" in res else None,
                         gpu_busy=busy.fraction, peak_gib=_peak_gib(device),
                         **{k: v for k, v in kw.items() if isinstance(v, int | str)})
                if compare:
                    s.update(max_abs_diff_confidence=float(np.abs(conf - ref_conf).max()),
                             burn_date_agreement=float((date == ref_date).mean()))
                first = f" (first run {secs[0]:.2f} s)" if n_runs > 1 else ""
                rep.row(title, sec, f"s{first}")
                if s["speedup"]:
                    rep.row("  speed-up over the reference loop", s["speedup"], "x")
                rep.row("  GPU busy (NVML mean)", busy.fraction)
                rep.row("  peak GPU memory of this process", s["peak_gib"], "GiB")
                if compare:
                    rep.row("  max |confidence - reference|", s["max_abs_diff_confidence"])
                    rep.row("  burn-date agreement", s["burn_date_agreement"])

        def banets(autocast: str | None) -> TileModel:
            return TileModel.from_weights(paths, prepare=prepare_for_inference, autocast=autocast)

        with dask.config.set(scheduler="threads"):
            with rep.section("region_month_host_read", "host read of the window input alone") as s:
                secs = []
                for _ in range(runs):
                    t0 = time.perf_counter()
                    dask.compute(*window_bands(mem_cube, window))
                    secs.append(time.perf_counter() - t0)
                s.update(seconds=secs[-1])
                rep.row("window bands 4 x (64, H, W) from the in-memory cube", secs[-1], "s")
            zero = TileModel(builders=(_zero_banet,), key="gpu_bench_zero", normalization=BANET,
                             activation="sigmoid", autocast="bf16")
            firesmoke_run("region_month_threads_zero_model",
                          "predict_burned, threads, a model that costs nothing (engine only)",
                          zero, mem_cube, compare=False)
            firesmoke_run("region_month_threads_bf16", "predict_burned, threads scheduler, bf16",
                          banets("bf16"), mem_cube)
            firesmoke_run("region_month_threads_bf16_b16",
                          "predict_burned, threads scheduler, bf16, batch 16", banets("bf16"),
                          mem_cube, batch_size=2 if quick else 16)
            firesmoke_run("region_month_threads_fp32",
                          "predict_burned, threads scheduler, fp32 (reference-compatible)",
                          banets(None), mem_cube)
            if quick:  # compat mode insists on the reference tiling (128 px tiles)
                rep.note("--quick: the compat='banet-0.6.7' row is skipped (reference tiling)")
            else:
                firesmoke_run("region_month_threads_compat",
                              "predict_burned, compat='banet-0.6.7', fp32", banets(None),
                              mem_cube, n_runs=1, compat="banet-0.6.7")
            firesmoke_run("region_month_threads_bf16_generated",
                          "predict_burned, bf16, cube generated inside the graph (2026-12-04)",
                          banets("bf16"), _lazy_cube(size, window.days, chunk), n_runs=1)
        if not has_distributed:
            rep.note("distributed is not installed: LocalCluster row skipped")
            return
        from distributed import Client, LocalCluster

        for b in BANDS:  # untimed: the worker reads these through memory maps
            np.save(work / f"{b}.npy", cube[b].values)
        npy_cube = _lazy_cube(size, window.days, chunk, source=work)
        with LocalCluster(n_workers=1, processes=True, threads_per_worker=4 if not quick else 1,
                          dashboard_address=":0") as cluster, Client(cluster) as client:
            firesmoke_run("region_month_localcluster_bf16",
                          "predict_burned, one-worker LocalCluster, bf16 (.npy reads)",
                          banets("bf16"), npy_cube, client)
            rep.note("LocalCluster: peak GPU memory and busy fraction are of the whole GPU / "
                     "this process; the models live in the worker process")
    finally:
        shutil.rmtree(work, ignore_errors=True)
