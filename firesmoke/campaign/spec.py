"""Campaign specifications and plans: what to reprocess, where and how.

A spec (a TOML file) is parsed and validated by :func:`load_spec`; :func:`plan_campaign`
cuts it into work units (indices only, no data read). Running a plan is the job of
:mod:`firesmoke.campaign.run`.

A campaign spec is read with :func:`load_spec` (Python's :mod:`tomllib`). Relative paths
are resolved against the folder of the spec file. Every key is checked: a misspelt key or
a bad value raises :class:`~firesmoke.errors.InputError` naming the file and the field,
before any work starts. Example (``examples/campaign.toml`` is a commented one)::

    name = "iberia-2020"
    output = "out"                 # folder of the product stores, exports and report
    block_size = 512               # px per work unit side (a multiple of 128)
    weights = ["banet_synthetic"]  # names or paths; several = an ensemble (mean)

    [[regions]]                    # a shipped region name ...
    name = "PT"
    [[regions]]                    # ... an R_*.json file ...
    file = "regions/R_NW.json"
    [[regions]]                    # ... or an inline box; `cube` = an existing cube store
    name = "box"
    bbox = [-8.0, 40.2, -5.44, 42.76]
    pixel_size = 0.01
    cube = "cubes/box.zarr"

    [[periods]]
    start = 2020-07-01
    end = 2020-09-30

    [inputs]                       # raw inputs for regions without a cube
    viirs = ["granules/viirs750"]
    firms = ["firms"]
    composite = "reference"

    [products.burned]              # or [[products.burned]] for several modes
    mode = "monthly"               # monthly | range | nrt
    tile = 128
    step = 100
    blend = "mean"

    [exports]
    geotiff = true
    quicklook = true
    events = true

    [fetch]                        # download inputs before a region's cube is built
    products = ["VIIRS_SNPP_SP"]   # (firesmoke.fetch.region); default [inputs]

    [cluster]                      # a LocalCluster ...
    n_workers = 2
    threads_per_worker = 1
    # address = "tcp://10.0.0.5:8786"   # ... or an existing scheduler
    # units_per_task = 4                # units per Dask task (default: from the size)
"""

from __future__ import annotations

import datetime as dt
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from firesmoke import bounds
from firesmoke.burned.rules import COMPAT_MODES, MODES, BurnedRules, rules_for
from firesmoke.campaign import fields as spec_fields
from firesmoke.cube.ops import COMPOSITE_RULES
from firesmoke.errors import InputError
from firesmoke.fetch.region import FetchSpec, parse_fetch_table
from firesmoke.grid import Region

# field validators (firesmoke.campaign.fields) under the short names used below
_Ctx = spec_fields.Ctx
_table = spec_fields.table
_int = spec_fields.integer
_bool = spec_fields.boolean
_str = spec_fields.string
_plain_name = spec_fields.plain_name
_date = spec_fields.date
_paths = spec_fields.paths

__all__ = [
    "BLOCK_MULTIPLE",
    "BurnedProduct",
    "CampaignSpec",
    "ClusterSpec",
    "ExportSpec",
    "InputSpec",
    "Period",
    "RegionEntry",
    "load_spec",
    "with_scheduler",
]

#: Work-unit blocks are multiples of the 128 px BA-Net tile.
BLOCK_MULTIPLE = 128
BLENDS = ("mean", "centre", "center")
COMPOSITES = COMPOSITE_RULES


@dataclass(frozen=True)
class RegionEntry:
    """A region of the campaign and, optionally, an existing cube store for it."""

    region: Region
    cube: Path | None = None


@dataclass(frozen=True)
class Period:
    """Inclusive UTC days. NRT products use ``end`` as the run date."""

    start: dt.date
    end: dt.date


@dataclass(frozen=True)
class BurnedProduct:
    """A burned-area product (see :func:`firesmoke.burned.predict.predict_burned`).

    ``skip_empty``: blocks whose whole input window (the tiles touching the block, 64
    days) holds no observation are not run through the model and stay fill (NaN
    confidence, date 0).
    """

    name: str = "burned"
    mode: str = "monthly"
    threshold: float | None = None
    tile: int = 128
    step: int = 100
    blend: str = "mean"
    batch_size: int | None = None  # None: firesmoke.inference.model.default_batch_size
    device: str | None = None
    skip_empty: bool = True
    compat: str | None = None  # "banet-0.6.7": the reference's numbers (firesmoke.burned.rules)

    @property
    def rules(self) -> BurnedRules:
        """The rules of the product (:func:`~firesmoke.burned.rules.rules_for` ``compat``)."""
        return rules_for(self.compat)

    @property
    def effective_threshold(self) -> float:
        return self.rules.threshold(self.mode, self.threshold)


