"""The campaign control plane at planet size, with no input data and a model that costs nothing.

Shared by ``bench_campaign_scale.py`` (asv: a scaled-down and a full size) and the dry run
in the test suite (``tests/campaign/test_scale.py``, a tiny size).

The cube is a *lazy cube*: a Zarr store holding the metadata and coordinates of a global
daily cube and no chunk at all (Zarr reads missing chunks as fill values), written in a
fraction of a second whatever its size. The campaign's workers see that the chunks under
a block are missing and report the unit empty without reading a pixel, so what is
measured is the control plane: planning, store templates, submission, the ledger,
resume. A small ``data`` box can be written into the cube so that a few units really
run the (free) model and write their block.

:func:`measure` runs one size and returns its figures:

- ``units``, ``plan_s`` (``plan_campaign``), ``stores_s`` (product store templates),
  ``submit_s`` (contexts to the workers + first window of tasks), ``plan_submit_s`` (the
  three: the time before the cluster computes), ``units_s``, ``run_s`` (whole run);
- ``task_bytes`` (one task pickled: function, plugin name, context key, its units),
  ``units_per_task``,
  ``context_bytes`` (what each worker receives once), ``window`` (tasks in flight);
- ``client_rss_mib``: peak resident memory growth of the client process during the run
  (the LocalCluster's scheduler runs in it too); with ``trace=True`` also
  ``client_peak_mib``, the peak of tracemalloc (slows the run down);
- ``ledger_objects``, ``ledger_bytes``, ``ledger_list_s`` (one listing of the ledger),
  ``store_objects`` (files in the product store), ``chunk_objects`` (of those, data
  chunks);
- ``resume_s`` (a rerun with every unit finished), ``resume_partial_s`` and
  ``rerun_units`` (a rerun after a tenth of the ledger markers were removed: exactly
  those units run again).
"""

from __future__ import annotations

import functools
import os
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

from firesmoke.grid import Region

YEAR = 2020
SIZES: dict[str, dict[str, Any]] = {
    # name: region shape (H, W) at 0.01 deg, block size, months, data box (rows, cols) or None
    "tiny": {"shape": (512, 768), "block": 256, "months": 2, "data": (256, 256)},
    "continent": {"shape": (1700, 4100), "block": 512, "months": 12, "data": (512, 512)},
    "planet": {"shape": (18000, 36000), "block": 512, "months": 12, "data": (512, 512)},
    "planet-256": {"shape": (18000, 36000), "block": 256, "months": 12, "data": (256, 256)},
}


class _Zeros:
    """A BA-Net stand-in that costs nothing: zero logits of the output shape."""

    def __call__(self, x: Any) -> Any:
        import torch

        return torch.zeros((x.shape[0], 1, *x.shape[2:]), dtype=x.dtype, device=x.device)

    def eval(self) -> _Zeros:
        return self

    def to(self, *args: Any, **kwargs: Any) -> _Zeros:
        return self


def _zeros() -> _Zeros:
    return _Zeros()


def free_model() -> Any:
    """A :class:`~firesmoke.inference.model.TileModel` around :class:`_Zeros`."""
    from firesmoke.inference.model import TileModel
    from firesmoke.models.normalization import BANET

    return TileModel(builders=(functools.partial(_zeros),), key="zeros", mean=BANET.mean,
                     std=BANET.std, metadata={"name": "zeros", "sha256": "zeros"})


def region_of(size: str) -> Region:
    h, w = SIZES[size]["shape"]
    return Region.from_shape(size.upper().replace("-", "_"), -180.0, 90.0, 0.01, h, w)


