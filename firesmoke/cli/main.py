"""The ``firesmoke`` command line.

Each subcommand parses its arguments, calls the Python API and prints what it wrote.
Progress bars (tqdm) are shown on long work; library code only logs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from firesmoke import bounds
from firesmoke._version import __version__
from firesmoke.burned.modes import COMPAT_MODES, MODES
from firesmoke.cli.fetch import add_fetch  # `firesmoke fetch` lives in cli/fetch.py
from firesmoke.errors import FiresmokeError
from firesmoke.errors import InputError as FiresmokeInputError
from firesmoke.inference import runtime
from firesmoke.inference.cluster import dask_client, visible_gpus
from firesmoke.paths import atomic_write_text, safe_join

log = logging.getLogger("firesmoke.cli.main")

_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


class _TqdmProgress:
    """A callback adapter: ``progress(done, total, what)`` -> one tqdm bar per label."""

    def __init__(self, disable: bool = False) -> None:
        self.disable = disable
        self._bars: dict[str, object] = {}

    def __call__(self, done: int, total: int, what: str = "") -> None:
        from tqdm.auto import tqdm

        bar = self._bars.get(what)
        if bar is None:
            bar = tqdm(total=total, desc=what or "working", unit="step", disable=self.disable,
                       leave=True, file=sys.stderr)
            self._bars[what] = bar
        bar.total = total
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()


# ---------------------------------------------------------------------------- synthetic
def _add_synthetic(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "synthetic",
        help="generate a synthetic scenario in the real file formats",
        description=(
            "Generate a synthetic fire scenario (VIIRS 750 m HDF4 granules, FIRMS CSV, "
            "MCD64A1 tiles; optionally VIIRS L1B swath netCDF pairs and Sentinel-2 chips "
            "and scenes) with its truth, deterministic for a seed."
        ),
    )
    p.add_argument("--region", default="demo",
                   help="R_<name>.json path, a shipped region name (PI, PT, ...), or 'demo' "
                        "(256 x 256 px, the default)")
    p.add_argument("--start", type=_date, default=dt.date(2020, 7, 1), help="first day (YYYY-MM-DD)")
    p.add_argument("--end", type=_date, default=dt.date(2020, 8, 31), help="last day (YYYY-MM-DD)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same bytes)")
    p.add_argument("--products", default="viirs,firms,mcd64",
                   help="comma-separated: viirs, firms, mcd64, swath, sentinel2 (default: %(default)s)")


def _cmd_synthetic(args: argparse.Namespace) -> int:
    from firesmoke.synthetic import (  # deferred: keeps --help light (xarray, pandas: ~0.8 s)
        check_scenario_size,
        demo_region,
        generate_scenario,
    )

    bounds.check_date_span(args.start, args.end, "end", max_days=bounds.MAX_SYNTHETIC_DAYS)
    region = demo_region() if args.region == "demo" else args.region
    check_scenario_size(region, args.start, args.end)
    products = tuple(p.strip() for p in args.products.split(",") if p.strip())
    bar = _TqdmProgress(disable=args.quiet)
    try:
        scenario = generate_scenario(region, args.start, args.end, args.out, seed=args.seed,
                                     products=products, progress=bar)
    finally:
        bar.close()
    print(scenario.summary())
    # R_<name>.json named as given (`--region demo` -> R_demo.json), for `firesmoke cube`
    given = str(args.region)
    name = given if given.replace("_", "").replace("-", "").isalnum() else scenario.region.name
    region_json = _write_region_json(scenario.region, args.out, name)
    print(f"region: {region_json} (firesmoke cube --region {region_json} ...)")
    return 0


def _write_region_json(region, folder: Path, name: str) -> Path:
    import json

    return atomic_write_text(safe_join(folder, f"R_{name}.json"),
                             json.dumps(region.to_dict(), indent=2) + "\n", root=folder)


_COMMANDS["synthetic"] = _cmd_synthetic


# ---------------------------------------------------------------------------- demo
def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run the main job on a generated scenario (what `make demo` runs)",
        description="Generate a synthetic scenario and run firesmoke on it; prints what was written.",
    )
    p.add_argument("--out", type=Path, default=Path("demo-output"), help="output folder")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--days", type=int, default=120, help="scenario length in days")


def _cmd_demo(args: argparse.Namespace) -> int:
    from firesmoke.cli.demo import run_demo  # deferred: keeps --help light (dask, xarray: ~0.9 s)

    bounds.check_integer(args.days, "days", 1, bounds.MAX_SYNTHETIC_DAYS)
    bar = _TqdmProgress(disable=args.quiet)
    try:
        report = run_demo(args.out, seed=args.seed, days=args.days, progress=bar)
    finally:
        bar.close()
    print(report)
    return 0


_COMMANDS["demo"] = _cmd_demo


# ---------------------------------------------------------------------------- cluster
def _add_cluster_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("cluster")
    g.add_argument("--scheduler", default=None,
                   help="address of an existing Dask scheduler (default: start a LocalCluster)")
    g.add_argument("--workers", type=int, default=None,
                   help="LocalCluster worker processes (default: one per 2 cores, at least 1)")
    g.add_argument("--threads-per-worker", type=int, default=None, help="LocalCluster threads per worker")
    g.add_argument("--memory-limit", default="auto", help="LocalCluster memory limit per worker")


def _check_cluster_args(args: argparse.Namespace) -> None:
    """The cluster flags, checked before any work (the bounds of campaign specs)."""
    if args.scheduler is not None:
        bounds.check_scheduler(args.scheduler, "scheduler")
    if args.workers is not None:
        bounds.check_integer(args.workers, "workers", 1, bounds.MAX_WORKERS)
    if args.threads_per_worker is not None:
        bounds.check_integer(args.threads_per_worker, "threads-per-worker", 1, bounds.MAX_THREADS)
    bounds.check_memory_limit(args.memory_limit, "memory-limit")


def _add_gpus_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gpus", type=_gpus_arg, default=None, metavar="N",
                   help="local cluster of one worker per GPU, each pinned to its GPU "
                        "(default: every visible GPU when CUDA is available; 0 = CPU workers)")


def _gpus_arg(value: str) -> int:
    n = int(value)
    if n < 0:
        raise argparse.ArgumentTypeError("--gpus must be >= 0")
    return n


class _Cluster:
    """Context manager: a distributed Client on ``--scheduler`` or on a new local cluster
    (:func:`firesmoke.inference.cluster.dask_client`: CPU workers, or one worker per GPU)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self._cm = None

    def __enter__(self):
        a = self.args
        self._cm = dask_client(address=a.scheduler, n_workers=a.workers,
                               threads_per_worker=a.threads_per_worker,
                               memory_limit=a.memory_limit, gpus=getattr(a, "gpus", 0))
        client = self._cm.__enter__()
        log.info("dask client: %s", client)
        return client

    def __exit__(self, *exc):
        if self._cm is not None:
            return self._cm.__exit__(*exc)
        return False


