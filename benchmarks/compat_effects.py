"""Measure what each difference between firesmoke's default and BA-Net 0.6.7 changes.

``python benchmarks/compat_effects.py [--work DIR] [--json out.json]`` generates a
synthetic scenario (a 226 x 205 px region, so that the reference tile plan has one more row
and column of tiles; 2020-06-20..2020-10-31, seed 3), builds its cube, and runs the shipped
``banet_synthetic`` weights (CPU) in:

* firesmoke's default (float inputs, firesmoke tile plan, float64 blending, float32
  ensemble) and full compat mode (``compat="banet-0.6.7"``);
* each compat ingredient alone on top of the default: input quantisation (+ days without
  VIIRS all zeros), the reference tile plan, float16 blending and ensemble;
* the products' rules: reference vs true dates (monthly), the reference's time range
  (months strictly inside, concatenated) vs firesmoke's (32-day central windows over the
  span), NRT threshold 0.1 vs 0.5.

It prints a table (max and mean |d confidence|, burned pixels that flip, dates that
change) used in ``docs/compatibility.md``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

START, END = "2020-06-20", "2020-10-31"
MONTHS = ("2020-08", "2020-09")


def _cube(work: Path):
    from firesmoke.cube.build import build_cube, open_cube, write_cube
    from firesmoke.grid import Region
    from firesmoke.synthetic import generate_scenario

    store = work / "cube.zarr"
    if not store.exists():
        region = Region("CMP", (-8.0, 40.2, -5.95, 42.46), 0.01)
        scn = generate_scenario(region, START, END, work / "scenario", seed=3)
        cube = build_cube(region, START, END, viirs=scn.viirs_dir, firms=scn.firms_dir)
        write_cube(cube, store, mode="w")
    return open_cube(store)


def _variant(cube, model, window, quant: bool, plan: str, fp16: bool, zero):
    from firesmoke.burned.predict import window_input
    from firesmoke.burned.rules import (
        BANET_0_6_7,
        BurnedWindow,
        day_of_year_lut,
        quantise,
        reference_day_of_year,
    )
    from firesmoke.inference.model import keep_days, predict_array

    x = window_input(cube, window)
    if quant:
        x = x.map_blocks(quantise, zero_days=zero, dtype=np.float32)
    m = BANET_0_6_7.model(model) if fp16 else model
    red = BurnedWindow(day_of_year_lut(window), 0.5, "float16" if fp16 else "float32",
                       reference_day_of_year(window))
    out = predict_array(x, keep_days(m, window.keep_slice), reduce=red, plan_rule=plan,
                        acc_dtype="float16" if fp16 else "float64", plan_order=fp16,
                        device="cpu")
    return out.compute()


def _compare(a, b) -> dict:
    d = np.abs(a[0] - b[0])
    ba, bb = a[1] > 0, b[1] > 0
    both = ba & bb
    return {"max_dconf": float(d.max()), "mean_dconf": float(d.mean()),
            "burned_px": int(ba.sum()), "flipped_px": int((ba != bb).sum()),
            "dates_changed_px": int((a[1][both] != b[1][both]).sum())}


def figures(work: Path) -> dict:
    import dask
    import pandas as pd

    from firesmoke.burned.periods import monthly_windows
    from firesmoke.burned.predict import predict_burned
    from firesmoke.burned.rules import viirs_days
    from firesmoke.inference.model import TileModel

    cube = _cube(work)
    model = TileModel.from_weights("banet_synthetic")
    out: dict = {"region_px": [int(cube.sizes["y"]), int(cube.sizes["x"])]}
    dask.config.set(scheduler="threads")
    rows = {}
    for w in monthly_windows(f"{MONTHS[0]}-01", f"{MONTHS[-1]}-01"):
        zero = ~viirs_days(cube, w.days)
        out[f"days_without_viirs_{w.label}"] = int(zero.sum())
        base = _variant(cube, model, w, False, "firesmoke", False, zero)
        variants = {
            "quantisation + no-VIIRS days zero": (True, "firesmoke", False),
            "reference tile plan": (False, "reference", False),
            "float16 blending + ensemble": (False, "firesmoke", True),
            "full compat": (True, "reference", True),
        }
        for name, args in variants.items():
            v = _variant(cube, model, w, *args, zero)
            rows.setdefault(name, []).append(_compare(base, v))
            if name == "full compat":
                both = (v[1] > 0)
                shift = (v[1] - v[2])[both]
                rows.setdefault("reference dates vs true dates (compat)", []).append(
                    {"burned_px": int(both.sum()),
                     "mean_shift_days": float(shift.mean()) if shift.size else None,
                     "min_shift_days": int(shift.min()) if shift.size else None,
                     "max_shift_days": int(shift.max()) if shift.size else None})
    out["monthly"] = rows
    # time range and NRT rules
    a = predict_burned(cube, model, "2020-07-10", "2020-10-05", mode="range",
                       device="cpu").compute()
    b = predict_burned(cube, model, "2020-07-10", "2020-10-05", mode="range",
                       compat="banet-0.6.7", device="cpu").compute()
    out["range"] = {"firesmoke_burned_px": int((a.burn_date.values > 0).sum()),
                    "compat_burned_px": int((b.burn_date.values > 0).sum()),
                    "max_dconf": float(np.abs(a.confidence.values - b.confidence.values).max())}
    n = predict_burned(cube, model, "2020-09-30", mode="nrt", compat="banet-0.6.7",
                       device="cpu").compute()
    conf = n.confidence.values[0]
    out["nrt"] = {"burned_px_at_0.1": int((conf >= np.float16(0.1)).sum()),
                  "burned_px_at_0.5": int((conf >= 0.5).sum())}
    out["scenario"] = f"{START}..{END}, seed 3, months {MONTHS}"
    out["measured"] = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="compat-effects-"))
    work.mkdir(parents=True, exist_ok=True)
    fig = figures(work)
    print(json.dumps(fig, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(fig, indent=1))


if __name__ == "__main__":
    main()
