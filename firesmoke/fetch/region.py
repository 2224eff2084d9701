"""Fetch everything a region and a period need, and the ``[fetch]`` table of campaign specs.

:func:`fetch_for_region` takes a region (a :class:`~firesmoke.grid.Region`, a shipped
name such as ``"PI"``, an ``R_<name>.json`` path, a ``(left, bottom, right, top)``
tuple or a ``"left,bottom,right,top"`` string), a period and product names, and calls the
right client for each:

==============================================================  ===============================
product names                                                   client
==============================================================  ===============================
``VNP02MOD`` ``VNP03MOD`` ``VJ102MOD`` ``VJ103MOD`` (pairs),    CMR + Earthdata
``MCD64A1``, ``VNP64A1``; aliases ``viirs-l1b-snpp``,
``viirs-l1b-noaa20``
``VIIRS_SNPP_NRT`` ``VIIRS_SNPP_SP`` ``VIIRS_NOAA20_NRT``       FIRMS area API
``VIIRS_NOAA20_SP`` ``VIIRS_NOAA21_NRT`` ``MODIS_NRT``
``MODIS_SP``
``sentinel-2-l2a``, ``sentinel-2-l1c``                          STAC
==============================================================  ===============================

The ``[fetch]`` table
---------------------
A campaign spec may hold a ``[fetch]`` table; :func:`parse_fetch_table` checks it and
returns a :class:`FetchSpec` whose :meth:`FetchSpec.fetch` downloads what one unit
(region x period) needs before it runs, and whose :meth:`FetchSpec.input_folders` says
where (``viirs_l1b/``, ``firms/``, ``burned_area/`` under ``out``)::

    [fetch]
    products = ["viirs-l1b-snpp", "VIIRS_SNPP_SP", "VNP64A1"]   # required
    out = "inputs"            # folder, relative to the spec file (default "inputs")
    pad_days = 63             # also fetch this many days before each unit's start
    versions = { VNP64A1 = "002" }    # pin CMR collection versions
    max_cloud = 20            # Sentinel-2 cloud filter, percent
    assets = ["B04", "B08"]   # Sentinel-2 bands to download (default: item JSONs only)
    catalog = "earth-search"  # or "planetary-computer" or a STAC API URL
    workers = 4               # parallel downloads
    cmr_url = "..."           # optional mirrors (else FIRESMOKE_* variables, else NASA)
    firms_url = "..."
    stac_url = "..."

Credentials never go in the spec; they come from the environment (see
:mod:`firesmoke.fetch.config`).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from firesmoke.dates import as_date
from firesmoke.errors import InputError
from firesmoke.fetch.cmr import EARTHDATA_PRODUCTS, fetch_earthdata
from firesmoke.fetch.download import ProgressCallback
from firesmoke.fetch.firms import FIRMS_SOURCES, fetch_firms_area
from firesmoke.fetch.http import FetchError, RetryPolicy, check_url
from firesmoke.fetch.manifest import Manifest
from firesmoke.fetch.remote import FetchResult
from firesmoke.fetch.stac import COLLECTIONS, _catalog_url, fetch_sentinel2
from firesmoke.grid import Region
from firesmoke.paths import is_url

__all__ = [
    "MAX_PERIOD_DAYS",
    "MAX_WORKERS",
    "PRODUCT_ALIASES",
    "FetchSpec",
    "check_fetch_values",
    "fetch_for_region",
    "parse_fetch_table",
    "resolve_bbox",
    "split_products",
]

log = logging.getLogger(__name__)

PRODUCT_ALIASES: dict[str, tuple[str, ...]] = {
    "viirs-l1b-snpp": ("VNP02MOD", "VNP03MOD"),
    "viirs-l1b-noaa20": ("VJ102MOD", "VJ103MOD"),
}

_L1B = frozenset(p for pair in PRODUCT_ALIASES.values() for p in pair)

#: Earliest day a fetch may ask for (no satellite record firesmoke reads is older).
EARLIEST_DAY = dt.date(1970, 1, 1)
#: Longest period one fetch covers, days (30 years); longer is surely a typo.
MAX_PERIOD_DAYS = 30 * 366
#: Most parallel downloads.
MAX_WORKERS = 64
#: Most days ``pad_days`` may add.
MAX_PAD_DAYS = 3660


def check_fetch_values(
    start: Any = None,
    end: Any = None,
    *,
    out: Any = None,
    workers: Any = None,
    max_cloud: Any = None,
    catalog: Any = None,
    cmr_url: Any = None,
    firms_url: Any = None,
    archive_urls: Sequence[Any] = (),
    field_prefix: str = "",
    path: str | os.PathLike[str] | None = None,
) -> tuple[dt.date | None, dt.date | None]:
    """Check the values a fetch takes, before any request; -> ``(start, end)`` as dates.

    The same bounds for the API, the CLI and the ``[fetch]`` table: days within
    :data:`EARLIEST_DAY` .. a year from today, ``end >= start``, at most
    :data:`MAX_PERIOD_DAYS`; ``workers`` 1..:data:`MAX_WORKERS`; ``max_cloud`` 0..100;
    service URLs http(s) with a host; ``out`` a local folder (not a URL, not a file).

    Raises
    ------
    InputError
        Naming the field (with ``field_prefix``) and ``path`` when given.
    """
    def bad(msg: str, key: str) -> InputError:
        return InputError(msg, path=path, field=f"{field_prefix}{key}")

    d0 = d1 = None
    latest = dt.date.today() + dt.timedelta(days=366)
    for key, value in (("start", start), ("end", end)):
        if value is None:
            continue
        try:
            day = _day(value)
        except (InputError, ValueError, TypeError, OverflowError) as exc:
            raise bad(f"not a day ({exc})", key) from None
        if not EARLIEST_DAY <= day <= latest:
            raise bad(f"{day} is outside {EARLIEST_DAY}..{latest}", key)
        if key == "start":
            d0 = day
        else:
            d1 = day
    if d0 is not None and d1 is not None:
        if d1 < d0:
            raise bad(f"end {d1} is before start {d0}", "end")
        if (d1 - d0).days + 1 > MAX_PERIOD_DAYS:
            raise bad(f"{(d1 - d0).days + 1} days is longer than {MAX_PERIOD_DAYS}; fetch in parts", "end")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or not 1 <= workers <= MAX_WORKERS):
        raise bad(f"must be an integer 1..{MAX_WORKERS}, got {workers!r}", "workers")
    if max_cloud is not None and (isinstance(max_cloud, bool) or not isinstance(max_cloud, (int, float))
                                  or not 0 <= max_cloud <= 100):
        raise bad(f"must be a number 0..100 (percent), got {max_cloud!r}", "max_cloud")
    for key, url in (("cmr_url", cmr_url), ("firms_url", firms_url)):
        if url is not None:
            try:
                check_url(url)
            except FetchError as exc:
                raise bad(str(exc), key) from None
    if catalog is not None:
        try:
            _catalog_url(catalog)
        except InputError as exc:
            raise bad(exc.reason, "catalog") from None
    for url in archive_urls:
        try:
            check_url(url)
        except FetchError as exc:
            raise bad(str(exc), "firms_archive") from None
    if out is not None:
        if is_url(out) or "://" in os.fspath(out):
            raise bad("fetch writes to a local folder, not a URL", "out")
        if Path(out).exists() and not Path(out).is_dir():
            raise bad("exists and is not a folder", "out")
    return d0, d1


def resolve_bbox(region: Any) -> tuple[str, tuple[float, float, float, float]]:
    """``(name, (left, bottom, right, top))`` of a region, region name/path, tuple or bbox string."""
    if isinstance(region, (tuple, list)) and len(region) == 4:
        box = tuple(float(v) for v in region)
        return "bbox", _check_box(box)  # type: ignore[arg-type]
    if isinstance(region, str) and region.count(",") == 3:
        try:
            box = tuple(float(v) for v in region.split(","))
        except ValueError as exc:
            raise InputError(f"bbox {region!r} is not four numbers left,bottom,right,top", field="region") from exc
        return "bbox", _check_box(box)  # type: ignore[arg-type]
    reg = Region.resolve(region)
    return reg.name, tuple(reg.bbox)  # type: ignore[return-value]


def _check_box(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    left, bottom, right, top = box
    if not (-90 <= bottom < top <= 90) or not (left < right) or right - left > 360:
        raise InputError(f"bbox {box} is not left < right, -90 <= bottom < top <= 90", field="region")
    return box


def split_products(products: Sequence[str]) -> tuple[list[str], list[str], list[str]]:
    """Sort product names into (Earthdata short names, FIRMS sources, STAC collections)."""
    earth, firms, stac = [], [], []
    for p in products:
        key = p.strip()
        if key.lower() in PRODUCT_ALIASES:
            earth.extend(PRODUCT_ALIASES[key.lower()])
        elif key.upper() in EARTHDATA_PRODUCTS:
            earth.append(key.upper())
        elif key.upper() in FIRMS_SOURCES:
            firms.append(key.upper())
        elif key.lower() in COLLECTIONS:
            stac.append(key.lower())
        else:
            known = [*PRODUCT_ALIASES, *EARTHDATA_PRODUCTS, *FIRMS_SOURCES, *COLLECTIONS]
            raise InputError(f"unknown product {p!r}; known: {', '.join(known)}", field="products")
    dedup = lambda xs: list(dict.fromkeys(xs))  # noqa: E731
    return dedup(earth), dedup(firms), dedup(stac)


def _day(value: Any) -> dt.date:
    return as_date(value, "start/end")


def fetch_for_region(
    region: Any,
    start: Any,
    end: Any,
    products: Sequence[str],
    out: str | os.PathLike[str],
    *,
    versions: Mapping[str, str] | None = None,
    max_cloud: float | None = 20.0,
    assets: Sequence[str] | None = None,
    catalog: str | None = None,
    sites: Sequence[Any] | None = None,
    cmr_url: str | None = None,
    firms_url: str | None = None,
    map_key: str | None = None,
    policy: RetryPolicy | None = None,
    progress: ProgressCallback | None = None,
    workers: int = 4,
    dry_run: bool = False,
) -> FetchResult:
    """Fetch ``products`` for ``region`` and days ``start..end`` into ``out`` (one manifest).

    Layout under ``out``: ``viirs_l1b/<granule>`` (L1B pairs), ``burned_area/<tile>``
    (MCD64A1, VNP64A1), ``firms/<source>_<first>_<last>.csv``,
    ``sentinel2/<site or bbox>/items.json`` (+ ``sentinel2/<collection>/<item>/<asset>``),
    and ``manifest.jsonl``. Files already present and verified are skipped, so calling
    this again (or for an overlapping unit) costs only the searches.

    ``sites`` (:class:`firesmoke.fetch.stac.Site` objects) restrict Sentinel-2 searches to
    buffers around emitter sites instead of the region's bbox. Returns a
    :class:`~firesmoke.fetch.remote.FetchResult`; failed files are listed in
    ``result.failed`` (and in the manifest), not raised.
    """
    name, bbox = resolve_bbox(region)
    d0, d1 = check_fetch_values(start, end, out=out, workers=workers, max_cloud=max_cloud,
                                catalog=catalog, cmr_url=cmr_url, firms_url=firms_url)
    assert d0 is not None and d1 is not None
    earth, firms, stac = split_products(products)
    root = Path(out)
    manifest = Manifest(root)
    result = FetchResult([], None if dry_run else manifest.path)
    log.info("fetch %s %s..%s: %s", name, d0, d1, ", ".join(earth + firms + stac))
    if earth:
        result = result + fetch_earthdata(earth, d0, d1, bbox, root, versions=dict(versions or {}),
                                          cmr_url=cmr_url, policy=policy, progress=progress, workers=workers,
                                          manifest=manifest, dry_run=dry_run)
    if firms:
        result = result + fetch_firms_area(firms, bbox, d0, d1, root, map_key=map_key, firms_url=firms_url,
                                           policy=policy, progress=progress, manifest=manifest, dry_run=dry_run)
    if stac and dry_run:
        log.warning("--dry-run lists CMR granules and FIRMS requests only; Sentinel-2 is not searched")
    for coll in ([] if dry_run else stac):
        result = result + fetch_sentinel2(root, d0, d1, bbox=None if sites else bbox, sites=sites,
                                          collection=coll, catalog=catalog, max_cloud=max_cloud,
                                          assets=assets, policy=policy, progress=progress,
                                          workers=workers, manifest=manifest)
    if result.failed:
        log.warning("%d file(s) failed; see %s", len(result.failed), manifest.path)
    return result


# ----------------------------------------------------------------------------- [fetch] table
_KEYS = {"products", "out", "pad_days", "versions", "max_cloud", "assets", "catalog", "workers",
         "cmr_url", "firms_url", "stac_url"}


@dataclass(frozen=True)
class FetchSpec:
    """A checked ``[fetch]`` table (see the module docstring)."""

    products: tuple[str, ...]
    out: Path
    pad_days: int = 0
    versions: dict[str, str] = field(default_factory=dict)
    max_cloud: float | None = 20.0
    assets: tuple[str, ...] | None = None
    catalog: str | None = None
    workers: int = 4
    cmr_url: str | None = None
    firms_url: str | None = None

    def input_folders(self) -> dict[str, Path]:
        """Where the fetched inputs land: ``viirs`` (L1B pairs), ``firms``, ``burned_area``, ``sentinel2``."""
        return {"viirs": self.out / "viirs_l1b", "firms": self.out / "firms",
                "burned_area": self.out / "burned_area", "sentinel2": self.out / "sentinel2"}

    def cube_inputs(self) -> dict[str, tuple[Path, ...]]:
        """The cube inputs these downloads fill: ``viirs`` (when VIIRS L1B pairs are
        fetched) and ``firms`` (when FIRMS detections are), each a tuple of folders."""
        earth, firms, _ = split_products(self.products)
        folders = self.input_folders()
        l1b = any(p in _L1B for p in earth)
        return {"viirs": (folders["viirs"],) if l1b else (),
                "firms": (folders["firms"],) if firms else ()}

    def to_dict(self) -> dict[str, Any]:
        """Plain values (for campaign reports)."""
        return {"products": list(self.products), "out": str(self.out), "pad_days": self.pad_days,
                "versions": dict(self.versions), "max_cloud": self.max_cloud,
                "assets": list(self.assets) if self.assets else None, "catalog": self.catalog,
                "workers": self.workers, "cmr_url": self.cmr_url, "firms_url": self.firms_url}

    def fetch(self, region: Any, start: Any, end: Any, progress: ProgressCallback | None = None) -> FetchResult:
        """Fetch what a unit over ``region`` and ``start..end`` needs (``pad_days`` earlier too)."""
        d0 = _day(start) - dt.timedelta(days=self.pad_days)
        return fetch_for_region(region, d0, end, self.products, self.out, versions=self.versions,
                                max_cloud=self.max_cloud, assets=self.assets, catalog=self.catalog,
                                cmr_url=self.cmr_url, firms_url=self.firms_url, progress=progress,
                                workers=self.workers)


def parse_fetch_table(table: Mapping[str, Any], base_dir: str | os.PathLike[str] | None = None,
                      path: str | os.PathLike[str] | None = None) -> FetchSpec:
    """Check a ``[fetch]`` table (a dict from TOML) and return a :class:`FetchSpec`.

    ``base_dir`` is the folder relative ``out`` paths are resolved against (the spec
    file's folder); ``path`` names the spec file in error messages.

    Raises
    ------
    InputError
        Unknown keys, wrong types, unknown products (the message names the field).
    """
    def bad(msg: str, key: str) -> InputError:
        return InputError(msg, path=path, field=f"fetch.{key}")

    if not isinstance(table, Mapping):
        raise InputError("[fetch] must be a table", path=path, field="fetch")
    unknown = set(table) - _KEYS
    if unknown:
        raise bad(f"unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(_KEYS))}",
                  sorted(unknown)[0])
    products = table.get("products")
    if not isinstance(products, list) or not products or not all(isinstance(p, str) for p in products):
        raise bad("must be a non-empty list of product names", "products")
    try:
        split_products(products)
    except InputError as exc:
        raise bad(exc.reason, "products") from None
    out = table.get("out", "inputs")
    if not isinstance(out, str) or not out:
        raise bad("must be a folder path", "out")
    out_path = Path(out)
    if not out_path.is_absolute() and base_dir is not None:
        out_path = Path(base_dir) / out_path
    pad = table.get("pad_days", 0)
    if not isinstance(pad, int) or isinstance(pad, bool) or not 0 <= pad <= MAX_PAD_DAYS:
        raise bad(f"must be an integer 0..{MAX_PAD_DAYS}", "pad_days")
    versions = table.get("versions", {})
    if not isinstance(versions, Mapping) or not all(isinstance(v, str) for v in versions.values()):
        raise bad("must be a table of product = \"version\" strings", "versions")
    cloud = table.get("max_cloud", 20.0)
    if cloud is not None and (not isinstance(cloud, (int, float)) or isinstance(cloud, bool) or not 0 <= cloud <= 100):
        raise bad("must be a number 0-100", "max_cloud")
    assets = table.get("assets")
    if assets is not None and (not isinstance(assets, list) or not all(isinstance(a, str) for a in assets)):
        raise bad("must be a list of band names or asset keys", "assets")
    workers = table.get("workers", 4)
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise bad("must be an integer >= 1", "workers")
    for key in ("catalog", "cmr_url", "firms_url", "stac_url"):
        if table.get(key) is not None and not isinstance(table[key], str):
            raise bad("must be a string", key)
    check_fetch_values(workers=workers, cmr_url=table.get("cmr_url"), firms_url=table.get("firms_url"),
                       catalog=table.get("stac_url") or table.get("catalog"), out=out,
                       field_prefix="fetch.", path=path)
    return FetchSpec(
        products=tuple(products), out=out_path, pad_days=pad,
        versions={str(k).upper(): v for k, v in versions.items()},
        max_cloud=None if cloud is None else float(cloud), assets=tuple(assets) if assets else None,
        catalog=table.get("stac_url") or table.get("catalog"), workers=workers,
        cmr_url=table.get("cmr_url"), firms_url=table.get("firms_url"),
    )
