"""Zarr v3 mosaics: template first, aligned region writes, a ledger for resume; exports.

Writing a large product follows the pattern recommended for xarray + Zarr at scale:

1. :func:`create_template` writes the metadata and coordinates of the whole product
   (region x period) once, without data (``compute=False``);
2. each block is computed independently and written into its own aligned region with
   :func:`write_block` (no two blocks touch the same Zarr chunk, so workers never race);
   chunks that are entirely fill (NaN) are not written at all;
3. after a block is written, a marker is created in the store's ledger, a folder beside
   the store (``<store>.ledger/<block id>``, kept outside so the store stays plain Zarr). A rerun skips the blocks listed there, so
   an interrupted run resumes where it stopped; a block whose write was interrupted has
   no marker and is simply written again (writes are idempotent).

The result is readable with plain ``xarray.open_zarr(store)``, CRS included.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from firesmoke.errors import GridMismatchError
from firesmoke.paths import safe_join

__all__ = [
    "Ledger",
    "create_template",
    "export_geotiff",
    "finalize_store",
    "quicklook_png",
    "safe_join",
    "write_block",
    "write_product",
]

log = logging.getLogger(__name__)

LEDGER_SUFFIX = ".ledger"


class Ledger:
    """Markers of finished blocks of a store (one small file per block, beside the store)."""

    def __init__(self, store: str | os.PathLike[str]) -> None:
        p = Path(store)
        self.root = p.with_name(p.name + LEDGER_SUFFIX)

    @staticmethod
    def _name(block_id: str) -> str:
        name = re.sub(r"[^A-Za-z0-9._-]", "_", block_id)
        if not name or name.startswith("."):
            name = "b" + name
        return name

    def done(self, block_id: str) -> bool:
        return (self.root / self._name(block_id)).exists()

    def mark(self, block_id: str, info: Mapping[str, Any] | None = None) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        target = self.root / self._name(block_id)
        tmp = target.with_name(target.name + f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(dict(info or {}), default=str))
        os.replace(tmp, target)  # atomic: a marker is complete or absent

    def finished(self) -> set[str]:
        if not self.root.is_dir():
            return set()
        return {p.name for p in self.root.iterdir() if ".tmp" not in p.name}

    def clear(self) -> None:
        if self.root.is_dir():
            for p in self.root.iterdir():
                p.unlink()


def _encoding(ds: xr.Dataset, chunks: Mapping[str, int], compression_level: int = 3) -> dict:
    import zarr.codecs

    enc: dict[str, dict[str, Any]] = {}
    for name, var in ds.data_vars.items():
        e: dict[str, Any] = {
            "chunks": tuple(int(chunks.get(d, var.sizes[d])) for d in var.dims),
            "compressors": (zarr.codecs.ZstdCodec(level=compression_level),),
        }
        if np.issubdtype(var.dtype, np.floating):
            e["fill_value"] = np.nan
        enc[str(name)] = e
    return enc


def create_template(
    template: xr.Dataset,
    store: str | os.PathLike[str],
    chunks: Mapping[str, int],
    overwrite: bool = False,
) -> None:
    """Write metadata and coordinates of ``template`` (a dask-backed Dataset) to ``store``.

    Parameters
    ----------
    template
        Dataset with the final shape, dtypes, coordinates and attrs; its data variables
        should be lazy (dask): they are not computed.
    store
        Path of the Zarr v3 store.
    chunks
        Zarr chunk size per dimension (blocks written later must align with it).
    overwrite
        Replace an existing store (and its ledger). Otherwise an existing store must hold
        the same variables on the same grid, and is kept (resume).
    """
    path = Path(store)
    if path.exists() and not overwrite:
        existing = xr.open_zarr(path, consolidated=False)
        _check_compatible(existing, template, path)
        log.info("resuming into existing store %s", path)
        return
    if overwrite:
        Ledger(path).clear()
    lazy = template.chunk({d: chunks.get(d, -1) for d in template.dims})
    # coordinates are small: load them so that compute=False still writes them all
    lazy = lazy.assign_coords({k: v.load() for k, v in lazy.coords.items() if k not in lazy.dims})
    lazy.to_zarr(
        path, mode="w", compute=False, zarr_format=3, consolidated=False,
        encoding=_encoding(lazy, chunks),
    )
    log.info("wrote template %s (%s)", path, dict(template.sizes))


def _check_compatible(existing: xr.Dataset, template: xr.Dataset, path: Path) -> None:
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
    store: str | os.PathLike[str],
    region: Mapping[str, slice],
    block_id: str | None = None,
    info: Mapping[str, Any] | None = None,
) -> None:
    """Write a computed block into its aligned ``region`` of the store, then mark it done."""
    drop = [c for c in block.coords if c not in block.dims or c not in region]
    drop = [c for c in drop if c != "spatial_ref"] + (["spatial_ref"] if "spatial_ref" in block.coords else [])
    out = block.drop_vars(drop, errors="ignore")
    out.attrs = {}
    for v in out.data_vars.values():
        v.attrs = {}
        v.encoding = {}
    out.to_zarr(Path(store), region=dict(region), zarr_format=3, consolidated=False)
    if block_id is not None:
        Ledger(store).mark(block_id, info)


def write_product(ds: xr.Dataset, store: str | os.PathLike[str]) -> Path:
    """Write a computed product Dataset to a Zarr v3 store atomically.

    The store is written under ``<store>.part`` and renamed into place, so a store that
    exists is complete (an interrupted write leaves only the ``.part`` folder).
    """
    import shutil
    import warnings

    path = Path(store)
    tmp = path.with_name(path.name + ".part")
    if tmp.exists():
        shutil.rmtree(tmp)
    with warnings.catch_warnings():
        # string labels (e.g. "2020-08") have no finalised Zarr v3 dtype spec yet
        warnings.filterwarnings("ignore", message=".*does not have a Zarr V3 specification.*")
        ds.to_zarr(tmp, mode="w", zarr_format=3, consolidated=False)
    finalize_store(tmp)
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)
    return path


def finalize_store(store: str | os.PathLike[str]) -> None:
    """Consolidate the store's metadata so plain ``xarray.open_zarr(store)`` opens it fast."""
    import warnings

    import zarr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr warns that v3 consolidation is not in the spec yet
        zarr.consolidate_metadata(os.fspath(store))


