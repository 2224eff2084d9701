"""Zarr mosaics: template first, aligned region writes, a ledger inside the store.

Writing a large product follows the pattern recommended for xarray + Zarr at scale:

1. :func:`create_template` writes the metadata and coordinates of the whole product
   (region x period) once, without data (``compute=False``), then marks the template
   complete (``.firesmoke/template.json``), so a template torn by a kill is recognised;
2. each block is computed independently and written into its own aligned region with
   :func:`write_block` (no two blocks touch the same Zarr chunk, so workers never race);
   chunks that are entirely fill (NaN) are not written at all;
3. after a block is written, a marker is created in the store's ledger
   (``.firesmoke/ledger/<block id>``, inside the store, so any fsspec store works and a
   cluster needs no shared disk). A rerun skips the blocks listed there; a block whose
   write was interrupted has no marker and is simply written again (idempotent).

Stores are local folders or any fsspec URL (``s3://``, ``gs://``, ``memory://``) with
``storage_options``. Zarr v3 by default; ``zarr_format=2`` gives stores GDAL's Zarr
driver reads (GDAL 3.10 does not know the v3 ``bytes`` codec). The result is readable
with plain ``xarray.open_zarr(store)``, CRS included.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from firesmoke.errors import GridMismatchError, InputError
from firesmoke.grid import grid_mapping_name
from firesmoke.paths import UnsafePathError, atomic_write_text
from firesmoke.store.ledger import Ledger, StoreLock
from firesmoke.store.location import META, Location, StoreOptions
from firesmoke.store.progress import Progress, compute

__all__ = [
    "CF_CONVENTIONS",
    "cf_georeferenced",
    "check_writable",
    "create_template",
    "finalize_store",
    "open_store",
    "prepare_overwrite",
    "report_location",
    "write_block",
    "write_product",
    "write_report",
]

log = logging.getLogger(__name__)

ZARR_FORMATS = (2, 3)


CF_CONVENTIONS = "CF-1.8"
"""The ``Conventions`` attribute of every store firesmoke writes (cubes and products)."""


def cf_georeferenced(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` ready for a CF store: the CRS kept the CF way, no fill value on coordinates.

    * the grid-mapping variable (rioxarray's ``spatial_ref``,
      :func:`~firesmoke.grid.grid_mapping_name`) is a coordinate, and every data variable
      on ``(y, x)`` names it in its ``grid_mapping`` attribute (rioxarray keeps that name
      in ``encoding``, which the store writers replace);
    * ``x``/``y`` get no ``_FillValue`` (a coordinate has no missing values);
    * ``Conventions = "CF-1.8"`` unless the dataset says otherwise.

    :func:`open_store` reads the grid mapping back (``decode_coords="all"``), so
    ``ds.rio.crs`` works on what it opens.
    """
    ds = ds.copy()
    gm = grid_mapping_name(ds)
    if gm is not None and gm in ds.data_vars:
        ds = ds.set_coords(gm)
    if gm is not None:
        for v in ds.data_vars.values():
            if "y" in v.dims and "x" in v.dims:
                v.encoding.pop("grid_mapping", None)
                v.attrs["grid_mapping"] = gm
    for dim in ("x", "y"):
        if dim in ds.coords:
            ds[dim].encoding["_FillValue"] = None
            ds[dim].attrs.pop("_FillValue", None)
    ds.attrs.setdefault("Conventions", CF_CONVENTIONS)
    return ds


def _check_format(zarr_format: int) -> int:
    if zarr_format not in ZARR_FORMATS:
        raise InputError(f"zarr_format must be 2 or 3, not {zarr_format!r}", field="zarr_format")
    return int(zarr_format)


