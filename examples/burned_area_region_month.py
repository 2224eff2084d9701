"""Burned area of one region and one month, from raw satellite files to maps.

Steps (every output goes under ``--out``):

1. generate a synthetic fire scenario in the real file formats: VIIRS 750 m gridded HDF4
   granules and FIRMS CSVs covering the 64-day BA-Net window of the month (the 15th of
   the previous month + 64 days);
2. build the daily datacube (red, nir, mir, frp) and write it to Zarr;
3. run BA-Net over the cube (monthly product: confidence + burn day of year) with the
   shipped synthetic-trained weights ``banet_synthetic`` when present, otherwise with a
   randomly initialised BA-Net (saved with the weights API; a note is printed: the maps
   then show the machinery, not burned area);
4. write the product to Zarr, the maps to Cloud-Optimised GeoTIFFs, a quicklook PNG and
   the fire events to GeoJSON, and compare with the scenario truth.

Run::

    python examples/burned_area_region_month.py --out /tmp/fs-month
    python examples/burned_area_region_month.py --out /tmp/fs-month-tiny --tiny

``--tiny`` (or ``FIRESMOKE_EXAMPLES_TINY=1``) uses a 64 x 128 px region (one BA-Net tile)
and generates only the days of the month itself (the rest of the 64-day window is then
"no observation"), so the script finishes quickly; the test suite runs it that way.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--month", default="2020-08", help="month to map (YYYY-MM), default %(default)s")
    p.add_argument("--seed", type=int, default=0, help="scenario seed")
    p.add_argument("--weights", default="banet_synthetic",
                   help="BA-Net weights name or path (default: the shipped %(default)s)")
    p.add_argument("--tiny", action="store_true",
                   default=os.environ.get("FIRESMOKE_EXAMPLES_TINY", "") not in ("", "0"),
                   help="tiny inputs (64 x 128 px, the month's days only) for a quick check")
    return p.parse_args(argv)


def load_model(weights: str, out: Path):
    """The requested BA-Net weights, or random weights saved beside the outputs."""
    import torch

    from firesmoke.errors import WeightsError
    from firesmoke.inference.model import TileModel
    from firesmoke.models.banet import BANet
    from firesmoke.models.banet_fast import prepare_for_inference
    from firesmoke.models.weights import save_weights

    try:
        return TileModel.from_weights(weights, prepare=prepare_for_inference), False
    except WeightsError as exc:
        print(f"NOTE: weights {weights!r} not available ({exc.reason[:120]}...).\n"
              "      Using a RANDOMLY INITIALISED BA-Net instead: the maps below show the\n"
              "      pipeline working, not burned area. Train weights with "
              "`firesmoke train banet` or pass --weights PATH.")
    torch.manual_seed(0)
    path = out / "banet_random.pt"
    save_weights(BANet().eval(), path, {"training_data": "none (random initialisation)"})
    return TileModel.from_weights(path, prepare=prepare_for_inference), True


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from firesmoke.burned.events import find_events, write_events_geojson
    from firesmoke.burned.periods import monthly_windows
    from firesmoke.burned.predict import predict_burned
    from firesmoke.cube.build import build_cube, open_cube, write_cube
    from firesmoke.store import export_geotiff, quicklook_png, write_product
    from firesmoke.synthetic import demo_region, generate_scenario

    t0 = time.perf_counter()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    region = demo_region()  # 256 x 256 px at 0.01 deg on the Portugal-Spain border
    if args.tiny:
        region = region.subset("DEMO_TINY", 96, 160, 64, 192)
    (window,) = monthly_windows(f"{args.month}-01", f"{args.month}-01")
    first, last = window.start, window.end
    if args.tiny:  # a quick check: only the days of the month itself are observed
        first, last = window.keep_start, window.keep_end

    # 1. raw inputs: VIIRS granules and FIRMS CSVs in their real formats
    scn = generate_scenario(region, first, last, out / "scenario", seed=args.seed,
                            products=("viirs", "firms"))
    print(scn.summary())

    # 2. datacube (lazy, per day and block) -> Zarr
    cube = build_cube(region, first, last, viirs=scn.viirs_dir, firms=scn.firms_dir)
    write_cube(cube, out / "cube.zarr", mode="w")
    cube = open_cube(out / "cube.zarr")
    print(f"cube: {out / 'cube.zarr'} ({cube.sizes['time']} days x {region.shape[0]} x "
          f"{region.shape[1]} px)")

    # 3. BA-Net monthly product
    model, random_weights = load_model(args.weights, out)
    # --tiny observes only the month's own days: a product flagged with its observed days
    product = predict_burned(cube, model, window.keep_start, window.keep_end, mode="monthly",
                             allow_partial=args.tiny)
    product = product.compute()
    store = out / f"burned_{args.month}.zarr"
    write_product(product, store, overwrite=True)  # a rerun replaces it; Zarr v2 for GDAL
    month = product.isel(period=0)
    conf, bd = month["confidence"], month["burn_date"]

    # 4. exports and a comparison with the truth
    tifs = [export_geotiff(conf, out / f"confidence_{args.month}.tif"),
            export_geotiff(bd, out / f"burn_date_{args.month}.tif", nodata=0)]
    truth = scn.truth["burn_doy"].values
    keep0, keep1 = pd.Timestamp(window.keep_start).dayofyear, pd.Timestamp(window.keep_end).dayofyear
    in_month = (truth >= keep0) & (truth <= keep1)
    png = quicklook_png(
        [(f"confidence {args.month}", conf, {"cmap": "magma", "vmin": 0, "vmax": 1,
                                             "cbar_label": "confidence"}),
         (f"burn date {args.month}", bd.where(bd > 0), {"cmap": "plasma",
                                                       "cbar_label": "day of year"}),
         ("truth: burn date", conf.copy(data=np.where(in_month, truth, np.nan)), {"cmap": "plasma",
                                                                 "cbar_label": "day of year"})],
        out / f"quicklook_{args.month}.png",
        title=f"firesmoke BA-Net {region.name} {args.month}"
              + (" (RANDOM weights)" if random_weights else ""),
    )
    d = bd.values.astype(np.float64)
    year = pd.Timestamp(window.keep_start).year
    labels, events = find_events(d > 0, np.where(d > 0, d, np.nan), region.transform,
                                 date_origin=np.datetime64(f"{year - 1}-12-31"))
    geojson = write_events_geojson(labels, events, region.transform,
                                   out / f"events_{args.month}.geojson")
    pred = bd.values > 0
    both = int((pred & in_month).sum())
    dice = 2 * both / max(int(pred.sum()) + int(in_month.sum()), 1)
    print(f"product: {store}")
    print(f"maps: {', '.join(str(t) for t in tifs)}; quicklook {png}; events {geojson} "
          f"({len(events)} events)")
    print(f"burned pixels {args.month}: predicted {int(pred.sum())}, truth {int(in_month.sum())}, "
          f"Dice {dice:.2f}" + ("  (random weights: not meaningful)" if random_weights else ""))
    print(f"done in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
