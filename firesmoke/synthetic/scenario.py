"""Synthetic fire scenarios written in the real file formats.

:func:`generate_scenario` simulates a burn truth over a region and a period and writes
what the satellites would have delivered::

    out_dir/
        viirs750/    NPP_VMAES_L1.*.<Layer>.hdf   gridded VIIRS 750 m granules (7 layers each)
        firms/       SUOMI_VIIRS_C2_<region>_24h_<YYYYMMDD>.csv   active fires, one file per day
        mcd64a1/     MCD64A1.AYYYYDDD.hHHvVV.006.<stamp>.hdf      monthly burned-area tiles
        scenario.json                                  manifest, written last

Everything is deterministic for a seed: the same arguments give byte-identical files.
The manifest is removed when a run starts and written only when every file is in
place, so its presence means the folder is complete. Files of an earlier run in the
product folders that the new run does not produce are removed (only names of the three
products are touched).

:func:`simulate_truth` gives the burn truth as an ``xarray.Dataset`` without writing
anything; :class:`Scenario` carries the truth and the file lists.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from firesmoke import bounds
from firesmoke._version import __version__
from firesmoke.dates import as_date
from firesmoke.errors import InputError
from firesmoke.grid import Region
from firesmoke.synthetic.fire import LAND_COVER_NAMES, BurnTruth, simulate_burn_truth
from firesmoke.synthetic.firms import simulate_detections, write_firms_day
from firesmoke.synthetic.mcd64 import months_of, region_tiles, write_mcd64_month
from firesmoke.synthetic.orbit import GRANULE_SECONDS, overpass_schedule
from firesmoke.synthetic.surface import simulate_overpass
from firesmoke.synthetic.viirs_gridded import order_id, trim_mask, write_viirs_granule

__all__ = [
    "PRODUCTS",
    "Scenario",
    "demo_region",
    "generate_scenario",
    "simulate_truth",
    "truth_dataset",
]

log = logging.getLogger(__name__)

#: Products a scenario can write, and their sub-folders.
PRODUCTS: dict[str, str] = {
    "viirs": "viirs750",
    "firms": "firms",
    "mcd64": "mcd64a1",
    "swath": "viirs_l1b",
    "sentinel2": "sentinel2",
}
MANIFEST = "scenario.json"
_PATTERNS = {
    "viirs": re.compile(r"^NPP_VMAES_L1\.A\d{7}\.\d{4}\.001\.\d{13}\.psrpgscs_\d{12}\.\w+\.hdf$"),
    "firms": re.compile(r"^SUOMI_VIIRS_C2_[A-Za-z0-9_-]+_24h_\d{8}\.csv$"),
    "mcd64": re.compile(r"^MCD64A1\.A\d{7}\.h\d{2}v\d{2}\.006\.\d{13}\.hdf$"),
    "swath": re.compile(r"^V[NJ][P12]0[23]MOD\.A\d{7}\.\d{4}\.\d{3}\.\d{13}\.nc$"),
    "sentinel2": re.compile(r"^$"),  # sub-folders, managed by the Sentinel-2 writer
}
#: Sentinel-2 content written by the ``sentinel2`` product (chips for the smoke models,
#: plus one scene with STAC items); independent of the fire scenario's region.
SENTINEL2_CHIPS = (40, 40)
SENTINEL2_SCENE_SIZE = 512

Progress = Callable[[int, int], Any] | Any


def demo_region() -> Region:
    """A small default region: 256 x 256 px at 0.01 deg on the Portugal-Spain border.

    Bbox ``[-8.0, 40.2, -5.44, 42.76]`` (Beira interior, Tras-os-Montes, western
    Castilla y Leon, southern Galicia): fire-prone shrubland and forest.
    """
    return Region("DEMO", (-8.0, 40.2, -5.44, 42.76), 0.01)


@dataclass
class Scenario:
    """A generated scenario: where, when, which files, and the truth behind them.

    Attributes
    ----------
    region, start, end, seed
        The arguments (``start``/``end`` inclusive UTC days).
    out_dir
        The output folder.
    files
        Written files by product (``"viirs"``, ``"firms"``, ``"mcd64"``), sorted.
    truth
        The burn truth on the region grid (see :func:`truth_dataset`).
    manifest
        Path of ``scenario.json``.
    """

    region: Region
    start: dt.date
    end: dt.date
    seed: int
    out_dir: Path
    files: dict[str, list[Path]] = field(default_factory=dict)
    truth: xr.Dataset | None = None
    manifest: Path | None = None
    stats: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """A few lines saying what was written (for the command line)."""
        lines = [
            f"synthetic scenario {self.region.name} {self.start}..{self.end} (seed {self.seed}) in {self.out_dir}"
        ]
        if "viirs" in self.files:
            n = len(self.files["viirs"])
            lines.append(
                f"  VIIRS 750 m gridded: {n} files ({n // 7} granules) in {PRODUCTS['viirs']}/"
            )
        if "firms" in self.files:
            lines.append(
                f"  FIRMS VIIRS 375 m: {len(self.files['firms'])} daily CSV files, "
                f"{self.stats.get('detections', 0)} detections in {PRODUCTS['firms']}/"
            )
        if "mcd64" in self.files:
            lines.append(
                f"  MCD64A1: {len(self.files['mcd64'])} monthly tiles in {PRODUCTS['mcd64']}/"
            )
        if "swath" in self.files:
            lines.append(
                f"  VIIRS L1B swath: {len(self.files['swath']) // 2} VNP02MOD/VNP03MOD pairs "
                f"in {PRODUCTS['swath']}/"
            )
        if "sentinel2" in self.files:
            lines.append(
                f"  Sentinel-2: {len(self.files['sentinel2'])} files (chips, labels, COG scene, "
                f"STAC items) in {PRODUCTS['sentinel2']}/"
            )
        if self.stats:
            px = self.stats.get("pixels", 0)
            burned = self.stats.get("burned_pixels", 0)
            lines.append(
                f"  truth: {self.stats.get('events', 0)} fire events, {burned} burned pixels "
                f"({100.0 * burned / max(px, 1):.2f} % of the region)"
            )
        if self.manifest is not None:
            lines.append(f"  manifest: {self.manifest}")
        return "\n".join(lines)

    @property
    def viirs_dir(self) -> Path:
        return self.out_dir / PRODUCTS["viirs"]

    @property
    def firms_dir(self) -> Path:
        return self.out_dir / PRODUCTS["firms"]

    @property
    def mcd64_dir(self) -> Path:
        return self.out_dir / PRODUCTS["mcd64"]

    @property
    def n_days(self) -> int:
        return (self.end - self.start).days + 1


# --------------------------------------------------------------------------- arguments
def _as_date(value: Any, what: str) -> dt.date:
    try:
        return as_date(value, what)
    except InputError as exc:
        raise InputError(f"cannot read {value!r} as a date (use YYYY-MM-DD)", field=what) from exc


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InputError(
            f"seed must be an integer, got {type(seed).__name__} {seed!r}", field="seed"
        )
    if not 0 <= int(seed) < 2**63:
        raise InputError(
            f"seed must be a non-negative integer below 2**63, got {seed}", field="seed"
        )
    return int(seed)


def _check_region(region: Any) -> Region:
    if isinstance(region, Region):
        return region
    if not isinstance(region, (str, os.PathLike)):
        raise InputError(
            f"region must be a Region, a shipped region name or an R_*.json path, got {type(region).__name__}",
            field="region",
        )
    return Region.resolve(region)


def _check_period(start: Any, end: Any) -> tuple[dt.date, dt.date]:
    s = _as_date(start, "start")
    e = _as_date(end, "end")
    if e < s:
        raise InputError(f"end ({e}) is before start ({s})", field="end")
    bounds.check_date_span(s, e, "end", max_days=bounds.MAX_SYNTHETIC_DAYS)
    return s, e


#: Peak memory of a scenario per region pixel (bytes): measured with tracemalloc on
#: 128 and 256 px squares (about 700 B/px above a fixed 50 MB), rounded up.
BYTES_PER_PIXEL = 1024


def _available_memory() -> int:
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:  # pragma: no cover - psutil comes with distributed
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def check_scenario_size(region: Any, start: Any, end: Any) -> None:
    """Refuse, before anything is simulated, a scenario that cannot fit in memory.

    The truth of a scenario is held whole (region x a few layers), so its size is
    bounded by the memory available now, not by the 1e9 px region limit alone.
    """
    reg = _check_region(region)
    _check_period(start, end)
    n_px = int(reg.shape[0]) * int(reg.shape[1])
    need = n_px * BYTES_PER_PIXEL
    have = _available_memory()
    if need > have:
        raise InputError(
            f"a synthetic scenario of {reg.shape[0]:,} x {reg.shape[1]:,} px needs about "
            f"{need / 2**30:,.1f} GiB of memory, {have / 2**30:,.1f} GiB are available; "
            "use a smaller region or a coarser pixel_size", field="region")


def _check_products(products: Any) -> tuple[str, ...]:
    if isinstance(products, str):
        products = (products,)
    try:
        items = tuple(str(p) for p in products)
    except TypeError as exc:
        raise InputError(
            f"products must be a list of names, got {products!r}", field="products"
        ) from exc
    unknown = [p for p in items if p not in PRODUCTS]
    if unknown:
        raise InputError(
            f"unknown product(s) {', '.join(map(repr, unknown))}; choose from {', '.join(PRODUCTS)}",
            field="products",
        )
    if not items:
        raise InputError(
            f"products must name at least one of {', '.join(PRODUCTS)}", field="products"
        )
    return tuple(p for p in PRODUCTS if p in items)


def _prepare_out_dir(out_dir: Any) -> Path:
    try:
        out = Path(os.fspath(out_dir))
    except TypeError as exc:
        raise InputError(f"out_dir must be a path, got {out_dir!r}", field="out_dir") from exc
    if out.exists() and not out.is_dir():
        raise InputError("output path exists and is not a folder", path=out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".firesmoke-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise InputError(
            f"cannot write to the output folder ({exc.strerror or exc})", path=out
        ) from exc
    return out


# --------------------------------------------------------------------------- truth
def truth_dataset(truth: BurnTruth) -> xr.Dataset:
    """The burn truth as an ``xarray.Dataset`` on the region grid (CRS attached).

    Variables: ``burn_date`` (datetime64[ns], NaT = never burned), ``burn_doy`` (int16
    day of year, 0 = never), ``burned`` (bool), ``burn_day_index`` (int16 days since the
    start, -1 = never), ``land_cover`` (uint8, CF flags), ``fire_event`` (int16 event id,
    0 = none), ``severity`` (float32 0..1).
    """
    region = truth.region
    ds = region.coords_dataset()
    bd = truth.burn_day
    burned = bd >= 0
    date = np.where(
        burned, truth.start + np.maximum(bd, 0).astype("timedelta64[D]"), np.datetime64("NaT")
    )
    date = date.astype("datetime64[ns]")
    years = date.astype("datetime64[Y]")
    doy = np.where(burned, (date.astype("datetime64[D]") - years).astype(np.int64) + 1, 0).astype(
        np.int16
    )
    dims = ("y", "x")
    ds["burn_date"] = (dims, date, {"long_name": "date of burn (UTC day)"})
    ds["burn_doy"] = (
        dims,
        doy,
        {"long_name": "day of year of burn", "units": "1", "comment": "0 = never burned"},
    )
    ds["burned"] = (dims, burned, {"long_name": "burned during the scenario"})
    ds["burn_day_index"] = (
        dims,
        bd.astype(np.int16),
        {
            "long_name": "day index of burn since the scenario start",
            "units": "days",
            "comment": "-1 = never burned",
        },
    )
    codes = sorted(LAND_COVER_NAMES)
    ds["land_cover"] = (
        dims,
        truth.land_cover.astype(np.uint8),
        {
            "long_name": "land cover",
            "flag_values": np.array(codes, dtype=np.uint8),
            "flag_meanings": " ".join(LAND_COVER_NAMES[c] for c in codes),
        },
    )
    ds["fire_event"] = (
        dims,
        truth.fire_event.astype(np.int16),
        {"long_name": "fire event id", "comment": "0 = none"},
    )
    ds["severity"] = (
        dims,
        truth.severity.astype(np.float32),
        {"long_name": "burn severity", "units": "1"},
    )
    for v in ds.data_vars:
        ds[v].encoding["grid_mapping"] = "spatial_ref"
    end = truth.start + np.timedelta64(truth.n_days - 1, "D")
    ds.attrs.update(
        {
            "title": "firesmoke synthetic burn truth",
            "seed": truth.seed,
            "start": str(truth.start),
            "end": str(end),
            "n_events": len(truth.events),
            "firesmoke_version": __version__,
        }
    )
    return ds


def _simulate(region: Region, start: dt.date, end: dt.date, seed: int) -> BurnTruth:
    n_days = (end - start).days + 1
    return simulate_burn_truth(region, np.datetime64(start.isoformat(), "D"), n_days, seed)


def simulate_truth(
    region: Region | str | os.PathLike[str], start: Any, end: Any, seed: int = 0
) -> xr.Dataset:
    """Burn truth of a scenario as an ``xarray.Dataset``; writes nothing.

    The same arguments give the same truth as :func:`generate_scenario`.

    Raises
    ------
    InputError
        Unknown region, unreadable dates, ``end`` before ``start``, bad seed.
    """
    reg = _check_region(region)
    s, e = _check_period(start, end)
    sd = _check_seed(seed)
    return truth_dataset(_simulate(reg, s, e, sd))


# --------------------------------------------------------------------------- writing
def _tick(progress: Progress | None, done: int, total: int) -> None:
    if progress is None:
        return
    if hasattr(progress, "update"):
        if getattr(progress, "total", 0) is None:
            progress.total = total
        progress.update(1)
    elif callable(progress):
        progress(done, total)


def _write_viirs_day(truth: BurnTruth, day: int, out: Path, order: str) -> list[Path]:
    paths: list[Path] = []
    for k, ov in enumerate(overpass_schedule(truth.region, truth.date(day))):
        f = simulate_overpass(truth, day, k)
        granules = np.unique(f["granule"][f["valid"]])
        for g in granules:
            g_ms = int(g) * GRANULE_SECONDS * 1000
            inside = f["granule"] == g
            fields = {
                name: np.where(inside, f[name], np.nan)
                for name in ("M05", "M07", "M10", "M12", "M15", "solar_zenith", "sensor_zenith")
            }
            trim = trim_mask(f["time_ms"], g_ms, inside)
            paths += write_viirs_granule(
                out,
                truth.region,
                fields,
                ov,
                g_ms,
                order=order,
                seed=truth.seed,
                trim=trim,
                staging=out / ".staging",
            )
    return paths


def _write_swath_day(truth: BurnTruth, day: int, out: Path) -> list[Path]:
    """L1B swath pairs (VNP02MOD + VNP03MOD) of a day's overpasses, from the same fields."""
    from firesmoke.synthetic.swath_scenario import (  # deferred: dask (~0.3 s), swath only
        generate_swath_granules,
    )

    fields = []
    for k, _ov in enumerate(overpass_schedule(truth.region, truth.date(day))):
        f = simulate_overpass(truth, day, k)
        if not np.any(f["valid"]):
            continue
        when = pd.Timestamp(f["time"]).to_pydatetime()
        keys = ("M05", "M07", "M10", "M12", "M15", "solar_zenith")
        fields.append((when, {k: f[k] for k in keys}))
    if not fields:
        return []
    pairs = generate_swath_granules(truth.region, fields, out, seed=truth.seed * 1000 + day,
                                    pixels=800)
    return [p for pair in pairs for p in pair]