def _encoding(ds: xr.Dataset, chunks: Mapping[str, int], zarr_format: int = 3,
              compression_level: int = 3) -> dict:
    if zarr_format == 3:
        import zarr.codecs

        compressor: Any = zarr.codecs.ZstdCodec(level=compression_level)
    else:  # numcodecs for v2 (GDAL's Zarr driver reads zstd)
        import numcodecs

        compressor = numcodecs.Zstd(level=compression_level)
    enc: dict[str, dict[str, Any]] = {}
    for name, var in ds.data_vars.items():
        e: dict[str, Any] = {
            "chunks": tuple(int(chunks.get(d, var.sizes[d])) for d in var.dims),
            "compressors": (compressor,),
        }
        fill = var.encoding.get("_FillValue")
        if fill is None and np.issubdtype(var.dtype, np.floating):
            fill = np.nan
        if fill is not None:
            e["fill_value" if zarr_format == 3 else "_FillValue"] = fill
            if zarr_format == 3:  # the CF attribute too (v3 keeps the two apart)
                e["_FillValue"] = fill
        enc[str(name)] = e
    for dim in ("x", "y"):
        if dim in ds.coords:
            enc[dim] = {"_FillValue": None}
    enc.update(_time_encoding(ds))
    return enc


PERIOD_TIME_ENCODING = {"units": "days since 1970-01-01", "calendar": "proleptic_gregorian",
                        "dtype": "int32"}
"""How datetime coordinates along ``period`` are stored: whole days as int32 (GDAL reads
it), the same on every path (xarray would otherwise pick units from the first value)."""


def _time_encoding(ds: xr.Dataset) -> dict[str, dict[str, Any]]:
    return {str(k): dict(PERIOD_TIME_ENCODING) for k, v in ds.coords.items()
            if v.dims == ("period",) and v.dtype.kind == "M"}


FIRESMOKE_NODE_WARNING = (rf"Object at {re.escape(META)}(/\S*)? is not recognized as a component "
                          "of a Zarr hierarchy")
"""zarr's warning about firesmoke's bookkeeping folder inside a store (a regex)."""


