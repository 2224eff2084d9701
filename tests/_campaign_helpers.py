"""Shared pieces of the campaign tests: a cheap stand-in tile model, a cached scenario.

BA-Net takes several seconds per 64 x 128 x 128 tile on the (loaded) 2-core CI machine,
so the reliability tests, which run a campaign several times, use a small stand-in with
BA-Net's interface: ``(n, 4, 64, t, t)`` -> ``(n, 1, 64, t, t)`` logits, built from a
seed in every worker process (identical weights everywhere, nothing pickled but the
recipe). One test in ``test_campaign.py`` runs real (random-weight) BA-Net weights
through the weights API.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from firesmoke.grid import Region
from firesmoke.inference.model import TileModel
from firesmoke.models.normalization import BANET

START, END = "2020-07-15", "2020-09-16"   # the 64-day window of the month 2020-08
MONTH = "2020-08"


def standin_net(seed: int = 0, width: int = 4) -> nn.Module:
    """A tiny CNN with BA-Net's input/output shapes (deterministic for a seed).

    A 3 x 3 spatial convolution per day gives it spatial context, so tile edges and
    zero padding matter as they do for BA-Net.
    """
    gen = torch.Generator().manual_seed(seed)
    net = nn.Sequential(nn.Conv3d(4, width, (1, 3, 3), padding=(0, 1, 1)), nn.ReLU(),
                        nn.Conv3d(width, 1, 1))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.4)
        net[2].bias.fill_(-5.0)  # daily probabilities ~0.01: confidence mostly unsaturated
    return net.eval()


def standin_model(seeds: tuple[int, ...] = (0,)) -> TileModel:
    """The stand-in as a TileModel (an ensemble when several seeds are given)."""
    return TileModel(
        builders=tuple(functools.partial(standin_net, s) for s in seeds),
        key=f"standin-{'-'.join(map(str, seeds))}",
        mean=BANET.mean, std=BANET.std,
        metadata={"name": "standin", "sha256": f"standin-{seeds}"},
    )


def make_cube(path: Path, shape=(200, 300), start="2020-07-01", end="2020-09-30", seed=0,
              nan_box=None) -> Path:
    """A small random but structured cube written with write_cube (no scenario needed)."""
    import pandas as pd

    from firesmoke.cube.build import write_cube

    rng = np.random.default_rng(seed)
    days = pd.date_range(start, end)
    region = Region.from_shape("SYN", -7.0, 41.0, 0.01, *shape)
    ds = region.coords_dataset(time=days.values)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    base = 0.2 + 0.1 * np.sin(yy / 17.0) * np.cos(xx / 23.0)
    for i, v in enumerate(("red", "nir", "mir")):
        arr = (base[None] * (1 + 0.3 * i) + 0.02 * rng.standard_normal((len(days), *shape)))
        arr[rng.random(arr.shape) < 0.2] = np.nan  # clouds / gaps
        ds[v] = (("time", "y", "x"), arr.astype(np.float32))
    frp = np.zeros((len(days), *shape), np.float32)
    for _ in range(40):  # a few fires
        t, r, c = rng.integers(0, len(days)), rng.integers(0, shape[0] - 6), rng.integers(0, shape[1] - 6)
        frp[t, r : r + 5, c : c + 5] = rng.uniform(1, 4)
    ds["frp"] = (("time", "y", "x"), frp)
    if nan_box is not None:
        r0, r1, c0, c1 = nan_box
        for v in ("red", "nir", "mir"):
            ds[v][:, r0:r1, c0:c1] = np.nan
        ds["frp"][:, r0:r1, c0:c1] = 0.0
    ds = ds.chunk({"time": 16, "y": 128, "x": 128})
    return write_cube(ds, path, mode="w", compute_kwargs={"scheduler": "synchronous"})


def scenario_inputs(tmp_path_factory) -> dict:
    """A 128 x 384 px synthetic scenario of the days of ``MONTH``, generated once per test
    session (three 128 px blocks; the rest of the month's 64-day window is unobserved,
    as in the examples' ``--tiny`` mode: generating granules is most of the cost).

    Two granule files are damaged (one truncated, one overwritten with garbage) so that
    campaigns built from these raw inputs must skip and list them.
    """
    from firesmoke.synthetic import generate_scenario

    root = tmp_path_factory.getbasetemp() / "campaign-scenario"
    done = root / "ready.json"
    if done.exists():
        return json.loads(done.read_text())
    region = Region.from_shape("CAMP", -7.5, 41.5, 0.01, 128, 384)
    scn = generate_scenario(region, f"{MONTH}-01", f"{MONTH}-31", root / "scn", seed=3)
    files = sorted(scn.viirs_dir.glob("*Reflectance_M7.hdf"))
    bad = [files[len(files) // 3], files[2 * len(files) // 3]]
    bad[0].write_bytes(bad[0].read_bytes()[:2000])          # truncated
    bad[1].write_bytes(b"this is not an HDF4 file" * 100)   # garbage
    region.to_json(root)
    info = {"region_json": str(root / "R_CAMP.json"), "viirs": str(scn.viirs_dir),
            "firms": str(scn.firms_dir), "bad": [str(p) for p in bad]}
    done.write_text(json.dumps(info))
    return info


def kill_campaign_after_first_unit(spec: str | os.PathLike[str], store: str,
                                   timeout: float = 120.0) -> list:
    """Run the campaign of ``spec`` (the stand-in model) in a child process and SIGKILL its
    whole process group as soon as the ledger of ``store`` records a finished unit.

    Returns the units finished when it was killed.
    """
    from firesmoke.store import Ledger

    code = ("import sys; from _campaign_helpers import standin_model; "
            "from firesmoke.campaign.run import run_campaign; "
            "run_campaign(sys.argv[1], model=standin_model(), progress=False)")
    tests = str(Path(__file__).resolve().parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([tests, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", code, str(spec)], env=env,
                            start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    ledger = Ledger(store)
    deadline = time.monotonic() + timeout
    try:
        while len(ledger.finished()) < 1:
            assert proc.poll() is None, "the campaign ended before it could be killed"
            assert time.monotonic() < deadline, "no unit finished in time"
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the whole process group, mid-campaign
        proc.wait()
    return ledger.finished()
