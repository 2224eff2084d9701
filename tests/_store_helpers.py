"""Helpers shared by the store tests: a small deterministic cube, and a writer process
that kills itself (SIGKILL) after a given number of written time chunks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

from firesmoke.cube.build import CUBE_VARIABLES
from firesmoke.grid import Region

ROOT = Path(__file__).resolve().parents[1]


def small_cube(n_days: int = 10, seed: int = 0, start: str = "2021-01-01", space: int = 16):
    """A (n_days, 40, 48) cube, values depending on the day, chunks of 4 days x ``space`` px
    (``space=-1``: one chunk per day block, e.g. fewer objects on a slow object store)."""
    days = pd.date_range(start, periods=n_days)
    region = Region.from_shape("T", 0.0, 1.0, 0.01, 40, 48)
    ds = region.coords_dataset(time=days.values)
    for k, v in enumerate(CUBE_VARIABLES):
        # each day's values depend on the day only: a longer cube extends a shorter one
        data = np.stack([np.random.default_rng([seed, k, i]).random(region.shape)
                         for i in range(len(days))]).astype(np.float32)
        data[:, :5, :5] = np.nan
        data += np.arange(len(days), dtype=np.float32)[:, None, None]
        ds[v] = (("time", "y", "x"), data, {"long_name": v})
    ds.attrs.update({"region": region.name, "region_json": json.dumps(region.to_dict()),
                     "title": "test cube"})
    return ds.chunk({"time": 4, "y": space, "x": space})


def run_killed_writer(store: str, kill_after: int, storage_options: dict | None = None,
                      n_days: int = 10, space: int = 16) -> int:
    """Run ``write_cube`` in a child process that SIGKILLs itself after ``kill_after``
    chunks; returns the child's return code (-9 when killed)."""
    code = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(ROOT)!r}); sys.path.insert(0, {str(ROOT / 'tests')!r})
        from _store_helpers import small_cube
        from firesmoke.cube.build import write_cube
        def progress(done, total, what):
            if done >= {kill_after}:
                os.kill(os.getpid(), signal.SIGKILL)
        write_cube(small_cube({n_days}, space={space}), {store!r}, progress=progress,
                   storage_options={storage_options!r})
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120)
    if proc.returncode not in (-9, 0):
        raise AssertionError(proc.stderr)
    return proc.returncode