# ---------------------------------------------------------------------------- cube
def _add_cube(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "cube",
        help="build a daily datacube (red, nir, mir, frp) and write it to Zarr",
        description="Build the daily VIIRS + FIRMS datacube of a region and write it to a Zarr v3 "
                    "store (resumable; an existing store of the same region is appended to).",
    )
    p.add_argument("--region", required=True, help="R_<name>.json path or shipped region name")
    p.add_argument("--start", type=_date, required=True, help="first day (YYYY-MM-DD)")
    p.add_argument("--end", type=_date, required=True, help="last day (YYYY-MM-DD)")
    p.add_argument("--viirs", action="append", default=[], metavar="DIR",
                   help="folder of VIIRS granules (gridded HDF4 or L1B netCDF); repeatable")
    p.add_argument("--firms", nargs="+", default=[], metavar="CSV", help="FIRMS CSV files or folders")
    p.add_argument("--out", required=True,
                   help="output Zarr store: a path or an fsspec URL (s3://bucket/c.zarr, gs://...; "
                        "credentials from the environment, e.g. AWS_* variables)")
    p.add_argument("--zarr-format", type=int, choices=(2, 3), default=3,
                   help="Zarr format (default: %(default)s; 2 is readable by GDAL's Zarr driver)")
    p.add_argument("--composite", choices=("reference", "min_zenith"), default="reference",
                   help="overpass compositing rule (default: %(default)s)")
    p.add_argument("--angles", action="store_true", help="also store solar and sensor zenith")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing store (only one firesmoke wrote)")
    _add_cluster_args(p)


