"""The end-to-end demo (``make demo`` / ``firesmoke demo``) on a generated scenario.

Steps, each printed with where its outputs went:

1. generate a synthetic fire scenario (VIIRS HDF4 granules, FIRMS CSV, MCD64A1 tiles);
2. build the daily datacube and write it to Zarr;
3. run BA-Net with the shipped synthetic-trained weights over the cube (monthly
   products), write the Zarr mosaic, GeoTIFFs and quicklook PNGs;
4. score the products against the scenario truth (metrics table, CSV);
5. smoke: classify and segment generated Sentinel-2 chips, segment a generated scene and
   report plume presence/area per emitter site.

The shipped weights are trained on SYNTHETIC data only: the demo shows the machinery
working end to end, not the skill of the method on real imagery.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from firesmoke.burned.outputs import export_period
from firesmoke.burned.predict import predict_burned
from firesmoke.cube.build import build_cube, open_cube, write_cube
from firesmoke.errors import InputError, WeightsError
from firesmoke.inference.model import TileModel
from firesmoke.metrics import burned_area_scores
from firesmoke.store import write_product
from firesmoke.store.geotiff import export_smoke_mask, write_csv
from firesmoke.store.quicklook import quicklook_png
from firesmoke.synthetic import demo_region, generate_scenario

log = logging.getLogger(__name__)

__all__ = ["run_demo"]

Progress = Callable[[int, int, str], None]


def _step(lines: list[str], text: str) -> None:
    lines.append(text)
    log.info(text)


def _quicklook_day(cube, truth, day: pd.Timestamp, path: Path) -> Path:
    d = cube.sel(time=day)
    rgb = np.stack([d["mir"].values, d["nir"].values, d["red"].values], axis=-1)
    scale = np.nanpercentile(rgb, 98, axis=(0, 1))
    rgb = np.clip(rgb / np.where(scale > 0, scale, 1), 0, 1)
    rgb = np.where(np.isfinite(rgb), rgb, 0.15)
    bd = truth["burn_doy"].where(truth["burn_doy"] > 0)
    x, y = d["x"].values, d["y"].values
    dx, dy = x[1] - x[0], y[1] - y[0]
    extent = (x[0] - dx / 2, x[-1] + dx / 2, y[-1] + dy / 2, y[0] - dy / 2)
    return quicklook_png(
        [
            (f"false colour (MIR, NIR, red) {day:%Y-%m-%d}", rgb,
             {"colorbar": False, "extent": extent}),
            ("truth: burn day of year", bd, {"cmap": "plasma", "cbar_label": "day of year"}),
        ],
        path,
        title="firesmoke synthetic scenario",
    )


def run_demo(
    out: str | os.PathLike[str] = "demo-output",
    seed: int = 0,
    days: int = 120,
    start: str = "2020-06-01",
    progress: Progress | None = None,
    smoke: bool = True,
) -> str:
    """Run the demo and return a report of what was written.

    Parameters
    ----------
    out
        Output folder (created).
    seed
        Scenario seed.
    days
        Scenario length (the burned-area product covers the whole months inside it).
    start
        First day of the scenario.
    progress
        Optional callback ``(done, total, label)`` for progress bars.
    smoke
        Also run the smoke part.
    """
    out_dir = Path(out)
    if os.path.lexists(out_dir) and (out_dir.is_symlink() or not out_dir.is_dir()):
        raise InputError("exists and is not a folder; give --out a folder (new or a "
                         "previous demo's)", path=out_dir, field="out")
    out_dir.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    t_start = time.perf_counter()
    t0 = pd.Timestamp(start)
    t1 = t0 + pd.Timedelta(days=days - 1)
    region = demo_region()

    def cb(label: str):
        if progress is None:
            return None
        return lambda done, total: progress(done, total, label)

    # 1. scenario
    scn = generate_scenario(region, t0.date(), t1.date(), out_dir / "scenario", seed=seed,
                            progress=cb("scenario days"))
    _step(lines, scn.summary())

    # 2. cube
    cube = build_cube(region, t0.date(), t1.date(), viirs=scn.viirs_dir, firms=scn.firms_dir)
    store = write_cube(cube, out_dir / "cube.zarr", mode="w", progress=progress)
    _step(lines, f"datacube: {store} ({cube.sizes['time']} days x {region.shape[0]} x "
                 f"{region.shape[1]} px; red, nir, mir, frp)")
    cube = open_cube(store)
    truth = scn.truth
    # a day in the middle with many valid pixels for the quicklook
    valid = cube["red"].notnull().sum(("y", "x")).values
    burned_days = pd.to_datetime(truth["burn_date"].values[np.isfinite(truth["burn_doy"].values)
                                                           & (truth["burn_doy"].values > 0)])
    late = pd.Timestamp(np.quantile(burned_days.astype("int64"), 0.9)) if len(burned_days) else t1
    cand = [i for i, d in enumerate(pd.DatetimeIndex(cube.time.values)) if d >= late]
    best = max(cand or range(len(valid)), key=lambda i: valid[i])
    day = pd.Timestamp(cube.time.values[best])
    png = _quicklook_day(cube, truth, day, out_dir / "quicklook_scenario.png")
    _step(lines, f"quicklook of {day:%Y-%m-%d} and the truth burn dates: {png}")

    # 3-4. burned area
    lines.extend(_burned_part(cube, truth, out_dir, t0, t1))

    # 5. smoke
    if smoke:
        lines.extend(_smoke_part(out_dir, seed))
    _step(lines, f"demo finished in {time.perf_counter() - t_start:.0f} s; outputs in {out_dir}/")
    return "\n".join(lines)


def _months_inside(t0: pd.Timestamp, t1: pd.Timestamp) -> tuple[dt.date, dt.date] | None:
    first = (t0 + pd.offsets.MonthBegin(1)).date() if t0.day != 1 else t0.date()
    last = (t1 - pd.offsets.MonthEnd(1)).date() if not t1.is_month_end else t1.date()
    # a month needs its window (15th of the previous month) inside the scenario
    first_ok = pd.Timestamp(first)
    while (first_ok - pd.DateOffset(months=1)).replace(day=15) < t0:
        first_ok = first_ok + pd.DateOffset(months=1)
    if first_ok.date() > last:
        return None
    return first_ok.date(), last


def _burned_part(cube, truth, out_dir: Path, t0: pd.Timestamp, t1: pd.Timestamp) -> list[str]:
    lines: list[str] = []
    months = _months_inside(t0, t1)
    if months is None:
        return ["burned area: the scenario is too short for a monthly product (needs ~2.5 months)"]
    try:
        model = TileModel.from_weights("banet_synthetic")  # prepare_for_inference by default
    except (WeightsError, ImportError) as exc:
        return [f"burned area: skipped ({exc})"]
    product = predict_burned(cube, model, months[0], months[1], mode="monthly",
                             allow_partial=True)  # last window may run past the scenario
    pstore = out_dir / "burned_area.zarr"
    # the demo's own folder; streamed chunk by chunk (Zarr v2: GDAL opens it)
    write_product(product, pstore, overwrite=True)
    product = xr.open_zarr(pstore).load().rio.write_crs(cube.rio.crs)
    lines.append(f"burned-area product (BA-Net, synthetic-trained weights): {pstore} "
                 f"({product.sizes['period']} months)")
    rows = []
    doy = truth["burn_doy"].values
    bdate = pd.DatetimeIndex(truth["burn_date"].values.ravel()).values.reshape(doy.shape)
    for i in range(product.sizes["period"]):
        p = product.isel(period=i)
        label = str(p.period_label.values)
        m0, m1 = pd.Timestamp(p.period.values), pd.Timestamp(p.period_end.values)
        ref = (bdate >= np.datetime64(m0)) & (bdate <= np.datetime64(m1 + pd.Timedelta(hours=23)))
        pred = p["burn_date"].values > 0
        s = burned_area_scores(pred, ref, np.where(pred, p["burn_date"].values, np.nan),
                               np.where(ref, doy, np.nan))
        rows.append({"month": label, "dice": s["dice"], "commission": s["commission"],
                     "omission": s["omission"], "date_mae_days": s.get("date_mae"),
                     "date_within_2_days": s.get("date_within_2"),
                     "burned_px_pred": int(pred.sum()), "burned_px_truth": int(ref.sum())})
        files = export_period(
            p, out_dir, f"burned_area_{label}",
            extra_panels=[(f"truth {label}", p["confidence"].copy(data=np.where(ref, doy, np.nan)),
                           {"cmap": "plasma", "cbar_label": "day of year"})],
            title=f"firesmoke BA-Net monthly product {label} (synthetic scenario)")
        lines.append(f"  {label}: {', '.join(str(f) for f in files)}")
    table = pd.DataFrame(rows)
    csv = out_dir / "burned_area_metrics.csv"
    write_csv(table, csv)
    lines.append(f"metrics against the scenario truth ({csv}):")
    lines.append(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return lines


def _smoke_part(out_dir: Path, seed: int) -> list[str]:
    lines: list[str] = []
    try:
        import firesmoke.smoke as smoke_pipeline  # deferred: optional part (rasterio: ~0.6 s)
        from firesmoke.synthetic.s2_scenes import generate_scenes  # deferred: optional part
        from firesmoke.synthetic.sentinel2 import generate_chips  # deferred: optional part
    except ImportError as exc:  # pragma: no cover - optional part
        return [f"smoke: skipped ({exc})"]
    chips = generate_chips(out_dir / "smoke_chips", n_positive=12, n_negative=12, seed=seed + 100)
    try:
        table = smoke_pipeline.classify_chips(out_dir / "smoke_chips")
    except WeightsError as exc:
        return [f"smoke: skipped ({exc})"]
    csv = out_dir / "smoke_chips.csv"
    write_csv(table, csv)
    truth = np.array(["positive" in str(p) for p in table["path"]])
    acc = float(((table["probability"].to_numpy() > 0.5) == truth).mean())
    lines.append(f"smoke chips: {len(chips.paths)} generated; classified -> {csv} "
                 f"(accuracy on these chips {acc:.2f})")
    scenes = generate_scenes(out_dir / "smoke_scenes", n_scenes=1, size=512, n_sites=3, seed=seed + 200)
    mask = smoke_pipeline.segment_scene(scenes.item_paths)
    tif_dir = out_dir / "smoke_masks"
    # uint8 COGs: 0 no smoke, 1 smoke, 255 no data
    tifs = [export_smoke_mask(mask.isel(time=i), tif_dir / f"mask_{i}.tif", root=out_dir)
            for i in range(mask.sizes["time"])]
    series = smoke_pipeline.plume_timeseries(mask, scenes.sites)
    coords = scenes.sites[["site_id", "lon", "lat"]]
    series = series.merge(coords, on="site_id", how="left")  # site tables carry lon/lat
    ts = out_dir / "smoke_sites.csv"
    write_csv(series, ts)
    lines.append(f"smoke scene: plume masks {', '.join(str(t) for t in tifs)}; per-site series {ts}")
    lines.append(series.to_string(index=False))
    return lines
