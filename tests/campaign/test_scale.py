"""The campaign control plane at a reduced size (the full, planet size is in asv:
``benchmarks/bench_campaign_scale.py``).

A lazy cube (metadata, no chunks but a small data box) and a model that costs nothing:
units over missing chunks are empty without reading, units over the box run and write;
tasks are small and bounded in number; the ledger holds one marker per unit; a rerun
skips everything after one listing, and after lost markers reruns exactly those units.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from firesmoke.campaign.plan import plan_campaign

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from benchmarks._campaign_scale import SIZES, measure, region_of, spec_of  # noqa: E402


@pytest.fixture(scope="module")
def client():
    from distributed import Client

    with Client(processes=False, n_workers=1, threads_per_worker=2,
                dashboard_address=":0") as c:
        yield c


def test_scaled_down_campaign_dry_run(client, tmp_path):
    got = measure("tiny", tmp_path, client=client, trace=False)
    assert got["units"] == 12  # 2 x 3 blocks of 256 px x 2 months
    # the 256 px data box touches the first block's tiles only (its halo reaches the
    # next block's tiles): units over it run the model and write, the others are empty
    assert got["done"] >= 1 and got["done"] + got["empty"] == got["units"]
    assert got["chunk_objects"] >= got["done"]  # written blocks only
    assert got["task_bytes"] < 1024  # one unit and two short strings, not the model
    assert got["context_bytes"] < 64 * 1024
    assert got["ledger_objects"] == got["units"] + 1  # one marker per unit + the ledger's own
    assert got["rerun_units"] == len(range(0, got["units"], 10))
    assert got["window"] >= 64


def test_planet_plan_is_fast_and_small():
    """30,672 units (global 0.01 deg, 512 px blocks, 12 months) are planned in seconds."""
    import tracemalloc

    spec = spec_of("planet", Path("/nonexistent-out"), Path("/nonexistent-cube.zarr"))
    tracemalloc.start()
    t = time.perf_counter()
    plan = plan_campaign(spec)
    seconds = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    h, w = SIZES["planet"]["shape"]
    assert region_of("planet").shape == (h, w)
    assert len(plan) == 12 * -(-h // 512) * -(-w // 512) == 30672
    assert len({u.id for u in plan.units}) == len(plan)
    assert seconds < 20  # about 0.3 s on the 2-core VM; generous for a loaded machine
    assert peak < 256 * 2**20  # ~ 40 MiB: a few hundred bytes per unit


def test_chunks_written_matches_the_data(tmp_path):
    """The chunk-index check says "data" exactly where reading the window finds any."""
    import numpy as np
    import pandas as pd

    from firesmoke.burned.periods import Window
    from firesmoke.campaign.worker import _chunks_written, _open_cube

    region = region_of("tiny")  # 512 x 768 px
    days = pd.date_range("2020-01-01", periods=40)
    from benchmarks._campaign_scale import lazy_cube

    cube = lazy_cube(tmp_path / "c.zarr", region, str(days[0].date()), str(days[-1].date()),
                     data=None, chunk=64, tchunk=8)
    import xarray as xr

    patch = np.full((3, 10, 10), 0.1, np.float32)  # days 20-22, rows 300-309, cols 130-139
    xr.Dataset({"nir": (("time", "y", "x"), np.pad(patch, ((4, 5), (44, 10), (2, 52)),
                                                   constant_values=np.nan))}).to_zarr(
        cube, region={"time": slice(16, 28), "y": slice(256, 320), "x": slice(128, 192)},
        zarr_format=3, consolidated=False)
    ds, arrays = _open_cube(str(cube), None)
    values = ds["nir"].values
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(60):
        t0 = int(rng.integers(0, 30))
        r0, c0 = int(rng.integers(0, 480)), int(rng.integers(0, 700))
        h, w = (int(v) for v in rng.integers(8, 200, 2))
        win = Window("w", days[t0].date(), days[t0].date(), days[t0 + 9].date(), length=10)
        rows, cols = slice(r0, min(512, r0 + h)), slice(c0, min(768, c0 + w))
        lo, hi = t0, min(40, t0 + 10)
        want = bool(np.isfinite(values[lo:hi, rows, cols]).any())
        got = _chunks_written(str(cube), ds, arrays, win, rows, cols)
        # chunks are coarser than data: data implies a chunk; a chunk may hold only NaN
        assert got or not want
        chunk_hit = (lo // 8 <= 2 <= (hi - 1) // 8 and rows.start // 64 <= 4 <= (rows.stop - 1) // 64
                     and cols.start // 64 <= 2 <= (cols.stop - 1) // 64)
        assert got == chunk_hit
        hits += got
    assert 0 < hits < 60


def test_units_per_task_and_window():
    from firesmoke.campaign.run import units_per_task

    assert units_per_task(12, 2) == 1          # small campaigns: one unit per task
    assert units_per_task(432, 2) == 3
    assert units_per_task(30672, 2) == 16      # capped
    assert units_per_task(30672, 1000) == 1    # a big cluster keeps tasks small
    assert units_per_task(30672, 2, asked=4) == 4