def _cmd_cube(args: argparse.Namespace) -> int:
    import json

    from firesmoke.cube.build import build_cube, write_cube  # deferred: keeps --help light (numba)
    from firesmoke.store import (  # deferred: keeps --help light (dask, xarray: ~0.8 s)
        Location,
        check_credentials,
        check_writable,
        report_location,
    )

    bounds.check_date_span(args.start, args.end, "end")
    _check_cluster_args(args)
    bounds.check_store_url(args.out, "out")
    check_credentials(args.out, "out")
    if args.overwrite:  # only a store firesmoke wrote is replaced (else resume/append)
        check_writable(Location.of(args.out), overwrite=True)

    cube = build_cube(args.region, args.start, args.end, viirs=args.viirs or None,
                      firms=args.firms or None, composite=args.composite, angles=args.angles)
    skipped = json.loads(cube.attrs.get("skipped_inputs", "[]"))
    bar = _TqdmProgress(disable=args.quiet)
    with _Cluster(args):
        try:
            write_cube(cube, args.out, mode="w" if args.overwrite else "auto", progress=bar,
                       zarr_format=args.zarr_format)
        finally:
            bar.close()
    print(f"report: {report_location(args.out)}")  # written by write_cube
    print(f"wrote {args.out} ({cube.sizes['time']} days x {cube.sizes['y']} x {cube.sizes['x']} px, "
          f"{cube.attrs['n_granules']} granules)")
    if skipped:
        print(f"skipped {len(skipped)} input(s):")
        for item in skipped:
            print(f"  {item['path']}: {item['reason']}")
    return 0


_COMMANDS["cube"] = _cmd_cube


# ---------------------------------------------------------------------------- train
def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model (banet, smoke-classifier, smoke-segmenter)",
                       description="Train BA-Net from Zarr cubes + MCD64A1 targets, or the smoke "
                                   "models from a chip dataset. Metrics go to CSV/JSON logs in --out.")
    tsub = p.add_subparsers(dest="model", metavar="MODEL", required=True)
    b = tsub.add_parser("banet", help="BA-Net from datacube stores and burned-fraction targets")
    b.add_argument("--cube", nargs="+", required=True, help="Zarr cube store(s) (firesmoke cube)")
    b.add_argument("--targets", nargs="+", required=True,
                   help="per cube: a target store, or MCD64A1 files/folder to build it from")
    b.add_argument("--out", type=Path, required=True, help="output folder (weights, logs, checkpoints)")
    b.add_argument("--val-period", default=None, help="hold out START..END (split by time)")
    b.add_argument("--val-cube", nargs="+", default=None, help="held-out cube(s) (split by region)")
    b.add_argument("--val-targets", nargs="+", default=None, help="targets of --val-cube")
    b.add_argument("--steps", type=int, default=None, help="training steps")
    b.add_argument("--batch-size", type=int, default=None)
    b.add_argument("--seq-len", type=int, default=None, help="days per window (multiple of 16)")
    b.add_argument("--patch", type=int, default=None, help="window size in px (multiple of 32)")
    b.add_argument("--lr-max", type=float, default=None, help="one-cycle maximum learning rate")
    b.add_argument("--seed", type=int, default=None)
    b.add_argument("--device", default=None, help="cuda, cpu (default: cuda when available)")
    b.add_argument("--resume", action="store_true", default=None, help="continue from the last checkpoint")
    b.add_argument("--recipe", choices=("firesmoke", "reference"), default=None,
                   help="firesmoke's sampler/augmentations (default) or the reference's")
    for name, helptext in (("smoke-classifier", "the ResNet-50 smoke classifier"),
                           ("smoke-segmenter", "the U-Net smoke segmenter")):
        q = tsub.add_parser(name, help=helptext + " from a chip dataset")
        q.add_argument("--data", type=Path, required=True,
                       help="chip dataset root (positive/, negative/, labels/)")
        q.add_argument("--out", type=Path, required=True, help="output folder")
        q.add_argument("--epochs", type=int, default=None)
        q.add_argument("--batch-size", type=int, default=None)
        q.add_argument("--recipe", choices=("reference", "reference-scratch", "adamw"),
                       default="reference",
                       help="reference SGD recipe of the paper (the classifier's needs --init), "
                            "the same from a random start, or AdamW + cosine")
        if name == "smoke-classifier":
            q.add_argument("--init", type=Path, default=None,
                           help="torchvision ResNet-50 ImageNet weights file (reference recipe)")
        q.add_argument("--width", type=int, default=64, help="base width (64 = published size)")
        q.add_argument("--seed", type=int, default=0)
        q.add_argument("--device", default=None)
        q.add_argument("--resume", action="store_true")
        q.add_argument("--half", action="store_true", help="save fp16 weights")


