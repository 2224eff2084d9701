"""VIIRS VNP64A1 burned area: monthly HDF5 (HDF-EOS5) sinusoidal tiles.

VNP64A1 is the VIIRS (S-NPP) successor of MODIS MCD64A1: the same algorithm family, the
same 500 m sinusoidal tiles (2400 x 2400 cells of ~463 m, ``hHHvVV``) and the same layer
names and codes, stored in HDF5 instead of HDF4::

    VNP64A1.AYYYYDDD.hHHvVV.CCC.YYYYDDDHHMMSS.h5
      HDFEOS/GRIDS/VNP_Grid_Monthly_500m_2D/Data Fields/
          Burn Date              int16   1-366 day of burn, 0 unburned, -1 unmapped, -2 water
          Burn Date Uncertainty  uint8   days
          QA                     uint8   bit field
          First Day, Last Day    int16   window of reliable change detection
      HDFEOS INFORMATION/StructMetadata.0   HDF-EOS5 ODL text: grid name, XDim/YDim,
                                            UpperLeftPointMtrs/LowerRightMtrs, HE5_GCTP_SNSOID

The grid geometry comes from ``StructMetadata.0`` (parsed by the HDF-EOS ODL parser of
:mod:`firesmoke.io._core.hdf4`); when it is missing, from the tile in the file name. The
variables, attributes and coordinates of :func:`open_vnp64a1` are those of
:func:`firesmoke.io.burned_area.mcd64.open_mcd64a1`, so every consumer of MCD64A1 (in particular the
daily burned fraction of :mod:`firesmoke.io.burned_area.fraction`) takes VNP64A1 tiles as they
are: :func:`firesmoke.io.burned_area.mcd64.parse_mcd64_name` recognises VNP64A1 names (kind ``"h5"``)
and :func:`firesmoke.io.burned_area.mcd64.open_mcd64` opens them.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from affine import Affine

from firesmoke.errors import CorruptFileError, WrongProductError
from firesmoke.io.burned_area.codes import (
    _VAR_ATTRS,
    SDS_VARIABLES,
    _chunks_arg,
    _sds_dtype,
    _token,
    parse_vnp64_name,
    sinusoidal_tile_dataset,
    tile_month,
)

__all__ = [
    "DATA_FIELDS",
    "GRID_NAME",
    "STRUCT_METADATA",
    "Vnp64Meta",
    "open_vnp64a1",
    "parse_vnp64_name",
    "read_vnp64_layer",
    "vnp64_meta",
]

log = logging.getLogger(__name__)

GRID_NAME = "VNP_Grid_Monthly_500m_2D"
DATA_FIELDS = f"HDFEOS/GRIDS/{GRID_NAME}/Data Fields"
STRUCT_METADATA = "HDFEOS INFORMATION/StructMetadata.0"

@dataclass(frozen=True)
class Vnp64Meta:
    """Geometry and layers of a VNP64A1 tile (no pixel read)."""

    transform: Affine
    shape: tuple[int, int]
    tile: tuple[int, int]
    month_start: date
    layers: dict[str, tuple[tuple[int, ...], np.dtype]]
    attrs: dict[str, Any]
    grid_name: str


def _open(path: Path) -> Any:
    import h5py

    if not path.is_file():
        raise CorruptFileError("file not found", path=path)
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise CorruptFileError(f"cannot open as HDF5 ({exc}); truncated or not HDF5?", path=path) from exc


def _text(value: Any) -> str:
    if isinstance(value, np.ndarray):
        value = value.item() if value.size == 1 else b"".join(value.ravel())
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value).rstrip("\x00")


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray) and value.size == 1:
        return value.item()
    if isinstance(value, np.generic):
        return value.item()
    return value


def vnp64_meta(path: str | os.PathLike[str]) -> Vnp64Meta:
    """Read the grid and layer descriptions of a VNP64A1 file.

    Raises
    ------
    CorruptFileError
        Missing, truncated or non-HDF5 file.
    WrongProductError
        HDF5 without the VNP64A1 grid, its ``Burn Date`` layer or a usable geometry.
    """
    from firesmoke.io._core.hdf4 import grid_info
    from firesmoke.io.burned_area.sinusoidal import tile_of_point, tile_transform

    p = Path(path)
    with _open(p) as f:
        group = f.get(DATA_FIELDS)
        if group is None or "Burn Date" not in group:
            raise WrongProductError(f"not a VNP64A1 tile: no '{DATA_FIELDS}/Burn Date' dataset", path=p)
        layers = {k: (tuple(ds.shape), ds.dtype) for k, ds in group.items() if hasattr(ds, "shape")}
        attrs = {k: _plain(v) for k, v in f.attrs.items()}
        struct = f.get(STRUCT_METADATA)
        text = _text(struct[()]) if struct is not None else ""
    shape = layers["Burn Date"][0]
    if len(shape) != 2:
        raise WrongProductError(f"'Burn Date' has {len(shape)} dimensions, expected 2", path=p)
    named = parse_vnp64_name(p)
    grid_name = GRID_NAME
    if text:
        grid = grid_info(text, path=p)
        if "SNSOID" not in grid.projection.upper():
            raise WrongProductError(f"grid {grid.name!r} is {grid.projection}, expected a sinusoidal grid", path=p)
        (ulx, uly), (lrx, lry) = grid.upper_left, grid.lower_right
        if (grid.ydim, grid.xdim) != shape or not (lrx > ulx and uly > lry):
            raise CorruptFileError(f"'Burn Date' is {shape} but StructMetadata.0 says {(grid.ydim, grid.xdim)} "
                                   f"over ({ulx}, {uly})-({lrx}, {lry})", path=p)
        transform = Affine((lrx - ulx) / grid.xdim, 0.0, ulx, 0.0, (lry - uly) / grid.ydim, uly)
        tile = tile_of_point(ulx + 0.5 * transform.a, uly + 0.5 * transform.e)
        grid_name = grid.name
        if named is not None and named.tile != tile:
            log.warning("%s: file name says tile h%02dv%02d, grid metadata say h%02dv%02d (using the metadata)",
                        p, *named.tile, *tile)
    elif named is not None:
        if shape[0] != shape[1]:
            raise WrongProductError(f"no StructMetadata.0 and a non-square grid {shape}", path=p)
        tile = named.tile
        transform = tile_transform(*tile, pixels=shape[0])
        log.debug("%s: no StructMetadata.0; geometry from the tile in the name", p)
    else:
        raise WrongProductError("no StructMetadata.0 and no hHHvVV tile in the name: geometry unknown", path=p)
    month = tile_month(named, attrs, p)
    return Vnp64Meta(transform, shape, tile, month, layers, attrs, grid_name)


def read_vnp64_layer(path: str | os.PathLike[str], name: str = "Burn Date",
                     window: tuple[slice, slice] | None = None) -> np.ndarray:
    """Read one layer (or a ``(rows, cols)`` window of it) of a VNP64A1 file."""
    p = Path(path)
    with _open(p) as f:
        ds = f.get(f"{DATA_FIELDS}/{name}")
        if ds is None:
            raise WrongProductError(f"no layer {name!r}", path=p, field=name)
        try:
            return np.asarray(ds[window] if window is not None else ds[()])
        except (OSError, ValueError) as exc:
            raise CorruptFileError(f"cannot read layer ({exc}); file corrupt?", path=p, field=name) from exc


class _LayerArray:
    """Array-like view of one layer for :func:`dask.array.from_array` (opens the file per read)."""

    def __init__(self, path: Path, name: str, shape: tuple[int, int], dtype: np.dtype) -> None:
        self.path, self.name, self.shape, self.dtype, self.ndim = path, name, shape, np.dtype(dtype), 2

    def __getitem__(self, key: Any) -> np.ndarray:
        data = read_vnp64_layer(self.path, self.name, key if isinstance(key, tuple) else (key,))
        return data.astype(self.dtype, copy=False)

    def __dask_tokenize__(self) -> tuple:
        st = self.path.stat()
        return ("firesmoke-vnp64", str(self.path), st.st_size, st.st_mtime_ns, self.name)


def open_vnp64a1(path: str | os.PathLike[str], chunks: Any = None) -> xr.Dataset:
    """Open a VNP64A1 HDF5 tile lazily, like :func:`firesmoke.io.burned_area.mcd64.open_mcd64a1`.

    Returns the variables ``burn_date``, ``burn_date_uncertainty``, ``qa``, ``first_day``,
    ``last_day`` (those present) with the raw codes and CF attributes of MCD64A1, sinusoidal
    ``x``/``y`` cell centres, the CRS attached, scalar ``time`` = first day of the month.
    """
    import dask.array as da

    p = Path(path)
    meta = vnp64_meta(p)
    t = meta.transform
    data_vars = {}
    for layer, var in SDS_VARIABLES.items():
        if layer not in meta.layers:
            continue
        if meta.layers[layer][0] != meta.shape:
            log.warning("%s: layer %r has shape %s, not the grid's %s; left out", p, layer, meta.layers[layer][0], meta.shape)
            continue
        dtype = _sds_dtype(layer)
        arr = da.from_array(_LayerArray(p, layer, meta.shape, dtype), chunks=_chunks_arg(chunks, meta.shape),
                            lock=False, meta=np.empty((0, 0), dtype), name=f"vnp64a1-{var}-" + _token(p, chunks))
        data_vars[var] = (("y", "x"), arr, {**_VAR_ATTRS[var], "hdf5_dataset": f"{DATA_FIELDS}/{layer}"})
    return sinusoidal_tile_dataset(data_vars, t, meta.shape, meta.month_start, meta.tile,
                                   product="VNP64A1", title="VIIRS VNP64A1 monthly burned area",
                                   source=p, grid_name=meta.grid_name)
