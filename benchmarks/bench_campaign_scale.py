"""The campaign control plane from a continent to the planet (asv), no data, free model.

A continent-size (1700 x 4100 px, AU at 0.01 deg: 432 units) and the full planet-size
campaign (global 0.01 deg, 36000 x 18000 px, 12 monthly periods, 512 px blocks: 30,672
units) run on a 2-worker LocalCluster over a lazy cube (metadata only, plus one data
block; see ``_campaign_scale.py``), then rerun (everything in the ledger) and rerun after
a tenth of the ledger markers were deleted. Every figure comes from one run of each size
(``setup_cache``; the planet takes several minutes on 2 cores); the ``track_*`` methods
report them, so the growth from continent to planet reads off one asv run (71x the
units: linear growth is 71x, and plan + submit must stay below 60 s, client memory
below 2 GiB).

From a git worktree, point asv at it (asv drops ``PYTHONPATH``)::

    ASV_PYTHONPATH=$PWD asv --config benchmarks/asv.conf.json run --quick --python=same \
        --bench bench_campaign_scale
    FIRESMOKE_SCALE_SIZES=tiny ...   # a one-minute check of the harness
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from benchmarks._campaign_scale import measure

#: ``FIRESMOKE_SCALE_SIZES=tiny`` (comma-separated names of ``_campaign_scale.SIZES``) for a
#: quick check of the harness
SIZES = tuple(os.environ.get("FIRESMOKE_SCALE_SIZES", "continent,planet").split(","))


class CampaignScale:
    params = SIZES
    param_names = ("size",)
    timeout = 3600
    number = 1
    repeat = 1
    warmup_time = 0

    def setup_cache(self) -> dict:
        out = {}
        for size in SIZES:
            work = Path(tempfile.mkdtemp(prefix=f"campaign_scale_{size}_"))
            try:
                out[size] = measure(size, work)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        return out

    def track_units(self, cache: dict, size: str) -> int:
        return cache[size]["units"]

    def track_plan_seconds(self, cache: dict, size: str) -> float:
        return cache[size]["plan_s"]

    def track_store_templates_seconds(self, cache: dict, size: str) -> float:
        return cache[size]["stores_s"]

    def track_plan_submit_seconds(self, cache: dict, size: str) -> float:
        """Plan + templates + ledger listing + contexts and first window submitted."""
        return cache[size]["plan_submit_s"]

    def track_units_per_second(self, cache: dict, size: str) -> float:
        return cache[size]["units_per_s"]

    def track_task_bytes(self, cache: dict, size: str) -> int:
        return cache[size]["task_bytes"]

    def track_context_bytes(self, cache: dict, size: str) -> int:
        return cache[size]["context_bytes"]

    def track_tasks_in_flight(self, cache: dict, size: str) -> int:
        return cache[size]["window"]

    def track_client_rss_growth_mib(self, cache: dict, size: str) -> float:
        return cache[size]["client_rss_mib"]

    def track_ledger_objects(self, cache: dict, size: str) -> int:
        return cache[size]["ledger_objects"]

    def track_ledger_bytes(self, cache: dict, size: str) -> int:
        return cache[size]["ledger_bytes"]

    def track_ledger_list_seconds(self, cache: dict, size: str) -> float:
        return cache[size]["ledger_list_s"]

    def track_store_objects(self, cache: dict, size: str) -> int:
        return cache[size]["store_objects"]

    def track_resume_seconds(self, cache: dict, size: str) -> float:
        """A rerun with every unit in the ledger (nothing submitted)."""
        return cache[size]["resume_s"]

    def track_resume_partial_seconds(self, cache: dict, size: str) -> float:
        """A rerun after a tenth of the markers were lost (those units run again)."""
        return cache[size]["resume_partial_s"]

    def track_run_seconds(self, cache: dict, size: str) -> float:
        return cache[size]["run_s"]


for _name in dir(CampaignScale):
    if _name.startswith("track_"):
        getattr(CampaignScale, _name).unit = (
            "s" if _name.endswith("seconds") else "MiB" if _name.endswith("mib")
            else "bytes" if _name.endswith("bytes") else "units/s" if "per_second" in _name
            else "count")