@contextlib.contextmanager
def quiet_zarr() -> Iterator[None]:
    """Silence zarr's warnings that v3 consolidation / string dtypes are not in the spec."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Zarr V3 specification.*")
        warnings.filterwarnings("ignore", message=".*[Cc]onsolidated metadata.*")
        # our .firesmoke folder (ledger, lock) is not a Zarr node: zarr says so when it
        # lists the store (opens without consolidated metadata, region writes); only that
        warnings.filterwarnings("ignore", message=FIRESMOKE_NODE_WARNING)
        yield


def open_store(store: Any, storage_options: StoreOptions = None, chunks: Any = None,
               consolidated: bool | None = False) -> xr.Dataset:
    """``xarray.open_zarr`` of a path or URL (raises what zarr raises); a CF grid mapping
    (``grid_mapping`` attribute) makes its variable a coordinate, so ``ds.rio.crs`` works."""
    loc = Location.of(store, storage_options)
    with quiet_zarr():
        return xr.open_zarr(**loc.zarr_args(), consolidated=consolidated,
                            chunks=chunks if chunks is not None else {}, decode_coords="all")


def prepare_overwrite(loc: Location) -> None:
    """Empty a store before it is written anew, deleting only what is firesmoke's.

    The location must be missing, empty, a Zarr store or a firesmoke store; anything
    else (a folder of other files, a plain file) is refused. ``.firesmoke`` (lock and
    ledger) is kept; the ledger is cleared.
    """
    if loc.local:
        p = loc.path
        if os.path.lexists(p) and (p.is_symlink() or not p.is_dir()):
            raise UnsafePathError("exists and is not a store folder; refusing to replace it",
                                  path=p)
    names = [n for n in loc.listdir() if n != META]
    if names and not loc.is_zarr() and not loc.exists(f"{META}/ledger"):
        raise InputError(f"exists and is not a Zarr store (holds {names[:3]}); refusing to "
                         "delete it", path=loc.url)
    if names and not Ledger(loc).is_firesmoke:
        raise InputError("is a Zarr store firesmoke did not write (no .firesmoke ledger); "
                         "refusing to delete it: remove it yourself or choose another "
                         "output", path=loc.url)
    Ledger(loc).clear()
    for name in names:
        loc.remove_entry(name)


def create_template(
    template: xr.Dataset,
    store: Any,
    chunks: Mapping[str, int],
    overwrite: bool = False,
    storage_options: StoreOptions = None,
    zarr_format: int = 3,
) -> None:
    """Write metadata and coordinates of ``template`` (a dask-backed Dataset) to ``store``.

    Parameters
    ----------
    template
        Dataset with the final shape, dtypes, coordinates and attrs; its data variables
        should be lazy (dask): they are not computed.
    store
        Path or fsspec URL of the Zarr store.
    chunks
        Zarr chunk size per dimension (blocks written later must align with it).
    overwrite
        Replace an existing store (and clear its ledger). Otherwise an existing store
        with a complete template must hold the same variables on the same grid, and is
        kept (resume); a torn template (killed while written) is rebuilt when no block
        is finished yet.
    storage_options
        fsspec options for a URL.
    zarr_format
        2 (readable by GDAL's Zarr driver) or 3.
    """
    loc = Location.of(store, storage_options)
    fmt = _check_format(zarr_format)
    ledger = Ledger(loc)
    if not overwrite and loc.is_zarr():
        torn = ledger.is_firesmoke and not ledger.template_done()
        try:
            existing = open_store(loc)
        except Exception as exc:  # zarr raises many types for broken metadata
            torn = True
            err: Exception | None = exc
        else:
            err = None
        if not torn:
            if not ledger.is_firesmoke:
                raise InputError("is a Zarr store firesmoke did not write (no .firesmoke "
                                 "ledger); refusing to write into it", path=loc.url)
            _check_compatible(existing, template, loc.url)
            log.info("resuming into existing store %s", loc.url)
            return
        if ledger.finished():
            raise InputError(f"store metadata is damaged ({err or 'template incomplete'}) but "
                             "its ledger lists finished blocks; overwrite it", path=loc.url)
        log.warning("store %s has a torn template (%s); writing it again", loc.url,
                    err or "template incomplete")
    prepare_overwrite(loc)
    ledger.create()  # before the template: a kill from here on leaves a recognisable store
    # one dask chunk per variable: nothing is computed (compute=False), and a graph of one
    # task per Zarr chunk would take minutes to build at planet size (61k chunks)
    lazy = vlen_labels(cf_georeferenced(template)).chunk(-1)
    # coordinates are small: load them so that compute=False still writes them all
    lazy = lazy.assign_coords({k: v.load() for k, v in lazy.coords.items()})
    with quiet_zarr():
        lazy.to_zarr(**loc.zarr_args(), mode="a", compute=False, zarr_format=fmt,
                     consolidated=False, encoding=_encoding(lazy, chunks, fmt))
    ledger.mark_template({"sizes": dict(template.sizes), "zarr_format": fmt})
    log.info("wrote template %s (%s)", loc.url, dict(template.sizes))


def _check_compatible(existing: xr.Dataset, template: xr.Dataset, path: Any) -> None:
    for dim in ("y", "x"):
        if dim in template.dims:
            a, b = existing[dim].values, template[dim].values
            if a.shape != b.shape or not np.allclose(a, b, rtol=0, atol=1e-9):
                raise GridMismatchError(
                    f"existing store has a different {dim} axis; refusing to mix grids "
                    "(use a new store or overwrite=True)", path=path,
                )
    missing = set(template.data_vars) - set(existing.data_vars)
    if missing:
        raise GridMismatchError(
            f"existing store lacks variables {sorted(missing)}; refusing to mix products", path=path
        )


def write_block(
    block: xr.Dataset,
    store: Any,
    region: Mapping[str, slice],
    block_id: str | None = None,
    info: Mapping[str, Any] | None = None,
    storage_options: StoreOptions = None,
) -> None:
    """Write a computed block into its aligned ``region`` of the store, then mark it done."""
    loc = Location.of(store, storage_options)
    drop = [c for c in block.coords if c not in block.dims or c not in region]
    drop = [c for c in drop if c != "spatial_ref"] + (["spatial_ref"] if "spatial_ref" in block.coords else [])
    out = block.drop_vars(drop, errors="ignore")
    out.attrs = {}
    for v in out.data_vars.values():
        v.attrs = {}
        v.encoding = {}
    with quiet_zarr():
        out.to_zarr(**loc.zarr_args(), region=dict(region), consolidated=False)
    if block_id is not None:
        Ledger(loc).mark(block_id, info)


def has_contents(loc: Location) -> bool:
    """Something other than firesmoke's bookkeeping (a lock) is at the location."""
    if loc.local and os.path.lexists(loc.path) and not loc.path.is_dir():
        return True
    return any(n != META for n in loc.listdir())


def check_writable(store: Any, overwrite: bool = False, storage_options: StoreOptions = None,
                   reading: Any = ()) -> Location:
    """Refuse, before any work, an output that would replace something by accident.

    Parameters
    ----------
    store
        The output store (path, URL or Location).
    overwrite
        Without it an existing store is refused; with it only a store firesmoke wrote
        (its ``.firesmoke`` ledger) may be replaced, never another Zarr store or folder.
    reading
        Store(s) the run reads (e.g. the input cube): never written, even with overwrite.

    Raises
    ------
    InputError
        Naming the store and what to do.
    """
    loc = Location.of(store, storage_options)
    for src in ([reading] if isinstance(reading, str | os.PathLike | Location) else reading):
        if loc.same_as(src):
            raise InputError(f"is the store being read ({src}); write the output elsewhere",
                             path=loc.url, field="out")
    if loc.local and os.path.lexists(loc.path) and loc.path.is_symlink():
        raise UnsafePathError("is a symbolic link; refusing to replace it", path=loc.path)
    if not has_contents(loc):
        return loc
    if not overwrite:
        raise InputError("exists; pass overwrite=True (CLI: --overwrite) to replace it",
                         path=loc.url, field="out")
    if loc.local and not loc.path.is_dir():
        raise UnsafePathError("exists and is not a store folder; refusing to replace it",
                              path=loc.path)
    if not Ledger(loc).is_firesmoke:
        kind = "a Zarr store" if loc.is_zarr() else "a folder that is not a Zarr store"
        raise InputError(f"is {kind} firesmoke did not write (no .firesmoke ledger); "
                         "refusing to replace it", path=loc.url, field="out")
    return loc


def write_product(
    ds: xr.Dataset,
    store: Any,
    storage_options: StoreOptions = None,
    zarr_format: int = 2,
    progress: Progress = False,
    overwrite: bool = False,
) -> Any:
    """Write a product Dataset (computed or lazy: streamed chunk by chunk) to a Zarr store.

    Local stores are written under ``<store>.part`` and renamed into place, so a store
    that exists is complete; the ``.part`` folder is created exclusively and doubles as
    the writer lock (a second writer gets :class:`~firesmoke.store.ledger.StoreLockedError`).
    On object stores the store is written in place and marked complete last
    (``.firesmoke/template.json``). An existing store is replaced only with
    ``overwrite=True`` and only if firesmoke wrote it (:func:`check_writable`).
    ``zarr_format=2`` (default) gives stores GDAL's Zarr driver opens
    (``rasterio.open('ZARR:"p.zarr":/confidence')``); 3 is the newer spec.
    ``progress``: where a lazy product is computed (the chunks are computed and written
    by the scheduler in use): ``True`` shows a bar (``distributed.progress`` with a
    current Client, else tqdm), a callable gets ``(done, total, label)``
    (:mod:`firesmoke.store.progress`).

    Returns
    -------
    pathlib.Path or str
        The local path, or the URL.
    """
    loc = Location.of(store, storage_options)
    fmt = _check_format(zarr_format)
    check_writable(loc, overwrite)
    if not loc.local:
        with StoreLock(loc, purpose="write_product"):
            check_writable(loc, overwrite)  # again, under the lock
            prepare_overwrite(loc)
            _write_whole(ds, loc, fmt, progress)
            Ledger(loc).mark_template({"complete": True, "zarr_format": fmt})
        return loc.url
    path = loc.path
    if os.path.lexists(path) and path.is_symlink():
        raise UnsafePathError("is a symbolic link; refusing to replace it", path=path)
    tmp = loc.sibling(".part")
    with StoreLock(tmp, purpose="write_product") as lock:
        prepare_overwrite(tmp)  # leftovers of an interrupted write (firesmoke's only)
        Ledger(tmp).create()
        _write_whole(ds, tmp, fmt, progress)
        Ledger(tmp).mark_template({"complete": True, "zarr_format": fmt})
        if os.path.lexists(path):
            check_writable(loc, overwrite)  # again: another writer may have finished meanwhile
            prepare_overwrite(loc)  # refuses what is not a store
            loc.remove_all()
        os.replace(tmp.path, path)
        lock.moved_to(loc)
    return Path(path)


def vlen_labels(ds: xr.Dataset) -> xr.Dataset:
    """Fixed-width unicode coordinates (e.g. ``period`` labels) as variable-length strings,
    so every writer stores them with one dtype (zarr's v3 ``string`` / v2 ``VLenUTF8``)."""
    fixed = {k: v.astype(object) for k, v in ds.coords.items() if v.dtype.kind == "U"}
    return ds.assign_coords(fixed) if fixed else ds


def _write_whole(ds: xr.Dataset, loc: Location, fmt: int, progress: Progress = False) -> None:
    ds = vlen_labels(ds).copy()
    for v in ds.variables.values():  # encodings read from a store of another format; the
        # nodata value and the dtype it belongs to are kept
        v.encoding = {k: v.encoding[k] for k in ("_FillValue", "dtype") if k in v.encoding}
    ds = cf_georeferenced(ds)
    with quiet_zarr():
        if progress:  # metadata now, the chunks as one computation shown as it runs
            job = ds.to_zarr(**loc.zarr_args(), mode="a", zarr_format=fmt,
                             consolidated=False, encoding=_time_encoding(ds), compute=False)
            compute(job, progress, label=f"writing {loc.name}")
        else:
            ds.to_zarr(**loc.zarr_args(), mode="a", zarr_format=fmt, consolidated=False,
                       encoding=_time_encoding(ds))
    finalize_store(loc)


def finalize_store(store: Any, storage_options: StoreOptions = None) -> None:
    """Consolidate the store's metadata so plain ``xarray.open_zarr(store)`` opens it fast."""
    import zarr

    loc = Location.of(store, storage_options)
    with quiet_zarr():
        if loc.local:
            zarr.consolidate_metadata(loc.url)
        else:
            group = zarr.open_group(loc.url, mode="r+",
                                    storage_options=dict(loc.storage_options) or None)
            zarr.consolidate_metadata(group.store)


REPORT_SUFFIX = ".report.json"


def report_location(store: Any, storage_options: StoreOptions = None) -> Location:
    """Where :func:`write_report` writes the report of ``store``: ``<store>.report.json``."""
    return Location.of(store, storage_options).sibling(REPORT_SUFFIX)


def write_report(store: Any, report: Mapping[str, Any], storage_options: StoreOptions = None) -> Any:
    """Write a run report as a sidecar JSON file next to the store: ``<store>.report.json``.

    Complete JSON of any length (attributes inside the store are for small metadata);
    written atomically, never through a symbolic link. Returns the path or URL.
    """
    import json

    loc = Location.of(store, storage_options)
    side = report_location(loc)
    text = json.dumps(dict(report), indent=1, default=str)
    if loc.local:
        return atomic_write_text(side.path, text, root=loc.path.parent)
    side.fs.pipe_file(side._root, text.encode())
    return side.url
