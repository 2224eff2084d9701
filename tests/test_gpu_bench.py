"""Smoke test of ``benchmarks/gpu_bench.py --quick`` (tiny sizes, run here on CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_bench_quick_runs_and_writes_every_section(tmp_path):
    out = tmp_path / "bench.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT), CUDA_VISIBLE_DEVICES="",
               OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    res = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_bench.py"), "--quick", "--device", "cpu",
         "--json", str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["quick"] is True
    assert data["errors"] == {}, data["errors"]
    sec = data["sections"]
    assert sec["env"]["device"] == "cpu" and sec["env"]["torch"]
    assert sec["matmul_peak"]["tflops"] > 0
    tile = sec["banet_tile"]
    assert tile["gflop_per_tile"] > 0 and tile["plain_fp32_b1_ms"] > 0
    assert tile["best_batch"] in (1, 2) and tile["best_ms"] > 0
    assert tile["fast_fp32_max_abs_diff"] < 1e-4  # fast path == plain module in fp32
    assert sec["region_month_reference"]["seconds"] > 0
    assert sec["region_month_host_read"]["seconds"] > 0
    assert sec["region_month_threads_zero_model"]["seconds"] > 0  # the engine alone
    for name in ("region_month_threads_bf16", "region_month_threads_bf16_b16",
                 "region_month_threads_fp32", "region_month_threads_bf16_generated",
                 "region_month_localcluster_bf16"):
        s = sec[name]
        assert s["seconds"] > 0 and s["speedup"] > 0, name
        # on CPU "bf16" rows run in fp32 (autocast is CUDA-only): reference-exact
        assert s["max_abs_diff_confidence"] < 1e-4, name
        assert s["burn_date_agreement"] == 1.0, name
    assert sec["unet_scene"]["scenes_per_s"] > 0
    # the table was printed as it went
    assert "BA-Net tile" in res.stdout and "reference-style loop" in res.stdout
