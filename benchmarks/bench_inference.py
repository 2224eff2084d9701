"""Burned-area inference at scale (asv): speed beside the reference, memory, scaling.

* :class:`RegionMonth`: one region-month BA-Net product (200 x 200 px, the 64-day window
  of August, an ensemble of 3 random-weight BA-Nets) on the same in-memory cube, two ways:

  - **reference-style** (``_banet_bench.reference_loop``, as the reference software
    works): tiles of 128 px every 100 px taken one at a time (batch 1), fp32, the plain ``BANet``
    module, the three models one after another with their weights loaded for the call,
    full 64 days per month;
  - **firesmoke**: :func:`firesmoke.burned.predict.predict_burned` with
    ``TileModel.from_weights(..., prepare=prepare_for_inference)`` (folded batch norms,
    channels-last, fused ReLUs), 4 tiles per forward pass, the ensemble in one pass
    over each batch, in reference-compatible tiling (128 / 100 / mean blending).

  Both are timed once in ``setup_cache`` (a reference pass takes minutes on the 2-core
  CI machine, too long for asv's repeats), the confidence maps are checked to agree
  within 1e-4 (an ``AssertionError`` otherwise), and the ``track_*`` methods report the
  seconds, the speed-up and the agreement.
* :class:`CampaignScaling`: a one-month campaign (:func:`firesmoke.campaign.run.run_campaign`,
  blocks of 256 px) over a 768 px and a 2048 px region. Peak resident memory of the
  worker process (``ru_maxrss``) should not grow with the region (it is bounded by the
  block, the tiles touching it and the 64-day window), and the 2048 px region is timed on
  one and two worker processes. These runs use a **cheap stand-in model** (one 1 x 1 x 1
  ``Conv3d``; BA-Net would take many minutes on the 2048 px region here): memory and
  scheduling are what is measured, not the network. Each campaign runs in a fresh
  subprocess with its own LocalCluster. 768 px is the smallest region (3 x 3 blocks) with
  an interior block, whose tile halo is not clipped by the region edge: a unit's memory
  is largest there, so both sizes contain a worst-case unit.

Run ``python benchmarks/bench_inference.py`` for a plain printout of the same figures.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._banet_bench import random_banet, reference_loop

MONTH = ("2020-08-01", "2020-08-31")
N_MODELS = 3
TILE, STEP = 128, 100


# =========================================================================== region-month
def _window_input(cube, window) -> np.ndarray:
    """``(4, 64, H, W)`` float32 of a window (NaN where the cube has no day)."""
    sub = cube[["red", "nir", "mir", "frp"]].reindex(time=window.days)
    return np.stack([sub[v].values.astype(np.float32) for v in ("red", "nir", "mir", "frp")])


def region_month_figures(size: int = 200, work: str | None = None) -> dict:
    """Build the cube, time both implementations, check agreement; return the figures."""
    import dask
    import xarray as xr

    from firesmoke.burned.periods import monthly_windows
    from firesmoke.burned.predict import predict_burned
    from firesmoke.cube.build import build_cube, write_cube
    from firesmoke.grid import Region
    from firesmoke.inference.model import TileModel, clear_model_cache
    from firesmoke.inference.runtime import tune_allocator
    from firesmoke.inference.tiling import TilePlan
    from firesmoke.models.banet_fast import prepare_for_inference
    from firesmoke.models.weights import save_weights
    from firesmoke.synthetic import generate_scenario

    own = work is None
    work = Path(work or tempfile.mkdtemp(prefix="bench_inference_"))
    try:
        (window,) = monthly_windows(*MONTH)
        region = Region.from_shape("BENCH", -7.6, 41.6, 0.01, size, size)
        scn = generate_scenario(region, window.start, window.end, work / "scn", seed=11,
                                products=("viirs", "firms"))
        with dask.config.set(scheduler="threads"):
            cube = build_cube(region, window.start, window.end, viirs=scn.viirs_dir,
                              firms=scn.firms_dir)
            write_cube(cube, work / "cube.zarr", mode="w")
        cube = xr.open_zarr(work / "cube.zarr").load()  # both timings exclude I/O
        paths = []
        for i in range(N_MODELS):
            paths.append(str(work / f"banet{i}.pt"))
            save_weights(random_banet(i), paths[-1])

        x = _window_input(cube, window)
        t0 = time.perf_counter()
        ref_conf, ref_date = reference_loop(x, paths, window, tile=TILE, step=STEP)
        t_ref = time.perf_counter() - t0

        def firesmoke_pass(tuned: bool) -> tuple[float, xr.Dataset]:
            # defaults everywhere (batch size, kept days only); the allocator tuning of
            # firesmoke.inference.runtime on (its default) or off, for the record
            os.environ["FIRESMOKE_MALLOC_TUNING"] = "1" if tuned else "0"
            tune_allocator(False)
            clear_model_cache()
            t0 = time.perf_counter()
            model = TileModel.from_weights(paths, prepare=prepare_for_inference)
            ds = predict_burned(cube, model, *MONTH, mode="monthly", tile=TILE, step=STEP,
                                blend="mean")
            ds = ds.compute(scheduler="synchronous")
            return time.perf_counter() - t0, ds

        try:
            t_untuned, ds_untuned = firesmoke_pass(tuned=False)
            t_fs, ds = firesmoke_pass(tuned=True)
        finally:
            os.environ.pop("FIRESMOKE_MALLOC_TUNING", None)
        conf = ds["confidence"].values[0]
        date = ds["burn_date"].values[0]
        diff = float(max(np.abs(conf - ref_conf).max(),
                         np.abs(ds_untuned["confidence"].values[0] - ref_conf).max()))
        if diff > 1e-4:
            raise AssertionError(f"firesmoke and reference confidence differ by {diff:.2e} > 1e-4")
        return {
            "size_px": size, "tiles": len(TilePlan(size, size, TILE, STEP)), "models": N_MODELS,
            "reference_s": t_ref, "firesmoke_s": t_fs, "speedup": t_ref / t_fs,
            "firesmoke_untuned_allocator_s": t_untuned,
            "speedup_untuned_allocator": t_ref / t_untuned,
            "max_confidence_difference": diff,
            "burn_date_agreement": float((date == ref_date).mean()),
            "confidence_mean": float(conf.mean()),
        }
    finally:
        if own:
            shutil.rmtree(work, ignore_errors=True)


class RegionMonth:
    """Region-month BA-Net product (ensemble of 3): firesmoke beside reference-style."""

    timeout = 1800
    number = 1
    repeat = 1

    def setup_cache(self) -> dict:
        return region_month_figures()

    setup_cache.timeout = 1800

    def track_reference_seconds(self, fig: dict) -> float:
        return fig["reference_s"]

    track_reference_seconds.unit = "seconds"

    def track_firesmoke_seconds(self, fig: dict) -> float:
        return fig["firesmoke_s"]

    track_firesmoke_seconds.unit = "seconds"

    def track_speedup(self, fig: dict) -> float:
        return fig["speedup"]

    track_speedup.unit = "x"

    def track_max_confidence_difference(self, fig: dict) -> float:
        return fig["max_confidence_difference"]

    track_max_confidence_difference.unit = "confidence"


# =========================================================================== campaigns
_RUNNER = '''
import json, os, resource, sys, time


def main():
    import functools

    import torch
    from distributed import Client, LocalCluster

    from firesmoke.campaign.run import run_campaign
    from firesmoke.inference.model import TileModel

    spec, n_workers = json.loads(sys.argv[1]), int(sys.argv[2])
    # a cheap stand-in with BA-Net's input/output shapes (memory and scheduling are measured)
    model = TileModel(builders=(functools.partial(torch.nn.Conv3d, 4, 1, 1),), key="bench-standin")
    with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        t0 = time.perf_counter()
        report = run_campaign(spec, client=client, model=model, progress=False)
        elapsed = time.perf_counter() - t0
        peaks = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    print(json.dumps({"seconds": elapsed, "ok": report.ok, "units": len(report.done),
                      "worker_peak_mib": max(peaks.values()) / 1024}))


if __name__ == "__main__":
    main()
'''


def _bench_cube(path: Path, size: int) -> Path:
    """A 16-day cube (the rest of the 64-day window is 'no observation')."""
    import dask
    import pandas as pd

    from firesmoke.cube.build import write_cube
    from firesmoke.grid import Region

    rng = np.random.default_rng(size)
    days = pd.date_range("2020-08-01", periods=16)
    region = Region.from_shape(f"S{size}", -7.0, 41.0, 0.01, size, size)
    ds = region.coords_dataset(time=days.values)
    yy, xx = np.mgrid[:size, :size]
    base = (0.2 + 0.1 * np.sin(yy / 17.0) * np.cos(xx / 23.0)).astype(np.float32)
    for i, v in enumerate(("red", "nir", "mir", "frp")):
        noise = rng.integers(0, 8, (len(days), size, size)).astype(np.float32) / 100
        ds[v] = (("time", "y", "x"), base[None] * (1 + 0.3 * i) + noise)
    with dask.config.set(scheduler="synchronous"):
        return write_cube(ds.chunk({"time": 16, "y": 256, "x": 256}), path, mode="w")


def campaign_figures(sizes: tuple[int, ...] = (768, 2048), block: int = 256,
                     work: str | None = None) -> dict:
    """Peak worker memory per region size (1 worker) and 1 vs 2 workers on the largest."""
    from firesmoke.cube.build import open_cube
    from firesmoke.grid import Region

    own = work is None
    work = Path(work or tempfile.mkdtemp(prefix="bench_campaign_"))
    try:
        runner = work / "runner.py"
        runner.write_text(_RUNNER)
        out: dict = {"block": block}
        for size in sizes:
            cube = _bench_cube(work / f"cube{size}.zarr", size)
            region = Region.from_dataset(open_cube(cube))
            for n in (1, 2) if size == max(sizes) else (1,):
                spec = {"name": f"b{size}w{n}", "output": str(work / f"out{size}w{n}"),
                        "block_size": block,
                        "regions": [{"name": region.name, "bbox": list(region.bbox),
                                     "pixel_size": region.pixel_size, "cube": str(cube)}],
                        "periods": [{"start": MONTH[0], "end": MONTH[1]}],
                        "products": {"burned": {"mode": "monthly"}},
                        "cluster": {"torch_threads": 1}}
                proc = subprocess.run([sys.executable, str(runner), json.dumps(spec), str(n)],
                                      capture_output=True, text=True)
                if proc.returncode:
                    raise RuntimeError(f"campaign {spec['name']} failed:\n{proc.stderr[-3000:]}")
                res = json.loads(proc.stdout.strip().splitlines()[-1])
                if not res["ok"]:
                    raise AssertionError(f"campaign {spec['name']} had failed units")
                out[f"{size}px_{n}w"] = res
        big, small = max(sizes), min(sizes)
        out["peak_ratio"] = (out[f"{big}px_1w"]["worker_peak_mib"]
                             / out[f"{small}px_1w"]["worker_peak_mib"])
        out["scaling_2w"] = out[f"{big}px_1w"]["seconds"] / out[f"{big}px_2w"]["seconds"]
        return out
    finally:
        if own:
            shutil.rmtree(work, ignore_errors=True)


class CampaignScaling:
    """Campaign peak memory per worker vs region size; 1 vs 2 workers (stand-in model)."""

    timeout = 1200
    number = 1
    repeat = 1

    def setup_cache(self) -> dict:
        return campaign_figures()

    setup_cache.timeout = 1200

    def track_peak_worker_mib_768px(self, fig: dict) -> float:
        return fig["768px_1w"]["worker_peak_mib"]

    track_peak_worker_mib_768px.unit = "MiB"

    def track_peak_worker_mib_2048px(self, fig: dict) -> float:
        return fig["2048px_1w"]["worker_peak_mib"]

    track_peak_worker_mib_2048px.unit = "MiB"

    def track_peak_ratio_2048_over_768(self, fig: dict) -> float:
        return fig["peak_ratio"]

    track_peak_ratio_2048_over_768.unit = "x"

    def track_seconds_2048px_1_worker(self, fig: dict) -> float:
        return fig["2048px_1w"]["seconds"]

    track_seconds_2048px_1_worker.unit = "seconds"

    def track_seconds_2048px_2_workers(self, fig: dict) -> float:
        return fig["2048px_2w"]["seconds"]

    track_seconds_2048px_2_workers.unit = "seconds"

    def track_speedup_2_workers(self, fig: dict) -> float:
        return fig["scaling_2w"]

    track_speedup_2_workers.unit = "x"


if __name__ == "__main__":  # plain printout: python benchmarks/bench_inference.py [region|campaign]
    which = sys.argv[1:] or ["region", "campaign"]
    os.environ.setdefault("MPLBACKEND", "Agg")
    if "campaign" in which:
        print(json.dumps(campaign_figures(), indent=1), flush=True)
    if "region" in which:
        print(json.dumps(region_month_figures(), indent=1), flush=True)