@dataclass(frozen=True)
class InputSpec:
    """Raw inputs used to build the cubes of regions that have no cube store."""

    viirs: tuple[Path, ...] = ()
    firms: tuple[Path, ...] = ()
    composite: str = "reference"
    cube_chunk: int = 256


@dataclass(frozen=True)
class ClusterSpec:
    """Where units run: an existing scheduler (``address``) or a new LocalCluster.

    ``torch_threads``: intra-op threads of PyTorch in each worker; ``None`` = cores
    divided among the LocalCluster's worker threads (left alone on a remote cluster).
    ``units_per_task``: work units per Dask task; ``None`` =
    :func:`firesmoke.campaign.run.units_per_task` (1 for small campaigns).
    """

    address: str | None = None
    n_workers: int | None = None
    threads_per_worker: int = 1
    processes: bool = True
    memory_limit: str | int = "auto"
    torch_threads: int | None = None
    units_per_task: int | None = None  # None: from the campaign's size and the cluster's


@dataclass(frozen=True)
class ExportSpec:
    """Per-period exports made after the units of that period are all done."""

    geotiff: bool = False
    quicklook: bool = False
    events: bool = False
    periods: tuple[str, ...] | None = None
    equal_area_crs: str = "EPSG:6933"
    min_pixels: int = 25

    @property
    def any(self) -> bool:
        return self.geotiff or self.quicklook or self.events


@dataclass(frozen=True)
class CampaignSpec:
    """A parsed, validated campaign (see the module docstring for the TOML form)."""

    name: str
    output: Path
    regions: tuple[RegionEntry, ...]
    periods: tuple[Period, ...]
    products: tuple[BurnedProduct, ...]
    weights: tuple[str, ...] = ()
    inputs: InputSpec = field(default_factory=InputSpec)
    block_size: int = 512
    cluster: ClusterSpec = field(default_factory=ClusterSpec)
    exports: ExportSpec = field(default_factory=ExportSpec)
    source: Path | None = None
    fetch: FetchSpec | None = None
    """The ``[fetch]`` table: what to download for each region before its cube is built."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly summary (for reports)."""
        return {
            "name": self.name,
            "output": str(self.output),
            "block_size": self.block_size,
            "regions": [
                {**e.region.to_dict(), "cube": str(e.cube) if e.cube else None} for e in self.regions
            ],
            "periods": [[str(p.start), str(p.end)] for p in self.periods],
            "products": [vars(p) for p in self.products],
            "weights": list(self.weights),
            "inputs": {"viirs": [str(p) for p in self.inputs.viirs],
                       "firms": [str(p) for p in self.inputs.firms],
                       "composite": self.inputs.composite},
            "source": str(self.source) if self.source else None,
            "fetch": self.fetch.to_dict() if self.fetch else None,
        }