def _write_sentinel2(out: Path, seed: int) -> list[Path]:
    """Smoke chips (positive/negative/labels) and one scene with STAC items."""
    from firesmoke.synthetic.s2_scenes import generate_scenes  # deferred: rasterio, dask (~0.5 s)
    from firesmoke.synthetic.sentinel2 import generate_chips  # deferred: rasterio, dask (~0.5 s)

    chips = generate_chips(out / "chips", *SENTINEL2_CHIPS, seed=seed)
    scenes = generate_scenes(out / "scenes", n_scenes=1, size=SENTINEL2_SCENE_SIZE, n_sites=3,
                             seed=seed)
    paths = [Path(p) for p in chips.paths] + [Path(p) for p in chips.labels]
    paths += [Path(p) for p in scenes.item_paths]
    paths += [Path(p) for bands in scenes.band_paths for p in bands.values()]
    return sorted(set(paths))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _remove_stale(folder: Path, pattern: re.Pattern[str], keep: Iterable[Path]) -> None:
    if not folder.is_dir():
        return
    keep_names = {p.name for p in keep}
    for p in folder.iterdir():
        if p.is_file() and pattern.match(p.name) and p.name not in keep_names:
            log.info("removing %s (not part of this scenario)", p)
            p.unlink()
    stage = folder / ".staging"
    if stage.is_dir():
        shutil.rmtree(stage, ignore_errors=True)


