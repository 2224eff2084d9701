"""Industrial smoke plumes on a Sentinel-2 scene: mask, GeoTIFF, per-site plume areas.

Steps (every output goes under ``--out``):

1. generate synthetic Sentinel-2 L1C scenes (13 single-band COGs + STAC items) over a few
   emitter sites, some of them with a plume;
2. segment the scenes with the smoke U-Net over the tiling engine (256 px tiles, centre
   blending, lazy over dask) using the shipped ``smoke_segmenter_synthetic`` weights
   (trained on SYNTHETIC chips only), or a randomly initialised U-Net with a printed note
   when they are missing;
3. write the masks as GeoTIFFs in the scene CRS (UTM), a quicklook PNG, the plume
   presence/area per site and date as CSV, and compare with the generator's truth.

Run::

    python examples/smoke_scene.py --out /tmp/fs-smoke
    python examples/smoke_scene.py --out /tmp/fs-smoke-tiny --tiny

``--tiny`` (or ``FIRESMOKE_EXAMPLES_TINY=1``): one 256 x 256 px scene.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--seed", type=int, default=0, help="scene generator seed")
    p.add_argument("--weights", default="smoke_segmenter_synthetic",
                   help="U-Net weights name or path (default: the shipped %(default)s)")
    p.add_argument("--tiny", action="store_true",
                   default=os.environ.get("FIRESMOKE_EXAMPLES_TINY", "") not in ("", "0"),
                   help="one 256 x 256 px scene for a quick check")
    return p.parse_args(argv)


def segmenter(weights: str, out: Path) -> tuple[str, bool]:
    """The requested weights, or random U-Net weights saved beside the outputs."""
    import torch

    from firesmoke.errors import WeightsError
    from firesmoke.models.unet import SmokeUNet
    from firesmoke.models.weights import find_weights, save_weights

    try:
        return str(find_weights(weights)), False
    except WeightsError as exc:
        print(f"NOTE: weights {weights!r} not available ({exc.reason[:100]}...).\n"
              "      Using a RANDOMLY INITIALISED U-Net: the masks show the pipeline working,\n"
              "      not smoke. Train weights with `firesmoke train smoke-segmenter`.")
    torch.manual_seed(0)
    path = out / "smoke_unet_random.pt"
    save_weights(SmokeUNet(in_ch=12, base=8).eval(), path,
                 {"training_data": "none (random initialisation)"})
    return str(path), True


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from firesmoke.smoke import plume_timeseries, segment_scene
    from firesmoke.store import export_geotiff, quicklook_png
    from firesmoke.synthetic.s2_scenes import generate_scenes

    t0 = time.perf_counter()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    n_scenes, size = (1, 256) if args.tiny else (2, 1024)
    scenes = generate_scenes(out / "scenes", n_scenes=n_scenes, size=size, n_sites=3,
                             seed=args.seed)
    print(f"scenes: {len(scenes.item_paths)} x {size} x {size} px (EPSG:{scenes.epsg}) "
          f"in {out / 'scenes'}, STAC catalog {scenes.catalog_path}")

    weights, random_weights = segmenter(args.weights, out)
    mask = segment_scene(scenes.item_paths, segmenter=weights, chunksize=512).compute()
    written = []
    for t in range(mask.sizes["time"]):
        day = np.datetime_as_string(mask["time"].values[t], unit="D")
        m = mask.isel(time=t)
        written.append(export_geotiff(m, out / f"smoke_mask_{day}.tif", nodata=None))
        truth = scenes.masks[t]
        pred = m.values > 0
        inter, union = int((pred & truth).sum()), int((pred | truth).sum())
        print(f"{day}: smoke pixels predicted {int(pred.sum())}, truth {int(truth.sum())}, "
              f"IoU {inter / max(union, 1):.2f}"
              + ("  (random weights: not meaningful)" if random_weights else ""))
    last = mask.isel(time=-1)
    png = quicklook_png(
        [("smoke mask (last date)", last, {"cmap": "Greys", "vmin": 0, "vmax": 1,
                                           "cbar_label": "smoke"}),
         ("truth (last date)", last.copy(data=scenes.masks[-1].astype(np.uint8)),
          {"cmap": "Greys", "vmin": 0, "vmax": 1, "cbar_label": "smoke"})],
        out / "smoke_quicklook.png",
        title="firesmoke smoke U-Net on a synthetic Sentinel-2 scene"
              + (" (RANDOM weights)" if random_weights else ""),
    )
    table = plume_timeseries(mask, scenes.sites)
    table.to_csv(out / "plumes.csv", index=False)
    print(table.to_string(index=False))
    print(f"masks: {', '.join(str(p) for p in written)}; quicklook {png}; plumes "
          f"{out / 'plumes.csv'}")
    print(f"done in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
