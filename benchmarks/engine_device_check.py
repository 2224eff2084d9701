"""Check the engine on a CUDA device and time a region-month (one short script).

Run ``python benchmarks/engine_device_check.py [--size 1024] [--json out.json]``. Needs
torch, numpy, pandas, xarray and dask (the threads scheduler; no distributed). Prints:

1. agreement of the device pipeline with the numpy engine in fp32 (TF32 off) for both
   blend windows, and of the burned-area reduction on the device with the CPU one;
2. a region-month (``--size`` px, 3 random-weight BA-Nets): the reference-style loop (one
   tile at a time, batch 1, fp32, plain modules in turn) beside ``predict_burned``
   (``prepare_for_inference``, bf16 autocast), their max confidence difference, the tiles
   run per model, and peak GPU memory.
"""

from __future__ import annotations

import argparse
import functools
import json
import time

import numpy as np


def _grid(days, h: int, w: int) -> dict:
    """Coordinates of an ``h x w`` cube at 0.01 deg with its CRS (predict_burned needs one)."""
    from firesmoke.grid import Region

    grid = Region.from_shape("CHECK", 0.0, 10.0, 0.01, h, w).coords_dataset()
    return {"time": days, "y": grid["y"].values, "x": grid["x"].values,
            "spatial_ref": grid["spatial_ref"]}


def _small_net(seed: int, bias: float | None = None):
    import torch

    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Conv3d(4, 8, 3, padding=1), torch.nn.Tanh(),
                              torch.nn.Conv3d(8, 1, 3, padding=1))
    if bias is not None:
        with torch.no_grad():
            net[2].bias.fill_(bias)
    return net


def _random_banet(seed: int):
    import torch

    from firesmoke.models.banet import BANet

    torch.manual_seed(seed)
    m = BANet()
    for mod in m.modules():
        if isinstance(mod, (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)):
            mod.running_mean.normal_(0, 0.1)
            mod.running_var.uniform_(0.5, 1.5)
    return m.eval()


def agreement(device: str) -> dict:
    import dask
    import dask.array as da
    import torch

    from firesmoke.burned.rules import BurnedWindow
    from firesmoke.inference.model import TileModel, predict_array
    from firesmoke.inference.tiling import TilePlan, accumulate_tiles
    from firesmoke.models.normalization import BANET

    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    rng = np.random.default_rng(0)
    x = rng.random((4, 16, 300, 260), dtype=np.float32)
    x[:, 3] = np.nan
    model = TileModel(builders=(functools.partial(_small_net, 0),
                                functools.partial(_small_net, 1)),
                      key="check", normalization=BANET, autocast=None)
    plan = TilePlan(300, 260, tile=64, step=50)
    out = {}
    for window in ("mean", "centre"):
        ref = accumulate_tiles(x, lambda b: model(b, "cpu"), plan, batch_size=4, blend=window)
        arr = da.from_array(x, chunks=(4, 16, 128, 100))
        with dask.config.set(scheduler="threads", num_workers=4):
            got = predict_array(arr, model, out_lead=(1, 16), tile=64, step=50, blend=window,
                                batch_size=8, device=device).compute()
        out[f"max_abs_diff_{window}"] = float(np.abs(got - ref).max())
    red = BurnedWindow(tuple(range(100, 116)), 0.5)
    res = {}
    for dev in ("cpu", device):
        arr = da.from_array(x, chunks=(4, 16, 128, 100))
        with dask.config.set(scheduler="threads", num_workers=4):
            res[dev] = predict_array(arr, model, tile=64, step=50, batch_size=8, device=dev,
                                     reduce=red).compute()
    out["burned_conf_diff_device_vs_cpu"] = float(np.abs(res["cpu"][0] - res[device][0]).max())
    out["burned_date_equal_fraction"] = float((res["cpu"][1] == res[device][1]).mean())
    return out


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def compat_agreement(device: str) -> dict:
    """``compat="banet-0.6.7"`` on the device vs on the CPU (tests check the CPU result
    against an independent numpy re-implementation of the reference)."""
    import dask
    import pandas as pd
    import xarray as xr

    from firesmoke.burned.predict import predict_burned
    from firesmoke.inference.model import TileModel
    from firesmoke.models.normalization import BANET

    rng = np.random.default_rng(3)
    days = pd.date_range("2020-06-10", "2020-10-25")
    h, w = 226, 205
    yy, xx = np.mgrid[0:h, 0:w]
    fire = np.exp(-(((yy - 120) / 40.0) ** 2 + ((xx - 90) / 50.0) ** 2)).astype(np.float32)
    data = {b: (("time", "y", "x"), (rng.random((len(days), h, w)) * s).astype(np.float32))
            for b, s in (("red", 0.3), ("nir", 0.4), ("mir", 0.2))}
    frp = np.zeros((len(days), h, w), np.float32)
    frp[55:75] = np.log1p(40 * fire) * (rng.random((20, h, w)) < 0.3)
    data["frp"] = (("time", "y", "x"), frp)
    cube = xr.Dataset(data, coords=_grid(days, h, w))
    cube = cube.chunk({"time": -1, "y": 128, "x": 110})
    model = TileModel(builders=(functools.partial(_small_net, 0, -4.6),
                                functools.partial(_small_net, 1, -4.6)),
                      key="compat-check", normalization=BANET)
    res = {}
    for dev in ("cpu", device):
        with dask.config.set(scheduler="threads", num_workers=4):
            res[dev] = predict_burned(cube, model, "2020-08-01", "2020-09-30",
                                      compat="banet-0.6.7", device=dev).compute()
    a, b = res["cpu"], res[device]
    burned = a.burn_date.values > 0
    return {"compat_conf_max_diff": float(np.abs(a.confidence.values - b.confidence.values).max()),
            "compat_burned_px": int(burned.sum()),
            "compat_mask_mismatch_px": int((burned != (b.burn_date.values > 0)).sum()),
            "compat_date_mismatch_px": int((a.burn_date.values != b.burn_date.values).sum())}