def _cmd_train(args: argparse.Namespace) -> int:
    for name, top in (("steps", 10**9), ("batch_size", bounds.MAX_BATCH_SIZE),
                      ("seq_len", 4096), ("patch", bounds.MAX_TILE), ("epochs", 10**6),
                      ("width", 1024)):
        value = getattr(args, name, None)
        if value is not None:
            bounds.check_integer(value, name.replace("_", "-"), 1, top)
    if getattr(args, "lr_max", None) is not None and not 0 < args.lr_max < 1e3:
        raise FiresmokeInputError(f"expected a learning rate in (0, 1000), got {args.lr_max}",
                                  field="lr-max")
    if args.model == "banet":
        from firesmoke.train.banet import train_banet_stores  # deferred: torch (~1.5 s)

        given = {k: getattr(args, k) for k in ("steps", "batch_size", "seq_len", "patch",
                                                "lr_max", "seed", "device", "resume", "recipe")}
        result = train_banet_stores(
            args.cube, args.targets, args.out, val_cube=args.val_cube,
            val_targets=args.val_targets, val_period=args.val_period,
            progress=not args.quiet, **{k: v for k, v in given.items() if v is not None})
    else:
        from firesmoke.train import smoke as trainers  # deferred: torch (~1.5 s)

        fn = (trainers.train_smoke_classifier if args.model == "smoke-classifier"
              else trainers.train_smoke_segmenter)
        extra = {"init": args.init} if args.model == "smoke-classifier" else {}
        result = fn(args.data, args.out, epochs=args.epochs, batch_size=args.batch_size,
                    recipe=args.recipe, width=args.width, seed=args.seed, device=args.device,
                    progress=not args.quiet, resume=args.resume, half=args.half, **extra)
    print(f"weights: {result.weights} (sha256 {result.sha256})")
    print(f"logs: {result.out}")
    return 0


_COMMANDS["train"] = _cmd_train


# ---------------------------------------------------------------------------- predict
def _add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="burned-area or smoke products",
                       description="Run the models and write georeferenced products.")
    psub = p.add_subparsers(dest="product", metavar="PRODUCT", required=True)
    b = psub.add_parser("burned", help="BA-Net burned area and burn dates from a cube")
    b.add_argument("--cube", required=True,
                   help="Zarr cube store (firesmoke cube): a path or an fsspec URL")
    b.add_argument("--start", type=_date, required=True, help="first day (nrt: the run date)")
    b.add_argument("--end", type=_date, default=None, help="last day")
    b.add_argument("--mode", choices=MODES, default="monthly",
                   help="monthly: one product per calendar month; range: one product over "
                        "--start..--end; nrt: the 64 days ending on --start (default: %(default)s)")
    b.add_argument("--weights", nargs="+", default=["banet_synthetic"],
                   help="weights names/paths; several = ensemble (default: %(default)s, "
                        "trained on SYNTHETIC data only)")
    b.add_argument("--out", required=True,
                   help="output Zarr store (Zarr v2, readable by GDAL): a path or an fsspec URL")
    b.add_argument("--threshold", type=float, default=None,
                   help="confidence above which a pixel is burned (default: the weights' "
                        "calibrated threshold, else 0.5)")
    b.add_argument("--blend", choices=("mean", "centre"), default="mean",
                   help="tile blending (mean = reference)")
    b.add_argument("--batch-size", type=int, default=None,
                   help="tiles per forward pass (default: 1 on CPU, 4 on a GPU)")
    b.add_argument("--device", default=None,
                   help="torch device: cpu, cuda, cuda:1, mps (default: cuda if available, else cpu)")
    b.add_argument("--compat", choices=COMPAT_MODES, default=None,
                   help="reproduce the reference software's numbers (quantised inputs, its tile "
                        "plan, float16 blending, its range/NRT rules; docs/compatibility.md)")
    b.add_argument("--allow-partial", action="store_true",
                   help="accept windows the cube does not fully cover (the product records the "
                        "observed days per period) instead of stopping with an error")
    b.add_argument("--geotiff", action="store_true",
                   help="also export each period as COGs (confidence: nodata NaN; burn date: "
                        "-1 unobserved, 0 not burned) + PNG, beside a local --out")
    b.add_argument("--events", action="store_true", help="also write fire events (GeoJSON)")
    b.add_argument("--overwrite", action="store_true",
                   help="replace an existing --out (only a store firesmoke wrote, never --cube) "
                        "and existing --geotiff/--events files")
    _add_cluster_args(b)
    _add_gpus_arg(b)
    s = psub.add_parser("smoke", help="smoke on Sentinel-2 chips or scenes")
    s.add_argument("--chips", default=None, help="chip dataset root or folder of chip GeoTIFFs")
    s.add_argument("--scene", nargs="+", default=None, help="STAC item JSON files or GeoTIFFs")
    s.add_argument("--sites", default=None, help="CSV of emitter sites (site_id, lon, lat)")
    s.add_argument("--out", type=Path, required=True, help="output folder")
    s.add_argument("--classifier", default=None, help="classifier weights (default: shipped)")
    s.add_argument("--segmenter", default=None, help="segmenter weights (default: shipped)")
    s.add_argument("--device", default=None,
                   help="torch device: cpu, cuda, cuda:1, mps (default: cuda if available, else cpu)")