def lazy_cube(path: Path, region: Region, start: str, end: str, data: tuple[int, int] | None = None,
              chunk: int = 256, tchunk: int = 16) -> Path:
    """A cube store of ``region`` with coordinates and metadata and no chunk (no data),
    except, with ``data=(h, w)``, a box of that size at the top left, written for every
    day (random reflectance and a fire)."""
    import dask.array as da
    import pandas as pd
    import xarray as xr

    from firesmoke.store.zarr_store import quiet_zarr

    days = pd.date_range(start, end)
    ds = region.coords_dataset(time=days.values)
    shape = (len(days), *region.shape)
    enc = {}
    for band in ("red", "nir", "mir", "frp"):
        # one dask chunk: never computed (compute=False), so no graph of a million chunks
        ds[band] = (("time", "y", "x"), da.full(shape, np.nan, dtype=np.float32, chunks=shape),
                    {"grid_mapping": "spatial_ref"})
        enc[band] = {"chunks": (tchunk, chunk, chunk), "fill_value": np.nan}
    with quiet_zarr():  # consolidated: workers open the cube with one read
        ds.to_zarr(path, mode="w", compute=False, zarr_format=3, consolidated=True, encoding=enc)
    if data is not None:
        h, w = data
        rng = np.random.default_rng(0)
        box = xr.Dataset({b: (("time", "y", "x"),
                              (rng.random((len(days), h, w)) * 0.3).astype(np.float32))
                          for b in ("red", "nir", "mir")})
        frp = np.zeros((len(days), h, w), np.float32)
        frp[len(days) // 2, h // 4 : h // 2, w // 4 : w // 2] = 2.0
        box["frp"] = (("time", "y", "x"), frp)
        box.to_zarr(path, region={"time": slice(0, len(days)), "y": slice(0, h),
                                  "x": slice(0, w)}, zarr_format=3, consolidated=False)
    return path


def spec_of(size: str, out: Path, cube: Path) -> dict[str, Any]:
    cfg = SIZES[size]
    r = region_of(size)
    return {
        "name": "scale", "output": str(out), "block_size": cfg["block"],
        "regions": [{"name": r.name, "bbox": list(r.bbox), "pixel_size": r.pixel_size,
                     "cube": str(cube)}],
        "periods": [{"start": f"{YEAR}-01-01", "end": f"{YEAR}-{cfg['months']:02d}-28"}],
        "products": {"burned": {"mode": "monthly", "device": "cpu", "tile": 128, "step": 128}},
        "cluster": {"torch_threads": 1},
    }


def _files(root: Path) -> tuple[int, int]:
    n = size = 0
    for dirpath, _, names in os.walk(root):
        for name in names:
            n += 1
            size += os.path.getsize(os.path.join(dirpath, name))
    return n, size


class _PeakRSS:
    """Peak resident memory of this process, sampled on a thread."""

    def __init__(self, every: float = 0.05) -> None:
        import psutil

        self.proc = psutil.Process()
        self.every = every
        self.base = self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __enter__(self) -> _PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


def measure(size: str, work: Path, n_workers: int = 2, trace: bool = False,
            client: Any = None) -> dict[str, Any]:
    """Run the campaign of ``size`` in ``work`` (fresh), rerun it, and return its figures."""
    import cloudpickle
    import pandas as pd

    from firesmoke.campaign.plan import plan_campaign
    from firesmoke.campaign.run import _context_key, run_campaign, submit_window, units_per_task
    from firesmoke.campaign.worker import UnitContext, run_planned_units
    from firesmoke.store import Ledger

    cfg = SIZES[size]
    region = region_of(size)
    cube = work / "cube.zarr"
    spec = spec_of(size, work / "out", cube)
    t = time.perf_counter()
    plan = plan_campaign(spec)
    plan_s = time.perf_counter() - t
    d0, d1 = plan.days[region.name]
    lazy_cube(cube, region, str(d0), str(d1), cfg["data"])
    unit = plan.units[-1]
    per_task = units_per_task(len(plan.units), n_workers)
    task_bytes = len(cloudpickle.dumps((run_planned_units, "firesmoke-campaign-0123456789ab",
                                        _context_key(unit.product, unit.region),
                                        plan.units[-per_task:])))
    p, r = plan.spec.products[0], plan.spec.regions[0].region
    context = UnitContext(str(cube), str(plan.stores[(p.name, r.name)]), r.shape, p, free_model(),
                          tuple(s.windows for s in plan.slots[p.name]), 1, None, "0123456789ab")
    context_bytes = len(cloudpickle.dumps(context))
    del plan, context

    own = client is None
    if own:
        from distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    try:
        model = free_model()
        if trace:
            tracemalloc.start()
        with _PeakRSS() as rss:
            rep = run_campaign(spec, client=client, model=model, progress=False)
        peak = tracemalloc.get_traced_memory()[1] if trace else 0
        if trace:
            tracemalloc.stop()
        assert rep.ok, rep.failed[:3]
        assert len(rep.done) + len(rep.empty) == rep.n_units, rep.summary()[:500]
        window = submit_window(client)
        (store,) = rep.stores
        ledger = Ledger(store)
        t = time.perf_counter()
        finished = ledger.finished()
        list_s = time.perf_counter() - t
        ledger_objects, ledger_bytes = _files(Path(store) / ".firesmoke" / "ledger")
        store_objects, _ = _files(Path(store))
        chunk_objects = sum(_files(Path(store) / v)[0] - 2 for v in ("confidence", "burn_date"))
        resume = run_campaign(spec, client=client, model=model, progress=False)
        assert len(resume.skipped) == rep.n_units and not resume.done
        # a tenth of the markers lost (a kill before they were written): only those rerun
        lost = sorted(finished)[:: 10]
        for name in lost:
            (Path(store) / ".firesmoke" / "ledger" / name).unlink()
        partial = run_campaign(spec, client=client, model=model, progress=False)
        rerun = len(partial.done) + len(partial.empty)
        assert rerun == len(lost) and len(partial.skipped) == rep.n_units - len(lost)
    finally:
        if own:
            client.close()
            cluster.close()

    tm = rep.timings
    return {
        "size": size, "shape": list(region.shape), "block": cfg["block"],
        "months": cfg["months"], "units": rep.n_units, "done": len(rep.done),
        "empty": len(rep.empty),
        "plan_s": round(plan_s, 3), "stores_s": tm.get("stores", 0.0),
        "ledger_s": tm.get("ledger", 0.0), "submit_s": tm.get("submit", 0.0),
        "plan_submit_s": round(tm.get("plan", 0) + tm.get("stores", 0) + tm.get("ledger", 0)
                               + tm.get("submit", 0), 3),
        "units_s": tm.get("units", 0.0), "finish_s": tm.get("finish", 0.0),
        "run_s": rep.elapsed_s, "units_per_s": round(rep.n_units / max(tm.get("units", 1e-9), 1e-9), 1),
        "task_bytes": task_bytes, "context_bytes": context_bytes,
        "window": window, "units_per_task": per_task,
        "client_peak_mib": round(peak / 2**20, 1),
        "client_rss_mib": round((rss.peak - rss.base) / 2**20, 1),
        "ledger_objects": ledger_objects, "ledger_bytes": ledger_bytes,
        "ledger_list_s": round(list_s, 4), "store_objects": store_objects,
        "chunk_objects": chunk_objects,
        "resume_s": resume.elapsed_s, "resume_partial_s": partial.elapsed_s,
        "rerun_units": rerun, "cube_days": len(pd.date_range(d0, d1)),
    }
