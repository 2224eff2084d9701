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