def generate_scenario(
    region: Region | str | os.PathLike[str],
    start: Any,
    end: Any,
    out_dir: str | os.PathLike[str],
    seed: int = 0,
    products: Iterable[str] = ("viirs", "firms", "mcd64"),
    progress: Progress | None = None,
) -> Scenario:
    """Simulate a fire scenario and write it in the real file formats.

    Parameters
    ----------
    region
        A :class:`~firesmoke.grid.Region`, a shipped region name (``"PT"``) or the path
        of an ``R_*.json`` file. :func:`demo_region` is a small default.
    start, end
        First and last UTC day (inclusive): ``"YYYY-MM-DD"``, ``datetime.date``,
        ``numpy.datetime64``...
    out_dir
        Output folder (created if needed); see the module docstring for its layout.
    seed
        Non-negative integer; the same seed gives byte-identical files.
    products
        Any of ``"viirs"``, ``"firms"``, ``"mcd64"``.
    progress
        Optional per-day progress: a tqdm-like object (its ``update(1)`` is called once
        per day) or a callable ``progress(done, total)``.

    Returns
    -------
    Scenario

    Raises
    ------
    InputError
        Bad region, dates, seed, products, or an output folder that cannot be written.

    Examples
    --------
    >>> from firesmoke import Region, generate_scenario
    >>> region = Region.from_shape("tiny", -8.0, 41.0, 0.01, 16, 16)  # 16 x 16 px
    >>> scn = generate_scenario(region, "2020-07-01", "2020-07-02", "scenario", seed=1)
    >>> sorted(scn.files)
    ['firms', 'mcd64', 'viirs']
    >>> scn.truth.sizes["y"], scn.truth.sizes["x"]
    (16, 16)
    """
    reg = _check_region(region)
    s, e = _check_period(start, end)
    check_scenario_size(reg, s, e)
    sd = _check_seed(seed)
    prods = _check_products(products)
    out = _prepare_out_dir(out_dir)
    manifest = out / MANIFEST
    if manifest.exists():
        manifest.unlink()  # an interrupted run must not leave a manifest claiming completeness

    truth = _simulate(reg, s, e, sd)
    n_days = truth.n_days
    dirs = {p: out / PRODUCTS[p] for p in prods}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    files: dict[str, list[Path]] = {p: [] for p in prods}
    detections = []
    order = order_id(reg, sd)
    log.info(
        "generating scenario %s %s..%s seed=%d products=%s in %s",
        reg.name,
        s,
        e,
        sd,
        ",".join(prods),
        out,
    )
    for day in range(n_days):
        if "viirs" in prods:
            files["viirs"] += _write_viirs_day(truth, day, dirs["viirs"], order)
        if "swath" in prods:
            files["swath"] += _write_swath_day(truth, day, dirs["swath"])
        if "firms" in prods:
            det = simulate_detections(truth, day)
            if len(det):
                detections.append(det)
        _tick(progress, day + 1, n_days)

    n_detections = 0
    if "firms" in prods:
        all_det = (
            pd.concat(detections, ignore_index=True)
            if detections
            else pd.DataFrame({"acq_date": []})
        )
        if len(all_det):
            all_det = all_det.sort_values("time_ms", kind="stable").reset_index(drop=True)
            n_detections = int(all_det["acq_date"].isin({str(d) for d in truth.dates}).sum())
        for date in truth.dates:
            files["firms"].append(write_firms_day(dirs["firms"], reg.name, date, all_det))
    if "mcd64" in prods:
        tiles = region_tiles(reg)
        for month in months_of(truth.start, n_days):
            for mapping in tiles:
                files["mcd64"].append(write_mcd64_month(dirs["mcd64"], truth, mapping, month))

    if "sentinel2" in prods:
        files["sentinel2"] = _write_sentinel2(dirs["sentinel2"], sd)

    for p in prods:
        files[p] = sorted(files[p])
        if p != "sentinel2":
            _remove_stale(dirs[p], _PATTERNS[p], files[p])

    doc = {
        "format": "firesmoke-synthetic-scenario",
        "format_version": 1,
        "firesmoke_version": __version__,
        "region": reg.to_dict(),
        "start": s.isoformat(),
        "end": e.isoformat(),
        "seed": sd,
        "products": list(prods),
        "folders": {p: PRODUCTS[p] for p in prods},
        "files": {p: [f.relative_to(out).as_posix() for f in files[p]] for p in prods},
        "sha256": {f.relative_to(out).as_posix(): _sha256(f) for p in prods for f in files[p]},
        "truth": {
            "n_events": len(truth.events),
            "burned_pixels": int((truth.burn_day >= 0).sum()),
            "pixels": int(truth.burn_day.size),
            "firms_detections": n_detections,
        },
        "complete": True,
    }
    tmp = out / f".{MANIFEST}.part"
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, manifest)
    log.info("scenario written: %s", ", ".join(f"{len(v)} {k} file(s)" for k, v in files.items()))
    return Scenario(
        region=reg,
        start=s,
        end=e,
        seed=sd,
        out_dir=out,
        files=files,
        truth=truth_dataset(truth),
        manifest=manifest,
        stats={
            "events": len(truth.events),
            "burned_pixels": int((truth.burn_day >= 0).sum()),
            "pixels": int(truth.burn_day.size),
            "detections": n_detections,
        },
    )