def _cmd_predict(args: argparse.Namespace) -> int:
    if args.product == "smoke":
        import firesmoke.smoke as smoke  # deferred: keeps --help light (rasterio, dask: ~1.2 s)

        if not args.chips and not args.scene:
            raise FiresmokeInputError("give --chips and/or --scene", field="chips")
        if args.chips:
            kw = {k: v for k, v in (("classifier", args.classifier), ("segmenter", args.segmenter)) if v}
            df = smoke.predict_smoke_chips(args.chips, args.out / "chips.csv", device=args.device, **kw)
            print(f"chips: {len(df)} classified, {int(df['smoke'].sum())} with smoke -> {args.out / 'chips.csv'}")
        if args.scene:
            kw = {"segmenter": args.segmenter} if args.segmenter else {}
            res = smoke.predict_smoke_scene(args.scene, args.out, sites=args.sites, device=args.device, **kw)
            for m in res["masks"]:
                print(f"mask: {m}")
            if res.get("plumes"):
                print(f"plumes per site: {res['plumes']}")
        return 0

    from firesmoke.burned.outputs import (  # deferred: keeps --help light (dask, xarray)
        export_burned,
        export_files,
    )
    from firesmoke.burned.predict import (  # deferred: keeps --help light (xarray, pandas)
        period_labels,
        predict_burned,
        unobserved_periods,
    )
    from firesmoke.cube.build import open_cube  # deferred: keeps --help light (numba, dask)
    from firesmoke.inference.model import (  # deferred: keeps --help light (numpy)
        TileModel,
        resolve_device,
    )
    from firesmoke.store import (  # deferred: keeps --help light (dask, xarray: ~0.8 s)
        Location,
        check_credentials,
        check_writable,
        open_store,
        write_product,
    )

    # every value first: nothing is opened, loaded or started for a run that cannot finish
    if args.mode != "nrt" and args.end is not None:
        bounds.check_date_span(args.start, args.end, "end")
    else:
        bounds.check_date_span(args.start, args.start, "start")
    bounds.check_threshold(args.threshold, "threshold")
    if args.batch_size is not None:
        bounds.check_integer(args.batch_size, "batch-size", 1, bounds.MAX_BATCH_SIZE)
    _check_cluster_args(args)
    bounds.check_store_url(args.cube, "cube")
    bounds.check_store_url(args.out, "out")
    check_credentials(args.out, "out")
    check_writable(args.out, overwrite=args.overwrite, reading=args.cube)
    device = resolve_device(args.device, check_available=not args.scheduler)
    if args.gpus is None and device.startswith("cpu"):
        args.gpus = 0  # default: every visible GPU only when running on CUDA
    cube = open_cube(args.cube)
    model = TileModel.from_weights(args.weights)  # BA-Net: prepare_for_inference by default
    out = Location.of(args.out)
    if (args.geotiff or args.events) and not out.local:
        raise FiresmokeInputError("--geotiff/--events write beside a local --out", field="out")
    if args.geotiff or args.events:  # the names are known before any work: refuse early
        taken = [f for f in export_files(
            period_labels(args.mode, args.start, args.end, args.compat), out.path.parent,
            out.path.stem, geotiff=args.geotiff, quicklook=args.geotiff, events=args.events)
            if os.path.lexists(f)]
        if taken and not args.overwrite:
            raise FiresmokeInputError(
                f"{len(taken)} export file(s) exist, e.g. {taken[0]}; give --overwrite to "
                "replace them", field="geotiff")
    with _Cluster(args) as client:
        product = predict_burned(cube, model, args.start, args.end, mode=args.mode,
                                 threshold=args.threshold, blend=args.blend,
                                 batch_size=args.batch_size, device=device,
                                 compat=args.compat, allow_partial=args.allow_partial)
        # computed on the workers (a distributed progress bar), streamed to the store by them:
        # the product never passes through this process as a whole
        product = client.persist(product)
        if not args.quiet:
            from distributed import progress

            progress(product)
            print(file=sys.stderr)
        write_product(product, out, overwrite=args.overwrite)
        empty = unobserved_periods(product, warn=False)  # cheap: the product is persisted
    print(f"wrote {out}: {product.sizes['period']} period(s) of confidence, burn_date and "
          "valid_days")
    if empty:
        print(f"firesmoke predict: warning: no observation in period(s) {', '.join(empty)}: "
              "every pixel is nodata (confidence NaN, burn_date -1)", file=sys.stderr)
    if args.geotiff or args.events:
        product = open_store(out)  # the product's own CRS (CF grid mapping)
        files = export_burned(product, out.path.parent, out.path.stem, geotiff=args.geotiff,
                              quicklook=args.geotiff, events=args.events)
        print("".join(f"  {f}\n" for f in files), end="")
    return 0