def export_geotiff(
    da: xr.DataArray,
    path: str | os.PathLike[str],
    cog: bool = True,
    nodata: float | int | None = None,
) -> Path:
    """Write a 2-D (or band, y, x) DataArray with its CRS to a GeoTIFF / COG."""
    import rioxarray  # noqa: F401

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".part")
    arr = da.copy()
    arr.encoding = {}  # e.g. a _FillValue from Zarr would clash with rioxarray's own
    arr.attrs = {k: v for k, v in arr.attrs.items() if k not in ("_FillValue", "missing_value")}
    if nodata is not None:
        arr = arr.rio.write_nodata(nodata)
    kwargs: dict[str, Any] = {"driver": "COG", "compress": "DEFLATE"} if cog else {
        "driver": "GTiff", "compress": "DEFLATE", "tiled": True}
    arr.rio.to_raster(tmp, **kwargs)
    os.replace(tmp, p)
    return p


def quicklook_png(
    panels: Iterable[tuple[str, xr.DataArray | np.ndarray, Mapping[str, Any]]],
    path: str | os.PathLike[str],
    title: str = "",
) -> Path:
    """Save side-by-side maps with colour bars: ``(label, data, imshow kwargs)`` panels."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    panels = list(panels)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.4), squeeze=False)
    for ax, (label, data, kw) in zip(axes[0], panels, strict=True):
        kw = dict(kw)
        extent = kw.pop("extent", None)
        if extent is None and isinstance(data, xr.DataArray) and "x" in data.coords and "y" in data.coords:
            x, y = data["x"].values, data["y"].values
            if x.size > 1 and y.size > 1:
                dx, dy = x[1] - x[0], y[1] - y[0]
                extent = (x[0] - dx / 2, x[-1] + dx / 2, y[-1] + dy / 2, y[0] - dy / 2)
        arr = np.asarray(data)
        colorbar = kw.pop("colorbar", arr.ndim == 2)
        cbar_label = kw.pop("cbar_label", "")
        im = ax.imshow(arr, extent=extent, interpolation="nearest", **kw)
        ax.set_title(label, fontsize=10)
        if extent is not None:
            ax.set_xlabel("longitude")
            ax.set_ylabel("latitude")
        if colorbar:
            fig.colorbar(im, ax=ax, shrink=0.8, label=cbar_label)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return p