def region_month(device: str, size: int) -> dict:
    import dask
    import pandas as pd
    import torch
    import xarray as xr

    from firesmoke.burned.periods import monthly_windows
    from firesmoke.burned.predict import predict_burned
    from firesmoke.inference.model import TileModel
    from firesmoke.inference.tiling import TilePlan
    from firesmoke.models.banet_fast import prepare_for_inference
    from firesmoke.models.normalization import BANET

    days = pd.date_range("2020-07-15", "2020-09-20")
    rng = np.random.default_rng(1)
    data = {b: (("time", "y", "x"), rng.random((len(days), size, size), dtype=np.float32) * s)
            for b, s in zip(("red", "nir", "mir", "frp"), (0.3, 0.4, 0.2, 0.05), strict=True)}
    cube = xr.Dataset(data, coords=_grid(days, size, size))
    cube = cube.chunk({"time": -1, "y": 512, "x": 512})
    (w,) = monthly_windows("2020-08-01", "2020-08-31")
    n_models = 3
    plan = TilePlan(size, size)

    # reference-style: one tile at a time, fp32, plain modules one after the other
    mods = [_random_banet(s).to(device) for s in range(n_models)]
    x = np.stack([cube[b].sel(time=w.days).values for b in ("red", "nir", "mir", "frp")])
    ph, pw = plan.padded_shape
    _sync(device)
    t0 = time.perf_counter()
    xt = torch.zeros((4, 64, ph, pw), device=device)
    xt[..., :size, :size] = torch.from_numpy(x).to(device)
    xt = BANET.apply(xt, channel_dim=0)
    acc = torch.zeros((31, ph, pw), device=device)
    cnt = torch.zeros((ph, pw), device=device)
    keep = w.keep_slice
    with torch.inference_mode():
        for r in plan.rows:
            for c in plan.cols:
                tile = xt[None, :, :, r : r + 128, c : c + 128].contiguous()
                p = torch.stack([torch.sigmoid(m(tile))[0, 0, keep] for m in mods]).mean(0)
                acc[:, r : r + 128, c : c + 128] += p
                cnt[r : r + 128, c : c + 128] += 1
    ref_conf = torch.clamp((acc / cnt)[:, :size, :size].sum(0), max=1).cpu().numpy()
    _sync(device)
    t_ref = time.perf_counter() - t0
    del mods, xt, acc

    model = TileModel(builders=tuple(functools.partial(_random_banet, s) for s in range(n_models)),
                      key="rm", normalization=BANET, prepare=prepare_for_inference)
    res = {}
    for label, bs in (("warmup", 32), ("b32", 32)):
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        with dask.config.set(scheduler="threads", num_workers=4):
            out = predict_burned(cube, model, "2020-08-01", batch_size=bs, device=device).compute()
        res[label] = time.perf_counter() - t0
    conf = out.confidence.values[0]
    return {"size": size, "models": n_models, "plan_tiles": len(plan),
            "reference_loop_s": t_ref, "predict_burned_s": res["b32"],
            "speedup": t_ref / res["b32"],
            "max_conf_diff_vs_reference_loop": float(np.abs(conf - ref_conf).max()),
            "mean_conf": float(conf.mean()), "burned_fraction": float((conf >= 0.5).mean()),
            "peak_gpu_mib": (torch.cuda.max_memory_allocated() / 2**20
                             if device.startswith("cuda") else None)}


def main() -> None:
    import torch

    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    import dask

    info = {"device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
            "torch": torch.__version__, "cuda": torch.version.cuda, "dask": dask.__version__}
    print(json.dumps(info))
    fig = {"info": info, "agreement": {**agreement(device), **compat_agreement(device)}}
    print(json.dumps(fig["agreement"], indent=1), flush=True)
    if device == "cuda" or args.size <= 128:  # a CPU smoke test of the script at 128 px
        fig["region_month"] = region_month(device, args.size)
        print(json.dumps(fig["region_month"], indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(fig, f, indent=1)


if __name__ == "__main__":
    main()