_COMMANDS["predict"] = _cmd_predict


# ---------------------------------------------------------------------------- campaign
def _add_campaign(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("campaign", help="large-area reprocessing from a TOML spec",
                       description="Plan and run a reprocessing campaign (regions x periods x "
                                   "products) on a Dask cluster; reruns resume where it stopped. "
                                   "See examples/campaign.toml.")
    csub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    r = csub.add_parser("run", help="run (or continue) a campaign")
    r.add_argument("spec", type=Path, help="campaign TOML file")
    r.add_argument("--overwrite", action="store_true", help="start again from scratch")
    r.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    q = csub.add_parser("resume", help="continue an interrupted campaign")
    q.add_argument("spec", type=Path, help="campaign TOML file")
    for c in (r, q):
        c.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="address of a running Dask scheduler (tcp://host:8786); overrides "
                            "the spec's [cluster] (start the workers with `dask worker`)")
        _add_gpus_arg(c)


def _cmd_campaign(args: argparse.Namespace) -> int:
    from firesmoke.campaign import run as campaign  # deferred: keeps --help light (dask)

    if args.action == "run" and args.dry_run:
        print(campaign.plan_campaign(campaign.load_spec(args.spec)).summary())
        return 0
    import contextlib

    spec = campaign.load_spec(args.spec)
    if args.scheduler:
        spec = campaign.with_scheduler(spec, args.scheduler)
    gpus = args.gpus
    if gpus is None:  # every visible GPU, unless the spec names a scheduler or asks for CPU
        wants_cpu = any(str(p.device or "auto").startswith("cpu") for p in spec.products)
        gpus = 0 if (spec.cluster.address or wants_cpu) else visible_gpus()
    bar = _TqdmProgress(disable=args.quiet)
    try:
        with contextlib.ExitStack() as stack:
            client = None
            if gpus and not spec.cluster.address:  # else the spec's [cluster] section
                client = stack.enter_context(dask_client(gpus=gpus))
            if args.action == "run":
                report = campaign.run_campaign(spec, client=client, progress=bar,
                                               overwrite=args.overwrite)
            else:
                report = campaign.resume_campaign(spec, client=client, progress=bar)
    finally:
        bar.close()
    print(report.summary())
    return 0 if report.ok else 1


_COMMANDS["campaign"] = _cmd_campaign


