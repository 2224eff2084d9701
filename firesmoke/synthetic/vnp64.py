"""Synthetic VIIRS VNP64A1 monthly burned-area tiles in the real HDF5 (HDF-EOS5) layout.

File ``VNP64A1.AYYYYDDD.hHHvVV.002.<YYYYDDDHHMMSS>.h5`` (``DDD`` = first day of the month)::

    /                                       attributes HorizontalTileNumber, VerticalTileNumber,
                                            ProductStartDay, ProductEndDay, year, ShortName,
                                            LocalGranuleID, BurnedCells, ...
    /HDFEOS INFORMATION                     attribute HDFEOSVersion = "HDFEOS_5.1.15"
    /HDFEOS INFORMATION/StructMetadata.0    ODL text: GridName VNP_Grid_Monthly_500m_2D,
                                            XDim/YDim, UpperLeftPointMtrs, LowerRightMtrs,
                                            Projection=HE5_GCTP_SNSOID, data fields
    /HDFEOS/GRIDS/VNP_Grid_Monthly_500m_2D/Data Fields/
        Burn Date              int16  (_FillValue -1, valid_range [0, 366], long_name, units)
        Burn Date Uncertainty  uint8
        QA                     uint8
        First Day, Last Day    int16

Datasets are chunked and deflated like the products NASA distributes. The values follow
MCD64A1's coding (see :mod:`firesmoke.io.burned_area.mcd64`); :func:`write_vnp64_month` reuses the
MCD64A1 simulation (:func:`firesmoke.synthetic.mcd64.month_arrays`) so one burn truth gives
both products. :func:`write_vnp64a1` writes given arrays on any tile-aligned grid (tests use
small grids: the geometry is read from ``StructMetadata.0``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from firesmoke.errors import InputError
from firesmoke.io.burned_area.sinusoidal import EARTH_RADIUS, tile_bounds

__all__ = ["GRID_NAME", "struct_metadata", "vnp64_file_name", "write_vnp64_month", "write_vnp64a1"]

GRID_NAME = "VNP_Grid_Monthly_500m_2D"
_TYPES = {"Burn Date": ("H5T_NATIVE_SHORT", np.int16), "Burn Date Uncertainty": ("H5T_NATIVE_UCHAR", np.uint8),
          "QA": ("H5T_NATIVE_UCHAR", np.uint8), "First Day": ("H5T_NATIVE_SHORT", np.int16),
          "Last Day": ("H5T_NATIVE_SHORT", np.int16)}
_ATTRS: dict[str, dict[str, Any]] = {
    "Burn Date": {"long_name": "ordinal day of burn", "units": "Julian day", "valid_range": np.array([0, 366], np.int16),
                  "_FillValue": np.int16(-1), "water": np.int16(-2)},
    "Burn Date Uncertainty": {"long_name": "uncertainty in day of burn", "units": "days", "_FillValue": np.uint8(0)},
    "QA": {"long_name": "quality assurance indicators", "units": "bit field", "_FillValue": np.uint8(0)},
    "First Day": {"long_name": "first day of reliable change detection", "units": "Julian day",
                  "valid_range": np.array([1, 366], np.int16), "_FillValue": np.int16(-1), "water": np.int16(-2)},
    "Last Day": {"long_name": "last day of reliable change detection", "units": "Julian day",
                 "valid_range": np.array([1, 366], np.int16), "_FillValue": np.int16(-1), "water": np.int16(-2)},
}


def struct_metadata(ul: tuple[float, float], lr: tuple[float, float], shape: tuple[int, int],
                    layers: list[str]) -> str:
    """HDF-EOS5 ``StructMetadata.0`` text of one sinusoidal grid."""
    ny, nx = shape
    fields = "".join(
        f'\t\t\tOBJECT=DataField_{k}\n\t\t\t\tDataFieldName="{name}"\n\t\t\t\tDataType={_TYPES[name][0]}\n'
        f'\t\t\t\tDimList=("YDim","XDim")\n\t\t\t\tMaxdimList=("YDim","XDim")\n\t\t\tEND_OBJECT=DataField_{k}\n'
        for k, name in enumerate(layers, start=1)
    )
    return (
        "GROUP=SwathStructure\nEND_GROUP=SwathStructure\nGROUP=GridStructure\n\tGROUP=GRID_1\n"
        f'\t\tGridName="{GRID_NAME}"\n\t\tXDim={nx}\n\t\tYDim={ny}\n'
        f"\t\tUpperLeftPointMtrs=({ul[0]:.6f},{ul[1]:.6f})\n\t\tLowerRightMtrs=({lr[0]:.6f},{lr[1]:.6f})\n"
        f"\t\tProjection=HE5_GCTP_SNSOID\n\t\tProjParams=({EARTH_RADIUS:.6f},0,0,0,0,0,0,0,0,0,0,0,0)\n"
        "\t\tSphereCode=-1\n\t\tGridOrigin=HE5_HDFE_GD_UL\n\t\tGROUP=Dimension\n\t\tEND_GROUP=Dimension\n"
        f"\t\tGROUP=DataField\n{fields}\t\tEND_GROUP=DataField\n\t\tGROUP=MergedFields\n\t\tEND_GROUP=MergedFields\n"
        "\tEND_GROUP=GRID_1\nEND_GROUP=GridStructure\nGROUP=PointStructure\nEND_GROUP=PointStructure\n"
        "GROUP=ZaStructure\nEND_GROUP=ZaStructure\nEND\n"
    )


def vnp64_file_name(month: Any, h: int, v: int, production: str = "2024001000000", collection: str = "002") -> str:
    """``VNP64A1.AYYYYDDD.hHHvVV.CCC.<production>.h5`` for the month starting ``month``."""
    first = np.datetime64(month, "M").astype("datetime64[D]")
    year = int(first.astype("datetime64[Y]").astype(np.int64)) + 1970
    doy = int((first - first.astype("datetime64[Y]")).astype(np.int64)) + 1
    return f"VNP64A1.A{year:04d}{doy:03d}.h{h:02d}v{v:02d}.{collection}.{production}.h5"


def write_vnp64a1(
    path: str | os.PathLike[str],
    layers: Mapping[str, np.ndarray],
    tile: tuple[int, int],
    month: Any,
    *,
    ul: tuple[float, float] | None = None,
    lr: tuple[float, float] | None = None,
    attrs: Mapping[str, Any] | None = None,
    struct: bool = True,
) -> Path:
    """Write a VNP64A1 HDF5 file holding ``layers`` (``"Burn Date"`` required) of tile ``(h, v)``.

    ``ul``/``lr`` default to the tile's corners (any grid size: the cell size follows).
    ``struct=False`` leaves out ``StructMetadata.0`` (readers then use the tile in the name).
    The file is written under a temporary name and renamed when complete.
    """
    import h5py

    if "Burn Date" not in layers:
        raise InputError("layers must hold 'Burn Date'")
    p = Path(path)
    h, v = tile
    left, bottom, right, top = tile_bounds(h, v)
    ul = ul or (left, top)
    lr = lr or (right, bottom)
    shape = np.asarray(layers["Burn Date"]).shape
    first = np.datetime64(month, "M").astype("datetime64[D]")
    last = (np.datetime64(month, "M") + np.timedelta64(1, "M")).astype("datetime64[D]") - np.timedelta64(1, "D")
    year = int(first.astype("datetime64[Y]").astype(np.int64)) + 1970
    doy = lambda d: int((d - d.astype("datetime64[Y]")).astype(np.int64)) + 1  # noqa: E731
    burn = np.asarray(layers["Burn Date"])
    tmp = p.with_name(p.name + ".tmp")
    names = [n for n in _TYPES if n in layers]
    with h5py.File(tmp, "w") as f:
        info = f.create_group("HDFEOS INFORMATION")
        info.attrs["HDFEOSVersion"] = np.bytes_("HDFEOS_5.1.15")
        if struct:
            text = struct_metadata(ul, lr, shape, names)
            info.create_dataset("StructMetadata.0", data=np.bytes_(text))
        fields = f.create_group(f"HDFEOS/GRIDS/{GRID_NAME}/Data Fields")
        grid = f[f"HDFEOS/GRIDS/{GRID_NAME}"]
        for key in ("XDim", "YDim"):
            grid.attrs[key] = np.int32(shape[1] if key == "XDim" else shape[0])
        chunks = (min(shape[0], 300), min(shape[1], 300))
        for name in names:
            arr = np.asarray(layers[name], dtype=_TYPES[name][1])
            if arr.shape != shape:
                raise InputError(f"layer {name!r} has shape {arr.shape}, 'Burn Date' {shape}")
            ds = fields.create_dataset(name, data=arr, chunks=chunks, compression="gzip", compression_opts=4)
            for k, val in _ATTRS[name].items():
                ds.attrs[k] = np.bytes_(val) if isinstance(val, str) else val
        root_attrs = {
            "ShortName": "VNP64A1", "LocalGranuleID": p.name, "HorizontalTileNumber": f"{h:02d}",
            "VerticalTileNumber": f"{v:02d}", "ProductStartDay": np.int16(doy(first)),
            "ProductEndDay": np.int16(doy(last)), "year": np.int16(year),
            "BurnedCells": np.int32(np.count_nonzero(burn > 0)),
            "MissingCells": np.int32(np.count_nonzero(burn == -1)),
            "LandCells": np.int32(np.count_nonzero(burn != -2)),
            **dict(attrs or {}),
        }
        for k, val in root_attrs.items():
            f.attrs[k] = np.bytes_(val) if isinstance(val, str) else val
    os.replace(tmp, p)
    return p


def write_vnp64_month(out_dir: str | os.PathLike[str], truth: Any, mapping: Any, month: Any) -> Path:
    """The VNP64A1 file of one tile and month from a synthetic burn truth (cf. ``write_mcd64_month``)."""
    from firesmoke.synthetic.mcd64 import month_arrays

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    arrays = month_arrays(truth, mapping, month)
    arrays.pop("_days")
    return write_vnp64a1(out / vnp64_file_name(month, mapping.h, mapping.v), arrays, (mapping.h, mapping.v), month)