# --------------------------------------------------------------------------- sections
def _regions(ctx: _Ctx, value: Any) -> tuple[RegionEntry, ...]:
    if not isinstance(value, list) or not value:
        raise ctx.error("give at least one region ([[regions]] tables or names)", "regions")
    out: list[RegionEntry] = []
    for i, item in enumerate(value):
        fld = f"regions[{i}]"
        if isinstance(item, str):
            item = {"file": item} if item.endswith(".json") or "/" in item else {"name": item}
        t = _table(ctx, item, fld, ("name", "file", "bbox", "pixel_size", "cube"))
        if "bbox" in t and ("pixel_size" not in t or "name" not in t):
            raise ctx.error("an inline region needs name, bbox and pixel_size", fld)
        if not any(k in t for k in ("file", "bbox", "name")):
            raise ctx.error("give a shipped region name, a file or an inline bbox", fld)
        try:
            if "file" in t:
                region = Region.from_json(ctx.resolve(t["file"], f"{fld}.file"))
                if "name" in t and t["name"] != region.name:
                    region = Region(t["name"], region.bbox, region.pixel_size)
            elif "bbox" in t:
                region = Region.from_dict(
                    {"name": t["name"], "bbox": t["bbox"], "pixel_size": t["pixel_size"]}
                )
            else:
                region = Region.named(t["name"])
        except InputError as exc:
            sub = f"{fld}.{exc.field}" if exc.field else fld
            raise ctx.error(str(exc), sub) from exc
        _plain_name(ctx, region.name, f"{fld}.name")
        cube = ctx.resolve(t["cube"], f"{fld}.cube", url_ok=True) if "cube" in t else None
        out.append(RegionEntry(region, cube))
    names = [e.region.name for e in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ctx.error(f"region names must be unique, repeated: {dup}", "regions")
    return tuple(out)


def _periods(ctx: _Ctx, value: Any) -> tuple[Period, ...]:
    if not isinstance(value, list) or not value:
        raise ctx.error("give at least one [[periods]] table with start and end", "periods")
    out = []
    for i, item in enumerate(value):
        fld = f"periods[{i}]"
        t = _table(ctx, item, fld, ("start", "end", "date"))
        if "date" in t:
            if "start" in t or "end" in t:
                raise ctx.error("give either date (one day) or start and end", fld)
            d = _date(ctx, t["date"], f"{fld}.date")
            bounds.check_date_span(d, d, f"{fld}.date", ctx.path)
            out.append(Period(d, d))
            continue
        if "start" not in t or "end" not in t:
            raise ctx.error("a period needs start and end (or date)", fld)
        s, e = _date(ctx, t["start"], f"{fld}.start"), _date(ctx, t["end"], f"{fld}.end")
        bounds.check_date_span(s, e, fld, ctx.path)
        out.append(Period(s, e))
    return tuple(out)


_PRODUCT_KEYS = ("name", "mode", "threshold", "tile", "step", "blend", "batch_size", "device",
                 "skip_empty", "compat")


def _product(ctx: _Ctx, item: Any, fld: str) -> BurnedProduct:
    t = _table(ctx, item, fld, _PRODUCT_KEYS)
    mode = _str(ctx, t.get("mode", "monthly"), f"{fld}.mode", MODES)
    kw: dict[str, Any] = {"mode": mode, "name": _plain_name(ctx, t.get("name", f"burned-{mode}"),
                                                          f"{fld}.name")}
    if "threshold" in t:
        kw["threshold"] = bounds.check_threshold(t["threshold"], f"{fld}.threshold", ctx.path)
    tile = _int(ctx, t.get("tile", 128), f"{fld}.tile", 32, bounds.MAX_TILE)
    if tile % 32:
        raise ctx.error(f"BA-Net tiles must be a multiple of 32, got {tile}", f"{fld}.tile")
    step = _int(ctx, t.get("step", 100), f"{fld}.step", 1, bounds.MAX_TILE)
    if step > tile:
        raise ctx.error(f"step ({step}) larger than tile ({tile}) would leave gaps", f"{fld}.step")
    kw.update(tile=tile, step=step,
              blend=_str(ctx, t.get("blend", "mean"), f"{fld}.blend", BLENDS),
              batch_size=(None if t.get("batch_size") is None
                          else _int(ctx, t["batch_size"], f"{fld}.batch_size", 1,
                                  bounds.MAX_BATCH_SIZE)),
              skip_empty=_bool(ctx, t.get("skip_empty", True), f"{fld}.skip_empty"))
    dev = t.get("device", "auto")
    dev = _str(ctx, dev, f"{fld}.device")
    kw["device"] = None if dev == "auto" else dev
    if t.get("compat") is not None:
        kw["compat"] = _str(ctx, t["compat"], f"{fld}.compat", COMPAT_MODES)
        required = rules_for(kw["compat"]).tiling
        if required is not None and (kw["tile"], kw["step"], kw["blend"]) != required:
            raise ctx.error("compat mode uses the reference tiling (tile {}, step {}, {} "
                            "blend)".format(*required), f"{fld}.compat")
    return BurnedProduct(**kw)


def _products(ctx: _Ctx, value: Any) -> tuple[BurnedProduct, ...]:
    t = _table(ctx, value, "products", ("burned",))
    if "burned" not in t:
        raise ctx.error("give a [products.burned] table", "products")
    items = t["burned"] if isinstance(t["burned"], list) else [t["burned"]]
    out = tuple(_product(ctx, it, f"products.burned[{i}]") for i, it in enumerate(items))
    names = [p.name for p in out]
    if len(set(names)) != len(names):
        raise ctx.error(f"product names must be unique, got {names}", "products.burned")
    return out


def _weights(ctx: _Ctx, value: Any) -> tuple[str, ...]:
    if isinstance(value, Mapping):
        value = _table(ctx, value, "weights", ("ensemble",)).get("ensemble")
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ctx.error("expected a weights name/path or a non-empty list of them", "weights")
    out = []
    for i, w in enumerate(value):
        s = _str(ctx, w, f"weights[{i}]")
        looks_like_path = "/" in s or os.sep in s or s.endswith((".pt", ".pth"))
        out.append(os.fspath(ctx.resolve(s, f"weights[{i}]")) if looks_like_path else s)
    return tuple(out)


def _inputs(ctx: _Ctx, value: Any) -> InputSpec:
    t = _table(ctx, value, "inputs", ("viirs", "firms", "composite", "cube_chunk"))
    chunk = _int(ctx, t.get("cube_chunk", 256), "inputs.cube_chunk", BLOCK_MULTIPLE, 1 << 16)
    return InputSpec(
        viirs=_paths(ctx, t.get("viirs", []), "inputs.viirs"),
        firms=_paths(ctx, t.get("firms", []), "inputs.firms"),
        composite=_str(ctx, t.get("composite", "reference"), "inputs.composite", COMPOSITES),
        cube_chunk=chunk,
    )


def _cluster(ctx: _Ctx, value: Any) -> ClusterSpec:
    t = _table(ctx, value, "cluster", ("address", "n_workers", "threads_per_worker", "processes",
                                      "memory_limit", "torch_threads", "units_per_task"))
    if "address" in t:
        local = sorted(set(t) & {"n_workers", "threads_per_worker", "processes", "memory_limit"})
        if local:
            raise ctx.error(f"{local} only apply to a LocalCluster, not to an address", "cluster")
    mem = bounds.check_memory_limit(t.get("memory_limit", "auto"), "cluster.memory_limit",
                                    ctx.path)
    address = None
    if "address" in t:
        address = bounds.check_scheduler(_str(ctx, t["address"], "cluster.address"),
                                         "cluster.address", ctx.path)
    return ClusterSpec(
        address=address,
        n_workers=(_int(ctx, t["n_workers"], "cluster.n_workers", 1, bounds.MAX_WORKERS)
                   if "n_workers" in t else None),
        threads_per_worker=_int(ctx, t.get("threads_per_worker", 1), "cluster.threads_per_worker",
                                1, bounds.MAX_THREADS),
        processes=_bool(ctx, t.get("processes", True), "cluster.processes"),
        memory_limit=mem,
        torch_threads=(_int(ctx, t["torch_threads"], "cluster.torch_threads", 1,
                            bounds.MAX_THREADS) if "torch_threads" in t else None),
        units_per_task=(_int(ctx, t["units_per_task"], "cluster.units_per_task", 1, 4096)
                        if "units_per_task" in t else None),
    )


def _exports(ctx: _Ctx, value: Any) -> ExportSpec:
    t = _table(ctx, value, "exports", ("geotiff", "quicklook", "events", "periods",
                                      "equal_area_crs", "min_pixels"))
    periods = t.get("periods")
    if periods is not None:
        if isinstance(periods, str):
            periods = [periods]
        if not isinstance(periods, list) or not all(isinstance(p, str) for p in periods):
            raise ctx.error("expected a list of period labels (e.g. '2020-08')", "exports.periods")
        periods = tuple(periods)
    return ExportSpec(
        geotiff=_bool(ctx, t.get("geotiff", False), "exports.geotiff"),
        quicklook=_bool(ctx, t.get("quicklook", False), "exports.quicklook"),
        events=_bool(ctx, t.get("events", False), "exports.events"),
        periods=periods,
        equal_area_crs=bounds.check_crs(t.get("equal_area_crs", "EPSG:6933"),
                                        "exports.equal_area_crs", ctx.path, equal_area=True),
        min_pixels=_int(ctx, t.get("min_pixels", 25), "exports.min_pixels", 1, 10**9),
    )


_TOP_KEYS = ("name", "output", "block_size", "weights", "regions", "periods", "inputs",
             "products", "cluster", "exports", "fetch")


def _fetch(ctx: _Ctx, value: Any) -> FetchSpec:
    return parse_fetch_table(value, base_dir=ctx.base, path=ctx.path)


def load_spec(
    spec: str | os.PathLike[str] | Mapping[str, Any] | CampaignSpec,
    base_dir: str | os.PathLike[str] | None = None,
) -> CampaignSpec:
    """Read and validate a campaign spec.

    Parameters
    ----------
    spec
        Path of a TOML file, an already parsed mapping (same structure), or a
        :class:`CampaignSpec` (returned as is).
    base_dir
        Folder that relative paths are resolved against; default: the spec file's
        folder (or the current folder for a mapping).

    Returns
    -------
    CampaignSpec

    Raises
    ------
    InputError
        Unreadable TOML, unknown keys, missing or bad values; the message names the
        spec file and the field (e.g. ``regions[1].bbox``).
    """
    if isinstance(spec, CampaignSpec):
        return spec
    path: Path | None = None
    if isinstance(spec, Mapping):
        data = dict(spec)
    else:
        path = Path(spec)
        try:
            with open(path, "rb") as f:
                data = tomllib.load(f)
        except FileNotFoundError:
            raise InputError("campaign spec not found", path=path) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read campaign spec ({exc})", path=path) from exc
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"malformed TOML: {exc}", path=path) from exc
        except RecursionError:
            raise InputError("malformed TOML: nested too deeply", path=path) from None
    base = Path(base_dir) if base_dir is not None else (path.parent if path else Path.cwd())
    ctx = _Ctx(path, base.resolve())
    t = _table(ctx, data, "<top level>", _TOP_KEYS)
    for key in ("regions", "periods", "products", "output"):
        if key not in t:
            raise ctx.error("missing", key)
    name = _plain_name(ctx, t.get("name", "campaign"), "name")
    block = _int(ctx, t.get("block_size", 512), "block_size", BLOCK_MULTIPLE, 1 << 16)
    if block % BLOCK_MULTIPLE:
        raise ctx.error(f"must be a multiple of {BLOCK_MULTIPLE}, got {block}", "block_size")
    regions = _regions(ctx, t["regions"])
    inputs = _inputs(ctx, t.get("inputs", {}))
    fetch = _fetch(ctx, t["fetch"]) if "fetch" in t else None
    if fetch is not None and not inputs.viirs and not inputs.firms:  # the fetched folders
        inputs = replace(inputs, **fetch.cube_inputs())
    lacking = [e.region.name for e in regions if e.cube is None]
    if lacking and not inputs.viirs and not inputs.firms:
        raise ctx.error(
            f"regions {lacking} have no cube store and neither [inputs] nor [fetch] gives "
            "viirs/firms to build one", "inputs",
        )
    products = _products(ctx, t["products"])
    weights = _weights(ctx, t["weights"]) if "weights" in t else ()
    output = ctx.resolve(t["output"], "output", url_ok=True)
    if isinstance(output, Path):
        if os.path.lexists(output) and not output.is_dir():
            raise ctx.error(f"{output} exists and is not a folder", "output")
    else:
        bounds.check_store_url(output, "output", ctx.path)
    return CampaignSpec(
        name=name,
        output=output,
        regions=regions,
        periods=_periods(ctx, t["periods"]),
        products=products,
        weights=weights,
        inputs=inputs,
        block_size=block,
        cluster=_cluster(ctx, t.get("cluster", {})),
        exports=_exports(ctx, t.get("exports", {})),
        source=path.resolve() if path else None,
        fetch=fetch,
    )


def with_scheduler(spec: CampaignSpec, address: str) -> CampaignSpec:
    """The spec with its units run on the scheduler at ``address`` (``tcp://host:8786``)
    instead of its ``[cluster]`` table's LocalCluster (``torch_threads`` is kept)."""
    address = str(address).strip()
    if not address:
        raise InputError("empty scheduler address", path=spec.source, field="cluster.address")
    return replace(spec, cluster=ClusterSpec(address=address,
                                             torch_threads=spec.cluster.torch_threads,
                                             units_per_task=spec.cluster.units_per_task))