# ---------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="firesmoke",
        description="Fire and smoke monitoring from satellites: burned area (BA-Net) from "
                    "VIIRS + FIRMS, industrial smoke plumes from Sentinel-2.",
    )
    parser.add_argument("--version", action="version", version=f"firesmoke {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more log output (-v info, -vv debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                        help="more log output (-v info, -vv debug)")
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                        help="no progress bars")
    original = sub.add_parser

    def add_parser(name, **kwargs):  # every subcommand also takes -v/-q after its name
        kwargs.setdefault("parents", [common])
        return original(name, **kwargs)

    sub.add_parser = add_parser  # type: ignore[method-assign]
    for add in _ADDERS:
        add(sub)
    add_fetch(sub, _COMMANDS)
    _common_on_leaves(parser, common)
    return parser


def _common_on_leaves(parser: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    """Give nested subcommands (``predict burned``, ``campaign run``, ...) ``-v``/``-q`` too."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                if "--verbose" not in child._option_string_actions:
                    for a in common._actions:
                        if a.option_strings:
                            child._add_action(a)
                _common_on_leaves(child, common)


_ADDERS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_synthetic, _add_cube, _add_train, _add_predict, _add_campaign, _add_demo,
]


def _option_flags(parser: argparse.ArgumentParser,
                  args: argparse.Namespace | None = None) -> dict[str, str]:
    """``dest -> --flag`` of the optional arguments of the subcommand ``args`` ran (its
    parser and the parsers above it); without ``args``, of every subcommand (the first
    that names a dest wins)."""
    out: dict[str, str] = {}
    todo = [parser]
    while todo:
        p = todo.pop(0)
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                chosen = getattr(args, action.dest, None) if args is not None else None
                if chosen in action.choices:
                    todo.append(action.choices[chosen])
                elif args is None:
                    todo.extend(action.choices.values())
            elif action.option_strings and action.dest not in out:
                long = [o for o in action.option_strings if o.startswith("--")]
                out[action.dest] = (long or action.option_strings)[0]
    return out


def cli_message(exc: BaseException, flags: dict[str, str]) -> str:
    """An error's message in the CLI's words: Python parameters named by their flags.

    ``field 'allow_partial':`` becomes ``--allow-partial:``, ``allow_partial=True`` becomes
    ``--allow-partial`` and ``threshold=2`` becomes ``--threshold 2``, for every parameter
    that has a flag (``flags``: :func:`_option_flags`); other text is kept.
    """
    text = str(exc)
    field = getattr(exc, "field", None)
    if field in flags:
        text = text.replace(f"field {field!r}:", f"{flags[field]}:", 1)

    def flag(m: re.Match[str]) -> str:
        name, value = m.group(1), m.group(2)
        if name not in flags:
            return m.group(0)
        return flags[name] if value == "True" else f"{flags[name]} {value}"

    return re.sub(r"(?<![\w.-])([a-z][a-z0-9_]*)=([^\s,;)]+)", flag, text)


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:  # run as the program: allocator settings before any thread starts
        runtime.reexec_with_worker_environment()
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.verbose < 1:  # distributed logs INFO lines (cluster start, ...) unless asked
        import dask

        dask.config.set({"logging.distributed": "warning"})
        logging.getLogger("distributed").setLevel(logging.WARNING)
        import warnings

        # a LocalCluster's HTTP server moving off a busy port is not news
        warnings.filterwarnings("ignore", message=r"Port \d+ is already in use")
    if not args.command:
        parser.print_help()
        return 2
    try:
        return _COMMANDS[args.command](args)
    except FiresmokeError as exc:
        if args.verbose:
            import traceback

            traceback.print_exc()
        msg = cli_message(exc, _option_flags(parser, args))
        print(f"firesmoke {args.command}: error: {msg}", file=sys.stderr)
        # a value the user can fix: 2 (as argparse); a failure while working: 1
        return 2 if isinstance(exc, FiresmokeInputError) else 1
    except KeyboardInterrupt:  # pragma: no cover - interactive
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # anything else: one line too (the traceback with -v)
        if args.verbose:
            raise
        first = str(exc).splitlines()[0] if str(exc) else ""
        print(f"firesmoke {args.command}: error: {type(exc).__name__}: {first} "
              "(run with -v for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
