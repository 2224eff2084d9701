"""The ``firesmoke`` command line.

Each subcommand parses its arguments, calls the Python API and prints what it wrote.
Progress bars (tqdm) are shown on long work; library code only logs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from firesmoke._version import __version__
from firesmoke.errors import FiresmokeError

log = logging.getLogger("firesmoke.cli")

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
    from firesmoke.synthetic import demo_region, generate_scenario

    region = demo_region() if args.region == "demo" else args.region
    products = tuple(p.strip() for p in args.products.split(",") if p.strip())
    bar = _TqdmProgress(disable=args.quiet)
    try:
        scenario = generate_scenario(region, args.start, args.end, args.out, seed=args.seed,
                                     products=products, progress=bar)
    finally:
        bar.close()
    print(scenario.summary())
    return 0


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
    from firesmoke.demo import run_demo

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


class _Cluster:
    """Context manager: a distributed Client on ``--scheduler`` or on a new LocalCluster."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.cluster = None
        self.client = None

    def __enter__(self):
        import os

        from distributed import Client, LocalCluster

        if self.args.scheduler:
            self.client = Client(self.args.scheduler)
        else:
            n = self.args.workers or max(1, (os.cpu_count() or 2) // 2)
            self.cluster = LocalCluster(
                n_workers=n, threads_per_worker=self.args.threads_per_worker or 2,
                memory_limit=self.args.memory_limit, dashboard_address=None,
            )
            self.client = Client(self.cluster)
        log.info("dask client: %s", self.client)
        return self.client

    def __exit__(self, *exc):
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
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
    p.add_argument("--out", type=Path, required=True, help="output Zarr store")
    p.add_argument("--composite", choices=("reference", "min_zenith"), default="reference",
                   help="overpass compositing rule (default: %(default)s)")
    p.add_argument("--angles", action="store_true", help="also store solar and sensor zenith")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store")
    _add_cluster_args(p)


def _cmd_cube(args: argparse.Namespace) -> int:
    import json

    from firesmoke.cube import build_cube, write_cube

    cube = build_cube(args.region, args.start, args.end, viirs=args.viirs or None,
                      firms=args.firms or None, composite=args.composite, angles=args.angles)
    skipped = json.loads(cube.attrs.get("skipped_inputs", "[]"))
    bar = _TqdmProgress(disable=args.quiet)
    with _Cluster(args):
        try:
            write_cube(cube, args.out, mode="w" if args.overwrite else "auto", progress=bar)
        finally:
            bar.close()
    print(f"wrote {args.out} ({cube.sizes['time']} days x {cube.sizes['y']} x {cube.sizes['x']} px, "
          f"{cube.attrs['n_granules']} granules)")
    if skipped:
        print(f"skipped {len(skipped)} input(s):")
        for item in skipped:
            print(f"  {item['path']}: {item['reason']}")
    return 0


_COMMANDS["cube"] = _cmd_cube


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
    return parser


_ADDERS: list[Callable[[argparse._SubParsersAction], None]] = [_add_synthetic, _add_cube, _add_demo]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.command:
        parser.print_help()
        return 2
    try:
        return _COMMANDS[args.command](args)
    except FiresmokeError as exc:
        print(f"firesmoke {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # pragma: no cover - interactive
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
